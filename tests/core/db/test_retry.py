"""core.db.retry: real transient failures (terminated backends, serialization failures, deadlocks)
against the real adapter, and the idempotency rule that decides what a lost connection may retry."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.db.retry import (
    Failure,
    RetryPolicy,
    call_with_retries,
    classify,
    idempotent,
    is_idempotent,
)
from core.errors import ConfigurationError, DatabaseError, EmbeddingDimensionError, TransientDatabaseError
from core.settings import Settings
from core.types import ChannelType, Content, Entity, Memory, Room, World

RETRY_LOGGER = "core.db.retry"
NO_WAIT = RetryPolicy(attempts=3, base_delay_ms=0, max_delay_ms=0)


@pytest.fixture(autouse=True)
def _capture_retries(caplog):
    caplog.set_level(logging.WARNING, logger=RETRY_LOGGER)


def _retries(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == RETRY_LOGGER]


async def _room(adapter, agent_id) -> tuple[uuid.UUID, uuid.UUID]:
    room_id, entity_id, world_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await adapter.ensure_connection(
        Entity(id=entity_id, agent_id=agent_id, names=["alice"]),
        Room(id=room_id, agent_id=agent_id, type=ChannelType.GROUP, world_id=world_id),
        World(id=world_id, agent_id=agent_id, name="w"),
    )
    return room_id, entity_id


async def _connect(database_url: str, *, autocommit: bool = True) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(database_url, autocommit=autocommit)


async def _lock_waiter(watcher: psycopg.AsyncConnection, statement: str, *, not_pid: int | None = None) -> int:
    """Pid of the backend waiting on a lock while running ``statement`` (polls up to 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = await (
            await watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                " AND query LIKE %s AND pid <> coalesce(%s, 0)",
                (f"%{statement}%", not_pid),
            )
        ).fetchone()
        if row:
            return row[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"nobody waits on a lock in {statement!r}")


async def _terminate(watcher: psycopg.AsyncConnection, pid: int) -> None:
    assert (await (await watcher.execute("SELECT pg_terminate_backend(%s)", (pid,))).fetchone())[0]


# -- policy and classification ------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_jitter_stays_below_it():
    policy = RetryPolicy(attempts=5, base_delay_ms=50, max_delay_ms=300)
    assert [policy.backoff_ms(n) for n in (1, 2, 3, 4)] == [50, 100, 200, 300]
    delays = [policy.delay_s(3) for _ in range(200)]
    assert all(0 <= d <= 0.2 for d in delays)
    assert len(set(delays)) > 100  # jittered, not a fixed sleep


def test_policy_from_env():
    assert RetryPolicy.from_env({}) == RetryPolicy(attempts=3, base_delay_ms=50, max_delay_ms=1000)
    env = {"DB_RETRY_ATTEMPTS": "5", "DB_RETRY_BASE_DELAY_MS": "10", "DB_RETRY_MAX_DELAY_MS": "80"}
    assert RetryPolicy.from_env(env) == RetryPolicy(attempts=5, base_delay_ms=10, max_delay_ms=80)
    with pytest.raises(ConfigurationError, match="DB_RETRY_ATTEMPTS"):
        RetryPolicy.from_env({"DB_RETRY_ATTEMPTS": "three"})
    with pytest.raises(ConfigurationError, match="DB_RETRY_ATTEMPTS"):
        RetryPolicy.from_env({"DB_RETRY_ATTEMPTS": "0"})
    with pytest.raises(ConfigurationError, match="DB_RETRY_MAX_DELAY_MS"):
        RetryPolicy.from_env({"DB_RETRY_BASE_DELAY_MS": "500", "DB_RETRY_MAX_DELAY_MS": "100"})


def test_the_adapter_reads_its_policy_from_the_environment(database_url, monkeypatch):
    monkeypatch.setenv("DB_RETRY_ATTEMPTS", "7")
    adapter = PostgresAdapter(create_pool(Settings(database_url=database_url)), embedding_dimension=384)
    assert adapter.retry_policy.attempts == 7
    assert adapter.embedding_dimension == 384
    explicit = PostgresAdapter(adapter.pool, retry_policy=RetryPolicy(attempts=1))
    assert explicit.retry_policy.attempts == 1


def test_classification_of_sqlstates():
    assert classify(psycopg.errors.SerializationFailure()) is Failure.ROLLED_BACK
    assert classify(psycopg.errors.DeadlockDetected()) is Failure.ROLLED_BACK
    assert classify(psycopg.errors.AdminShutdown()) is Failure.OUTCOME_UNKNOWN
    assert classify(psycopg.OperationalError("server closed the connection unexpectedly")) is Failure.OUTCOME_UNKNOWN
    assert classify(psycopg.errors.QueryCanceled()) is Failure.PERMANENT  # a statement timeout is not transient
    assert classify(psycopg.errors.UniqueViolation()) is Failure.PERMANENT
    assert classify(ValueError()) is Failure.PERMANENT


