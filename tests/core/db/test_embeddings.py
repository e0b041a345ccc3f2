from __future__ import annotations

import math
import uuid

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from core.db.adapter import EMBEDDING_DIMENSIONS, AgentRecord, EmbeddingRow
from core.db.migrations import core_migrations, migrate
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.db.postgres.embeddings import RRF_K, fuse_ranks
from core.errors import ConfigurationError, DatabaseError, EmbeddingDimensionError
from core.settings import Settings
from core.types import ChannelType, Content, Entity, Memory, Room, World

DIM = 384


def _unit(index: int, dim: int = DIM) -> list[float]:
    vec = [0.0] * dim
    vec[index] = 1.0
    return vec


def _mix(weights: dict[int, float], dim: int = DIM) -> list[float]:
    """A unit vector with the given weights on the given axes."""
    vec = np.zeros(dim)
    for axis, weight in weights.items():
        vec[axis] = weight
    return list(vec / np.linalg.norm(vec))


async def _room(adapter, agent_id) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    room_id, entity_id, world_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await adapter.ensure_connection(
        Entity(id=entity_id, agent_id=agent_id, names=["alice"]),
        Room(id=room_id, agent_id=agent_id, type=ChannelType.GROUP, world_id=world_id),
        World(id=world_id, agent_id=agent_id, name="w"),
    )
    return room_id, entity_id, world_id


async def _other_agent(adapter) -> uuid.UUID:
    other = uuid.uuid4()
    await adapter.upsert_agents([AgentRecord(other, f"other-{other}", {"name": f"other-{other}"})])
    return other


def _memory(agent_id, room_id, entity_id, text, world_id=None) -> Memory:
    return Memory(
        agent_id=agent_id, room_id=room_id, entity_id=entity_id, world_id=world_id, content=Content(text=text)
    )


async def _stored(
    adapter, agent_id, vectors: dict[str, list[float]], *, table="messages", room=None
) -> dict[str, Memory]:
    """Memories named by their text, stored with their vectors, in one room."""
    room_id, entity_id, world_id = room or await _room(adapter, agent_id)
    memories = {text: _memory(agent_id, room_id, entity_id, text, world_id) for text in vectors}
    await adapter.create_memories(list(memories.values()), table)
    written = await adapter.upsert_embeddings(
        [EmbeddingRow(m.id, agent_id, m.content_hash, "test", vectors[text]) for text, m in memories.items()]
    )
    assert written == len(vectors)
    return memories


def _texts(results: list[Memory]) -> list[str]:
    return [m.text for m in results]


# -- dimensions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", EMBEDDING_DIMENSIONS)
async def test_each_supported_dimension_stores_and_searches(adapter, agent_id, dim):
    sized = PostgresAdapter(adapter.pool, embedding_dimension=dim)
    vectors = {"near": _mix({0: 0.8, 1: 0.6}, dim), "far": _unit(dim - 1, dim), "exact": _unit(0, dim)}
    memories = await _stored(sized, agent_id, vectors)

    results = await sized.search_memories(agent_id, _unit(0, dim), table="messages", count=3)
    assert _texts(results) == ["exact", "near", "far"]
    # 3072 is stored as halfvec: half precision is exact for these values, close for others.
    assert [round(m.similarity, 3) for m in results] == [1.0, 0.8, 0.0]
    targets = await sized.get_embedding_targets([m.id for m in memories.values()])
    assert {t.embedded_hash for t in targets} == {m.content_hash for m in memories.values()}
    async with adapter.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FILTER (WHERE num_nonnulls(dim_384, dim_512, dim_768, dim_1024, dim_1536,"
                " dim_3072) = 1) AS one_vector,"
                " count(*) FILTER (WHERE vector_dims(coalesce(dim_384, dim_512, dim_768, dim_1024,"
                " dim_1536)) = %(dim)s OR (%(dim)s = 3072 AND dim_3072 IS NOT NULL)) AS right_column"
                " FROM embeddings WHERE agent_id = %(agent)s",
                {"dim": dim, "agent": agent_id},
            )
        ).fetchone()
    assert row == {"one_vector": 3, "right_column": 3}


async def test_halfvec_similarity_is_close_for_arbitrary_values(adapter, agent_id):
    sized = PostgresAdapter(adapter.pool, embedding_dimension=3072)
    rng = np.random.default_rng(1)
    stored, query = rng.standard_normal(3072), rng.standard_normal(3072)
    await _stored(sized, agent_id, {"x": list(stored)})
    [found] = await sized.search_memories(agent_id, list(query), match_threshold=-1.0)
    expected = float(stored @ query / np.linalg.norm(stored) / np.linalg.norm(query))
    assert math.isclose(found.similarity, expected, abs_tol=2e-3)


