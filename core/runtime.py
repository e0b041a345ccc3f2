"""``AgentRuntime``: one agent, for one invocation.

Built from a process-wide ``AgentBlueprint`` and the shared adapter; construction does no
SQL and no model call (DESIGN.md "Stateless core, warm container"). Everything it buffers
(embedding requests) is flushed by the message service before the invocation ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from core.blueprint import AgentBlueprint
from core.character import Character
from core.db.adapter import DatabaseAdapter
from core.embeddings.queue import EmbeddingBatch, EmbeddingQueue
from core.embeddings.request import Priority
from core.plugin import Action, ProviderResult
from core.tasks.worker import TaskWorker
from core.types import ChannelType, Entity, Memory, ModelType, Room, State, Task, TaskUpdate, World

logger = logging.getLogger(__name__)

#: A provider slower than this yields an empty result rather than a slow turn (seconds).
PROVIDER_TIMEOUT_S = 5.0


class AgentRuntime:
    """The elizaOS ``AgentRuntime`` surface used by a message turn.

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

    @property
    def agent_id(self) -> UUID:
        return self.blueprint.agent_id

    @property
    def character(self) -> Character:
        return self.blueprint.character

    @property
    def actions(self) -> dict[str, Action]:
        return self.blueprint.actions

    # -- settings ---------------------------------------------------------------------------

    def get_setting(self, key: str) -> Any:
        """elizaOS ``getSetting``: character secrets, character settings, runtime settings, env.

        ``"true"``/``"false"`` strings become booleans. Returns ``None`` when unset.
        """
        for source in (self.character.secrets, self.character.settings, self._settings, os.environ):
            if key in source and source[key] is not None:
                value = source[key]
                if isinstance(value, str) and value.lower() in {"true", "false"}:
                    return value.lower() == "true"
                return value
        return None

    # -- models -----------------------------------------------------------------------------

    async def use_model(self, model_type: ModelType, params: Mapping[str, Any], provider: str | None = None) -> Any:
        """Call the best model handler for ``model_type`` (see ``ModelRegistry.use``).

        Raises:
            ModelNotFoundError: nothing serves the type.
            ModelError: the call failed on every provider that was tried.
        """
        return await self.blueprint.models.use(self, model_type, params, provider)

    def model_capabilities(self, model_type: ModelType) -> frozenset[str]:
        """Capabilities of the model ``use_model`` would call first."""
        return self.blueprint.models.capabilities(model_type)

    # -- connections and memories -----------------------------------------------------------

    async def ensure_connection(
        self,
        *,
        entity_id: UUID,
        room_id: UUID,
        world_id: UUID | None = None,
        user_name: str | None = None,
        source: str = "api",
        channel_type: ChannelType = ChannelType.DM,
    ) -> None:
        """Make sure the entity, room, world and participant exist (elizaOS ``ensureConnection``).

        A pair already stored by this process costs no SQL.
        """
        key = (entity_id, room_id)
        if key in self.blueprint.connections:
            return
        world = World(id=world_id, agent_id=self.agent_id) if world_id else None
        room = Room(id=room_id, agent_id=self.agent_id, source=source, type=channel_type, world_id=world_id)
        entity = Entity(
            id=entity_id, agent_id=self.agent_id, names=[user_name] if user_name else [],
            metadata={source: {"userName": user_name}} if user_name else {},
        )
        await self.adapter.ensure_connection(entity, room, world)
        self.blueprint.connections.add(key)

    async def create_memory(self, memory: Memory, table: str = "messages") -> Memory:
        """Store one memory. Its embedding is requested separately (``queue_embedding_generation``)."""
        await self.adapter.create_memories([memory], table)
        return memory

    async def get_memories(self, room_id: UUID, table: str = "messages", count: int = 32) -> list[Memory]:
        """The newest ``count`` memories of a room, oldest first."""
        return await self.adapter.get_memories(self.agent_id, room_id, table, count)

    def queue_embedding_generation(self, memory: Memory, priority: Priority = "normal") -> bool:
        """Buffer an embedding request; sent by ``flush_embeddings`` at the end of the turn.

        Returns:
            True when buffered; False when skipped (already embedded, no text, or no queue).
        """
        if self.embeddings is None:
            return False
        return self.embeddings.add(memory, priority)

    async def flush_embeddings(self) -> int:
        """Send buffered embedding requests (one ``SendMessageBatch`` per priority). Never raises."""
        return await self.embeddings.flush() if self.embeddings else 0

    # -- state ------------------------------------------------------------------------------

    async def compose_state(
        self, message: Memory, include_list: Iterable[str] | None = None, only_include: bool = False
    ) -> State:
        """Run providers concurrently and merge their results (elizaOS ``composeState``).

        Args:
            message: The message being answered.
            include_list: Provider names to add (dynamic or private ones must be named).
            only_include: Run only the named providers.

        Returns:
            ``State`` with values merged, ``data["providers"][name]`` per provider, and the texts
            joined in ``position`` order. A failing or slow provider contributes nothing and is
            logged; it never fails the turn.
        """
        named = set(include_list or ())
        chosen = [
            p for p in self.blueprint.providers.values()
            if p.name in named or (not only_include and not p.dynamic and not p.private)
        ]
        chosen.sort(key=lambda p: p.position)
        state = State()
        results = await asyncio.gather(*(self._run_provider(p.name, message, state) for p in chosen))
        for provider, result in zip(chosen, results, strict=True):
            state.values.update(result.values)
            state.data.setdefault("providers", {})[provider.name] = result
        state.text = "\n\n".join(r.text for r in results if r.text)
        state.values["providers"] = state.text
        return state

    async def _run_provider(self, name: str, message: Memory, state: State) -> ProviderResult:
        provider = self.blueprint.providers[name]
        try:
            return await asyncio.wait_for(provider.get(self, message, state), PROVIDER_TIMEOUT_S)
        except Exception:
            logger.exception("provider %s failed; its part of the state is empty", name)
            return ProviderResult()

    # -- actions ----------------------------------------------------------------------------

    def find_action(self, name: str) -> Action | None:
        """Exact name, then normalised name (case, ``_`` and ``-`` ignored), then similes."""
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
        self, message: Memory, responses: Sequence[Memory], state: State, callback: Any
    ) -> None:
        """Run the actions named in each response, in order (elizaOS ``processActions``).

        Unknown actions are logged and skipped; a failing action is logged and does not stop
        the ones after it.
        """
        for response in responses:
            for name in response.content.actions or []:
                action = self.find_action(name)
                if action is None:
                    logger.warning("unknown action %s chosen by the model; skipped", name)
                    continue
                try:
                    await action.handler(self, message, state, {}, callback, list(responses))
                except Exception:
                    logger.exception("action %s failed", action.name)

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
        self, *, room_id: UUID | None = None, tags: Sequence[str] | None = None, entity_id: UUID | None = None
    ) -> list[Task]:
        """This agent's tasks, oldest first; ``tags`` matches tasks having all of them (elizaOS ``getTasks``)."""
        return await self.adapter.get_tasks(self.agent_id, room_id=room_id, tags=tags, entity_id=entity_id)

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


def _normalise(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")