def test_every_public_async_method_of_the_adapter_retries():
    wrapped = {
        name
        for name, member in inspect.getmembers(PostgresAdapter, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }
    assert {"create_memories", "get_memories", "ensure_connection", "upsert_agents"} <= wrapped
    for name in wrapped:
        assert getattr(getattr(PostgresAdapter, name), "__retries_transient_errors__", False), name
    assert not hasattr(PostgresAdapter.check_dimension, "__retries_transient_errors__")  # sync: untouched


def test_only_reads_upserts_and_marked_methods_are_idempotent():
    assert is_idempotent(PostgresAdapter.get_memories)
    assert is_idempotent(PostgresAdapter.search_memories)
    assert is_idempotent(PostgresAdapter.upsert_agents)
    assert is_idempotent(PostgresAdapter.ensure_connection)
    assert is_idempotent(PostgresAdapter.list_memories) and is_idempotent(PostgresAdapter.is_room_participant)
    assert is_idempotent(PostgresAdapter.create_memories)  # keyed by id: ON CONFLICT (id) DO NOTHING
    assert not is_idempotent(PostgresAdapter.create_reply)  # its "superseded" check is not keyed by id
    assert not is_idempotent(PostgresAdapter.record_interaction)  # an increment

    @idempotent
    async def replace_thing() -> None: ...

    async def create_thing() -> None: ...

    assert is_idempotent(replace_thing) and not is_idempotent(create_thing)


# -- real failures -------------------------------------------------------------------------------


async def test_a_real_serialization_failure_is_retried(adapter, agent_id, database_url, caplog):
    runs = 0
    async with await _connect(database_url) as other:

        async def touch_agent(conflict_until: int) -> int:
            nonlocal runs
            runs += 1
            async with adapter.pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                await conn.execute("SELECT updated_at FROM agents WHERE id = %s", (agent_id,))  # snapshot taken
                if runs <= conflict_until:
                    await other.execute("UPDATE agents SET updated_at = now() WHERE id = %s", (agent_id,))
                await conn.execute("UPDATE agents SET updated_at = now() WHERE id = %s", (agent_id,))
            return runs

        # Rolled back for sure: retried even though the operation is not idempotent.
        got = await call_with_retries(
            lambda: touch_agent(1), operation="touch_agent", idempotent=False, policy=RetryPolicy(attempts=3)
        )
        assert got == 2
        assert len(_retries(caplog)) == 1 and "SerializationFailure (SQLSTATE 40001)" in _retries(caplog)[0]

        runs = 0
        with pytest.raises(TransientDatabaseError) as raised:
            await call_with_retries(
                lambda: touch_agent(99),
                operation="touch_agent",
                idempotent=False,
                policy=RetryPolicy(attempts=3, base_delay_ms=1, max_delay_ms=5),
            )
    assert runs == 3
    error = raised.value
    assert (error.sqlstate, error.attempts, error.outcome_unknown) == ("40001", 3, False)
    assert error.operation == "touch_agent"


async def test_a_real_deadlock_in_ensure_connection_is_retried(adapter, agent_id, database_url, caplog):
    _, entity_id = await _room(adapter, agent_id)
    new_room = uuid.uuid4()
    async with await _connect(database_url, autocommit=False) as blocker, await _connect(database_url) as watcher:
        # The blocker waits long before checking for deadlocks, so the adapter is always the victim.
        await blocker.execute("SET LOCAL deadlock_timeout = '30s'")
        await blocker.execute(
            "UPDATE entities SET metadata = metadata WHERE agent_id = %s AND id = %s", (agent_id, entity_id)
        )
        call = asyncio.create_task(
            adapter.ensure_connection(
                Entity(id=entity_id, agent_id=agent_id, names=["Bob"]), Room(id=new_room, agent_id=agent_id), None
            )
        )
        await _lock_waiter(watcher, "INSERT INTO entities")  # holds its new room, waits for the entity
        # Now the blocker wants that room: a cycle. Returns once the adapter's transaction is aborted.
        await blocker.execute(
            "INSERT INTO rooms (agent_id, id, source, type) VALUES (%s, %s, 'test', 'GROUP')", (agent_id, new_room)
        )
        await blocker.commit()
    await asyncio.wait_for(call, timeout=10)  # no error reaches the caller

    assert any("DeadlockDetected (SQLSTATE 40P01)" in m for m in _retries(caplog))
    names = await adapter.get_entity_names(agent_id, [entity_id])
    assert names  # the entity is still there
    async with adapter.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT e.names, (SELECT count(*) FROM participants p WHERE p.agent_id = e.agent_id"
                "  AND p.room_id = %s AND p.entity_id = e.id) AS joined"
                " FROM entities e WHERE e.agent_id = %s AND e.id = %s",
                (new_room, agent_id, entity_id),
            )
        ).fetchone()
    assert "Bob" in row["names"] and row["joined"] == 1