async def test_vectors_of_wrong_length_are_refused_and_nothing_is_written(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    good, bad = _memory(agent_id, room_id, entity_id, "good"), _memory(agent_id, room_id, entity_id, "bad")
    await adapter.create_memories([good, bad], "messages")
    with pytest.raises(EmbeddingDimensionError, match=r"768 dimensions; EMBEDDING_DIMENSION is 384"):
        await adapter.upsert_embeddings(
            [
                EmbeddingRow(good.id, agent_id, good.content_hash, "t", _unit(0)),
                EmbeddingRow(bad.id, agent_id, bad.content_hash, "t", [0.1] * 768),
            ]
        )
    # Never silently dropped (an elizaOS bug), and never half written either.
    targets = await adapter.get_embedding_targets([good.id, bad.id])
    assert [t.embedded_hash for t in targets] == [None, None]
    for wrong in ([0.1] * 10, [0.1] * 385, []):
        with pytest.raises(EmbeddingDimensionError):
            await adapter.search_memories(agent_id, wrong, table="messages")


async def test_an_unsupported_dimension_is_refused_naming_the_setting(adapter, agent_id):
    odd = PostgresAdapter(adapter.pool, embedding_dimension=100)
    room_id, entity_id, _ = await _room(adapter, agent_id)
    memory = _memory(agent_id, room_id, entity_id, "x")
    await adapter.create_memories([memory], "messages")
    with pytest.raises(ConfigurationError, match="EMBEDDING_DIMENSION=100 is not supported"):
        await odd.upsert_embeddings([EmbeddingRow(memory.id, agent_id, memory.content_hash, "t", [0.1] * 100)])
    with pytest.raises(ConfigurationError, match="EMBEDDING_DIMENSION"):
        await odd.search_memories(agent_id, [0.1] * 100)
    with pytest.raises(ConfigurationError, match="EMBEDDING_DIMENSION"):
        await odd.get_embedding_targets([memory.id])


async def test_a_new_model_of_another_dimension_replaces_the_vector(adapter, agent_id):
    small, large = adapter, PostgresAdapter(adapter.pool, embedding_dimension=768)
    memories = await _stored(small, agent_id, {"m": _unit(0)})
    memory = memories["m"]
    # Under the new dimension the old vector does not count: the worker must re-embed.
    assert (await large.get_embedding_targets([memory.id]))[0].embedded_hash is None

    row = EmbeddingRow(memory.id, agent_id, memory.content_hash, "big", _unit(3, 768))
    assert await large.upsert_embeddings([row]) == 1
    assert _texts(await large.search_memories(agent_id, _unit(3, 768))) == ["m"]
    assert await small.search_memories(agent_id, _unit(0)) == []
    assert (await small.get_embedding_targets([memory.id]))[0].embedded_hash is None
    assert (await large.get_embedding_targets([memory.id]))[0].embedded_hash == memory.content_hash


# -- scoping, thresholds, order, filters ------------------------------------------------------------


async def test_identical_vectors_of_two_agents_never_cross(adapter, agent_id):
    other = await _other_agent(adapter)
    mine = await _stored(adapter, agent_id, {"mine": _unit(0)})
    theirs = await _stored(adapter, other, {"theirs": _unit(0)})
    for room in (None, mine["mine"].room_id, theirs["theirs"].room_id):
        found = await adapter.search_memories(agent_id, _unit(0), room_id=room, match_threshold=-1.0)
        assert {m.agent_id for m in found} <= {agent_id}
    assert _texts(await adapter.search_memories(agent_id, _unit(0))) == ["mine"]
    assert _texts(await adapter.search_memories(other, _unit(0))) == ["theirs"]
    # An agent's room id used by another agent finds nothing.
    assert await adapter.search_memories(other, _unit(0), room_id=mine["mine"].room_id) == []
    stranger = await _other_agent(adapter)
    assert await adapter.search_memories(stranger, _unit(0), match_threshold=-1.0) == []


async def test_vectors_are_not_stored_under_another_agent(adapter, agent_id):
    other = await _other_agent(adapter)
    room_id, entity_id, _ = await _room(adapter, agent_id)
    memory = _memory(agent_id, room_id, entity_id, "mine")
    await adapter.create_memories([memory], "messages")
    assert await adapter.upsert_embeddings([EmbeddingRow(memory.id, other, memory.content_hash, "t", _unit(0))]) == 0
    assert await adapter.search_memories(other, _unit(0), match_threshold=-1.0) == []
    assert await adapter.search_memories(agent_id, _unit(0), match_threshold=-1.0) == []


async def test_threshold_and_count(adapter, agent_id):
    await _stored(
        adapter,
        agent_id,
        {
            "same": _unit(0),
            "close": _mix({0: 0.8, 1: 0.6}),
            "orthogonal": _unit(1),
            "opposite": [-x for x in _unit(0)],
        },
    )
    query = _unit(0)
    assert _texts(await adapter.search_memories(agent_id, query)) == ["same", "close", "orthogonal"]  # default 0.0
    assert _texts(await adapter.search_memories(agent_id, query, match_threshold=0.8 - 1e-6)) == ["same", "close"]
    assert _texts(await adapter.search_memories(agent_id, query, match_threshold=0.81)) == ["same"]
    assert await adapter.search_memories(agent_id, _unit(7), match_threshold=0.5) == []
    everything = await adapter.search_memories(agent_id, query, match_threshold=-1.0)
    assert _texts(everything) == ["same", "close", "orthogonal", "opposite"]
    assert math.isclose(everything[-1].similarity, -1.0, abs_tol=1e-6)
    assert _texts(await adapter.search_memories(agent_id, query, count=2, match_threshold=-1.0)) == ["same", "close"]
    with pytest.raises(ValueError, match="count"):
        await adapter.search_memories(agent_id, query, count=0)


async def test_results_come_back_in_exact_similarity_order(adapter, agent_id):
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((60, DIM))
    await _stored(adapter, agent_id, {f"v{i}": list(row) for i, row in enumerate(matrix)})
    query = rng.standard_normal(DIM)
    cosine = matrix @ query / np.linalg.norm(matrix, axis=1) / np.linalg.norm(query)
    expected = [f"v{i}" for i in np.argsort(-cosine)[:10]]
    found = await adapter.search_memories(agent_id, list(query), count=10, match_threshold=-1.0)
    assert _texts(found) == expected
    assert np.allclose([m.similarity for m in found], np.sort(cosine)[::-1][:10], atol=1e-5)


async def test_filters_by_room_table_world_and_entity(adapter, agent_id):
    room_a, alice, world_a = await _room(adapter, agent_id)
    room_b, bob, world_b = await _room(adapter, agent_id)
    await _stored(adapter, agent_id, {"a-message": _unit(0)}, room=(room_a, alice, world_a))
    await _stored(adapter, agent_id, {"a-fact": _mix({0: 0.9, 1: 0.1})}, table="facts", room=(room_a, alice, world_a))
    await _stored(adapter, agent_id, {"b-message": _mix({0: 0.8, 1: 0.2})}, room=(room_b, bob, world_b))
    search = adapter.search_memories
    q = _unit(0)
    assert _texts(await search(agent_id, q)) == ["a-message", "a-fact", "b-message"]
    assert _texts(await search(agent_id, q, table="messages")) == ["a-message", "b-message"]
    assert _texts(await search(agent_id, q, table="facts")) == ["a-fact"]
    assert _texts(await search(agent_id, q, room_id=room_b)) == ["b-message"]
    assert _texts(await search(agent_id, q, world_id=world_a)) == ["a-message", "a-fact"]
    assert _texts(await search(agent_id, q, entity_id=bob)) == ["b-message"]
    assert _texts(await search(agent_id, q, table="facts", room_id=room_a, world_id=world_a, entity_id=alice)) == [
        "a-fact"
    ]
    assert await search(agent_id, q, table="facts", room_id=room_b) == []
    assert await search(agent_id, q, table="no'such; table") == []


async def test_filter_columns_follow_a_memory_that_moves(adapter, agent_id):
    memory = (await _stored(adapter, agent_id, {"mover": _unit(0)}))["mover"]
    new_room, _, new_world = await _room(adapter, agent_id)
    async with adapter.pool.connection() as conn:
        await conn.execute(
            "UPDATE memories SET room_id = %s, world_id = %s, type = 'facts' WHERE id = %s",
            (new_room, new_world, memory.id),
        )
    assert await adapter.search_memories(agent_id, _unit(0), room_id=memory.room_id) == []
    moved = await adapter.search_memories(agent_id, _unit(0), room_id=new_room, world_id=new_world, table="facts")
    assert _texts(moved) == ["mover"]


async def test_search_settings_stay_inside_the_transaction(database_url, agent_id, adapter):
    pool = create_pool(Settings(database_url=database_url, pool_max_size=1))
    await pool.open()
    try:
        single = PostgresAdapter(pool)
        single.hnsw_ef_search = 77
        await _stored(adapter, agent_id, {"x": _unit(0)})
        assert _texts(await single.search_memories(agent_id, _unit(0))) == ["x"]
        async with pool.connection() as conn:  # the very connection the search used
            row = await (
                await conn.execute(
                    "SELECT current_setting('hnsw.iterative_scan', true) AS scan,"
                    " current_setting('hnsw.ef_search', true) AS ef"
                )
            ).fetchone()
    finally:
        await pool.close()
    # No session-level SET: nothing left behind to pin an RDS Proxy connection.
    assert row["scan"] in (None, "", "off")
    assert row["ef"] in (None, "", "40")  # pgvector's default, not 77


async def test_a_failed_search_leaves_its_connection_idle(database_url, agent_id, adapter):
    pool = create_pool(Settings(database_url=database_url, pool_max_size=1))
    await pool.open()
    try:
        single = PostgresAdapter(pool)
        await _stored(adapter, agent_id, {"x": _unit(0)})
        nan = [float("nan")] * DIM  # the right length, but pgvector refuses NaN
        with pytest.raises((DatabaseError, psycopg.Error)) as caught:
            await single.search_memories(agent_id, nan)
        assert "NaN" in str(caught.value) or "22000" in str(caught.value)  # data_exception
        # The same (only) connection: rolled back, idle, settings gone, and it still works.
        assert _texts(await single.search_memories(agent_id, _unit(0))) == ["x"]
        async with pool.connection() as conn:
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    finally:
        await pool.close()


# -- re-rank ----------------------------------------------------------------------------------------


async def test_query_text_reranks_candidates_by_words(adapter, agent_id):
    await _stored(
        adapter,
        agent_id,
        {
            "the weather is mild today": _unit(0),
            "stocks fell on monday": _mix({0: 0.9, 1: 0.44}),
            "my cat likes tuna and sardines": _mix({0: 0.8, 1: 0.6}),
        },
    )
    q = _unit(0)
    by_vector = await adapter.search_memories(agent_id, q, count=3)
    assert _texts(by_vector) == ["the weather is mild today", "stocks fell on monday", "my cat likes tuna and sardines"]
    # "cats" stems to "cat": the only text match jumps from vector rank 3 to first place
    # (1/63 + 1/61 > 1/61 > 1/62), similarity still the cosine one.
    fused = await adapter.search_memories(agent_id, q, count=3, query_text="What do cats eat? Tuna?")
    assert _texts(fused) == ["my cat likes tuna and sardines", "the weather is mild today", "stocks fell on monday"]
    assert math.isclose(fused[0].similarity, 0.8, abs_tol=1e-5)
    # The re-rank may promote a candidate from beyond count, but never one below the threshold.
    top = await adapter.search_memories(agent_id, q, count=1, query_text="tuna")
    assert _texts(top) == ["my cat likes tuna and sardines"]
    assert _texts(await adapter.search_memories(agent_id, q, count=1, query_text="tuna", match_threshold=0.85)) == [
        "the weather is mild today"
    ]
    # No word matches (or only stop words): plain vector order.
    for text in ("zebra", "the and of", "", "'; DROP TABLE memories; --"):
        assert _texts(await adapter.search_memories(agent_id, q, count=3, query_text=text)) == _texts(by_vector)


def test_fuse_ranks_formula():
    rows = [
        {"id": "a", "text_score": 0.0},
        {"id": "b", "text_score": 0.1},
        {"id": "c", "text_score": 0.5},
        {"id": "d", "text_score": 0.0},
    ]
    # a: 1/61; b: 1/62 + 1/62; c: 1/63 + 1/61; d: 1/64.
    scores = {"a": 1 / (RRF_K + 1), "b": 2 / (RRF_K + 2), "c": 1 / (RRF_K + 3) + 1 / (RRF_K + 1), "d": 1 / (RRF_K + 4)}
    assert [r["id"] for r in fuse_ranks(rows)] == sorted(scores, key=lambda k: -scores[k])
    assert [r["id"] for r in fuse_ranks([{"id": "x", "text_score": 0}, {"id": "y", "text_score": 0}])] == ["x", "y"]
    assert fuse_ranks([]) == []


# -- upsert and targets -------------------------------------------------------------------------------


async def test_upsert_is_idempotent(adapter, agent_id):
    memory = (await _stored(adapter, agent_id, {"m": _unit(0)}))["m"]
    same = EmbeddingRow(memory.id, agent_id, memory.content_hash, "test", _unit(0))
    assert await adapter.upsert_embeddings([same]) == 0  # identical: not rewritten
    assert await adapter.upsert_embeddings([same, same]) == 0  # listed twice in a batch: no error
    changed = EmbeddingRow(memory.id, agent_id, memory.content_hash, "test-v2", _unit(1))
    assert await adapter.upsert_embeddings([same, changed]) == 1  # last row for a memory wins
    assert _texts(await adapter.search_memories(agent_id, _unit(1), match_threshold=0.99)) == ["m"]
    async with adapter.pool.connection() as conn:
        rows = await (await conn.execute("SELECT model FROM embeddings WHERE memory_id = %s", (memory.id,))).fetchall()
    assert rows == [{"model": "test-v2"}]
    assert await adapter.upsert_embeddings([]) == 0


async def test_upsert_copies_the_memorys_filter_columns(adapter, agent_id):
    room_id, entity_id, world_id = await _room(adapter, agent_id)
    memory = (
        await _stored(adapter, agent_id, {"m": _unit(0)}, table="documents", room=(room_id, entity_id, world_id))
    )["m"]
    async with adapter.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT agent_id, type, room_id, world_id, entity_id FROM embeddings WHERE memory_id = %s", (memory.id,)
            )
        ).fetchone()
    assert row == {
        "agent_id": agent_id,
        "type": "documents",
        "room_id": room_id,
        "world_id": world_id,
        "entity_id": entity_id,
    }


