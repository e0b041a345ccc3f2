"""Scoped vector search on the HNSW index: latency, recall against exact search, index build time.

Starts an embedded Postgres under /tmp, applies the migrations, loads ``--rows`` memories with
384-d vectors (clustered random unit vectors, fixed seed) spread over 50 agents and 1,000 rooms
(20 per agent) with COPY, builds the HNSW index, then runs top-10 searches through
``PostgresAdapter.search_memories`` filtered by agent, and by agent and room. Recall@10 is
measured against an exact search (same filter, ``enable_indexscan = off``) in the same run.

Baseline of the same run (unless ``--no-baseline``): the adapter's search at the fixed
``hnsw.ef_search`` it used before picking one per partition (64), on the same index, alternated
with the current search in ``--rounds`` rounds (medians): ``*_baseline`` figures, and
``*_over_baseline`` ratios. ``--agents 1`` puts every row in one agent (a big tenant: one
partition holds them all).

Prints progress to stderr and JSON lines ``{"metric", "value", "unit"}`` to stdout.

Run: ``.venv/bin/python bench/vector_search.py [--rows 200000] [--queries 200] [--agents 50 1]``
(``--rows 20000`` for a quick run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path
from pgvector.psycopg import register_vector

from core.db.postgres.base import PostgresBase

DIM = 384
AGENTS = 50
ROOMS_PER_AGENT = 20
CLUSTERS = 100
TOP_K = 10
#: Server memory for the run: RDS's default is a quarter of RAM; the wheel's 128 MB would make
#: this a benchmark of the OS page cache.
SERVER_SETTINGS = {"shared_buffers": "2GB", "effective_cache_size": "8GB"}
#: Session settings of the index build only (never the request path).
BUILD_SETTINGS = {"maintenance_work_mem": "2GB", "max_parallel_maintenance_workers": "1"}


@dataclass
class Dataset:
    """What was loaded: per memory, its agent and room index, and the vectors."""

    agent_ids: list[uuid.UUID]
    room_ids: list[list[uuid.UUID]]  # room_ids[agent][room]
    memory_agent: np.ndarray
    memory_room: np.ndarray
    vectors: np.ndarray
    centers: np.ndarray


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def clustered_vectors(rng: np.random.Generator, centers: np.ndarray, count: int, spread: float = 1.0) -> np.ndarray:
    """Unit vectors near random ``centers`` (noise of norm ~``spread``: cosine to centre ~0.7)."""
    noise = rng.standard_normal((count, centers.shape[1]), dtype=np.float32) * (spread / np.sqrt(centers.shape[1]))
    return _unit_rows(centers[rng.integers(len(centers), size=count)] + noise)


def generate(rows: int, seed: int, agents: int = AGENTS) -> Dataset:
    rng = np.random.default_rng(seed)
    centers = _unit_rows(rng.standard_normal((CLUSTERS, DIM), dtype=np.float32))
    agent_ids = [uuid.UUID(bytes=rng.bytes(16), version=4) for _ in range(agents)]
    room_ids = [[uuid.UUID(bytes=rng.bytes(16), version=4) for _ in range(ROOMS_PER_AGENT)] for _ in range(agents)]
    return Dataset(
        agent_ids=agent_ids,
        room_ids=room_ids,
        memory_agent=rng.integers(agents, size=rows),
        memory_room=rng.integers(ROOMS_PER_AGENT, size=rows),
        vectors=clustered_vectors(rng, centers, rows),
        centers=centers,
    )


def load(url: str, data: Dataset) -> None:
    """Agents, worlds, rooms, then memories and their vectors with binary COPY."""
    created = datetime.now(UTC)
    world_ids = [uuid.uuid5(a, "world") for a in data.agent_ids]
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO agents (id, name, character) VALUES (%s, %s, '{}')",
                [(a, f"agent-{i}") for i, a in enumerate(data.agent_ids)],
            )
            cur.executemany(
                "INSERT INTO worlds (agent_id, id, name) VALUES (%s, %s, 'w')",
                list(zip(data.agent_ids, world_ids, strict=True)),
            )
            cur.executemany(
                "INSERT INTO rooms (agent_id, id, world_id, source, type) VALUES (%s, %s, %s, 'bench', 'GROUP')",
                [(a, r, w) for a, rs, w in zip(data.agent_ids, data.room_ids, world_ids, strict=True) for r in rs],
            )
        ids = [uuid.UUID(int=i + 1, version=4) for i in range(len(data.vectors))]
        texts = [f"memory {i} about topic {i % 997}" for i in range(len(data.vectors))]
        hashes = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(
                "COPY memories (id, agent_id, type, room_id, world_id, entity_id, content,"
                " content_hash, created_at) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["uuid", "uuid", "text", "uuid", "uuid", "uuid", "jsonb", "text", "timestamptz"])
                for i, (a, r) in enumerate(zip(data.memory_agent, data.memory_room, strict=True)):
                    agent = data.agent_ids[a]
                    copy.write_row(
                        (
                            ids[i],
                            agent,
                            "messages",
                            data.room_ids[a][r],
                            world_ids[a],
                            agent,
                            psycopg.types.json.Jsonb({"text": texts[i]}),
                            hashes[i],
                            created,
                        )
                    )
            with cur.copy(
                "COPY embeddings (memory_id, agent_id, type, room_id, world_id, entity_id,"
                " content_hash, model, dim_384) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["uuid", "uuid", "text", "uuid", "uuid", "uuid", "text", "text", "vector"])
                for i, (a, r) in enumerate(zip(data.memory_agent, data.memory_room, strict=True)):
                    agent = data.agent_ids[a]
                    copy.write_row(
                        (
                            ids[i],
                            agent,
                            "messages",
                            data.room_ids[a][r],
                            world_ids[a],
                            agent,
                            hashes[i],
                            "bench",
                            data.vectors[i],
                        )
                    )


def start_server(data_dir: Path):
    """An embedded Postgres on ``data_dir`` with ``SERVER_SETTINGS`` (restarted to apply them)."""
    from infra.local.postgres import start_embedded_postgres, stop_embedded_postgres

    server = start_embedded_postgres(data_dir)
    with psycopg.connect(server.uri, autocommit=True) as conn:
        current = {k: conn.execute("SELECT current_setting(%s)", (k,)).fetchone()[0] for k in SERVER_SETTINGS}
        if current == SERVER_SETTINGS:
            return server
        for key, value in SERVER_SETTINGS.items():
            conn.execute(
                psycopg.sql.SQL("ALTER SYSTEM SET {} = {}").format(
                    psycopg.sql.Identifier(key), psycopg.sql.Literal(value)
                )
            )
    stop_embedded_postgres(data_dir)
    return start_embedded_postgres(data_dir)


def build_index(url: str, definition: str) -> float:
    """Create the HNSW index from its migration ``definition``; returns seconds taken."""
    with psycopg.connect(url, autocommit=True) as conn:
        for key, value in BUILD_SETTINGS.items():
            conn.execute(psycopg.sql.SQL("SET {} = {}").format(psycopg.sql.Identifier(key), psycopg.sql.Literal(value)))
        started = time.perf_counter()
        conn.execute(definition)
        took = time.perf_counter() - started
        conn.execute("VACUUM ANALYZE embeddings")
        conn.execute("VACUUM ANALYZE memories")
    return took


def index_size(url: str, name: str) -> float:
    """MiB of a partitioned index (the sum of its partitions' indexes)."""
    with psycopg.connect(url, autocommit=True) as conn:
        size = conn.execute(
            "SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0) / 1048576.0 FROM pg_inherits h"
            " JOIN pg_index i ON i.indexrelid = h.inhrelid WHERE h.inhparent = %s::regclass",
            (name,),
        ).fetchone()[0]
        return float(size)


def prepare(
    url: str, rows: int, seed: int, index_options: str | None, agents: int = AGENTS
) -> tuple[Dataset, float | None]:
    """Load the data unless already there (``--data-dir`` reuse); returns it and the build time.

    ``index_options`` (``"m = 8, ef_construction = 32"``) replaces the migration's HNSW
    storage parameters, to try others."""
    data = generate(rows, seed, agents)
    with psycopg.connect(url, autocommit=True) as conn:
        loaded = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        if loaded == rows:
            log(f"reusing {rows} loaded rows")
            return data, None
        if loaded:
            raise SystemExit(f"the database holds {loaded} rows, not {rows}: use a fresh --data-dir")
        definition = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'embeddings_dim_384_hnsw'"
        ).fetchone()[0]
        # Loading into an empty index inserts row by row; building once after the load is faster.
        conn.execute("DROP INDEX embeddings_dim_384_hnsw")
    # pg_indexes shows a partitioned index as "ON ONLY" (the parent alone): build it everywhere.
    definition = definition.replace(" ON ONLY ", " ON ")
    if index_options:
        definition = re.sub(r"\s+WITH \(.*\)$", "", definition) + f" WITH ({index_options})"
    log(f"index: {definition}")
    started = time.perf_counter()
    load(url, data)
    log(f"loaded {rows} memories in {time.perf_counter() - started:.1f} s; building the HNSW index...")
    took = build_index(url, definition)
    log(f"index built in {took:.1f} s")
    return data, took


