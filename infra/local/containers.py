"""Lambda containers for the local gateway: where its events run, one at a time per container.

Lambda scales a function by running more containers. Each is a process with its own init
phase (the handler module's state: its event loop, its connection pool, its orchestrator and
caches) and runs one event at a time. The local gateway does the same:

* :class:`InProcessContainer`: the handler in the gateway's own process, one event at a time
  (``LOCAL_CONCURRENCY=1``, the default, and every test's handler).
* :class:`ProcessContainers`: ``LOCAL_CONCURRENCY`` child processes, each importing the handler
  by name (``"functions.api.app:handler"``), so each has its own init phase, as a new Lambda
  container does. An event goes to an idle container; with none idle it waits.

Processes rather than threads: the handlers keep one event loop and one pool per process and
rely on running one event at a time (neither is thread-safe); threads would share them, and the
GIL would hold a CPU-bound turn (prompt building, JSON, the local models' Python side) to one
core, so throughput would not grow with cores as Lambda's does with containers. A process per
container costs its init phase once (about a second) and its memory, as a Lambda container does.

A container that dies (a crash in native code) or outruns the function timeout is replaced by a
new one, and that one event fails (the gateway answers 500), as in Lambda.

Work a handler defers until after its response (``functions.after_response``; in Lambda an
internal extension runs it) runs once the gateway has the result, before the container takes
its next event, as Lambda's next invocation waits for its extensions.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from functions.after_response import after_response_of, hosted
from infra.local.lambda_context import new_context

logger = logging.getLogger(__name__)

#: A Lambda handler: ``handler(event, context) -> result``.
Handler = Callable[[dict[str, Any], Any], Any]
#: Seconds a child container may take for its init phase before the start is given up.
INIT_TIMEOUT_S = 120.0
#: Seconds past the function timeout before a container still running an event is replaced.
_TIMEOUT_GRACE_S = 2.0


class HandlerFailed(Exception):
    """The handler raised, crashed or timed out: API Gateway answers 500 (logged where it happened)."""


class InProcessContainer:
    """The handler in this process, one event at a time (its event loop is not thread-safe).

    Args:
        handler: The Lambda handler.
        function_name: Put into each invocation's context.
        timeout_s: Function timeout, seconds (the context's deadline).
        memory_mb: Memory size reported in the context, MiB.
    """

    concurrency = 1

    def __init__(self, handler: Handler, function_name: str, timeout_s: float, memory_mb: int) -> None:
        self._handler = handler
        self.function_name = function_name
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._lock = threading.Lock()
        self._after_response = after_response_of(handler)
        #: One long-lived thread (a thread started per event cost about 1 ms of the reply).
        self._after_response_thread = ThreadPoolExecutor(1, thread_name_prefix=f"after-response-{function_name}")

    def start(self) -> None:
        """Nothing to start: the handler's init phase ran when its module was imported."""

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run the handler on ``event``; returns its result. Its deferred work then runs on a
        thread of its own, and the next event waits for it (the lock is released after it).

        Raises:
            HandlerFailed: the handler raised (logged with its traceback).
        """
        self._lock.acquire()  # the context is made under the lock: time spent queued is not the function's
        try:
            result = _run(self._handler, event, self.function_name, self.timeout_s, self.memory_mb)
        except BaseException:
            self._after_response_then_release()
            raise
        self._after_response_thread.submit(self._after_response_then_release)
        return result

    def _after_response_then_release(self) -> None:
        try:
            if self._after_response is not None:
                self._after_response.run_pending()
        finally:
            self._lock.release()

    def close(self) -> None:
        """Let the last event's deferred work finish; the handler's module owns the rest of its state."""
        self._after_response_thread.shutdown(wait=True)


class ProcessContainers:
    """``concurrency`` child processes, each a container running the handler named ``spec``.

    Args:
        spec: ``"module:attribute"`` of the handler, imported by each child (its init phase).
        concurrency: Containers, 1 or more (``LOCAL_CONCURRENCY``).
        function_name: Put into each invocation's context.
        timeout_s: Function timeout, seconds: a container running longer is replaced.
        memory_mb: Memory size reported in the context, MiB.
    """

    def __init__(self, spec: str, concurrency: int, function_name: str, timeout_s: float, memory_mb: int) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.spec = spec
        self.concurrency = concurrency
        self.function_name = function_name
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._idle: queue.Queue[_ChildContainer] = queue.Queue()
        self._all: list[_ChildContainer] = []

    def start(self) -> None:
        """Start every container and wait for their init phases (started together).

        Raises:
            RuntimeError: a container's init phase failed or took over ``INIT_TIMEOUT_S``.
        """
        children = [self._new_child() for _ in range(self.concurrency)]
        for child in children:
            child.wait_ready()
            self._idle.put(child)

    def _new_child(self) -> _ChildContainer:
        child = _ChildContainer(self.spec, self.function_name, self.timeout_s, self.memory_mb)
        self._all.append(child)
        return child

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run ``event`` on an idle container (waiting for one); returns the handler's result.

        Raises:
            HandlerFailed: the handler raised, its container died or outran the timeout
                (that container is replaced).
        """
        child = self._idle.get()
        try:
            return child.call(event, self.timeout_s + _TIMEOUT_GRACE_S)
        except _ContainerLost:
            child.stop()
            self._all.remove(child)
            child = self._new_child()
            child.wait_ready()
            raise HandlerFailed(f"the {self.function_name} container was lost and replaced") from None
        finally:
            self._idle.put(child)

    def close(self) -> None:
        """Stop every container (each closes its pool as its process ends)."""
        for child in self._all:
            child.stop()
        self._all.clear()


class _ContainerLost(Exception):
    """The child process died or did not answer in time."""


class _ChildContainer:
    """One child process and the pipe to it."""

    def __init__(self, spec: str, function_name: str, timeout_s: float, memory_mb: int) -> None:
        context = multiprocessing.get_context("spawn")  # a clean interpreter: its own init phase, no forked threads
        self._conn, child_end = context.Pipe()
        self.process = context.Process(
            target=_container_main,
            args=(spec, child_end, function_name, timeout_s, memory_mb),
            name=f"{function_name}-container",
            daemon=True,
        )
        self.process.start()
        child_end.close()

    def wait_ready(self) -> None:
        if not self._conn.poll(INIT_TIMEOUT_S):
            self.stop()
            raise RuntimeError(f"a container did not finish its init phase in {INIT_TIMEOUT_S:g} s")
        try:
            kind, detail = self._conn.recv()
        except EOFError:
            kind, detail = "error", f"exit status {self.process.exitcode}"
        if kind != "ready":
            self.stop()
            raise RuntimeError(f"a container's init phase failed: {detail}")

    def call(self, event: dict[str, Any], timeout_s: float) -> Any:
        try:
            self._conn.send(event)
            if not self._conn.poll(timeout_s):
                logger.error("a container ran one event over %.1f s: replaced, as Lambda stops it", timeout_s)
                raise _ContainerLost
            kind, value = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            logger.error("a container died while running an event (exit status %s)", self.process.exitcode)
            raise _ContainerLost from None
        if kind == "error":
            raise HandlerFailed(value)
        return value

    def stop(self) -> None:
        self._conn.close()  # the child's recv() ends: it leaves its loop and exits
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)


