"""The local HTTP path against the in-process turn, and where the difference goes.

Starts the local stack in this process (``infra.local.stack.start``: embedded Postgres under a
temporary ``LOCAL_DATA_DIR`` in /tmp, moto SQS, the gateway on uvicorn, the poller, the
scheduler) with the scripted model (``MODEL_PLUGINS=core.model_providers.scripted``,
``SCRIPTED_REPLY``: zero model latency) and ``LOCAL_CONCURRENCY=1``, so the messages function
runs in this process. The functions' log lines (Powertools JSON, ``LOG_FORMAT=json`` unless set)
go to a file in the data directory, as ``make run > stack.log`` writes them; the stack's own
logging is set up as ``make run`` sets it (``infra.local.logs``).

One client (httpx, one keep-alive connection) posts to ``/agents/eliza/messages`` with a
development token (what ``agent token`` prints), in its one DM room. Interleaved with each
HTTP post, in the same room and on the same process's handler module state, each started once
the previous one's deferred work is done and the gateway is idle:

* ``handler_direct``: the gateway's invocation (``LocalGateway.invoke``: the container, a fresh
  Lambda context, the handler with its Powertools logger, metrics and resolver, the response
  conversion) on an event built as the gateway builds it (``build_http_event``, the authorizer);
* ``in_process``: the turn alone, ``orchestrator.handle_message`` on the container's loop, with
  the very ``IncomingMessage`` the handler built for the previous HTTP post (new text).

During the HTTP posts, timestamps taken at each hand-over (wrappers around the gateway's
``_respond`` and ``invoke``, the handler, the route's room check and the turn; ``PARTS``) split
each request: client to gateway (httpx, the socket, uvicorn/h11), gateway to invocation (body,
event, authorizer, the hop to the invocation thread), the handler before the turn (Powertools,
resolver, validation, the route's room check), the turn, the handler after it, the way back (the
container, the hop to uvicorn's loop, the response written and read). The SQS calls made inside
the turn (botocore ``before-call``/``after-call`` on the embedding queue's client, counted in
the turn's context only) are given apart.

Two variants, in this order: ``sqs_in_turn``, the embedding requests' ``SendMessageBatch`` on the
reply path (the queue's ``after_response`` unset), and ``deferred``, as the stack runs (the send
after the response, ``functions.after_response``), when the code has that deferral; each
variant's figures carry its name. Then, as the stack runs, ``back_to_back``: posts one after the
other with nothing between them (a load test's one client: a post may wait for the previous
one's deferred work), and ``GET /health`` over HTTP and invoked directly (the gateway's cost on
a request with no turn).

Prints JSON lines: HTTP p50/p90, handler-direct p50, in-process p50 (ms), the ratio HTTP over
in-process (x), the per-request split (p50 of each part, ms), stack start-up (s). With
``--profile`` a last pass of back-to-back posts runs under cProfile, one profiler in the
gateway's event-loop thread and one in its invocation thread: the cumulative time per post of
the gateway's, the container's and the handler's main functions, and the top functions by own
time (waits left out), go to stderr, the stats to ``<data dir>/gateway-*.pstats`` (the data
directory is then kept, as with ``--keep``; otherwise it is deleted).

Run: ``.venv/bin/python bench/local_http.py [N] [--warmup W] [--profile] [--keep]`` (default
200 rounds after 20).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO

import httpx
from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path

REPLY = "Noted."
PATH = "/agents/eliza/messages"
#: The SQS milliseconds of the turn running in this context (``asyncio.to_thread`` copies it).
_TURN_SQS: ContextVar[list[float] | None] = ContextVar("turn_sqs", default=None)


def pct(times: list[float], q: int) -> float:
    """The q-th percentile (q in 1..99) of ``times``."""
    return statistics.quantiles(times, n=100)[q - 1]


@contextlib.contextmanager
def stdout_to(stream: TextIO) -> Iterator[None]:
    """Powertools' loggers write to ``sys.stdout`` as it is when they are made (the functions' init phases)."""
    saved = sys.stdout
    sys.stdout = stream
    try:
        yield
    finally:
        sys.stdout = saved


class Split:
    """Timestamps (``perf_counter``, s) of the request being served, at each hand-over, and its turn's SQS time.

    ``respond_in``/``respond_out``: the gateway's ``_respond`` entered and left (uvicorn's loop);
    ``invoke_in``/``invoke_out``: ``LocalGateway.invoke`` on the invocation thread;
    ``handler_in``/``handler_out``: the Lambda handler; ``room_in``/``room_out``: the route's room
    check (``functions.api.access.check_room``; both at ``turn_in`` when it did not run);
    ``turn_in``/``turn_out``: the turn.
    """

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.sqs_ms = 0.0
        self.last_turn: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._started: ContextVar[float] = ContextVar("sqs_started", default=0.0)

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` marking ``<name>_in`` and ``<name>_out``."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            self.marks[f"{name}_in"] = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.marks[f"{name}_out"] = time.perf_counter()

        return timed

    def wrap_async(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """The coroutine function ``function`` marking ``<name>_in`` and ``<name>_out``."""

        async def timed(*args: Any, **kwargs: Any) -> Any:
            self.marks[f"{name}_in"] = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.marks[f"{name}_out"] = time.perf_counter()

        return timed

    def wrap_turn(self, handle_message: Callable[..., Any]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            self.last_turn = (args, kwargs)
            sqs = [0.0]
            token = _TURN_SQS.set(sqs)
            self.marks["turn_in"] = time.perf_counter()
            try:
                return await handle_message(*args, **kwargs)
            finally:
                self.marks["turn_out"] = time.perf_counter()
                self.sqs_ms = sqs[0]
                _TURN_SQS.reset(token)

        return timed

    def watch_sqs(self, client: Any) -> None:
        client.meta.events.register("before-call.sqs.*", self._before_sqs)
        client.meta.events.register("after-call.sqs.*", self._after_sqs)

    def _before_sqs(self, **_: Any) -> None:
        self._started.set(time.perf_counter())

    def _after_sqs(self, **_: Any) -> None:
        sqs = _TURN_SQS.get()
        if sqs is not None:  # a send inside a turn, not a deferred one
            sqs[0] += (time.perf_counter() - self._started.get()) * 1000

    def clear(self) -> None:
        self.marks = {}
        self.sqs_ms = 0.0


#: The parts of an HTTP post, from the client's send to its having the response: (name, from, to).
PARTS = (
    ("client_to_gateway", "sent", "respond_in"),  # httpx, the socket, uvicorn/h11, the ASGI call
    ("gateway_to_invoke", "respond_in", "invoke_in"),  # body read, event, authorizer, hop to the thread
    ("invoke_to_handler", "invoke_in", "handler_in"),  # container lock, Lambda context
    ("handler_wrapper", "handler_in", "room_in"),  # Powertools logger/metrics, resolver, validation, route
    ("route_room_check", "room_in", "room_out"),  # the route's check of the body's roomId (a database read)
    ("route_to_turn", "room_out", "turn_in"),
    ("turn", "turn_in", "turn_out"),
    ("handler_after_turn", "turn_out", "handler_out"),  # the answer, the log line, metrics, wrappers
    ("handler_to_invoke_out", "handler_out", "invoke_out"),  # response conversion
    ("invoke_to_loop", "invoke_out", "respond_out"),  # hop back to uvicorn's loop
    ("loop_to_client", "respond_out", "received"),  # response written, read and parsed by httpx
)


def _parts() -> dict[str, list[float]]:
    parts: dict[str, list[float]] = {name: [] for name, _, _ in PARTS}
    parts["sqs"] = []
    return parts


def emit_split(variant: str, http: list[float], parts: dict[str, list[float]]) -> None:
    """The split of the HTTP posts: the p50 of each part, from the same requests (ms)."""
    for name, _, _ in PARTS:
        emit(f"{variant}_split_{name}_p50", statistics.median(parts[name]), "ms")
    emit(f"{variant}_split_turn_sqs_p50", statistics.median(parts["sqs"]), "ms")
    without = [t - q for t, q in zip(parts["turn"], parts["sqs"], strict=True)]
    emit(f"{variant}_split_turn_without_sqs_p50", statistics.median(without), "ms")
    outside = [h - t for h, t in zip(http, parts["turn"], strict=True)]
    emit(f"{variant}_split_outside_turn_p50", statistics.median(outside), "ms")


def start_stack(data: Path) -> tuple[Any, Any, float]:
    """The local stack with the scripted model, one container, the functions' logs to ``data/functions.log``."""
    os.environ["LOCAL_DATA_DIR"] = str(data)
    os.environ["MODEL_PLUGINS"] = "core.model_providers.scripted"
    os.environ["SCRIPTED_REPLY"] = REPLY
    os.environ["LOCAL_CONCURRENCY"] = "1"
    os.environ["PORT"] = "0"
    os.environ.setdefault("LOG_FORMAT", "json")  # as deployed, and as `make run > file` writes
    from infra.local.logs import configure_logging
    from infra.local.stack import read_config, start

    configure_logging()  # as `make run`: the stack's own lines on stderr, at WARNING
    log(f"starting the local stack (data under {data})...")
    functions_log = open(data / "functions.log", "w")  # noqa: SIM115 (open for the process's life)
    started = time.perf_counter()
    with stdout_to(functions_log):
        stack = start(read_config())
    return stack, functions_log, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("posts", nargs="?", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="a last HTTP pass under cProfile")
    parser.add_argument("--keep", action="store_true", help="keep the data directory (kept with --profile)")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="bench-local-http-", dir="/tmp"))
    stack, functions_log, startup_s = start_stack(data)
    try:
        Bench(stack, data).run(args.posts, args.warmup, args.profile)
    finally:
        stack.stop()
        functions_log.close()
    emit("stack_start", startup_s, "s")
    if args.keep or args.profile:
        log(f"kept: {data} (the functions' log lines, the profiles; Postgres is stopped)")
    else:
        shutil.rmtree(data, ignore_errors=True)


