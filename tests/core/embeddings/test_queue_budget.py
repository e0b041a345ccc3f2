"""The end-of-turn SendMessageBatch is bounded: a hung SQS endpoint costs a turn at most the budget.

The endpoint is a real TCP server on loopback that accepts connections and never answers,
the worst case for a client (a refused connection fails at once).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest

from core import aws
from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.embeddings.queue import SQS_BATCH_LIMIT, EmbeddingQueue
from core.errors import ConfigurationError
from core.orchestrator import IncomingMessage, Orchestrator
from core.settings import Settings
from core.settings.queues import EmbeddingQueueSettings
from core.types import Content, Memory, ModelType

BUDGET_S = 0.5
REPLY = "<response><thought>hi</thought><actions>REPLY</actions><text>Hello.</text></response>"


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>``: accepts every connection, reads nothing, answers nothing."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    server.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        server.close()


def silent_queue(endpoint: str, budget_s: float = BUDGET_S) -> EmbeddingQueue:
    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint, config=aws.fail_fast_config(budget_s))
    urls = {p: f"{endpoint}/123456789012/embeddings-{p}" for p in ("high", "normal", "low")}
    return EmbeddingQueue(client, urls, budget_s=budget_s)


@pytest.fixture
async def orchestrator_on(database_url, scripted, request):
    """``make(queue)``: an orchestrator with one fresh agent sending its embeddings to ``queue``."""
    pool = create_pool(Settings(database_url=database_url))
    await pool.open()

    async def make(queue: EmbeddingQueue) -> Orchestrator:
        orch = Orchestrator(PostgresAdapter(pool), embedding_queue=queue, plugins=[bootstrap, scripted.plugin()])
        await orch.add_agents([load_character_dict({"name": f"Hung-{request.node.name[:30]}", "bio": ["Test."]})])
        return orch

    try:
        yield make
    finally:
        await pool.close()


async def test_a_turn_against_a_silent_sqs_answers_within_the_budget_and_leaves_its_memories_pending(
    orchestrator_on, scripted, silent_endpoint, request
) -> None:
    orchestrator = await orchestrator_on(silent_queue(silent_endpoint))
    name = f"Hung-{request.node.name[:30]}"
    scripted.script(ModelType.TEXT_LARGE, REPLY, REPLY)
    warm = time.perf_counter()
    await orchestrator.handle_message(name, IncomingMessage(text="warm up"))  # first turn builds caches
    warm_s = time.perf_counter() - warm

    started = time.perf_counter()
    result = await orchestrator.handle_message(name, IncomingMessage(text="Is anyone there?"))
    elapsed_s = time.perf_counter() - started

    assert result.did_respond and [r.text for r in result.responses] == ["Hello."]
    assert elapsed_s < BUDGET_S + 1.0, f"turn took {elapsed_s:.2f} s (first turn {warm_s:.2f} s)"
    pending = {m.id for m in await orchestrator.adapter.get_pending_embeddings(0, 1000, max_age_s=60)}
    assert {result.message_id, result.responses[0].id} <= pending


async def test_a_flush_to_a_silent_sqs_returns_after_the_budget_with_nothing_accepted(silent_endpoint) -> None:
    queue = silent_queue(silent_endpoint)
    batch = queue.batch()
    for priority in ("high", "normal", "low"):
        ids = {"agent_id": uuid.uuid4(), "room_id": uuid.uuid4(), "entity_id": uuid.uuid4()}
        batch.add(Memory(**ids, content=Content(text=f"{priority} text")), priority)

    started = time.perf_counter()
    accepted = await batch.flush()
    elapsed_s = time.perf_counter() - started

    assert accepted == 0 and batch.accepted == []
    assert BUDGET_S * 0.9 <= elapsed_s < BUDGET_S + 0.3


def test_the_budget_defaults_to_one_second_and_is_named_when_invalid() -> None:
    assert EmbeddingQueueSettings.from_env({}).send_budget_s == 1.0
    assert EmbeddingQueueSettings.from_env({"EMBEDDING_QUEUE_BUDGET_S": "0.2"}).send_budget_s == 0.2
    with pytest.raises(ConfigurationError, match="EMBEDDING_QUEUE_BUDGET_S"):
        EmbeddingQueueSettings.from_env({"EMBEDDING_QUEUE_BUDGET_S": "0"})


def a_memory(text: str) -> Memory:
    return Memory(agent_id=uuid.uuid4(), room_id=uuid.uuid4(), entity_id=uuid.uuid4(), content=Content(text=text))


async def test_deferred_sends_leave_the_flush_at_once_and_go_out_in_one_call_when_run(sqs) -> None:
    client, urls = sqs
    deferred: list[Callable[[], object]] = []
    batch = EmbeddingQueue(client, urls, budget_s=1.0, after_response=deferred.append).batch()
    message, reply = a_memory("the user's message"), a_memory("the agent's reply")
    batch.add(message, "high")
    batch.add(reply, "normal")

    assert await batch.flush() == 0
    assert len(deferred) == 1
    assert "Messages" not in client.receive_message(QueueUrl=urls["high"], WaitTimeSeconds=0)

    calls: list[str] = []
    client.meta.events.register("before-call.sqs.*", lambda model, **_: calls.append(model.name))
    deferred[0]()
    assert calls == ["SendMessageBatch"]  # the reply rides along in the high queue's call
    received = client.receive_message(QueueUrl=urls["high"], MaxNumberOfMessages=10)["Messages"]
    assert {json.loads(m["Body"])["memoryId"] for m in received} == {str(message.id), str(reply.id)}


async def test_deferred_sends_keep_to_the_budget_and_leave_the_rest_for_the_sweep(silent_endpoint, caplog) -> None:
    deferred: list[Callable[[], object]] = []
    queue = silent_queue(silent_endpoint, budget_s=0.2)
    queue.after_response = deferred.append
    batch = queue.batch()
    for i in range(SQS_BATCH_LIMIT + 1):  # two SendMessageBatch calls
        batch.add(a_memory(f"fragment {i}"), "low")
    await batch.flush()

    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, "core.embeddings.queue"):
        deferred[0]()
    elapsed_s = time.perf_counter() - started

    assert elapsed_s < 0.2 + 0.5  # the first call timed out; the second was not tried
    assert "1 request(s) left pending for the sweep" in caplog.text