def _container_main(spec: str, conn: Connection, function_name: str, timeout_s: float, memory_mb: int) -> None:
    """A child container: the init phase (import the handler), then one event at a time until the pipe closes.

    The pipe closing, whatever the reason (the gateway stopping, or its process killed), ends
    the container: no child outlives the stack.
    """
    from infra.local.logs import configure_logging

    configure_logging()
    try:
        module_name, _, attribute = spec.partition(":")
        handler = getattr(importlib.import_module(module_name), attribute)
    except BaseException as exc:
        logger.exception("container init phase failed")
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    after_response = after_response_of(handler)
    conn.send(("ready", None))
    while True:
        try:
            event = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", _run(handler, event, function_name, timeout_s, memory_mb))
        except HandlerFailed as exc:
            reply = ("error", str(exc))
        try:
            conn.send(reply)
        except (TypeError, AttributeError, ValueError) as exc:  # a result pickle cannot carry
            logger.error("handler %s returned what cannot be sent back: %s", function_name, exc)
            conn.send(("error", "unserialisable result"))
        except (BrokenPipeError, OSError):
            return
        if after_response is not None:  # the gateway has the result; the next event waits for this
            after_response.run_pending()


def _run(handler: Handler, event: dict[str, Any], function_name: str, timeout_s: float, memory_mb: int) -> Any:
    """One invocation with a fresh context; the handler's exception becomes ``HandlerFailed`` (logged)."""
    context = new_context(function_name, timeout_s, memory_mb)
    started = time.monotonic()
    try:
        with hosted():  # its deferred work is the container's to run, once the result is delivered
            return handler(event, context)
    except Exception as exc:
        logger.exception("handler %s failed (request %s)", function_name, context.aws_request_id)
        raise HandlerFailed(f"{type(exc).__name__}") from exc
    finally:
        elapsed_s = time.monotonic() - started
        if elapsed_s > timeout_s:
            logger.warning(
                "handler %s ran %.1f s, over its %.1f s timeout: Lambda would have stopped it",
                function_name,
                elapsed_s,
                timeout_s,
            )
