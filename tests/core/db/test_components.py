from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from core.types import ChannelType, Component, Entity, Room, World

HOSTILE = [
    "'; DROP TABLE memories; --",
    "x' OR '1'='1",
    "$$; DROP TABLE components; $$",
    "profile%",
    "prof_le",
    '"; DELETE FROM components; --',
]


@pytest.fixture
async def place(adapter, agent_id):
    """A world, a room in it and two entities there: ``(world_id, room_id, alice, bob)``."""
    world_id, room_id, alice, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await adapter.ensure_connection(
        Entity(id=alice, agent_id=agent_id, names=["alice"]),
        Room(id=room_id, agent_id=agent_id, world_id=world_id, type=ChannelType.GROUP),
        World(id=world_id, agent_id=agent_id),
    )
    await adapter.create_entities([Entity(id=bob, agent_id=agent_id, names=["bob"])])
    return world_id, room_id, alice, bob


async def _component_count(adapter) -> int:
    async with adapter.pool.connection() as conn:
        return (await (await conn.execute("SELECT count(*) AS n FROM components")).fetchone())["n"]


async def test_create_and_get_component(adapter, agent_id, place):
    world_id, room_id, alice, bob = place
    component = Component(
        entity_id=alice,
        agent_id=agent_id,
        room_id=room_id,
        world_id=world_id,
        source_entity_id=bob,
        type="profile",
        data={"bio": "hi", "n": [1, {"x": None}]},
        created_at=1_700_000_000_123,
    )
    assert await adapter.create_component(component) is True
    assert await adapter.get_component(agent_id, alice, "profile") == component
    assert await adapter.get_components(agent_id, alice) == [component]


async def test_minimal_component_round_trips(adapter, agent_id, place):
    _, _, alice, _ = place
    component = Component(entity_id=alice, agent_id=agent_id, type="note")
    assert await adapter.create_component(component)
    stored = await adapter.get_component(agent_id, alice, "note")
    assert stored == component
    assert (stored.room_id, stored.world_id, stored.source_entity_id, stored.data) == (None, None, None, {})


async def test_create_component_twice_is_false_and_keeps_the_first(adapter, agent_id, place):
    _, _, alice, _ = place
    component = Component(entity_id=alice, agent_id=agent_id, type="profile", data={"v": 1})
    assert await adapter.create_component(component)
    assert await adapter.create_component(component.model_copy(update={"data": {"v": 2}})) is False
    assert (await adapter.get_component(agent_id, alice, "profile")).data == {"v": 1}


@pytest.mark.parametrize("field", ["entity_id", "room_id", "world_id", "source_entity_id", "agent_id"])
async def test_create_component_with_an_unknown_reference_is_false(adapter, agent_id, place, field):
    _, _, alice, _ = place
    component = Component(entity_id=alice, agent_id=agent_id, type="profile").model_copy(update={field: uuid.uuid4()})
    before = await _component_count(adapter)
    assert await adapter.create_component(component) is False
    assert await _component_count(adapter) == before


async def test_create_component_cannot_point_at_another_agents_rows(adapter, agent_id, other_agent, place):
    world_id, room_id, alice, bob = place
    # The other agent's view of the same entity ids does not exist: nothing to attach to.
    assert await adapter.create_component(Component(entity_id=alice, agent_id=other_agent, type="p")) is False
    await adapter.create_entities([Entity(id=alice, agent_id=other_agent)])
    for field, value in (("room_id", room_id), ("world_id", world_id), ("source_entity_id", bob)):
        foreign = Component(entity_id=alice, agent_id=other_agent, type="p", **{field: value})
        assert await adapter.create_component(foreign) is False, field


async def test_component_type_must_not_be_empty():
    with pytest.raises(ValidationError):
        Component(entity_id=uuid.uuid4(), agent_id=uuid.uuid4(), type="")


async def test_get_component_filters_by_world_and_source(adapter, agent_id, place):
    world_id, room_id, alice, bob = place
    other_world = World(id=uuid.uuid4(), agent_id=agent_id)
    await adapter.create_world(other_world)
    here = Component(
        entity_id=alice,
        agent_id=agent_id,
        world_id=world_id,
        source_entity_id=bob,
        type="role",
        data={"r": "admin"},
        created_at=1_000,
    )
    there = Component(
        entity_id=alice, agent_id=agent_id, world_id=other_world.id, type="role", data={"r": "guest"}, created_at=2_000
    )
    for component in (here, there):
        assert await adapter.create_component(component)
    assert await adapter.get_component(agent_id, alice, "role", world_id=world_id) == here
    assert await adapter.get_component(agent_id, alice, "role", world_id=other_world.id) == there
    assert await adapter.get_component(agent_id, alice, "role", source_entity_id=bob) == here
    assert await adapter.get_component(agent_id, alice, "role", world_id=other_world.id, source_entity_id=bob) is None
    assert await adapter.get_component(agent_id, alice, "role") == there  # newest of several
    assert await adapter.get_components(agent_id, alice) == [here, there]
    assert await adapter.get_components(agent_id, alice, world_id=world_id) == [here]
    assert await adapter.get_components(agent_id, alice, source_entity_id=bob) == [here]
    assert await adapter.get_components(agent_id, alice, world_id=uuid.uuid4()) == []


