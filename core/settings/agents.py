"""Settings of agents: how a process follows the agents table, and what an agent's turn reads.

Process settings (environment, read once in the init phase by ``RefreshSettings.from_env``):

| variable | default | meaning |
|---|---|---|
| ``AGENT_REFRESH_S`` | ``5`` | seconds between reads of ``agents`` on the request path (0: every request; max a day) |
| ``AGENT_REFRESH_ON_MISS_S`` | ``1`` | least seconds between two reads caused by unknown agent names (up to a day) |
| ``AGENT_PLUGIN_ALLOWLIST`` | the deployment's | Python plugins a stored character may name (import paths, ``,``) |

Per-agent settings (``AgentRuntime.setting``: the character's secrets, its settings, the
runtime's settings, then the environment):

| setting | default | meaning |
|---|---|---|
| ``CONVERSATION_LENGTH`` | ``32`` | recent messages put into the prompt (1 to 1000) |
| ``PROVIDER_TIMEOUT_S`` | ``5`` | a provider slower than this (s) yields nothing (0.01 to 900) |
| ``MAX_PARSE_RETRIES`` | ``2`` | extra model calls when a structured answer cannot be parsed (0 to 10) |
| ``MAX_AGENT_HOPS`` | ``3`` | agent-to-agent messages in one chain (1 to 100) |

A malformed value is a ``ConfigurationError`` naming the setting (``core.settings.groups``).
"""

from __future__ import annotations

from pydantic import Field

from core.settings import DEFAULT_CONVERSATION_LENGTH
from core.settings.groups import AgentSetting, SettingsGroup

#: Longest refresh interval accepted (a day): beyond that, a stored agent would look lost.
MAX_REFRESH_S = 86_400.0


class RefreshSettings(SettingsGroup):
    """How often the agents table is re-read (see ``core.agent_refresh``).

    Attributes:
        interval_s: ``AGENT_REFRESH_S``: seconds between two periodic reads (0: every request).
        miss_interval_s: ``AGENT_REFRESH_ON_MISS_S``: least seconds between two reads caused by
            an unknown agent name or id.
    """

    interval_s: float = Field(default=5.0, ge=0, le=MAX_REFRESH_S, validation_alias="AGENT_REFRESH_S")
    miss_interval_s: float = Field(default=1.0, ge=0, le=MAX_REFRESH_S, validation_alias="AGENT_REFRESH_ON_MISS_S")


class PluginAllowSettings(SettingsGroup):
    """Which Python plugins an agent stored through the API or the CLI may name (``core.agent_admin``).

    Attributes:
        allowlist: ``AGENT_PLUGIN_ALLOWLIST``: comma-separated import paths (``pkg.mod`` or
            ``pkg.mod:attr``); unset, the deployment's own plugins (``MODEL_PLUGINS`` and those the
            ``CHARACTERS`` files name); blank is unset, as for every setting.
    """

    allowlist: str | None = Field(default=None, validation_alias="AGENT_PLUGIN_ALLOWLIST")

    def names(self) -> frozenset[str] | None:
        """The listed import paths, or ``None`` when the variable is unset (the deployment's own)."""
        if self.allowlist is None:
            return None
        return frozenset(part.strip() for part in self.allowlist.split(",") if part.strip())


#: Recent messages in the prompt (elizaOS ``CONVERSATION_LENGTH``); also sets the reflection rhythm.
CONVERSATION_LENGTH = AgentSetting("CONVERSATION_LENGTH", int, DEFAULT_CONVERSATION_LENGTH, minimum=1, maximum=1000)
#: Seconds each provider may take while the state is composed.
PROVIDER_TIMEOUT_S = AgentSetting("PROVIDER_TIMEOUT_S", float, 5.0, minimum=0.01, maximum=900)
#: Extra attempts when a structured model's answer cannot be parsed.
MAX_PARSE_RETRIES = AgentSetting("MAX_PARSE_RETRIES", int, 2, minimum=0, maximum=10)
#: Agent-to-agent messages in one chain; past it a message is refused (``AgentLoopError``).
MAX_AGENT_HOPS = AgentSetting("MAX_AGENT_HOPS", int, 3, minimum=1, maximum=100)
