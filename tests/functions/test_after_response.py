"""Work deferred until after the response: Lambda's internal extension, the fallbacks, the local host.

Lambda's Runtime API is not available here (no Docker, so no Runtime Interface Emulator): a real
HTTP server on loopback speaks its Extensions API (``/2020-01-01/extension/register`` and
``/event/next``) and plays Lambda's part of the lifecycle: ``next`` answers an ``INVOKE``
when the test starts an invocation, and the invocation counts as finished only when the
extension asks for its next event again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from functions.after_response import AfterResponse, InternalExtension, after_response_of, hosted
from infra.local.containers import InProcessContainer


class FakeLambda:
    """Lambda's side of the Extensions API, on a real loopback HTTP server."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.registrations: list[tuple[str | None, dict[str, Any]]] = []
        self.next_calls = 0
        self._invocations: list[threading.Event] = []
        self._invoke = threading.Semaphore(0)
        self._next_called = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.registrations.append((self.headers.get("Lambda-Extension-Name"), body))
                self.send_response(403 if fake.refuse else 200)
                if not fake.refuse:
                    self.send_header("Lambda-Extension-Identifier", "ext-1")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_GET(self) -> None:  # noqa: N802
                assert self.headers["Lambda-Extension-Identifier"] == "ext-1"
                with fake._next_called:
                    fake.next_calls += 1
                    fake._next_called.notify_all()
                fake._invoke.acquire()  # blocks until the test starts an invocation, as Lambda's next does
                payload = json.dumps({"eventType": "INVOKE", "requestId": "r"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.runtime_api = f"127.0.0.1:{self.server.server_address[1]}"

    def start_invocation(self) -> None:
        """Send the extension its INVOKE event (the one its pending ``next`` call waits for)."""
        self._invoke.release()

    def wait_for_next_calls(self, count: int, timeout_s: float = 5.0) -> bool:
        """Whether the extension has asked for its next event ``count`` times within the timeout."""
        with self._next_called:
            return self._next_called.wait_for(lambda: self.next_calls >= count, timeout=timeout_s)

    def close(self) -> None:
        for _ in range(8):
            self._invoke.release()  # frees the handler threads blocked in next
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_lambda(monkeypatch) -> Iterator[FakeLambda]:
    """A stand-in Runtime API, in ``AWS_LAMBDA_RUNTIME_API``; the extensions registered are closed after."""
    fake = FakeLambda()
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", fake.runtime_api)
    registered: list[InternalExtension] = []
    register = InternalExtension.register

    def register_and_keep(runtime_api: str, name: str) -> InternalExtension:
        registered.append(register(runtime_api, name))
        return registered[-1]

    monkeypatch.setattr(InternalExtension, "register", register_and_keep)
    try:
        yield fake
    finally:
        for extension in registered:
            extension.close()
        fake.close()


def test_in_lambda_the_extension_registers_for_invoke_events_under_its_name(fake_lambda):
    after = AfterResponse.for_this_process("agent-messages")
    assert isinstance(after.extension, InternalExtension)
    assert fake_lambda.registrations == [("agent-messages", {"events": ["INVOKE"]})]
    assert fake_lambda.wait_for_next_calls(1)  # its first next ends its init phase


def test_the_handler_returns_before_its_deferred_work_and_lambda_is_told_only_after_it(fake_lambda):
    after = AfterResponse.for_this_process("agent-messages")
    assert fake_lambda.wait_for_next_calls(1)
    release, ran = threading.Event(), threading.Event()

    def slow_send() -> None:
        release.wait(5)
        ran.set()

    @after.handler
    def handler(event: Any, context: Any) -> dict[str, int]:
        after.defer(slow_send)
        return {"statusCode": 200}

    fake_lambda.start_invocation()
    assert handler({}, None) == {"statusCode": 200}  # returned while the work is still blocked
    assert not ran.is_set()
    assert not fake_lambda.wait_for_next_calls(2, timeout_s=0.2)  # the invocation is not over yet
    release.set()
    assert ran.wait(5)
    assert fake_lambda.wait_for_next_calls(2)  # now it is: Lambda may freeze the environment


def test_work_is_handed_over_when_the_handler_raises_and_one_failure_does_not_stop_the_rest(fake_lambda, caplog):
    after = AfterResponse.for_this_process("agent-messages")
    ran: list[str] = []

    def failing() -> None:
        raise RuntimeError("SQS is down")

    @after.handler
    def handler(event: Any, context: Any) -> None:
        after.defer(failing)
        after.defer(lambda: ran.append("second"))
        raise ValueError("the handler failed")

    fake_lambda.start_invocation()
    with caplog.at_level(logging.ERROR, "functions.after_response"), pytest.raises(ValueError):
        handler({}, None)
    assert fake_lambda.wait_for_next_calls(2)
    assert ran == ["second"]
    assert "work deferred until after the response failed" in caplog.text


def test_a_refused_registration_falls_back_to_running_the_work_before_the_response(fake_lambda, caplog):
    fake_lambda.refuse = True
    with caplog.at_level(logging.WARNING, "functions.after_response"):
        after = AfterResponse.for_this_process("agent-messages")
    assert after.extension is None
    assert "HTTP 403" in caplog.text
    assert_runs_before_returning(after)


def test_an_unreachable_runtime_api_falls_back_to_running_the_work_before_the_response(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")  # discard port: refused at once
    assert_runs_before_returning(AfterResponse.for_this_process("agent-messages"))


def test_under_snapstart_no_extension_is_registered(fake_lambda, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    after = AfterResponse.for_this_process("agent-messages")
    assert after.extension is None and fake_lambda.registrations == []
    assert_runs_before_returning(after)


def test_outside_lambda_the_work_runs_before_the_handler_returns(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_RUNTIME_API", raising=False)
    assert_runs_before_returning(AfterResponse.for_this_process("agent-messages"))


def test_a_host_gets_the_work_to_run_after_delivering_the_response():
    after = AfterResponse()
    ran: list[int] = []

    @after.handler
    def handler(event: Any, context: Any) -> str:
        after.defer(lambda: ran.append(1))
        return "response"

    assert after_response_of(handler) is after
    with hosted():
        assert handler({}, None) == "response"
    assert ran == []
    after.run_pending()
    assert ran == [1]
    handler({}, None)  # outside ``hosted`` again: runs before returning
    assert ran == [1, 1]


def test_the_local_container_answers_before_the_deferred_work_and_the_next_event_waits_for_it():
    after = AfterResponse()
    release = threading.Event()
    finished: list[float] = []

    def slow_send() -> None:
        release.wait(5)
        finished.append(time.monotonic())

    @after.handler
    def handler(event: Any, context: Any) -> dict[str, float]:
        after.defer(slow_send)
        return {"started": time.monotonic()}

    container = InProcessContainer(handler, "agent-messages", timeout_s=5, memory_mb=128)
    assert "started" in container.invoke({})  # answered while slow_send still waits
    assert finished == []
    second: list[dict[str, float]] = []
    waiting = threading.Thread(target=lambda: second.append(container.invoke({})))
    waiting.start()
    time.sleep(0.1)
    assert second == []  # the next event waits for the first one's deferred work
    release.set()
    waiting.join(5)
    assert second and second[0]["started"] >= finished[0]


def assert_runs_before_returning(after: AfterResponse) -> None:
    ran: list[int] = []

    @after.handler
    def handler(event: Any, context: Any) -> list[int]:
        after.defer(lambda: ran.append(1))
        return ran

    assert handler({}, None) == [1]