async def test_get_component_misses(adapter, agent_id, other_agent, place):
    _, _, alice, bob = place
    await adapter.create_component(Component(entity_id=alice, agent_id=agent_id, type="profile"))
    assert await adapter.get_component(agent_id, alice, "Profile") is None  # type is matched exactly
    assert await adapter.get_component(agent_id, bob, "profile") is None
    assert await adapter.get_component(agent_id, uuid.uuid4(), "profile") is None
    assert await adapter.get_component(other_agent, alice, "profile") is None
    assert await adapter.get_components(other_agent, alice) == []
    assert await adapter.get_components(agent_id, bob) == []


async def test_update_component(adapter, agent_id, place):
    world_id, room_id, alice, bob = place
    component = Component(entity_id=alice, agent_id=agent_id, type="profile", data={"v": 1})
    await adapter.create_component(component)
    changed = component.model_copy(
        update={
            "type": "bio",
            "data": {"v": 2, "more": [1]},
            "room_id": room_id,
            "world_id": world_id,
            "source_entity_id": bob,
        }
    )
    assert await adapter.update_component(changed) is True
    assert await adapter.get_component(agent_id, alice, "bio") == changed
    assert await adapter.get_component(agent_id, alice, "profile") is None


async def test_update_component_misses_and_bad_references(adapter, agent_id, other_agent, place):
    _, _, alice, bob = place
    component = Component(entity_id=alice, agent_id=agent_id, type="profile", data={"v": 1})
    await adapter.create_component(component)
    attempts = [
        Component(entity_id=alice, agent_id=agent_id, type="profile"),  # unknown id
        component.model_copy(update={"agent_id": other_agent, "data": {"v": "x"}}),  # another agent
        component.model_copy(update={"entity_id": bob, "data": {"v": "x"}}),  # components never move
        component.model_copy(update={"world_id": uuid.uuid4(), "data": {"v": "x"}}),
        component.model_copy(update={"room_id": uuid.uuid4(), "data": {"v": "x"}}),
        component.model_copy(update={"source_entity_id": uuid.uuid4(), "data": {"v": "x"}}),
    ]
    for attempt in attempts:
        assert await adapter.update_component(attempt) is False
    assert await adapter.get_components(agent_id, alice) == [component]


async def test_delete_component(adapter, agent_id, other_agent, place):
    _, _, alice, _ = place
    keep, drop = (Component(entity_id=alice, agent_id=agent_id, type=t) for t in ("keep", "drop"))
    await adapter.create_component(keep)
    await adapter.create_component(drop)
    assert await adapter.delete_component(other_agent, drop.id) is False
    assert await adapter.delete_component(agent_id, drop.id) is True
    assert await adapter.delete_component(agent_id, drop.id) is False
    assert await adapter.get_components(agent_id, alice) == [keep]


async def test_components_go_with_their_room_world_and_source(adapter, agent_id, place):
    world_id, room_id, alice, bob = place
    loose = Room(id=uuid.uuid4(), agent_id=agent_id)
    await adapter.create_rooms([loose])
    by_room = Component(entity_id=alice, agent_id=agent_id, room_id=loose.id, type="a")
    by_world = Component(entity_id=alice, agent_id=agent_id, world_id=world_id, type="b")
    by_source = Component(entity_id=alice, agent_id=agent_id, source_entity_id=bob, type="c")
    kept = Component(entity_id=alice, agent_id=agent_id, type="d")
    for component in (by_room, by_world, by_source, kept):
        assert await adapter.create_component(component)
    assert await adapter.delete_room(agent_id, loose.id)
    assert {c.type for c in await adapter.get_components(agent_id, alice)} == {"b", "c", "d"}
    assert await adapter.remove_world(agent_id, world_id)
    assert {c.type for c in await adapter.get_components(agent_id, alice)} == {"c", "d"}
    async with adapter.pool.connection() as conn:
        await conn.execute("DELETE FROM entities WHERE agent_id = %s AND id = %s", (agent_id, bob))
    assert await adapter.get_components(agent_id, alice) == [kept]


async def test_hostile_component_types_and_data_are_literal(adapter, agent_id, place):
    _, _, alice, _ = place
    plain = Component(entity_id=alice, agent_id=agent_id, type="profile")
    await adapter.create_component(plain)
    hostile = [
        Component(entity_id=alice, agent_id=agent_id, type=h, data={h: h, "k'\"": [h]}, created_at=1_000 + i)
        for i, h in enumerate(HOSTILE)
    ]
    for component in hostile:
        assert await adapter.create_component(component)
    before = await _component_count(adapter)
    for component in hostile:
        # No pattern matching, no quoting trouble: exactly the one component of that type.
        assert await adapter.get_component(agent_id, alice, component.type) == component
    assert await adapter.get_component(agent_id, alice, "x' OR '1'='1' --") is None
    assert await adapter.get_component(agent_id, alice, "%") is None
    assert len(await adapter.get_components(agent_id, alice)) == len(HOSTILE) + 1
    assert await _component_count(adapter) == before
    async with adapter.pool.connection() as conn:
        row = await (
            await conn.execute("SELECT to_regclass('memories') AS m, to_regclass('components') AS c")
        ).fetchone()
    assert row == {"m": "memories", "c": "components"}
