from __future__ import annotations

import uuid

import pytest

from core.db.adapter import ConnectionWrite, EmbeddingRow, ParticipantUserState
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.errors import DatabaseError
from core.settings import Settings
from core.types import ChannelType, Component, Content, Entity, Memory, Room, World
from tests.wire import traced

#: Strings that would change a query if they were ever spliced into SQL text.
HOSTILE = [
    "'; DROP TABLE memories; --",
    "x' OR '1'='1",
    "$$; DROP TABLE entities; $$",
    "$tag$ OR true $tag$",
    "\\'; SELECT pg_sleep(5); --",
    '"; DELETE FROM rooms; --',
    "Robert'); DROP TABLE participants;--",
    "%s %(a)s {}",
]


async def _connect(adapter, agent_id, *, names=("alice",), metadata=None, world=True, room_type=ChannelType.GROUP):
    """A world, a room and one participant entity; returns (world_id, room_id, entity_id)."""
    world_id, room_id, entity_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await adapter.ensure_connection(
        Entity(id=entity_id, agent_id=agent_id, names=list(names), metadata=metadata or {}),
        Room(id=room_id, agent_id=agent_id, type=room_type, world_id=world_id if world else None),
        World(id=world_id, agent_id=agent_id, name="w") if world else None,
    )
    return world_id, room_id, entity_id


async def _entity_row(adapter, agent_id, entity_id):
    async with adapter.pool.connection() as conn:
        return await (
            await conn.execute(
                "SELECT names, metadata, xmin::text AS version FROM entities WHERE agent_id = %s AND id = %s",
                (agent_id, entity_id),
            )
        ).fetchone()


async def _table_counts(adapter) -> dict[str, int]:
    tables = ("agents", "entities", "worlds", "rooms", "participants", "memories", "components", "relationships")
    async with adapter.pool.connection() as conn:
        return await (
            await conn.execute("SELECT " + ", ".join(f"(SELECT count(*) FROM {t}) AS {t}" for t in tables))
        ).fetchone()


async def _memory_with_vector(adapter, agent_id, room_id, entity_id) -> Memory:
    memory = Memory(agent_id=agent_id, room_id=room_id, entity_id=entity_id, content=Content(text="hi"))
    await adapter.create_memories([memory], "messages")
    vector = [0.0] * 384
    vector[1] = 1.0
    assert await adapter.upsert_embeddings([EmbeddingRow(memory.id, agent_id, memory.content_hash, "t", vector)]) == 1
    return memory


async def _exists(adapter, table: str, **where) -> bool:
    clause = " AND ".join(f"{k} = %({k})s" for k in where)
    async with adapter.pool.connection() as conn:
        row = await (await conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {clause}) AS e", where)).fetchone()
    return row["e"]


# -- ensure_connection ---------------------------------------------------------------------------


async def test_ensure_connection_creates_world_room_entity_and_participant(adapter, agent_id):
    world_id, room_id, entity_id = await _connect(adapter, agent_id, metadata={"api": {"userName": "al"}})
    assert (await adapter.get_world(agent_id, world_id)).name == "w"
    room = await adapter.get_room(agent_id, room_id)
    assert (room.world_id, room.type) == (world_id, ChannelType.GROUP)
    [entity] = await adapter.get_entities_by_ids(agent_id, [entity_id])
    assert (entity.names, entity.metadata) == (["alice"], {"api": {"userName": "al"}})
    assert await adapter.is_room_participant(agent_id, room_id, entity_id)


async def test_ensure_connection_reports_which_rows_it_created(adapter, agent_id):
    world_id, room_id, entity_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    world = World(id=world_id, agent_id=agent_id, name="w")
    room = Room(id=room_id, agent_id=agent_id, world_id=world_id)
    alice = Entity(id=entity_id, agent_id=agent_id, names=["alice"])
    first = await adapter.ensure_connection(alice, room, world)
    assert first == ConnectionWrite(True, True, True, True)
    # Seen again with a new name: the entity is merged, not created, and nothing else is new.
    again = await adapter.ensure_connection(alice.model_copy(update={"names": ["Alice A."]}), room, world)
    assert again == ConnectionWrite(False, False, False, False)
    # A known entity joining another room of the same world: only the room and the participation are new.
    other_room = Room(id=uuid.uuid4(), agent_id=agent_id, world_id=world_id)
    assert await adapter.ensure_connection(alice, other_room, world) == ConnectionWrite(False, True, False, True)
    assert await adapter.ensure_connection(alice, other_room, None) == ConnectionWrite()


