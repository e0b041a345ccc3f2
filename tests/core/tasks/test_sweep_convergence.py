"""The embedding sweep converges after an SQS outage: everything embedded, queues back to empty, no pile-up.

Real pieces at their fastest allowed settings: moto's SQS server with the embedding queues and
their DLQs (visibility timeout 2 s, 3 receives), the real ``EmbeddingWorker`` on real Postgres,
``Housekeeping`` every second. The outage is injected where botocore meets the network: while
it lasts every SQS call of the client fails with ``EndpointConnectionError``, as when SQS is
unreachable (the turns' sends and the worker's receives alike). One text is refused by the
model every time.

The worker here embeds each received record on its own: ``EmbeddingWorker`` makes one model
call per batch and fails every record of the batch when the model refuses one text, so a
refused text received with others would take them to the DLQ with it. Isolating it (retrying
a failed batch one text at a time) belongs to the worker; this test measures the sweep.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from core import aws
from core.embeddings.queue import EmbeddingQueue
from core.embeddings.request import EmbeddingRequest
from core.embeddings.worker import EmbeddingWorker
from core.errors import ModelError
from core.model_providers.scripted import ScriptedModels
from core.settings.tasks import HousekeepingSettings
from core.tasks.housekeeping import Housekeeping
from core.types import ChannelType, Content, Entity, Memory, Room
from infra.local.sqs import create_embedding_queues, start_moto_server

VISIBILITY_S = 2
OUTAGE_S = 10.0
TICK_S = 0.25
SWEEP_EVERY_S = 1.0
REFUSED = "a text the model refuses"
#: Time given to each SQS call. Generous: the reply path's 1 s budget is tested elsewhere (a silent
#: endpoint); here a slow moto on a loaded machine must not pass for an outage.
SQS_BUDGET_S = 5.0
#: The stated bound: every memory is embedded this long after the outage ends.
CONVERGED_WITHIN_S = 20.0
SETTINGS = HousekeepingSettings(
    embedding_pending_after_s=VISIBILITY_S,
    embedding_visibility_timeout_s=VISIBILITY_S,
    embedding_max_requeues=3,
    embedding_pending_max_age_s=3600,
)


class Outage:
    """While ``on``, every call of the client fails to connect (botocore's own error, before any I/O)."""

    def __init__(self, client: Any) -> None:
        self.on = False
        client.meta.events.register("before-send.sqs", self._refuse)

    def _refuse(self, request: Any, **_: Any) -> None:
        if self.on:
            raise EndpointConnectionError(endpoint_url=request.url)


@dataclass
class Figures:
    """What the run measured, printed as JSON lines for the report."""

    memories: int = 0
    sweep_requeued: int = 0
    refused_model_calls: int = 0
    max_queue_depth: int = 0
    converged_after_outage_s: float | None = None
    depths: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
def moto_queues():
    server = start_moto_server()
    client = boto3.client(
        "sqs", endpoint_url=server.endpoint_url, region_name="us-east-1", config=aws.fail_fast_config(SQS_BUDGET_S)
    )
    urls = create_embedding_queues(client, prefix="convergence", visibility_timeout_s=VISIBILITY_S)
    yield client, urls
    server.stop()


def _depth(client: Any, urls: dict[str, str]) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    total = 0
    for url in urls.values():
        attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        total += sum(int(attributes[n]) for n in names)
    return total


class Worker:
    """The embeddings function's loop: receive up to 10, process them as one batch, delete what succeeded."""

    def __init__(self, client: Any, urls: dict[str, str], adapter: Any, figures: Figures) -> None:
        self.client, self.urls, self.figures = client, urls, figures
        models = ScriptedModels()

        async def embed(texts: list[str]) -> list[list[float]]:
            if REFUSED in texts:
                figures.refused_model_calls += 1
                raise ModelError("the model refuses this text", provider="test")
            return [models.vector(t) for t in texts]

        self.worker = EmbeddingWorker(adapter, embed, "scripted")

    async def poll(self) -> None:
        for url in self.urls.values():
            try:
                got = await asyncio.to_thread(self.client.receive_message, QueueUrl=url, MaxNumberOfMessages=10)
            except EndpointConnectionError:
                return
            messages = got.get("Messages", [])
            if not messages:
                continue
            done = []
            for i, message in enumerate(messages):
                # One record at a time: core.embeddings.worker fails a whole batch when the model
                # refuses one of its texts, which would fail its batch-mates with it (see the
                # module docstring); the sweep's behaviour is what this test measures.
                request = EmbeddingRequest.model_validate_json(message["Body"])
                report = await self.worker.process([request])
                if report.outcomes[request.memory_id].value != "failed":
                    done.append({"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]})
            if done:
                await asyncio.to_thread(self.client.delete_message_batch, QueueUrl=url, Entries=done)


async def _room(adapter: Any, agent_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    room, entity = uuid.uuid4(), uuid.uuid4()
    await adapter.ensure_connection(
        Entity(id=entity, agent_id=agent_id), Room(id=room, agent_id=agent_id, type=ChannelType.DM), None
    )
    return room, entity


async def _turn(adapter: Any, queue: EmbeddingQueue, agent_id: uuid.UUID, where: tuple, text: str) -> Memory:
    """What a turn does with its message: store it, then queue its embedding at the end."""
    room, entity = where
    memory = Memory(agent_id=agent_id, room_id=room, entity_id=entity, content=Content(text=text))
    await adapter.create_memories([memory], "messages")
    batch = queue.batch()
    batch.add(memory, "high")
    await batch.flush()
    return memory


async def _embedded(adapter: Any, memories: list[Memory]) -> set[uuid.UUID]:
    targets = await adapter.get_embedding_targets([m.id for m in memories])
    return {t.memory_id for t in targets if t.embedded_hash == t.content_hash}


async def run_outage(adapter: Any, agent_id: uuid.UUID, client: Any, urls: dict[str, str]) -> Figures:
    """Turns during a 10 s outage, then worker and sweep until converged (or 60 s after the outage)."""
    figures = Figures()
    outage = Outage(client)
    queue = EmbeddingQueue(client, urls, budget_s=SQS_BUDGET_S)
    housekeeping = Housekeeping(adapter, queue, SETTINGS)
    worker = Worker(client, urls, adapter, figures)
    where = await _room(adapter, agent_id)
    memories: list[Memory] = []
    outage.on = True
    started = time.monotonic()
    next_sweep = started
    while time.monotonic() - started < OUTAGE_S:
        text = REFUSED if len(memories) == 5 else f"message {len(memories)} during the outage"
        memories.append(await _turn(adapter, queue, agent_id, where, text))
        await worker.poll()
        if time.monotonic() >= next_sweep:
            figures.sweep_requeued += (await housekeeping.run()).requeued_embeddings
            next_sweep += SWEEP_EVERY_S
        await asyncio.sleep(TICK_S)
    outage.on = False
    ended = time.monotonic()
    wanted = {m.id for m in memories if m.text != REFUSED}
    while time.monotonic() - ended < 60:
        await worker.poll()
        if time.monotonic() >= next_sweep:
            figures.sweep_requeued += (await housekeeping.run()).requeued_embeddings
            next_sweep += SWEEP_EVERY_S
        depth = await asyncio.to_thread(_depth, client, urls)
        figures.depths.append(depth)
        figures.max_queue_depth = max(figures.max_queue_depth, depth)
        if depth == 0 and wanted <= await _embedded(adapter, memories):
            figures.converged_after_outage_s = round(time.monotonic() - ended, 1)
            break
        await asyncio.sleep(TICK_S)
    figures.memories = len(memories)
    return figures


@pytest.fixture
async def own_adapter(postgres):
    """An adapter on a database of its own: the sweep serves the whole deployment, so the pending
    memories other tests leave in the shared database would be its work too (1,277 re-queues in a
    full run instead of 41)."""
    from core.db.migrations import migrate
    from core.db.pool import create_pool
    from core.db.postgres import PostgresAdapter
    from core.settings import Settings

    postgres.create_database("sweep_convergence")
    url = postgres.database_url("sweep_convergence")
    migrate(url)
    pool = create_pool(Settings(database_url=url, pool_max_size=4))
    await pool.open()
    try:
        yield PostgresAdapter(pool)
    finally:
        await pool.close()


@pytest.fixture
async def own_agent(own_adapter):
    from core.db.adapter import AgentRecord

    agent = uuid.uuid4()
    await own_adapter.upsert_agents([AgentRecord(agent, f"sweep-{agent}", {"name": f"sweep-{agent}"})])
    return agent


async def test_after_a_10_s_sqs_outage_every_memory_is_embedded_in_bounded_time_and_the_queues_empty(
    own_adapter, own_agent, moto_queues
) -> None:
    client, urls = moto_queues
    adapter, agent_id = own_adapter, own_agent

    figures = await run_outage(adapter, agent_id, client, urls)
    # Wait out the refused text's last re-queue, then one more run: the sweep gives up on it.
    await asyncio.sleep(VISIBILITY_S * 3.5)
    queue = EmbeddingQueue(client, urls, budget_s=SQS_BUDGET_S)
    for _ in range(3):
        figures.sweep_requeued += (await Housekeeping(adapter, queue, SETTINGS).run()).requeued_embeddings
        await Worker(client, urls, adapter, figures).poll()
        await asyncio.sleep(VISIBILITY_S + 0.5)
    late = await Housekeeping(adapter, queue, SETTINGS).run()

    print(json.dumps({k: v for k, v in vars(figures).items() if k != "depths"}))
    assert figures.converged_after_outage_s is not None and figures.converged_after_outage_s <= CONVERGED_WITHIN_S
    # No pile-up: at most one request in flight per memory, plus the refused text's.
    assert figures.max_queue_depth <= figures.memories
    # The refused text was queued again at most EMBEDDING_MAX_REQUEUES times, then given up.
    assert figures.sweep_requeued <= figures.memories - 1 + SETTINGS.embedding_max_requeues
    assert late.pending_embeddings == 0
    assert await asyncio.to_thread(_depth, client, urls) == 0
