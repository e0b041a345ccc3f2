"""Agents stored with ``agent agents put`` while the messages function is warm are served without a restart.

The agents are stored by the CLI command's own code (``character_records`` and ``store_agents``)
on a pool of their own, as the command does from its process.

The staleness bound is measured on the real clock with short intervals (``AGENT_REFRESH_S``
1 s, ``AGENT_REFRESH_ON_MISS_S`` 0.25 s); queries are counted as connections taken from the
function's pool, which every statement needs.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import asynccontextmanager

import pytest

from core.agent_refresh import RefreshSettings
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.settings import Settings
from core.types import ModelType
from infra.cli.agents import character_records, store_agents
from tests.factories import FakeContext, http_event

REPLY = "<response><thought>hi</thought><actions>REPLY</actions><text>Hello from the table.</text></response>"
INTERVAL_S, MISS_S = 1.0, 0.25


@pytest.fixture
def refresher(messages_fn, monkeypatch):
    refresher = messages_fn.orchestrator.refresher
    monkeypatch.setattr(refresher, "settings", RefreshSettings(interval_s=INTERVAL_S, miss_interval_s=MISS_S))
    return refresher


@pytest.fixture
def checkouts(messages_fn, monkeypatch):
    taken: list[float] = []
    pool = messages_fn.container.pool
    connection = pool.connection

    @asynccontextmanager
    async def counted(*args, **kwargs):
        taken.append(time.monotonic())
        async with connection(*args, **kwargs) as conn:
            yield conn

    monkeypatch.setattr(pool, "connection", counted)
    return taken


def call(fn, method, path, body=None):
    response = fn.handler(http_event(method, path, body), FakeContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


@pytest.fixture
def put(tmp_path, database_url):
    """``agent agents put FILE``'s code (validation, name check, upsert) on its own pool of the same database."""

    def put_(character: dict) -> None:
        path = tmp_path / f"{uuid.uuid4().hex}.character.json"
        path.write_text(json.dumps(character))
        asyncio.run(_store(database_url, character_records(path), path))

    return put_


async def _store(database_url, records, path) -> None:
    pool = create_pool(Settings(database_url=database_url))
    await pool.open()
    try:
        await store_agents(PostgresAdapter(pool), records, path)
    finally:
        await pool.close()


def until(check, limit_s: float) -> float:
    """Seconds until ``check()`` is true, polling every 20 ms; fails after ``limit_s``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit_s, f"not within {limit_s} s"
        time.sleep(0.02)
    return time.monotonic() - started


def test_an_agent_put_while_the_container_is_warm_answers_within_the_miss_bound(messages_fn, refresher, scripted, put):
    name = f"Warm-{uuid.uuid4().hex[:8]}"
    assert call(messages_fn, "POST", f"/agents/{name}/messages", {"text": "hi"})[0] == 404
    put({"name": name, "bio": ["stored while the stack runs"]})
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    replies: list[dict] = []

    def answered() -> bool:
        status, body = call(messages_fn, "POST", f"/agents/{name}/messages", {"text": "who are you?"})
        if status == 200:
            replies.append(body)
        return status == 200

    waited = until(answered, limit_s=MISS_S + 2)
    assert waited <= MISS_S + 0.5  # the bound, plus the requests' own time on a busy machine
    assert replies[0]["responses"][0]["text"] == "Hello from the table."
    status, listing = call(messages_fn, "GET", "/agents")
    assert status == 200 and name in [a["name"] for a in listing["agents"]]


def test_an_unknown_agent_name_does_not_query_the_database_per_request(messages_fn, refresher, checkouts):
    started, requests = time.monotonic(), 0
    while time.monotonic() - started < 1.2:  # a second of requests naming agents nobody stored
        assert call(messages_fn, "POST", f"/agents/nobody-{uuid.uuid4().hex[:6]}/messages", {"text": "hi"})[0] == 404
        requests += 1
        time.sleep(0.005)
    elapsed = time.monotonic() - started
    assert requests >= 50
    assert 1 <= len(checkouts) <= 1 + elapsed / MISS_S, f"{len(checkouts)} queries, {requests} requests"


def test_a_changed_bio_is_served_within_the_refresh_bound(messages_fn, refresher, put):
    name = f"Bio-{uuid.uuid4().hex[:8]}"
    put({"name": name, "bio": ["the first biography"]})
    until(lambda: call(messages_fn, "GET", f"/agents/{name}")[0] == 200, limit_s=MISS_S + 2)
    put({"name": name, "bio": ["the second biography"]})
    waited = until(
        lambda: call(messages_fn, "GET", f"/agents/{name}")[1]["bio"] == ["the second biography"],
        limit_s=INTERVAL_S + 2,
    )
    assert waited <= INTERVAL_S + 0.5


def test_a_disabled_agent_stops_being_served_within_the_refresh_bound(messages_fn, refresher, put):
    name = f"Gone-{uuid.uuid4().hex[:8]}"
    put({"name": name, "bio": ["soon disabled"]})
    until(lambda: call(messages_fn, "GET", f"/agents/{name}")[0] == 200, limit_s=MISS_S + 2)
    adapter = messages_fn.container.adapter
    agent_id = messages_fn.orchestrator.get_agent(name).agent_id
    assert messages_fn.container.run(adapter.update_agent(agent_id, {"enabled": False}))
    waited = until(lambda: call(messages_fn, "GET", f"/agents/{name}")[0] == 404, limit_s=INTERVAL_S + 2)
    assert waited <= INTERVAL_S + 0.5
