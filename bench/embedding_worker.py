"""Embedding worker throughput, and priority under a mixed load, with the local ONNX model.

1. Throughput: the worker (``core.embeddings.worker``) embeds stored memories with the local
   all-MiniLM-L6-v2 model and writes them with the HNSW index in place, for SQS batch sizes
   1, 10, 32 and 100: memories per second.
2. Mixed load, through the local stack's real path (moto SQS server, poller, the
   ``functions.embeddings`` handler): 1,000 low-priority items queued, then 50 high ones; the
   time from enqueueing the high items until all of them are embedded.

Prints JSON lines. Run: ``.venv/bin/python bench/embedding_worker.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path

# Chat-message-like texts: 3 to 30 words (typical user messages are short).
WORDS = [
    "agent",
    "lambda",
    "vector",
    "memory",
    "embedding",
    "queue",
    "priority",
    "runtime",
    "character",
    "plugin",
    "action",
    "provider",
    "evaluator",
    "service",
    "model",
    "registry",
    "postgres",
    "index",
    "search",
    "room",
    "world",
    "entity",
    "relationship",
    "task",
    "worker",
    "schedule",
    "lease",
    "batch",
    "throughput",
    "latency",
    "reply",
    "message",
    "conversation",
    "knowledge",
    "fact",
]


def sentences(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30))) + f" #{i}" for i in range(count)]


async def store_memories(adapter, agent_id, texts):
    from core.types import Content, Entity, Memory, Room

    room, entity = uuid.uuid4(), uuid.uuid4()
    await adapter.ensure_connection(Entity(id=entity, agent_id=agent_id), Room(id=room, agent_id=agent_id), None)
    memories = [Memory(agent_id=agent_id, room_id=room, entity_id=entity, content=Content(text=t)) for t in texts]
    await adapter.create_memories(memories, "messages")
    return memories


async def throughput(url: str, quick: bool) -> None:
    from core.db.adapter import AgentRecord
    from core.db.pool import create_pool
    from core.db.postgres import PostgresAdapter
    from core.embeddings.request import EmbeddingRequest
    from core.embeddings.worker import EmbeddingWorker
    from core.model_providers.local_embedding import get_model
    from core.settings import Settings

    model = get_model()

    async def embed(texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(model.embed, texts)

    pool = create_pool(Settings(database_url=url))
    await pool.open()
    adapter = PostgresAdapter(pool)
    agent = uuid.uuid4()
    await adapter.upsert_agents([AgentRecord(agent, "throughput", {})])
    worker = EmbeddingWorker(adapter, embed, "local")
    total = 200 if quick else 1000
    for batch_size in (1, 10, 32, 100):
        memories = await store_memories(adapter, agent, sentences(total, seed=batch_size))
        requests = [EmbeddingRequest(memory_id=m.id, agent_id=agent, content_hash=m.content_hash) for m in memories]
        started = time.perf_counter()
        for i in range(0, total, batch_size):
            await worker.process(requests[i : i + batch_size])
        rate = total / (time.perf_counter() - started)
        log(f"  batch size {batch_size}: {rate:.0f} memories/s")
        emit(f"worker_throughput_batch_{batch_size}", rate, "memories/s")
    await pool.close()


def _embedded(conn, memories) -> int:
    ids = [m.id for m in memories]
    return conn.execute("SELECT count(*) FROM embeddings WHERE memory_id = ANY(%s)", (ids,)).fetchone()[0]


def mixed_load(url: str, quick: bool) -> None:
    import boto3
    import psycopg

    from infra.local.poller import SqsPoller
    from infra.local.sqs import create_embedding_queues, start_moto_server

    moto = start_moto_server()
    sqs = boto3.client("sqs", endpoint_url=moto.endpoint_url, region_name="us-east-1")
    queues = create_embedding_queues(sqs, prefix=f"bench-{uuid.uuid4().hex[:6]}")
    os.environ.update(
        {
            "DATABASE_URL": url,
            "AWS_ENDPOINT_URL_SQS": moto.endpoint_url,
            "MODEL_PLUGINS": "core.model_providers.local",
            **{f"EMBEDDINGS_{p.upper()}_QUEUE_URL": u for p, u in queues.items()},
        }
    )
    from core.db.adapter import AgentRecord
    from core.embeddings.queue import EmbeddingQueue
    from functions import embeddings

    container = embeddings.container
    agent = uuid.uuid4()
    container.run(container.adapter.upsert_agents([AgentRecord(agent, "mixed", {})]))
    low_count = 200 if quick else 1000
    low = container.run(store_memories(container.adapter, agent, sentences(low_count, seed=1)))
    high = container.run(store_memories(container.adapter, agent, sentences(50, seed=2)))
    queue = EmbeddingQueue(sqs, queues)

    def enqueue(memories, priority) -> None:
        batch = queue.batch()
        for memory in memories:
            batch.add(memory, priority)
        asyncio.run(batch.flush())

    enqueue(low, "low")
    poller = SqsPoller(sqs, queues, embeddings.handler)
    poller.start()
    time.sleep(1.0)  # the worker is busy with the low backlog when the high items arrive
    started = time.perf_counter()
    enqueue(high, "high")
    # Watched from its own connection: the handler's loop belongs to the poller's thread.
    with psycopg.connect(url, autocommit=True) as watch:
        while _embedded(watch, high) < len(high):
            if time.perf_counter() - started > 60:
                raise RuntimeError("high-priority items not embedded within 60 s")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        low_done = _embedded(watch, low)
    poller.stop()
    moto.stop()
    container.close()
    log(f"  50 high items embedded {elapsed:.2f} s after enqueue; {low_done}/{low_count} low items done by then")
    emit("high_priority_embedded_after_enqueue", elapsed * 1000, "ms")
    emit("low_backlog_done_when_high_finished", low_done, "items")


def main() -> None:
    quick = "--quick" in sys.argv
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "local")  # moto's server: no real account is ever reached
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from core.db.migrations import migrate
    from infra.local.postgres import start_embedded_postgres

    log("starting embedded Postgres...")
    server = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="bench-embed-", dir="/tmp")) / "pg")
    server.create_database("bench")
    url = server.database_url("bench")
    migrate(url)
    try:
        log("worker throughput (local ONNX model, HNSW index in place):")
        asyncio.run(throughput(url, quick))
        log("mixed load through moto SQS and the poller:")
        mixed_load(url, quick)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
