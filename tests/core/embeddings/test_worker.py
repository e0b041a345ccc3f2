from __future__ import annotations

import uuid

import pytest

from core.db.adapter import AgentRecord
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.embeddings.request import EmbeddingRequest
from core.embeddings.worker import EmbeddingWorker, Outcome
from core.model_providers.scripted import ScriptedModels
from core.settings import Settings
from core.types import Content, Entity, Memory, Room


class CountingEmbedder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail
        self.models = ScriptedModels()

    async def __call__(self, texts: list[str]) -> list[list[float]]:
        self.batches.append(texts)
        if self.fail:
            raise RuntimeError("model crashed")
        return [self.models.vector(t) for t in texts]


@pytest.fixture
async def stored(database_url):
    pool = create_pool(Settings(database_url=database_url))
    await pool.open()
    adapter = PostgresAdapter(pool)
    agent, room, entity = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await adapter.upsert_agents([AgentRecord(agent, f"w-{agent}", {})])
    await adapter.ensure_connection(Entity(id=entity, agent_id=agent), Room(id=room, agent_id=agent), None)
    memories = [
        Memory(agent_id=agent, room_id=room, entity_id=entity, content=Content(text=f"text {i}")) for i in range(3)
    ]
    await adapter.create_memories(memories, "messages")
    yield adapter, memories
    await pool.close()


def _request(memory: Memory, **changes) -> EmbeddingRequest:
    fields = {"memory_id": memory.id, "agent_id": memory.agent_id, "content_hash": memory.content_hash, **changes}
    return EmbeddingRequest(**fields)


async def test_one_model_call_for_the_batch_then_duplicates_are_free(stored):
    adapter, memories = stored
    embed = CountingEmbedder()
    worker = EmbeddingWorker(adapter, embed, "test")
    report = await worker.process([_request(m) for m in memories] + [_request(memories[0])])
    assert embed.batches == [["text 0", "text 1", "text 2"]]
    assert set(report.outcomes.values()) == {Outcome.EMBEDDED}
    targets = await adapter.get_embedding_targets([m.id for m in memories])
    assert all(t.embedded_hash == t.content_hash for t in targets)

    again = await worker.process([_request(m) for m in memories])
    assert len(embed.batches) == 1  # redelivery: no model call, no write
    assert again.count(Outcome.DUPLICATE) == 3


async def test_stale_requests_are_acknowledged_and_skipped(stored):
    adapter, memories = stored
    embed = CountingEmbedder()
    report = await EmbeddingWorker(adapter, embed, "test").process(
        [
            _request(memories[0], content_hash="older-text"),
            _request(memories[1], memory_id=uuid.uuid4()),
        ]
    )
    assert set(report.outcomes.values()) == {Outcome.STALE}
    assert embed.batches == []


async def test_model_failure_fails_the_requests_for_retry(stored):
    adapter, memories = stored
    report = await EmbeddingWorker(adapter, CountingEmbedder(fail=True), "test").process(
        [_request(m) for m in memories[:2]]
    )
    assert report.count(Outcome.FAILED) == 2
    assert "model crashed" in next(iter(report.errors.values()))
    assert all(t.embedded_hash is None for t in await adapter.get_embedding_targets([m.id for m in memories]))


async def test_events_are_emitted_per_embedded_and_failed_memory(stored):
    from core.events import EventBus, EventType

    adapter, memories = stored
    bus, seen = EventBus(), []

    async def record(payload):
        seen.append(payload)

    bus.register(EventType.EMBEDDING_GENERATION_COMPLETED, record)
    bus.register(EventType.EMBEDDING_GENERATION_FAILED, record)
    await EmbeddingWorker(adapter, CountingEmbedder(), "test", events=bus).process([_request(memories[0])])
    await EmbeddingWorker(adapter, CountingEmbedder(fail=True), "test", events=bus).process([_request(memories[1])])
    assert [(p["memoryId"], p["error"]) for p in seen] == [
        (str(memories[0].id), None),
        (str(memories[1].id), "model crashed"),
    ]


async def test_requests_for_another_dimension_are_stale(stored):
    adapter, memories = stored
    embed = CountingEmbedder()
    report = await EmbeddingWorker(adapter, embed, "test", dimension=384).process(
        [_request(memories[0], dimension=768)]
    )
    assert report.outcomes[memories[0].id] is Outcome.STALE and embed.batches == []


def test_long_texts_are_cut_at_a_word_boundary():
    from core.embeddings.worker import MAX_EMBEDDING_CHARS, truncate

    text = "word " * 5000
    cut = truncate(text)
    assert len(cut) <= MAX_EMBEDDING_CHARS and cut.endswith("word") and text.startswith(cut)
    assert truncate("short") == "short"
    assert truncate("x" * 20) == "x" * 20 and len(truncate("x" * 9000)) == MAX_EMBEDDING_CHARS


async def test_a_refused_text_fails_alone_and_its_batch_mates_are_stored(stored):
    adapter, memories = stored
    models = ScriptedModels()
    models.refuse("text 1")
    calls: list[list[str]] = []

    async def embed(texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        vectors = await models.embed({"texts": texts})
        assert isinstance(vectors[0], list)
        return vectors  # type: ignore[return-value]

    report = await EmbeddingWorker(adapter, embed, "test").process([_request(m) for m in memories])
    assert calls == [["text 0", "text 1", "text 2"], ["text 0"], ["text 1"], ["text 2"]]
    assert report.outcomes == {
        memories[0].id: Outcome.EMBEDDED,
        memories[1].id: Outcome.FAILED,
        memories[2].id: Outcome.EMBEDDED,
    }
    assert "text 1" in report.errors[memories[1].id] and len(report.errors) == 1
    stored_hashes = {
        t.memory_id: t.embedded_hash for t in await adapter.get_embedding_targets([m.id for m in memories])
    }
    assert stored_hashes == {
        memories[0].id: memories[0].content_hash,
        memories[1].id: None,
        memories[2].id: memories[2].content_hash,
    }


async def test_a_retryable_model_failure_is_not_split(stored):
    from core.errors import ModelError

    adapter, memories = stored
    calls: list[list[str]] = []

    async def embed(texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        raise ModelError("throttled", provider="test", retryable=True)

    report = await EmbeddingWorker(adapter, embed, "test").process([_request(m) for m in memories])
    assert len(calls) == 1 and report.count(Outcome.FAILED) == 3
