"""Embedding worker throughput, and priority under a mixed load, with the local ONNX model.

1. Throughput: the Lambda handler (``functions.embeddings.handler``, real SQS events) embeds
   stored memories with the local all-MiniLM-L6-v2 model and writes them with the HNSW index
   in place, for SQS batch sizes 1, 10, 32 and 100: memories whose vector is then found in
   ``embeddings``, per second.
2. Mixed load, through the local stack's real path (moto SQS server, poller, the
   ``functions.embeddings`` handler): 1,000 low-priority items queued, then 50 high ones; the
   time from enqueueing the high items until all of them are embedded.

Prints JSON lines. Run: ``.venv/bin/python bench/embedding_worker.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import contextlib
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


def throughput(url: str, quick: bool) -> None:
    """Memories whose vectors are stored per second, through ``functions.embeddings.handler``.

    Each SQS batch is a real SQS event (Powertools' sample, one record per request) handed to
    the handler as Lambda would, for batch sizes 1, 10, 32 and 100; the rate counts the
    vectors found in ``embeddings`` afterwards, not the handler's own report.
    """
    import psycopg

    from core.db.adapter import AgentRecord
    from core.embeddings.request import EmbeddingRequest
    from functions import embeddings
    from tests.factories import FakeContext, sqs_event

    container = embeddings.container
    agent = uuid.uuid4()
    name = f"throughput-{agent.hex[:6]}"
    container.run(container.adapter.upsert_agents([AgentRecord(agent, name, {"name": name})]))

    def bodies(memories) -> list[str]:
        return [
            EmbeddingRequest(memory_id=m.id, agent_id=agent, content_hash=m.content_hash).model_dump_json(by_alias=True)
            for m in memories
        ]

    warm_up = container.run(store_memories(container.adapter, agent, sentences(10, seed=0)))
    with handler_output_to_stderr():
        embeddings.handler(sqs_event(bodies(warm_up)), FakeContext())  # loads the model: Lambda's first batch
    total = 200 if quick else 1000
    for batch_size in (1, 10, 32, 100):
        memories = container.run(store_memories(container.adapter, agent, sentences(total, seed=batch_size)))
        requests = bodies(memories)
        events = [sqs_event(requests[i : i + batch_size]) for i in range(0, total, batch_size)]
        started = time.perf_counter()
        with handler_output_to_stderr():
            for event in events:
                failures = embeddings.handler(event, FakeContext())["batchItemFailures"]
                assert not failures, failures
        elapsed = time.perf_counter() - started
        with psycopg.connect(url, autocommit=True) as conn:
            stored = _embedded(conn, memories)
        log(f"  batch size {batch_size}: {stored / elapsed:.0f} memories/s ({stored}/{total} stored)")
        emit(f"worker_throughput_batch_{batch_size}", stored / elapsed, "memories/s")
        if batch_size == 32:
            model_rate = model_only_rate([m.text for m in memories], batch_size)
            log(f"  the model alone on the same texts: {model_rate:.0f} texts/s")
            emit("model_only_batch_32", model_rate, "texts/s")
            emit("worker_over_model_only_batch_32", stored / elapsed / model_rate, "ratio")


@contextlib.contextmanager
def handler_output_to_stderr():
    """The handler's own prints (Powertools' metric blobs, which it flushes every 100 metrics
    even when metrics are disabled) go to stderr: stdout carries this bench's figures only."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def model_only_rate(texts: list[str], batch_size: int) -> float:
    """Texts per second of the local model alone, in batches: the ceiling of the worker's rate."""
    from core.model_providers.local_embedding import get_model

    model = get_model()
    started = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        model.embed(texts[i : i + batch_size])
    return len(texts) / (time.perf_counter() - started)


def _embedded(conn, memories) -> int:
    ids = [m.id for m in memories]
    return conn.execute("SELECT count(*) FROM embeddings WHERE memory_id = ANY(%s)", (ids,)).fetchone()[0]


def start_sqs(url: str):
    """moto's SQS server with the three queues, and the environment the handler reads."""
    import boto3

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
    return moto, sqs, queues


def mixed_load(url: str, quick: bool, sqs, queues) -> None:
    import psycopg

    from core.db.adapter import AgentRecord
    from core.embeddings.queue import EmbeddingQueue
    from functions import embeddings
    from infra.local.poller import SqsPoller

    container = embeddings.container
    agent = uuid.uuid4()
    container.run(container.adapter.upsert_agents([AgentRecord(agent, "mixed", {"name": "mixed"})]))
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
    with handler_output_to_stderr():
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
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # stdout carries this bench's figures only
    os.environ.setdefault("SERVER_SECRET", "b" * 64)  # a deployment's own secret (any 32+ characters here)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.factories: real SQS events
    from core.db.migrations import migrate
    from infra.local.postgres import start_embedded_postgres

    log("starting embedded Postgres...")
    server = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="bench-embed-", dir="/tmp")) / "pg")
    server.create_database("bench")
    url = server.database_url("bench")
    migrate(url)
    moto, sqs, queues = start_sqs(url)
    try:
        log("worker throughput through functions.embeddings.handler (local ONNX model, HNSW index in place):")
        throughput(url, quick)
        log("mixed load through moto SQS and the poller:")
        mixed_load(url, quick, sqs, queues)
    finally:
        moto.stop()
        server.stop()


if __name__ == "__main__":
    main()