def prewarm(url: str) -> int:
    """Load the vectors, their indexes and the memories into shared buffers; returns pages read.

    Steady state of a serving database: its hot index is in memory. Without this, a run on a
    restarted server (``--data-dir`` reuse) measures first reads from the OS page cache.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        return conn.execute(
            "SELECT coalesce(sum(pg_prewarm(c.oid)), 0) FROM pg_class c"
            " WHERE c.relkind IN ('r', 'i') AND c.relnamespace = 'public'::regnamespace"
            "   AND (c.relname LIKE 'embeddings%%' OR c.relname LIKE 'memories%%')"
        ).fetchone()[0]


def exact_top_k(
    conn: psycopg.Connection, agent_id: uuid.UUID, query: np.ndarray, room_id: uuid.UUID | None
) -> list[uuid.UUID]:
    """Exact top-k (no HNSW: ``enable_indexscan = off`` forces a scan and a full sort)."""
    room = " AND room_id = %(room)s" if room_id else ""
    with conn.transaction():
        conn.execute("SET LOCAL enable_indexscan = off")
        rows = conn.execute(
            f"SELECT memory_id FROM embeddings WHERE agent_id = %(agent)s{room} ORDER BY dim_384 <=> %(q)s LIMIT %(k)s",
            {"agent": agent_id, "room": room_id, "q": query, "k": TOP_K},
        ).fetchall()
    return [r[0] for r in rows]


#: Exact top-k by (database, scope, seed, query index): computed once per run.
_EXACT: dict[tuple[str, str, int, int], list[uuid.UUID]] = {}


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


@contextlib.contextmanager
def baseline_search(ef_search: int):
    """The adapter's search as before ``hnsw.ef_search`` was picked per partition, for the
    block: the settings of ``PostgresBase._vector_search_settings`` with a fixed ``ef_search``."""
    from core.db.postgres import embeddings

    async def fixed_settings(self, query, params, agent_id):
        local = {**self._vector_search_settings(), "hnsw.ef_search": str(ef_search)}
        return await self._fetch_all(query, params, local=local)

    saved = embeddings.EmbeddingsMixin._fetch_searched
    embeddings.EmbeddingsMixin._fetch_searched = fixed_settings
    try:
        yield
    finally:
        embeddings.EmbeddingsMixin._fetch_searched = saved


def chosen_ef_search(url: str, agent_id: uuid.UUID) -> int:
    """The ``hnsw.ef_search`` the adapter's search settings pick for ``agent_id``'s partition."""
    from core.db.postgres.embeddings import _SEARCH_SETTINGS_LOOKUP, EmbeddingsMixin

    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute(
            _SEARCH_SETTINGS_LOOKUP,
            {
                "agent": agent_id,
                "ef": EmbeddingsMixin.hnsw_ef_search,
                "ef_rows": EmbeddingsMixin.hnsw_ef_search_rows,
                "ef_max": EmbeddingsMixin.hnsw_ef_search_max,
                "max_scan": str(EmbeddingsMixin.hnsw_max_scan_tuples),
            },
        )
        return int(conn.execute("SELECT current_setting('hnsw.ef_search')").fetchone()[0])


async def measure(
    url: str,
    data: Dataset,
    queries: int,
    seed: int,
    ef_search: int | None,
    scope: str,
    query_text: bool = False,
    baseline_ef: int | None = None,
) -> dict[str, float]:
    """Latency (through the adapter, as the runtime calls it) and recall@10 of one filter.

    The timed searches run back to back on a warm pooled connection (as in a warm Lambda
    container), after a few untimed ones; the exact searches for recall run afterwards, so
    their full scans do not flush the CPU caches between timed searches. ``ef_search``: a fixed
    value instead of the adapter's per-partition one; ``baseline_ef``: the pre-0009 search at
    that fixed value (``baseline_search``).
    """
    from core.db.pool import create_pool
    from core.db.postgres import PostgresAdapter
    from core.settings import Settings

    rng = np.random.default_rng(seed + 1)
    vectors = clustered_vectors(rng, data.centers, queries)
    agents = [data.agent_ids[a] for a in rng.integers(len(data.agent_ids), size=queries)]
    rooms = [
        data.room_ids[data.agent_ids.index(a)][r] if scope == "agent_room" else None
        for a, r in zip(agents, rng.integers(ROOMS_PER_AGENT, size=queries), strict=True)
    ]
    texts = [f"topic {int(t)}" if query_text else None for t in rng.integers(997, size=queries)]
    pool = create_pool(Settings(database_url=url, pool_max_size=1))
    await pool.open()
    adapter = PostgresAdapter(pool)
    if ef_search is not None:  # fixed: the partition's size is not looked at
        adapter.hnsw_ef_search = adapter.hnsw_ef_search_max = ef_search
        adapter.hnsw_ef_search_rows = 2**62
    latencies, found = [], []
    variant = baseline_search(baseline_ef) if baseline_ef is not None else contextlib.nullcontext()
    try:
        with variant:
            for i in range(min(20, queries)):  # warm-up: connection, catalog caches
                await adapter.search_memories(agents[i], vectors[i], room_id=rooms[i], query_text=texts[i])
            for i in range(queries):
                started = time.perf_counter()
                results = await adapter.search_memories(
                    agents[i], vectors[i], room_id=rooms[i], count=TOP_K, query_text=texts[i], match_threshold=-1.0
                )
                latencies.append((time.perf_counter() - started) * 1000)
                found.append({m.id for m in results})
    finally:
        await pool.close()
    recalls = []
    if not query_text:
        with psycopg.connect(url, autocommit=True) as conn:
            register_vector(conn)
            for i in range(queries):
                key = (url, scope, seed, i)  # the same queries in every variant and round
                if key not in _EXACT:
                    _EXACT[key] = exact_top_k(conn, agents[i], vectors[i], rooms[i])
                exact = _EXACT[key]
                recalls.append(len(found[i] & set(exact)) / len(exact))
    return {
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "recall": statistics.fmean(recalls) if recalls else float("nan"),
    }


def explain(url: str, data: Dataset, ef_search: int, room: bool) -> str:
    """The plan of one search, for the log: which index the filter used."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        register_vector(conn)
        conn.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', %s, true)",
            (str(ef_search),),
        )
        where = " AND room_id = %(room)s" if room else ""
        rows = conn.execute(
            f"EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) SELECT memory_id, dim_384 <=> %(q)s AS d FROM embeddings"
            f" WHERE agent_id = %(agent)s{where} ORDER BY dim_384 <=> %(q)s LIMIT 10",
            {"q": data.vectors[0], "agent": data.agent_ids[0], "room": data.room_ids[0][0]},
        ).fetchall()
    return "\n".join("    " + re.sub(r"'\[[^\]]*\]'", "'[...]'", r[0]) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="memories to load (20000 for a quick run)")
    parser.add_argument("--queries", type=int, default=200, help="searches per filter (>= 200 for p95)")
    parser.add_argument(
        "--ef-search",
        type=int,
        nargs="+",
        default=None,
        help="fixed hnsw.ef_search values to measure (default: what the adapter picks per partition)",
    )
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the same-run baseline (the fixed hnsw.ef_search of before)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds of every variant (medians)")
    parser.add_argument(
        "--index-options",
        default=None,
        help='HNSW storage parameters instead of the migration\'s, e.g. "m = 8, ef_construction = 32"',
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the server's data here and reuse it on the next run (default: a temporary dir)",
    )
    parser.add_argument(
        "--agents",
        type=int,
        nargs="+",
        default=[AGENTS, 1],
        help=f"agents the rows are spread over, one database per value (default: {AGENTS} and 1)",
    )
    args = parser.parse_args()
    from infra.local.postgres import stop_embedded_postgres

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-vector-", dir="/tmp")) / "data"
    log(f"starting embedded postgres on {data_dir}...")
    server = start_server(data_dir)
    try:
        emit("rows", args.rows, "memories")
        for agents in args.agents:
            scenario(server, args, agents)
    finally:
        stop_embedded_postgres(data_dir)
        if args.data_dir is None:
            shutil.rmtree(data_dir.parent, ignore_errors=True)


