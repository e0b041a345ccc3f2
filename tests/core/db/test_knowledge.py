from __future__ import annotations

import asyncio
import uuid

import pytest

from core.db.pipelined import pipelined
from core.db.postgres import knowledge as storage
from core.embeddings.request import EmbeddingRequest
from core.embeddings.worker import EmbeddingWorker
from core.errors import DatabaseError
from core.knowledge import DOCUMENTS_TABLE, FRAGMENTS_TABLE, KnowledgeSettings
from core.knowledge.documents import build_document
from core.model_providers.scripted import ScriptedModels
from core.types import Content, Memory

SETTINGS = KnowledgeSettings(chunk_chars=60, overlap_chars=0)
TEXT = (
    "Cats sleep sixteen hours a day. Dogs bark at the postman every morning. "
    "Parrots can repeat words they hear. Goldfish remember things for months."
)
models = ScriptedModels()


def _document(owner, text=TEXT, name="animals.txt"):
    return build_document(
        owner, text, name=name, shared=False, content_type="text/plain", origin="test", metadata=None, settings=SETTINGS
    )


async def _embed(adapter, fragments):
    async def embed(texts):
        return [models.vector(t) for t in texts]

    requests = [
        EmbeddingRequest(memory_id=f.id, agent_id=f.agent_id, content_hash=f.content_hash, priority="low")
        for f in fragments
    ]
    await EmbeddingWorker(adapter, embed, "scripted").process(requests)


def test_table_names_agree_with_the_knowledge_package():
    assert (storage.DOCUMENTS_TABLE, storage.FRAGMENTS_TABLE) == (DOCUMENTS_TABLE, FRAGMENTS_TABLE)


async def test_a_document_is_added_once_then_unchanged(adapter, agent_id):
    document, fragments = _document(agent_id)
    assert len(fragments) == 4  # one sentence each
    first = await adapter.upsert_knowledge_document(document, fragments)
    assert first.status == "added" and [f.id for f in first.to_embed] == [f.id for f in fragments]
    stored = await adapter.get_knowledge_fragments(agent_id, document.id)
    assert [f.text for f in stored] == [f.text for f in fragments]
    assert [f.metadata.model_extra["position"] for f in stored] == [0, 1, 2, 3]

    again = await adapter.upsert_knowledge_document(*_document(agent_id))
    assert again.status == "unchanged"
    assert {f.id for f in again.to_embed} == {f.id for f in fragments}  # no vector yet: queue them again
    await _embed(adapter, fragments)
    assert (await adapter.upsert_knowledge_document(*_document(agent_id))).to_embed == []
    assert await adapter.count_memories(agent_id, table=FRAGMENTS_TABLE) == 4
    assert await adapter.count_memories(agent_id, table=DOCUMENTS_TABLE) == 1


async def test_a_new_version_replaces_fragments_and_their_vectors(adapter, agent_id):
    old_doc, old_fragments = _document(agent_id)
    await adapter.upsert_knowledge_document(old_doc, old_fragments)
    await _embed(adapter, old_fragments)
    new_doc, new_fragments = _document(agent_id, text="Whales sing long songs under the sea.")
    assert new_doc.id == old_doc.id  # same name, same document
    write = await adapter.upsert_knowledge_document(new_doc, new_fragments)
    assert write.status == "replaced" and len(write.to_embed) == 1
    assert [f.text for f in await adapter.get_knowledge_fragments(agent_id, new_doc.id)] == [
        "Whales sing long songs under the sea."
    ]
    targets = await adapter.get_embedding_targets([f.id for f in old_fragments])
    assert targets == []  # old fragments and their vectors are gone
    stored = await adapter.get_knowledge_document([agent_id], new_doc.id)
    assert stored.text == "Whales sing long songs under the sea."


async def test_other_splitting_settings_re_split_the_same_text(adapter, agent_id):
    await adapter.upsert_knowledge_document(*_document(agent_id))
    document, fragments = build_document(
        agent_id,
        TEXT,
        name="animals.txt",
        shared=False,
        content_type="text/plain",
        origin="test",
        metadata=None,
        settings=KnowledgeSettings(chunk_chars=500),
    )
    write = await adapter.upsert_knowledge_document(document, fragments)
    assert write.status == "replaced" and len(fragments) == 1
    assert len(await adapter.get_knowledge_fragments(agent_id, document.id)) == 1