async def test_ensure_connection_is_one_round_trip(database_url, agent_id):
    # BEGIN, the four upserts and COMMIT go out behind one Sync (read from libpq's protocol trace).
    pool = create_pool(Settings(database_url=database_url, pool_max_size=1))
    await pool.open()
    try:
        adapter = PostgresAdapter(pool)
        async with pool.connection() as conn:  # the pool's one connection, the call's
            pgconn = conn.pgconn
        with traced(pgconn) as wire:
            await _connect(adapter, agent_id)
        [sent] = wire.round_trips
        assert sent.count("Execute") == 6  # BEGIN, world, room, entity, participant, COMMIT
    finally:
        await pool.close()


async def test_a_failed_ensure_connection_writes_nothing_and_leaves_the_connection_usable(database_url):
    pool = create_pool(Settings(database_url=database_url, pool_max_size=1))
    await pool.open()
    try:
        adapter = PostgresAdapter(pool)
        before = await _table_counts(adapter)
        with pytest.raises(DatabaseError):  # no such agent: the world's insert fails, the rest is rolled back
            await _connect(adapter, uuid.uuid4())
        assert await _table_counts(adapter) == before  # on the same (only) connection: it is idle again
    finally:
        await pool.close()


async def test_ensure_connection_merges_names_newest_first_without_duplicates(adapter, agent_id):
    _, room_id, entity_id = await _connect(adapter, agent_id, names=["alice", "al"])
    room = Room(id=room_id, agent_id=agent_id)
    await adapter.ensure_connection(Entity(id=entity_id, agent_id=agent_id, names=["Alice A.", "al"]), room, None)
    assert (await _entity_row(adapter, agent_id, entity_id))["names"] == ["Alice A.", "al", "alice"]
    # A name seen again becomes the most recent one.
    await adapter.ensure_connection(Entity(id=entity_id, agent_id=agent_id, names=["alice"]), room, None)
    assert (await _entity_row(adapter, agent_id, entity_id))["names"] == ["alice", "Alice A.", "al"]
    assert (await adapter.get_entity_names(agent_id, [entity_id])) == {entity_id: "alice"}


async def test_ensure_connection_merges_metadata_per_source(adapter, agent_id):
    first = {"api": {"userName": "al", "tz": "UTC"}, "discord": {"id": "1"}, "flag": 1}
    _, room_id, entity_id = await _connect(adapter, agent_id, metadata=first)
    later = {"api": {"userName": "alice", "email": "a@x"}, "flag": {"now": "object"}, "telegram": {"id": "2"}}
    await adapter.ensure_connection(
        Entity(id=entity_id, agent_id=agent_id, metadata=later), Room(id=room_id, agent_id=agent_id), None
    )
    assert (await _entity_row(adapter, agent_id, entity_id))["metadata"] == {
        "api": {"userName": "alice", "tz": "UTC", "email": "a@x"},
        "discord": {"id": "1"},
        "flag": {"now": "object"},
        "telegram": {"id": "2"},
    }


async def test_ensure_connection_does_not_rewrite_an_unchanged_entity(adapter, agent_id):
    _, room_id, entity_id = await _connect(adapter, agent_id, names=["alice", "al"], metadata={"api": {"a": 1}})
    before = await _entity_row(adapter, agent_id, entity_id)
    await adapter.ensure_connection(
        Entity(id=entity_id, agent_id=agent_id, names=["alice"], metadata={"api": {"a": 1}}),
        Room(id=room_id, agent_id=agent_id),
        None,
    )
    after = await _entity_row(adapter, agent_id, entity_id)
    assert after == before  # same xmin: no new row version was written