async def test_a_backend_terminated_mid_transaction_is_retried_for_an_idempotent_method(
    adapter, agent_id, database_url, caplog
):
    room_id, entity_id = await _room(adapter, agent_id)
    async with await _connect(database_url, autocommit=False) as blocker, await _connect(database_url) as watcher:
        await blocker.execute(
            "UPDATE entities SET metadata = metadata WHERE agent_id = %s AND id = %s", (agent_id, entity_id)
        )
        call = asyncio.create_task(
            adapter.ensure_connection(
                Entity(id=entity_id, agent_id=agent_id, names=["Carol"]), Room(id=room_id, agent_id=agent_id), None
            )
        )
        first = await _lock_waiter(watcher, "INSERT INTO entities")
        await _terminate(watcher, first)  # mid-transaction: its world/room inserts are in flight
        second = await _lock_waiter(watcher, "INSERT INTO entities", not_pid=first)  # the retry, new connection
        assert second != first
        await blocker.rollback()
    await asyncio.wait_for(call, timeout=10)

    messages = _retries(caplog)
    assert len(messages) == 1 and "ensure_connection" in messages[0]
    assert "57P01" in messages[0] or "OperationalError" in messages[0]
    assert await _has_name(adapter, agent_id, entity_id, "Carol")


async def _has_name(adapter, agent_id, entity_id, name) -> bool:
    async with adapter.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT %s = ANY(names) AS has FROM entities WHERE agent_id = %s AND id = %s",
                (name, agent_id, entity_id),
            )
        ).fetchone()
    return row["has"]


async def test_a_lost_connection_is_not_retried_for_a_plain_insert_such_as_a_reply(
    adapter, agent_id, database_url, caplog
):
    room_id, entity_id = await _room(adapter, agent_id)
    asked = Memory(agent_id=agent_id, room_id=room_id, entity_id=entity_id, content=Content(text="q"))
    await adapter.create_memories([asked], "messages")
    memory = Memory(agent_id=agent_id, room_id=room_id, entity_id=agent_id, content=Content(text="secret words"))
    async with await _connect(database_url, autocommit=False) as blocker, await _connect(database_url) as watcher:
        # The same id, uncommitted: the adapter's INSERT waits on the primary key.
        await blocker.execute(
            "INSERT INTO memories (id, agent_id, type, room_id, entity_id, content, content_hash, created_at)"
            " VALUES (%s, %s, 'messages', %s, %s, %s, 'h', now())",
            (memory.id, agent_id, room_id, entity_id, Jsonb({"text": "other"})),
        )
        call = asyncio.create_task(adapter.create_reply(memory, "messages", answering=asked))
        await _terminate(watcher, await _lock_waiter(watcher, "INSERT INTO memories"))
        with pytest.raises(TransientDatabaseError) as raised:
            await asyncio.wait_for(call, timeout=10)
        await blocker.rollback()

    error = raised.value
    assert error.outcome_unknown and error.attempts == 1 and error.operation == "create_reply"
    assert "not retried" in str(error)
    assert _retries(caplog) == []
    assert str(memory.id) not in str(error) and "secret words" not in str(error)
    # The caller can find out: here the killed insert never committed, so resending is safe.
    assert [m.id for m in await adapter.get_memories(agent_id, room_id, "messages", 10)] == [asked.id]
    assert await adapter.create_reply(memory, "messages", answering=asked)
    assert [m.id for m in await adapter.get_memories(agent_id, room_id, "messages", 10)] == [asked.id, memory.id]


async def test_why_inserts_are_not_retried_blindly(adapter, agent_id, caplog):
    # What a blind retry would meet when the first commit landed before the connection dropped.
    room_id, entity_id = await _room(adapter, agent_id)
    asked = Memory(agent_id=agent_id, room_id=room_id, entity_id=entity_id, content=Content(text="q"))
    await adapter.create_memories([asked], "messages")
    memory = Memory(agent_id=agent_id, room_id=room_id, entity_id=agent_id, content=Content(text="private text"))
    assert await adapter.create_reply(memory, "messages", answering=asked)
    with pytest.raises(DatabaseError) as raised:
        await adapter.create_reply(memory, "messages", answering=asked)
    error = raised.value
    assert type(error) is DatabaseError  # permanent: raised at once, typed
    assert error.sqlstate == "23505" and error.operation == "create_reply"
    assert "UniqueViolation" in str(error) and "memories_pkey" in str(error)
    # Never the parameters: not in the message, and the psycopg error (whose DETAIL quotes them) is not chained.
    assert str(memory.id) not in str(error) and "private text" not in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    assert _retries(caplog) == []


