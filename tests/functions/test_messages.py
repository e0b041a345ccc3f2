from __future__ import annotations

import base64
import json
import platform
import socket
import uuid

import pytest

import core.db.health
from core.db.migrations import core_migrations
from core.errors import ModelError
from core.types import ModelType
from functions.api import health
from tests.factories import FakeContext, http_event, user

REPLY = "<response><thought>hi</thought><actions>REPLY</actions><text>I am Eliza.</text></response>"


def call(fn, method, path, body=None, query=None):
    response = fn.handler(http_event(method, path, body, query), FakeContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def count_messages(fn, room_id) -> int:
    async def count() -> int:
        async with fn.container.pool.connection() as conn:
            row = await (
                await conn.execute("SELECT count(*) AS n FROM memories WHERE room_id = %s", (room_id,))
            ).fetchone()
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


def test_a_curl_d_body_that_api_gateway_base64_encoded_gets_a_reply(messages_fn, scripted):
    """API Gateway HTTP APIs base64-encode a form-typed body (``isBase64Encoded``)."""
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    event = http_event("POST", "/agents/eliza/messages")
    event["headers"]["content-type"] = "application/x-www-form-urlencoded"
    event.update(body=base64.b64encode(b'{"text": "Hello, who are you?"}').decode(), isBase64Encoded=True)
    response = messages_fn.handler(event, FakeContext())
    assert response["statusCode"] == 200 and json.loads(response["body"])["responses"][0]["text"] == "I am Eliza."


def test_agent_by_id_and_listing(messages_fn):
    """The configured character (Eliza), and any enabled agent stored in the table (other tests')."""
    status, body = call(messages_fn, "GET", "/agents")
    names = [a["name"] for a in body["agents"]]
    assert status == 200 and "Eliza" in names and names == sorted(names, key=str.lower)
    assert names == [b.character.name for b in messages_fn.orchestrator.get_agents()]
    agent_id = next(a["id"] for a in body["agents"] if a["name"] == "Eliza")
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


def test_health_without_a_token_says_only_up(messages_fn):
    response = messages_fn.handler(http_event("GET", "/health", caller=None), FakeContext())
    assert (response["statusCode"], json.loads(response["body"])) == (200, {"status": "up"})


def test_health_details_are_for_admins(messages_fn):
    response = messages_fn.handler(http_event("GET", "/health/details", caller=user()), FakeContext())
    assert response["statusCode"] == 403
    assert messages_fn.handler(http_event("GET", "/health/details", caller=None), FakeContext())["statusCode"] == 401


def test_health_details_check_the_database_and_report_versions(messages_fn):
    from importlib.metadata import version

    status, body = call(messages_fn, "GET", "/health/details")
    assert status == 200 and body["status"] == "ok" and body["agents"] == len(messages_fn.orchestrator.get_agents())
    assert isinstance(body["providers"], dict)
    assert body["database"]["ok"] is True and body["database"]["schemaCurrent"] is True
    assert body["database"]["latencyMs"] >= 0
    versions = body["versions"]
    assert versions["package"] == version("serverless-agent-runtime")
    assert versions["python"] == platform.python_version()

    async def server() -> dict:
        async with messages_fn.container.pool.connection() as conn:
            return await (
                await conn.execute(
                    "SELECT current_setting('server_version') AS postgres,"
                    " (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector,"
                    " (SELECT max(name) FROM schema_migrations WHERE namespace = 'core') AS schema"
                )
            ).fetchone()

    expected = messages_fn.container.run(server())
    assert (versions["postgres"], versions["pgvector"], versions["schema"]) == (
        expected["postgres"],
        expected["pgvector"],
        expected["schema"],
    )
    assert versions["schema"] == core_migrations()[-1].name  # the test database is fully migrated


@pytest.fixture
def unreachable_database(messages_fn, monkeypatch):
    """The container's pool swapped for one aimed at a closed port (the database is down)."""
    from psycopg_pool import AsyncConnectionPool

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    container = messages_fn.container
    dead = AsyncConnectionPool(
        f"host=127.0.0.1 port={port} dbname=x user=x connect_timeout=1", min_size=0, max_size=1, open=False
    )
    container.run(dead.open())
    monkeypatch.setattr(container, "pool", dead)
    monkeypatch.setattr(health, "HEALTH_DB_TIMEOUT_S", 0.5)
    yield
    container.run(dead.close())


def test_health_is_503_when_the_database_is_down(messages_fn, unreachable_database):
    assert call(messages_fn, "GET", "/health") == (503, {"status": "down"})
    status, body = call(messages_fn, "GET", "/health/details")
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["database"] == {"ok": False, "error": "PoolTimeout"}
    assert set(body["versions"]) == {"package", "python"}  # what the code knows without a database
    assert body["agents"] == len(messages_fn.orchestrator.get_agents()) >= 1  # the agents known are still served


def test_health_is_503_when_the_pool_is_closed(messages_fn, monkeypatch):
    from psycopg_pool import AsyncConnectionPool

    closed = AsyncConnectionPool("dbname=x", min_size=0, max_size=1, open=False)  # never opened: refuses use
    monkeypatch.setattr(messages_fn.container, "pool", closed)
    status, body = call(messages_fn, "GET", "/health/details")
    assert status == 503 and body["database"] == {"ok": False, "error": "PoolClosed"}


def test_health_is_degraded_when_the_schema_is_behind_the_code(messages_fn, monkeypatch):
    monkeypatch.setattr(core.db.health, "expected_schema", lambda: "9999_from_the_future.sql")
    status, body = call(messages_fn, "GET", "/health/details")
    assert status == 200 and body["status"] == "degraded" and body["database"]["schemaCurrent"] is False


def test_openapi_is_not_served_unless_enabled(messages_fn, monkeypatch):
    monkeypatch.delenv("SERVE_OPENAPI", raising=False)
    status, body = call(messages_fn, "GET", "/openapi.json")
    assert status == 404 and body["error"] == "not_found"
    monkeypatch.setenv("SERVE_OPENAPI", "false")
    assert call(messages_fn, "GET", "/openapi.json")[0] == 404


def test_openapi_lists_every_route_with_its_request_body(messages_fn, monkeypatch):
    monkeypatch.setenv("SERVE_OPENAPI", "true")
    response = messages_fn.handler(http_event("GET", "/openapi.json"), FakeContext())
    assert response["statusCode"] == 200 and response["headers"]["Content-Type"] == "application/json"
    document = json.loads(response["body"])
    assert document["openapi"].startswith("3.") and document["info"]["title"] == "Serverless Agent Runtime API"
    from importlib.metadata import version

    assert document["info"]["version"] == version("serverless-agent-runtime")
    routes = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    app = messages_fn.app
    registered = {(r.method, r.openapi_path) for r in app._static_routes + app._dynamic_routes if r.include_in_schema}
    assert routes == registered  # every route the function serves, routers included
    assert {
        ("GET", "/health"),
        ("GET", "/agents"),
        ("GET", "/agents/{agent}"),
        ("POST", "/agents/{agent}/messages"),
        ("GET", "/agents/{agent}/rooms/{room_id}/messages"),
        ("POST", "/agents/{agent}/memories/search"),
        ("GET", "/agents/{agent}/tasks"),
        ("POST", "/agents/{agent}/tasks"),
    } <= routes
    assert ("GET", "/openapi.json") not in routes

    schemas = document["components"]["schemas"]
    for method, path in sorted(r for r in routes if r[0] in {"POST", "PUT", "PATCH"}):
        body = document["paths"][path][method.lower()]["requestBody"]
        assert body["required"] is True, path
        model = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert schemas[model]["properties"], path
    for path, model, required in (
        ("/agents/{agent}/messages", "MessageBody", ["text"]),
        ("/agents/{agent}/memories/search", "SearchBody", ["query"]),
        ("/agents/{agent}/tasks", "TaskBody", ["name"]),
    ):
        ref = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[-1] == model
        assert schemas[model]["required"] == required
    message = schemas["MessageBody"]["properties"]
    assert {"text", "entityId", "roomId", "worldId", "source", "userName", "channelType"} <= set(message)
    # Errors are documented in the shape this API answers with, not Powertools' default one.
    assert "HTTPValidationError" not in json.dumps(document)
    post = document["paths"]["/agents/{agent}/messages"]["post"]["responses"]
    assert post["422"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ApiError"
    assert schemas["ApiError"]["required"] == ["error", "message"]
    limit = document["paths"]["/agents/{agent}/rooms/{room_id}/messages"]["get"]["parameters"]
    assert {p["name"]: p["in"] for p in limit} == {"agent": "path", "room_id": "path", "limit": "query"}


def test_search_finds_the_message_once_embedded(messages_fn, embeddings_fn, scripted, sqs_server, purge):
    from tests.factories import sqs_event

    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, posted = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "Where is the library?"})
    client, urls, _ = sqs_server
    received = client.receive_message(QueueUrl=urls["high"], MaxNumberOfMessages=10)["Messages"]
    result = embeddings_fn.handler(sqs_event([m["Body"] for m in received]), FakeContext())
    assert result == {"batchItemFailures": []}

    status, body = call(
        messages_fn,
        "POST",
        "/agents/eliza/memories/search",
        {"query": "Where is the library?", "roomId": posted["roomId"]},
    )
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
    # No reply was generated. The knowledge plugin's query embedding starts as the message
    # arrives, alongside storing it (core.knowledge.provider), so that one call may be made.
    assert [model_type for model_type, _ in scripted.calls] in ([], [ModelType.TEXT_EMBEDDING])