async def test_ensure_connection_leaves_existing_world_and_room_alone(adapter, agent_id):
    world_id, room_id, entity_id = await _connect(adapter, agent_id)
    await adapter.ensure_connection(
        Entity(id=entity_id, agent_id=agent_id),
        Room(id=room_id, agent_id=agent_id, name="renamed", type=ChannelType.DM, world_id=world_id),
        World(id=world_id, agent_id=agent_id, name="renamed"),
    )
    assert (await adapter.get_world(agent_id, world_id)).name == "w"
    room = await adapter.get_room(agent_id, room_id)
    assert (room.name, room.type) == (None, ChannelType.GROUP)


# -- entities ------------------------------------------------------------------------------------


async def test_create_entities_returns_created_ids_and_leaves_existing_ones(adapter, agent_id):
    old = Entity(id=uuid.uuid4(), agent_id=agent_id, names=["old"], metadata={"k": 1})
    assert await adapter.create_entities([old]) == [old.id]
    new = Entity(id=uuid.uuid4(), agent_id=agent_id, names=["n", "n", "m"], metadata={"api": {"x": 1}})
    again = Entity(id=old.id, agent_id=agent_id, names=["changed"], metadata={"k": 2})
    created = await adapter.create_entities([new, again, new])
    assert created == [new.id]
    got = {e.id: e for e in await adapter.get_entities_by_ids(agent_id, [old.id, new.id])}
    assert (got[old.id].names, got[old.id].metadata) == (["old"], {"k": 1})
    assert (got[new.id].names, got[new.id].metadata) == (["n", "m"], {"api": {"x": 1}})


async def test_create_entities_of_many_agents_and_unknown_agents(adapter, agent_id, other_agent):
    mine = Entity(id=uuid.uuid4(), agent_id=agent_id)
    theirs = Entity(id=mine.id, agent_id=other_agent, names=["same id, other agent"])
    ghost = Entity(id=uuid.uuid4(), agent_id=uuid.uuid4())
    assert sorted(await adapter.create_entities([mine, theirs, ghost])) == sorted([mine.id, mine.id])
    assert (await adapter.get_entities_by_ids(other_agent, [mine.id]))[0].names == ["same id, other agent"]
    assert await adapter.get_entities_by_ids(agent_id, [mine.id]) == [mine]


async def test_create_entities_of_nothing_is_nothing(adapter):
    assert await adapter.create_entities([]) == []


async def test_get_entities_by_ids_keeps_the_order_asked_and_skips_unknown_and_foreign(adapter, agent_id, other_agent):
    a, b, c = (Entity(id=uuid.uuid4(), agent_id=agent_id, names=[n]) for n in "abc")
    foreign = Entity(id=uuid.uuid4(), agent_id=other_agent, names=["foreign"])
    await adapter.create_entities([a, b, c, foreign])
    got = await adapter.get_entities_by_ids(agent_id, [c.id, uuid.uuid4(), a.id, foreign.id, b.id])
    assert [e.names[0] for e in got] == ["c", "a", "b"]
    assert await adapter.get_entities_by_ids(agent_id, []) == []


async def test_get_entities_for_room_lists_participants_in_join_order(adapter, agent_id, other_agent):
    _, room_id, alice = await _connect(adapter, agent_id)
    bob, carol = Entity(id=uuid.uuid4(), agent_id=agent_id, names=["bob"]), Entity(id=uuid.uuid4(), agent_id=agent_id)
    await adapter.create_entities([bob, carol])
    assert await adapter.add_participants_room(agent_id, [bob.id], room_id)
    entities = await adapter.get_entities_for_room(agent_id, room_id)
    assert [e.id for e in entities] == [alice, bob.id]  # carol is not a participant
    assert "components" not in entities[0].model_dump()
    assert await adapter.get_entities_for_room(other_agent, room_id) == []
    assert await adapter.get_entities_for_room(agent_id, uuid.uuid4()) == []


