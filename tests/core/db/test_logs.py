from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import pytest

from core.db.adapter import AgentRecord
from core.db.postgres.values import MAX_PAGE_SIZE
from core.errors import NotFoundError
from core.types import (
    ActionLogBody,
    ActionLogResult,
    Log,
    LogType,
    ModelUsageBody,
    action_log,
    model_usage_log,
)

BASE_MS = 1_700_000_000_000
EVIL = ["'; DROP TABLE logs; --", "x' OR '1'='1", "$$", "%s", "%(agent)s", 'a"b', "\\"]


async def _other_agent(adapter) -> uuid.UUID:
    other = uuid.uuid4()
    await adapter.upsert_agents([AgentRecord(other, f"other-{other}", {})])
    return other


def _log(agent_id, i, **fields) -> Log:
    fields.setdefault("entity_id", uuid.uuid4())
    fields.setdefault("type", "custom")
    return Log(agent_id=agent_id, body={"i": i}, created_at=BASE_MS + i, **fields)


async def test_log_writes_one_and_reads_it_back(adapter, agent_id):
    entity, room, run = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    entry = Log(
        agent_id=agent_id,
        entity_id=entity,
        room_id=room,
        type="custom",
        created_at=BASE_MS,
        body={"run": run, "at": datetime(2024, 1, 2, tzinfo=UTC), "nested": {"list": [1, None, "x"]}, "set": {3}},
    )
    assert await adapter.log(entry) == entry.id
    [got] = await adapter.get_logs(agent_id)
    assert (got.id, got.entity_id, got.room_id, got.type, got.created_at) == (entry.id, entity, room, "custom", BASE_MS)
    # Non-JSON values in the body are stored as their JSON strings.
    assert got.body == {"run": str(run), "at": "2024-01-02T00:00:00Z", "nested": {"list": [1, None, "x"]}, "set": [3]}
    assert await adapter.get_logs(await _other_agent(adapter)) == []


async def test_log_many_writes_in_one_statement_and_skips_known_ids(adapter, agent_id):
    other = await _other_agent(adapter)
    entries = [_log(agent_id, i) for i in range(5)] + [_log(other, 9)]
    assert await adapter.log_many(entries) == 6
    # A retried batch (same ids) writes nothing twice.
    assert await adapter.log_many(entries[:3] + [_log(agent_id, 5)]) == 1
    assert await adapter.log(entries[0]) == entries[0].id
    assert [g.body["i"] for g in await adapter.get_logs(agent_id)] == [5, 4, 3, 2, 1, 0]
    assert [g.body["i"] for g in await adapter.get_logs(other)] == [9]
    assert await adapter.log_many([]) == 0


async def test_log_bad_input_writes_nothing(adapter, agent_id):
    with pytest.raises(NotFoundError):
        await adapter.log_many([_log(agent_id, 1), _log(uuid.uuid4(), 2)])
    for body in ({"x": math.nan}, {"x": [math.inf]}, {"x": "a\x00b"}, {"k\x00": 1}, {"x": object()}):
        with pytest.raises(ValueError, match="log body"):
            await adapter.log_many([_log(agent_id, 3), Log(agent_id=agent_id, entity_id=agent_id, type="t", body=body)])
    with pytest.raises(ValueError, match="log type"):
        await adapter.log(Log(agent_id=agent_id, entity_id=agent_id, type="a\x00"))
    with pytest.raises(ValueError):
        Log(agent_id=agent_id, entity_id=agent_id, type="")
    assert await adapter.get_logs(agent_id) == []


async def test_get_logs_filters_and_pages(adapter, agent_id):
    alice, bob, room = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await adapter.log_many(
        [
            _log(agent_id, 0, entity_id=alice, room_id=room, type=LogType.USE_MODEL),
            _log(agent_id, 1, entity_id=bob, room_id=room, type=LogType.ACTION),
            _log(agent_id, 2, entity_id=alice, type=LogType.ACTION),
            _log(agent_id, 3, entity_id=bob, room_id=room, type=LogType.USE_MODEL),
            _log(agent_id, 4, entity_id=alice, room_id=room, type=LogType.ACTION),
        ]
    )

    async def ids(**filters):
        return [g.body["i"] for g in await adapter.get_logs(agent_id, **filters)]

    assert await ids() == [4, 3, 2, 1, 0]
    assert await ids(type="useModel") == [3, 0]
    assert await ids(entity_id=alice) == [4, 2, 0]
    assert await ids(room_id=room) == [4, 3, 1, 0]
    assert await ids(room_id=room, type="action", entity_id=alice) == [4]
    assert await ids(type="nothing") == []
    assert await ids(limit=2) == [4, 3]
    assert await ids(limit=2, offset=2) == [2, 1]
    assert await ids(limit=2, offset=4) == [0]
    assert await ids(limit=5, offset=5) == []