async def test_vectors_for_changed_or_deleted_text_are_not_stored(adapter, agent_id):
    room_id, entity_id, _ = await _room(adapter, agent_id)
    memory = _memory(agent_id, room_id, entity_id, "original")
    await adapter.create_memories([memory], "messages")
    written = await adapter.upsert_embeddings(
        [
            EmbeddingRow(memory.id, agent_id, "hash-of-older-text", "t", _unit(1)),
            EmbeddingRow(uuid.uuid4(), agent_id, "h", "t", _unit(2)),
        ]
    )
    assert written == 0
    target = (await adapter.get_embedding_targets([memory.id]))[0]
    assert (target.text, target.content_hash, target.embedded_hash) == ("original", memory.content_hash, None)
    assert await adapter.search_memories(agent_id, _unit(1), match_threshold=-1.0) == []


async def test_a_stale_vector_is_reported_by_its_hash(adapter, agent_id):
    memory = (await _stored(adapter, agent_id, {"before": _unit(0)}))["before"]
    async with adapter.pool.connection() as conn:
        await conn.execute(
            "UPDATE memories SET content = '{\"text\": \"after\"}', content_hash = 'h2' WHERE id = %s", (memory.id,)
        )
    target = (await adapter.get_embedding_targets([memory.id]))[0]
    assert (target.text, target.content_hash, target.embedded_hash) == ("after", "h2", memory.content_hash)
    # The old text's vector cannot overwrite a newer one: its hash no longer matches.
    assert await adapter.upsert_embeddings([EmbeddingRow(memory.id, agent_id, memory.content_hash, "t", _unit(2))]) == 0