async def test_get_entities_for_room_with_components(adapter, agent_id):
    world_id, room_id, alice = await _connect(adapter, agent_id)
    bob = Entity(id=uuid.uuid4(), agent_id=agent_id, names=["bob"])
    await adapter.create_entities([bob])
    await adapter.add_participants_room(agent_id, [bob.id], room_id)
    first = Component(entity_id=alice, agent_id=agent_id, type="profile", data={"n": 1}, created_at=1_700_000_000_000)
    second = Component(
        entity_id=alice,
        agent_id=agent_id,
        world_id=world_id,
        room_id=room_id,
        source_entity_id=bob.id,
        type="role",
        data={"role": "admin"},
        created_at=1_700_000_000_001,
    )
    assert await adapter.create_component(second) and await adapter.create_component(first)
    entities = {e.id: e for e in await adapter.get_entities_for_room(agent_id, room_id, include_components=True)}
    assert entities[alice].components == [first, second]
    assert entities[bob.id].components == []
    dumped = entities[alice].to_json_dict()
    assert dumped["components"][1]["sourceEntityId"] == str(bob.id)


async def test_update_entity_replaces_or_merges(adapter, agent_id):
    entity = Entity(id=uuid.uuid4(), agent_id=agent_id, names=["a", "b"], metadata={"api": {"x": 1, "y": 2}})
    await adapter.create_entities([entity])
    assert (
        await adapter.update_entity(
            Entity(id=entity.id, agent_id=agent_id, names=["c", "c"], metadata={"api": {"x": 9}})
        )
        is True
    )
    [stored] = await adapter.get_entities_by_ids(agent_id, [entity.id])
    assert (stored.names, stored.metadata) == (["c"], {"api": {"x": 9}})
    assert await adapter.update_entity(
        Entity(id=entity.id, agent_id=agent_id, names=["d", "c"], metadata={"api": {"z": 3}, "tg": {}}), merge=True
    )
    [stored] = await adapter.get_entities_by_ids(agent_id, [entity.id])
    assert (stored.names, stored.metadata) == (["d", "c"], {"api": {"x": 9, "z": 3}, "tg": {}})


async def test_update_entity_of_unknown_or_foreign_entity_is_false(adapter, agent_id, other_agent):
    entity = Entity(id=uuid.uuid4(), agent_id=agent_id, names=["mine"])
    await adapter.create_entities([entity])
    assert await adapter.update_entity(Entity(id=uuid.uuid4(), agent_id=agent_id)) is False
    assert await adapter.update_entity(Entity(id=entity.id, agent_id=other_agent, names=["hijack"])) is False
    assert (await adapter.get_entities_by_ids(agent_id, [entity.id]))[0].names == ["mine"]
    assert await adapter.get_entities_by_ids(other_agent, [entity.id]) == []


# -- worlds --------------------------------------------------------------------------------------


async def test_world_lifecycle(adapter, agent_id):
    world = World(id=uuid.uuid4(), agent_id=agent_id, name="guild", server_id="s1", metadata={"owner": "x"})
    assert await adapter.create_world(world) is True
    assert await adapter.create_world(world.model_copy(update={"name": "dup"})) is False
    assert await adapter.get_world(agent_id, world.id) == world
    changed = world.model_copy(update={"name": "renamed", "server_id": None, "metadata": {}})
    assert await adapter.update_world(changed) is True
    assert await adapter.get_world(agent_id, world.id) == changed
    assert await adapter.remove_world(agent_id, world.id) is True
    assert await adapter.get_world(agent_id, world.id) is None
    assert await adapter.remove_world(agent_id, world.id) is False
    assert await adapter.update_world(changed) is False


async def test_get_all_worlds_is_scoped_and_oldest_first(adapter, agent_id, other_agent):
    worlds = [World(id=uuid.uuid4(), agent_id=agent_id, name=f"w{i}") for i in range(3)]
    for world in worlds:
        await adapter.create_world(world)
    await adapter.create_world(World(id=uuid.uuid4(), agent_id=other_agent, name="theirs"))
    assert [w.name for w in await adapter.get_all_worlds(agent_id)] == ["w0", "w1", "w2"]
    assert [w.name for w in await adapter.get_all_worlds(other_agent)] == ["theirs"]


async def test_worlds_of_other_agents_are_invisible(adapter, agent_id, other_agent):
    world = World(id=uuid.uuid4(), agent_id=agent_id, name="mine")
    await adapter.create_world(world)
    assert await adapter.get_world(other_agent, world.id) is None
    assert await adapter.update_world(world.model_copy(update={"agent_id": other_agent})) is False
    assert await adapter.remove_world(other_agent, world.id) is False
    assert await adapter.get_world(agent_id, world.id) == world


