"""Housekeeping on a real database and moto's SQS server: lost embeddings re-queued, cache swept."""

from __future__ import annotations

import json
import logging
import uuid

import boto3
import pytest

from core.db.adapter import EmbeddingRow
from core.embeddings.queue import EmbeddingQueue
from core.settings.tasks import HousekeepingSettings
from core.tasks.housekeeping import Housekeeping
from core.types import ChannelType, Content, Entity, Memory, Room
from infra.local.sqs import create_embedding_queues, start_moto_server
from tests.core.tasks.conftest import now_ms, sql

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def sqs():
    server = start_moto_server()
    client = boto3.client("sqs", endpoint_url=server.endpoint_url, region_name="us-east-1")
    urls = create_embedding_queues(client, prefix="housekeeping-test")
    yield client, urls
    server.stop()


def _drain(client, url) -> list[dict]:
    bodies = []
    while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in messages]
        client.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    return bodies


async def _memories(adapter, agent_id, texts_and_ages: dict[str, int]) -> dict[str, Memory]:
    """Memories named by their text, created ``age`` ms ago, in a fresh room."""
    room, entity = uuid.uuid4(), uuid.uuid4()
    await adapter.ensure_connection(
        Entity(id=entity, agent_id=agent_id), Room(id=room, agent_id=agent_id, type=ChannelType.DM), None
    )
    memories = {
        text: Memory(
            agent_id=agent_id, room_id=room, entity_id=entity, content=Content(text=text), created_at=now_ms() - age
        )
        for text, age in texts_and_ages.items()
    }
    await adapter.create_memories(list(memories.values()), "messages")
    return memories


def _vector(memory: Memory, content_hash: str | None = None) -> EmbeddingRow:
    return EmbeddingRow(memory.id, memory.agent_id, content_hash or memory.content_hash, "test", [1.0] + [0.0] * 383)


async def test_pending_embeddings_are_those_without_a_vector_of_the_current_text(adapter, agent_id):
    old = 10 * 60_000
    ms = await _memories(
        adapter,
        agent_id,
        {
            "no vector": old,
            "has vector": old,
            "edited since": old,
            "   ": old,
            "too young": 1_000,
            "too old": 2 * DAY_MS,
        },
    )
    empty = await _memories(adapter, agent_id, {"": old})
    await adapter.upsert_embeddings([_vector(ms["has vector"]), _vector(ms["edited since"])])
    await adapter.update_memory(agent_id, ms["edited since"].id, content={"text": "edited since, new text"})
    pending = await adapter.get_pending_embeddings(300, 1000, max_age_s=DAY_MS / 1000)
    mine = [m for m in pending if m.agent_id == agent_id]
    assert {m.id for m in mine} == {ms["no vector"].id, ms["edited since"].id}
    assert {m.text for m in mine} == {"no vector", "edited since, new text"}
    assert empty[""].id not in {m.id for m in pending}
    # Oldest first, bounded.
    assert [m.created_at for m in pending] == sorted(m.created_at for m in pending)
    assert len(await adapter.get_pending_embeddings(300, 1, max_age_s=DAY_MS / 1000)) == 1


async def test_documents_and_action_results_are_never_pending(adapter, agent_id):
    old = 10 * 60_000
    [message] = (await _memories(adapter, agent_id, {"a message": old})).values()
    others = [
        message.model_copy(update={"id": uuid.uuid4(), "content": Content(text=f"{table} text")})
        for table in ("documents", "action_results")
    ]
    await adapter.create_memories([others[0]], "documents")
    await adapter.create_memories([others[1]], "action_results")
    pending = {m.id for m in await adapter.get_pending_embeddings(300, 1000, max_age_s=DAY_MS / 1000)}
    assert message.id in pending and not pending & {m.id for m in others}


async def test_pending_embeddings_count_only_the_configured_dimension(database_url, adapter, agent_id):
    [memory] = (await _memories(adapter, agent_id, {"another model": 400 * DAY_MS + 60_000})).values()
    await adapter.upsert_embeddings([_vector(memory)])  # 384-d
    window = {"older_than_s": 400 * 86_400, "limit": 1000, "max_age_s": 401 * 86_400}
    assert memory.id not in {m.id for m in await adapter.get_pending_embeddings(**window)}
    from core.db.postgres import PostgresAdapter

    other_dimension = PostgresAdapter(adapter.pool, embedding_dimension=768)
    assert memory.id in {m.id for m in await other_dimension.get_pending_embeddings(**window)}


@pytest.mark.parametrize(
    ("older", "limit", "max_age"), [(-1, 10, 60), (60, 10, 60), (120, 10, 60), (1, 0, 60), (1, 1001, 60)]
)
async def test_pending_embeddings_refuse_bad_bounds(adapter, older, limit, max_age):
    with pytest.raises(ValueError):
        await adapter.get_pending_embeddings(older, limit, max_age_s=max_age)


