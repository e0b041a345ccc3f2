"""A DM message turn as deployed, side by side with elizaOS 1.7.2 in the same run.

Ours: the plugins the messages function loads (``core.deployment.plugins.built_in_plugins``:
bootstrap, knowledge, memory), the scripted model with a fixed reply (zero latency), the
embedding queue on (moto's SQS server in its own process, the 1 s send budget), metrics on
(their EMF lines go to /dev/null instead of stdout). As deployed, the turn's
``SendMessageBatch`` is deferred until after the response (``functions.after_response``: in
Lambda an internal extension sends it once the response has gone): each timed turn ends when
the reply is ready, and the deferred send runs after the timer, timed on its own
(``after_response_p50``: billed Lambda time that nobody waits for). elizaOS: ``@elizaos/core``,
``plugin-sql`` and ``plugin-bootstrap`` 1.7.2 with ``plugin-knowledge`` 1.6.1, the plugins ours
port (``bench/elizaos/turn.mjs``, run by node), with a canned model giving the same reply, against
another database of the same embedded Postgres. Each side's timed turn is what it does for an
incoming message: ours ``Orchestrator.handle_message`` (the connection ensured, then the turn),
elizaOS ``ensureConnection`` then ``messageService.handleMessage``.
Both are timed in this run, on the same machine, one after the other, so the ratio is
measured, never a constant.

Two kinds of room: ``fresh`` (a connected DM room with no message yet: one turn each) and
``prior200`` (a DM room seeded with 200 messages). Round trips are counted on the wire by a
counting proxy in its own process (``bench/_pg_wire.py``: a pipeline of several statements
is one), statements by ``pg_stat_statements``; both in a separate pass through the proxy, so
that the timed turns run on a direct connection. SQS round trips are counted by botocore's
``before-call`` event on the client: those inside the turn are on the reply path, those of the
deferred work after it.

The database floor (``bench/_turn_floor.py``): one turn of ours recorded in each kind of room,
its statements replayed bare through psycopg in two round trips (the message and the reads, then
the reply and the logs), into new rooms or the seeded one. It is what Postgres and the driver take
for the turn's own SQL, so ``turn_over_floor`` is our runtime's part of the turn, and elizaOS's
p50 over the floor is the most any Python runtime sending these statements could be faster
(``turn_speedup_ceiling``).

Prints JSON lines: turn p50/p90 (ms) for both runtimes and both rooms, our speed-up (x), the
floor's p50 (ms), its round trips, our time over it (ms) and the speed-up ceiling (x),
database round trips per turn (ours: mean, median and the most, a reflecting turn;
elizaOS's mean), SQL statements per turn, SQS calls per turn (on the reply path, after it), the
deferred sends' time after the response (ms), ephemeral build p50 (µs),
RSS after the run (MiB). Progress and each statement's calls per turn go to stderr.

Run: ``.venv/bin/python bench/message_turn.py [turns]`` (default 300; node 18+ and
``npm ci`` in ``bench/elizaos`` for the elizaOS side, done here when ``node_modules`` is missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path
from _turn_floor import RecordedTurn, floor_turns, recording, stable_ids

BENCH = Path(__file__).resolve().parent
ELIZAOS = BENCH / "elizaos"
REPLY = "Noted."
PRIOR = 200
#: The elizaOS harness's stderr (its errors), kept for when it fails.
ELIZAOS_LOG = Path(tempfile.gettempdir()) / "bench-elizaos-turn.log"
#: Turns of each pass through the counting proxy (counts are exact: fewer turns suffice).
COUNTED_TURNS = 50


def rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def pct(times: list[float], q: int) -> float:
    """The q-th percentile (q in 1..99) of ``times``."""
    return statistics.quantiles(times, n=100)[q - 1]


def start_postgres() -> tuple[Any, Path]:
    """An embedded Postgres with pg_stat_statements preloaded (needs a restart after the first start)."""
    from infra.local.postgres import start_embedded_postgres

    data_dir = Path(tempfile.mkdtemp(prefix="bench-turn-", dir="/tmp")) / "pg"
    server = start_embedded_postgres(data_dir)
    conf = data_dir / "postgresql.conf"
    conf.write_text(conf.read_text() + "\nshared_preload_libraries = 'pg_stat_statements'\n")
    server.stop()
    return start_embedded_postgres(data_dir), data_dir


class Wire:
    """The counting proxy (``bench/_pg_wire.py``) in its own process."""

    def __init__(self, socket_path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "_pg_wire.py"), str(socket_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self.proc.stdout.readline())

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def count(self) -> int:
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto's SQS server in its own process (as SQS is another machine when deployed)."""
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