async def test_targets_of_unknown_memories_are_left_out(adapter, agent_id):
    memory = (await _stored(adapter, agent_id, {"m": _unit(0)}))["m"]
    targets = await adapter.get_embedding_targets([uuid.uuid4(), memory.id])
    assert [t.memory_id for t in targets] == [memory.id]
    assert targets[0].agent_id == agent_id
    assert await adapter.get_embedding_targets([]) == []


# -- schema -------------------------------------------------------------------------------------------


async def test_every_dimension_has_an_hnsw_cosine_index(adapter):
    async with adapter.pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'embeddings' AND indexdef LIKE '%%hnsw%%'"
            )
        ).fetchall()
    defs = {r["indexname"]: r["indexdef"] for r in rows}
    for dim in EMBEDDING_DIMENSIONS:
        ops = "halfvec_cosine_ops" if dim > 2000 else "vector_cosine_ops"
        assert f"(dim_{dim} {ops})" in defs[f"embeddings_dim_{dim}_hnsw"]


async def test_ef_search_grows_with_the_agents_partition(adapter, agent_id):
    from core.db.postgres.embeddings import _SEARCH_SETTINGS_LOOKUP

    await _stored(adapter, agent_id, {f"m{i}": _unit(i) for i in range(100)})
    async with adapter.pool.connection() as conn:
        await conn.execute("ANALYZE embeddings")  # reltuples of the partitions

        async def ef_for(agent, *, ef=40, rows=1_000_000, most=400) -> int:
            async with conn.transaction():
                params = {"agent": agent, "ef": ef, "ef_rows": rows, "ef_max": most, "max_scan": "20000"}
                await conn.execute(_SEARCH_SETTINGS_LOOKUP, params)
                row = await (await conn.execute("SELECT current_setting('hnsw.ef_search') AS ef")).fetchone()
                return int(row["ef"])

        partition_rows = (
            await (
                await conn.execute(
                    "SELECT c.reltuples FROM pg_class c"
                    " WHERE c.oid = (SELECT tableoid FROM embeddings WHERE agent_id = %s LIMIT 1)",
                    (agent_id,),
                )
            ).fetchone()
        )["reltuples"]
        assert partition_rows >= 100
        assert await ef_for(agent_id) == 40  # a small partition: the base value
        quarter = int(partition_rows) // 4  # 4x the rows: 2x ef
        assert await ef_for(agent_id, rows=quarter) == math.ceil(40 * math.sqrt(partition_rows / quarter)) >= 80
        assert await ef_for(agent_id, rows=1, most=300) == 300  # capped


