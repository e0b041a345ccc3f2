from __future__ import annotations

import json
import uuid

import pytest

from core.errors import ModelError
from core.types import ModelType
from tests.factories import FakeContext, http_event

REPLY = "<response><thought>hi</thought><actions>REPLY</actions><text>I am Eliza.</text></response>"


def call(fn, method, path, body=None, query=None):
    response = fn.handler(http_event(method, path, body, query), FakeContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def count_messages(fn, room_id) -> int:
    async def count() -> int:
        async with fn.container.pool.connection() as conn:
            row = await (await conn.execute("SELECT count(*) AS n FROM memories WHERE room_id = %s",
                                            (room_id,))).fetchone()
            return row["n"]
    return fn.container.run(count())


def test_post_message_replies_in_the_documented_shape(messages_fn, scripted):
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    status, body = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "Hello, who are you?"})
    assert status == 200
    assert set(body) == {"messageId", "roomId", "didRespond", "mode", "responses"}
    assert body["didRespond"] is True and body["mode"] == "simple"
    assert body["responses"][0]["text"] == "I am Eliza."
    assert set(body["responses"][0]) == {"id", "text", "actions", "thought"}

    status, history = call(messages_fn, "GET", f"/agents/Eliza/rooms/{body['roomId']}/messages")
    assert status == 200
    assert [m["content"]["text"] for m in history["messages"]][-2:] == ["Hello, who are you?", "I am Eliza."]
    assert history["messages"][-1]["content"]["inReplyTo"] == body["messageId"]


def test_form_encoded_content_type_is_read_as_json(messages_fn, scripted):
    """``curl -d`` sends application/x-www-form-urlencoded; the body is JSON all the same."""
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    event = http_event("POST", "/agents/eliza/messages", {"text": "hi"})
    event["headers"]["content-type"] = "application/x-www-form-urlencoded"
    assert messages_fn.handler(event, FakeContext())["statusCode"] == 200


def test_agent_by_id_and_listing(messages_fn):
    status, body = call(messages_fn, "GET", "/agents")
    assert status == 200 and [a["name"] for a in body["agents"]] == ["Eliza"]
    agent_id = body["agents"][0]["id"]
    status, agent = call(messages_fn, "GET", f"/agents/{agent_id}")
    assert status == 200 and agent["character"]["name"] == "Eliza" and "secrets" not in agent["character"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ("{not json", 400, None),
        ({}, 422, "text"),
        ({"text": ""}, 422, "text"),
        ({"text": "   "}, 422, "text"),
        ({"text": "hi", "roomId": "not-a-uuid"}, 422, "roomId"),
        ({"text": "hi", "channelType": "NOPE"}, 422, "channelType"),
        ({"text": "hi", "colour": "blue"}, 422, "colour"),
        ("[1, 2]", 422, "body"),
    ],
)
def test_bad_bodies_are_refused_and_store_nothing(messages_fn, scripted, body, status, field):
    room = str(uuid.uuid4())
    if isinstance(body, dict) and "roomId" not in body:
        body = {**body, "roomId": room}
    got_status, got = call(messages_fn, "POST", "/agents/eliza/messages", body)
    assert got_status == status
    assert got["error"] in {"invalid_json", "validation_error"}
    if field:
        assert field in [f["field"] for f in got["fields"]] and field in got["message"]
    assert count_messages(messages_fn, room) == 0
    assert scripted.calls == []


def test_oversized_body_is_413(messages_fn, scripted):
    room = str(uuid.uuid4())
    status, body = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "x" * 70_000, "roomId": room})
    assert status == 413 and body["error"] == "payload_too_large"
    assert count_messages(messages_fn, room) == 0


def test_unknown_agent_room_and_route_are_404(messages_fn):
    assert call(messages_fn, "POST", "/agents/nobody/messages", {"text": "hi"})[0] == 404
    assert call(messages_fn, "GET", f"/agents/eliza/rooms/{uuid.uuid4()}/messages")[0] == 404
    assert call(messages_fn, "GET", "/nowhere")[0] == 404
    assert call(messages_fn, "GET", "/agents/eliza/rooms/not-a-uuid/messages")[0] == 422


def test_model_failure_is_502_and_keeps_the_message(messages_fn, scripted):
    scripted.script(ModelType.TEXT_LARGE, ModelError("upstream 500 with sk-secret", retryable=True))
    room = str(uuid.uuid4())
    status, body = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "anyone?", "roomId": room})
    assert status == 502 and body["error"] == "model_error"
    assert "sk-secret" not in json.dumps(body)
    assert count_messages(messages_fn, room) == 1


def test_history_limit_is_validated(messages_fn, scripted):
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, posted = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "one"})
    path = f"/agents/eliza/rooms/{posted['roomId']}/messages"
    status, body = call(messages_fn, "GET", path, query={"limit": "1"})
    assert status == 200 and [m["content"]["text"] for m in body["messages"]] == ["I am Eliza."]
    assert call(messages_fn, "GET", path, query={"limit": "0"})[0] == 422


def test_health(messages_fn):
    status, body = call(messages_fn, "GET", "/health")
    assert status == 200 and body["status"] == "ok" and body["agents"] == 1
    assert isinstance(body["providers"], dict)


def test_search_finds_the_message_once_embedded(messages_fn, embeddings_fn, scripted, sqs_server, purge):
    from tests.factories import sqs_event

    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, posted = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "Where is the library?"})
    client, urls, _ = sqs_server
    received = client.receive_message(QueueUrl=urls["high"], MaxNumberOfMessages=10)["Messages"]
    result = embeddings_fn.handler(sqs_event([m["Body"] for m in received]), FakeContext())
    assert result == {"batchItemFailures": []}

    status, body = call(messages_fn, "POST", "/agents/eliza/memories/search",
                        {"query": "Where is the library?", "roomId": posted["roomId"]})
    assert status == 200
    assert body["memories"][0]["id"] == posted["messageId"]
    assert body["memories"][0]["similarity"] > 0.95
    assert call(messages_fn, "POST", "/agents/eliza/memories/search", {"query": ""})[0] == 422
    assert call(messages_fn, "POST", "/agents/eliza/memories/search", {"query": "x", "count": 1000})[0] == 422


def test_an_exhausted_pool_is_503_with_retry_after(messages_fn, scripted):
    """Every connection busy (as in a burst behind RDS Proxy): a clear, retryable 503."""
    pool = messages_fn.container.pool
    held = messages_fn.container.run(pool.getconn())
    saved_timeout, pool.timeout = pool.timeout, 0.2
    try:
        response = messages_fn.handler(http_event("POST", "/agents/eliza/messages", {"text": "hi"}), FakeContext())
    finally:
        pool.timeout = saved_timeout
        messages_fn.container.run(pool.putconn(held))
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "1"
    assert json.loads(response["body"])["error"] == "database_unavailable"
    assert scripted.calls == []
