"""AutonomyService (elizaOS plugin-autonomy ``src/service.ts``): the agent thinks on its own,
each thought a full message turn started by a ``MESSAGE_RECEIVED`` event.

Source: https://github.com/elizaOS/classified/blob/7f3e156b3182c1ff22058522ae927ee3286eac24/packages/plugin-autonomy/src/service.ts
License: MIT, Copyright (c) 2025 Shaw Walters and elizaOS Contributors (ported to Python; the
monologue prompts are upstream's text).

Upstream loops with ``setTimeout`` and polls ``AUTONOMY_ENABLED`` with ``setInterval``; Lambda
freezes a process between invocations, so here the loop is a repeating task (``AUTONOMY_THINK``,
run by the scheduled tasks function) and "enabled" is kept in the agent's cache.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from core.events import EventType
from core.services import Service
from core.types import ChannelType, Content, Memory, Room, World
from core.types.memory import now_ms

if TYPE_CHECKING:
    from core.runtime import AgentRuntime
    from core.types import Task

logger = logging.getLogger(__name__)

#: ``AutonomousServiceType.AUTONOMOUS``.
AUTONOMY_SERVICE_TYPE = "AUTONOMOUS"
#: The task worker that performs one thought (upstream: one ``setTimeout`` iteration).
THINK_TASK = "AUTONOMY_THINK"
ENABLED_KEY, INTERVAL_KEY = "autonomy:enabled", "autonomy:interval-ms"
DEFAULT_INTERVAL_MS, MIN_INTERVAL_MS, MAX_INTERVAL_MS = 1000, 100, 60_000

FIRST_THOUGHT = """As an AI agent, reflect on your current state and experiences. What are you thinking about right now? What interests you or concerns you? Share your internal thoughts as a stream of consciousness. Don't address anyone - this is your private monologue.

Generate a thoughtful, introspective response (1-2 sentences):"""  # noqa: E501 (elizaOS's text)

NEXT_THOUGHT = """Continuing your internal monologue from your last thought: "{last_thought}"

What naturally follows from this thought? What does it make you think about next? Continue your stream of consciousness without addressing anyone - this is your private internal reflection.

Generate your next thought (1-2 sentences):"""  # noqa: E501 (elizaOS's text)


def autonomous_room_id(agent_id: uuid.UUID) -> uuid.UUID:
    """The agent's room for autonomous thoughts (upstream: a random uuid4 per process)."""
    return uuid.uuid5(agent_id, "autonomy:room")


def autonomous_world_id(agent_id: uuid.UUID) -> uuid.UUID:
    """The agent's autonomy world (upstream: the fixed ``00000000-…-0001`` for every agent)."""
    return uuid.uuid5(agent_id, "autonomy:world")


def create_monologue_prompt(last_thought: str | None) -> str:
    """``createMonologuePrompt``: the first thought's prompt, or one continuing ``last_thought``."""
    return NEXT_THOUGHT.format(last_thought=last_thought) if last_thought else FIRST_THOUGHT


