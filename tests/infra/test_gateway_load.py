"""The local gateway under load: bursts of new connections, containers in parallel, the authorizer."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from infra.local.gateway import LocalGateway

BURST = 64


def ok(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": event["rawPath"]}


def _burst(url: str, count: int) -> list[tuple[int | str, float]]:
    """``count`` clients, each on a new connection, released at the same instant: (status, seconds) each."""
    start = threading.Barrier(count)

    def one(i: int) -> tuple[int | str, float]:
        with httpx.Client(timeout=10) as client:  # made before the barrier: its set-up is not timed
            start.wait()
            began = time.monotonic()
            try:
                status: int | str = client.get(f"{url}/burst/{i}").status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            return status, time.monotonic() - began

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_a_burst_of_64_new_connections_loses_nothing_and_waits_no_syn_retry() -> None:
    with LocalGateway(ok, port=0) as gateway:
        results = _burst(gateway.url, BURST)

    assert [status for status, _ in results] == [200] * BURST
    # A SYN the listen backlog dropped is retried by the client's kernel after 1 s: none was.
    assert max(seconds for _, seconds in results) < 1.0


def test_head_is_answered_with_headers_and_no_body() -> None:
    with LocalGateway(ok, port=0) as gateway:
        response = httpx.head(f"{gateway.url}/health")

    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len("/health"))


def test_two_containers_run_two_events_at_once_each_with_its_own_state() -> None:
    with LocalGateway("tests.infra.container_handlers:slow", port=0, concurrency=2) as gateway:
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda i: httpx.get(f"{gateway.url}/{i}", timeout=10).json(), range(4)))
        elapsed_s = time.monotonic() - started

    assert len({a["pid"] for a in answers}) == 2  # two processes: two init phases
    assert sorted(a["count"] for a in answers) == [1, 1, 2, 2]  # each counts its own events
    assert elapsed_s < 4 * 0.3  # two at a time: about 0.6 s, never the 1.2 s of one container


def test_a_container_that_dies_fails_its_event_with_500_and_is_replaced() -> None:
    with LocalGateway("tests.infra.container_handlers:crash_on_crash_path", port=0) as gateway:
        before = httpx.get(f"{gateway.url}/", timeout=10).json()["pid"]
        crashed = httpx.get(f"{gateway.url}/crash", timeout=30)
        after = httpx.get(f"{gateway.url}/", timeout=10).json()["pid"]

    assert crashed.status_code == 500 and crashed.json() == {"message": "Internal Server Error"}
    assert after != before


def test_concurrency_above_one_needs_a_handler_by_name() -> None:
    with pytest.raises(ValueError, match="module:attribute"):
        LocalGateway(ok, concurrency=2)


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "body": "ok"}


def token_authorizer(headers: Any) -> dict[str, Any] | None:
    if headers.get("authorization") != "Bearer good":
        return None
    return {"jwt": {"claims": {"sub": "user-1"}, "scopes": ["messages"]}}


def test_the_authorizer_puts_its_claims_in_the_request_context() -> None:
    recorder = Recorder()
    with LocalGateway(recorder, port=0, authorizer=token_authorizer) as gateway:
        response = httpx.get(f"{gateway.url}/agents", headers={"Authorization": "Bearer good"})

    assert response.status_code == 200
    (event,) = recorder.events
    assert event["requestContext"]["authorizer"] == {"jwt": {"claims": {"sub": "user-1"}, "scopes": ["messages"]}}


def test_a_request_the_authorizer_refuses_is_401_without_invoking() -> None:
    recorder = Recorder()
    seen: list[dict[str, str]] = []

    def refuse(headers: Any) -> None:
        seen.append(dict(headers))
        return None

    with LocalGateway(recorder, port=0, authorizer=refuse) as gateway:
        response = httpx.post(f"{gateway.url}/agents/eliza/messages", json={"text": "hi"}, headers={"X-Key": "K"})

    assert response.status_code == 401 and response.json() == {"message": "Unauthorized"}
    assert recorder.events == []
    assert seen[0]["x-key"] == "K" and all(name == name.lower() for name in seen[0])


def test_public_routes_skip_the_authorizer_for_their_method_only() -> None:
    recorder = Recorder()
    with LocalGateway(recorder, port=0, authorizer=token_authorizer, public_routes=[("GET", "/health")]) as gateway:
        public = httpx.get(f"{gateway.url}/health")
        other_method = httpx.post(f"{gateway.url}/health")

    assert public.status_code == 200 and "authorizer" not in recorder.events[0]["requestContext"]
    assert other_method.status_code == 401


def test_an_authorizer_that_raises_is_500_without_invoking() -> None:
    recorder = Recorder()

    def broken(headers: Any) -> None:
        raise RuntimeError("key store down")

    with LocalGateway(recorder, port=0, authorizer=broken) as gateway:
        response = httpx.get(f"{gateway.url}/agents")

    assert response.status_code == 500 and recorder.events == []
