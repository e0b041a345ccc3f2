"""Work a handler leaves for after its response: run by a Lambda internal extension.

Lambda freezes the execution environment once the handler returns, so a thread left running
stops until the next invocation. An internal extension is Lambda's exception: a thread of the
function's own process, registered with the Extensions API during the init phase. The response
goes back to the caller as soon as the runtime posts it, and Lambda keeps the environment
running until every extension has asked for its next event (AWS Lambda developer guide, "Lambda
Extensions API": the Invoke phase; AWS Compute Blog, "Running code after returning a response
from an AWS Lambda function", 2023). That time is billed as the invocation's duration; the
caller does not wait for it.

The messages function defers its embedding requests' ``SendMessageBatch`` this way
(``core.embeddings.queue``): SQS leaves the reply path, and the requests still go out within
milliseconds of the reply, before the environment freezes.

Where deferred work runs:

* in Lambda (``AWS_LAMBDA_RUNTIME_API`` set): on the internal extension's thread, once the
  handler has returned; the next invocation starts only after it, as Lambda guarantees;
* under a host that delivers responses itself (the local stack's containers call the handler
  within :func:`hosted`): after the host has delivered the response, before its next event
  (:meth:`AfterResponse.run_pending`);
* otherwise (a test calling the handler; SnapStart, whose snapshot would carry the extension's
  connection; a registration Lambda refused): before the handler returns. Nothing is lost; the
  reply just waits for it.

Deferred work that fails is logged, never raised: what it was to send, the sweep sends again.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger(__name__)

#: A no-argument callable run after the response; its result is ignored.
Work = Callable[[], object]
Handler = Callable[[Any, Any], Any]
#: Seconds the registration may take (it is a call to Lambda's local Runtime API).
REGISTER_TIMEOUT_S = 2.0
#: Seconds the extension waits before asking for its next event again after a failed request.
RETRY_PAUSE_S = 0.05
_ATTRIBUTE = "after_response"
#: True while a host that runs the deferred work itself calls the handler (``hosted``).
_HOSTED: ContextVar[bool] = ContextVar("after_response_hosted", default=False)


class AfterResponse:
    """The process's deferred work: gathered during an invocation, run after its response.

    Args:
        extension: The internal extension that runs the work in Lambda; ``None`` elsewhere.
    """

    def __init__(self, extension: InternalExtension | None = None) -> None:
        self.extension = extension
        self._pending: list[Work] = []
        self._lock = threading.Lock()

    @classmethod
    def for_this_process(cls, name: str) -> AfterResponse:
        """In Lambda, register the internal extension ``name`` (call it in the init phase).

        Under SnapStart (``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``), or when Lambda refuses
        the registration (logged), the work runs before the handler returns instead.
        """
        runtime_api = os.environ.get("AWS_LAMBDA_RUNTIME_API")
        if not runtime_api or os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
            return cls()
        try:
            return cls(InternalExtension.register(runtime_api, name))
        except (OSError, http.client.HTTPException, ExtensionRefused) as exc:
            logger.warning("extension %s not registered (%s): deferred work runs before each response", name, exc)
            return cls()

    def defer(self, work: Work) -> None:
        """Run ``work`` after the current invocation's response (in order of deferral)."""
        with self._lock:
            self._pending.append(work)

    def run_pending(self) -> None:
        """Run the work deferred so far, in order; each failure is logged, never raised."""
        run_all(self._take())

    def handler(self, handler: Handler) -> Handler:
        """Decorator for a Lambda handler: its deferred work runs after it has returned.

        Put it outermost, so that it runs after everything the handler's other decorators do.
        The work is handed over even when the handler raises: the extension waits for it.
        """

        @functools.wraps(handler)
        def entry(event: Any, context: Any) -> Any:
            try:
                return handler(event, context)
            finally:
                self._finish_invocation()

        entry.__dict__[_ATTRIBUTE] = self  # for hosts: after_response_of(handler)
        return entry

    def _finish_invocation(self) -> None:
        if self.extension is not None:
            self.extension.hand_over(self._take())
        elif not _HOSTED.get():
            self.run_pending()

    def _take(self) -> list[Work]:
        with self._lock:
            work, self._pending = self._pending, []
        return work


