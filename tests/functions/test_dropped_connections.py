"""A turn's writes survive connections dropped mid-request: with an idempotency key, a client that
retries what failed ends with exactly one message and one reply per request, never a duplicate.

A killer thread ends the messages function's database connections (``pg_terminate_backend``) at
random moments while requests run one after another, as a Postgres failover or RDS Proxy would.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest

from tests.factories import FakeContext, http_event, user

REQUESTS = 400
MAX_ATTEMPTS = 10


@pytest.fixture
def killer(database_url, messages_fn):
    """Ends every other session on the test database every 50-300 ms while the test runs."""
    stop = threading.Event()
    kills: dict[str, Any] = Counter()

    def run() -> None:
        rng = random.Random(7)
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not stop.wait(rng.uniform(0.05, 0.3)):
                ended = conn.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend'"
                ).fetchone()[0]
                kills["sessions"] += ended

    def finish() -> None:
        stop.set()
        thread.join(5)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    kills["stop"] = finish  # type: ignore[assignment]
    yield kills
    finish()


def _post(fn, text: str, key: str) -> int:
    event = http_event("POST", "/agents/eliza/messages", {"text": text}, caller=user("chaos"))
    event["headers"]["idempotency-key"] = key
    return fn.handler(event, FakeContext())["statusCode"]


def test_every_request_ends_with_one_message_and_one_reply_when_the_client_retries(
    messages_fn, scripted, killer, database_url
):
    scripted.fixed_reply = "steady"
    first_try, outcomes, attempts = Counter(), Counter(), Counter()
    run = uuid.uuid4().hex[:8]
    try:
        for i in range(REQUESTS):
            key, text = f"{run}-{i}", f"chaos {run} {i}"
            for attempt in range(1, MAX_ATTEMPTS + 1):
                status = _post(messages_fn, text, key)
                if attempt == 1:
                    first_try[status] += 1
                if status == 200:
                    break
                assert status == 503, f"request {i} answered {status}"  # only "try again" may fail
                time.sleep(0.01)
            outcomes[status] += 1
            attempts[attempt] += 1
    finally:
        scripted.fixed_reply = None
        killer["stop"]()  # before reading the outcome: the killer ends every session it sees
    print(f"\nkills={killer['sessions']} first try={dict(first_try)} attempts={dict(attempts)} final={dict(outcomes)}")
    assert killer["sessions"] > 0 and first_try[503] > 0  # the faults really hit requests
    assert outcomes == {200: REQUESTS}

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT m.content->>'text' AS text, count(*) AS stored,"
            " (SELECT count(*) FROM memories r"
            "   WHERE r.type = 'messages' AND r.content->>'inReplyTo' = m.id::text) AS replies"
            " FROM memories m WHERE m.type = 'messages' AND m.content->>'text' LIKE %s GROUP BY m.id, m.content",
            (f"chaos {run} %",),
        ).fetchall()
    per_text = Counter(text for text, _, _ in rows)
    assert len(per_text) == REQUESTS and set(per_text.values()) == {1}  # one message per request
    assert {replies for _, _, replies in rows} == {1}  # and one reply to each