class Bench:
    """The three ways of running a post, on the running stack's gateway and handler module."""

    def __init__(self, stack: Any, data: Path) -> None:
        from functions.api import app, messages
        from infra.local.dev_tokens import DevTokens

        self.app = app
        self.gateway = stack.gateway
        self.split = Split()
        self.containers = self.gateway._containers  # InProcessContainer: LOCAL_CONCURRENCY=1
        self.containers._handler = self.split.wrap("handler", self.containers._handler)
        self.gateway.invoke = self.split.wrap("invoke", self.gateway.invoke)
        self.gateway._respond = self.split.wrap_async("respond", self.gateway._respond)
        app.orchestrator.handle_message = self.split.wrap_turn(app.orchestrator.handle_message)  # type: ignore[method-assign]
        messages.check_room = self.split.wrap_async("room", messages.check_room)  # type: ignore[attr-defined]
        self.queue = app.orchestrator.embedding_queue
        if self.queue is not None:
            self.split.watch_sqs(self.queue.sqs)
        #: The queue's deferral (``functions.after_response``), when the code has one.
        self.deferral = getattr(self.queue, "after_response", None)
        self.after_response = getattr(app, "after_response", None)
        self.token = DevTokens(data).mint("bench-user")  # what `agent token` prints
        self.client = httpx.Client(
            base_url=self.gateway.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        )
        self.room: str | None = None

    def settle(self) -> None:
        """Wait for the previous invocation's deferred work; run what in-process turns deferred."""
        lock = getattr(self.containers, "_lock", None)
        if lock is not None:
            with lock:
                pass
        if self.after_response is not None:
            self.after_response.run_pending()

    def http_post(self, text: str) -> float:
        payload = json.dumps({"text": text, **({"roomId": self.room} if self.room else {})})
        self.split.marks["sent"] = t0 = time.perf_counter()
        response = self.client.post(PATH, content=payload)
        self.split.marks["received"] = time.perf_counter()
        elapsed = (self.split.marks["received"] - t0) * 1000
        response.raise_for_status()
        body = response.json()
        assert body["responses"][0]["text"] == REPLY, body
        self.room = body["roomId"]
        return elapsed

    def _event(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        from infra.local.gateway import build_http_event

        headers = [
            ("host", self.gateway.url.removeprefix("http://")),
            ("accept", "*/*"),
            ("accept-encoding", "gzip, deflate"),
            ("connection", "keep-alive"),
            ("user-agent", f"python-httpx/{httpx.__version__}"),
            ("authorization", f"Bearer {self.token}"),
        ]
        if body:
            headers.append(("content-length", str(len(body))))
        event = build_http_event(
            method=method, target=path, headers=headers, body=body, source_ip="127.0.0.1", server_port=self.gateway.port
        )
        assert self.gateway._authorize(event) is None
        return event

    def direct(self, text: str) -> float:
        """The gateway's invocation on an event built as the gateway builds it (no HTTP)."""
        t0 = time.perf_counter()
        response = self.gateway.invoke(
            self._event("POST", PATH, json.dumps({"text": text, "roomId": self.room}).encode())
        )
        elapsed = (time.perf_counter() - t0) * 1000
        assert response.status == 200, response
        return elapsed

    def in_process(self, text: str) -> float:
        """The turn alone, with the message the handler built for the last post (new text)."""
        assert self.split.last_turn is not None
        (agent, incoming), kwargs = self.split.last_turn
        incoming = dataclasses.replace(incoming, text=text, message_id=None)
        t0 = time.perf_counter()
        result = self.app.container.run(self.app.orchestrator.handle_message(agent, incoming, **kwargs))
        elapsed = (time.perf_counter() - t0) * 1000
        assert result.did_respond
        return elapsed

    def timed_post(self, text: str, parts: dict[str, list[float]]) -> float:
        """One HTTP post (ms); each part of it goes to ``parts`` (``PARTS``, and the turn's SQS ms as ``sqs``)."""
        self.split.clear()
        elapsed = self.http_post(text)
        marks = self.split.marks
        if "room_in" not in marks:  # no roomId: the route checked none
            marks["room_in"] = marks["room_out"] = marks["turn_in"]
        for name, start, end in PARTS:
            parts[name].append((marks[end] - marks[start]) * 1000)
        parts["sqs"].append(self.split.sqs_ms)
        return elapsed

    def rounds(self, variant: str, posts: int) -> None:
        """``posts`` rounds of one HTTP post, one handler-direct invocation, one in-process turn."""
        log(f"{variant}: {posts} rounds of one HTTP post, one direct invocation, one in-process turn...")
        http, direct, turn = [], [], []
        parts = _parts()
        for i in range(posts):
            self.settle()
            http.append(self.timed_post(f"Hello, who are you? ({variant} {i})", parts))
            self.settle()
            direct.append(self.direct(f"Hello, directly ({variant} {i})"))
            self.settle()
            turn.append(self.in_process(f"Hello, in process ({variant} {i})"))
        http_p50, turn_p50 = statistics.median(http), statistics.median(turn)
        emit(f"{variant}_http_p50", http_p50, "ms")
        emit(f"{variant}_http_p90", pct(http, 90), "ms")
        emit(f"{variant}_handler_direct_p50", statistics.median(direct), "ms")
        emit(f"{variant}_in_process_p50", turn_p50, "ms")
        emit(f"{variant}_in_process_p90", pct(turn, 90), "ms")
        emit(f"{variant}_http_over_in_process", http_p50 / turn_p50, "x")
        emit_split(variant, http, parts)

    def back_to_back(self, posts: int) -> None:
        """Posts with nothing between them, and ``GET /health`` over HTTP and invoked directly."""
        self.settle()
        log(f"back_to_back: {posts} HTTP posts, then {posts} GET /health over HTTP and direct...")
        parts = _parts()
        http = [self.timed_post(f"back to back {i}", parts) for i in range(posts)]
        emit("back_to_back_http_p50", statistics.median(http), "ms")
        emit("back_to_back_http_p90", pct(http, 90), "ms")
        emit_split("back_to_back", http, parts)
        self.settle()
        health_http, health_direct = [], []
        for _ in range(posts):
            t0 = time.perf_counter()
            self.client.get("/health").raise_for_status()
            health_http.append((time.perf_counter() - t0) * 1000)
            self.settle()
            t0 = time.perf_counter()
            assert self.gateway.invoke(self._event("GET", "/health", b"")).status == 200
            health_direct.append((time.perf_counter() - t0) * 1000)
            self.settle()
        emit("health_http_p50", statistics.median(health_http), "ms")
        emit("health_direct_p50", statistics.median(health_direct), "ms")

    def run(self, posts: int, warmup: int, profile: bool) -> None:
        log(f"warm-up: {warmup} rounds...")
        for i in range(warmup):
            self.settle()
            self.http_post(f"warm-up {i}")
            self.settle()
            self.direct(f"warm-up direct {i}")
            self.settle()
            self.in_process(f"warm-up in-process {i}")
        if self.deferral is None:
            log("this code sends the embedding requests in the turn (no deferral): one variant")
            self.rounds("sqs_in_turn", posts)
        else:
            self.queue.after_response = None  # type: ignore[union-attr]
            self.rounds("sqs_in_turn", posts)
            self.queue.after_response = self.deferral  # type: ignore[union-attr]
            self.rounds("deferred", posts)
        self.back_to_back(posts)
        if profile:
            self.profile(posts)
        self.client.close()

    def profile(self, posts: int) -> None:
        """An HTTP pass under cProfile in the gateway's two threads (its event loop, its invocation thread)."""
        loop_profile, invoke_profile = cProfile.Profile(), cProfile.Profile()
        respond, state = self.gateway._respond, {"on": False, "stop": False}

        async def profiled_respond(*args: Any, **kwargs: Any) -> Any:
            if state["stop"]:
                loop_profile.disable()  # in uvicorn's thread, where it was enabled
                state["on"] = False
            elif not state["on"]:
                loop_profile.enable()
                state["on"] = True
            return await respond(*args, **kwargs)

        self.gateway._respond = profiled_respond
        self.settle()
        self.gateway._executor.submit(invoke_profile.enable).result()  # the one invocation thread
        log(f"profiling {posts} HTTP posts (cProfile: slower than the figures above)...")
        times = [self.http_post(f"profiled {i}") for i in range(posts)]
        self.settle()
        self.gateway._executor.submit(invoke_profile.disable).result()
        state["stop"] = True
        self.http_post("profile off")
        self.gateway._respond = respond
        log(f"  (p50 under the profiler: {statistics.median(times):.1f} ms)")
        for name, profile in (("loop", loop_profile), ("invoke", invoke_profile)):
            path = Path(os.environ["LOCAL_DATA_DIR"]) / f"gateway-{name}.pstats"
            profile.dump_stats(path)
            log_profile(name, pstats.Stats(profile), posts, path)


#: Functions whose cumulative time per post the profile shows: (file ending, function name).
PROFILED = (
    ("infra/local/gateway.py", "__call__"),
    ("infra/local/gateway.py", "_respond"),
    ("infra/local/gateway.py", "build_http_event"),
    ("infra/local/dev_tokens.py", "authorize"),
    ("uvicorn/protocols/http/h11_impl.py", "handle_events"),
    ("uvicorn/protocols/http/h11_impl.py", "send"),
    ("infra/local/gateway.py", "invoke"),
    ("infra/local/containers.py", "_run"),
    ("threading.py", "start"),
    ("infra/local/lambda_context.py", "new_context"),
    ("functions/observability.py", "entry"),
    ("functions/api/app.py", "handler"),
    ("event_handler/api_gateway.py", "resolve"),
    ("middlewares/openapi_validation.py", "handler"),
    ("functions/api/messages.py", "post_message"),
    ("logging/__init__.py", "callHandlers"),
    ("infra/local/gateway.py", "response_from_result"),
)
#: Where a thread waits (left out of the own-time list).
IDLE = ("poll' of 'select.epoll", "get' of '_queue.SimpleQueue", "acquire' of '_thread.lock")


def log_profile(thread: str, stats: pstats.Stats, posts: int, path: Path) -> None:
    """The cumulative ms per post of ``PROFILED`` functions, then the top 15 by own time, waits left out."""
    rows = stats.stats  # type: ignore[attr-defined]
    log(f"gateway {thread} thread, cProfile, ms per post ({path}):")
    for (file, line, function), (_, calls, _, cumulative, _) in sorted(rows.items(), key=lambda kv: -kv[1][3]):
        if any(file.endswith(end) and function == name for end, name in PROFILED):
            where = f"{_short(file)}:{line}({function})"
            log(f"  {cumulative * 1000 / posts:8.3f} cumulative  {calls / posts:6.1f} calls  {where}")
    busy = [(row[2], key) for key, row in rows.items() if not any(idle in key[2] for idle in IDLE)]
    for own, (file, line, function) in sorted(busy, reverse=True)[:15]:
        log(f"  {own * 1000 / posts:8.3f} own         {_short(file)}:{line}({function})")


def _short(file: str) -> str:
    return file.split("site-packages/")[-1].removeprefix(str(Path(__file__).resolve().parents[1]) + "/")


if __name__ == "__main__":
    main()