def scenario(server, args: argparse.Namespace, agents: int) -> None:
    """Load ``args.rows`` over ``agents`` agents in their own database, then measure every filter.

    Figures of the default spread (``AGENTS``) keep their names; others end in ``_<n>_agent(s)``.
    """
    from core.db.migrations import migrate

    tag = "" if agents == AGENTS else f"_{agents}_agent{'s' if agents > 1 else ''}"
    name = f"bench_{agents}_agents"
    server.create_database(name)  # no-op when it exists (--data-dir reuse)
    url = server.database_url(name)
    migrate(url)
    log(f"--- {args.rows} rows over {agents} agent(s)")
    data, build_s = prepare(url, args.rows, args.seed, args.index_options, agents)
    if build_s is not None:
        emit(f"hnsw_build{tag}", build_s, "s")
    emit(f"hnsw_index_size{tag}", index_size(url, "embeddings_dim_384_hnsw"), "MiB")
    log(f"prewarmed {prewarm(url)} pages")
    chosen = sorted({chosen_ef_search(url, a) for a in data.agent_ids})
    log(f"hnsw.ef_search picked per partition: {chosen}")
    emit(f"ef_search_picked_max{tag}", max(chosen), "candidates")
    for ef in args.ef_search or [None]:
        for scope in ("agent", "agent_room"):
            shown = ef if ef is not None else max(chosen)
            log(f"plan ({scope}, ef_search={shown}):\n{explain(url, data, shown, scope == 'agent_room')}")
            suffix = ("" if ef is None else f"_ef{ef}") + tag
            variants = {"": {"ef_search": ef}}
            if args.baseline and ef is None:
                # The baseline, measured in this run: every search at the adapter's base ef_search (its
                # fixed value before it was picked per partition), whatever the partition's size.
                variants["_baseline"] = {"ef_search": None, "baseline_ef": PostgresBase.hnsw_ef_search}
            # Alternated in rounds, so that a busy moment of the shared machine hits every variant.
            rounds: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
            for _ in range(args.rounds):
                for variant, options in variants.items():
                    rounds[variant].append(
                        asyncio.run(measure(url, data, args.queries, args.seed, scope=scope, **options))
                    )
            results = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in rounds.items()}
            for variant, result in results.items():
                log(
                    f"{scope}{variant} ef_search={shown}: p50 {result['p50']:.2f} ms, p95 {result['p95']:.2f} ms,"
                    f" recall@10 {result['recall']:.3f}"
                )
                emit(f"search_{scope}_p50{variant}{suffix}", result["p50"], "ms")
                emit(f"search_{scope}_p95{variant}{suffix}", result["p95"], "ms")
                emit(f"search_{scope}_recall_at_10{variant}{suffix}", result["recall"], "ratio")
            for variant in variants:
                if variant:
                    ratio = results[""]["p50"] / results[variant]["p50"]
                    emit(f"search_{scope}_p50_over{variant}{suffix}", ratio, "x")
    result = asyncio.run(measure(url, data, args.queries, args.seed, None, "agent", query_text=True))
    log(f"agent + text re-rank: p50 {result['p50']:.2f} ms, p95 {result['p95']:.2f} ms")
    emit(f"search_agent_rerank_p50{tag}", result["p50"], "ms")
    emit(f"search_agent_rerank_p95{tag}", result["p95"], "ms")


if __name__ == "__main__":
    main()
