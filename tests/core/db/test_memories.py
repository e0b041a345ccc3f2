from __future__ import annotations

import asyncio
import uuid

import pytest

from core.db.adapter import AgentRecord, EmbeddingRow
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.db.postgres.memories import decode_cursor, encode_cursor
from core.db.postgres.values import MAX_PAGE_SIZE
from core.errors import DatabaseError, NotFoundError
from core.settings import Settings
from core.types import ChannelType, Content, Entity, Log, Memory, MemoryMetadata, MemoryType, Room, World
from core.types.memory import content_hash
from tests.wire import traced

BASE_MS = 1_700_000_000_000
EVIL = ["'; DROP TABLE memories; --", "x' OR '1'='1", "$$", "$1", "%s", "%(agent)s", 'a"b', "\\", "ünï 🚀"]


async def _room(adapter, agent_id, *, world: bool = True) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID | None]:
    room_id, entity_id = uuid.uuid4(), uuid.uuid4()
    world_id = uuid.uuid4() if world else None
    await adapter.ensure_connection(
        Entity(id=entity_id, agent_id=agent_id, names=["alice"]),
        Room(id=room_id, agent_id=agent_id, type=ChannelType.GROUP, world_id=world_id),
        World(id=world_id, agent_id=agent_id, name="w") if world else None,
    )
    return room_id, entity_id, world_id


async def _other_agent(adapter) -> uuid.UUID:
    other = uuid.uuid4()
    await adapter.upsert_agents([AgentRecord(other, f"other-{other}", {})])
    return other


def _memory(agent_id, room_id, entity_id, text, created_at=None, **extra) -> Memory:
    if created_at is not None:
        extra["created_at"] = created_at
    return Memory(agent_id=agent_id, room_id=room_id, entity_id=entity_id, content=Content(text=text), **extra)


async def _store(adapter, agent_id, room_id, entity_id, n, table="messages", start=BASE_MS) -> list[Memory]:
    memories = [_memory(agent_id, room_id, entity_id, f"m{i}", start + i) for i in range(n)]
    await adapter.create_memories(memories, table)
    return memories


async def _tables_intact(adapter) -> None:
    async with adapter.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT to_regclass('memories') IS NOT NULL AS memories, to_regclass('embeddings') IS NOT NULL AS e,"
                " to_regclass('agents') IS NOT NULL AS agents"
            )
        ).fetchone()
    assert row == {"memories": True, "e": True, "agents": True}


# -- create_memory ---------------------------------------------------------------------------------


async def test_create_memory_stores_and_reads_back_scoped_by_agent(adapter, agent_id):
    room_id, entity_id, world_id = await _room(adapter, agent_id)
    memory = _memory(
        agent_id,
        room_id,
        entity_id,
        "hello",
        BASE_MS + 7,
        metadata=MemoryMetadata(type=MemoryType.DOCUMENT, source="api"),
    )
    assert await adapter.create_memory(memory, "documents") == memory.id
    got = await adapter.get_memory_by_id(agent_id, memory.id)
    assert got is not None
    assert (got.text, got.created_at, got.room_id, got.entity_id) == ("hello", BASE_MS + 7, room_id, entity_id)
    assert got.metadata.type is MemoryType.DOCUMENT and got.metadata.source == "api"
    # The room's world is filled in when the memory has none.
    assert got.world_id == world_id
    assert await adapter.get_memory_by_id(await _other_agent(adapter), memory.id) is None
    assert await adapter.get_memory_by_id(agent_id, uuid.uuid4()) is None


async def test_create_memories_batch_still_works_and_fills_world(adapter, agent_id):
    room_id, entity_id, world_id = await _room(adapter, agent_id)
    explicit = uuid.uuid4()
    await adapter.ensure_connection(
        Entity(id=entity_id, agent_id=agent_id),
        Room(id=uuid.uuid4(), agent_id=agent_id),
        World(id=explicit, agent_id=agent_id),
    )
    a = _memory(agent_id, room_id, entity_id, "a", BASE_MS)
    b = _memory(agent_id, room_id, entity_id, "b", BASE_MS + 1, world_id=explicit)
    await adapter.create_memories([a, b], "messages")
    got = {m.text: m.world_id for m in await adapter.get_memories(agent_id, room_id, "messages", 10)}
    assert got == {"a": world_id, "b": explicit}