@contextlib.contextmanager
def metrics_to_devnull():
    """Powertools prints one EMF line per model call on stdout: keep it off the JSON lines."""
    saved = sys.stdout
    with open(os.devnull, "w") as null:
        sys.stdout = null
        try:
            yield
        finally:
            sys.stdout = saved


# -- elizaOS ------------------------------------------------------------------------------------


def elizaos_ready() -> bool:
    """node and the harness's packages (``npm ci`` when one of them is missing)."""
    packages = json.loads((ELIZAOS / "package.json").read_text())["dependencies"]
    try:
        if not all((ELIZAOS / "node_modules" / name / "package.json").exists() for name in packages):
            log("installing the elizaOS harness (npm ci)...")
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ELIZAOS, check=True, stdout=sys.stderr)
        return True
    except (OSError, subprocess.CalledProcessError) as exc:
        log(f"elizaOS cannot run here ({exc}); no elizaOS figures")
        return False


def elizaos_turns(url: str, turns: int, prior: int, mode: str, wire: Wire | None = None) -> tuple[list[float], float]:
    """elizaOS turn times (ms) and, through ``wire``, its round trips per turn."""
    proc = subprocess.Popen(
        ["node", str(ELIZAOS / "turn.mjs"), url, str(turns), str(prior), mode],
        cwd=ELIZAOS,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=open(ELIZAOS_LOG, "a"),  # noqa: SIM115 (the child's, closed with it)
        text=True,
        env={**os.environ, "LOG_LEVEL": "fatal"},
    )
    assert _json_line(proc)["ready"]
    before = wire.count() if wire else 0
    proc.stdin.write("go\n")
    proc.stdin.flush()
    times = _json_line(proc)["turn_ms"]
    round_trips = (wire.count() - before) / turns if wire else 0.0
    proc.wait(60)
    return times, round_trips


def _json_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The harness's next JSON line (elizaOS may print its own lines on stdout too)."""
    while line := proc.stdout.readline():
        if line.startswith('{"'):
            return json.loads(line)
    raise RuntimeError(f"the elizaOS harness ended without its figures (exit {proc.wait(60)}; see {ELIZAOS_LOG})")


# -- ours ---------------------------------------------------------------------------------------