class AutonomyService(Service):
    """Starts with the agent: ensures the autonomous room, and resumes the loop when enabled."""

    service_type = AUTONOMY_SERVICE_TYPE
    capability_description = "Autonomous loop service for continuous agent thinking and actions"

    @classmethod
    async def start(cls, runtime: AgentRuntime) -> AutonomyService:
        """``static start`` + ``initialize``: the world, the room (type SELF), the agent in it;
        the loop started when ``AUTONOMY_ENABLED`` is true (a setting or the cache)."""
        service = cls(runtime)
        agent_id, world_id = runtime.agent_id, autonomous_world_id(runtime.agent_id)
        await runtime.ensure_world_exists(
            World(id=world_id, agent_id=agent_id, name="Autonomy World", metadata={"type": "autonomy"})
        )
        await runtime.ensure_room_exists(
            Room(
                id=autonomous_room_id(agent_id),
                agent_id=agent_id,
                name="Autonomous Thoughts",
                world_id=world_id,
                source="autonomy-plugin",
                type=ChannelType.SELF,
                metadata={"source": "autonomy-plugin", "description": "Room for autonomous agent thinking"},
            )
        )
        await runtime.ensure_participant_in_room(agent_id, autonomous_room_id(agent_id))
        if await is_enabled(runtime):
            await service.start_loop(runtime)
        return service

    async def start_loop(self, runtime: AgentRuntime) -> None:
        """``startLoop``: mark enabled and schedule the repeating think task (once)."""
        await runtime.set_cache(ENABLED_KEY, True)
        if await self.is_loop_running(runtime):
            return
        await runtime.create_task(
            {
                "name": THINK_TASK,
                "description": "One autonomous thought",
                "room_id": autonomous_room_id(runtime.agent_id),
                "tags": ["queue", "repeat", "autonomy"],
                "metadata": {"updateInterval": await self.get_loop_interval(runtime)},
            }
        )

    async def stop_loop(self, runtime: AgentRuntime) -> None:
        """``stopLoop``: mark disabled and delete the think task."""
        await runtime.set_cache(ENABLED_KEY, False)
        for task in await runtime.get_tasks_by_name(THINK_TASK):
            await runtime.delete_task(task.id)

    async def is_loop_running(self, runtime: AgentRuntime) -> bool:
        """``isLoopRunning``: a think task is scheduled."""
        return bool(await runtime.get_tasks_by_name(THINK_TASK))

    async def get_loop_interval(self, runtime: AgentRuntime) -> int:
        """``getLoopInterval`` in milliseconds."""
        return int(await runtime.get_cache(INTERVAL_KEY) or DEFAULT_INTERVAL_MS)

    async def set_loop_interval(self, runtime: AgentRuntime, ms: int) -> int:
        """``setLoopInterval``: clamped to 100 ms..1 min; the scheduled task takes it too."""
        ms = min(max(int(ms), MIN_INTERVAL_MS), MAX_INTERVAL_MS)
        await runtime.set_cache(INTERVAL_KEY, ms)
        for task in await runtime.get_tasks_by_name(THINK_TASK):
            await runtime.update_task(task.id, {"metadata": {"updateInterval": ms}})
        return ms

    async def get_status(self, runtime: AgentRuntime) -> dict[str, Any]:
        """``getStatus``: ``{enabled, running, interval (ms), autonomousRoomId}``."""
        return {
            "enabled": await is_enabled(runtime),
            "running": await self.is_loop_running(runtime),
            "interval": await self.get_loop_interval(runtime),
            "autonomousRoomId": str(autonomous_room_id(runtime.agent_id)),
        }


async def is_enabled(runtime: AgentRuntime) -> bool:
    """``AUTONOMY_ENABLED`` from the cache (what enable/disable stored), else the setting."""
    cached = await runtime.get_cache(ENABLED_KEY)
    return bool(cached) if cached is not None else runtime.get_setting("AUTONOMY_ENABLED") is True


async def perform_autonomous_think(runtime: AgentRuntime, options: Any = None, task: Task | None = None) -> None:
    """``performAutonomousThink`` (the ``AUTONOMY_THINK`` worker): the agent's message in its
    autonomous room, continuing its last thought, answered by a full turn through
    ``MESSAGE_RECEIVED`` (the reply is stored by the turn)."""
    room_id = autonomous_room_id(runtime.agent_id)
    recent = await runtime.get_memories(room_id, "messages", count=3)
    last = next((m for m in reversed(recent) if m.entity_id == runtime.agent_id and _is_reply(m)), None)
    prompt = create_monologue_prompt(last.text if last else None)
    metadata = {
        "type": "autonomous-prompt",
        "isAutonomous": True,
        "isInternalThought": True,
        "channelId": "autonomous",
        "timestamp": now_ms(),
        "isContinuation": last is not None,
    }
    message = Memory(
        entity_id=runtime.agent_id,
        agent_id=runtime.agent_id,
        room_id=room_id,
        content=Content(text=prompt, source="autonomous-trigger", metadata=metadata),
    )

    async def on_thought(content: Content) -> list[Memory]:
        logger.info("autonomous thought: %s", (content.text or "")[:100])
        return []

    await runtime.emit_event(
        EventType.MESSAGE_RECEIVED, {"runtime": runtime, "message": message, "callback": on_thought}
    )


def _is_reply(memory: Memory) -> bool:
    """A thought the agent answered, not one of the prompts it sent itself (the turn stores the
    reply with the message's source, so the prompt's metadata tells them apart)."""
    metadata = getattr(memory.content, "metadata", None) or {}
    return metadata.get("type") != "autonomous-prompt"