async def test_the_adapter_keeps_an_agents_ef_search(adapter, agent_id):
    # Several rows: a partition holding only one (reltuples 1) would give ef = 64 * sqrt(1 / 1) = 64.
    await _stored(adapter, agent_id, {"x": _unit(0), **{f"y{i}": _unit(i) for i in range(1, 5)}})
    async with adapter.pool.connection() as conn:
        await conn.execute("ANALYZE embeddings")  # reltuples of the partitions
    adapter.hnsw_ef_search_rows = 1  # any partition is "big": ef above the base value
    try:
        assert _texts(await adapter.search_memories(agent_id, _unit(0)))[0] == "x"
        expires, ef = vars(adapter)["_ef_search_by_agent"][agent_id]
        assert ef > adapter.hnsw_ef_search
        adapter.hnsw_ef_search_rows = 10**12  # changed, but the kept value is used until it expires
        assert _texts(await adapter.search_memories(agent_id, _unit(0)))[0] == "x"
        assert vars(adapter)["_ef_search_by_agent"][agent_id] == (expires, ef)
    finally:
        del adapter.hnsw_ef_search_rows
        vars(adapter).pop("_ef_search_by_agent", None)


def test_migration_keeps_existing_384_vectors(postgres):
    """Data written under 0001's layout is still there, filterable and searchable after 0004."""
    postgres.create_database("embeddings_upgrade")
    url = postgres.database_url("embeddings_upgrade")
    before = [m for m in core_migrations() if m.version < "0004"]
    assert migrate(url, before)
    agent, room, entity, memory_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    vector = np.asarray(_mix({0: 0.6, 1: 0.8}), dtype=np.float32)
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("INSERT INTO agents (id, name, character) VALUES (%s, 'old', '{}')", (agent,))
        conn.execute("INSERT INTO rooms (agent_id, id, source, type) VALUES (%s, %s, 'test', 'DM')", (agent, room))
        conn.execute(
            "INSERT INTO memories (id, agent_id, type, room_id, entity_id, content, content_hash, created_at)"
            " VALUES (%s, %s, 'messages', %s, %s, '{\"text\": \"kept\"}', 'h', now())",
            (memory_id, agent, room, entity),
        )
        conn.execute(
            "INSERT INTO embeddings (memory_id, agent_id, content_hash, model, dim_384)"
            " VALUES (%s, %s, 'h', 'old-model', %s)",
            (memory_id, agent, vector),
        )
    assert migrate(url) == [m.name for m in core_migrations() if m.version >= "0004"]
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        row = conn.execute(
            "SELECT agent_id, type, room_id, entity_id, content_hash, model, dim_384 FROM embeddings"
        ).fetchone()
        partitions = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'embeddings'::regclass"
        ).fetchone()[0]
    assert row[:6] == (agent, "messages", room, entity, "h", "old-model")
    assert np.array_equal(row[6].to_numpy(), vector)
    assert partitions == 16
