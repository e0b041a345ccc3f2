from __future__ import annotations

import uuid

import pytest

from core.db.adapter import AgentRecord, EmbeddingRow
from core.types import ChannelType, Content, Entity, Memory, Room, World


def _unit(index: int, dim: int = 384) -> list[float]:
    vec = [0.0] * dim
    vec[index] = 1.0
    return vec


async def _room(adapter, agent_id, *, names=("alice",)) -> tuple[uuid.UUID, uuid.UUID]:
    room_id, entity_id, world_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await adapter.ensure_connection(
        Entity(id=entity_id, agent_id=agent_id, names=list(names)),
        Room(id=room_id, agent_id=agent_id, type=ChannelType.GROUP, world_id=world_id),
        World(id=world_id, agent_id=agent_id, name="w"),
    )
    return room_id, entity_id


def _memory(agent_id, room_id, entity_id, text, created_at=None) -> Memory:
    extra = {"created_at": created_at} if created_at else {}
    return Memory(agent_id=agent_id, room_id=room_id, entity_id=entity_id, content=Content(text=text), **extra)


async def test_ensure_connection_is_idempotent_and_merges_names(adapter, agent_id):
    room_id, entity_id = await _room(adapter, agent_id)
    room = await adapter.get_room(agent_id, room_id)
    assert room is not None and room.type is ChannelType.GROUP
    await adapter.ensure_connection(
        Entity(id=entity_id, agent_id=agent_id, names=["Alice A."]), Room(id=room_id, agent_id=agent_id), None
    )
    names = await adapter.get_entity_names(agent_id, [entity_id])
    assert names[entity_id] in {"alice", "Alice A."}
    async with adapter.pool.connection() as conn:
        row = await (
            await conn.execute("SELECT names FROM entities WHERE agent_id = %s AND id = %s", (agent_id, entity_id))
        ).fetchone()
        assert sorted(row["names"]) == ["Alice A.", "alice"]


async def test_get_room_is_scoped_by_agent(adapter, agent_id):
    room_id, _ = await _room(adapter, agent_id)
    other = uuid.uuid4()
    await adapter.upsert_agents([AgentRecord(other, f"other-{other}", {})])
    assert await adapter.get_room(other, room_id) is None


async def test_memories_come_back_newest_n_in_conversation_order(adapter, agent_id):
    room_id, entity_id = await _room(adapter, agent_id)
    memories = [_memory(agent_id, room_id, entity_id, f"m{i}", created_at=1_700_000_000_000 + i) for i in range(5)]
    await adapter.create_memories(memories, "messages")
    got = await adapter.get_memories(agent_id, room_id, "messages", 3)
    assert [m.text for m in got] == ["m2", "m3", "m4"]
    assert got[0].created_at == 1_700_000_000_002
    assert await adapter.get_memories(agent_id, room_id, "facts", 3) == []


async def test_deleting_an_agent_cascades(adapter, agent_id):
    room_id, entity_id = await _room(adapter, agent_id)
    memory = _memory(agent_id, room_id, entity_id, "bye")
    await adapter.create_memories([memory], "messages")
    await adapter.upsert_embeddings([EmbeddingRow(memory.id, agent_id, memory.content_hash, "t", _unit(3))])
    async with adapter.pool.connection() as conn:
        await conn.execute("DELETE FROM agents WHERE id = %s", (agent_id,))
        counts = await (
            await conn.execute(
                "SELECT (SELECT count(*) FROM memories WHERE agent_id = %(a)s) AS memories,"
                " (SELECT count(*) FROM embeddings WHERE agent_id = %(a)s) AS embeddings,"
                " (SELECT count(*) FROM rooms WHERE agent_id = %(a)s) AS rooms",
                {"a": agent_id},
            )
        ).fetchone()
    assert counts == {"memories": 0, "embeddings": 0, "rooms": 0}


async def test_statement_helpers(adapter, agent_id):
    # The one way every part runs SQL (core.db.postgres.base): rows are dicts, a value is the first column.
    assert await adapter._fetch_all("SELECT g AS n FROM generate_series(1, 3) g") == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert await adapter._fetch_one("SELECT 1 AS one WHERE false") is None
    assert await adapter._fetch_value("SELECT count(*) FROM agents WHERE id = %s", (agent_id,)) == 1
    with pytest.raises(RuntimeError, match="returned none"):
        await adapter._fetch_row("SELECT 1 WHERE false")
    assert await adapter._execute("UPDATE agents SET enabled = true WHERE id = %s", (agent_id,)) == 1


async def test_local_settings_hold_for_their_statement_only(adapter):
    local = {"hnsw.ef_search": "77", "statement_timeout": "1234"}
    [row] = await adapter._fetch_all(
        "SELECT current_setting('hnsw.ef_search') AS ef, current_setting('statement_timeout') AS timeout", local=local
    )
    assert row == {"ef": "77", "timeout": "1234ms"}
    [after] = await adapter._fetch_all("SELECT current_setting('statement_timeout') AS timeout")
    assert after["timeout"] != "1234ms"


async def test_a_failed_transaction_writes_nothing(adapter, agent_id):
    with pytest.raises(ValueError, match="stop"):
        async with adapter._transaction() as conn:
            await conn.execute("UPDATE agents SET name = 'renamed' WHERE id = %s", (agent_id,))
            raise ValueError("stop")
    agent = await adapter.get_agent(agent_id)
    assert agent is not None and agent.name != "renamed"
