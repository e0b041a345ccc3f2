from __future__ import annotations

import math
import uuid

import pytest

from core.db.adapter import AgentRecord
from core.db.postgres.cache import MAX_TTL_S
from core.db.postgres.values import MAX_PAGE_SIZE
from core.errors import NotFoundError

EVIL = ["'; DROP TABLE cache; --", "x' OR '1'='1", "$$", "%s", "%(agent)s", 'a"b', "\\", "*", "%", "_"]


async def _other_agent(adapter) -> uuid.UUID:
    other = uuid.uuid4()
    await adapter.upsert_agents([AgentRecord(other, f"other-{other}", {})])
    return other


async def _expire(adapter, agent_id, key, seconds_ago: int = 1) -> None:
    """Move an entry's expiry into the past (no sleeping in tests)."""
    async with adapter.pool.connection() as conn:
        cur = await conn.execute(
            "UPDATE cache SET expires_at = now() - make_interval(secs => %s) WHERE agent_id = %s AND key = %s",
            (seconds_ago, agent_id, key),
        )
        assert cur.rowcount == 1


async def _rows(adapter, agent_id) -> int:
    async with adapter.pool.connection() as conn:
        row = await (await conn.execute("SELECT count(*) AS n FROM cache WHERE agent_id = %s", (agent_id,))).fetchone()
    return row["n"]


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, None, True], "b": {"c": "d"}},
        [1, "two"],
        "text",
        42,
        2.5,
        True,
        False,
        {},
        [],
        {'quote\'s "key"': "$$"},
    ],
)
async def test_set_then_get_round_trips_json(adapter, agent_id, value):
    await adapter.set_cache(agent_id, "k", value)
    assert await adapter.get_cache(agent_id, "k") == value


async def test_missing_and_null_read_as_none(adapter, agent_id):
    assert await adapter.get_cache(agent_id, "nothing") is None
    await adapter.set_cache(agent_id, "null", None)
    assert await adapter.get_cache(agent_id, "null") is None
    assert await _rows(adapter, agent_id) == 1


async def test_set_replaces_value_and_expiry(adapter, agent_id):
    await adapter.set_cache(agent_id, "k", 1, ttl_s=60)
    await _expire(adapter, agent_id, "k")
    assert await adapter.get_cache(agent_id, "k") is None
    await adapter.set_cache(agent_id, "k", 2)  # no ttl: never expires
    assert await adapter.get_cache(agent_id, "k") == 2
    async with adapter.pool.connection() as conn:
        row = await (
            await conn.execute("SELECT expires_at FROM cache WHERE agent_id = %s AND key = 'k'", (agent_id,))
        ).fetchone()
    assert row["expires_at"] is None


async def test_ttl_sets_a_future_expiry_from_the_database_clock(adapter, agent_id):
    await adapter.set_cache(agent_id, "k", "v", ttl_s=90.5)
    async with adapter.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT extract(epoch FROM expires_at - now()) AS left_s FROM cache WHERE agent_id = %s AND key = 'k'",
                (agent_id,),
            )
        ).fetchone()
    assert 80 < float(row["left_s"]) <= 90.5
    assert await adapter.get_cache(agent_id, "k") == "v"


async def test_expired_entries_are_invisible_before_the_sweep(adapter, agent_id):
    await adapter.set_cache(agent_id, "old", {"x": 1}, ttl_s=10)
    await adapter.set_cache(agent_id, "fresh", {"x": 2}, ttl_s=3600)
    await _expire(adapter, agent_id, "old")
    assert await adapter.get_cache(agent_id, "old") is None
    assert await adapter.get_cache(agent_id, "fresh") == {"x": 2}
    assert await _rows(adapter, agent_id) == 2  # still stored until swept