def test_a_message_carries_its_attachments_into_the_stored_memory(messages_fn, scripted):
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    attachment = {"id": "a1", "url": "https://example.com/cat.png", "title": "cat.png", "contentType": "image"}
    status, body = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "look", "attachments": [attachment]})
    assert status == 200
    _, history = call(messages_fn, "GET", f"/agents/eliza/rooms/{body['roomId']}/messages")
    stored = next(m for m in history["messages"] if m["id"] == body["messageId"])
    assert stored["content"]["attachments"] == [attachment]


@pytest.mark.parametrize(
    ("attachments", "field"),
    [
        ([{"id": "a", "url": "javascript:alert(1)"}], "attachments.0.url"),
        ([{"id": "a", "url": "http://plain.example/x.png"}], "attachments.0.url"),
        ([{"id": "a", "url": "file:///etc/passwd"}], "attachments.0.url"),
        ([{"url": "https://example.com/x.png"}], "attachments.0.id"),
        ([{"id": "a", "url": "https://example.com/x", "contentType": "binary"}], "attachments.0.contentType"),
        ([{"id": str(i), "url": "https://example.com/x"} for i in range(11)], "attachments"),
    ],
)
def test_bad_attachments_are_422_naming_the_field_and_store_nothing(messages_fn, attachments, field):
    status, body = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "x", "attachments": attachments})
    assert status == 422 and field in [f["field"] for f in body["fields"]], body


def test_a_data_url_attachment_is_accepted(messages_fn, scripted):
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    attachment = {"id": "d", "url": "data:image/png;base64,iVBORw0KGgo=", "contentType": "image"}
    assert call(messages_fn, "POST", "/agents/eliza/messages", {"text": "x", "attachments": [attachment]})[0] == 200