async def test_fragments_must_belong_to_the_document_and_its_owner(adapter, agent_id, other_agent):
    document, fragments = _document(agent_id)
    _, foreign = _document(other_agent)
    with pytest.raises(ValueError, match="does not belong"):
        await adapter.upsert_knowledge_document(document, [*fragments, foreign[0]])
    _, other_doc_fragments = _document(agent_id, name="other.txt")
    with pytest.raises(ValueError, match="does not belong"):
        await adapter.upsert_knowledge_document(document, other_doc_fragments)
    assert await adapter.get_knowledge_document([agent_id], document.id) is None


async def test_an_id_held_by_another_memory_is_refused_and_nothing_is_written(adapter, agent_id, other_agent):
    document, fragments = _document(agent_id)
    await adapter.upsert_knowledge_document(document, fragments)
    hijack = document.model_copy(update={"agent_id": other_agent, "entity_id": other_agent, "room_id": other_agent})
    with pytest.raises(ValueError, match="already used"):
        await adapter.upsert_knowledge_document(hijack, [])
    assert (await adapter.get_knowledge_document([agent_id], document.id)).text == TEXT
    assert await adapter.get_knowledge_document([other_agent], document.id) is None
    assert await adapter.count_memories(other_agent) == 0


async def test_reads_and_deletes_are_scoped_by_owner(adapter, agent_id, other_agent):
    document, fragments = _document(agent_id)
    await adapter.upsert_knowledge_document(document, fragments)
    assert await adapter.get_knowledge_document([other_agent], document.id) is None
    assert await adapter.get_knowledge_fragments(other_agent, document.id) == []
    assert (await adapter.list_knowledge_documents([other_agent])).memories == []
    assert await adapter.delete_knowledge_document([other_agent], document.id) is False
    assert await adapter.get_knowledge_document([other_agent, agent_id], document.id) is not None

    assert await adapter.delete_knowledge_document([agent_id], document.id) is True
    assert await adapter.get_knowledge_document([agent_id], document.id) is None
    assert await adapter.count_memories(agent_id) == 0
    assert await adapter.delete_knowledge_document([agent_id], document.id) is False


async def test_listing_pages_newest_first_without_text(adapter, agent_id, other_agent):
    for i in range(5):
        await adapter.upsert_knowledge_document(*_document(agent_id, text=f"Document number {i}.", name=f"d{i}"))
    await adapter.upsert_knowledge_document(*_document(other_agent, text="Shared words.", name="s"))
    seen, cursor = [], None
    while True:
        page = await adapter.list_knowledge_documents([agent_id, other_agent], limit=2, cursor=cursor)
        seen += page.memories
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == 6 and len({m.id for m in seen}) == 6
    assert [m.created_at for m in seen] == sorted((m.created_at for m in seen), reverse=True)
    assert all(m.content.text is None and m.metadata.model_extra["title"] for m in seen)
    with pytest.raises(ValueError, match="cursor"):
        await adapter.list_knowledge_documents([agent_id], cursor="not-a-cursor")


async def test_search_reads_only_the_owners_named(adapter, agent_id, other_agent):
    third = uuid.uuid4()
    await adapter.create_agent(type(await adapter.get_agent(agent_id))(third, f"third-{third}", {}))
    by_owner = {}
    for owner, text in (
        (agent_id, "Cats sleep all day long."),
        (other_agent, "Cats sleep in the sun."),
        (third, "Cats sleep on the sofa."),
    ):
        document, fragments = _document(owner, text=text)
        await adapter.upsert_knowledge_document(document, fragments)
        await _embed(adapter, fragments)
        by_owner[owner] = fragments[0].id
    query = models.vector("cats sleep")
    found = await adapter.search_knowledge([agent_id, other_agent], query, count=10, match_threshold=-1)
    assert {m.id for m in found} == {by_owner[agent_id], by_owner[other_agent]}
    assert all(m.similarity is not None for m in found)
    assert found == sorted(found, key=lambda m: -m.similarity)
    only_third = await adapter.search_knowledge([third], query, count=10, match_threshold=-1, query_text="sofa")
    assert [m.id for m in only_third] == [by_owner[third]]


