"""What an agent is, built once per process: character, plugins, actions, providers, models.

An ``AgentRuntime`` is made per invocation from a blueprint (see ``core.runtime``); keeping
everything that does not change between invocations here is what makes that cheap.
"""

from __future__ import annotations

import importlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any
from uuid import UUID

from core.errors import ConfigurationError
from core.events import EventBus
from core.model_registry import ModelRegistry
from core.plugin import Action, Evaluator, Plugin, Provider, Route, SendHandler
from core.plugin_order import order_plugins
from core.services import ServiceRegistry
from core.state_cache import StateCache
from core.tasks.worker import TaskWorker
from core.uuid import string_to_uuid

if TYPE_CHECKING:  # annotations only: importing characters costs start-up time where none is needed
    from core.character import Character

logger = logging.getLogger(__name__)

#: elizaOS npm plugins whose job is built into this runtime: named in a character, they are skipped.
BUILT_IN_EQUIVALENTS = {"@elizaos/plugin-sql", "@elizaos/plugin-bootstrap"}


class ConnectionCache:
    """(entity, room) pairs already stored by this process, so a warm turn does no SQL for them.

    Bounded (least recently used out first): a warm container must not grow without limit.
    """

    def __init__(self, max_size: int = 10_000) -> None:
        self._seen: OrderedDict[tuple[UUID, UUID], None] = OrderedDict()
        self._max_size = max_size

    def __contains__(self, key: tuple[UUID, UUID]) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        return False

    def add(self, key: tuple[UUID, UUID]) -> None:
        self._seen[key] = None
        self._seen.move_to_end(key)
        while len(self._seen) > self._max_size:
            self._seen.popitem(last=False)


@dataclass
class AgentBlueprint:
    """One agent's process-wide definition.

    Attributes:
        agent_id: From the character's ``id``, else ``string_to_uuid(name)`` as elizaOS does.
        character: The validated character.
        plugins: Plugins in registration order.
        actions, providers, evaluators: Collected from the plugins.
        models: The agent's model registry.
        connections: Known (entity, room) pairs.
        task_workers: Task workers by task name (from the plugins and ``register_task_worker``).
        events: The agent's event handlers (from the plugins and ``register_event``).
        services: The agent's services (started by ``Orchestrator.start_agents``).
        routes: HTTP routes by (plugin name, method, path).
        state_cache: Provider results of recent messages (bounded).
        send_handlers: Send handlers by source (``register_send_handler``).
        started: Whether plugins' ``init``/``start`` and the services have run.
    """

    agent_id: UUID
    character: Character
    plugins: list[Plugin] = field(default_factory=list)
    actions: dict[str, Action] = field(default_factory=dict)
    providers: dict[str, Provider] = field(default_factory=dict)
    evaluators: list[Evaluator] = field(default_factory=list)
    models: ModelRegistry = field(default_factory=ModelRegistry)
    connections: ConnectionCache = field(default_factory=ConnectionCache)
    task_workers: dict[str, TaskWorker] = field(default_factory=dict)
    events: EventBus = field(default_factory=EventBus)
    services: ServiceRegistry = field(default_factory=ServiceRegistry)
    routes: dict[tuple[str, str, str], Route] = field(default_factory=dict)
    state_cache: StateCache = field(default_factory=StateCache)
    send_handlers: dict[str, SendHandler] = field(default_factory=dict)
    started: bool = False

    @classmethod
    def build(cls, character: Character, plugins: Iterable[Plugin]) -> AgentBlueprint:
        """Make a blueprint and register ``plugins``, dependencies first (``core.plugin_order``).

        Raises:
            ConfigurationError: a plugin has no name, a missing dependency, or a dependency cycle.
        """
        blueprint = cls(agent_id=character.id or string_to_uuid(character.name), character=character)
        for plugin in order_plugins(plugins):
            blueprint.register_plugin(plugin)
        return blueprint

    def register_plugin(self, plugin: Plugin) -> None:
        """Add a plugin's actions, providers, evaluators, models and task workers.

        Raises:
            ConfigurationError: the plugin has no name.
        """
        if not plugin.name:
            raise ConfigurationError("a plugin must have a name")
        if any(p.name == plugin.name for p in self.plugins):
            logger.warning("plugin %s is already registered for %s; skipped", plugin.name, self.character.name)
            return
        self.plugins.append(plugin)
        for action in plugin.actions:
            self.register_action(action, plugin.name)
        self.providers.update({p.name: p for p in plugin.providers})
        self.evaluators.extend(plugin.evaluators)
        for registration in plugin.models:
            self.models.register(plugin.name, registration)
        for worker in plugin.task_workers:
            self.register_task_worker(worker)
        for name, handlers in plugin.events.items():
            for handler in handlers:
                self.events.register(name, handler)
        for service_class in plugin.services:
            self.services.register(service_class)
        self.routes.update({(plugin.name, r.method, r.path): r for r in plugin.routes})

    def register_action(self, action: Action, plugin_name: str = "") -> bool:
        """Add an action; a name already registered keeps its first action, with a warning
        (elizaOS ``registerAction``: "Action ... already registered. Skipping").

        Returns:
            False when an action of that name was already registered.
        """
        if action.name in self.actions:
            logger.warning(
                "action %s of plugin %s is already registered for %s; the first one is kept",
                action.name,
                plugin_name or "?",
                self.character.name,
            )
            return False
        self.actions[action.name] = action
        return True

    def hooks(self, name: str) -> list[Any]:
        """The plugins' hooks called ``name`` (``"before_message"``...), in registration order."""
        return [hook for p in self.plugins if (hook := getattr(p, name)) is not None]

    def register_task_worker(self, worker: TaskWorker) -> None:
        """Add a task worker; one already registered under the name is replaced, with a warning."""
        if self.task_workers.get(worker.name, worker) is not worker:
            logger.warning("task worker %s of %s is replaced", worker.name, self.character.name)
        self.task_workers[worker.name] = worker


def character_plugins(character: Character) -> list[Plugin]:
    """Resolve the Python plugins a character names (``module`` or ``module:attribute``).

    elizaOS npm package names cannot run here: the built-in equivalents are skipped
    silently, any other is skipped with a warning.

    Raises:
        ConfigurationError: a Python import path cannot be resolved.
    """
    resolved = []
    for name in character.plugins:
        if name in BUILT_IN_EQUIVALENTS:
            continue
        if name.startswith("@") or "/" in name:
            logger.warning("%s names npm plugin %s, which cannot run in Python; skipped", character.name, name)
            continue
        resolved.append(resolve_plugin(name))
    return resolved


@cache
def resolve_plugin(path: str) -> Plugin:
    """Import a plugin once per process: ``"pkg.mod"`` (attribute ``plugin``) or ``"pkg.mod:attr"``.

    Raises:
        ConfigurationError: the module or attribute is missing, or is not a ``Plugin``.
    """
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"plugin {path!r}: cannot import {module_name!r} ({exc})") from exc
    plugin = getattr(module, attribute or "plugin", None)
    if not isinstance(plugin, Plugin):
        raise ConfigurationError(f"plugin {path!r}: {module_name}.{attribute or 'plugin'} is not a Plugin")
    return plugin
