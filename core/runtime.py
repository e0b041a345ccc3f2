"""``AgentRuntime``: one agent, for one invocation.

Built from a process-wide ``AgentBlueprint`` and the shared adapter; construction does no
SQL and no model call (docs/architecture.md "Stateless core, warm container"). Everything it buffers
(embedding requests) is flushed by the message service before the invocation ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from contextvars import Token
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from core.blueprint import AgentBlueprint
from core.db.pipelined import pipelined
from core.errors import ModelNotFoundError, NotFoundError
from core.events import EventHandler, EventType
from core.log_context import bind_log_keys, reset_log_keys
from core.plugin import (
    Action,
    ActionResult,
    Evaluator,
    HandlerCallback,
    ModelRegistration,
    Plugin,
    Provider,
    ProviderResult,
    SendHandler,
    TargetInfo,
    normalise_action_result,
)
from core.runtime_store import AgentStore
from core.services import Service
from core.settings import SettingT, parse_setting, setting_value
from core.settings.agents import CONVERSATION_LENGTH, PROVIDER_TIMEOUT_S
from core.state_cache import merge_provider_results
from core.structured_output import get_object as structured_get_object
from core.tasks.worker import TaskWorker
from core.types import (
    ChannelType,
    Content,
    Entity,
    Memory,
    MemoryMetadata,
    MemoryType,
    ModelType,
    Room,
    State,
    Task,
    TaskUpdate,
    World,
)
from core.types.log import ActionLogBody, ActionLogResult, Log, action_log
from core.uuid import create_unique_uuid

if TYPE_CHECKING:  # annotations only: characters, the adapter's types and the SQS queue (botocore) cost start-up time
    from core.character import Character
    from core.db.adapter import ConnectionWrite, DatabaseAdapter
    from core.embeddings.queue import EmbeddingBatch, EmbeddingQueue
    from core.embeddings.request import Priority
    from core.model_registry import StreamCallback
    from core.orchestrator import Orchestrator
    from core.plugin import ModelHandlerFn
    from core.structured_output import ObjectT

logger = logging.getLogger(__name__)


class AgentRuntime(AgentStore):
    """The elizaOS ``AgentRuntime`` surface used by a message turn.

    Storage (entities, rooms, worlds, participants, components, relationships, memories,
    cache) is agent-scoped through ``AgentStore``: plugins never pass ``agent_id`` by hand.

    Args:
        blueprint: The agent's process-wide definition.
        adapter: The shared database adapter.
        embedding_queue: The process's SQS link; ``None`` leaves embeddings pending.
        settings: Process settings visible through ``get_setting`` after the character's.
    """

    def __init__(
        self,
        blueprint: AgentBlueprint,
        adapter: DatabaseAdapter,
        embedding_queue: EmbeddingQueue | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.blueprint = blueprint
        self.adapter = adapter
        self.embeddings: EmbeddingBatch | None = embedding_queue.batch() if embedding_queue else None
        self._settings = settings or {}
        self._overrides: dict[str, Any] = {}
        self._run_id: UUID | None = None
        self._log_token: Token[Any] | None = None
        self._action_results: dict[UUID, list[ActionResult]] = {}
        #: Model usage and action logs kept to write together (``buffer_logs``); ``None``: written at once.
        self.run_logs: list[Log] | None = None
        #: The orchestrator that built this runtime (agent-to-agent messages), if any.
        self.orchestrator: Orchestrator | None = None

    @property
    def agent_id(self) -> UUID:
        return self.blueprint.agent_id

    @property
    def character(self) -> Character:
        return self.blueprint.character

    @property
    def actions(self) -> dict[str, Action]:
        return self.blueprint.actions

    @property
    def providers(self) -> list[Provider]:
        """Every registered provider (elizaOS ``runtime.providers``), dynamic and private ones too."""
        return list(self.blueprint.providers.values())

    @property
    def evaluators(self) -> list[Evaluator]:
        """Every registered evaluator (elizaOS ``runtime.evaluators``)."""
        return list(self.blueprint.evaluators)

    @property
    def plugins(self) -> list[Plugin]:
        """The agent's plugins in registration order (elizaOS ``runtime.plugins``)."""
        return list(self.blueprint.plugins)

    # -- registration (elizaOS registerAction, registerProvider, registerEvaluator...) --------
    #
    # What is registered is kept by the agent's blueprint, so it lasts for the process and
    # every later runtime of the agent sees it, as a plugin's own actions do.

    def register_action(self, action: Action) -> bool:
        """elizaOS ``registerAction``: an action of the same name is kept (a warning is logged).

        Returns:
            False when an action of that name was already registered.
        """
        return self.blueprint.register_action(action)

    def register_provider(self, provider: Provider) -> bool:
        """elizaOS ``registerProvider``: a provider of the same name is kept (a warning is logged).

        Returns:
            False when a provider of that name was already registered.
        """
        if provider.name in self.blueprint.providers:
            logger.warning("provider %s is already registered for %s; kept", provider.name, self.character.name)
            return False
        self.blueprint.providers[provider.name] = provider
        return True

    def register_evaluator(self, evaluator: Evaluator) -> bool:
        """elizaOS ``registerEvaluator``. Unlike elizaOS (which appends twice), a second evaluator of
        the same name is refused: it would run twice per turn.

        Returns:
            False when an evaluator of that name was already registered.
        """
        if any(e.name == evaluator.name for e in self.blueprint.evaluators):
            logger.warning("evaluator %s is already registered for %s; kept", evaluator.name, self.character.name)
            return False
        self.blueprint.evaluators.append(evaluator)
        return True

    async def register_service(self, service_class: type[Service]) -> Service | None:
        """elizaOS ``registerService``: register the class and start it for this agent.

        Returns:
            The started service, or ``None`` when it failed to start (logged, as at start-up).

        Raises:
            ValueError: the class has no ``service_type``.
        """
        self.blueprint.services.register(service_class)
        await self.blueprint.services.start_all(self)
        started = self.blueprint.services.get_all(service_class.service_type)
        return next((s for s in started if type(s) is service_class), None)

    async def register_plugin(self, plugin: Plugin) -> bool:
        """elizaOS ``registerPlugin`` after the agent was built: add its parts, then run its
        ``init(config, runtime)``, start its services and call its ``start(runtime)``.

        A failing ``init``/``start`` is logged and the plugin stays registered (as at start-up).
        Its ``dependencies`` must already be registered.

        Returns:
            False when a plugin of that name was already registered (nothing is done).

        Raises:
            ConfigurationError: the plugin has no name, or a dependency is not registered.
        """
        from core.errors import ConfigurationError

        if any(p.name == plugin.name for p in self.blueprint.plugins):
            return False
        missing = [d for d in plugin.dependencies if not any(p.name == d for p in self.blueprint.plugins)]
        if missing:
            raise ConfigurationError(f"plugin {plugin.name!r} needs {', '.join(missing)} registered first")
        self.blueprint.register_plugin(plugin)
        await self._start_plugin(plugin)
        return True

    async def _start_plugin(self, plugin: Plugin) -> None:
        steps = [
            ("init", plugin.init(plugin.config, self) if plugin.init else None),
            ("services", self.blueprint.services.start_all(self)),
            ("start", plugin.start(self) if plugin.start else None),
        ]
        for name, step in steps:
            if step is None:
                continue
            try:
                await step
            except Exception:
                logger.exception("plugin %s %s failed; the plugin stays registered", plugin.name, name)

    def get_model(self, model_type: ModelType, provider: str | None = None) -> ModelHandlerFn | None:
        """elizaOS ``getModel``: the handler ``use_model`` would call first, or ``None``."""
        try:
            return self.blueprint.models.candidates(model_type, provider)[0].registration.handler
        except ModelNotFoundError:
            return None

    def get_all_services(self) -> dict[str, list[Service]]:
        """elizaOS ``getAllServices``: the started services by type."""
        services = self.blueprint.services
        return {t: found for t in services.registered_types if (found := services.get_all(t))}

    # -- settings ---------------------------------------------------------------------------

    def get_setting(self, key: str) -> Any:
        """elizaOS ``getSetting``: ``set_setting`` values, character secrets, character settings,
        runtime settings, env.

        ``"true"``/``"false"`` strings become booleans. Returns ``None`` when unset.
        """
        for source in (self._overrides, self.character.secrets, self.character.settings, self._settings, os.environ):
            if key in source and source[key] is not None:
                return setting_value(source[key])
        return None

    def set_setting(self, key: str, value: Any, secret: bool = False) -> None:
        """elizaOS ``setSetting``: ``get_setting(key)`` returns ``value`` from now on, in this runtime.

        Differs from elizaOS: its runtime lives as long as the process, ours one invocation, so
        the value lasts for this invocation only (nothing is written: a setting that must
        outlive it belongs in the character, stored with ``PUT /agents/{agent}``). ``secret``
        is accepted for elizaOS's signature; both kinds are read the same way.
        """
        self._overrides[key] = value

    def get_conversation_length(self) -> int:
        """elizaOS ``getConversationLength``: messages in the prompt (``CONVERSATION_LENGTH``, default 32).

        Raises:
            ConfigurationError: the setting is malformed or out of range.
        """
        return CONVERSATION_LENGTH.read(self)

    def setting(
        self,
        name: str,
        kind: type[SettingT],
        default: SettingT,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> SettingT:
        """A typed per-agent setting: ``get_setting(name)`` read by ``core.settings.parse_setting``.

        Args:
            name: The setting's name (``"KNOWLEDGE_MATCH_COUNT"``).
            kind: ``bool``, ``int``, ``float`` or ``str``.
            default: When unset or blank.
            minimum: Smallest accepted number (inclusive).
            maximum: Largest accepted number (inclusive).

        Raises:
            ConfigurationError: the value is malformed or out of range (the message names ``name``).
        """
        return parse_setting(name, self.get_setting(name), kind, default, minimum=minimum, maximum=maximum)

    # -- events (elizaOS registerEvent / emitEvent) ------------------------------------------

    def register_event(self, name: str, handler: EventHandler) -> None:
        """Call ``handler(payload)`` whenever ``name`` is emitted for this agent.

        Kept by the agent's blueprint, so it lasts for the process, like plugins' handlers.
        """
        self.blueprint.events.register(name, handler)

    async def emit_event(self, names: str | Iterable[str], payload: Mapping[str, Any]) -> int:
        """Run the handlers of one or several events concurrently (see ``core.events.EventBus``).

        Args:
            names: Event name(s), e.g. ``EventType.MESSAGE_RECEIVED``.
            payload: Given to each handler with ``runtime`` (this runtime) added, as elizaOS does.

        Returns:
            How many handlers failed; a failure is logged and never raised.
        """
        return await self.blueprint.events.emit(names, {"runtime": self, **payload})

    # -- runs (elizaOS startRun / endRun / getCurrentRunId) ----------------------------------

    def start_run(self, room_id: UUID | None = None) -> UUID:
        """Start a run (one message turn) and return its id.

        Model usage and action logs carry the id. Every log line of the run gets ``agent_id``,
        ``room_id`` and ``run_id`` (``core.log_context``) until ``end_run``.
        """
        self.end_run()
        self._run_id = uuid4()
        self._log_token = bind_log_keys(agent_id=self.agent_id, room_id=room_id, run_id=self._run_id)
        return self._run_id

    def buffer_logs(self) -> None:
        """Keep the model usage and action logs in ``run_logs`` until ``take_logs`` or ``write_logs``
        (a message turn: written with its reply, not one round trip each)."""
        if self.run_logs is None:
            self.run_logs = []

    async def log(self, entry: Log) -> None:
        """Write one log (elizaOS ``runtime.log``); kept for ``write_logs`` after ``buffer_logs``.

        Raises:
            DatabaseError: the write failed (not when kept).
        """
        if self.run_logs is not None:
            self.run_logs.append(entry)
        else:
            await self.adapter.log(entry)

    def take_logs(self) -> list[Log]:
        """The logs kept so far, handed to the caller to write (the message turn writes them
        in its reply's round trip); later ones are kept until ``write_logs``."""
        if self.run_logs is None:
            return []
        logs, self.run_logs = self.run_logs, []
        return logs

    async def write_logs(self) -> None:
        """Write the logs kept since ``buffer_logs`` in one statement, and stop keeping them.
        Never raises (accounting must not fail the reply): a failure is logged."""
        logs, self.run_logs = self.run_logs or [], None
        if not logs:
            return
        try:
            await self.adapter.log_many(logs)
        except Exception:
            logger.warning("could not write the turn's %d usage and action log(s)", len(logs), exc_info=True)

    def end_run(self) -> None:
        """End the current run. The message service always calls it (elizaOS can leave a run open)."""
        token, self._log_token = self._log_token, None
        if token is not None:
            # Ended from another task: the keys die with the task that bound them.
            with contextlib.suppress(ValueError, RuntimeError):
                reset_log_keys(token)
        self._run_id = None

    def get_current_run_id(self) -> UUID | None:
        """The current run's id, or ``None`` outside a run."""
        return self._run_id

    # -- models -----------------------------------------------------------------------------

    def register_model(
        self,
        model_type: ModelType,
        handler: ModelHandlerFn,
        provider: str,
        priority: int = 0,
        capabilities: Iterable[str] = frozenset(),
    ) -> None:
        """Add a model handler (elizaOS ``registerModel``).

        Kept by the agent's blueprint, so it lasts for the process and serves every later
        runtime of the agent, like the handlers plugins register.

        Args:
            model_type: What kind of call it serves.
            handler: ``handler(runtime, params)``.
            provider: Provider name (``use_model(..., provider=...)`` selects by it).
            priority: Higher is tried first; equal priorities go in registration order.
            capabilities: e.g. ``{"structured_output"}`` (see ``ModelRegistration``).
        """
        self.blueprint.models.register(
            provider, ModelRegistration(model_type, handler, priority, frozenset(capabilities))
        )

    async def use_model(
        self,
        model_type: ModelType,
        params: Mapping[str, Any] | None = None,
        provider: str | None = None,
        *,
        on_stream_chunk: StreamCallback | None = None,
    ) -> Any:
        """Call the best model handler for ``model_type`` (elizaOS ``useModel``).

        Settings fill sampling params the caller left out, a retryable failure falls back
        to the next provider, text is streamed to ``on_stream_chunk``, and every attempt is
        logged (``useModel`` row with the run id) and emits ``MODEL_USED``: see
        ``core.model_registry``.

        Args:
            model_type: What to call.
            params: The handler's params (``prompt``, ``system``, ``temperature``,
                ``max_tokens``...); not modified.
            provider: Only this provider's handlers (no fallback to others).
            on_stream_chunk: Receives text chunks (sync or async); called once with the whole
                text when the handler does not stream. The full text is still returned.

        Returns:
            The handler's value.

        Raises:
            ModelNotFoundError: nothing serves the type; the message names it.
            ModelError: a non-retryable failure, or every provider tried failed.
        """
        return await self.blueprint.models.use(self, model_type, params, provider, on_stream_chunk=on_stream_chunk)

    def model_capabilities(self, model_type: ModelType, provider: str | None = None) -> frozenset[str]:
        """Capabilities of the model ``use_model`` would call first (of ``provider``'s, if named)."""
        return self.blueprint.models.capabilities(model_type, provider)

    async def get_object(
        self,
        schema: type[ObjectT],
        prompt: str,
        *,
        model_type: ModelType = ModelType.OBJECT_SMALL,
        provider: str | None = None,
        **params: Any,
    ) -> ObjectT:
        """An instance of ``schema`` from a model (Maiar ``getObject``; see ``core.structured_output``).

        Uses the provider's structured output when the model claims ``structured_output``,
        else asks for JSON in the prompt; validates either way, with one repair call. With
        no OBJECT_* handler, the text type of the same size answers.

        Args:
            schema: The pydantic model to return.
            prompt: What to ask.
            model_type: ``OBJECT_SMALL`` (default) or ``OBJECT_LARGE`` (or a TEXT_* type).
            provider: Only this provider's handlers.
            **params: Other model params (``system``, ``temperature``...).

        Returns:
            The validated instance.

        Raises:
            ModelNotFoundError: no handler for the type nor its text stand-in.
            ModelError: a model call failed.
            StructuredOutputError: invalid answer, and invalid again after the repair call.
        """
        return await structured_get_object(
            self, schema, prompt, model_type=model_type, provider=provider, params=params
        )

    # -- connections and memories -----------------------------------------------------------

    async def ensure_connection(
        self,
        *,
        entity_id: UUID,
        room_id: UUID,
        world_id: UUID | None = None,
        user_name: str | None = None,
        name: str | None = None,
        world_name: str | None = None,
        room_name: str | None = None,
        source: str = "api",
        channel_type: ChannelType = ChannelType.DM,
        channel_id: str | None = None,
        server_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        user_id: str | None = None,
    ) -> None:
        """Make sure the entity, room, world and participant exist (elizaOS ``ensureConnection``).

        A pair already stored by this process costs no SQL; otherwise one round trip. Existing
        worlds and rooms are left as they are; the entity's names and per-source metadata are
        merged. Differs from elizaOS: the agent is not made a participant here (one more
        write per new pair on the turn); ``set_participant_user_state`` adds it when it first
        needs a state. What the round trip created is announced (``_announce_connection``):
        WORLD_JOINED for a new world, ROOM_JOINED for a new room, ENTITY_JOINED when the entity
        joined the room (elizaOS leaves these to platform connectors; here a connector that
        only calls ``ensure_connection`` gets them too, exactly once across containers, since
        the database says what is new).

        Args:
            entity_id, room_id: Our ids of the sender and the room.
            world_id: The room's world; derived from ``server_id`` when absent, as elizaOS does
                (``create_unique_uuid(agent, server_id)``).
            user_name, name: The sender's handle and display name (both kept in ``names``).
            world_name, room_name: Names for a new world / room.
            source: The platform (``"discord"``); ``metadata[source]`` holds the platform ids.
            channel_type: The room's kind.
            channel_id, server_id: The platform's ids of the room and its server.
            metadata: More of the entity's metadata for ``source`` (merged).
            user_id: The sender's id on the platform.
        """
        key = (entity_id, room_id)
        if key in self.blueprint.connections:
            return
        if world_id is None and server_id:
            world_id = create_unique_uuid(self.agent_id, server_id)
        world = World(id=world_id, agent_id=self.agent_id, name=world_name, server_id=server_id) if world_id else None
        room = Room(
            id=room_id,
            agent_id=self.agent_id,
            name=room_name or name,
            source=source,
            type=channel_type,
            world_id=world_id,
            channel_id=channel_id,
            server_id=server_id,
        )
        entity = self._connected_entity(entity_id, source, user_name, name, user_id, metadata)
        written = await self.adapter.ensure_connection(entity, room, world)
        self.blueprint.connections.add(key)
        await self._announce_connection(written, entity, room, world, source)

    async def _announce_connection(
        self, written: ConnectionWrite, entity: Entity, room: Room, world: World | None, source: str
    ) -> None:
        """WORLD_JOINED, ROOM_JOINED and ENTITY_JOINED for what ``ensure_connection`` created.

        Payloads as elizaOS's ``WorldPayload`` (``world``, ``rooms``, ``entities``) and
        ``EntityPayload`` (``entityId``, ``worldId``, ``roomId``, ``metadata``), with ``source``;
        elizaOS types no ROOM_JOINED payload, so it gets ``room``, ``roomId``, ``worldId``,
        ``entityId`` (who brought it in). ENTITY_JOINED is for a new participation: a known
        person entering a new room joins it too.
        """
        if written.world_created and world is not None:
            await self.emit_event(
                EventType.WORLD_JOINED, {"world": world, "rooms": [room], "entities": [entity], "source": source}
            )
        if written.room_created:
            await self.emit_event(
                EventType.ROOM_JOINED,
                {"room": room, "roomId": room.id, "worldId": room.world_id, "entityId": entity.id, "source": source},
            )
        if written.participant_created:
            payload = _entity_payload(entity, room, source, written.entity_created)
            await self.emit_event(EventType.ENTITY_JOINED, payload)

    def _connected_entity(
        self,
        entity_id: UUID,
        source: str,
        user_name: str | None,
        name: str | None,
        user_id: str | None,
        metadata: Mapping[str, Any] | None,
    ) -> Entity:
        # elizaOS keeps {source: {id, name, userName}} per platform and both names in ``names``.
        platform = {"id": user_id, "name": name, "userName": user_name, **(metadata or {})}
        platform = {k: v for k, v in platform.items() if v is not None}
        names = list(dict.fromkeys(n for n in (name, user_name) if n))
        return Entity(
            id=entity_id, agent_id=self.agent_id, names=names, metadata={source: platform} if platform else {}
        )

    async def ensure_connections(
        self, entities: Sequence[Entity], rooms: Sequence[Room], world: World | None = None
    ) -> None:
        """Make sure a world, its rooms and entities exist, every entity taking part in every room
        (elizaOS ``ensureConnections``, e.g. when a platform connector syncs a server).

        Pairs already stored by this process are skipped; the rest costs one round trip per
        kind of row (world, rooms, entities) plus one per room for the participants, not one
        per pair. Existing rows are left as they are.

        Events, as an elizaOS connector emits them when it syncs a server: WORLD_JOINED when the
        world is new, else WORLD_CONNECTED (``world``, ``rooms``, ``entities``, ``source``);
        ROOM_JOINED per new room; ENTITY_JOINED per new entity (its ``roomId`` is the first
        room's). ``source`` is the first room's that has one, else ``"api"``.

        Args:
            entities: People (or agents) to connect; ``agent_id`` is set to this agent's.
            rooms: Their rooms; ``agent_id`` (and ``world_id`` when a world is given) set here.
            world: The server/workspace the rooms belong to, if any.
        """
        pairs = {(e.id, r.id) for e in entities for r in rooms}
        if all(pair in self.blueprint.connections for pair in pairs):
            return
        owned_world = None if world is None else world.model_copy(update={"agent_id": self.agent_id})
        world_created = owned_world is not None and await self.adapter.create_world(owned_world)
        owned_rooms = [
            r.model_copy(update={"agent_id": self.agent_id, **({"world_id": world.id} if world is not None else {})})
            for r in rooms
        ]
        new_rooms = set(await self.adapter.create_rooms(owned_rooms))
        owned_entities = [e.model_copy(update={"agent_id": self.agent_id}) for e in entities]
        new_entities = set(await self.adapter.create_entities(owned_entities))
        for room in owned_rooms:
            await self.adapter.add_participants_room(self.agent_id, [e.id for e in entities], room.id)
        for pair in pairs:
            self.blueprint.connections.add(pair)
        source = next((r.source for r in owned_rooms if r.source), "api")
        if owned_world is not None:
            name = EventType.WORLD_JOINED if world_created else EventType.WORLD_CONNECTED
            payload = {"world": owned_world, "rooms": owned_rooms, "entities": owned_entities, "source": source}
            await self.emit_event(name, payload)
        for room in (r for r in owned_rooms if r.id in new_rooms):
            await self.emit_event(
                EventType.ROOM_JOINED, {"room": room, "roomId": room.id, "worldId": room.world_id, "source": source}
            )
        for entity in (e for e in owned_entities if e.id in new_entities and owned_rooms):
            await self.emit_event(EventType.ENTITY_JOINED, _entity_payload(entity, owned_rooms[0], source, True))

    async def create_memory(self, memory: Memory, table: str = "messages") -> Memory:
        """Store one memory (elizaOS ``createMemory``).

        A memory carrying an ``embedding`` (``add_embedding_to_memory``) has it stored too, one
        more round trip; otherwise request one with ``queue_embedding_generation``.

        Raises:
            EmbeddingDimensionError: the carried embedding is not ``EMBEDDING_DIMENSION`` long.
        """
        await self.adapter.create_memories([memory], table)
        await self._store_embedding(memory)
        return memory

    async def get_memories(self, room_id: UUID, table: str = "messages", count: int = 32) -> list[Memory]:
        """The newest ``count`` memories of a room, oldest first."""
        return await self.adapter.get_memories(self.agent_id, room_id, table, count)

    async def search_memories(
        self,
        embedding: Sequence[float],
        *,
        table: str | None = None,
        room_id: UUID | None = None,
        world_id: UUID | None = None,
        entity_id: UUID | None = None,
        count: int = 10,
        match_threshold: float = 0.0,
        query_text: str | None = None,
    ) -> list[Memory]:
        """elizaOS ``searchMemories``: the agent's memories nearest to ``embedding`` (cosine), nearest first.

        Args:
            embedding: A vector of ``EMBEDDING_DIMENSION`` floats.
            table: Memory type (``messages``, ``facts``, ``knowledge``...); every type when ``None``.
            room_id, world_id, entity_id: Only memories of this room / world / speaker.
            count: Most memories returned.
            match_threshold: Least similarity (1 - cosine distance) kept.
            query_text: The query's text, for the adapter's hybrid ranking where it has one.

        Raises:
            EmbeddingDimensionError: ``embedding`` has the wrong length.
        """
        return await self.adapter.search_memories(
            self.agent_id,
            embedding,
            table=table,
            room_id=room_id,
            world_id=world_id,
            entity_id=entity_id,
            count=count,
            match_threshold=match_threshold,
            query_text=query_text,
        )

    def queue_embedding_generation(self, memory: Memory, priority: Priority = "normal") -> bool:
        """Buffer an embedding request; sent by ``flush_embeddings`` at the end of the turn.

        Returns:
            True when buffered; False when skipped (already embedded, no text, or no queue).
        """
        if self.embeddings is None:
            return False
        return self.embeddings.add(memory, priority)

    async def flush_embeddings(self) -> int:
        """Send buffered embedding requests (one ``SendMessageBatch`` per queue). Never raises."""
        return await self.embeddings.flush() if self.embeddings else 0

    # -- state ------------------------------------------------------------------------------

    async def compose_state(
        self,
        message: Memory,
        include_list: Iterable[str] | None = None,
        only_include: bool = False,
        skip_cache: bool = False,
    ) -> State:
        """Run providers concurrently and merge their results (elizaOS ``composeState``).

        Args:
            message: The message being answered.
            include_list: Provider names to add (dynamic or private ones must be named).
            only_include: Run only the named providers.
            skip_cache: Ignore results cached for this message by an earlier call.

        Returns:
            ``State`` with values merged, ``data["providers"][name]`` per provider, and the texts
            joined in ``position`` order. Each provider receives the state cached for the
            message before this call (empty on the first call), as elizaOS passes its cached
            state. Results of providers run earlier for the same message
            (the bounded per-process state cache) are kept unless ``skip_cache``, as elizaOS
            does. A failing or slow provider (over ``PROVIDER_TIMEOUT_S``) contributes nothing
            and is logged; it never fails the turn.

        Raises:
            ConfigurationError: ``PROVIDER_TIMEOUT_S`` is malformed or out of range (names it).
        """
        named = set(include_list or ())
        chosen = [
            p
            for p in self.blueprint.providers.values()
            if p.name in named or (not only_include and not p.dynamic and not p.private)
        ]
        timeout_s = PROVIDER_TIMEOUT_S.read(self)  # read once, before the isolation: a bad value fails the turn
        results = {} if skip_cache else self.blueprint.state_cache.get(message.id)
        # Providers get the state cached for this message so far (elizaOS passes cachedState):
        # a provider asked for later in the turn reads what the earlier ones found.
        cached = merge_provider_results(results, self._provider_position)
        # One connection in pipeline mode: the providers' concurrent reads share round trips.
        async with pipelined(getattr(self.adapter, "pool", None)):
            fresh = await self._run_providers(chosen, message, cached, timeout_s)
        results.update(fresh)
        self.blueprint.state_cache.put(message.id, results)
        return merge_provider_results(results, self._provider_position)

    def _provider_position(self, name: str) -> int:
        provider = self.blueprint.providers.get(name)
        return provider.position if provider else 0

    async def _run_providers(
        self, providers: Sequence[Provider], message: Memory, state: State, timeout_s: float
    ) -> dict[str, ProviderResult]:
        """Each provider's result, run concurrently under one deadline of ``timeout_s`` seconds.

        One task per provider and one shared deadline: ``wait_for`` per provider would cost a
        second task each (a tenth of a message turn's own time with a dozen providers).
        """
        tasks = {p.name: asyncio.ensure_future(p.get(self, message, state)) for p in providers}
        if not tasks:
            return {}
        try:
            _, late = await asyncio.wait(tasks.values(), timeout=timeout_s)
        except asyncio.CancelledError:  # the turn itself was cancelled: so are its providers
            for task in tasks.values():
                task.cancel()
            raise
        for task in late:
            task.cancel()
        if late:  # as wait_for does: their cancellation has finished before the state is used
            await asyncio.wait(late)
        return {name: _provider_result(name, task) for name, task in tasks.items()}

    # -- actions ----------------------------------------------------------------------------

    def find_action(self, name: str) -> Action | None:
        """Exact name, then normalised name (case, ``_`` and ``-`` ignored), then similes.

        An exact match always wins over a fuzzy one.
        """
        if name in self.actions:
            return self.actions[name]
        key = _normalise(name)
        for action in self.actions.values():
            if _normalise(action.name) == key:
                return action
        for action in self.actions.values():
            if any(_normalise(s) == key for s in action.similes):
                return action
        return None

    async def process_actions(
        self, message: Memory, responses: Sequence[Memory], state: State, callback: HandlerCallback
    ) -> list[ActionResult]:
        """Run the actions named in each response, in order (elizaOS ``processActions``).

        Each execution emits ``ACTION_STARTED``/``ACTION_COMPLETED``, passes the plugins'
        ``before_action`` (which may veto it) and ``after_action`` hooks, merges its result's
        ``values`` into ``state`` (so the next action of the plan sees them), and is stored as
        an ``action_result`` memory (table ``action_results``). An unknown, vetoed or failing
        action gives a failed result and a memory saying so; it never stops the ones after it.

        Returns:
            The results in execution order (also ``get_action_results(message.id)``).
        """
        results = []
        for response in responses:
            for name in response.content.actions or []:
                result = await self._run_action(name, message, state, callback, responses)
                results.append(result)
        return results

    def get_action_results(self, message_id: UUID) -> list[ActionResult]:
        """Results of the actions run for a message in this invocation, in order (for chaining)."""
        return list(self._action_results.get(message_id, []))

    async def _run_action(
        self, name: str, message: Memory, state: State, callback: HandlerCallback, responses: Sequence[Memory]
    ) -> ActionResult:
        started = time.perf_counter()
        action = self.find_action(name)
        if action is None:
            logger.warning("unknown action %s chosen by the model; no handler run", name)
            result = ActionResult(success=False, error=f"unknown action {name}")
        elif not await self._action_allowed(action, message, state):
            result = ActionResult(success=False, error=f"action {action.name} was vetoed by a plugin")
        else:
            result = await self._execute_action(action, message, state, callback, responses)
        self._action_results.setdefault(message.id, []).append(result)
        state.data.setdefault("actionResults", []).append(result)
        await self._store_action_result(action.name if action else name, message, result)
        await self._log_action(action.name if action else name, message, result, time.perf_counter() - started)
        return result

    async def _log_action(self, name: str, message: Memory, result: ActionResult, elapsed_s: float) -> None:
        """The ``action`` log row of one run (elizaOS ``processActions`` writes one per action)."""
        body = ActionLogBody(
            action=name,
            run_id=self._run_id,
            message_id=message.id,
            duration=elapsed_s * 1000.0,
            result=ActionLogResult(success=result.success, text=result.text, error=result.error),
        )
        try:
            log = action_log(self.agent_id, body, entity_id=message.entity_id, room_id=message.room_id)
            await self.log(log)
        except Exception:  # an audit row must not fail the turn the action already served
            logger.exception("the log of action %s could not be written", name)

    async def _execute_action(
        self, action: Action, message: Memory, state: State, callback: HandlerCallback, responses: Sequence[Memory]
    ) -> ActionResult:
        payload = {"action": action.name, "messageId": message.id, "roomId": message.room_id, "runId": self._run_id}
        await self.emit_event(EventType.ACTION_STARTED, payload)
        try:
            raw = await action.handler(self, message, state, {}, callback, list(responses))
            result = normalise_action_result(raw)
        except Exception as exc:
            logger.exception("action %s failed", action.name)
            result = ActionResult(success=False, error=f"{type(exc).__name__}: {exc}")
        state.values.update(result.values)
        await self.emit_event(EventType.ACTION_COMPLETED, {**payload, "result": result})
        await self.call_hooks("after_action", action, message, result)
        return result

    async def _action_allowed(self, action: Action, message: Memory, state: State) -> bool:
        for hook in self.blueprint.hooks("before_action"):
            try:
                if await hook(self, action, message, state) is False:
                    logger.info("action %s vetoed by a before_action hook", action.name)
                    return False
            except Exception:
                logger.exception("a before_action hook failed; ignored")
        return True

    async def _store_action_result(self, name: str, message: Memory, result: ActionResult) -> None:
        text = result.text or result.error or f"{name} {'succeeded' if result.success else 'failed'}"
        memory = Memory(
            entity_id=self.agent_id,
            agent_id=self.agent_id,
            room_id=message.room_id,
            world_id=message.world_id,
            content=Content(
                text=text,
                actions=[name],
                source=message.content.source,
                in_reply_to=message.id,
                type="action_result",
                action_result={
                    "success": result.success,
                    "values": result.values,
                    "data": result.data,
                    "error": result.error,
                },
            ),
            metadata=MemoryMetadata(
                type=MemoryType.CUSTOM,
                source=message.content.source,
                action_name=name,
                run_id=str(self._run_id) if self._run_id else None,
            ),
        )
        try:
            await self.create_memory(memory, "action_results")
        except Exception:  # the action ran; failing to record it must not undo the turn
            logger.exception("could not store the result of action %s", name)

    async def call_hooks(self, name: str, *args: Any) -> None:
        """Call every plugin hook ``name`` with ``(self, *args)``; failures are logged, not raised."""
        for hook in self.blueprint.hooks(name):
            try:
                await hook(self, *args)
            except Exception:
                logger.exception("a %s hook failed; ignored", name)

    # -- evaluators -------------------------------------------------------------------------

    async def evaluate(
        self, message: Memory, state: State, did_respond: bool = True, responses: Sequence[Memory] = ()
    ) -> list[str]:
        """Run the evaluators that apply, concurrently (elizaOS ``evaluate``).

        An evaluator applies when the agent responded (or ``always_run`` is set) and its
        ``validate`` passes (no ``validate``: passes), as in elizaOS. Failures (of ``validate`` or the
        handler) are logged, never raised. Emits ``EVALUATOR_STARTED``/``_COMPLETED``.

        Returns:
            Names of the evaluators that ran to completion.
        """
        chosen = [e for e in self.blueprint.evaluators if await self._evaluator_applies(e, message, state, did_respond)]
        outcomes = await asyncio.gather(*(self._run_evaluator(e, message, state, responses) for e in chosen))
        return [e.name for e, ok in zip(chosen, outcomes, strict=True) if ok]

    async def _evaluator_applies(self, evaluator: Evaluator, message: Memory, state: State, did_respond: bool) -> bool:
        if not did_respond and not evaluator.always_run:
            return False
        try:
            return evaluator.validate is None or bool(await evaluator.validate(self, message, state))
        except Exception:
            logger.exception("evaluator %s failed to validate; skipped", evaluator.name)
            return False

    async def _run_evaluator(
        self, evaluator: Evaluator, message: Memory, state: State, responses: Sequence[Memory]
    ) -> bool:
        payload = {"evaluator": evaluator.name, "messageId": message.id, "runId": self._run_id}
        await self.emit_event(EventType.EVALUATOR_STARTED, payload)
        try:
            await evaluator.handler(self, message, state, {}, None, list(responses))
            ok = True
        except Exception:
            logger.exception("evaluator %s failed", evaluator.name)
            ok = False
        await self.emit_event(EventType.EVALUATOR_COMPLETED, {**payload, "success": ok})
        return ok

    # -- services (elizaOS getService...; started once per process by the orchestrator) ----

    def get_service(self, service_type: str) -> Service | None:
        """The first started service of this type, or ``None`` (elizaOS ``getService``)."""
        return self.blueprint.services.get(service_type)

    def has_service(self, service_type: str) -> bool:
        """Whether a service of this type has started."""
        return self.blueprint.services.get(service_type) is not None

    def get_services_by_type(self, service_type: str) -> list[Service]:
        """Every started service of this type (elizaOS ``getServicesByType``)."""
        return self.blueprint.services.get_all(service_type)

    async def get_service_load_promise(self, service_type: str) -> Service:
        """Wait until a service of this type has started (elizaOS ``getServiceLoadPromise``).

        Never returns for a type no plugin registers: wrap it in ``asyncio.wait_for``.
        """
        return await self.blueprint.services.load(service_type)

    def get_registered_service_types(self) -> list[str]:
        """Types of the services the agent's plugins register, started or not."""
        return self.blueprint.services.registered_types

    # -- sending (elizaOS registerSendHandler / sendMessageToTarget) ------------------------

    def register_send_handler(self, source: str, handler: SendHandler) -> None:
        """Deliver content for ``source`` (``"discord"``...) with ``handler(runtime, target, content)``.

        Kept by the agent's blueprint for the process; one handler per source (a new one replaces).
        """
        self.blueprint.send_handlers[source] = handler

    async def send_message_to_target(self, target: TargetInfo, content: Content) -> None:
        """Send content to a target through its source's send handler.

        Raises:
            NotFoundError: no send handler for ``target.source``.
        """
        handler = self.blueprint.send_handlers.get(target.source)
        if handler is None:
            known = ", ".join(sorted(self.blueprint.send_handlers)) or "none"
            raise NotFoundError(f"no send handler for source {target.source!r} (registered: {known})")
        await handler(self, target, content)

    # -- tasks (elizaOS registerTaskWorker, createTask, getTasks...; run by core.tasks.runner) --

    def register_task_worker(self, worker: TaskWorker) -> None:
        """Register a task worker for this agent (elizaOS ``registerTaskWorker``).

        Kept by the agent's blueprint, so it lasts for the process, as plugins' workers do;
        a worker of the same name is replaced.
        """
        self.blueprint.register_task_worker(worker)

    def get_task_worker(self, name: str) -> TaskWorker | None:
        """The worker for tasks named ``name``, or ``None`` (elizaOS ``getTaskWorker``)."""
        return self.blueprint.task_workers.get(name)

    async def create_task(self, task: Task | Mapping[str, Any]) -> UUID:
        """Store a task for this agent (elizaOS ``createTask``).

        Args:
            task: A ``Task``, or its fields (snake_case or camelCase) without ``agent_id``.
                Tagged ``"queue"``, it is run by the scheduled runner when due (see
                ``core.types.task.first_run_delay_ms``).

        Returns:
            The task's id.

        Raises:
            ValueError: invalid fields, or a task of another agent.
            pydantic.ValidationError: the fields do not make a ``Task`` (a ``ValueError``).
        """
        if not isinstance(task, Task):
            task = Task.model_validate({**task, "agent_id": self.agent_id})
        elif task.agent_id != self.agent_id:
            raise ValueError(f"task {task.id} belongs to agent {task.agent_id}, not {self.agent_id}")
        return await self.adapter.create_task(task)

    async def get_task(self, id: UUID) -> Task | None:
        """One of this agent's tasks, or ``None`` (elizaOS ``getTask``)."""
        return await self.adapter.get_task(self.agent_id, id)

    async def get_tasks(
        self,
        *,
        room_id: UUID | None = None,
        tags: Sequence[str] | None = None,
        entity_id: UUID | None = None,
        limit: int = 500,
    ) -> list[Task]:
        """This agent's tasks, oldest first; ``tags`` matches tasks having all of them (elizaOS ``getTasks``);
        at most ``limit``."""
        return await self.adapter.get_tasks(self.agent_id, room_id=room_id, tags=tags, entity_id=entity_id, limit=limit)

    async def get_tasks_by_name(self, name: str) -> list[Task]:
        """This agent's tasks with this exact name (elizaOS ``getTasksByName``)."""
        return await self.adapter.get_tasks_by_name(self.agent_id, name)

    async def update_task(self, id: UUID, changes: TaskUpdate | Mapping[str, Any]) -> bool:
        """Change some fields of one of this agent's tasks; metadata is merged (elizaOS ``updateTask``).

        Returns:
            False when this agent has no such task.
        """
        return await self.adapter.update_task(self.agent_id, id, changes)

    async def delete_task(self, id: UUID) -> bool:
        """Delete one of this agent's tasks (elizaOS ``deleteTask``). Returns False when there was none."""
        return await self.adapter.delete_task(self.agent_id, id)


def _entity_payload(entity: Entity, room: Room, source: str, created: bool) -> dict[str, Any]:
    """elizaOS ``EntityPayload`` for ENTITY_JOINED: ``metadata`` holds the platform's id and names."""
    platform = entity.metadata.get(source) or {}
    metadata = {
        "originalId": platform.get("id"),
        "username": platform.get("userName"),
        "displayName": platform.get("name"),
        "type": room.type.value,
    }
    return {
        "entityId": entity.id,
        "entity": entity,
        "worldId": room.world_id,
        "roomId": room.id,
        "metadata": {k: v for k, v in metadata.items() if v is not None},
        "created": created,
        "source": source,
    }


def _provider_result(name: str, task: asyncio.Future[ProviderResult]) -> ProviderResult:
    """A finished provider's result; an empty one (logged) when it failed or ran out of time."""
    if task.cancelled():
        logger.error("provider %s timed out; its part of the state is empty", name)
        return ProviderResult()
    error = task.exception()
    if error is None:
        return task.result()
    if not isinstance(error, Exception):
        raise error  # SystemExit and the like are not a provider's failure
    logger.error("provider %s failed; its part of the state is empty", name, exc_info=error)
    return ProviderResult()


def _normalise(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")