async def test_search_applies_threshold_count_and_the_knowledge_table_only(adapter, agent_id):
    document, fragments = _document(agent_id)
    await adapter.upsert_knowledge_document(document, fragments)
    await _embed(adapter, fragments)
    room = agent_id  # the knowledge room: a message there with the same words is not knowledge
    message = Memory(agent_id=agent_id, room_id=room, entity_id=agent_id, content=Content(text="cats sleep"))
    await adapter.create_memories([message], "messages")
    await _embed(adapter, [message])
    query = models.vector("cats sleep")
    best = await adapter.search_knowledge([agent_id], query, count=1, match_threshold=-1)
    assert [m.text for m in best] == ["Cats sleep sixteen hours a day."]
    every = await adapter.search_knowledge([agent_id], query, count=10, match_threshold=-1)
    assert {m.id for m in every} == {f.id for f in fragments}
    assert await adapter.search_knowledge([agent_id], query, count=10, match_threshold=0.99) == []
    words = await adapter.search_knowledge(
        [agent_id], models.vector("parrots"), count=1, match_threshold=-1, query_text="parrots repeat words"
    )
    assert words[0].text.startswith("Parrots")


async def test_owner_lists_and_counts_are_checked(adapter, agent_id):
    with pytest.raises(ValueError, match="owners"):
        await adapter.get_knowledge_document([], uuid.uuid4())
    with pytest.raises(ValueError, match="owners"):
        await adapter.search_knowledge([uuid.uuid4() for _ in range(9)], models.vector("x"))
    with pytest.raises(ValueError, match="count"):
        await adapter.search_knowledge([agent_id], models.vector("x"), count=0)


async def test_the_fragment_index_serves_document_lookups(adapter, agent_id):
    document, fragments = _document(agent_id)
    await adapter.upsert_knowledge_document(document, fragments)
    async with adapter.pool.connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = await (
            await conn.execute(
                "EXPLAIN SELECT id FROM memories WHERE agent_id = %s AND type = 'knowledge'"
                " AND metadata->>'documentId' = %s",
                (agent_id, str(document.id)),
            )
        ).fetchall()
    assert "memories_knowledge_document" in " ".join(str(r) for r in plan)


async def test_concurrent_adds_of_one_document_store_it_once(adapter, agent_id):
    import asyncio

    results = await asyncio.gather(*(adapter.upsert_knowledge_document(*_document(agent_id)) for _ in range(4)))
    assert sorted(r.status for r in results) == ["added", "unchanged", "unchanged", "unchanged"]
    assert await adapter.count_memories(agent_id, table=FRAGMENTS_TABLE) == 4


async def test_a_search_among_pipelined_reads_finds_the_same_and_its_settings_end_with_it(adapter, agent_id):
    """Inside ``pipelined`` the search's BEGIN, SET LOCAL values, query and COMMIT go out among the
    other reads (no sync of their own): same fragments, and the values do not outlive the search."""
    document, fragments = _document(agent_id)
    await adapter.upsert_knowledge_document(document, fragments)
    await _embed(adapter, fragments)
    query = models.vector("cats sleep")
    alone = await adapter.search_knowledge([agent_id], query, count=2, match_threshold=-1)

    async def setting_after() -> str:
        await asyncio.sleep(0)  # sent after the search's statements
        return str(await adapter._fetch_value("SELECT current_setting('hnsw.ef_search')"))

    async with pipelined(adapter.pool):
        together, ef_search, listed = await asyncio.gather(
            adapter.search_knowledge([agent_id], query, count=2, match_threshold=-1),
            setting_after(),
            adapter.get_knowledge_fragments(agent_id, document.id),
        )
    assert [m.id for m in together] == [m.id for m in alone]
    assert len(listed) == 4
    async with adapter.pool.connection() as conn:
        default = (await (await conn.execute("SHOW hnsw.ef_search")).fetchone())["hnsw.ef_search"]
    assert ef_search == default  # the search's SET LOCAL ended with its COMMIT


async def test_a_failing_search_among_pipelined_reads_raises_to_its_caller(adapter, agent_id):
    async with pipelined(adapter.pool):
        with pytest.raises(DatabaseError, match="search_knowledge"):
            await adapter.search_knowledge([agent_id], [float("nan")] * 384, count=2, match_threshold=-1)
