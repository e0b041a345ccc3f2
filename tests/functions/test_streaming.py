"""Streamed replies: server-sent events over real HTTP through the local gateway, and the deployed
WebSocket path's frames posted to moto's API Gateway Management API.

The messages function runs in this process with the scripted model streaming its answer a few
characters at a time (``SCRIPTED_STREAM_CHARS``), as a hosted provider does.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import psycopg
import pytest

from core.types import ModelType
from infra.local.dev_tokens import DevTokens
from infra.local.gateway import MANAGEMENT_ENDPOINT_ENV, LocalGateway
from tests.factories import FakeContext, user

TEXT = "Streaming, one small piece at a time, then the stored result."
REPLY = f"<response><thought>t</thought><actions>REPLY</actions><text>{TEXT}</text></response>"


@pytest.fixture
def streaming_model(scripted):
    scripted.stream_chars, scripted.stream_delay_ms = 6, 0
    yield scripted
    scripted.stream_chars, scripted.stream_delay_ms = 0, 0


@pytest.fixture(scope="module")
def gateway(messages_fn, tmp_path_factory):
    tokens = DevTokens(tmp_path_factory.mktemp("stream-keys"))
    server = LocalGateway(messages_fn.handler, port=0, authorizer=tokens.authorize).start()
    try:
        yield server, {"Authorization": f"Bearer {tokens.mint('streamer')}"}
    finally:
        server.stop()


def events_of(lines) -> list[tuple[str, dict]]:
    """``(event, data)`` pairs of a server-sent event stream."""
    events, kind, data = [], None, []
    for line in lines:
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
        elif line == "" and data:
            events.append((kind, json.loads("\n".join(data))))
            kind, data = None, []
    return events


def stored_replies(database_url, message_id) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT content->>'text' FROM memories WHERE content->>'inReplyTo' = %s ORDER BY created_at",
            (message_id,),
        ).fetchall()
    return [r[0] for r in rows]


def test_accept_event_stream_streams_chunks_then_the_stored_result(gateway, streaming_model, database_url):
    server, auth = gateway
    streaming_model.script(ModelType.TEXT_LARGE, REPLY)
    headers = {**auth, "Accept": "text/event-stream"}
    arrivals = []
    with httpx.stream("POST", f"{server.url}/agents/eliza/messages", json={"text": "hi"}, headers=headers) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = []
        for line in r.iter_lines():
            lines.append(line)
            if line.startswith("event: "):
                arrivals.append(time.monotonic())
    events = events_of(lines)
    kinds = [k for k, _ in events]
    assert kinds[-1] == "result" and set(kinds[:-1]) == {"chunk"} and len(kinds) > 3
    streamed = "".join(d["text"] for k, d in events if k == "chunk")
    result = events[-1][1]
    assert result["status"] == 200 and set(result["body"]) >= {"messageId", "roomId", "responses"}
    reply = result["body"]["responses"][0]
    assert streamed == reply["text"] == TEXT and reply["actions"] == ["REPLY"]
    assert stored_replies(database_url, result["body"]["messageId"]) == [TEXT]  # what was streamed is stored


def test_json_stays_the_default(gateway, scripted):
    server, auth = gateway
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    r = httpx.post(f"{server.url}/agents/eliza/messages", json={"text": "hi"}, headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["responses"][0]["text"] == TEXT


def test_an_error_before_the_turn_is_one_error_event(gateway):
    server, auth = gateway
    headers = {**auth, "Accept": "text/event-stream"}
    r = httpx.post(f"{server.url}/agents/nobody-{uuid.uuid4().hex[:6]}/messages", json={"text": "hi"}, headers=headers)
    events = events_of(r.text.split("\n"))
    assert r.status_code == 200 and [k for k, _ in events] == ["error"] and events[0][1]["status"] == 404


def test_without_a_token_the_gateway_answers_401_in_json_and_streams_nothing(gateway):
    server, _ = gateway
    r = httpx.post(f"{server.url}/agents/eliza/messages", json={"text": "hi"}, headers={"Accept": "text/event-stream"})
    assert (r.status_code, r.json()) == (401, {"message": "Unauthorized"})


def test_the_management_endpoint_refuses_unknown_connections_with_410(gateway):
    server, _ = gateway
    r = httpx.post(f"{server.url}/@connections/nope", content=b"{}")
    assert r.status_code == 410 and r.headers["x-amzn-errortype"] == "GoneException"


def test_a_client_that_disconnects_mid_stream_does_not_lose_the_stored_reply(gateway, streaming_model, database_url):
    server, auth = gateway
    long_text = " ".join(f"word{i}" for i in range(60))
    streaming_model.stream_delay_ms = 20  # about 60 chunks over 1.2 s
    streaming_model.script(
        ModelType.TEXT_LARGE,
        f"<response><thought>t</thought><actions>REPLY</actions><text>{long_text}</text></response>",
    )
    headers = {**auth, "Accept": "text/event-stream"}
    text = f"disconnect-{uuid.uuid4().hex[:8]}"
    with httpx.stream("POST", f"{server.url}/agents/eliza/messages", json={"text": text}, headers=headers) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                first = json.loads(line[len("data: ") :])
                break
    assert first["type"] == "chunk"  # the client read one chunk and went away

    def reply_stored() -> list[str]:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT id::text FROM memories WHERE content->>'text' = %s", (text,)).fetchone()
        return [] if row is None else stored_replies(database_url, row[0])

    deadline = time.monotonic() + 10
    while not reply_stored() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reply_stored() == [long_text]


# -- deployed: a WebSocket API's sendMessage frame, chunks posted to the Management API (moto) --------


def websocket_message(body: dict, connection_id: str, caller: dict) -> dict:
    """A WebSocket API MESSAGE event (AWS's documented shape) after a Lambda authorizer admitted ``caller``."""
    return {
        "requestContext": {
            "routeKey": "sendMessage",
            "eventType": "MESSAGE",
            "extendedRequestId": "abc=",
            "requestTime": "01/Jan/2026:00:00:00 +0000",
            "messageDirection": "IN",
            "stage": "live",
            "connectedAt": 1767225600000,
            "requestTimeEpoch": 1767225600100,
            "requestId": "abc=",
            "domainName": "example.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "example",
            "authorizer": {
                "principalId": caller["jwt"]["claims"]["sub"],
                "claims": json.dumps(caller["jwt"]["claims"]),
            },
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def test_a_websocket_message_streams_its_frames_through_the_management_api(
    messages_fn, streaming_model, sqs_server, monkeypatch
):
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    _, _, moto_endpoint = sqs_server  # moto's server serves every service it mocks
    monkeypatch.setenv(MANAGEMENT_ENDPOINT_ENV, moto_endpoint)
    streaming_model.script(ModelType.TEXT_LARGE, REPLY)
    connection_id = f"conn-{uuid.uuid4().hex[:8]}"
    event = websocket_message({"action": "sendMessage", "agent": "eliza", "text": "hi"}, connection_id, user("ws"))
    response = messages_fn.handler(event, FakeContext())
    assert response["statusCode"] == 200, response
    data = apigatewaymanagementapi_backends["123456789012"]["us-east-1"].connections[connection_id].data.decode()
    frames, decoder, at = [], json.JSONDecoder(), 0
    while at < len(data):  # moto keeps the posts of a connection concatenated
        frame, at = decoder.raw_decode(data, at)
        frames.append(frame)
    assert frames[-1]["type"] == "result" and frames[-1]["body"] == json.loads(response["body"])
    assert "".join(f["text"] for f in frames[:-1]) == TEXT


def test_websocket_connect_and_disconnect_are_accepted_and_a_bad_frame_is_a_400(messages_fn):
    for kind in ("CONNECT", "DISCONNECT"):
        assert messages_fn.handler({"requestContext": {"eventType": kind}}, FakeContext())["statusCode"] == 200
    event = websocket_message({"action": "sendMessage", "text": "no agent"}, "c1", user("ws"))
    response = messages_fn.handler(event, FakeContext())
    assert response["statusCode"] == 400 and json.loads(response["body"])["error"] == "invalid_frame"


def test_a_gone_websocket_client_does_not_stop_the_turn(messages_fn, streaming_model, monkeypatch):
    """Post answers 410 (the client left): the turn still stores its reply."""
    calls = []

    class Gone(Exception):
        pass

    class Client:
        exceptions = type("E", (), {"GoneException": Gone})

        def post_to_connection(self, **kwargs):
            calls.append(kwargs)
            raise Gone

    from functions.api import streaming

    monkeypatch.setattr(streaming, "_client", lambda url: Client())
    streaming_model.script(ModelType.TEXT_LARGE, REPLY)
    event = websocket_message({"action": "sendMessage", "agent": "eliza", "text": "bye"}, "gone", user("ws"))
    response = messages_fn.handler(event, FakeContext())
    assert response["statusCode"] == 200 and json.loads(response["body"])["responses"][0]["text"] == TEXT
    assert len(calls) == 1  # one refused post, then no more


def test_a_websocket_connection_signed_with_iam_speaks_as_that_principal(messages_fn, scripted):
    from functions.api.streaming import websocket_to_http

    event = websocket_message({"action": "sendMessage", "agent": "eliza", "text": "hi"}, "c2", user("ws"))
    del event["requestContext"]["authorizer"]
    event["requestContext"]["identity"] = {"userArn": "arn:aws:iam::123456789012:role/bridge", "sourceIp": "10.0.0.1"}
    converted = websocket_to_http(event)
    assert converted["requestContext"]["authorizer"] == {"iam": {"userArn": "arn:aws:iam::123456789012:role/bridge"}}
    assert converted["rawPath"] == "/agents/eliza/messages" and json.loads(converted["body"]) == {"text": "hi"}