@pytest.mark.parametrize(
    ("limit", "offset"), [(0, 0), (-1, 0), (MAX_PAGE_SIZE + 1, 0), (10, -1), ("10", 0), (10, 1.5), (True, 0)]
)
async def test_get_logs_invalid_page_is_refused(adapter, agent_id, limit, offset):
    with pytest.raises(ValueError, match="limit|offset"):
        await adapter.get_logs(agent_id, limit=limit, offset=offset)


async def test_delete_log_is_scoped(adapter, agent_id):
    entry = _log(agent_id, 1)
    await adapter.log(entry)
    assert await adapter.delete_log(await _other_agent(adapter), entry.id) is False
    assert await adapter.delete_log(agent_id, entry.id) is True
    assert await adapter.delete_log(agent_id, entry.id) is False
    assert await adapter.get_logs(agent_id) == []


async def test_logs_go_with_their_agent(adapter, agent_id):
    await adapter.log(_log(agent_id, 1))
    async with adapter.pool.connection() as conn:
        await conn.execute("DELETE FROM agents WHERE id = %s", (agent_id,))
        row = await (await conn.execute("SELECT count(*) AS n FROM logs WHERE agent_id = %s", (agent_id,))).fetchone()
    assert row["n"] == 0


async def test_model_usage_and_action_logs_round_trip(adapter, agent_id):
    run, message, room, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    usage = model_usage_log(
        agent_id,
        ModelUsageBody(
            model_type="TEXT_SMALL",
            provider="openai",
            model="gpt-4o-mini",
            duration_ms=812.5,
            prompt_tokens=120,
            completion_tokens=30,
            run_id=run,
        ),
        room_id=room,
    )
    action = action_log(
        agent_id,
        ActionLogBody(
            action="REPLY",
            run_id=run,
            message_id=message,
            duration_ms=3,
            result=ActionLogResult(success=True, text="hi"),
        ),
        entity_id=user,
        room_id=room,
    )
    await adapter.log_many([usage, action])

    [got_usage] = await adapter.get_logs(agent_id, type=LogType.USE_MODEL)
    assert got_usage.entity_id == agent_id  # model usage is about the agent itself
    # elizaOS's wire names, so its log viewers read these.
    assert got_usage.body["executionTime"] == 812.5 and got_usage.body["modelType"] == "TEXT_SMALL"
    body = ModelUsageBody.model_validate(got_usage.body)
    assert (body.total_tokens, body.provider, str(body.run_id)) == (150, "openai", str(run))

    [got_action] = await adapter.get_logs(agent_id, type="action", entity_id=user)
    parsed = ActionLogBody.model_validate(got_action.body)
    assert (parsed.action, parsed.message_id, parsed.result.success) == ("REPLY", message, True)


def test_model_usage_body_validation():
    partial = ModelUsageBody(model_type="TEXT_LARGE", provider="local", duration_ms=1, prompt_tokens=5)
    assert partial.total_tokens is None and "totalTokens" not in partial.to_json_dict()
    given = ModelUsageBody(
        model_type="x", provider="p", duration_ms=1, prompt_tokens=1, completion_tokens=1, total_tokens=10
    )
    assert given.total_tokens == 10
    with pytest.raises(ValueError):
        ModelUsageBody(model_type="x", provider="p", duration_ms=-1)
    with pytest.raises(ValueError):
        ModelUsageBody(model_type="x", provider="p", duration_ms=1, prompt_tokens=-3)


async def test_log_types_and_body_keys_are_literal(adapter, agent_id):
    control = _log(agent_id, 0, type="control")
    await adapter.log(control)
    for i, evil in enumerate(EVIL, start=1):
        await adapter.log(
            Log(
                agent_id=agent_id,
                entity_id=agent_id,
                type=evil,
                created_at=BASE_MS + i,
                body={evil: evil, "q'uote": '"$$"'},
            )
        )
        [got] = await adapter.get_logs(agent_id, type=evil)
        assert got.type == evil and got.body == {evil: evil, "q'uote": '"$$"'}
    assert len(await adapter.get_logs(agent_id)) == len(EVIL) + 1
    assert await adapter.get_logs(agent_id, type="x' OR '1'='1'") == []
    async with adapter.pool.connection() as conn:
        row = await (await conn.execute("SELECT to_regclass('logs') IS NOT NULL AS ok")).fetchone()
    assert row["ok"]
