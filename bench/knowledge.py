"""Knowledge: ingest rate (fragments per second, embeddings included) and retrieval latency.

Starts an embedded Postgres under /tmp, applies the migrations, and registers one agent with
the local models (the embedded default) and the knowledge plugin. Then:

1. Ingest: ``--fragments`` fragments' worth of documents (deterministic English-like prose,
   split with the default settings: 400 characters, 80 overlap) through
   ``core.knowledge.documents.add_document`` (split, one transaction per document, embedding
   requests queued at low priority through the real ``EmbeddingBatch``, SQS replaced by an
   in-process list), then the embedding worker (``core.embeddings.worker``, local
   all-MiniLM-L6-v2) on those requests in batches of 100 (the low queue's SQS batch size).
   Reported: store rate, embed rate and the overall rate (fragments / total seconds).
2. Retrieval: ``--queries`` questions through the KNOWLEDGE provider's ``get_knowledge``
   (embedding of the message + ``search_knowledge`` over the agent's and the shared
   fragments, text re-rank), and ``search_knowledge`` alone with the query vector computed
   beforehand: p50 and p95.

Prints progress to stderr and JSON lines ``{"metric", "value", "unit"}`` to stdout.

Run: ``.venv/bin/python bench/knowledge.py [--fragments 10000] [--queries 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path

SUBJECTS = [
    "The agent",
    "Every runtime",
    "A plugin",
    "The worker",
    "Each room",
    "The scheduler",
    "Our database",
    "The embedding model",
    "A character",
    "The message service",
    "This provider",
    "The orchestrator",
]
VERBS = [
    "stores",
    "retrieves",
    "splits",
    "queues",
    "indexes",
    "answers",
    "schedules",
    "embeds",
    "ranks",
    "validates",
    "replays",
    "summarises",
]
OBJECTS = [
    "memories of every conversation",
    "fragments of long documents",
    "requests at low priority",
    "vectors in a partitioned table",
    "facts about its users",
    "tasks that are due",
    "replies in character",
    "settings from the environment",
    "events from the queue",
    "knowledge shared by all agents",
    "results of each action",
    "messages in a group room",
]
TAILS = [
    "before the turn ends",
    "without blocking the reply",
    "when the container is warm",
    "in one round trip",
    "at most once per minute",
    "for every agent in the deployment",
    "after the model answers",
    "",
]


class ListSqs:
    """An SQS client stand-in that keeps the message bodies it is sent."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.bodies += [e["MessageBody"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def documents(count_chars: int, seed: int) -> list[str]:
    """Documents of 3 to 8 paragraphs of 2 to 6 sentences, about ``count_chars`` characters in all."""
    rng = random.Random(seed)
    docs, total = [], 0
    while total < count_chars:
        paragraphs = []
        for _ in range(rng.randint(3, 8)):
            sentences = []
            for _ in range(rng.randint(2, 6)):
                tail = rng.choice(TAILS)
                sentences.append(
                    f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
                    f"{' ' + tail if tail else ''} (note {rng.randint(1, 99_999)})."
                )
            paragraphs.append(" ".join(sentences))
        doc = "\n\n".join(paragraphs)
        docs.append(doc)
        total += len(doc)
    return docs


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


