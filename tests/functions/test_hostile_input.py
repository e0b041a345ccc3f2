"""Hostile input answers a 4xx JSON error naming what is wrong, never a 500, and writes nothing.

The reproducers of the identity issue's "seven kinds of bad input", as API Gateway delivers them
(a body that is not text arrives base64-encoded), against the real handler and Postgres.
"""

from __future__ import annotations

import base64
import json
import uuid

import psycopg
import pytest

from tests.factories import FakeContext, http_event


def call(fn, event):
    response = fn.handler(event, FakeContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def binary_event(method: str, path: str, raw: bytes):
    """What API Gateway sends for ``curl --data-binary @-``: the bytes, base64-encoded."""
    event = http_event(method, path)
    event["headers"] = {**event["headers"], "content-type": "application/x-www-form-urlencoded"}
    event.update(body=base64.b64encode(raw).decode(), isBase64Encoded=True)
    return event


def counts(database_url: str) -> tuple[int, ...]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM entities), (SELECT count(*) FROM rooms),"
            " (SELECT count(*) FROM participants), (SELECT count(*) FROM memories), (SELECT count(*) FROM tasks)"
        ).fetchone()


@pytest.fixture
def unchanged(database_url):
    """Asserts, after the test, that no row was written."""
    before = counts(database_url)
    yield
    assert counts(database_url) == before


@pytest.mark.parametrize(
    "path",
    [
        "/agents/eliza/messages",
        "/agents/nobody-at-all/messages",
        "/agents/eliza/memories/search",
        "/agents/eliza/tasks",
        "/agents/eliza/documents",
    ],
)
def test_a_body_that_is_not_utf8_is_a_400_on_any_post_route(messages_fn, unchanged, path):
    status, body = call(messages_fn, binary_event("POST", path, b"\xff"))
    assert status == 400 and body["error"] == "invalid_json"


def test_deeply_nested_json_is_a_4xx_not_a_500(messages_fn, unchanged):
    status, body = call(messages_fn, binary_event("POST", "/agents/eliza/memories/search", b"[" * 1000 + b"]" * 1000))
    assert 400 <= status < 500 and body["error"] in {"invalid_json", "validation_error"}


@pytest.mark.parametrize(("field", "value"), [("text", "a\u0000b"), ("userName", "b\u0000")])
def test_a_nul_in_a_message_is_a_422_naming_the_field_and_writes_nothing(messages_fn, unchanged, field, value):
    body = {"text": "hi", "roomId": str(uuid.uuid4()), field: value}
    status, answer = call(messages_fn, http_event("POST", "/agents/eliza/messages", body))
    assert status == 422 and [f["field"] for f in answer["fields"]] == [field]


@pytest.mark.parametrize(
    "raw",
    [
        '{"name":"t","metadata":{"x":"\\u0000"}}',
        '{"name":"t","metadata":{"x":"\\udc00"}}',
        '{"name":"t","metadata":{"x":Infinity}}',
    ],
)
def test_task_metadata_that_postgres_cannot_store_is_a_4xx(messages_fn, unchanged, raw):
    status, body = call(messages_fn, http_event("POST", "/agents/eliza/tasks", raw))
    assert 400 <= status < 500, body
    assert body["error"] in {"invalid_json", "validation_error"}


@pytest.mark.parametrize("raw", ['{"text":"d","metadata":{"x":"\\ud800"}}', '{"text":"d","metadata":{"x":"\\u0000"}}'])
def test_document_metadata_that_postgres_cannot_store_is_a_4xx(messages_fn, unchanged, raw):
    status, body = call(messages_fn, http_event("POST", "/agents/eliza/documents", raw))
    assert 400 <= status < 500, body


def test_a_nul_in_a_query_parameter_is_a_422(messages_fn, unchanged):
    status, body = call(messages_fn, http_event("GET", "/agents/eliza/facts", query={"query": "\u0000"}))
    assert status == 422 and body["fields"][0]["field"] == "query"


@pytest.mark.parametrize("shared", ["yes", 1, "true"])
def test_a_boolean_must_be_a_json_boolean(messages_fn, unchanged, shared):
    body = {"text": "d", "name": f"strict-{uuid.uuid4().hex[:6]}", "shared": shared}
    status, answer = call(messages_fn, http_event("POST", "/agents/eliza/documents", body))
    assert status == 422 and [f["field"] for f in answer["fields"]] == ["shared"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/agents/eliza/memories/search", '{"query": "x", "count": true}', "count"),
        ("/agents/eliza/memories/search", '{"query": "x", "threshold": false}', "threshold"),
        ("/agents/eliza/tasks", '{"name": "t", "nextRunAt": false}', "nextRunAt"),
        ("/agents/eliza/tasks", '{"name": "t", "metadata": {"x": 1e400}}', "metadata.x"),
        ("/agents/eliza/documents", '{"text": "d", "metadata": {"x": -1e400}}', "metadata.x"),
    ],
)
def test_booleans_are_not_numbers_and_overflowing_numbers_are_refused(messages_fn, path, body, field):
    """JSON true is not 1, and 1e400 (read by Python as infinity) is not silently stored as null."""
    response = messages_fn.handler(http_event("POST", path, body), FakeContext())
    assert response["statusCode"] == 422, response["body"]
    assert json.loads(response["body"])["fields"][0]["field"] == field
