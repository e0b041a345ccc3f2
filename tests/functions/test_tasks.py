"""The scheduled function as Lambda runs it (real EventBridge scheduled event, real database, moto's SQS),
and the HTTP API's task routes."""

from __future__ import annotations

import importlib
import json
import logging
import time
import uuid

import pytest

from core.tasks.worker import TaskWorker
from core.types import ChannelType, Content, Entity, Memory, Room
from infra.local.lambda_context import new_context
from tests.factories import EVENTS, FakeContext, http_event


@pytest.fixture(scope="module")
def tasks_fn(function_env):
    module = importlib.import_module("functions.tasks")
    yield module
    module.container.close()  # process shutdown: close the pool on its loop


@pytest.fixture
def schedule_event():
    """The real EventBridge scheduled event sample (awslabs/aws-lambda-rust-runtime)."""
    return json.loads((EVENTS / "rust.example-eventbridge-schedule.json").read_text())


@pytest.fixture
def worker(tasks_fn, messages_fn):
    """A ``PING`` worker registered for Eliza in both functions (the API checks the name), then removed."""
    calls: list = []
    failing: list[Exception] = []

    async def execute(runtime, options, task) -> None:
        calls.append((runtime.agent_id, options, task))
        if failing:
            raise failing[0]

    ping = TaskWorker("PING", execute)
    blueprints = [fn.orchestrator.get_agent("eliza") for fn in (tasks_fn, messages_fn)]
    for blueprint in blueprints:
        blueprint.register_task_worker(ping)
    yield calls, failing
    for blueprint in blueprints:
        blueprint.task_workers.pop("PING", None)
    tasks_fn.container.run(_delete_eliza_tasks(tasks_fn))


async def _delete_eliza_tasks(fn) -> None:
    async with fn.container.pool.connection() as conn:
        await conn.execute("DELETE FROM tasks WHERE agent_id = %s", (fn.orchestrator.get_agent("eliza").agent_id,))


def _eliza(fn):
    return fn.orchestrator.runtime("eliza")


def _context(timeout_s: float = 120):
    return new_context("tasks", timeout_s=timeout_s)