async def test_create_world_for_unknown_agent_is_false(adapter):
    assert await adapter.create_world(World(id=uuid.uuid4(), agent_id=uuid.uuid4())) is False


async def test_remove_world_cascades_to_rooms_memories_participants_and_components(adapter, agent_id):
    world_id, room_id, entity_id = await _connect(adapter, agent_id)
    _, loose_room, _ = await _connect(adapter, agent_id, world=False)
    memory = await _memory_with_vector(adapter, agent_id, room_id, entity_id)
    component = Component(entity_id=entity_id, agent_id=agent_id, world_id=world_id, type="role")
    await adapter.create_component(component)
    assert await adapter.remove_world(agent_id, world_id)
    assert await adapter.get_rooms_for_world(agent_id, world_id) == []
    assert await adapter.get_room(agent_id, room_id) is None
    assert not await _exists(adapter, "memories", id=memory.id)
    assert not await _exists(adapter, "embeddings", memory_id=memory.id)
    assert not await _exists(adapter, "participants", agent_id=agent_id, room_id=room_id)
    assert await adapter.get_components(agent_id, entity_id) == []
    assert await adapter.get_room(agent_id, loose_room) is not None  # a room of no world stays
    assert await adapter.get_entities_by_ids(agent_id, [entity_id]) != []  # entities outlive rooms


# -- rooms ---------------------------------------------------------------------------------------


async def test_create_rooms_in_one_batch(adapter, agent_id):
    world = World(id=uuid.uuid4(), agent_id=agent_id)
    await adapter.create_world(world)
    rooms = [
        Room(
            id=uuid.uuid4(),
            agent_id=agent_id,
            world_id=world.id,
            name="general",
            source="discord",
            type=ChannelType.GROUP,
            channel_id="c1",
            server_id="s1",
            metadata={"topic": "x"},
        ),
        Room(id=uuid.uuid4(), agent_id=agent_id),
    ]
    assert await adapter.create_rooms(rooms) == [r.id for r in rooms]
    assert await adapter.get_rooms_by_ids(agent_id, [r.id for r in rooms]) == rooms
    assert await adapter.create_rooms(rooms) == []
    assert await adapter.create_rooms([]) == []


async def test_create_rooms_skips_unknown_worlds_agents_and_existing_rooms(adapter, agent_id, other_agent):
    existing = Room(id=uuid.uuid4(), agent_id=agent_id, name="kept")
    await adapter.create_rooms([existing])
    foreign_world = World(id=uuid.uuid4(), agent_id=other_agent)
    await adapter.create_world(foreign_world)
    ok = Room(id=uuid.uuid4(), agent_id=agent_id)
    batch = [
        Room(id=uuid.uuid4(), agent_id=agent_id, world_id=uuid.uuid4()),
        Room(id=uuid.uuid4(), agent_id=agent_id, world_id=foreign_world.id),  # another agent's world
        Room(id=uuid.uuid4(), agent_id=uuid.uuid4()),
        existing.model_copy(update={"name": "changed"}),
        ok,
    ]
    assert await adapter.create_rooms(batch) == [ok.id]
    assert (await adapter.get_room(agent_id, existing.id)).name == "kept"


async def test_get_rooms_by_ids_keeps_order_and_scope(adapter, agent_id, other_agent):
    mine = [Room(id=uuid.uuid4(), agent_id=agent_id, name=n) for n in ("a", "b")]
    theirs = Room(id=uuid.uuid4(), agent_id=other_agent, name="theirs")
    await adapter.create_rooms([*mine, theirs])
    got = await adapter.get_rooms_by_ids(agent_id, [mine[1].id, theirs.id, uuid.uuid4(), mine[0].id])
    assert [r.name for r in got] == ["b", "a"]
    assert await adapter.get_room(other_agent, mine[0].id) is None


async def test_get_rooms_for_world(adapter, agent_id, other_agent):
    world_id, room_id, _ = await _connect(adapter, agent_id)
    second = Room(id=uuid.uuid4(), agent_id=agent_id, world_id=world_id, name="second")
    await adapter.create_rooms([second, Room(id=uuid.uuid4(), agent_id=agent_id)])
    assert [r.id for r in await adapter.get_rooms_for_world(agent_id, world_id)] == [room_id, second.id]
    assert await adapter.get_rooms_for_world(other_agent, world_id) == []
    assert await adapter.get_rooms_for_world(agent_id, uuid.uuid4()) == []


