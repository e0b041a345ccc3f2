"""core.db.pool: one pool per process with Lambda defaults, connections checked on checkout, no
server-side prepared statements and no session state (RDS Proxy / PgBouncer), and only the
container's shutdown closes it."""

from __future__ import annotations

import ast
import asyncio
import gc
import logging
import re
import tempfile
import time
import uuid
import weakref
from pathlib import Path

import psycopg
import pytest
from pgvector import HalfVector, Vector
from pgvector.psycopg import register_vector_async
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.db.pipelined import pipelined
from core.db.pool import VectorTypes, create_pool
from core.db.postgres import PostgresAdapter
from core.db.retry import RetryPolicy
from core.errors import TransientDatabaseError
from core.model_providers.scripted import ScriptedModels
from core.orchestrator import IncomingMessage, Orchestrator
from core.settings import Settings
from core.types import ModelType

ROOT = Path(__file__).resolve().parents[3]
CODE_DIRS = ("core", "functions", "infra")
REPLY = "<response><actions>REPLY</actions><text>ok</text></response>"


@pytest.fixture
async def lambda_pool(database_url):
    """A pool with the Lambda defaults (min 0, max 1), as the container builds it."""
    pool = create_pool(Settings(database_url=database_url))
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()


async def _backend_pid(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        return (await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone())["pid"]


async def _round_trips(conn: psycopg.AsyncConnection, work) -> int:
    """Statements ``work(conn)`` sends, read from libpq's protocol trace (a Sync or a simple Query each)."""
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        try:
            await work(conn)
        finally:
            conn.pgconn.untrace()
        trace.seek(0)
        sent = [line.split("\t")[3].strip() for line in trace if "\tF\t" in line]
    return sum(message in ("Sync", "Query") for message in sent)


async def _terminate(database_url: str, pid: int) -> None:
    """What happens to an idle pooled connection while the container is frozen (idle timeout, proxy, failover)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as other:
        assert (await (await other.execute("SELECT pg_terminate_backend(%s)", (pid,))).fetchone())[0]
        for _ in range(100):
            if not await (await other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,))).fetchone():
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} still alive")


# -- configuration ------------------------------------------------------------------------------


def test_lambda_defaults(database_url):
    pool = create_pool(Settings.from_env({"DATABASE_URL": database_url}))
    assert (pool.min_size, pool.max_size) == (0, 1)
    assert pool.kwargs["prepare_threshold"] is None
    assert pool.kwargs["autocommit"] is True
    assert pool._check.__self__.after_s == 1.0  # idle connections are checked on checkout


def test_pool_sizes_come_from_the_environment(database_url):
    settings = Settings.from_env(
        {"DATABASE_URL": database_url, "DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": "4", "DB_POOL_TIMEOUT_S": "2.5"}
    )
    pool = create_pool(settings)
    assert (pool.min_size, pool.max_size, pool.timeout) == (1, 4, 2.5)


# -- frozen containers --------------------------------------------------------------------------


async def test_a_connection_killed_while_frozen_is_replaced_transparently(database_url, caplog):
    caplog.set_level(logging.WARNING, logger="core.db.retry")
    pool = create_pool(Settings(database_url=database_url, pool_check_after_s=0.05))
    await pool.open()
    try:
        await _killed_while_frozen_then_used(pool, database_url, caplog)
    finally:
        await pool.close()


async def _killed_while_frozen_then_used(lambda_pool, database_url, caplog):
    # attempts=1: a success cannot come from a retry, only from the pool's check on checkout.
    adapter = PostgresAdapter(lambda_pool, retry_policy=RetryPolicy(attempts=1))
    assert isinstance(await adapter.get_agents(), list)
    killed = await _backend_pid(lambda_pool)
    await _terminate(database_url, killed)
    await asyncio.sleep(0.1)  # "frozen" for longer than pool_check_after_s

    started = time.perf_counter()
    agents = await adapter.get_agents()
    recovery_ms = (time.perf_counter() - started) * 1000
    print(f"\nnext call after pg_terminate_backend: {recovery_ms:.1f} ms")

    assert isinstance(agents, list)
    assert await _backend_pid(lambda_pool) != killed
    assert caplog.records == []
    assert recovery_ms < 2000


async def test_pgvector_types_cost_one_statement_per_pool_not_twelve_per_connection(database_url):
    async def connect() -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(database_url, autocommit=True)

    baseline, first, second = await connect(), await connect(), await connect()
    try:
        assert await _round_trips(baseline, register_vector_async) == 12  # pgvector's own: 4 types x 3
        types = VectorTypes()
        assert await _round_trips(first, types.register) == 1
        assert await _round_trips(second, types.register) == 0
        for conn in (first, second):  # both types load and dump on both connections
            row = await (
                await conn.execute(
                    "SELECT %s::vector AS v, %s::halfvec AS h", (Vector([1.0, 2.0]), HalfVector([0.5, 1.5]))
                )
            ).fetchone()
            assert row[0] == Vector([1.0, 2.0]) and row[1] == HalfVector([0.5, 1.5])
    finally:
        for conn in (baseline, first, second):
            await conn.close()


async def test_a_database_without_pgvector_is_named_and_looked_up_again_once_migrated(postgres):
    postgres.create_database("pool_without_vector")
    url = postgres.database_url("pool_without_vector")
    types = VectorTypes()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        with pytest.raises(psycopg.ProgrammingError, match="vector type not found"):
            await types.register(conn)
        await conn.execute("CREATE EXTENSION vector")
        await types.register(conn)  # the failed lookup was not kept
        row = await (await conn.execute("SELECT %s::vector", (Vector([3.0]),))).fetchone()
        assert row[0] == Vector([3.0])


async def test_a_new_connection_is_not_checked_on_its_first_checkout(database_url, monkeypatch):
    checks = []
    real_check = AsyncConnectionPool.check_connection

    async def counted(conn):
        checks.append(conn)
        await real_check(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", staticmethod(counted))
    pool = create_pool(Settings(database_url=database_url, pool_check_after_s=0))  # 0: check every reuse
    await pool.open()
    try:
        first = await _backend_pid(pool)  # a connection made for this checkout: no check round trip
        assert checks == []
        assert await _backend_pid(pool) == first  # reused: checked
        assert len(checks) == 1
    finally:
        await pool.close()


async def test_busy_connections_skip_the_check(database_url):
    """Checkouts milliseconds apart (one turn) pay no check round trip: a connection killed
    in between reaches the caller, as a lost connection (the retry layer's job then)."""
    pool = create_pool(Settings(database_url=database_url, pool_check_after_s=60))
    await pool.open()
    try:
        adapter = PostgresAdapter(pool, retry_policy=RetryPolicy(attempts=1))
        await adapter.get_agents()
        await _terminate(database_url, await _backend_pid(pool))
        with pytest.raises(TransientDatabaseError) as raised:
            await adapter.get_agents()
        assert raised.value.outcome_unknown
    finally:
        await pool.close()


async def test_without_the_check_the_killed_connection_would_reach_the_caller(database_url, lambda_pool):
    # The control for the test above: same pool settings but no check on checkout.
    unchecked = AsyncConnectionPool(
        database_url, min_size=0, max_size=1, open=False, kwargs={**lambda_pool.kwargs, "row_factory": dict_row}
    )
    await unchecked.open()
    try:
        adapter = PostgresAdapter(unchecked, retry_policy=RetryPolicy(attempts=1))
        await adapter.get_agents()
        await _terminate(database_url, await _backend_pid(unchecked))
        with pytest.raises(TransientDatabaseError) as raised:
            await adapter.get_agents()
        assert raised.value.outcome_unknown  # classified as a lost connection
    finally:
        await unchecked.close()


async def _read_in_block(pool, query: str):
    async with pool.connection() as conn:  # the block's pinned connection
        return await (await conn.execute(query)).fetchall()


@pytest.mark.parametrize("raised_first", ["the flushing read's", "a waiting read's"])
async def test_reads_of_a_pipelined_block_whose_connection_dies_fail_as_transient(database_url, raised_first):
    # One read flushes and sees the connection die; the others find no result for their
    # statements. Whichever error leaves the block first, the block says "connection lost"
    # (a 503 the client retries), never a 500.
    pool = create_pool(Settings(database_url=database_url, pool_check_after_s=60))
    await pool.open()
    try:
        pid = await _backend_pid(pool)
        with pytest.raises(TransientDatabaseError) as raised:
            async with pipelined(pool):
                reads = [
                    asyncio.ensure_future(_read_in_block(pool, "SELECT pg_sleep(1)")),
                    asyncio.ensure_future(_read_in_block(pool, "SELECT 1")),
                ]
                await asyncio.sleep(0.2)
                await _terminate(database_url, pid)
                errors = [e for e in await asyncio.gather(*reads, return_exceptions=True) if isinstance(e, Exception)]
                flushing = [e for e in errors if isinstance(e, psycopg.OperationalError)]
                waiting = [e for e in errors if not isinstance(e, psycopg.OperationalError)]
                assert flushing and waiting, errors
                raise (flushing if raised_first == "the flushing read's" else waiting)[0]
        assert raised.value.operation == "compose_state"  # reads only: nothing whose outcome is unknown
        assert await _backend_pid(pool) != pid  # the dead connection was dropped: the next one works
    finally:
        await pool.close()


# -- RDS Proxy / PgBouncer ----------------------------------------------------------------------


async def test_no_server_side_prepared_statements(lambda_pool, database_url):
    adapter = PostgresAdapter(lambda_pool)
    pid = await _backend_pid(lambda_pool)
    for _ in range(10):  # psycopg would prepare from the 5th run with its default threshold
        await adapter.get_agents()
        await adapter.get_entity_names(uuid.uuid4(), [uuid.uuid4()])
    async with lambda_pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT pg_backend_pid() AS pid, (SELECT count(*) FROM pg_prepared_statements) AS prepared"
            )
        ).fetchone()
    assert row["pid"] == pid  # the same connection served every query
    assert row["prepared"] == 0

    # Control: with a threshold, the same query is prepared on the server (the probe sees it).
    async with await psycopg.AsyncConnection.connect(database_url, prepare_threshold=0) as eager:
        for _ in range(2):
            await eager.execute("SELECT id FROM agents WHERE enabled ORDER BY name")
        assert (await (await eager.execute("SELECT count(*) FROM pg_prepared_statements")).fetchone())[0] > 0