async def test_a_pool_timeout_is_transient_and_not_retried(database_url, caplog):
    pool = create_pool(Settings(database_url=database_url, pool_max_size=1, pool_timeout_s=0.3))
    await pool.open()
    adapter = PostgresAdapter(pool, retry_policy=RetryPolicy(attempts=3))
    try:
        async with pool.connection():  # the only connection is busy
            started = time.monotonic()
            with pytest.raises(TransientDatabaseError) as raised:
                await adapter.get_agents()
            elapsed = time.monotonic() - started
        assert elapsed < 1.0  # one wait of pool_timeout_s, not three
        error = raised.value
        assert error.attempts == 1 and not error.outcome_unknown and error.sqlstate is None
        assert "PoolTimeout" in str(error) and "pool exhausted" in str(error)
        assert _retries(caplog) == []
        assert isinstance(await adapter.get_agents(), list)  # usable again once the connection is back
    finally:
        await pool.close()


async def test_a_permanent_error_is_typed_and_raised_at_once(adapter, caplog):
    runs = 0

    async def divide() -> None:
        nonlocal runs
        runs += 1
        async with adapter.pool.connection() as conn:
            await conn.execute("SELECT 1 / 0")

    with pytest.raises(DatabaseError) as raised:
        await call_with_retries(divide, operation="divide", idempotent=True, policy=RetryPolicy())
    assert runs == 1 and raised.value.sqlstate == "22012" and "DivisionByZero" in str(raised.value)


async def test_non_database_errors_pass_through(adapter, agent_id):
    with pytest.raises(EmbeddingDimensionError):
        await adapter.search_memories(agent_id, [0.0] * 3, table="messages", count=1)


async def test_nested_operations_do_not_multiply_attempts():
    runs = 0

    async def inner() -> None:
        nonlocal runs
        runs += 1
        raise psycopg.errors.SerializationFailure()

    async def outer() -> None:
        await call_with_retries(inner, operation="inner", idempotent=False, policy=NO_WAIT)

    with pytest.raises(TransientDatabaseError) as raised:
        await call_with_retries(outer, operation="outer", idempotent=False, policy=NO_WAIT)
    assert runs == 3 and raised.value.operation == "inner"


async def test_storing_the_same_memory_twice_keeps_one_row(adapter, agent_id):
    """What makes create_memories safe to retry after a dropped connection, and a retried request safe."""
    import uuid

    from core.types import ChannelType, Content, Entity, Memory, Room

    room, speaker = uuid.uuid4(), uuid.uuid4()
    await adapter.ensure_connection(
        Entity(id=speaker, agent_id=agent_id, names=["x"]), Room(id=room, agent_id=agent_id, type=ChannelType.DM), None
    )
    memory = Memory(agent_id=agent_id, room_id=room, entity_id=speaker, content=Content(text="once"))
    await adapter.create_memories([memory], "messages")
    await adapter.create_memories([memory], "messages")
    assert [m.text for m in await adapter.get_memories(agent_id, room, "messages", 10)] == ["once"]


async def test_a_lost_connection_while_storing_a_message_is_retried_and_stores_it_once(
    adapter, agent_id, database_url, caplog
):
    room_id, entity_id = await _room(adapter, agent_id)
    memory = Memory(agent_id=agent_id, room_id=room_id, entity_id=entity_id, content=Content(text="hello"))
    async with await _connect(database_url, autocommit=False) as blocker, await _connect(database_url) as watcher:
        await blocker.execute(  # the same id, uncommitted: the adapter's INSERT waits on the primary key
            "INSERT INTO memories (id, agent_id, type, room_id, entity_id, content, content_hash, created_at)"
            " VALUES (%s, %s, 'messages', %s, %s, %s, 'h', now())",
            (memory.id, agent_id, room_id, entity_id, Jsonb({"text": "other"})),
        )
        call = asyncio.create_task(adapter.create_memories([memory], "messages"))
        await _terminate(watcher, await _lock_waiter(watcher, "INSERT INTO memories"))
        await blocker.rollback()  # the retry then finds the key free
        await asyncio.wait_for(call, timeout=10)
    assert len(_retries(caplog)) >= 1
    assert [m.text for m in await adapter.get_memories(agent_id, room_id, "messages", 10)] == ["hello"]