async def test_pending_embeddings_probe_the_primary_key_and_read_the_window_on_an_index(adapter):
    from core.db.postgres.embeddings import _COLUMNS, _pending_sql

    params = {"older": 300.0, "max_age": 86_400.0, "limit": 500, "never_embedded": ["documents"], "max_requeues": 3}
    async with adapter.pool.connection() as conn:
        await conn.execute("BEGIN")
        # Plan as on a big table: the shape must not depend on this test table's size.
        await conn.execute("SET LOCAL enable_seqscan = off")
        cur = await conn.execute(b"EXPLAIN " + _pending_sql(_COLUMNS[384]).as_bytes(conn), params)
        plan = "\n".join(r["QUERY PLAN"] for r in await cur.fetchall())
        await conn.execute("ROLLBACK")
    assert "SubPlan" in plan and "Anti Join" not in plan, plan  # a per-row key probe, not a hash of all vectors
    assert "memories_created" in plan, plan


async def test_housekeeping_requeues_lost_embeddings_at_normal_priority(adapter, agent_id, sqs):
    client, urls = sqs
    for url in urls.values():
        _drain(client, url)
    # A window no other test's memories fall into: 500 days ago.
    ms = await _memories(
        adapter, agent_id, {"lost one": 500 * DAY_MS, "lost two": 500 * DAY_MS + 1, "embedded": 500 * DAY_MS + 2}
    )
    await adapter.upsert_embeddings([_vector(ms["embedded"])])
    settings = HousekeepingSettings(embedding_pending_after_s=499 * 86_400, embedding_pending_max_age_s=501 * 86_400)
    queue = EmbeddingQueue(client, urls, dimension=384)
    report = await Housekeeping(adapter, queue, settings).run()
    assert (report.pending_embeddings, report.requeued_embeddings, report.errors) == (2, 2, 0)
    bodies = _drain(client, urls["normal"])
    assert {(b["memoryId"], b["agentId"], b["contentHash"], b["priority"]) for b in bodies} == {
        (str(ms[t].id), str(agent_id), ms[t].content_hash, "normal") for t in ("lost one", "lost two")
    }
    assert _drain(client, urls["high"]) == [] and _drain(client, urls["low"]) == []


async def test_housekeeping_survives_sqs_being_down(adapter, agent_id, caplog):
    await _memories(adapter, agent_id, {"lost": 600 * DAY_MS})
    settings = HousekeepingSettings(embedding_pending_after_s=599 * 86_400, embedding_pending_max_age_s=601 * 86_400)
    down = boto3.client("sqs", endpoint_url="http://127.0.0.1:9", region_name="us-east-1")
    queue = EmbeddingQueue(down, {"normal": "http://127.0.0.1:9/123456789012/nowhere"})
    with caplog.at_level(logging.WARNING):
        report = await Housekeeping(adapter, queue, settings).run()
    assert (report.pending_embeddings, report.requeued_embeddings) == (1, 0)
    assert "left pending" in caplog.text  # and found again by the next run: nothing is lost


async def test_housekeeping_without_a_queue_still_sweeps_the_cache(adapter, agent_id, caplog):
    await adapter.set_cache(agent_id, "gone", {"v": 1}, ttl_s=1)
    await adapter.set_cache(agent_id, "kept", {"v": 2}, ttl_s=3600)
    await sql(
        adapter,
        "UPDATE cache SET expires_at = now() - interval '1 s' WHERE agent_id = %s AND key = 'gone'",
        (agent_id,),
    )
    with caplog.at_level(logging.WARNING):
        report = await Housekeeping(adapter, None, HousekeepingSettings()).run()
    assert report.expired_cache_deleted >= 1 and report.errors == 0
    assert "not re-queued" in caplog.text
    rows = await sql(adapter, "SELECT key FROM cache WHERE agent_id = %s", (agent_id,))
    assert [r["key"] for r in rows] == ["kept"]


async def test_housekeeping_bounds_the_cache_sweep(adapter, agent_id):
    for i in range(5):
        await adapter.set_cache(agent_id, f"k{i}", i, ttl_s=1)
    await sql(adapter, "UPDATE cache SET expires_at = now() - interval '1 s' WHERE agent_id = %s", (agent_id,))
    report = await Housekeeping(adapter, None, HousekeepingSettings(cache_sweep_limit=2)).run()
    assert report.expired_cache_deleted == 2


async def test_housekeeping_reports_database_errors(database_url, caplog):
    from core.db.pool import create_pool
    from core.db.postgres import PostgresAdapter
    from core.settings import Settings

    pool = create_pool(Settings(database_url=database_url, pool_timeout_s=0.5))
    await pool.open()
    await pool.close()
    queue = EmbeddingQueue(None, {})
    with caplog.at_level(logging.ERROR):
        report = await Housekeeping(PostgresAdapter(pool), queue, HousekeepingSettings()).run()
    assert report.errors == 2 and "pending embeddings failed" in caplog.text
