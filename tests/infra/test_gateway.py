"""The local API Gateway: real HTTP over loopback to a gateway serving a test handler."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.local.gateway import API_GATEWAY_MAX_BODY_BYTES, LocalGateway
from infra.local.lambda_context import LambdaContext

REQUEST_CONTEXT_KEYS = {
    "accountId",
    "apiId",
    "domainName",
    "domainPrefix",
    "http",
    "requestId",
    "routeKey",
    "stage",
    "time",
    "timeEpoch",
}


class Recorder:
    """A handler that records what it was called with and answers what it is told to."""

    def __init__(self, result: Any = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.result = result if result is not None else {"statusCode": 200, "body": "ok"}

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        return self.result


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway(recorder: Recorder) -> Iterator[LocalGateway]:
    with LocalGateway(recorder, port=0, function_name="messages", timeout_s=30) as gw:
        yield gw


@pytest.fixture
def client(gateway: LocalGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as c:
        yield c


def test_get_request_becomes_a_payload_v2_event(
    gateway: LocalGateway, client: httpx.Client, recorder: Recorder
) -> None:
    response = client.get(
        "/agents/Eliza%20Two/rooms?limit=5&tag=a&tag=b&empty=",
        headers=[("X-Custom", "one"), ("x-custom", "two"), ("Cookie", "session=abc; theme=dark")],
    )

    assert response.status_code == 200
    assert gateway.port != 0 and gateway.url.endswith(f":{gateway.port}")
    (event,) = recorder.events
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/agents/Eliza Two/rooms"  # HTTP APIs decode the path
    assert event["rawQueryString"] == "limit=5&tag=a&tag=b&empty="
    assert event["queryStringParameters"] == {"limit": "5", "tag": "a,b", "empty": ""}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert event["headers"]["x-custom"] == "one,two"
    assert "cookie" not in event["headers"]
    assert all(name == name.lower() for name in event["headers"])
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert event["headers"]["x-forwarded-port"] == str(gateway.port)
    assert event["headers"]["x-amzn-trace-id"].startswith("Root=1-")
    assert "body" not in event
    assert event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx.keys() >= REQUEST_CONTEXT_KEYS
    assert ctx["http"] == {
        "method": "GET",
        "path": "/agents/Eliza Two/rooms",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": event["headers"]["user-agent"],
    }
    assert ctx["stage"] == "$default" and ctx["routeKey"] == "$default"
    assert abs(ctx["timeEpoch"] / 1000 - time.time()) < 5
    assert ctx["time"].endswith(" +0000") and len(ctx["time"]) == len("12/Mar/2020:19:03:58 +0000")
    assert response.headers["apigw-requestid"] == ctx["requestId"]


def test_each_invocation_gets_a_fresh_lambda_context(client: httpx.Client, recorder: Recorder) -> None:
    client.get("/a")
    client.get("/b")

    first, second = recorder.contexts
    assert isinstance(first, LambdaContext)
    assert first.aws_request_id != second.aws_request_id
    assert first.function_name == "messages"
    assert first.invoked_function_arn.endswith(":function:messages")
    assert first.log_group_name == "/aws/lambda/messages"
    assert 29_000 < second.get_remaining_time_in_millis() <= 30_000


def test_json_body_is_passed_as_text(client: httpx.Client, recorder: Recorder) -> None:
    client.post("/agents/eliza/messages", json={"text": "héllo"})

    (event,) = recorder.events
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == {"text": "héllo"}
    assert event["headers"]["content-type"] == "application/json"


def test_binary_body_is_base64_encoded(client: httpx.Client, recorder: Recorder) -> None:
    payload = bytes(range(256))
    client.put("/blob", content=payload, headers={"content-type": "application/octet-stream"})

    (event,) = recorder.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_chunked_request_body_is_decoded(client: httpx.Client, recorder: Recorder) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": '
        yield b'"streamed"}'

    client.post("/stream", content=chunks(), headers={"content-type": "application/json"})

    (event,) = recorder.events
    assert json.loads(event["body"]) == {"text": "streamed"}


def test_response_status_headers_cookies_and_body_are_written_back(client: httpx.Client, recorder: Recorder) -> None:
    recorder.result = {
        "statusCode": 201,
        "headers": {"content-type": "application/json", "x-answer": 42},
        "multiValueHeaders": {"x-multi": ["a", "b"]},
        "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
        "body": json.dumps({"id": "m1"}),
        "isBase64Encoded": False,
    }

    response = client.post("/agents/eliza/messages", json={"text": "hi"})

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-answer"] == "42"
    assert response.headers.get_list("x-multi") == ["a", "b"]
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    assert response.json() == {"id": "m1"}


def test_base64_response_body_is_decoded(client: httpx.Client, recorder: Recorder) -> None:
    payload = b"\x00\xffbinary"
    recorder.result = {
        "statusCode": 200,
        "headers": {"content-type": "application/octet-stream"},
        "body": base64.b64encode(payload).decode(),
        "isBase64Encoded": True,
    }

    response = client.get("/blob")

    assert response.content == payload


def test_result_without_status_code_is_200_json(client: httpx.Client, recorder: Recorder) -> None:
    recorder.result = {"agents": ["eliza"]}

    response = client.get("/agents")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"agents": ["eliza"]}


def test_body_over_the_limit_is_413_without_invoking_the_handler(recorder: Recorder) -> None:
    assert API_GATEWAY_MAX_BODY_BYTES == 10 * 1024 * 1024
    with LocalGateway(recorder, port=0, max_body_bytes=1024) as gw, httpx.Client(base_url=gw.url) as c:
        too_big = c.post("/upload", content=b"x" * 1025, headers={"content-type": "text/plain"})
        just_fits = c.post("/upload", content=b"x" * 1024, headers={"content-type": "text/plain"})

    assert too_big.status_code == 413
    assert too_big.json() == {"message": "Request Entity Too Large"}
    assert just_fits.status_code == 200
    assert len(recorder.events) == 1 and len(recorder.events[0]["body"]) == 1024


def test_default_limit_is_api_gateways_10_mib(client: httpx.Client, recorder: Recorder) -> None:
    response = client.post(
        "/upload", content=b"x" * (API_GATEWAY_MAX_BODY_BYTES + 1), headers={"content-type": "text/plain"}
    )

    assert response.status_code == 413
    assert recorder.events == []


def test_raising_handler_is_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("secret internals")

    with LocalGateway(broken, port=0) as gw, caplog.at_level(logging.ERROR, logger="infra.local.gateway"):
        response = httpx.get(f"{gw.url}/health")

    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}
    assert "secret" not in response.text
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "secret internals" in str(record.exc_info[1])


def test_malformed_handler_response_is_500() -> None:
    with LocalGateway(lambda e, c: {"statusCode": 200, "body": {"not": "a string"}}, port=0) as gw:
        response = httpx.get(f"{gw.url}/")

    assert response.status_code == 500


def test_concurrent_requests_never_overlap_inside_the_handler() -> None:
    lock = threading.Lock()
    active = 0
    peak = 0

    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.2)
        with lock:
            active -= 1
        return {"statusCode": 200, "body": event["rawPath"]}

    results: list[httpx.Response] = []
    with LocalGateway(slow, port=0) as gw:
        threads = [
            threading.Thread(target=lambda p=p: results.append(httpx.get(f"{gw.url}/{p}", timeout=10)))
            for p in ("one", "two")
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started

    assert sorted(r.text for r in results) == ["/one", "/two"]
    assert peak == 1
    assert elapsed >= 0.4  # the second request waited for the first


def test_stop_releases_the_port(recorder: Recorder) -> None:
    gw = LocalGateway(recorder, port=0).start()
    url = gw.url
    assert httpx.get(f"{url}/").status_code == 200

    gw.stop()
    gw.stop()  # idempotent

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/", timeout=2)


def test_accepted_connections_send_without_nagles_delay(gateway: LocalGateway, client: httpx.Client) -> None:
    """uvicorn writes a response's head and body apart: with Nagle's algorithm on, the body waited
    for the client's delayed ACK (about 40 ms a request on Linux)."""
    assert client.get("/health").status_code == 200  # the keep-alive connection stays open

    server = gateway._server
    assert server is not None
    (connection,) = server.server_state.connections
    sock = connection.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    started = time.perf_counter()
    for _ in range(5):
        assert client.get("/health").status_code == 200
    assert (time.perf_counter() - started) / 5 < 0.035  # each was 40+ ms with the delay