def api(fn, method, path, body=None, query=None):
    response = fn.handler(http_event(method, path, body, query), FakeContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


# -- the scheduled function --------------------------------------------------------------------


def test_a_real_scheduled_event_runs_due_tasks(tasks_fn, worker, schedule_event):
    calls, _ = worker
    runtime = _eliza(tasks_fn)
    once = tasks_fn.container.run(runtime.create_task({"name": "PING", "tags": ["queue"], "metadata": {"n": 1}}))
    result = tasks_fn.handler(schedule_event, _context())
    assert result["tasks"]["claimed"] == result["tasks"]["succeeded"] == 1
    assert result["tasks"]["errors"] == 0 and result["housekeeping"]["errors"] == 0
    [(agent, options, task)] = calls
    assert agent == runtime.agent_id and options == {"n": 1} and task.id == once
    assert tasks_fn.container.run(runtime.get_task(once)) is None
    assert tasks_fn.handler(schedule_event, _context())["tasks"]["claimed"] == 0  # ran exactly once


def test_the_default_scheduler_notice_works_too(tasks_fn, worker):
    calls, _ = worker
    tasks_fn.container.run(_eliza(tasks_fn).create_task({"name": "PING", "tags": ["queue"]}))
    for event in ({}, {"time": "not a time"}):
        tasks_fn.handler(event, _context())
    assert len(calls) == 1


def test_too_short_a_function_timeout_claims_nothing(tasks_fn, worker, caplog):
    calls, _ = worker
    task_id = tasks_fn.container.run(_eliza(tasks_fn).create_task({"name": "PING", "tags": ["queue"]}))
    with caplog.at_level(logging.ERROR):
        result = tasks_fn.handler({}, FakeContext())  # 30 s left; TASK_TIMEOUT_S 60 + reserve 10 needed
    assert result["tasks"]["stopped_for_time"] is True and result["tasks"]["claimed"] == 0 and calls == []
    assert "TASK_TIMEOUT_S" in caplog.text
    assert tasks_fn.container.run(_eliza(tasks_fn).get_task(task_id)).attempts == 0


def test_failures_are_retried_then_visible_as_failed_through_the_api(tasks_fn, messages_fn, worker, schedule_event):
    calls, failing = worker
    failing.append(RuntimeError("remote API down"))
    runtime = _eliza(tasks_fn)
    task_id = tasks_fn.container.run(runtime.create_task({"name": "PING", "tags": ["queue"]}))
    result = tasks_fn.handler(schedule_event, _context())
    assert result["tasks"]["retried"] == 1
    status, body = api(messages_fn, "GET", "/agents/eliza/tasks")
    [listed] = [t for t in body["tasks"] if t["id"] == str(task_id)]
    assert (listed["status"], listed["attempts"]) == ("pending", 1)
    assert listed["lastError"] == "RuntimeError: remote API down"
    assert listed["nextRunAt"] > listed["updatedAt"] and "leaseOwner" not in listed
    # The last allowed attempt (TASK_MAX_ATTEMPTS defaults to 5).
    tasks_fn.container.run(runtime.update_task(task_id, {"attempts": 4, "next_run_at": 0}))
    assert tasks_fn.handler(schedule_event, _context())["tasks"]["failed"] == 1
    status, body = api(messages_fn, "GET", "/agents/eliza/tasks")
    [listed] = [t for t in body["tasks"] if t["id"] == str(task_id)]
    assert (listed["status"], listed["attempts"]) == ("failed", 5)
    tasks_fn.container.run(runtime.update_task(task_id, {"next_run_at": 0}))
    assert tasks_fn.handler(schedule_event, _context())["tasks"]["claimed"] == 0
    assert len(calls) == 2


def test_housekeeping_requeues_a_lost_embedding(tasks_fn, sqs_server, purge, schedule_event):
    client, urls, _ = sqs_server
    runtime = _eliza(tasks_fn)
    room, entity = uuid.uuid4(), uuid.uuid4()
    ten_minutes_ago = time.time_ns() // 1_000_000 - 10 * 60_000  # EMBEDDING_PENDING_AFTER_S is 300
    lost = Memory(
        agent_id=runtime.agent_id,
        room_id=room,
        entity_id=entity,
        content=Content(text="never embedded"),
        created_at=ten_minutes_ago,
    )

    async def store() -> None:
        await runtime.adapter.ensure_connection(
            Entity(id=entity, agent_id=runtime.agent_id),
            Room(id=room, agent_id=runtime.agent_id, type=ChannelType.DM),
            None,
        )
        await runtime.adapter.create_memories([lost], "messages")

    tasks_fn.container.run(store())
    result = tasks_fn.handler(schedule_event, _context())
    assert result["housekeeping"]["requeued_embeddings"] >= 1
    bodies = []
    while messages := client.receive_message(QueueUrl=urls["normal"], MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in messages]
    assert {
        "memoryId": str(lost.id),
        "agentId": str(runtime.agent_id),
        "contentHash": lost.content_hash,
        "priority": "normal",
        "dimension": 384,
    } in bodies
    purge()


# -- the HTTP API ------------------------------------------------------------------------------


def test_create_and_list_tasks(messages_fn, worker):
    room = str(uuid.uuid4())
    status, created = api(
        messages_fn,
        "POST",
        "/agents/eliza/tasks",
        {
            "name": "PING",
            "description": "say hi",
            "roomId": room,
            "tags": ["queue", "repeat", "repeat"],
            "metadata": {"updateInterval": 60_000, "options": [{"name": "ok", "description": "fine"}], "x": 1},
        },
    )
    assert status == 201
    assert created["name"] == "PING" and created["tags"] == ["queue", "repeat"] and created["roomId"] == room
    assert created["status"] == "pending" and created["attempts"] == 0
    assert created["metadata"] == {"updateInterval": 60_000, "options": [{"name": "ok", "description": "fine"}], "x": 1}
    assert created["nextRunAt"] >= created["createdAt"] + 60_000 - 1  # a repeat task waits one interval
    status, plain = api(messages_fn, "POST", "/agents/Eliza/tasks", {"name": "Approve the plan", "tags": ["approval"]})
    assert status == 201 and "nextRunAt" not in plain  # not queued: never run by the scheduler

    status, listed = api(messages_fn, "GET", "/agents/eliza/tasks")
    assert status == 200 and [t["id"] for t in listed["tasks"]] == [created["id"], plain["id"]]
    status, listed = api(messages_fn, "GET", "/agents/eliza/tasks", query={"tags": "queue,repeat"})
    assert [t["id"] for t in listed["tasks"]] == [created["id"]]
    status, listed = api(messages_fn, "GET", "/agents/eliza/tasks", query={"limit": "1"})
    assert len(listed["tasks"]) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "a\u0000b"}, "name"),
        ({"name": "PING", "tags": ["queue", "repeat"]}, "metadata"),  # repeat needs an interval
        ({"name": "PING", "tags": ["queue"], "metadata": {"updateInterval": 0}}, "metadata.updateInterval"),
        ({"name": "PING", "tags": ["no spaces"]}, "tags"),
        ({"name": "PING", "tags": ["t"] * 21}, "tags"),
        ({"name": "PING", "nextRunAt": -1}, "nextRunAt"),
        ({"name": "PING", "roomId": "nope"}, "roomId"),
        ({"name": "PING", "status": "running"}, "status"),  # scheduler state is not settable
        ({"name": "NO_SUCH_WORKER", "tags": ["queue"]}, "name"),  # nothing here could run it
    ],
)
def test_bad_task_bodies_are_refused_naming_the_field(messages_fn, worker, body, field):
    status, got = api(messages_fn, "POST", "/agents/eliza/tasks", body)
    assert status == 422, got
    assert got["error"] == "validation_error" and field in [f["field"] for f in got["fields"]], got
    assert api(messages_fn, "GET", "/agents/eliza/tasks")[1]["tasks"] == []


def test_task_routes_errors(messages_fn, worker):
    assert api(messages_fn, "POST", "/agents/eliza/tasks", "{not json")[0] == 400
    assert api(messages_fn, "GET", "/agents/nobody/tasks")[0] == 404
    assert api(messages_fn, "POST", "/agents/nobody/tasks", {"name": "PING"})[0] == 404
    status, got = api(messages_fn, "GET", "/agents/eliza/tasks", query={"tags": "bad tag"})
    assert status == 422 and got["fields"][0]["field"] == "tags"
    assert api(messages_fn, "GET", "/agents/eliza/tasks", query={"limit": "0"})[0] == 422