async def test_update_room(adapter, agent_id, other_agent):
    world_id, room_id, _ = await _connect(adapter, agent_id)
    other_world = World(id=uuid.uuid4(), agent_id=agent_id)
    await adapter.create_world(other_world)
    changed = Room(
        id=room_id,
        agent_id=agent_id,
        world_id=other_world.id,
        name="new",
        source="slack",
        type=ChannelType.THREAD,
        channel_id="c",
        server_id="s",
        metadata={"a": [1]},
    )
    assert await adapter.update_room(changed) is True
    assert await adapter.get_room(agent_id, room_id) == changed
    detached = changed.model_copy(update={"world_id": None})
    assert await adapter.update_room(detached) is True
    assert (await adapter.get_room(agent_id, room_id)).world_id is None
    assert await adapter.update_room(changed.model_copy(update={"world_id": uuid.uuid4()})) is False
    assert await adapter.update_room(changed.model_copy(update={"agent_id": other_agent})) is False
    assert await adapter.update_room(Room(id=uuid.uuid4(), agent_id=agent_id)) is False
    assert await adapter.get_room(agent_id, room_id) == detached


async def test_delete_room_cascades_to_memories_participants_and_components(adapter, agent_id, other_agent):
    _, room_id, entity_id = await _connect(adapter, agent_id)
    _, kept_room, _ = await _connect(adapter, agent_id)
    memory = await _memory_with_vector(adapter, agent_id, room_id, entity_id)
    await adapter.create_component(Component(entity_id=entity_id, agent_id=agent_id, room_id=room_id, type="seen"))
    await adapter.create_component(Component(entity_id=entity_id, agent_id=agent_id, type="profile"))
    assert await adapter.delete_room(other_agent, room_id) is False
    assert await adapter.delete_room(agent_id, room_id) is True
    assert await adapter.get_room(agent_id, room_id) is None
    assert not await _exists(adapter, "memories", id=memory.id)
    assert not await _exists(adapter, "embeddings", memory_id=memory.id)
    assert await adapter.get_participants_for_room(agent_id, room_id) == []
    assert [c.type for c in await adapter.get_components(agent_id, entity_id)] == ["profile"]
    assert await adapter.get_room(agent_id, kept_room) is not None
    assert await adapter.delete_room(agent_id, room_id) is False


async def test_rooms_for_participants(adapter, agent_id, other_agent):
    _, room_a, alice = await _connect(adapter, agent_id)
    _, room_b, bob = await _connect(adapter, agent_id)
    _, room_c, _ = await _connect(adapter, agent_id)
    await adapter.add_participants_room(agent_id, [alice], room_b)
    assert await adapter.get_rooms_for_participant(agent_id, alice) == [room_a, room_b]
    assert await adapter.get_rooms_for_participant(agent_id, bob) == [room_b]
    assert await adapter.get_rooms_for_participants(agent_id, [bob, alice]) == [room_a, room_b]
    assert room_c not in await adapter.get_rooms_for_participants(agent_id, [alice, bob])
    assert await adapter.get_rooms_for_participants(agent_id, []) == []
    assert await adapter.get_rooms_for_participant(other_agent, alice) == []


# -- participants --------------------------------------------------------------------------------


async def test_add_participants_room_in_one_batch_is_idempotent(adapter, agent_id):
    _, room_id, alice = await _connect(adapter, agent_id)
    others = [Entity(id=uuid.uuid4(), agent_id=agent_id) for _ in range(3)]
    await adapter.create_entities(others)
    ids = [e.id for e in others]
    assert await adapter.add_participants_room(agent_id, [*ids, ids[0], alice], room_id) is True
    assert await adapter.add_participants_room(agent_id, ids, room_id) is True
    participants = await adapter.get_participants_for_room(agent_id, room_id)
    assert participants[0] == alice and sorted(participants[1:]) == sorted(ids)
    assert await adapter.add_participants_room(agent_id, [], room_id) is True


