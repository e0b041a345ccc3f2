"""The orchestrator: many agents in one process (elizaOS ``ElizaOS`` class).

In Lambda the orchestrator lives for the container's life; the runtimes it hands out live
for one invocation (``ephemeral=True``): built from a cached blueprint, they cost no SQL.
Lifecycle events (``agent:added``, ``agent:started``, ``agent:stopped``, ``agent:deleted``)
are emitted on ``Orchestrator.events`` with ``{"agentId", "name"}``; so are ``agent:updated``
(a stored character changed and its blueprint was rebuilt) and ``agent:removed`` (its row was
deleted or disabled: no longer served), which this runtime adds for ``core.agent_refresh``.

Agents stored while the process runs: ``refresher`` (a ``core.agent_refresh.AgentRefresher``,
set by the process that serves requests) re-reads the agents table from the request path,
rate limited; ``before_request`` is its hook.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload
from uuid import UUID

from core.blueprint import AgentBlueprint, character_plugins
from core.callbacks import call
from core.character import Character
from core.db.adapter import AgentRecord, DatabaseAdapter
from core.embeddings.queue import EmbeddingQueue
from core.errors import ConfigurationError, NotFoundError
from core.events import EventBus
from core.messaging.service import MessageResult, ResponseCallback, handle_message
from core.messaging.streaming import StreamCallback
from core.plugin import Plugin
from core.runtime import AgentRuntime
from core.settings.agents import MAX_AGENT_HOPS
from core.state_cache import DEFAULT_SIZE, DEFAULT_TTL_S, StateCache
from core.types import ChannelType, Content, Memory, MemoryMetadata, ModelType
from core.types.media import Media
from core.uuid import create_unique_uuid, string_to_uuid

if TYPE_CHECKING:
    from core.agent_refresh import AgentRefresher

logger = logging.getLogger(__name__)

#: Model types every agent needs to answer and remember (``validate_api_keys``).
REQUIRED_MODEL_TYPES = (ModelType.TEXT_LARGE, ModelType.TEXT_EMBEDDING)


class AgentLoopError(ValueError):
    """An agent-to-agent message went past ``MAX_AGENT_HOPS``: it is not delivered."""


@dataclass(frozen=True)
class IncomingMessage:
    """A message from outside, before ids are made unique to the agent.

    Attributes:
        text: What was said (non-empty).
        entity_id: The sender's id on the source platform (a default user when ``None``).
        room_id: The conversation's id (the sender's DM room with the agent when ``None``).
        world_id: The server/workspace, if any.
        source: Platform name (``"api"``; ``"agent"`` for agent-to-agent messages).
        user_name: The sender's display name.
        channel_type: DM by default; GROUP makes the agent decide whether to answer.
        hops: How many agent-to-agent messages led to this one (0 from a person).
        message_id: The memory's id, when the caller fixes it (an idempotent retry stores
            nothing twice: ``create_memories`` is keyed by id); a fresh one otherwise.
        attachments: Media the message carries (elizaOS ``content.attachments``).
    """

    text: str
    entity_id: UUID | None = None
    room_id: UUID | None = None
    world_id: UUID | None = None
    source: str = "api"
    user_name: str | None = None
    channel_type: ChannelType = ChannelType.DM
    hops: int = 0
    message_id: UUID | None = None
    attachments: Sequence[Media] = ()


@dataclass(frozen=True)
class AgentSpec:
    """An agent to add (elizaOS ``addAgents`` entry): a character with its own plugins and settings."""

    character: Character
    plugins: Sequence[Plugin] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)


class Orchestrator:
    """Holds agent blueprints and hands out runtimes.

    Args:
        adapter: The shared database adapter.
        embedding_queue: The process's SQS link (``None``: embeddings stay pending).
        plugins: Plugins every agent gets (bootstrap, model providers), before the character's.
        settings: Runtime settings (``get_setting``'s third source); ``STATE_CACHE_SIZE`` and
            ``STATE_CACHE_TTL_S`` bound each agent's state cache, ``MAX_AGENT_HOPS`` agent chains.
        dm_room_key: 32 bytes that make direct-message room ids unguessable
            (``ServerSecret.key("dm_room")``; see ``dm_room_id``). A container passes the
            deployment's; without one, a random key of this process is used, so DM rooms are
            private but do not outlive the process.
    """

    def __init__(
        self,
        adapter: DatabaseAdapter,
        *,
        embedding_queue: EmbeddingQueue | None = None,
        plugins: Sequence[Plugin] = (),
        settings: Mapping[str, Any] | None = None,
        dm_room_key: bytes | None = None,
    ) -> None:
        self.adapter = adapter
        self._dm_room_key = dm_room_key or os.urandom(32)
        self.embedding_queue = embedding_queue
        self.plugins = list(plugins)
        self.settings = dict(settings or {})
        self.events = EventBus()
        self._agents: dict[UUID, AgentBlueprint] = {}
        self._specs: dict[UUID, AgentSpec] = {}
        self._settings: dict[UUID, dict[str, Any]] = {}
        self._adapters: dict[UUID, DatabaseAdapter] = {}
        self._stored: set[UUID] = set()  # ids known to have a row: a row that goes away stops the agent
        self.refresher: AgentRefresher | None = None

    # -- adding and finding agents ----------------------------------------------------------

    @overload
    async def add_agents(
        self,
        specs: Iterable[Character | AgentSpec],
        *,
        ephemeral: bool = True,
        skip_migrations: bool = True,
        auto_start: bool = False,
        return_runtimes: Literal[False] = False,
        database_adapter: DatabaseAdapter | None = None,
        persist: bool = True,
    ) -> list[UUID]: ...

    @overload
    async def add_agents(
        self,
        specs: Iterable[Character | AgentSpec],
        *,
        ephemeral: bool = True,
        skip_migrations: bool = True,
        auto_start: bool = False,
        return_runtimes: Literal[True],
        database_adapter: DatabaseAdapter | None = None,
        persist: bool = True,
    ) -> list[AgentRuntime]: ...

    async def add_agents(
        self,
        specs: Iterable[Character | AgentSpec],
        *,
        ephemeral: bool = True,
        skip_migrations: bool = True,
        auto_start: bool = False,
        return_runtimes: bool = False,
        database_adapter: DatabaseAdapter | None = None,
        persist: bool = True,
    ) -> list[UUID] | list[AgentRuntime]:
        """Register agents (elizaOS ``addAgents``).

        Args:
            specs: Validated characters, or ``AgentSpec``s with their own plugins and settings.
            ephemeral: Runtimes are built per call, never kept (the only mode in Lambda).
            skip_migrations: Never migrate here; the migrate command owns the schema. Passing
                False is refused rather than migrating on a request path.
            auto_start: Also ``start_agents`` them (plugins' ``init``/``start``, services).
            return_runtimes: Return one fresh runtime per agent instead of ids.
            database_adapter: The adapter these agents use (the orchestrator's by default).
            persist: Upsert the agents' rows (one round trip for all; done in the init phase).

        Returns:
            Agent ids, or runtimes when ``return_runtimes``.

        Raises:
            ConfigurationError: ``skip_migrations=False``, two agents share a name, or a plugin
                cannot be resolved, lacks a dependency or is in a dependency cycle.
        """
        if not skip_migrations:
            raise ConfigurationError("add_agents never migrates: run the migrate command instead")
        if not ephemeral:
            logger.info("ephemeral=False has no effect here: runtimes are always built per invocation")
        agent_specs = [s if isinstance(s, AgentSpec) else AgentSpec(s) for s in specs]
        blueprints = [self._blueprint(spec) for spec in agent_specs]
        self._check_unique_names(blueprints)
        adapter = database_adapter or self.adapter
        if persist:
            await adapter.upsert_agents(
                [
                    AgentRecord(b.agent_id, b.character.name, b.character.model_dump(mode="json", by_alias=True))
                    for b in blueprints
                ]
            )
        for spec, blueprint in zip(agent_specs, blueprints, strict=True):
            self._agents[blueprint.agent_id] = blueprint
            self._specs[blueprint.agent_id] = spec
            self._settings[blueprint.agent_id] = {**self.settings, **spec.settings}
            if persist:
                self._stored.add(blueprint.agent_id)
            if database_adapter is not None:
                self._adapters[blueprint.agent_id] = database_adapter
            await self._lifecycle("agent:added", blueprint)
        ids = [b.agent_id for b in blueprints]
        if auto_start:
            await self.start_agents(ids)
        return [self.runtime(i) for i in ids] if return_runtimes else ids

    def _blueprint(self, spec: AgentSpec) -> AgentBlueprint:
        plugins = [*self.plugins, *character_plugins(spec.character), *spec.plugins]
        blueprint = AgentBlueprint.build(spec.character, plugins)
        settings = {**self.settings, **spec.settings}
        blueprint.state_cache = StateCache(
            int(settings.get("STATE_CACHE_SIZE") or DEFAULT_SIZE),
            float(settings.get("STATE_CACHE_TTL_S") or DEFAULT_TTL_S),
        )
        return blueprint

    def _check_unique_names(self, new: list[AgentBlueprint], *, ignore: UUID | None = None) -> None:
        seen = {b.character.name.lower(): b.agent_id for b in self._agents.values() if b.agent_id != ignore}
        for blueprint in new:
            other = seen.setdefault(blueprint.character.name.lower(), blueprint.agent_id)
            if other != blueprint.agent_id:
                raise ConfigurationError(f"two agents are named {blueprint.character.name!r}")

    def has_agent(self, ref: str | UUID) -> bool:
        """Whether ``ref`` (an id, or a name in any case) names a registered agent."""
        try:
            return UUID(str(ref)) in self._agents
        except ValueError:
            return self.get_agent_by_name(str(ref)) is not None

    def get_agents(self) -> list[AgentBlueprint]:
        """Every registered agent, by name."""
        return sorted(self._agents.values(), key=lambda b: b.character.name.lower())

    def get_agent(self, ref: str | UUID) -> AgentBlueprint:
        """An agent by id, or by name case-insensitively (the API's ``{agent}``).

        Raises:
            NotFoundError: no such agent.
        """
        try:
            blueprint = self._agents.get(UUID(str(ref)))
        except ValueError:
            blueprint = self.get_agent_by_name(str(ref))
        if blueprint is None:
            raise NotFoundError(f"agent {ref} not found")
        return blueprint

    def get_agent_by_name(self, name: str) -> AgentBlueprint | None:
        """An agent by name, case-insensitively; ``None`` when unknown."""
        wanted = name.lower()
        return next((b for b in self._agents.values() if b.character.name.lower() == wanted), None)

    def get_agents_by_ids(self, ids: Iterable[UUID]) -> list[AgentBlueprint]:
        """The known agents among ``ids``, in that order (unknown ids are skipped)."""
        return [self._agents[i] for i in ids if i in self._agents]

    def get_agents_by_names(self, names: Iterable[str]) -> list[AgentBlueprint]:
        """The known agents among ``names`` (any case), in that order (unknown names are skipped)."""
        return [b for n in names if (b := self.get_agent_by_name(n)) is not None]

    def runtime(self, ref: str | UUID) -> AgentRuntime:
        """A fresh ephemeral runtime for one invocation: no SQL, no model call.

        Raises:
            NotFoundError: no such agent.
        """
        blueprint = self.get_agent(ref)
        runtime = AgentRuntime(
            blueprint,
            self._adapters.get(blueprint.agent_id, self.adapter),
            self.embedding_queue,
            self._settings.get(blueprint.agent_id, self.settings),
        )
        runtime.orchestrator = self
        return runtime

    # -- lifecycle --------------------------------------------------------------------------

    async def start_agents(self, ids: Iterable[UUID] | None = None) -> None:
        """Start agents (all by default) once per process: each plugin's ``init(config, runtime)``
        in registration order, then the services, then each plugin's ``start``.

        A plugin whose ``init`` raises is logged and the agent still starts (elizaOS stops the
        whole process); an agent already started is left alone.
        """
        for blueprint in self._select(ids):
            if blueprint.started:
                continue
            runtime = self.runtime(blueprint.agent_id)
            for plugin in blueprint.plugins:
                if plugin.init is not None:
                    await _isolated(f"plugin {plugin.name} init", plugin.init(plugin.config, runtime))
            await blueprint.services.start_all(runtime)
            for plugin in blueprint.plugins:
                if plugin.start is not None:
                    await _isolated(f"plugin {plugin.name} start", plugin.start(runtime))
            blueprint.started = True
            await self._lifecycle("agent:started", blueprint)

    async def stop_agents(self, ids: Iterable[UUID] | None = None) -> None:
        """Stop agents (all by default): each plugin's ``stop``, then their services."""
        for blueprint in self._select(ids):
            if not blueprint.started:
                continue
            runtime = self.runtime(blueprint.agent_id)
            for plugin in reversed(blueprint.plugins):
                if plugin.stop is not None:
                    await _isolated(f"plugin {plugin.name} stop", plugin.stop(runtime))
            await blueprint.services.stop_all()
            blueprint.started = False
            await self._lifecycle("agent:stopped", blueprint)

    async def delete_agents(self, ids: Iterable[UUID]) -> int:
        """Stop agents, delete their rows (and, by cascade, their data) and forget them.

        Returns:
            How many agents were deleted.
        """
        chosen = self._select(list(ids))
        await self.stop_agents([b.agent_id for b in chosen])
        for blueprint in chosen:
            await self._adapters.get(blueprint.agent_id, self.adapter).delete_agent(blueprint.agent_id)
            self._forget(blueprint.agent_id)
            await self._lifecycle("agent:deleted", blueprint)
        return len(chosen)

    def _forget(self, agent_id: UUID) -> None:
        del self._agents[agent_id]
        for registry in (self._specs, self._settings, self._adapters):
            registry.pop(agent_id, None)
        self._stored.discard(agent_id)

    # -- agents stored while the process runs (``core.agent_refresh``) ------------------------

    async def before_request(self, wanted: str | None = None) -> None:
        """Request-path hook: let the ``refresher`` re-read the agents table when due (no SQL otherwise).

        Args:
            wanted: The agent id or name the request names, if any (an unknown one may
                trigger a read, rate limited).
        """
        if self.refresher is not None:
            await self.refresher.before_request(wanted)

    def stored_agent_ids(self) -> list[UUID]:
        """Registered agents known to have a row in ``agents`` (added with ``persist``, or seen there)."""
        return [i for i in self._agents if i in self._stored]

    def mark_stored(self, ids: Iterable[UUID]) -> None:
        """Record that these agents have a row (those registered: a row gone later removes them)."""
        self._stored.update(i for i in ids if i in self._agents)

    async def put_stored_agent(self, character: Character) -> None:
        """Serve a character read from the agents table: register and start it, or rebuild a changed one.

        A registered agent keeps the plugins and settings it was added with; only its character
        changes (an unchanged character does nothing). Its blueprint is rebuilt here, once, so
        building a runtime per invocation still costs no SQL.

        Args:
            character: The stored character, with the row's id.

        Raises:
            ConfigurationError: a plugin it names cannot be resolved, or another agent of this
                process (one without a row) has its name.
        """
        agent_id = character.id or string_to_uuid(character.name)
        spec = self._specs.get(agent_id)
        if spec is None:
            await self.add_agents([character], persist=False, auto_start=True)
            return
        current = self._agents[agent_id].character
        if current.model_dump(mode="json", by_alias=True) == character.model_dump(mode="json", by_alias=True):
            return
        await self._replace(agent_id, AgentSpec(character, spec.plugins, spec.settings))

    async def _replace(self, agent_id: UUID, spec: AgentSpec) -> None:
        old = self._agents[agent_id]
        blueprint = self._blueprint(spec)
        self._check_unique_names([blueprint], ignore=old.agent_id)
        started = old.started
        await self.stop_agents([old.agent_id])
        self._agents[blueprint.agent_id] = blueprint
        self._specs[blueprint.agent_id] = spec
        await self._lifecycle("agent:updated", blueprint)
        if started:
            await self.start_agents([blueprint.agent_id])

    async def remove_agents(self, ids: Iterable[UUID]) -> int:
        """Stop serving agents whose rows are gone or disabled (their data is not touched).

        Returns:
            How many agents were removed.
        """
        chosen = self._select(list(ids))
        await self.stop_agents([b.agent_id for b in chosen])
        for blueprint in chosen:
            self._forget(blueprint.agent_id)
            await self._lifecycle("agent:removed", blueprint)
        return len(chosen)

    def _select(self, ids: Iterable[UUID] | None) -> list[AgentBlueprint]:
        return list(self._agents.values()) if ids is None else self.get_agents_by_ids(ids)

    async def _lifecycle(self, name: str, blueprint: AgentBlueprint) -> None:
        await self.events.emit(name, {"agentId": blueprint.agent_id, "name": blueprint.character.name})

    # -- health -----------------------------------------------------------------------------

    async def health_check(self) -> dict[str, Any]:
        """Database reachability and each agent's state (elizaOS ``healthCheck``).

        Every agent is covered, not only those with a live runtime: in this runtime all
        runtimes are ephemeral and built from these blueprints.

        Returns:
            ``{"database": bool, "agents": {id: {"name", "started", "services", "healthy"}}}``;
            an agent is healthy when the database answers and its required model types
            are served.
        """
        try:
            await self.adapter.get_agents()
            database = True
        except Exception:
            logger.warning("health check: the database did not answer", exc_info=True)
            database = False
        keys = self.validate_api_keys()
        agents = {
            str(b.agent_id): {
                "name": b.character.name,
                "started": b.started,
                "services": b.services.registered_types,
                "healthy": database and keys[str(b.agent_id)]["ok"],
            }
            for b in self.get_agents()
        }
        return {"database": database, "agents": agents}

    def validate_api_keys(self) -> dict[str, dict[str, Any]]:
        """Whether each agent can make the model calls it needs (elizaOS ``validateApiKeys``).

        Model provider plugins register no handler without their credentials, so an agent
        whose ``REQUIRED_MODEL_TYPES`` are not all served is missing a key or a plugin.

        Returns:
            ``{agent id: {"ok": bool, "missing": [model types]}}`` for every agent.
        """
        report = {}
        for blueprint in self.get_agents():
            missing = [t.value for t in REQUIRED_MODEL_TYPES if not blueprint.models.has(t)]
            report[str(blueprint.agent_id)] = {"ok": not missing, "missing": missing}
        return report

    # -- messages ---------------------------------------------------------------------------

    @overload
    async def handle_message(
        self,
        agent: str | UUID | AgentRuntime,
        incoming: IncomingMessage,
        *,
        on_response: None = None,
        on_stream_chunk: StreamCallback | None = None,
        on_error: Callable[[Exception], Any] | None = None,
        on_complete: Callable[[MessageResult], Any] | None = None,
    ) -> MessageResult: ...

    @overload
    async def handle_message(
        self,
        agent: str | UUID | AgentRuntime,
        incoming: IncomingMessage,
        *,
        on_response: ResponseCallback,
        on_stream_chunk: StreamCallback | None = None,
        on_error: Callable[[Exception], Any] | None = None,
        on_complete: Callable[[MessageResult], Any] | None = None,
    ) -> MessageResult | None: ...

    async def handle_message(
        self,
        agent: str | UUID | AgentRuntime,
        incoming: IncomingMessage,
        *,
        on_response: ResponseCallback | None = None,
        on_stream_chunk: StreamCallback | None = None,
        on_error: Callable[[Exception], Any] | None = None,
        on_complete: Callable[[MessageResult], Any] | None = None,
    ) -> MessageResult | None:
        """Run one turn (elizaOS ``handleMessage``).

        Sync mode (no ``on_response``): returns the result (never ``None``), raises on failure.
        Callback mode (``on_response`` given): each reply goes to ``on_response`` as soon as it
        is stored (before evaluators run), a failure goes to ``on_error`` instead of being
        raised and ``None`` is returned, and ``on_complete`` gets the result. The overloads
        above carry that to the type checker: only a callback-mode caller has to test for ``None``.

        Ids from outside are made unique to the agent (``create_unique_uuid``), so two agents
        never share an entity or room row. Without ``room_id`` the sender's DM room with the
        agent is used; without ``entity_id`` a default API user.

        Raises:
            NotFoundError: unknown agent.
            AgentLoopError: ``incoming.hops`` is over ``MAX_AGENT_HOPS``.
            ModelError: the model failed (the user's message stays stored).
        """
        callback_mode = on_response is not None
        try:
            runtime = agent if isinstance(agent, AgentRuntime) else self.runtime(agent)
            self._check_hops(runtime, incoming)
            message = await self._receive(runtime, incoming)
            result = await handle_message(
                runtime, message, incoming.channel_type, on_stream_chunk=on_stream_chunk, on_response=on_response
            )
        except Exception as exc:
            if not callback_mode:
                raise
            logger.exception("message for %s failed", agent)
            if on_error is not None:
                await call(on_error, exc)
            return None
        if on_complete is not None:
            await call(on_complete, result)
        return result

    async def handle_messages(
        self, messages: Sequence[tuple[str | UUID | AgentRuntime, IncomingMessage]]
    ) -> list[MessageResult | Exception]:
        """Run several turns concurrently (elizaOS ``handleMessages``).

        Returns:
            One entry per message, in order: its result, or the exception it raised (one
            failure never sinks the others).
        """
        outcomes = await asyncio.gather(*(self.handle_message(a, m) for a, m in messages), return_exceptions=True)
        results: list[MessageResult | Exception] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like are not per-message failures
            results.append(outcome)
        return results

    async def send_agent_message(
        self,
        sender: AgentRuntime,
        to: str | UUID,
        text: str,
        *,
        replying_to: Memory | None = None,
        room_id: UUID | None = None,
    ) -> MessageResult:
        """Deliver a message from one agent of this deployment to another (e.g. from an action).

        The hop count grows by one on each agent-to-agent message of a chain (carried in the
        message's content as ``hops``); past ``MAX_AGENT_HOPS`` the message is refused, so two
        agents cannot answer each other forever.

        Args:
            sender: The sending agent's runtime.
            to: The receiving agent's id or name.
            text: What to say.
            replying_to: The message the sender is handling (its hop count is continued).
            room_id: The conversation (the two agents' own room by default).

        Raises:
            NotFoundError: unknown receiving agent.
            AgentLoopError: the chain is too long.
        """
        hops = int(getattr(replying_to.content, "hops", 0) or 0) + 1 if replying_to else 1
        incoming = IncomingMessage(
            text=text,
            entity_id=sender.agent_id,
            room_id=room_id,
            source="agent",
            user_name=sender.character.name,
            hops=hops,
        )
        return await self.handle_message(to, incoming)

    def _check_hops(self, runtime: AgentRuntime, incoming: IncomingMessage) -> None:
        limit = MAX_AGENT_HOPS.read(runtime)
        if incoming.hops > limit:
            raise AgentLoopError(f"agent-to-agent chain of {incoming.hops} hops is over MAX_AGENT_HOPS={limit}")

    def dm_room_id(self, agent_id: UUID, entity_key: UUID) -> UUID:
        """The direct-message room of an outside entity with an agent.

        elizaOS derives it from the two ids alone; those are public here (an agent's id is in
        ``GET /agents``, a user's follows from its token), so the id is keyed by a secret only
        the server holds: ``create_unique_uuid(agent, HMAC-SHA256(dm_room_key, "dm:" + entity))``.

        Args:
            agent_id: The agent.
            entity_key: The entity's id outside any agent (``IncomingMessage.entity_id``).
        """
        tag = hmac.new(self._dm_room_key, f"dm:{entity_key}".encode(), hashlib.sha256).hexdigest()
        return create_unique_uuid(agent_id, tag)

    async def _receive(self, runtime: AgentRuntime, incoming: IncomingMessage) -> Memory:
        external_entity = incoming.entity_id or create_unique_uuid(runtime.agent_id, "api-user")
        entity_id = create_unique_uuid(runtime.agent_id, external_entity)
        room_id = incoming.room_id or self.dm_room_id(runtime.agent_id, external_entity)
        await runtime.ensure_connection(
            entity_id=entity_id,
            room_id=room_id,
            world_id=incoming.world_id,
            user_name=incoming.user_name,
            source=incoming.source,
            channel_type=incoming.channel_type,
        )
        # Content is open-ended: extra keys are kept.
        extra: dict[str, Any] = {"hops": incoming.hops} if incoming.hops else {}
        if incoming.attachments:
            extra["attachments"] = list(incoming.attachments)
        content = Content(text=incoming.text, source=incoming.source, channel_type=incoming.channel_type.value, **extra)
        fixed_id: dict[str, Any] = {"id": incoming.message_id} if incoming.message_id else {}
        return Memory(
            **fixed_id,
            entity_id=entity_id,
            agent_id=runtime.agent_id,
            room_id=room_id,
            world_id=incoming.world_id,
            content=content,
            metadata=MemoryMetadata(source=incoming.source),
        )


async def _isolated(what: str, call: Any) -> None:
    try:
        await call
    except Exception:
        logger.exception("%s failed; the agent goes on without it", what)
