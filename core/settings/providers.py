"""Process settings of the hosted model providers: HTTP timeouts, retries, circuit breakers, secrets, Bedrock.

Read once per container (``ProviderSettings.from_env``, in the init phase) by the one rule
(``core.settings.parse_setting``), and passed to ``core.model_providers.resources.ProviderResources``.
Per-agent values (API keys, model names, base URLs), which a character may override as in
elizaOS, are not here: the providers read them at call time through ``runtime.setting`` /
``runtime.get_setting``.

=================================  =======  ====================================================
Variable                           Default  Meaning
=================================  =======  ====================================================
``MODEL_HTTP_CONNECT_TIMEOUT_S``   5        Seconds to open a TCP + TLS connection.
``MODEL_HTTP_READ_TIMEOUT_S``      60       Seconds between two bytes of a response.
``MODEL_HTTP_WRITE_TIMEOUT_S``     10       Seconds to send a request.
``MODEL_HTTP_POOL_TIMEOUT_S``      5        Seconds to get a connection from the client's pool.
``MODEL_HTTP_MAX_ATTEMPTS``        3        Attempts per call, the first included (1 to 10).
``MODEL_HTTP_RETRY_BUDGET_S``      20       No retry starts this long after the first attempt.
``MODEL_CIRCUIT_FAILURES``         3        Consecutive retryable failures that open a circuit.
``MODEL_CIRCUIT_COOLDOWN_S``       30       Seconds a circuit stays open before a probe.
``MODEL_SECRETS_MAX_AGE_S``        300      Seconds an API key fetched from AWS is cached.
``BEDROCK_REGION``                 (none)   Bedrock's region, else ``AWS_REGION``, else boto3's.
``BEDROCK_ENDPOINT_URL``           (none)   Bedrock endpoint (a VPC endpoint, a local stub).
``{PREFIX}_PRIORITY``              per      Registry priority of a provider's models.
``{PREFIX}_STRUCTURED_OUTPUT``     per      Whether its text models claim ``structured_output``.
=================================  =======  ====================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.settings import SettingT, parse_setting, setting_value


@dataclass(frozen=True)
class ProviderSettings:
    """What every hosted provider of a process shares (see the module docstring for the variables).

    Attributes:
        connect_timeout_s: Seconds to open a connection.
        read_timeout_s: Seconds between two bytes of a response (a stream may run longer).
        write_timeout_s: Seconds to send a request.
        pool_timeout_s: Seconds to wait for a pooled connection.
        max_attempts: Attempts per call, the first included.
        retry_budget_s: Seconds after the first attempt past which no retry starts (API
            Gateway gives up after 30 s, so the next provider must get its turn before).
        circuit_failures: Consecutive retryable failures that open a provider's circuit.
        circuit_cooldown_s: Seconds an open circuit waits before letting a probe through.
        secrets_max_age_s: Seconds an API key read from Secrets Manager / SSM is cached.
        bedrock_region: AWS region of Bedrock; empty: boto3's default.
        bedrock_endpoint_url: Bedrock endpoint URL; empty: the region's.
    """

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    write_timeout_s: float = 10.0
    pool_timeout_s: float = 5.0
    max_attempts: int = 3
    retry_budget_s: float = 20.0
    circuit_failures: int = 3
    circuit_cooldown_s: float = 30.0
    secrets_max_age_s: float = 300.0
    bedrock_region: str = ""
    bedrock_endpoint_url: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProviderSettings:
        """Read the settings from ``environ`` (``os.environ`` by default).

        Raises:
            ConfigurationError: a value is malformed or out of range; the message names the variable.
        """
        env = os.environ if environ is None else environ
        d = cls()  # the defaults, named once in the fields above

        def seconds(name: str, default: float) -> float:
            return parse_setting(name, env.get(name), float, default, minimum=0.0)

        return cls(
            connect_timeout_s=seconds("MODEL_HTTP_CONNECT_TIMEOUT_S", d.connect_timeout_s),
            read_timeout_s=seconds("MODEL_HTTP_READ_TIMEOUT_S", d.read_timeout_s),
            write_timeout_s=seconds("MODEL_HTTP_WRITE_TIMEOUT_S", d.write_timeout_s),
            pool_timeout_s=seconds("MODEL_HTTP_POOL_TIMEOUT_S", d.pool_timeout_s),
            max_attempts=parse_setting(
                "MODEL_HTTP_MAX_ATTEMPTS",
                env.get("MODEL_HTTP_MAX_ATTEMPTS"),
                int,
                d.max_attempts,
                minimum=1,
                maximum=10,
            ),
            retry_budget_s=seconds("MODEL_HTTP_RETRY_BUDGET_S", d.retry_budget_s),
            circuit_failures=parse_setting(
                "MODEL_CIRCUIT_FAILURES", env.get("MODEL_CIRCUIT_FAILURES"), int, d.circuit_failures, minimum=1
            ),
            circuit_cooldown_s=seconds("MODEL_CIRCUIT_COOLDOWN_S", d.circuit_cooldown_s),
            secrets_max_age_s=seconds("MODEL_SECRETS_MAX_AGE_S", d.secrets_max_age_s),
            bedrock_region=parse_setting("BEDROCK_REGION", env.get("BEDROCK_REGION") or env.get("AWS_REGION"), str, ""),
            bedrock_endpoint_url=parse_setting("BEDROCK_ENDPOINT_URL", env.get("BEDROCK_ENDPOINT_URL"), str, ""),
        )


@dataclass(frozen=True)
class RegistrationSettings:
    """How one provider's models enter the registry.

    Attributes:
        priority: Registry priority of every model it serves (higher first).
        structured: Whether its text models claim the ``structured_output`` capability.
    """

    priority: int
    structured: bool

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], prefix: str, *, priority: int, structured: bool
    ) -> RegistrationSettings:
        """``{prefix}_PRIORITY`` and ``{prefix}_STRUCTURED_OUTPUT`` from ``environ``, else the provider's defaults.

        Args:
            environ: The process environment (or a test's mapping).
            prefix: The provider's setting prefix (``"OPENAI"``).
            priority: Its default priority.
            structured: Its default for structured output.

        Raises:
            ConfigurationError: a value is malformed; the message names the variable.
        """
        return cls(
            priority=parse_setting(f"{prefix}_PRIORITY", environ.get(f"{prefix}_PRIORITY"), int, priority),
            structured=parse_setting(
                f"{prefix}_STRUCTURED_OUTPUT", environ.get(f"{prefix}_STRUCTURED_OUTPUT"), bool, structured
            ),
        )


class EnvironmentSettings:
    """Per-agent settings where there is no agent (the embeddings function, a bench): the environment alone.

    Satisfies ``core.types.model_runtime.ModelRuntime`` (no agent, no database), so a model
    handler called with ``runtime=None`` reads its keys and model names as elizaOS's
    ``getSetting`` would without a character: from the process environment.

    Args:
        environ: Where to read (``os.environ`` by default, read at each call like ``AgentRuntime``).
    """

    agent_id: None = None
    adapter: None = None

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def get_setting(self, key: str) -> Any:
        """The variable ``key`` (``"true"``/``"false"`` as booleans, as ``AgentRuntime.get_setting``), or ``None``."""
        return setting_value(self._environ.get(key))

    def setting(
        self,
        name: str,
        kind: type[SettingT],
        default: SettingT,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> SettingT:
        """The variable ``name`` read by ``parse_setting`` (raises ``ConfigurationError``)."""
        return parse_setting(name, self._environ.get(name), kind, default, minimum=minimum, maximum=maximum)
