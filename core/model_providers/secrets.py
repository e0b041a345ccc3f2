"""API keys: from the settings, or from Secrets Manager / SSM Parameter Store, cached.

For a key named ``NAME`` (``OPENAI_API_KEY``...), in order:

1. ``NAME`` itself: ``runtime.get_setting`` (character secrets, character settings, process
   settings, environment), or the environment when there is no runtime.
2. ``NAME_SECRET_ID``: a Secrets Manager secret (name or ARN). A secret holding a JSON
   object gives its ``NAME`` member (one secret can hold several keys); any other secret
   string is the key itself.
3. ``NAME_PARAMETER``: an SSM parameter (a ``SecureString`` is decrypted).

Fetched through Powertools parameters and kept by the process's ``SecretStore`` for
``MODEL_SECRETS_MAX_AGE_S`` seconds (default 300, a process setting in
``core.settings.providers``): one AWS call per container per five minutes, and a rotated key
is picked up without a redeploy. The fetch runs in a worker thread (boto3 blocks).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from core import aws
from core.errors import ModelError
from core.types.model_runtime import ModelRuntime

DEFAULT_MAX_AGE_S = 300.0


class SecretStore:
    """API keys read from Secrets Manager / SSM, cached for ``max_age_s`` seconds.

    Owned by the process's ``core.model_providers.resources.ProviderResources``; tests make
    their own with stubbed boto3 clients.

    Args:
        max_age_s: Seconds a fetched value is kept (``MODEL_SECRETS_MAX_AGE_S``).
        secrets_client: A ``secretsmanager`` boto3 client (``None``: made on first use).
        ssm_client: An ``ssm`` boto3 client (``None``: made on first use).
        clock: Monotonic clock in seconds.
    """

    def __init__(
        self,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        *,
        secrets_client: Any = None,
        ssm_client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age_s = max_age_s
        self._clients = {"secretsmanager": secrets_client, "ssm": ssm_client}
        self._providers: dict[str, Any] = {}
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[str, float]] = {}

    async def resolve(self, runtime: ModelRuntime, name: str, *, provider: str) -> str | None:
        """The value of the key ``name``, or ``None`` when no source is set.

        Args:
            runtime: The calling runtime: its settings (character first, then the environment).
            name: Setting name (``"OPENAI_API_KEY"``).
            provider: Provider name, for errors.

        Raises:
            ModelError: a secret or parameter is named but cannot be read (not retryable: a
                missing permission or a wrong name is not fixed by trying again). The message
                names the setting and the AWS error code, never a value.
        """
        direct = _setting(runtime, name)
        if direct:
            return direct
        for suffix, fetch in (("_SECRET_ID", self._fetch_secret), ("_PARAMETER", self._fetch_parameter)):
            ref = _setting(runtime, name + suffix)
            if ref:
                return await self._cached(name, suffix, ref, fetch, provider)
        return None

    async def _cached(
        self, name: str, suffix: str, ref: str, fetch: Callable[[str], str | bytes], provider: str
    ) -> str:
        cached = self._cache.get((suffix, ref))
        if cached and cached[1] > self._clock():
            return cached[0]
        try:
            raw = await asyncio.to_thread(fetch, ref)
        except Exception as exc:
            raise ModelError(f"{provider}: cannot read {name}{suffix} ({_aws_code(exc)})", provider=provider) from None
        value = _member(raw, name)
        self._cache[(suffix, ref)] = (value, self._clock() + self.max_age_s)
        return value

    def _fetch_secret(self, ref: str) -> str | bytes:
        value: str | bytes = self._provider("secretsmanager").get(ref, max_age=0)
        return value

    def _fetch_parameter(self, ref: str) -> str:
        value: str = self._provider("ssm").get(ref, decrypt=True, max_age=0)
        return value

    def _provider(self, service: str) -> Any:
        """The Powertools provider of ``service`` (made once, in a worker thread: boto3 blocks)."""
        found = self._providers.get(service)
        if found is None:
            # Imported on first use: Powertools' parameters module loads boto3 (~120 ms), which a
            # process whose keys are plain settings never needs.
            from aws_lambda_powertools.utilities import parameters

            client = self._clients[service] or aws.client(service)
            kind = parameters.SecretsProvider if service == "secretsmanager" else parameters.SSMProvider
            found = self._providers[service] = kind(boto3_client=client)
        return found


def has_source(name: str, environ: Mapping[str, str]) -> bool:
    """True when ``environ`` gives ``name`` or a reference to where it is stored."""
    return any(environ.get(n) for n in (name, f"{name}_SECRET_ID", f"{name}_PARAMETER"))


def _member(raw: str | bytes, name: str) -> str:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        parsed = json.loads(text)
    except ValueError:
        return text.strip()
    member = parsed.get(name) if isinstance(parsed, dict) else None
    return member if isinstance(member, str) else text.strip()


def _aws_code(exc: BaseException) -> str:
    """The AWS error code (``AccessDeniedException``...) of ``exc`` or of the error it was
    raised while handling (Powertools wraps botocore's error), else the class name."""
    for error in (exc, exc.__cause__, exc.__context__):
        response = getattr(error, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code"):
            return str(response["Error"]["Code"])
    return type(exc).__name__


def _setting(runtime: ModelRuntime, key: str) -> str:
    """A key or a reference as a string ("" when unset)."""
    return runtime.setting(key, str, "")
