"""Services: long-lived helpers a plugin offers (elizaOS ``Service`` in ``types/service.ts``).

A service holds state that must outlive one invocation (a client, a cache, a connection to
a platform). In an ephemeral runtime that means it belongs to the process: services are
started once per agent in the init phase (``Orchestrator.start_agents``), kept by the
agent's blueprint, and every ephemeral runtime of that agent sees the same instances.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)


class Service:
    """Base class of a service.

    Subclasses set ``service_type`` (e.g. ``"transcription"``) and may override ``start``
    (a classmethod building the instance, awaited once per agent) and ``stop``.

    Attributes:
        service_type: What kind of service it is; several services may share a type.
        capability_description: One line for people and models.
        runtime: The runtime that started it. It is ephemeral: use it for the agent's id,
            settings and adapter, never for per-invocation state.
    """

    service_type: ClassVar[str] = ""
    capability_description: ClassVar[str] = ""

    def __init__(self, runtime: AgentRuntime | None = None) -> None:
        self.runtime = runtime

    @classmethod
    async def start(cls, runtime: AgentRuntime) -> Service:
        """Build and start the service for one agent (elizaOS ``static start``)."""
        return cls(runtime)

    async def stop(self) -> None:
        """Release what the service holds; called by ``Orchestrator.stop_agents``."""


class ServiceRegistry:
    """The started services of one agent, by type, in registration order.

    ``load(type)`` is elizaOS's ``getServiceLoadPromise``: it waits until a service of that
    type has started (it never resolves for a type nobody registers, as in elizaOS, so
    callers should pass a timeout).
    """

    def __init__(self) -> None:
        self._classes: list[type[Service]] = []
        self._started: dict[str, list[Service]] = {}
        self._ready: dict[str, asyncio.Event] = {}

    def register(self, service_class: type[Service]) -> None:
        """Remember a service class to start.

        Raises:
            ValueError: the class has no ``service_type``.
        """
        if not service_class.service_type:
            raise ValueError(f"service {service_class.__name__} has no service_type")
        if service_class not in self._classes:
            self._classes.append(service_class)

    @property
    def registered_types(self) -> list[str]:
        """Types of the registered services (started or not), first registration first."""
        return list(dict.fromkeys(c.service_type for c in self._classes))

    async def start_all(self, runtime: AgentRuntime) -> int:
        """Start every registered service not started yet; a failing one is logged and skipped.

        Returns:
            How many services failed to start.
        """
        failures = 0
        for service_class in self._classes:
            if any(type(s) is service_class for s in self._started.get(service_class.service_type, [])):
                continue
            try:
                service = await service_class.start(runtime)
            except Exception:
                failures += 1
                logger.exception("service %s (%s) failed to start", service_class.__name__, service_class.service_type)
                continue
            self._started.setdefault(service_class.service_type, []).append(service)
            self._event(service_class.service_type).set()
        return failures

    async def stop_all(self) -> None:
        """Stop every started service (failures logged) and forget them."""
        started, self._started, self._ready = self._started, {}, {}
        for services in started.values():
            for service in services:
                try:
                    await service.stop()
                except Exception:
                    logger.exception("service %s failed to stop", type(service).__name__)

    def get(self, service_type: str) -> Service | None:
        """The first started service of this type, or ``None``."""
        services = self._started.get(service_type)
        return services[0] if services else None

    def get_all(self, service_type: str) -> list[Service]:
        """Every started service of this type."""
        return list(self._started.get(service_type, []))

    async def load(self, service_type: str) -> Service:
        """Wait until a service of this type has started, then return it."""
        await self._event(service_type).wait()
        service = self.get(service_type)
        assert service is not None
        return service

    def _event(self, service_type: str) -> asyncio.Event:
        return self._ready.setdefault(service_type, asyncio.Event())
