"""What a model handler uses of the runtime that calls it, as structural types.

``core.runtime.AgentRuntime`` satisfies ``ModelRuntime`` as it is; a test or a bench can pass
any small object with these members. Kept apart from ``AgentRuntime`` so the model providers
do not import the runtime (and its dependencies) to be typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from core.settings import SettingT
    from core.types.log import Log


class ModelStore(Protocol):
    """The database calls a model handler makes: the response cache and the usage log."""

    async def log(self, entry: Log) -> UUID:
        """Write one log row; returns its id."""
        ...

    async def get_cache(self, agent_id: UUID, key: str) -> Any | None:
        """The JSON value cached under ``key`` for the agent, or ``None`` (missing or expired)."""
        ...

    async def set_cache(self, agent_id: UUID, key: str, value: Any, ttl_s: float | None = None) -> None:
        """Cache a JSON value for ``ttl_s`` seconds (``None``: no expiry)."""
        ...


class ModelRuntime(Protocol):
    """The runtime a model handler is called with (``handler(runtime, params)``).

    Attributes:
        agent_id: The calling agent (``None`` outside an agent: a bench, a test).
        adapter: The database, for the response cache and the usage log (``None``: neither).
    """

    @property
    def agent_id(self) -> UUID | None: ...

    @property
    def adapter(self) -> ModelStore | None: ...

    def get_setting(self, key: str) -> Any:
        """elizaOS ``getSetting``: the character's secrets and settings, then the process's; ``None`` when unset."""
        ...

    def setting(
        self,
        name: str,
        kind: type[SettingT],
        default: SettingT,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> SettingT:
        """``get_setting(name)`` read by ``core.settings.parse_setting`` (raises ``ConfigurationError``)."""
        ...
