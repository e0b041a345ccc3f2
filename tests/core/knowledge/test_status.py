"""core.knowledge.status: fragments embedded, queued and failed, counted on a real database."""

from __future__ import annotations

import uuid

import pytest

from core.db.adapter import EmbeddingRow
from core.errors import ConfigurationError
from core.knowledge import SHARED_KNOWLEDGE_ID
from core.knowledge.documents import add_document, delete_document
from core.knowledge.status import given_up_after_s, knowledge_status

NOTES = (
    "The launch code is stored in the blue safe.\n\n"
    "Lunch is served at noon in the garden room.\n\n"
    "The wifi password is printed under the router."
)
SMALL = {"KNOWLEDGE_CHUNK_CHARS": 60, "KNOWLEDGE_CHUNK_OVERLAP_CHARS": 0}
DAY_S = 86_400.0


async def _fragment_ids(adapter, owner) -> list[uuid.UUID]:
    async with adapter.pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT id FROM memories WHERE agent_id = %s AND type = 'knowledge' ORDER BY created_at, id", (owner,)
            )
        ).fetchall()
    return [r["id"] for r in rows]


async def _backdate(adapter, ids, seconds: float) -> None:
    async with adapter.pool.connection() as conn:
        await conn.execute(
            "UPDATE memories SET created_at = now() - make_interval(secs => %s) WHERE id = ANY(%s)",
            (seconds, list(ids)),
        )


async def test_fragments_move_from_queued_to_embedded_as_the_worker_stores_vectors(make_runtime, run_worker, adapter):
    runtime = await make_runtime(SMALL)
    await add_document(runtime, NOTES, name="notes.md")
    status = await knowledge_status(adapter, runtime.agent_id, failed_after_s=DAY_S)
    assert status.private[1:] == (3, 0, 3, 0)  # fragments, embedded, queued, failed
    assert status.as_json()["searchable"] == 0.0
    await run_worker()
    status = await knowledge_status(adapter, runtime.agent_id, failed_after_s=DAY_S)
    assert status.private[1:] == (3, 3, 0, 0) and status.searchable_ratio() == 1.0


async def test_a_fragment_older_than_the_sweeps_window_without_a_vector_is_failed(make_runtime, adapter, sqs):
    runtime = await make_runtime(SMALL)
    await add_document(runtime, NOTES, name="notes.md")
    first, *rest = await _fragment_ids(adapter, runtime.agent_id)
    await _backdate(adapter, [first], DAY_S + 60)
    status = await knowledge_status(adapter, runtime.agent_id, failed_after_s=DAY_S)
    assert status.private[1:] == (3, 0, 2, 1)
    status = await knowledge_status(adapter, runtime.agent_id, failed_after_s=2 * DAY_S)  # a longer window
    assert status.private[1:] == (3, 0, 3, 0)


async def test_a_vector_of_older_text_or_of_another_dimension_does_not_count(make_runtime, adapter, scripted, sqs):
    runtime = await make_runtime(SMALL)
    await add_document(runtime, NOTES, name="notes.md")
    ids = await _fragment_ids(adapter, runtime.agent_id)
    targets = {t.memory_id: t for t in await adapter.get_embedding_targets(ids)}
    await adapter.upsert_embeddings(
        [
            EmbeddingRow(i, runtime.agent_id, targets[i].content_hash, "scripted", scripted.vector(targets[i].text))
            for i in ids[:2]
        ]
    )
    async with adapter.pool.connection() as conn:  # the first one's text changed since its vector was made
        await conn.execute(
            "UPDATE memories SET content = content || '{\"text\": \"edited\"}', content_hash = 'edited' WHERE id = %s",
            (ids[0],),
        )
    status = await knowledge_status(adapter, runtime.agent_id, failed_after_s=DAY_S)
    assert status.private[1:] == (3, 1, 2, 0)
    adapter.embedding_dimension = 768  # a new model: the 384-d vectors are not its vectors
    try:
        status = await knowledge_status(adapter, runtime.agent_id, failed_after_s=DAY_S)
    finally:
        adapter.embedding_dimension = 384
    assert status.private[1:] == (3, 0, 3, 0)


async def test_shared_fragments_are_counted_apart_and_in_the_totals(make_runtime, adapter, sqs):
    runtime = await make_runtime(SMALL)
    before = await knowledge_status(adapter, runtime.agent_id, failed_after_s=DAY_S)
    added = await add_document(runtime, NOTES, name=f"shared-{uuid.uuid4().hex}.md", shared=True)
    after = await knowledge_status(adapter, runtime.agent_id, failed_after_s=DAY_S)
    assert await delete_document(runtime, added.document_id)  # every agent sees it: not left to other tests
    assert after.private.fragments == 0 and after.shared.owner_id == SHARED_KNOWLEDGE_ID
    assert after.shared.fragments == before.shared.fragments + 3
    assert after.total("fragments") == after.shared.fragments
    assert after.as_json()["shared"]["fragments"] == after.shared.fragments


async def test_an_agent_without_fragments_counts_zeros_and_is_fully_searchable(adapter, agent_id):
    status = await knowledge_status(adapter, agent_id, failed_after_s=DAY_S)
    assert status.private[1:] == (0, 0, 0, 0)
    assert status.as_json()["private"] == {"fragments": 0, "embedded": 0, "queued": 0, "failed": 0}


async def test_the_shared_owner_itself_has_only_shared_fragments(adapter):
    status = await knowledge_status(adapter, SHARED_KNOWLEDGE_ID, failed_after_s=DAY_S)
    assert status.private.fragments == 0 and status.shared.owner_id == SHARED_KNOWLEDGE_ID


async def test_counts_refuse_bad_owners_and_ages(adapter, agent_id):
    with pytest.raises(ValueError, match="owners"):
        await adapter.knowledge_embedding_counts([], given_up_after_s=DAY_S)
    with pytest.raises(ValueError, match="given_up_after_s"):
        await adapter.knowledge_embedding_counts([agent_id], given_up_after_s=-1)


def test_the_failed_age_is_the_sweeps_max_age_setting():
    assert given_up_after_s({}) == DAY_S
    assert given_up_after_s({"EMBEDDING_PENDING_MAX_AGE_S": "3600"}) == 3600.0
    with pytest.raises(ConfigurationError, match="EMBEDDING_PENDING_MAX_AGE_S"):
        given_up_after_s({"EMBEDDING_PENDING_MAX_AGE_S": "soon"})