async def test_add_participants_room_keeps_an_existing_state(adapter, agent_id):
    _, room_id, alice = await _connect(adapter, agent_id)
    await adapter.set_participant_user_state(agent_id, room_id, alice, "MUTED")
    assert await adapter.add_participants_room(agent_id, [alice], room_id)
    assert await adapter.get_participant_user_state(agent_id, room_id, alice) is ParticipantUserState.MUTED


async def test_add_participants_room_with_unknown_ids(adapter, agent_id, other_agent):
    _, room_id, _ = await _connect(adapter, agent_id)
    known = Entity(id=uuid.uuid4(), agent_id=agent_id)
    foreign = Entity(id=uuid.uuid4(), agent_id=other_agent)
    await adapter.create_entities([known, foreign])
    assert await adapter.add_participants_room(agent_id, [known.id, uuid.uuid4(), foreign.id], room_id) is False
    assert await adapter.is_room_participant(agent_id, room_id, known.id)  # the known one is added anyway
    assert not await adapter.is_room_participant(agent_id, room_id, foreign.id)
    assert await adapter.add_participants_room(agent_id, [known.id], uuid.uuid4()) is False
    assert await adapter.add_participants_room(other_agent, [foreign.id], room_id) is False
    assert await adapter.get_participants_for_room(other_agent, room_id) == []


async def test_remove_participant(adapter, agent_id, other_agent):
    _, room_id, alice = await _connect(adapter, agent_id)
    assert await adapter.remove_participant(other_agent, alice, room_id) is False
    assert await adapter.remove_participant(agent_id, alice, room_id) is True
    assert not await adapter.is_room_participant(agent_id, room_id, alice)
    assert await adapter.remove_participant(agent_id, alice, room_id) is False
    assert await adapter.get_entities_by_ids(agent_id, [alice]) != []  # the entity stays


async def test_get_participants_for_entity(adapter, agent_id, other_agent):
    _, room_a, alice = await _connect(adapter, agent_id)
    _, room_b, _ = await _connect(adapter, agent_id)
    await adapter.add_participants_room(agent_id, [alice], room_b)
    await adapter.set_participant_user_state(agent_id, room_b, alice, ParticipantUserState.FOLLOWED)
    records = await adapter.get_participants_for_entity(agent_id, alice)
    assert [(r.room_id, r.entity_id, r.room_state) for r in records] == [
        (room_a, alice, None),
        (room_b, alice, ParticipantUserState.FOLLOWED),
    ]
    assert all(r.created_at > 1_600_000_000_000 for r in records)
    assert await adapter.get_participants_for_entity(other_agent, alice) == []
    assert await adapter.get_participants_for_entity(agent_id, uuid.uuid4()) == []


async def test_is_room_participant(adapter, agent_id, other_agent):
    _, room_id, alice = await _connect(adapter, agent_id)
    assert await adapter.is_room_participant(agent_id, room_id, alice) is True
    assert await adapter.is_room_participant(other_agent, room_id, alice) is False
    assert await adapter.is_room_participant(agent_id, uuid.uuid4(), alice) is False
    assert await adapter.is_room_participant(agent_id, room_id, uuid.uuid4()) is False


@pytest.mark.parametrize("state", ["FOLLOWED", "MUTED", ParticipantUserState.FOLLOWED, ParticipantUserState.MUTED])
async def test_participant_user_state_round_trips(adapter, agent_id, state):
    _, room_id, alice = await _connect(adapter, agent_id)
    assert await adapter.get_participant_user_state(agent_id, room_id, alice) is None
    assert await adapter.set_participant_user_state(agent_id, room_id, alice, state) is True
    assert await adapter.get_participant_user_state(agent_id, room_id, alice) == ParticipantUserState(state)
    assert await adapter.set_participant_user_state(agent_id, room_id, alice, None) is True
    assert await adapter.get_participant_user_state(agent_id, room_id, alice) is None


