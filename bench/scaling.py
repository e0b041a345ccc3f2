"""The measured inputs of the capacity model in docs/scaling.md, each beside its baseline from the same run.

* Postgres work per message turn (DM room with history, fixed-reply scripted model, the
  worker's vector write included): statements and server execution time per turn from
  ``pg_stat_statements``, and the CPU the Postgres processes used per turn (``/proc``), beside
  the CPU they use idle for the same wall time (the baseline: background workers, stats).
* A turn's wall time in the function (the Lambda duration the concurrency model multiplies
  by the message rate), beside one ``SELECT 1`` round trip (the baseline).
* HNSW memory per million 384-d vectors: the index's size over its rows, beside the heap's
  size over the same rows (the vectors themselves), from ``VECTORS`` vectors.

Prints JSON lines ``{"metric", "value", "unit"}``; progress on stderr.
Run: ``.venv/bin/python bench/scaling.py [turns] [vectors]`` (defaults 300 and 20000).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path

# Model usage metrics (EMF on stdout) would mix with the figures: this process emits none.
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
REPLY = "Noted, thank you."
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def start_postgres() -> Any:
    """An embedded Postgres with pg_stat_statements preloaded (needs a restart after the first start)."""
    from infra.local.postgres import start_embedded_postgres

    data_dir = Path(tempfile.mkdtemp(prefix="bench-scaling-", dir="/tmp")) / "pg"
    server = start_embedded_postgres(data_dir)
    conf = data_dir / "postgresql.conf"
    conf.write_text(conf.read_text() + "\nshared_preload_libraries = 'pg_stat_statements'\n")
    server.stop()
    return start_embedded_postgres(data_dir), data_dir


def postgres_cpu_s(data_dir: Path) -> float:
    """CPU seconds (user + system) used so far by the postmaster and all its children."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == postmaster or ppid == postmaster:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


async def server_counters(conn: Any) -> tuple[int, float]:
    """Statements and their total execution time (ms) in this database, pg_stat_statements' own left out."""
    row = await (
        await conn.execute(
            "SELECT coalesce(sum(calls), 0) AS calls, coalesce(sum(total_exec_time), 0) AS ms"
            " FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = current_database() AND s.query NOT ILIKE '%pg_stat%'"
        )
    ).fetchone()
    return int(row["calls"]), float(row["ms"])


async def measure_turns(url: str, data_dir: Path, turns: int) -> None:
    from core.bootstrap import plugin as bootstrap
    from core.character import load_character_dict
    from core.db.pool import create_pool
    from core.db.postgres import PostgresAdapter
    from core.embeddings.request import EmbeddingRequest
    from core.embeddings.worker import EmbeddingWorker
    from core.model_providers.scripted import ScriptedModels
    from core.orchestrator import IncomingMessage, Orchestrator
    from core.settings import Settings
    from core.types.memory import content_hash

    models = ScriptedModels(fixed_reply=REPLY)
    pool = create_pool(Settings(database_url=url))
    await pool.open()
    adapter = PostgresAdapter(pool)
    orchestrator = Orchestrator(adapter, plugins=[bootstrap, models.plugin()])
    await orchestrator.add_agents([load_character_dict({"name": "Bench", "bio": ["A benchmark agent."]})])

    async def embed(texts: list[str]) -> list[list[float]]:
        return [models.vector(t) for t in texts]

    worker = EmbeddingWorker(adapter, embed, "scripted")

    async def turn(text: str, room: Any) -> Any:
        result = await orchestrator.handle_message("Bench", IncomingMessage(text=text, room_id=room))
        agent = orchestrator.get_agent("Bench").agent_id
        written = [(result.message_id, text), *((r.id, r.text) for r in result.responses)]
        await worker.process(
            [EmbeddingRequest(memory_id=i, agent_id=agent, content_hash=content_hash(t)) for i, t in written]
        )
        return result

    log("seeding a DM room with 100 turns...")
    room = (await turn("message 0", None)).room_id
    for i in range(1, 100):
        await turn(f"message {i}", room)

    async with pool.connection() as conn:
        t0 = time.perf_counter()
        for _ in range(200):
            await conn.execute("SELECT 1")
        round_trip_ms = (time.perf_counter() - t0) * 1000 / 200

    idle_wall = 3.0
    cpu0 = postgres_cpu_s(data_dir)
    await asyncio.sleep(idle_wall)
    idle_cpu_per_s = (postgres_cpu_s(data_dir) - cpu0) / idle_wall

    async with pool.connection() as conn:
        await conn.execute("SELECT pg_stat_statements_reset()")
        before = await server_counters(conn)
    cpu0, wall0 = postgres_cpu_s(data_dir), time.perf_counter()
    times = []
    for i in range(turns):
        t0 = time.perf_counter()
        await turn(f"turn {i}", room)
        times.append((time.perf_counter() - t0) * 1000)
    wall = time.perf_counter() - wall0
    cpu = postgres_cpu_s(data_dir) - cpu0
    async with pool.connection() as conn:
        after = await server_counters(conn)
    await pool.close()

    emit("turn_with_vector_write_p50", statistics.median(times), "ms")
    emit("baseline_select1_round_trip", round_trip_ms, "ms")
    emit("pg_statements_per_turn", (after[0] - before[0] - 1) / turns, "statements")
    emit("pg_exec_time_per_turn", (after[1] - before[1]) / turns, "ms")
    emit("pg_cpu_per_turn", cpu * 1000 / turns, "ms")
    emit("baseline_pg_cpu_idle_same_wall_per_turn", idle_cpu_per_s * wall * 1000 / turns, "ms")


async def measure_hnsw(url: str, vectors: int) -> None:
    import psycopg

    log(f"building an HNSW index over {vectors} random 384-d vectors...")
    rng = random.Random(7)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_vectors (id uuid PRIMARY KEY, v vector(384))")
        async with conn.cursor() as cur, cur.copy("COPY bench_vectors (id, v) FROM STDIN") as copy:
            for _ in range(vectors):
                vector = "[" + ",".join(f"{rng.gauss(0, 1):.5f}" for _ in range(384)) + "]"
                await copy.write_row((uuid.uuid4(), vector))
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute("CREATE INDEX bench_vectors_hnsw ON bench_vectors USING hnsw (v vector_cosine_ops)")
        row = await (
            await conn.execute(
                "SELECT pg_relation_size('bench_vectors_hnsw') AS idx, pg_relation_size('bench_vectors') AS heap"
            )
        ).fetchone()
    emit("hnsw_384d_bytes_per_million", row[0] / vectors * 1e6 / 2**30, "GiB")
    emit("baseline_heap_384d_bytes_per_million", row[1] / vectors * 1e6 / 2**30, "GiB")


async def run(turns: int, vectors: int) -> None:
    import psycopg

    from core.db.migrations import migrate

    log("starting embedded Postgres with pg_stat_statements...")
    server, data_dir = start_postgres()
    try:
        server.create_database("bench")
        url = server.database_url("bench")
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await measure_turns(url, data_dir, turns)
        await measure_hnsw(url, vectors)
    finally:
        server.stop()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(run(*(args + [300, 20_000][len(args) :])))
