"""Plugin building blocks: Plugin, Action, Provider, Evaluator (elizaOS ``types/plugin.ts`` and friends).

Handlers are async callables. The runtime passes itself as the first argument, as elizaOS does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from core.events import EventHandler
from core.tasks.worker import TaskWorker
from core.types import Content, Memory, ModelType, State

if TYPE_CHECKING:
    from core.messaging.service import MessageResult
    from core.runtime import AgentRuntime
    from core.services import Service

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


def normalise_action_result(raw: Any) -> ActionResult:
    """An action handler's return value as an ``ActionResult`` (elizaOS accepts several shapes).

    ``None`` or ``True`` → success; ``False`` → failure; a mapping → its fields (unknown keys
    go to ``data``); an ``ActionResult`` as is; anything else → success with it in ``data["value"]``.
    """
    if isinstance(raw, ActionResult):
        return raw
    if raw is None or raw is True:
        return ActionResult()
    if raw is False:
        return ActionResult(success=False)
    if isinstance(raw, Mapping):
        known = {k: raw[k] for k in ("success", "text", "values", "data", "error") if k in raw}
        extra = {k: v for k, v in raw.items() if k not in known}
        data = {**dict(known.pop("data", None) or {}), **extra}
        return ActionResult(**{"values": {}, **known, "data": data})
    return ActionResult(data={"value": raw})


@dataclass(frozen=True)
class TargetInfo:
    """Where ``send_message_to_target`` delivers (elizaOS ``TargetInfo``).

    Attributes:
        source: Platform whose send handler is used (``"discord"``).
        room_id, entity_id: Our ids of the room / person, when known.
        channel_id, server_id, thread_id: The platform's own ids, when known.
    """

    source: str
    room_id: UUID | None = None
    entity_id: UUID | None = None
    channel_id: str | None = None
    server_id: str | None = None
    thread_id: str | None = None


#: ``handler(runtime, target, content)``: delivers content on one platform.
SendHandler = Callable[["AgentRuntime", TargetInfo, Content], Awaitable[None]]


@dataclass(frozen=True)
class Action:
    """Something the agent can do in answer to a message (elizaOS ``Action``).

    Attributes:
        name: Upper-case name the model picks (``"REPLY"``).
        description: Shown to the model in the ACTIONS provider.
        handler: ``handler(runtime, message, state, options, callback, responses) -> ActionResult | None``.
        validate: ``validate(runtime, message, state) -> bool``; the action is offered only if true.
        similes: Other names the model may use for it.
        examples: Short conversations showing when to use it (elizaOS ``ActionExample[][]``):
            each a sequence of ``{"name": "{{name1}}" | "{{agentName}}", "content": {"text",
            "actions"}}``; a few go into the message prompt (``core.messaging.examples``).
    """

    name: str
    description: str
    handler: Callable[..., Awaitable[ActionResult | None]]
    validate: Callable[[AgentRuntime, Memory, State | None], Awaitable[bool]] | None = None
    similes: tuple[str, ...] = ()
    examples: tuple[Sequence[Mapping[str, Any]], ...] = ()


@dataclass(frozen=True)
class Evaluator:
    """Runs after a response (elizaOS ``Evaluator``): reflection, fact extraction...

    ``examples`` are elizaOS ``EvaluationExample``s: ``{"prompt": str, "messages": [{"name",
    "content": {"text"}}], "outcome": str}``, shown by the EVALUATORS provider.
    """

    name: str
    description: str
    handler: Callable[..., Awaitable[None]]
    validate: Callable[[AgentRuntime, Memory, State | None], Awaitable[bool]] | None = None
    always_run: bool = False
    similes: tuple[str, ...] = ()
    examples: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class RouteRequest:
    """What a plugin route handler receives.

    Attributes:
        method: HTTP method, upper case.
        path: The part of the path after ``/agents/{agent}/plugins/{plugin}`` (``"/status"``).
        query: Query string parameters (last value wins).
        body: The JSON body (``None`` when absent).
        headers: Request headers, lower-case names.
    """

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """An HTTP route a plugin serves (elizaOS ``Route``).

    Served by the messages function at ``/agents/{agent}/plugins/{plugin}{path}`` through
    the one router, with its validation and error conventions.

    Attributes:
        method: ``GET``, ``POST``, ``PUT``, ``PATCH`` or ``DELETE``.
        path: Starts with ``/``; matched exactly (``"/status"``).
        handler: ``handler(runtime, request) -> JSON-serialisable value``; raising
            ``core.errors.NotFoundError`` gives 404, ``pydantic.ValidationError`` 422.
        body_model: Optional pydantic model the JSON body is validated against (422 naming
            the fields otherwise); the handler then gets the model instance as ``request.body``.
        status: HTTP status of a successful answer.
        public: Any authenticated caller may call it; by default only admins may (elizaOS
            guards plugin routes with the server's API key, which is an operator's).
    """

    method: str
    path: str
    handler: Callable[[AgentRuntime, RouteRequest], Awaitable[Any]]
    body_model: type | None = None
    status: int = 200
    public: bool = False

    def __post_init__(self) -> None:
        if self.method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
            raise ValueError(f"route {self.path}: unsupported method {self.method!r}")
        if not self.path.startswith("/"):
            raise ValueError(f"route path {self.path!r} must start with '/'")
        object.__setattr__(self, "method", self.method.upper())


@dataclass(frozen=True)
class Reject:
    """Returned by a ``before_message`` hook to refuse a message: it is not stored or answered."""

    reason: str


#: ``before_message(runtime, message) -> Memory | Reject | None``: a Memory replaces the message.
BeforeMessageHook = Callable[["AgentRuntime", Memory], Awaitable["Memory | Reject | None"]]
#: ``after_message(runtime, message, result)``: sees the message and what the turn produced.
AfterMessageHook = Callable[["AgentRuntime", Memory, "MessageResult"], Awaitable[None]]
#: ``before_action(runtime, action, message, state) -> bool | None``: False vetoes the action.
BeforeActionHook = Callable[["AgentRuntime", Action, Memory, State], Awaitable["bool | None"]]
#: ``after_action(runtime, action, message, result)``: sees the action's normalised result.
AfterActionHook = Callable[["AgentRuntime", Action, Memory, ActionResult], Awaitable[None]]


@dataclass(frozen=True)
class ModelRegistration:
    """One model handler a plugin offers.

    Attributes:
        model_type: What kind of call it serves.
        handler: The async handler, ``handler(runtime, params)``. Text handlers may stream
            through ``params["on_stream_chunk"]`` and should still return the full text.
        priority: Higher wins when several providers serve a type; equal priorities go in
            registration order.
        capabilities: What the model can be trusted with (any iterable of names; stored as
            a frozenset). ``"structured_output"`` means it reliably follows a response
            format (the XML/JSON with actions) and honours ``params["schema"]`` (a JSON
            schema) natively, so ``get_object`` passes the schema instead of prompting for
            JSON; a tiny local model does not, so the pipeline asks it for a plain reply.
    """

    model_type: ModelType
    handler: ModelHandlerFn
    priority: int = 0
    capabilities: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if isinstance(self.capabilities, str):  # frozenset("structured_output") would be its letters
            object.__setattr__(self, "capabilities", frozenset({self.capabilities}))
        elif not isinstance(self.capabilities, frozenset):
            object.__setattr__(self, "capabilities", frozenset(self.capabilities))


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
        services: ``Service`` classes, started once per agent per process (init phase).
        routes: HTTP routes served under ``/agents/{agent}/plugins/{name}``.
        before_message, after_message, before_action, after_action: Lifecycle hooks of the
            message pipeline (see the ``*Hook`` aliases); a failing hook is logged and ignored.
        start, stop: ``start(runtime)`` after ``init`` and the services when the agent starts;
            ``stop(runtime)`` when it stops.
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
    services: tuple[type[Service], ...] = ()
    routes: tuple[Route, ...] = ()
    before_message: BeforeMessageHook | None = None
    after_message: AfterMessageHook | None = None
    before_action: BeforeActionHook | None = None
    after_action: AfterActionHook | None = None
    start: Callable[[AgentRuntime], Awaitable[None]] | None = None
    stop: Callable[[AgentRuntime], Awaitable[None]] | None = None