class Ours:
    """Our messages function's turn: deployed plugins, the embedding queue, one orchestrator."""

    def __init__(self, url: str, sqs_endpoint: str, queue_urls: dict[str, str]) -> None:
        self.url = url
        self.sqs_endpoint = sqs_endpoint
        self.queue_urls = queue_urls
        self.sqs_calls = 0
        #: The turn's deferred work (its SendMessageBatch), run after the timer as the extension would.
        self.deferred: list[Any] = []
        self.after_response_ms: list[float] = []

    async def open(self) -> None:
        import boto3

        from core.aws import fail_fast_config
        from core.character import load_character_dict
        from core.db.pool import create_pool
        from core.db.postgres import PostgresAdapter
        from core.deployment.plugins import built_in_plugins
        from core.embeddings.queue import EmbeddingQueue
        from core.model_providers.scripted import ScriptedModels
        from core.orchestrator import Orchestrator
        from core.settings import Settings

        sqs = boto3.client("sqs", endpoint_url=self.sqs_endpoint, config=fail_fast_config(1.0))
        sqs.meta.events.register("before-call.sqs.*", self._count_sqs)
        queue = EmbeddingQueue(sqs, self.queue_urls, budget_s=1.0, after_response=self.deferred.append)
        self.pool = create_pool(Settings(database_url=self.url))
        await self.pool.open()
        models = ScriptedModels(fixed_reply=REPLY)
        self.orchestrator = Orchestrator(
            PostgresAdapter(self.pool), embedding_queue=queue, plugins=[*built_in_plugins(), models.plugin()]
        )
        await self.orchestrator.add_agents([load_character_dict({"name": "Bench", "bio": ["A benchmark agent."]})])

    def _count_sqs(self, **_: Any) -> None:
        self.sqs_calls += 1

    async def close(self) -> None:
        await self.pool.close()

    async def connected_room(self) -> Any:
        """A DM room with its sender connected and no message yet (its id)."""
        from core.orchestrator import IncomingMessage
        from core.types import ChannelType
        from core.uuid import create_unique_uuid

        runtime = self.orchestrator.runtime("Bench")
        room = uuid4()
        user = IncomingMessage(text="-").entity_id or create_unique_uuid(runtime.agent_id, "api-user")
        await runtime.ensure_connection(
            entity_id=create_unique_uuid(runtime.agent_id, user),
            room_id=room,
            source="api",
            channel_type=ChannelType.DM,
        )
        return room

    async def turn(self, text: str, room: Any) -> float:
        """One timed turn (ms)."""
        from core.orchestrator import IncomingMessage

        t0 = time.perf_counter()
        result = await self.orchestrator.handle_message("Bench", IncomingMessage(text=text, room_id=room))
        elapsed = (time.perf_counter() - t0) * 1000
        assert result.did_respond
        self.run_after_response()
        return elapsed

    def run_after_response(self) -> None:
        """The deferred sends, after the response (timed apart: ``after_response_ms``)."""
        from functions.after_response import run_all

        t0 = time.perf_counter()
        work, self.deferred[:] = list(self.deferred), []
        run_all(work)
        self.after_response_ms.append((time.perf_counter() - t0) * 1000)

    async def fresh_turns(self, turns: int) -> list[float]:
        return [await self.turn("Hello, who are you?", await self.connected_room()) for _ in range(turns)]

    async def seeded_room(self, prior: int) -> Any:
        room = await self.connected_room()
        for i in range(prior // 2):  # each turn stores the message and its reply
            await self.turn(f"message {i}", room)
        return room


async def record_turns(ours: Ours, url: str, room: Any) -> tuple[RecordedTurn, RecordedTurn]:
    """One turn of ours recorded in a fresh room, one in ``room`` (for the floor: bench/_turn_floor.py)."""
    stable = await stable_ids(url)
    fresh_room = await ours.connected_room()
    with recording() as fresh:
        await ours.turn("Hello, who are you?", fresh_room)
    recorded = []
    for i in range(5):  # a reflecting turn (the p90) every few: keep a typical one, as the p50 is
        with recording() as prior:
            await ours.turn(f"recorded {i}", room)
        recorded.append(prior)
    return RecordedTurn(fresh, fresh_room, stable), RecordedTurn(min(recorded, key=len), room, stable)


async def statement_counts(url: str) -> dict[str, int]:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        rows = await (
            await conn.execute(
                "SELECT query, calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
                " WHERE d.datname = current_database() AND s.query NOT ILIKE '%pg_stat%'"
            )
        ).fetchall()
    return {query: calls for query, calls in rows}


def log_statements(before: dict[str, int], after: dict[str, int], turns: int) -> float:
    """Each statement's calls per turn, most frequent first (stderr); returns statements per turn."""
    calls = {q: n - before.get(q, 0) for q, n in after.items() if n > before.get(q, 0)}
    for query, n in sorted(calls.items(), key=lambda kv: -kv[1])[:25]:
        log(f"  {n / turns:5.2f}/turn  {' '.join(query.split())[:110]}")
    return sum(calls.values()) / turns


async def count_ours(ours: Ours, wire: Wire, room: Any, turns: int, stats_url: str) -> list[tuple[str, float, str]]:
    """Round trips, statements and SQS calls per turn, through the counting proxy (figures to emit)."""
    from core.memory.reflection import REFLECTION_INTERVAL
    from core.orchestrator import IncomingMessage

    stats_before = await statement_counts(stats_url)
    per_turn, sqs, sqs_after = [], [], []
    for i in range(turns):
        wire_before, sqs_before = wire.count(), ours.sqs_calls
        await ours.orchestrator.handle_message("Bench", IncomingMessage(text=f"counted {i}", room_id=room))
        per_turn.append(wire.count() - wire_before)
        sqs.append(ours.sqs_calls - sqs_before)
        ours.run_after_response()
        sqs_after.append(ours.sqs_calls - sqs_before - sqs[-1])
    statements = log_statements(stats_before, await statement_counts(stats_url), turns)
    log(f"  round trips of each turn: {per_turn}")
    log(f"  (reflection every {REFLECTION_INTERVAL.default} messages)")
    return [
        ("db_round_trips_per_turn", statistics.mean(per_turn), "round trips"),
        ("db_round_trips_per_turn_p50", statistics.median(per_turn), "round trips"),
        ("db_round_trips_per_turn_max", max(per_turn), "round trips"),
        ("sql_statements_per_turn", statements, "statements"),
        ("sqs_calls_on_reply_path_per_turn", statistics.mean(sqs), "calls"),
        ("sqs_calls_on_reply_path_max", max(sqs), "calls"),
        ("sqs_calls_after_response_per_turn", statistics.mean(sqs_after), "calls"),
    ]


async def run(turns: int) -> None:
    import boto3
    import psycopg

    from core.db.migrations import migrate
    from infra.local.sqs import create_embedding_queues

    log("starting embedded Postgres with pg_stat_statements, moto SQS and the counting proxy...")
    server, data_dir = start_postgres()
    server.create_database("bench")
    server.create_database("elizaos")
    url = server.database_url("bench")
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    wire = Wire(next(data_dir.glob(".s.PGSQL.*[0-9]")))
    moto, endpoint = start_moto()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    queue_urls = create_embedding_queues(boto3.client("sqs", endpoint_url=endpoint))
    try:
        await measure(turns, url, server.database_url("elizaos"), wire, endpoint, queue_urls)
    finally:
        wire.stop()
        moto.terminate()
        server.stop()


async def measure(turns: int, url: str, elizaos_url: str, wire: Wire, endpoint: str, queues: dict[str, str]) -> None:
    ours = Ours(url, endpoint, queues)
    await ours.open()
    log("ours: warming up, then fresh rooms and a room with 200 prior messages...")
    with metrics_to_devnull():
        await ours.fresh_turns(20)
        fresh = await ours.fresh_turns(turns)
        room = await ours.seeded_room(PRIOR)
        prior = [await ours.turn(f"turn {i}", room) for i in range(turns)]
        fresh_turn, prior_turn = await record_turns(ours, url, room)
        targets = [await ours.connected_room() for _ in range(turns)]
        floor = {
            "fresh": (await floor_turns(url, [fresh_turn.into(target) for target in targets]))[0],
            "prior200": (await floor_turns(url, [prior_turn.into(room) for _ in range(turns)]))[0],
        }
    builds = []
    for _ in range(10_000):
        t0 = time.perf_counter_ns()
        ours.orchestrator.runtime("Bench")
        builds.append((time.perf_counter_ns() - t0) / 1000)
    rss = rss_mib()
    await ours.close()
    emit("ephemeral_build_p50", statistics.median(builds), "us")
    ours_times = {"fresh": fresh, "prior200": prior}
    for name, times in ours_times.items():
        emit(f"turn_p50_{name}", statistics.median(times), "ms")
        emit(f"turn_p90_{name}", pct(times, 90), "ms")
    for name, times in floor.items():
        emit(f"floor_turn_p50_{name}", statistics.median(times), "ms")
        emit(f"turn_over_floor_p50_{name}", statistics.median(ours_times[name]) - statistics.median(times), "ms")
    emit("after_response_p50", statistics.median(ours.after_response_ms), "ms")
    emit("rss_after_run", rss, "MiB")

    log("ours through the counting proxy...")
    counted = Ours(wire.url("bench"), endpoint, queues)
    await counted.open()
    with metrics_to_devnull():
        figures = await count_ours(counted, wire, await counted.seeded_room(10), COUNTED_TURNS, url)
    await counted.close()
    for figure in figures:
        emit(*figure)
    _, floor_round_trips = await floor_turns(
        wire.url("bench"), [prior_turn.into(room) for _ in range(COUNTED_TURNS)], wire.count
    )
    emit("floor_db_round_trips_per_turn", statistics.mean(floor_round_trips), "round trips")
    emit("floor_statements_per_turn", len(prior_turn.statements), "statements")

    if not elizaos_ready():
        return
    log("elizaOS 1.7.2: fresh rooms, a room with 200 prior messages, then through the counting proxy...")
    elizaos = {mode: elizaos_turns(elizaos_url, turns, PRIOR, mode)[0] for mode in ("fresh", "prior200")}
    _, elizaos_round_trips = elizaos_turns(wire.url("elizaos"), COUNTED_TURNS, 10, "prior200", wire)
    for name, times in elizaos.items():
        emit(f"elizaos_turn_p50_{name}", statistics.median(times), "ms")
        emit(f"elizaos_turn_p90_{name}", pct(times, 90), "ms")
    emit("elizaos_db_round_trips_per_turn", elizaos_round_trips, "round trips")
    emit("turn_speedup_vs_elizaos_fresh", statistics.median(elizaos["fresh"]) / statistics.median(fresh), "x")
    emit("turn_speedup_vs_elizaos_prior200", statistics.median(elizaos["prior200"]) / statistics.median(prior), "x")
    for name, times in floor.items():  # no runtime sending these statements through psycopg gets past this
        emit(f"turn_speedup_ceiling_{name}", statistics.median(elizaos[name]) / statistics.median(times), "x")


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