# SET [SESSION] name {= | TO} ... — not SET LOCAL (one transaction), SET TRANSACTION or SET CONSTRAINTS.
_SESSION_SET = re.compile(
    r"^\s*SET\s+(?:SESSION\s+)?(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)[\w.\"]+\s*(?:=|TO\b)", re.IGNORECASE
)
_SESSION_SET_CONFIG = re.compile(r"set_config\s*\([^)]*,\s*false\s*\)", re.IGNORECASE)


def _session_sets(sql: str) -> list[str]:
    """Statements of ``sql`` that change session state (``SET x``, ``SET SESSION x``, ``set_config(.., false)``)."""
    sql = re.sub(r"--[^\n]*", "", sql)
    found = [s.strip() for s in sql.split(";") if _SESSION_SET.match(s)]
    return found + _SESSION_SET_CONFIG.findall(sql)


def _python_strings(path: Path) -> list[str]:
    """Every string literal of a module but its docstrings (prose, not SQL)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    strings = []
    for node in ast.walk(tree):
        if id(node) in docstrings:
            continue
        if isinstance(node, ast.JoinedStr):  # f"UPDATE {t} SET ...": judge the whole statement
            strings.append("".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.append(node.value)
    return strings


def test_the_probe_finds_session_sets():
    assert _session_sets("SET search_path = x")
    assert _session_sets("BEGIN; SET SESSION statement_timeout = 0")
    assert _session_sets("set hnsw.ef_search to 100")
    assert _session_sets("SELECT set_config('hnsw.ef_search', '100', false)")
    assert not _session_sets("SET LOCAL hnsw.ef_search = 100")
    assert not _session_sets("SELECT set_config('hnsw.ef_search', '100', true)")
    assert not _session_sets("UPDATE agents\nSET name = %s WHERE id = %s")
    assert not _session_sets("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = excluded.v")


def test_no_session_level_set_anywhere_in_the_code():
    offenders = []
    for folder in CODE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            offenders += [(name, s) for text in _python_strings(path) for s in _session_sets(text)]
        for path in sorted((ROOT / folder).rglob("*.sql")):
            offenders += [(str(path.relative_to(ROOT)), s) for s in _session_sets(path.read_text())]
    assert offenders == [], "session-level SET pins RDS Proxy connections; use SET LOCAL in a transaction"


# -- who closes the pool ------------------------------------------------------------------------


def _pool_closers() -> list[tuple[str, str]]:
    """(file, enclosing function) of every ``<...pool>.close()`` / ``.aclose()`` call in the code."""
    found = []
    for folder in CODE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
                for call in [n for n in ast.walk(func) if isinstance(n, ast.Call)]:
                    target = call.func
                    if (
                        isinstance(target, ast.Attribute)
                        and target.attr in {"close", "aclose"}
                        and ast.unparse(target.value).lower().endswith("pool")
                    ):
                        found.append((str(path.relative_to(ROOT)), func.name))
    return sorted(set(found))


def test_only_the_container_closes_the_pool():
    # At process shutdown, and before a SnapStart snapshot (after which it opens a new one).
    assert _pool_closers() == [
        ("core/deployment/container.py", "before_snapshot"),
        ("core/deployment/container.py", "close"),
    ]


async def test_many_runtimes_built_and_dropped_leave_the_pool_open(lambda_pool):
    scripted = ScriptedModels()
    adapter = PostgresAdapter(lambda_pool)
    orchestrator = Orchestrator(adapter, plugins=[bootstrap, scripted.plugin()])
    name = f"Pooled-{uuid.uuid4().hex[:8]}"
    await orchestrator.add_agents([load_character_dict({"name": name, "bio": ["A test agent."]})])
    dropped = []
    for i in range(200):
        runtime = orchestrator.runtime(name)
        if i % 20 == 0:  # some of them do a whole turn through the pool
            scripted.script(ModelType.TEXT_LARGE, REPLY)
            result = await orchestrator.handle_message(runtime, IncomingMessage(text=f"hello {i}"))
            assert result.did_respond
        dropped.append(weakref.ref(runtime))
        del runtime
    gc.collect()
    assert all(ref() is None for ref in dropped)  # really dropped
    assert not lambda_pool.closed
    history = await adapter.get_memories(orchestrator.get_agent(name).agent_id, result.room_id, "messages", 50)
    assert len(history) == 20  # 10 turns, each a message and its reply, through the same open pool


def test_container_close_closes_the_pool(database_url):
    from core.deployment.container import Container

    container = Container(Settings(database_url=database_url, model_plugins=["core.model_providers.scripted"]))
    orchestrator = Orchestrator(container.adapter, plugins=[bootstrap, *container.model_plugins])
    name = f"Contained-{uuid.uuid4().hex[:8]}"
    container.run(orchestrator.add_agents([load_character_dict({"name": name, "bio": ["x"]})]))
    for _ in range(50):
        orchestrator.runtime(name)
    gc.collect()
    assert not container.pool.closed
    assert container.run(container.adapter.get_agents())
    container.close()
    assert container.pool.closed