async def test_cache_is_scoped_by_agent(adapter, agent_id):
    other = await _other_agent(adapter)
    await adapter.set_cache(agent_id, "shared-key", "mine")
    await adapter.set_cache(other, "shared-key", "theirs")
    assert await adapter.get_cache(agent_id, "shared-key") == "mine"
    assert await adapter.get_cache(other, "shared-key") == "theirs"
    assert await adapter.delete_cache(other, "shared-key") is True
    assert await adapter.get_cache(agent_id, "shared-key") == "mine"


async def test_delete_cache(adapter, agent_id):
    await adapter.set_cache(agent_id, "k", 1, ttl_s=5)
    await _expire(adapter, agent_id, "k")
    assert await adapter.delete_cache(agent_id, "k") is True  # expired rows are deleted too
    assert await adapter.delete_cache(agent_id, "k") is False
    assert await _rows(adapter, agent_id) == 0


async def test_sweep_deletes_only_expired_rows_bounded_per_call(adapter, agent_id):
    other = await _other_agent(adapter)
    for owner in (agent_id, other):
        for i in range(3):
            await adapter.set_cache(owner, f"old{i}", i, ttl_s=60)
            await _expire(adapter, owner, f"old{i}", seconds_ago=10 + i)
        await adapter.set_cache(owner, "forever", "x")
        await adapter.set_cache(owner, "later", "y", ttl_s=3600)
    # Other tests' expired rows may be swept too: count only ours.
    while await adapter.delete_expired_cache(limit=2) == 2:
        pass
    assert await _rows(adapter, agent_id) == 2 and await _rows(adapter, other) == 2
    assert await adapter.get_cache(agent_id, "forever") == "x"
    assert await adapter.get_cache(other, "later") == "y"


async def test_sweep_limit_is_respected(adapter, agent_id):
    for i in range(5):
        await adapter.set_cache(agent_id, f"old{i}", i, ttl_s=60)
        await _expire(adapter, agent_id, f"old{i}")
    assert await adapter.delete_expired_cache(limit=3) == 3
    with pytest.raises(ValueError, match="limit"):
        await adapter.delete_expired_cache(limit=0)
    with pytest.raises(ValueError, match="limit"):
        await adapter.delete_expired_cache(limit=MAX_PAGE_SIZE + 1)


async def test_bad_input_is_refused(adapter, agent_id):
    for key in ("", "a\x00b", "k" * 1001, None, 5):
        with pytest.raises(ValueError, match="cache key"):
            await adapter.set_cache(agent_id, key, 1)
        with pytest.raises(ValueError, match="cache key"):
            await adapter.get_cache(agent_id, key)
        with pytest.raises(ValueError, match="cache key"):
            await adapter.delete_cache(agent_id, key)
    for ttl in (0, -5, math.nan, math.inf, MAX_TTL_S + 1, True, "60"):
        with pytest.raises(ValueError, match="ttl_s"):
            await adapter.set_cache(agent_id, "k", 1, ttl_s=ttl)
    for value in (math.nan, {"x": math.inf}, {"s": "a\x00b"}, {1, 2}, object(), {"k": uuid.uuid4()}):
        with pytest.raises(ValueError, match="cache value"):
            await adapter.set_cache(agent_id, "k", value)
    with pytest.raises(NotFoundError):
        await adapter.set_cache(uuid.uuid4(), "k", 1)
    assert await _rows(adapter, agent_id) == 0


async def test_keys_and_json_are_literal(adapter, agent_id):
    await adapter.set_cache(agent_id, "control", "c")
    for key in EVIL:
        await adapter.set_cache(agent_id, key, {key: key, "q'uote": '"$$"'}, ttl_s=60)
    for key in EVIL:
        assert await adapter.get_cache(agent_id, key) == {key: key, "q'uote": '"$$"'}
    # No pattern matching: "%" and "_" name themselves only.
    assert await adapter.get_cache(agent_id, "contro_") is None
    assert await adapter.delete_cache(agent_id, "%") is True
    assert await _rows(adapter, agent_id) == len(EVIL)
    async with adapter.pool.connection() as conn:
        row = await (await conn.execute("SELECT to_regclass('cache') IS NOT NULL AS ok")).fetchone()
    assert row["ok"]
