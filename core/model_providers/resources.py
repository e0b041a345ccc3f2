"""What the hosted model providers of one process share: the HTTP client, the circuit breakers, the secrets cache.

A ``ProviderResources`` is made once per process and given to each provider's constructor
(``OpenAIProvider(resources)``...), so a process's providers share one connection pool, one
breaker per provider and one secrets cache, and a test builds its own (a mock transport, a
recording ``sleep``, stubbed AWS clients) instead of resetting module state.

Plugins named in ``MODEL_PLUGINS`` (``core.model_providers.openai`` resolves the module's
``plugin``) are built at import with ``process_resources()``: the process's own, made on first
use from ``ProviderSettings.from_env()``. ``provider_health()`` reports its circuits for
``GET /health``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from core import aws
from core.model_providers.circuit import CircuitBreakers
from core.model_providers.http import HttpClient
from core.model_providers.secrets import SecretStore
from core.settings.providers import ProviderSettings

logger = logging.getLogger(__name__)


class ProviderResources:
    """The process-wide state of the hosted providers.

    Args:
        settings: Timeouts, retries, circuit thresholds, secrets max age, Bedrock's endpoint.
        transport: The HTTP transport (tests: ``httpx.MockTransport``; ``None``: the network).
        sleep: Waits between retries (tests record the delays instead).
        clock: Monotonic clock in seconds (retry budget, circuit cool-downs, secrets max age).
        bedrock_client: A ``bedrock-runtime`` client (tests: a stubbed one); ``None``: made on first use.
        secrets_client: A ``secretsmanager`` client; ``None``: made on first use.
        ssm_client: An ``ssm`` client; ``None``: made on first use.

    Attributes:
        settings: As given.
        http: The shared HTTP client, with retries.
        breakers: One circuit breaker per provider.
        secrets: API keys from Secrets Manager / SSM, cached.
    """

    def __init__(
        self,
        settings: ProviderSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        bedrock_client: Any = None,
        secrets_client: Any = None,
        ssm_client: Any = None,
    ) -> None:
        self.settings = settings or ProviderSettings()
        self.http = HttpClient.from_settings(self.settings, transport=transport, sleep=sleep, clock=clock)
        self.breakers = CircuitBreakers(self.settings.circuit_failures, self.settings.circuit_cooldown_s, clock)
        self.secrets = SecretStore(
            self.settings.secrets_max_age_s, secrets_client=secrets_client, ssm_client=ssm_client, clock=clock
        )
        self._bedrock_client = bedrock_client
        self._bedrock_lock = threading.Lock()
        self._announced: set[str] = set()

    def bedrock_client(self) -> Any:
        """The ``bedrock-runtime`` client, made once (thread-safe: Bedrock calls run in worker threads).

        Timeouts are the HTTP client's; botocore's retries are off, ours (``http.with_retries``)
        apply, so every provider retries alike.
        """
        with self._bedrock_lock:
            if self._bedrock_client is None:
                self._bedrock_client = _make_bedrock_client(self.settings)
            return self._bedrock_client

    def announce_disabled(self, provider: str, reason: str) -> None:
        """Log once per process that ``provider`` registers nothing, and why."""
        if provider not in self._announced:
            self._announced.add(provider)
            logger.warning("model provider %s is not enabled: %s; it registers no model", provider, reason)


def _make_bedrock_client(settings: ProviderSettings) -> Any:
    # Imported here: botocore's Config is only needed by a process that serves Bedrock.
    from botocore.config import Config

    return aws.client(
        "bedrock-runtime",
        region_name=settings.bedrock_region or None,
        endpoint_url=settings.bedrock_endpoint_url or None,
        config=Config(
            connect_timeout=settings.connect_timeout_s,
            read_timeout=settings.read_timeout_s,
            retries={"total_max_attempts": 1},
            max_pool_connections=16,
        ),
    )


@functools.cache
def process_resources() -> ProviderResources:
    """The process's resources, made on first use from the environment (the init phase, when
    a provider module is imported).

    Raises:
        ConfigurationError: a provider setting is malformed (the message names the variable).
    """
    return ProviderResources(ProviderSettings.from_env())


def provider_health() -> dict[str, dict[str, Any]]:
    """The circuits of this process's providers, for ``GET /health``.

    Returns:
        ``{provider: {"state", "consecutive_failures", "retry_in_s", "times_opened"}}``
        (see ``CircuitBreakers.health``); providers not called yet are absent.
    """
    return process_resources().breakers.health()