async def test_unique_create_returns_the_existing_duplicate_and_stores_nothing(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    first = _memory(agent_id, room_id, entity_id, "the sky is blue")
    assert await adapter.create_memory(first, "facts", unique=True) == first.id
    again = _memory(agent_id, room_id, entity_id, "the sky is blue")
    assert await adapter.create_memory(again, "facts", unique=True) == first.id
    assert await adapter.get_memory_by_id(agent_id, again.id) is None
    assert await adapter.count_memories(agent_id, room_id, "facts") == 1


async def test_unique_is_per_room_table_and_agent(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    other_room, _, _ = await _room(adapter, agent_id)
    text = "same text"
    ids = {
        await adapter.create_memory(_memory(agent_id, room_id, entity_id, text), "facts", unique=True),
        await adapter.create_memory(_memory(agent_id, room_id, entity_id, text), "messages", unique=True),
        await adapter.create_memory(_memory(agent_id, other_room, entity_id, text), "facts", unique=True),
    }
    other = await _other_agent(adapter)
    o_room, o_entity, _ = await _room(adapter, other)
    ids.add(await adapter.create_memory(_memory(other, o_room, o_entity, text), "facts", unique=True))
    assert len(ids) == 4
    # Different text in the same room and table is not a duplicate.
    assert await adapter.create_memory(_memory(agent_id, room_id, entity_id, "other"), "facts", unique=True) not in ids


async def test_non_unique_create_stores_duplicates_flagged_not_unique(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    for _ in range(3):
        await adapter.create_memory(_memory(agent_id, room_id, entity_id, "hi"), "messages")
    assert await adapter.count_memories(agent_id, room_id, "messages") == 3
    assert await adapter.count_memories(agent_id, room_id, "messages", unique_only=True) == 1


async def test_memories_without_text_are_never_deduplicated(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    a = Memory(agent_id=agent_id, room_id=room_id, entity_id=entity_id, content=Content(actions=["A"]))
    b = Memory(agent_id=agent_id, room_id=room_id, entity_id=entity_id, content=Content(actions=["B"]))
    assert await adapter.create_memory(a, "messages", unique=True) == a.id
    assert await adapter.create_memory(b, "messages", unique=True) == b.id
    assert await adapter.count_memories(agent_id, room_id, "messages", unique_only=True) == 2


async def test_concurrent_unique_creates_store_exactly_one(adapter, agent_id, database_url):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    # Six connections opened up front, so the inserts really run at the same time.
    pool = create_pool(Settings(database_url=database_url, pool_min_size=6, pool_max_size=6))
    await pool.open(wait=True)
    try:
        racing = PostgresAdapter(pool)
        for round_ in range(5):
            memories = [_memory(agent_id, room_id, entity_id, f"race {round_}") for _ in range(6)]
            ids = await asyncio.gather(*(racing.create_memory(m, "facts", unique=True) for m in memories))
            assert len(set(ids)) == 1 and ids[0] in {m.id for m in memories}
    finally:
        await pool.close()
    assert await adapter.count_memories(agent_id, room_id, "facts") == 5


async def test_retried_create_is_idempotent_and_foreign_ids_are_refused(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    memory = _memory(agent_id, room_id, entity_id, "once")
    assert await adapter.create_memory(memory, "messages") == memory.id
    assert await adapter.create_memory(memory, "messages") == memory.id
    assert await adapter.count_memories(agent_id, room_id) == 1

    other = await _other_agent(adapter)
    o_room, o_entity, _ = await _room(adapter, other)
    stolen = _memory(other, o_room, o_entity, "mine now", id=memory.id)
    with pytest.raises(ValueError, match="already used"):
        await adapter.create_memory(stolen, "messages")
    assert (await adapter.get_memory_by_id(agent_id, memory.id)).text == "once"


async def test_create_memory_bad_input(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    with pytest.raises(NotFoundError):
        await adapter.create_memory(_memory(agent_id, uuid.uuid4(), entity_id, "x"), "messages")
    # Another agent's room is unknown to this agent.
    other = await _other_agent(adapter)
    with pytest.raises(NotFoundError):
        await adapter.create_memory(_memory(other, room_id, entity_id, "x"), "messages")
    for table in ("", "a\x00b", "x" * 1001):
        with pytest.raises(ValueError, match="table"):
            await adapter.create_memory(_memory(agent_id, room_id, entity_id, "x"), table)
    with pytest.raises(ValueError, match="table"):
        await adapter.create_memories([_memory(agent_id, room_id, entity_id, "x")], "")
    assert await adapter.count_memories(agent_id) == 0


# -- reads ----------------------------------------------------------------------------------------


async def test_get_memories_by_ids_keeps_order_and_scope(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    a, b, c = await _store(adapter, agent_id, room_id, entity_id, 3)
    fact = _memory(agent_id, room_id, entity_id, "f")
    await adapter.create_memory(fact, "facts")
    other = await _other_agent(adapter)
    o_room, o_entity, _ = await _room(adapter, other)
    foreign = (await _store(adapter, other, o_room, o_entity, 1))[0]

    got = await adapter.get_memories_by_ids(agent_id, [c.id, uuid.uuid4(), a.id, foreign.id, c.id, fact.id])
    assert [m.id for m in got] == [c.id, a.id, fact.id]
    got = await adapter.get_memories_by_ids(agent_id, [c.id, fact.id, b.id], table="messages")
    assert [m.id for m in got] == [c.id, b.id]
    assert await adapter.get_memories_by_ids(agent_id, []) == []
    with pytest.raises(ValueError, match="at most"):
        await adapter.get_memories_by_ids(agent_id, [uuid.uuid4()] * (MAX_PAGE_SIZE + 1))


async def test_get_memories_by_room_ids_newest_first_across_rooms(adapter, agent_id):
    r1, entity_id, _ = await _room(adapter, agent_id)
    r2, _, _ = await _room(adapter, agent_id)
    r3, _, _ = await _room(adapter, agent_id)
    await adapter.create_memories(
        [
            _memory(agent_id, r1, entity_id, "r1-old", BASE_MS),
            _memory(agent_id, r2, entity_id, "r2-mid", BASE_MS + 5),
            _memory(agent_id, r1, entity_id, "r1-new", BASE_MS + 9),
            _memory(agent_id, r3, entity_id, "r3", BASE_MS + 20),
        ],
        "messages",
    )
    got = await adapter.get_memories_by_room_ids(agent_id, [r1, r2], "messages", limit=10)
    assert [m.text for m in got] == ["r1-new", "r2-mid", "r1-old"]
    assert [m.text for m in await adapter.get_memories_by_room_ids(agent_id, [r1, r2], "messages", 2)] == [
        "r1-new",
        "r2-mid",
    ]
    assert await adapter.get_memories_by_room_ids(agent_id, [r1], "facts") == []
    assert await adapter.get_memories_by_room_ids(agent_id, [], "messages") == []
    assert await adapter.get_memories_by_room_ids(await _other_agent(adapter), [r1, r2], "messages") == []
    for bad in (0, -1, MAX_PAGE_SIZE + 1):
        with pytest.raises(ValueError, match="limit"):
            await adapter.get_memories_by_room_ids(agent_id, [r1], "messages", bad)


async def test_get_memories_by_world_id(adapter, agent_id):
    r1, entity_id, world_id = await _room(adapter, agent_id)
    r2, _, other_world = await _room(adapter, agent_id)
    await _store(adapter, agent_id, r1, entity_id, 3)
    await _store(adapter, agent_id, r2, entity_id, 2)
    got = await adapter.get_memories_by_world_id(agent_id, world_id, "messages", count=10)
    assert [m.text for m in got] == ["m2", "m1", "m0"]
    assert len(await adapter.get_memories_by_world_id(agent_id, other_world, "messages")) == 2
    assert await adapter.get_memories_by_world_id(agent_id, world_id, "facts") == []
    assert await adapter.get_memories_by_world_id(await _other_agent(adapter), world_id, "messages") == []


# -- list_memories --------------------------------------------------------------------------------


async def test_list_pages_cover_every_row_once_in_both_orders(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    stored = await _store(adapter, agent_id, room_id, entity_id, 7)
    for newest_first, expected in ((True, [m.text for m in reversed(stored)]), (False, [m.text for m in stored])):
        seen, cursor, pages = [], None, 0
        while True:
            page = await adapter.list_memories(
                agent_id, table="messages", limit=3, cursor=cursor, newest_first=newest_first
            )
            seen += [m.text for m in page.memories]
            pages += 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == expected and pages == 3


async def test_list_exact_page_boundary_and_empty_page(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    empty = await adapter.list_memories(agent_id, table="messages")
    assert empty.memories == [] and empty.next_cursor is None
    await _store(adapter, agent_id, room_id, entity_id, 6)
    first = await adapter.list_memories(agent_id, table="messages", limit=3)
    assert first.next_cursor is not None
    second = await adapter.list_memories(agent_id, table="messages", limit=3, cursor=first.next_cursor)
    # Exactly 6 rows: the second page is full and nothing is left, so no cursor to an empty page.
    assert [m.text for m in second.memories] == ["m2", "m1", "m0"] and second.next_cursor is None
    whole = await adapter.list_memories(agent_id, table="messages", limit=6)
    assert len(whole.memories) == 6 and whole.next_cursor is None
    # A cursor past the last row gives an empty page.
    last = second.memories[-1]
    async with adapter.pool.connection() as conn:
        at = await (await conn.execute("SELECT created_at FROM memories WHERE id = %s", (last.id,))).fetchone()
    past = await adapter.list_memories(agent_id, table="messages", cursor=encode_cursor(at["created_at"], last.id))
    assert past.memories == [] and past.next_cursor is None


async def test_list_ties_on_created_at_are_ordered_by_id(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    same = [_memory(agent_id, room_id, entity_id, f"t{i}", BASE_MS) for i in range(5)]
    await adapter.create_memories(same, "messages")
    seen, cursor = [], None
    while True:
        page = await adapter.list_memories(agent_id, table="messages", limit=2, cursor=cursor)
        seen += [m.id for m in page.memories]
        if not (cursor := page.next_cursor):
            break
    assert seen == sorted((m.id for m in same), reverse=True)


async def test_list_pages_do_not_shift_when_rows_arrive(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    await _store(adapter, agent_id, room_id, entity_id, 4)
    first = await adapter.list_memories(agent_id, table="messages", limit=2)
    await _store(adapter, agent_id, room_id, entity_id, 3, start=BASE_MS + 100)  # newer rows arrive
    second = await adapter.list_memories(agent_id, table="messages", limit=2, cursor=first.next_cursor)
    assert [m.text for m in first.memories + second.memories] == ["m3", "m2", "m1", "m0"]


async def test_list_filters(adapter, agent_id):
    r1, alice, world_id = await _room(adapter, agent_id)
    r2, bob, _ = await _room(adapter, agent_id)
    await adapter.create_memories(
        [
            _memory(agent_id, r1, alice, "a1", BASE_MS),
            _memory(agent_id, r1, bob, "b1", BASE_MS + 10),
            _memory(agent_id, r2, bob, "b2", BASE_MS + 20),
            _memory(agent_id, r1, alice, "a2", BASE_MS + 30),
        ],
        "messages",
    )
    await adapter.create_memories([_memory(agent_id, r1, alice, "fact", BASE_MS + 40)], "facts")

    async def texts(**filters):
        return [m.text for m in (await adapter.list_memories(agent_id, table="messages", **filters)).memories]

    assert await texts() == ["a2", "b2", "b1", "a1"]
    assert await texts(room_id=r1) == ["a2", "b1", "a1"]
    assert await texts(entity_id=bob) == ["b2", "b1"]
    assert await texts(world_id=world_id) == ["a2", "b1", "a1"]
    assert await texts(room_id=r1, entity_id=alice) == ["a2", "a1"]
    # Time bounds are inclusive, in ms.
    assert await texts(start_ms=BASE_MS + 10, end_ms=BASE_MS + 20) == ["b2", "b1"]
    assert await texts(start_ms=BASE_MS + 31) == []
    assert await texts(end_ms=BASE_MS) == ["a1"]
    assert await texts(room_id=uuid.uuid4()) == []
    other = await _other_agent(adapter)
    assert (await adapter.list_memories(other, table="messages")).memories == []


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1, True, "5", 2.5, None])
async def test_list_invalid_limit_is_refused(adapter, agent_id, limit):
    with pytest.raises(ValueError, match="limit"):
        await adapter.list_memories(agent_id, table="messages", limit=limit)


async def test_list_invalid_cursor_and_bounds_are_refused(adapter, agent_id):
    for cursor in ("", "nonsense", "!!!", encode_cursor.__name__, "MTI6bm90LWEtdXVpZA"):
        with pytest.raises(ValueError, match="cursor"):
            await adapter.list_memories(agent_id, table="messages", cursor=cursor)
    with pytest.raises(ValueError, match="after end_ms"):
        await adapter.list_memories(agent_id, table="messages", start_ms=BASE_MS + 1, end_ms=BASE_MS)
    with pytest.raises(ValueError, match="start_ms"):
        await adapter.list_memories(agent_id, table="messages", start_ms="yesterday")
    with pytest.raises(ValueError, match="end_ms"):
        await adapter.list_memories(agent_id, table="messages", end_ms=10**20)
    with pytest.raises(ValueError, match="table"):
        await adapter.list_memories(agent_id, table="")


async def test_list_page_reads_the_keyset_index_without_sorting(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    stored = await _store(adapter, agent_id, room_id, entity_id, 3)
    async with adapter.pool.connection() as conn, conn.transaction():
        # With tiny tables the planner's choice is noise; ruling out seqscans and sorts asks
        # the real question: can the keyset index serve this page in order on its own?
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("SET LOCAL enable_sort = off")
        at = (await (await conn.execute("SELECT created_at FROM memories WHERE id = %s", (stored[1].id,))).fetchone())[
            "created_at"
        ]
        plan = " ".join(
            r["QUERY PLAN"]
            for r in await (
                await conn.execute(
                    "EXPLAIN SELECT id FROM memories m WHERE m.agent_id = %s AND m.type = 'messages'"
                    " AND (m.created_at, m.id) < (%s, %s) ORDER BY m.created_at DESC, m.id DESC LIMIT 51",
                    (agent_id, at, stored[1].id),
                )
            ).fetchall()
        )
    assert "memories_type_keyset" in plan and "Sort" not in plan


def test_cursor_round_trips_to_the_microsecond():
    from datetime import UTC, datetime

    at, memory_id = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(at, memory_id)) == (at, memory_id)


# -- update ---------------------------------------------------------------------------------------


async def test_update_memory_recomputes_hash_so_the_embedding_is_stale(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    memory = _memory(agent_id, room_id, entity_id, "before")
    await adapter.create_memory(memory, "messages")
    vector = [0.0] * adapter.embedding_dimension
    vector[0] = 1.0
    assert await adapter.upsert_embeddings([EmbeddingRow(memory.id, agent_id, memory.content_hash, "t", vector)]) == 1

    assert await adapter.update_memory(agent_id, memory.id, content=Content(text="after", actions=["REPLY"]))
    got = await adapter.get_memory_by_id(agent_id, memory.id)
    assert got.text == "after" and got.content.actions == ["REPLY"]
    target = (await adapter.get_embedding_targets([memory.id]))[0]
    assert target.content_hash == content_hash("after")
    assert target.embedded_hash == memory.content_hash != target.content_hash


async def test_update_memory_merges_metadata_and_accepts_dicts(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    memory = _memory(
        agent_id,
        room_id,
        entity_id,
        "x",
        metadata=MemoryMetadata(type=MemoryType.FRAGMENT, source="discord", scope="room"),
    )
    await adapter.create_memory(memory, "documents")
    assert await adapter.update_memory(agent_id, memory.id, metadata={"source": "api", 'tag\'s "key"': 1})
    got = await adapter.get_memory_by_id(agent_id, memory.id)
    # Only the keys given change: type stays FRAGMENT (not MemoryMetadata's default "message").
    assert got.metadata.type is MemoryType.FRAGMENT and got.metadata.scope == "room"
    assert got.metadata.source == "api" and got.metadata.model_extra == {'tag\'s "key"': 1}
    assert got.text == "x"
    assert await adapter.update_memory(agent_id, memory.id, content={"text": "y"})
    assert (await adapter.get_memory_by_id(agent_id, memory.id)).text == "y"


async def test_update_memory_is_scoped_and_validated(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    memory = _memory(agent_id, room_id, entity_id, "mine")
    await adapter.create_memory(memory, "messages")
    other = await _other_agent(adapter)
    assert await adapter.update_memory(other, memory.id, content=Content(text="hijack")) is False
    assert await adapter.update_memory(agent_id, uuid.uuid4(), content=Content(text="x")) is False
    assert (await adapter.get_memory_by_id(agent_id, memory.id)).text == "mine"
    with pytest.raises(ValueError, match="content or metadata"):
        await adapter.update_memory(agent_id, memory.id)
    with pytest.raises(ValueError):
        await adapter.update_memory(agent_id, memory.id, metadata={"type": "not-a-memory-type"})
    for bad in ({"k": "a\x00b"}, {"k": float("nan")}):
        with pytest.raises(ValueError, match="JSON|NUL"):
            await adapter.update_memory(agent_id, memory.id, metadata=bad)
    assert (await adapter.get_memory_by_id(agent_id, memory.id)).metadata.model_extra == {}


# -- deletes and counts ---------------------------------------------------------------------------


async def test_delete_memory_cascades_to_its_embedding(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    memory = _memory(agent_id, room_id, entity_id, "bye")
    await adapter.create_memory(memory, "messages")
    vector = [1.0] + [0.0] * (adapter.embedding_dimension - 1)
    await adapter.upsert_embeddings([EmbeddingRow(memory.id, agent_id, memory.content_hash, "t", vector)])
    assert await adapter.delete_memory(await _other_agent(adapter), memory.id) is False
    assert await adapter.delete_memory(agent_id, memory.id) is True
    assert await adapter.delete_memory(agent_id, memory.id) is False
    async with adapter.pool.connection() as conn:
        row = await (
            await conn.execute("SELECT count(*) AS n FROM embeddings WHERE memory_id = %s", (memory.id,))
        ).fetchone()
    assert row["n"] == 0


async def test_delete_many_memories_in_one_statement_scoped(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    stored = await _store(adapter, agent_id, room_id, entity_id, 5)
    vector = [1.0] + [0.0] * (adapter.embedding_dimension - 1)
    await adapter.upsert_embeddings([EmbeddingRow(m.id, agent_id, m.content_hash, "t", vector) for m in stored])
    other = await _other_agent(adapter)
    o_room, o_entity, _ = await _room(adapter, other)
    foreign = await _store(adapter, other, o_room, o_entity, 2)
    deleted = await adapter.delete_many_memories(agent_id, [stored[0].id, stored[3].id, foreign[0].id, uuid.uuid4()])
    assert deleted == 2
    assert await adapter.delete_many_memories(agent_id, []) == 0
    left = await adapter.get_memories(agent_id, room_id, "messages", 10)
    assert [m.text for m in left] == ["m1", "m2", "m4"]
    assert await adapter.count_memories(other) == 2
    embedded = await adapter.get_embedding_targets([m.id for m in stored])
    assert sorted(t.memory_id for t in embedded if t.embedded_hash) == sorted(m.id for m in left)


async def test_delete_all_memories_of_one_room_and_table(adapter, agent_id):
    r1, entity_id, _ = await _room(adapter, agent_id)
    r2, _, _ = await _room(adapter, agent_id)
    await _store(adapter, agent_id, r1, entity_id, 3)
    await _store(adapter, agent_id, r1, entity_id, 2, table="facts")
    await _store(adapter, agent_id, r2, entity_id, 2)
    other = await _other_agent(adapter)
    assert await adapter.delete_all_memories(other, r1, "messages") == 0
    assert await adapter.delete_all_memories(agent_id, r1, "messages") == 3
    assert await adapter.count_memories(agent_id, r1, "messages") == 0
    assert await adapter.count_memories(agent_id, r1, "facts") == 2
    assert await adapter.count_memories(agent_id, r2) == 2


async def test_count_memories_filters(adapter, agent_id):
    r1, entity_id, _ = await _room(adapter, agent_id)
    r2, _, _ = await _room(adapter, agent_id)
    await _store(adapter, agent_id, r1, entity_id, 3)
    await _store(adapter, agent_id, r2, entity_id, 1, table="facts")
    assert await adapter.count_memories(agent_id) == 4
    assert await adapter.count_memories(agent_id, r1) == 3
    assert await adapter.count_memories(agent_id, table="facts") == 1
    assert await adapter.count_memories(agent_id, r1, "facts") == 0
    assert await adapter.count_memories(await _other_agent(adapter)) == 0
    with pytest.raises(ValueError, match="table"):
        await adapter.count_memories(agent_id, table="")


# -- injection ------------------------------------------------------------------------------------


async def test_table_names_and_json_keys_are_literal(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    control = await _store(adapter, agent_id, room_id, entity_id, 2)
    for table in EVIL:
        memory = _memory(
            agent_id,
            room_id,
            entity_id,
            f"in {table}",
            metadata=MemoryMetadata.model_validate({"source": table, table: "v'\"$$"}),
        )
        assert await adapter.create_memory(memory, table, unique=True) == memory.id
        page = await adapter.list_memories(agent_id, table=table)
        assert [m.text for m in page.memories] == [f"in {table}"]
        assert page.memories[0].metadata.model_extra == {table: "v'\"$$"}
        assert await adapter.count_memories(agent_id, room_id, table) == 1
        assert [m.id for m in await adapter.get_memories_by_ids(agent_id, [memory.id], table=table)] == [memory.id]
        assert await adapter.update_memory(agent_id, memory.id, metadata={table: table})
    assert await adapter.count_memories(agent_id, table="x' OR '1'='1") == 1
    assert await adapter.count_memories(agent_id, room_id, "messages") == len(control)
    assert await adapter.delete_all_memories(agent_id, room_id, "'; DROP TABLE memories; --") == 1
    assert await adapter.count_memories(agent_id) == len(control) + len(EVIL) - 1
    await _tables_intact(adapter)


# -- a reply and the turn's logs ------------------------------------------------------------------


def _usage_log(agent_id, type="useModel") -> Log:
    return Log(agent_id=agent_id, entity_id=agent_id, type=type, body={"tokens": 3})


async def _reply_setup(adapter, agent_id):
    room_id, user, _ = await _room(adapter, agent_id)
    asked = _memory(agent_id, room_id, user, "hi", BASE_MS)
    await adapter.create_memories([asked], "messages")
    return asked, _memory(agent_id, room_id, agent_id, "hello", BASE_MS + 1)


async def _message_ids(adapter, asked) -> list[uuid.UUID]:
    return [m.id for m in await adapter.get_memories(asked.agent_id, asked.room_id, "messages", 5)]


async def test_a_reply_and_the_turns_logs_are_written_in_one_round_trip(database_url, agent_id):
    pool = create_pool(Settings(database_url=database_url, pool_max_size=1))
    await pool.open()
    try:
        adapter = PostgresAdapter(pool)
        asked, reply = await _reply_setup(adapter, agent_id)
        logs = [_usage_log(agent_id), _usage_log(agent_id)]
        async with pool.connection() as conn:  # the pool's one connection, the call's
            pgconn = conn.pgconn
        with traced(pgconn) as wire:
            assert await adapter.create_reply(reply, "messages", answering=asked, logs=logs)
        [sent] = wire.round_trips
        assert sent.count("Execute") == 2  # the reply and the logs, one transaction
        assert {log.id for log in await adapter.get_logs(agent_id)} == {log.id for log in logs}
        assert [m.id for m in (await adapter.get_memories(agent_id, asked.room_id, "messages", 5))] == [
            asked.id,
            reply.id,
        ]
    finally:
        await pool.close()


async def test_logs_that_fail_leave_the_reply_stored(adapter, agent_id, caplog):
    asked, reply = await _reply_setup(adapter, agent_id)
    orphan = _usage_log(uuid.uuid4())  # no such agent: the logs' insert fails
    assert await adapter.create_reply(reply, "messages", answering=asked, logs=[orphan])
    assert "the reply is stored alone" in caplog.text
    assert await _message_ids(adapter, asked) == [asked.id, reply.id]
    assert await adapter.get_logs(agent_id) == []


async def test_a_reply_that_fails_writes_no_logs(adapter, agent_id):
    asked, reply = await _reply_setup(adapter, agent_id)
    lost = reply.model_copy(update={"room_id": uuid.uuid4()})  # no such room: the reply's insert fails
    with pytest.raises(DatabaseError):
        await adapter.create_reply(lost, "messages", answering=asked, logs=[_usage_log(agent_id)])
    assert await adapter.get_logs(agent_id) == []
    assert await adapter.create_reply(reply, "messages", answering=asked)  # the connection is usable again


async def test_a_superseded_reply_still_writes_the_logs(adapter, agent_id):
    asked, reply = await _reply_setup(adapter, agent_id)
    newer = _memory(agent_id, asked.room_id, asked.entity_id, "wait", BASE_MS + 2)
    await adapter.create_memories([newer], "messages")
    logs = [_usage_log(agent_id)]
    assert not await adapter.create_reply(reply, "messages", answering=asked, logs=logs)
    assert [log.id for log in await adapter.get_logs(agent_id)] == [logs[0].id]


async def test_an_invalid_log_is_refused_before_anything_is_written(adapter, agent_id):
    asked, reply = await _reply_setup(adapter, agent_id)
    with pytest.raises(ValueError, match="log type"):
        await adapter.create_reply(reply, "messages", answering=asked, logs=[_usage_log(agent_id, type="a\x00")])
    assert await _message_ids(adapter, asked) == [asked.id]
