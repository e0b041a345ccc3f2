"""Plugin building blocks: Plugin, Action, Provider, Evaluator (elizaOS ``types/plugin.ts`` and friends).

Handlers are async callables. The runtime passes itself as the first argument, as elizaOS does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.events import EventHandler
from core.tasks.worker import TaskWorker
from core.types import Content, Memory, ModelType, State

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

#: Called by an action to deliver content (e.g. the reply) to the user.
HandlerCallback = Callable[[Content], Awaitable[list[Memory]]]
#: ``handler(runtime, params) -> result``; params as elizaOS model params (``prompt``, ``system``...).
ModelHandlerFn = Callable[["AgentRuntime", Mapping[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class ProviderResult:
    """What a provider adds to the state: ``text`` for the prompt, ``values`` for templates, ``data``."""

    text: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Provider:
    """Supplies context for a turn (elizaOS ``Provider``).

    Attributes:
        name: Upper-case name (``"RECENT_MESSAGES"``).
        get: ``get(runtime, message, state) -> ProviderResult``.
        position: Order of the text in the prompt (lower first).
        dynamic: Only run when asked for by name.
        private: Never run unless named explicitly.
        description: For the model and for people.
    """

    name: str
    get: Callable[[AgentRuntime, Memory, State], Awaitable[ProviderResult]]
    position: int = 0
    dynamic: bool = False
    private: bool = False
    description: str = ""


@dataclass(frozen=True)
class ActionResult:
    """Normalised outcome of an action handler (elizaOS ``ActionResult``)."""

    success: bool = True
    text: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Action:
    """Something the agent can do in answer to a message (elizaOS ``Action``).

    Attributes:
        name: Upper-case name the model picks (``"REPLY"``).
        description: Shown to the model in the ACTIONS provider.
        handler: ``handler(runtime, message, state, options, callback, responses) -> ActionResult | None``.
        validate: ``validate(runtime, message, state) -> bool``; the action is offered only if true.
        similes: Other names the model may use for it.
    """

    name: str
    description: str
    handler: Callable[..., Awaitable[ActionResult | None]]
    validate: Callable[[AgentRuntime, Memory, State | None], Awaitable[bool]] | None = None
    similes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Evaluator:
    """Runs after a response (elizaOS ``Evaluator``): reflection, fact extraction..."""

    name: str
    description: str
    handler: Callable[..., Awaitable[None]]
    validate: Callable[[AgentRuntime, Memory, State | None], Awaitable[bool]] | None = None
    always_run: bool = False


@dataclass(frozen=True)
class ModelRegistration:
    """One model handler a plugin offers.

    Attributes:
        model_type: What kind of call it serves.
        handler: The async handler.
        priority: Higher wins when several providers serve a type.
        capabilities: What the model can be trusted with. ``"structured_output"`` means it
            reliably follows the response format (XML/JSON with actions); a tiny local model
            does not, so the pipeline asks it for a plain reply instead.
    """

    model_type: ModelType
    handler: ModelHandlerFn
    priority: int = 0
    capabilities: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Plugin:
    """A bundle of actions, providers, evaluators and models (elizaOS ``Plugin``).

    Attributes:
        name: Unique plugin name.
        description: What it is for.
        actions, providers, evaluators: What it contributes.
        models: Model handlers it registers; ``name`` is their provider name.
        init: Optional ``init(config, runtime)`` run when the plugin is registered.
        config: Settings the plugin reads.
        migrations: Folder of the plugin's own ``NNNN_name.sql`` migrations (elizaOS
            ``schema``), applied by the migrate command after the core schema, never at runtime.
        events: Handlers by event name (``core.events.EventType``), ``handler(payload)``.
        dependencies: Names of plugins that must be registered before this one.
        priority: Among plugins free to go, higher registers first (elizaOS ``priority``).
        task_workers: Workers for scheduled tasks (elizaOS ``registerTaskWorker``), run by
            ``functions.tasks`` for every agent that has the plugin.
    """

    name: str
    description: str = ""
    actions: tuple[Action, ...] = ()
    providers: tuple[Provider, ...] = ()
    evaluators: tuple[Evaluator, ...] = ()
    models: tuple[ModelRegistration, ...] = ()
    init: Callable[[Mapping[str, Any], AgentRuntime], Awaitable[None]] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    migrations: str | None = None
    events: Mapping[str, tuple[EventHandler, ...]] = field(default_factory=dict)
    task_workers: tuple[TaskWorker, ...] = ()
    dependencies: tuple[str, ...] = ()
    priority: int = 0