@contextlib.contextmanager
def hosted() -> Iterator[None]:
    """Call a handler within this to run its deferred work yourself, after delivering its
    response (``after_response_of(handler).run_pending()``), as the local stack's containers do."""
    token = _HOSTED.set(True)
    try:
        yield
    finally:
        _HOSTED.reset(token)


def after_response_of(handler: Handler) -> AfterResponse | None:
    """The ``AfterResponse`` whose :meth:`AfterResponse.handler` decorated ``handler``, if any."""
    found = getattr(handler, _ATTRIBUTE, None)
    return found if isinstance(found, AfterResponse) else None


def run_all(work: list[Work]) -> None:
    """Run each callable in order; a failure is logged and the rest still run."""
    for item in work:
        try:
            item()
        except Exception:
            logger.exception("work deferred until after the response failed")


class ExtensionRefused(Exception):
    """Lambda's Extensions API answered the registration with an error."""


class InternalExtension:
    """An internal extension (Lambda Extensions API ``2020-01-01``): a thread that runs deferred work.

    For each ``INVOKE`` event it waits for the handler to hand over the invocation's work, runs
    it, then asks for its next event, which tells Lambda it is done. Internal extensions receive
    ``INVOKE`` events only (``SHUTDOWN`` is for external ones).

    Args:
        runtime_api: ``AWS_LAMBDA_RUNTIME_API`` (``host:port``).
        extension_id: The ``Lambda-Extension-Identifier`` the registration returned.
    """

    def __init__(self, runtime_api: str, extension_id: str) -> None:
        self.runtime_api = runtime_api
        self.extension_id = extension_id
        self._handed: queue.SimpleQueue[list[Work]] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="after-response-extension", daemon=True)
        self._thread.start()

    @classmethod
    def register(cls, runtime_api: str, name: str) -> InternalExtension:
        """Register with the Extensions API (during the init phase only) and start the thread.

        Raises:
            ExtensionRefused: Lambda answered with an error status (e.g. after the init phase).
            OSError, http.client.HTTPException: the Runtime API could not be reached.
        """
        connection = http.client.HTTPConnection(runtime_api, timeout=REGISTER_TIMEOUT_S)
        try:
            connection.request(
                "POST",
                "/2020-01-01/extension/register",
                body=json.dumps({"events": ["INVOKE"]}),
                headers={"Lambda-Extension-Name": name, "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            body = response.read()
            extension_id = response.getheader("Lambda-Extension-Identifier")
        finally:
            connection.close()
        if response.status != 200 or not extension_id:
            raise ExtensionRefused(f"HTTP {response.status}: {body[:200]!r}")
        return cls(runtime_api, extension_id)

    def hand_over(self, work: list[Work]) -> None:
        """Give the invocation's work to the thread (exactly once per invocation, even empty)."""
        self._handed.put(work)

    def close(self) -> None:
        """End the thread after its current request (Lambda never needs it; tests do)."""
        self._closed.set()
        self._handed.put([])

    def _serve(self) -> None:
        connection = http.client.HTTPConnection(self.runtime_api)  # no timeout: next blocks until an invocation
        while not self._closed.is_set():
            try:
                event = self._next_event(connection)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                logger.warning("the extension's next event failed (%s); asking again", exc)
                connection.close()
                time.sleep(RETRY_PAUSE_S)
                continue
            if event.get("eventType") == "INVOKE":
                run_all(self._handed.get())  # the handler hands it over as it returns

    def _next_event(self, connection: http.client.HTTPConnection) -> dict[str, Any]:
        connection.request(
            "GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": self.extension_id}
        )
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise http.client.HTTPException(f"HTTP {response.status}: {body[:200]!r}")
        event: dict[str, Any] = json.loads(body)
        return event
