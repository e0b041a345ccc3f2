"""WORLD_JOINED, WORLD_CONNECTED, ROOM_JOINED and ENTITY_JOINED from ensure_connection(s), real Postgres."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core.blueprint import ConnectionCache
from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.events import EventType
from core.orchestrator import Orchestrator
from core.plugin import Plugin
from core.types import ChannelType, Entity, Room, World

JOIN_EVENTS = (EventType.WORLD_JOINED, EventType.WORLD_CONNECTED, EventType.ROOM_JOINED, EventType.ENTITY_JOINED)


def _forget_connections(orchestrator: Orchestrator, agent_id: uuid.UUID) -> None:
    """As a new container would start: no (entity, room) pair known yet."""
    orchestrator.get_agent(agent_id).connections = ConnectionCache()


@pytest.fixture
async def seen_runtime(adapter, scripted):
    """A runtime whose plugin records every join event as (name, payload)."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def recorder(name: str):
        async def record(payload):
            seen.append((name, dict(payload)))

        return record

    listener = Plugin(name="listener", description="records", events={n: (recorder(n),) for n in JOIN_EVENTS})
    orchestrator = Orchestrator(adapter, plugins=[bootstrap, scripted.plugin(), listener])
    character = load_character_dict({"name": f"J-{uuid.uuid4().hex[:8]}", "bio": ["x"]})
    [agent_id] = await orchestrator.add_agents([character], auto_start=True)
    return orchestrator, agent_id, seen


async def test_a_first_message_from_a_new_server_announces_the_world_the_room_and_the_person(seen_runtime):
    orchestrator, agent_id, seen = seen_runtime
    runtime = orchestrator.runtime(agent_id)
    entity_id, room_id = uuid.uuid4(), uuid.uuid4()
    await runtime.ensure_connection(
        entity_id=entity_id,
        room_id=room_id,
        user_name="al",
        name="Alice",
        user_id="u-1",
        server_id="guild-1",
        world_name="Guild",
        room_name="general",
        source="discord",
        channel_type=ChannelType.GROUP,
    )
    assert [name for name, _ in seen] == [EventType.WORLD_JOINED, EventType.ROOM_JOINED, EventType.ENTITY_JOINED]
    world, room, entity = (payload for _, payload in seen)
    assert world["runtime"] is runtime and world["source"] == "discord"
    assert world["world"].name == "Guild" and [r.id for r in world["rooms"]] == [room_id]
    assert [e.id for e in world["entities"]] == [entity_id]
    assert (room["roomId"], room["worldId"], room["room"].name) == (room_id, world["world"].id, "general")
    assert (entity["entityId"], entity["roomId"], entity["worldId"]) == (entity_id, room_id, world["world"].id)
    assert entity["metadata"] == {"originalId": "u-1", "username": "al", "displayName": "Alice", "type": "GROUP"}
    assert entity["created"] is True and entity["source"] == "discord"


async def test_a_known_person_in_a_new_room_joins_it_and_nothing_is_announced_twice(seen_runtime, adapter):
    orchestrator, agent_id, seen = seen_runtime
    entity_id, room_id = uuid.uuid4(), uuid.uuid4()
    await orchestrator.runtime(agent_id).ensure_connection(entity_id=entity_id, room_id=room_id)
    assert [name for name, _ in seen] == [EventType.ROOM_JOINED, EventType.ENTITY_JOINED]  # no world: none announced
    seen.clear()
    # Another container (no cache of known pairs) sees the same pair: the database says nothing is new.
    _forget_connections(orchestrator, agent_id)
    await orchestrator.runtime(agent_id).ensure_connection(entity_id=entity_id, room_id=room_id, user_name="bob")
    assert seen == []
    other_room = uuid.uuid4()
    await orchestrator.runtime(agent_id).ensure_connection(entity_id=entity_id, room_id=other_room)
    assert [name for name, _ in seen] == [EventType.ROOM_JOINED, EventType.ENTITY_JOINED]
    assert seen[1][1]["created"] is False and seen[1][1]["roomId"] == other_room


async def test_syncing_a_server_announces_it_joined_then_connected(seen_runtime):
    orchestrator, agent_id, seen = seen_runtime
    world = World(id=uuid.uuid4(), agent_id=agent_id, name="server")
    rooms = [Room(id=uuid.uuid4(), agent_id=agent_id, source="discord", type="GROUP") for _ in range(2)]
    people = [Entity(id=uuid.uuid4(), agent_id=agent_id, names=[f"user{i}"]) for i in range(2)]
    await orchestrator.runtime(agent_id).ensure_connections(people, rooms, world)
    names = [name for name, _ in seen]
    assert names == [EventType.WORLD_JOINED, *[EventType.ROOM_JOINED] * 2, *[EventType.ENTITY_JOINED] * 2]
    joined = seen[0][1]
    assert ({r.id for r in joined["rooms"]}, len(joined["entities"]), joined["source"]) == (
        {r.id for r in rooms},
        2,
        "discord",
    )
    seen.clear()
    # A new container connecting to the same server: the world is known, so it is WORLD_CONNECTED.
    _forget_connections(orchestrator, agent_id)
    await orchestrator.runtime(agent_id).ensure_connections(people, rooms, world)
    assert [name for name, _ in seen] == [EventType.WORLD_CONNECTED]
