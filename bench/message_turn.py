"""One DM message turn through the full pipeline: time, SQL statements, ephemeral build, memory.

Same conditions as the elizaOS 1.7.2 figures quoted in the runtime issue: an embedded
Postgres, a DM room with 200 prior messages, a zero-latency scripted model, a warm
process. Statements are counted by the server (``pg_stat_statements``), transactions by
``pg_stat_database``. Embedding requests are not sent (no SQS here): they cost no SQL.

Prints JSON lines: ephemeral build p50/p90 (µs) and its SQL, turn p50/p90 (ms), SQL
statements and transactions per turn, process RSS after warm-up, half-way and after the run
(MiB) and its growth over the second half (flat after warm-up: about 0),
and the ratio of elizaOS's turn time (55 ms) to ours.

Run: ``.venv/bin/python bench/message_turn.py [turns]`` (default 1000).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path

ELIZAOS_TURN_MS = 55.0  # elizaOS 1.7.2 on this kind of machine (issue "The runtime")
ELIZAOS_STATEMENTS_PER_TURN = 113
REPLY = "<response><thought>ok</thought><actions>REPLY</actions><text>Noted.</text></response>"


def rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def start_postgres():
    """An embedded Postgres with pg_stat_statements preloaded (needs a restart after the first start)."""
    from infra.local.postgres import start_embedded_postgres

    data_dir = Path(tempfile.mkdtemp(prefix="bench-turn-", dir="/tmp")) / "pg"
    server = start_embedded_postgres(data_dir)
    conf = data_dir / "postgresql.conf"
    conf.write_text(conf.read_text() + "\nshared_preload_libraries = 'pg_stat_statements'\n")
    server.stop()
    return start_embedded_postgres(data_dir)


async def sql_counters(conn) -> tuple[int, int]:
    row = await (
        await conn.execute(
            "SELECT (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            "         WHERE d.datname = current_database() AND s.query NOT ILIKE '%pg_stat%') AS statements,"
            " (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()) AS xacts"
        )
    ).fetchone()
    return int(row["statements"]), int(row["xacts"])


async def log_statements(conn, turns: int) -> None:
    """Each statement's calls per turn, most frequent first (stderr): where the round trips go."""
    rows = await (
        await conn.execute(
            "SELECT calls, query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = current_database() AND s.query NOT ILIKE '%pg_stat%' ORDER BY calls DESC LIMIT 15"
        )
    ).fetchall()
    for row in rows:
        log(f"  {row['calls'] / turns:5.2f}/turn  {' '.join(row['query'].split())[:110]}")


async def run(turns: int) -> None:
    import psycopg

    from core.bootstrap import plugin as bootstrap
    from core.character import load_character_dict
    from core.db.migrations import migrate
    from core.db.pool import create_pool
    from core.db.postgres import PostgresAdapter
    from core.model_providers.scripted import ScriptedModels
    from core.orchestrator import IncomingMessage, Orchestrator
    from core.settings import Settings
    from core.types import ModelType

    log("starting embedded Postgres with pg_stat_statements...")
    server = start_postgres()
    server.create_database("bench")
    url = server.database_url("bench")
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    models = ScriptedModels()
    pool = create_pool(Settings(database_url=url))
    await pool.open()
    orchestrator = Orchestrator(PostgresAdapter(pool), plugins=[bootstrap, models.plugin()])
    await orchestrator.add_agents([load_character_dict({"name": "Bench", "bio": ["A benchmark agent."]})])

    def script(n: int) -> None:
        models.script(ModelType.TEXT_LARGE, *([REPLY] * n))

    log("seeding the DM room with 200 prior messages...")
    script(100)
    first = await orchestrator.handle_message("Bench", IncomingMessage(text="message 0"))
    room = first.room_id
    for i in range(1, 100):
        await orchestrator.handle_message("Bench", IncomingMessage(text=f"message {i}", room_id=room))

    builds = []
    for _ in range(10_000):
        t0 = time.perf_counter_ns()
        orchestrator.runtime("Bench")
        builds.append((time.perf_counter_ns() - t0) / 1000)
    async with pool.connection() as conn:
        await conn.execute("SELECT pg_stat_statements_reset()")
        before = await sql_counters(conn)
    for _ in range(1000):
        orchestrator.runtime("Bench")
    async with pool.connection() as conn:
        after = await sql_counters(conn)
    emit("ephemeral_build_p50", statistics.median(builds), "us")
    emit("ephemeral_build_p90", statistics.quantiles(builds, n=10)[8], "us")
    emit("ephemeral_build_sql_statements", (after[0] - before[0]) / 1000, "statements")

    rss_warm = rss_mib()
    script(turns)
    times = []
    async with pool.connection() as conn:
        await conn.execute("SELECT pg_stat_statements_reset()")
        before = await sql_counters(conn)
    for i in range(turns):
        t0 = time.perf_counter()
        result = await orchestrator.handle_message("Bench", IncomingMessage(text=f"turn {i}", room_id=room))
        times.append((time.perf_counter() - t0) * 1000)
        assert result.did_respond
        models.calls.clear()  # the scripted model's call log is the test double's memory, not ours
        if i + 1 == turns // 2:
            rss_half = rss_mib()
        if (i + 1) % 200 == 0:
            log(f"  {i + 1}/{turns} turns, p50 so far {statistics.median(times):.2f} ms, RSS {rss_mib():.0f} MiB")
    async with pool.connection() as conn:
        after = await sql_counters(conn)
        await log_statements(conn, turns)
    # The counting queries themselves: one statement and one transaction each side.
    statements = (after[0] - before[0] - 1) / turns
    transactions = (after[1] - before[1] - 2) / turns
    p50 = statistics.median(times)
    emit("turn_p50", p50, "ms")
    emit("turn_p90", statistics.quantiles(times, n=10)[8], "ms")
    emit("turn_speedup_vs_elizaos", ELIZAOS_TURN_MS / p50, "x")
    emit("sql_statements_per_turn", statements, "statements")
    emit("sql_statements_ratio_vs_elizaos", ELIZAOS_STATEMENTS_PER_TURN / statements, "x")
    emit("transactions_per_turn", transactions, "transactions")
    emit("rss_after_warmup", rss_warm, "MiB")
    emit(f"rss_after_{turns // 2}_turns", rss_half, "MiB")
    emit(f"rss_after_{turns}_turns", rss_mib(), "MiB")
    emit("rss_growth_second_half", rss_mib() - rss_half, "MiB")
    await pool.close()
    server.stop()


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
