"""The orchestrator: many agents in one process (elizaOS ``ElizaOS`` class: ``addAgents``, ``handleMessage``).

In Lambda the orchestrator lives for the container's life; the runtimes it hands out live
for one invocation (``ephemeral=True``): built from a cached blueprint, they cost no SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from core.blueprint import AgentBlueprint, character_plugins
from core.character import Character
from core.db.adapter import AgentRecord, DatabaseAdapter
from core.embeddings.queue import EmbeddingQueue
from core.errors import ConfigurationError, NotFoundError
from core.messaging.service import MessageResult, handle_message
from core.plugin import Plugin
from core.runtime import AgentRuntime
from core.types import ChannelType, Content, Memory, MemoryMetadata
from core.uuid import create_unique_uuid

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingMessage:
    """A message from outside, before ids are made unique to the agent.

    Attributes:
        text: What was said (non-empty).
        entity_id: The sender's id on the source platform (a default user when ``None``).
        room_id: The conversation's id (the sender's DM room with the agent when ``None``).
        world_id: The server/workspace, if any.
        source: Platform name (``"api"``).
        user_name: The sender's display name.
        channel_type: DM by default; GROUP makes the agent decide whether to answer.
    """

    text: str
    entity_id: UUID | None = None
    room_id: UUID | None = None
    world_id: UUID | None = None
    source: str = "api"
    user_name: str | None = None
    channel_type: ChannelType = ChannelType.DM


class Orchestrator:
    """Holds agent blueprints and hands out runtimes.

    Args:
        adapter: The shared database adapter.
        embedding_queue: The process's SQS link (``None``: embeddings stay pending).
        plugins: Plugins every agent gets (bootstrap, model providers), before the character's.
        settings: Runtime settings (``get_setting``'s third source).
    """

    def __init__(
        self,
        adapter: DatabaseAdapter,
        *,
        embedding_queue: EmbeddingQueue | None = None,
        plugins: Sequence[Plugin] = (),
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.adapter = adapter
        self.embedding_queue = embedding_queue
        self.plugins = list(plugins)
        self.settings = dict(settings or {})
        self._agents: dict[UUID, AgentBlueprint] = {}

    # -- agents -----------------------------------------------------------------------------

    async def add_agents(
        self,
        characters: Iterable[Character],
        *,
        ephemeral: bool = True,
        skip_migrations: bool = True,
        return_runtimes: bool = False,
        persist: bool = True,
    ) -> list[UUID] | list[AgentRuntime]:
        """Register agents (elizaOS ``addAgents``).

        Args:
            characters: Validated characters.
            ephemeral: Runtimes are built per call, never kept (the only mode in Lambda).
            skip_migrations: Never migrate here; the migrate command owns the schema. Passing
                False is refused rather than migrating on a request path.
            return_runtimes: Return one fresh runtime per agent instead of ids.
            persist: Upsert the agents' rows (one round trip for all; done in the init phase).

        Returns:
            Agent ids, or runtimes when ``return_runtimes``.

        Raises:
            ConfigurationError: ``skip_migrations=False``, two characters share a name, or a
                character's plugin cannot be resolved.
        """
        if not skip_migrations:
            raise ConfigurationError("add_agents never migrates: run the migrate command instead")
        if not ephemeral:
            logger.info("ephemeral=False has no effect here: runtimes are always built per invocation")
        blueprints = [AgentBlueprint.build(c, [*self.plugins, *character_plugins(c)]) for c in characters]
        self._check_unique_names(blueprints)
        if persist:
            await self.adapter.upsert_agents(
                [AgentRecord(b.agent_id, b.character.name, b.character.model_dump(mode="json", by_alias=True))
                 for b in blueprints]
            )
        self._agents.update({b.agent_id: b for b in blueprints})
        if return_runtimes:
            return [self.runtime(b.agent_id) for b in blueprints]
        return [b.agent_id for b in blueprints]

    def _check_unique_names(self, new: list[AgentBlueprint]) -> None:
        seen = {b.character.name.lower(): b.agent_id for b in self._agents.values()}
        for blueprint in new:
            other = seen.setdefault(blueprint.character.name.lower(), blueprint.agent_id)
            if other != blueprint.agent_id:
                raise ConfigurationError(f"two agents are named {blueprint.character.name!r}")

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

    def runtime(self, ref: str | UUID) -> AgentRuntime:
        """A fresh ephemeral runtime for one invocation: no SQL, no model call.

        Raises:
            NotFoundError: no such agent.
        """
        blueprint = self.get_agent(ref)
        return AgentRuntime(blueprint, self.adapter, self.embedding_queue, self.settings)

    # -- messages ---------------------------------------------------------------------------

    async def handle_message(self, agent: str | UUID | AgentRuntime, incoming: IncomingMessage) -> MessageResult:
        """Run one turn (elizaOS ``handleMessage``, sync mode).

        Ids from outside are made unique to the agent (``create_unique_uuid``), so two agents
        never share an entity or room row. Without ``room_id`` the sender's DM room with the
        agent is used; without ``entity_id`` a default API user.

        Raises:
            NotFoundError: unknown agent.
            ModelError: the model failed (the user's message stays stored).
        """
        runtime = agent if isinstance(agent, AgentRuntime) else self.runtime(agent)
        external_entity = incoming.entity_id or create_unique_uuid(runtime.agent_id, "api-user")
        entity_id = create_unique_uuid(runtime.agent_id, external_entity)
        room_id = incoming.room_id or create_unique_uuid(runtime.agent_id, f"dm:{external_entity}")
        await runtime.ensure_connection(
            entity_id=entity_id, room_id=room_id, world_id=incoming.world_id, user_name=incoming.user_name,
            source=incoming.source, channel_type=incoming.channel_type,
        )
        message = Memory(
            entity_id=entity_id, agent_id=runtime.agent_id, room_id=room_id, world_id=incoming.world_id,
            content=Content(text=incoming.text, source=incoming.source, channel_type=incoming.channel_type.value),
            metadata=MemoryMetadata(source=incoming.source),
        )
        return await handle_message(runtime, message, incoming.channel_type)