async def run(url: str, fragments_wanted: int, queries: int, seed: int) -> None:
    from core.bootstrap import plugin as bootstrap
    from core.character import load_character_dict
    from core.db.pool import create_pool
    from core.db.postgres import PostgresAdapter
    from core.embeddings.queue import EmbeddingQueue
    from core.embeddings.request import EmbeddingRequest
    from core.embeddings.worker import EmbeddingWorker, Outcome
    from core.knowledge import KnowledgeSettings, owner_ids
    from core.knowledge.chunking import split_text
    from core.knowledge.documents import add_document
    from core.knowledge.provider import get_knowledge, knowledge_plugin
    from core.model_providers import local_embedding
    from core.model_providers.local import plugin as local_models
    from core.orchestrator import Orchestrator
    from core.settings import Settings
    from core.types import Content, Memory

    model = local_embedding.get_model()
    pool = create_pool(Settings(database_url=url, pool_max_size=1))  # as in Lambda
    await pool.open()
    sqs = ListSqs()
    orchestrator = Orchestrator(
        PostgresAdapter(pool),
        embedding_queue=EmbeddingQueue(sqs, {"low": "low"}),
        plugins=[bootstrap, local_models, knowledge_plugin],
    )
    (agent_id,) = await orchestrator.add_agents([load_character_dict({"name": "Bench", "bio": ["A bench agent."]})])
    runtime = orchestrator.runtime(agent_id)
    settings = KnowledgeSettings.from_runtime(runtime)

    # Enough documents for the fragments wanted, counted with the splitter itself.
    texts, count = [], 0
    for text in documents(fragments_wanted * settings.chunk_chars, seed):
        if count >= fragments_wanted:
            break
        texts.append(text)
        count += len(split_text(text, settings.chunk_chars, settings.overlap_chars))
    log(f"{len(texts)} documents, {count} fragments; storing...")

    started = time.perf_counter()
    stored = 0
    for i, text in enumerate(texts):
        result = await add_document(runtime, text, name=f"doc-{i:05d}.md", settings=settings)
        stored += result.fragment_count
    store_s = time.perf_counter() - started
    requests = [EmbeddingRequest.model_validate(json.loads(b)) for b in sqs.bodies]
    assert len(requests) == stored and {r.priority for r in requests} == {"low"}
    log(f"stored {stored} fragments in {store_s:.1f} s; embedding...")

    async def embed(batch: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(model.embed, batch)

    worker = EmbeddingWorker(runtime.adapter, embed, local_embedding.MODEL_NAME)
    started = time.perf_counter()
    for i in range(0, len(requests), 100):
        report = await worker.process(requests[i : i + 100])
        assert report.count(Outcome.EMBEDDED) == len(report.outcomes), report.errors
    embed_s = time.perf_counter() - started
    log(f"embedded in {embed_s:.1f} s")
    emit("fragments", stored, "fragments")
    emit("ingest_store_rate", stored / store_s, "fragments/s")
    emit("ingest_embed_rate", stored / embed_s, "fragments/s")
    emit("ingest_rate", stored / (store_s + embed_s), "fragments/s")

    rng = random.Random(seed + 1)
    questions = [
        f"Which {rng.choice(['part', 'service', 'component'])} {rng.choice(VERBS).rstrip('s')}s {rng.choice(OBJECTS)}?"
        for _ in range(queries)
    ]
    room = uuid.uuid4()
    messages = [Memory(agent_id=agent_id, room_id=room, entity_id=room, content=Content(text=q)) for q in questions]
    for message in messages[:10]:  # warm-up: model, connection, catalog caches
        await get_knowledge(runtime, message)
    provider_ms, found = [], []
    for message in messages:
        begin = time.perf_counter()
        fragments = await get_knowledge(runtime, message)
        provider_ms.append((time.perf_counter() - begin) * 1000)
        found.append(len(fragments))
    vectors = model.embed(questions)
    search_ms = []
    owners = owner_ids(agent_id)
    for question, vector in zip(questions, vectors, strict=True):
        begin = time.perf_counter()
        await runtime.adapter.search_knowledge(
            owners, vector, count=settings.match_count, match_threshold=settings.match_threshold, query_text=question
        )
        search_ms.append((time.perf_counter() - begin) * 1000)
    await pool.close()
    log(
        f"provider p50 {percentile(provider_ms, 50):.2f} ms (p95 {percentile(provider_ms, 95):.2f}),"
        f" search alone p50 {percentile(search_ms, 50):.2f} ms; {statistics.fmean(found):.1f} fragments per answer"
    )
    emit("retrieval_provider_p50", percentile(provider_ms, 50), "ms")
    emit("retrieval_provider_p95", percentile(provider_ms, 95), "ms")
    emit("retrieval_search_p50", percentile(search_ms, 50), "ms")
    emit("retrieval_search_p95", percentile(search_ms, 95), "ms")
    emit("fragments_per_answer", statistics.fmean(found), "fragments")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fragments", type=int, default=10_000, help="fragments to ingest")
    parser.add_argument("--queries", type=int, default=200, help="retrievals to time (>= 200 for p95)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # stdout carries this bench's figures only
    from core.db.migrations import migrate
    from infra.local.postgres import start_embedded_postgres, stop_embedded_postgres

    data_dir = Path(tempfile.mkdtemp(prefix="bench-knowledge-", dir="/tmp")) / "data"
    log(f"starting embedded postgres on {data_dir}...")
    server = start_embedded_postgres(data_dir)
    try:
        server.create_database("bench")
        url = server.database_url("bench")
        migrate(url)
        asyncio.run(run(url, args.fragments, args.queries, args.seed))
        log(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    finally:
        stop_embedded_postgres(data_dir)
        shutil.rmtree(data_dir.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
