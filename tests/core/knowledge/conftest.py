"""Runtimes on real Postgres with moto's SQS, and the real embedding path run in-process."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable

import pytest

from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.embeddings.queue import EmbeddingQueue
from core.embeddings.request import EmbeddingRequest
from core.embeddings.worker import BatchReport, EmbeddingWorker
from core.knowledge.provider import knowledge_plugin
from core.orchestrator import Orchestrator
from core.runtime import AgentRuntime

#: The low queue's SQS batch size in template.yaml.
LOW_BATCH = 100


@pytest.fixture
def make_runtime(adapter, sqs, scripted) -> Callable[..., Awaitable[AgentRuntime]]:
    """``await make_runtime(settings={...}, character={...})``: a fresh agent's runtime."""
    client, urls = sqs

    async def make(settings: dict | None = None, character: dict | None = None, models=None) -> AgentRuntime:
        orchestrator = Orchestrator(
            adapter,
            embedding_queue=EmbeddingQueue(client, urls),
            plugins=[bootstrap, models or scripted.plugin(), knowledge_plugin],
        )
        data = {"bio": ["A test agent."], **(character or {})}
        data["name"] = f"{data.get('name', 'K')}-{uuid.uuid4().hex[:12]}"  # a fresh agent every time
        data["settings"] = {**data.get("settings", {}), **(settings or {})}
        data.pop("id", None)
        (agent_id,) = await orchestrator.add_agents([load_character_dict(data)])
        return orchestrator.runtime(agent_id)

    return make


def drain(client, url) -> list[EmbeddingRequest]:
    """Every request waiting in one queue (received and deleted)."""
    requests = []
    while True:
        got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return requests
        for message in got:
            requests.append(EmbeddingRequest.model_validate(json.loads(message["Body"])))
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def run_worker(adapter, sqs, scripted):
    """``await run_worker(embed=None)``: the embedding worker on what the low queue holds.

    The worker is the real one (``core.embeddings.worker``) in SQS-sized batches; ``embed`` is
    the scripted bag-of-words model unless given. Asserts nothing waits in the other queues.
    """
    client, urls = sqs

    async def run(embed=None, model_name: str = "scripted") -> BatchReport:
        for priority in ("high", "normal"):
            assert drain(client, urls[priority]) == [], f"knowledge must not use the {priority} queue"
        requests = drain(client, urls["low"])

        async def scripted_embed(texts: list[str]) -> list[list[float]]:
            return [scripted.vector(t) for t in texts]

        worker = EmbeddingWorker(adapter, embed or scripted_embed, model_name)
        report = BatchReport()
        for start in range(0, len(requests), LOW_BATCH):
            part = await worker.process(requests[start : start + LOW_BATCH])
            report.outcomes.update(part.outcomes)
        return report

    return run