@pytest.mark.parametrize("bad", ["followed", "BLOCKED", "", " MUTED", 1, True, ["MUTED"], "MUTED'; --"])
async def test_participant_user_state_refuses_bad_values(adapter, agent_id, bad):
    _, room_id, alice = await _connect(adapter, agent_id)
    await adapter.set_participant_user_state(agent_id, room_id, alice, "MUTED")
    with pytest.raises(ValueError):
        await adapter.set_participant_user_state(agent_id, room_id, alice, bad)
    assert await adapter.get_participant_user_state(agent_id, room_id, alice) is ParticipantUserState.MUTED


async def test_participant_user_state_of_non_participant(adapter, agent_id, other_agent):
    _, room_id, alice = await _connect(adapter, agent_id)
    assert await adapter.set_participant_user_state(agent_id, room_id, uuid.uuid4(), "MUTED") is False
    assert await adapter.set_participant_user_state(other_agent, room_id, alice, "MUTED") is False
    assert await adapter.get_participant_user_state(agent_id, uuid.uuid4(), alice) is None
    assert await adapter.get_participant_user_state(agent_id, room_id, alice) is None


# -- hostile text --------------------------------------------------------------------------------


async def test_hostile_names_metadata_and_room_fields_are_stored_literally(adapter, agent_id):
    before = await _table_counts(adapter)
    entity = Entity(
        id=uuid.uuid4(),
        agent_id=agent_id,
        names=[*HOSTILE, HOSTILE[0]],
        metadata={h: {h: h} for h in HOSTILE} | {"k'ey": {'in"ner': "v"}, 'a"b': 1},
    )
    room = Room(
        id=uuid.uuid4(),
        agent_id=agent_id,
        name=HOSTILE[1],
        source=HOSTILE[0],
        channel_id=HOSTILE[2],
        server_id=HOSTILE[3],
        metadata={HOSTILE[4]: HOSTILE[5]},
    )
    world = World(id=uuid.uuid4(), agent_id=agent_id, name=HOSTILE[2], server_id=HOSTILE[6], metadata={"'": "$$"})
    room = room.model_copy(update={"world_id": world.id})
    await adapter.ensure_connection(entity, room, world)
    # A merge with hostile keys on both sides must still be literal.
    later = {HOSTILE[0]: {"extra": HOSTILE[1]}, "k'ey": {'in"ner': "w", "'": "$$"}}
    await adapter.ensure_connection(
        Entity(id=entity.id, agent_id=agent_id, names=[HOSTILE[7]], metadata=later), room, world
    )
    [stored] = await adapter.get_entities_by_ids(agent_id, [entity.id])
    assert stored.names == [HOSTILE[7], *HOSTILE[:7]]
    assert stored.metadata[HOSTILE[0]] == {HOSTILE[0]: HOSTILE[0], "extra": HOSTILE[1]}
    assert stored.metadata["k'ey"] == {'in"ner': "w", "'": "$$"}
    assert stored.metadata['a"b'] == 1
    assert await adapter.get_room(agent_id, room.id) == room
    assert await adapter.get_world(agent_id, world.id) == world
    assert await adapter.get_entity_names(agent_id, [entity.id]) == {entity.id: HOSTILE[7]}

    # Exactly this test's rows were added (one entity, world, room, participant); no table lost any.
    added = {"entities": 1, "worlds": 1, "rooms": 1, "participants": 1}
    assert await _table_counts(adapter) == {t: n + added.get(t, 0) for t, n in before.items()}


async def test_hostile_entity_created_in_batch_and_updated_literally(adapter, agent_id):
    entities = [Entity(id=uuid.uuid4(), agent_id=agent_id, names=[h], metadata={h: h}) for h in HOSTILE]
    assert sorted(await adapter.create_entities(entities)) == sorted(e.id for e in entities)
    got = await adapter.get_entities_by_ids(agent_id, [e.id for e in entities])
    assert got == entities
    assert await adapter.update_entity(entities[0].model_copy(update={"names": HOSTILE[::-1]}), merge=True)
    [updated] = await adapter.get_entities_by_ids(agent_id, [entities[0].id])
    assert updated.names == HOSTILE[::-1]
    rooms = [Room(id=uuid.uuid4(), agent_id=agent_id, name=h, source=h) for h in HOSTILE]
    assert len(await adapter.create_rooms(rooms)) == len(HOSTILE)
    assert await adapter.get_rooms_by_ids(agent_id, [r.id for r in rooms]) == rooms
