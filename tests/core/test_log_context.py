"""core.log_context: keys bound per run, copied onto every record by a handler's filter."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from core.log_context import LogContextFilter, bind_log_keys, current_log_keys, log_keys, reset_log_keys


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured():
    """A ``core.test_log_context`` logger whose records reach a handler of the ``core`` logger
    carrying the filter, as the functions install it (on the handler, not the logger)."""
    handler = _Collect()
    handler.addFilter(LogContextFilter())
    parent = logging.getLogger("core")
    saved_level = parent.level
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    try:
        yield logging.getLogger("core.test_log_context"), handler.records
    finally:
        parent.removeHandler(handler)
        parent.setLevel(saved_level)


def test_bind_then_reset_restores_the_previous_keys():
    assert current_log_keys() == {}
    agent, room = uuid.uuid4(), uuid.uuid4()
    token = bind_log_keys(agent_id=agent, room_id=room, run_id=None)
    assert current_log_keys() == {"agent_id": str(agent), "room_id": str(room)}  # None is skipped
    reset_log_keys(token)
    assert current_log_keys() == {}


def test_bindings_nest_and_unwind_in_order():
    outer = bind_log_keys(agent_id="a", room_id="r1")
    inner = bind_log_keys(room_id="r2", run_id="x")
    assert current_log_keys() == {"agent_id": "a", "room_id": "r2", "run_id": "x"}
    reset_log_keys(inner)
    assert current_log_keys() == {"agent_id": "a", "room_id": "r1"}
    reset_log_keys(outer)
    assert current_log_keys() == {}


def test_a_token_is_used_once():
    token = bind_log_keys(run_id="x")
    reset_log_keys(token)
    with pytest.raises(RuntimeError):
        reset_log_keys(token)


def test_the_returned_keys_are_a_copy():
    with log_keys(agent_id="a"):
        current_log_keys()["agent_id"] = "changed"
        assert current_log_keys() == {"agent_id": "a"}


@pytest.mark.parametrize("key", ["name", "msg", "message", "levelname", "args", "exc_info", "asctime"])
def test_keys_that_would_overwrite_record_attributes_are_refused(key):
    with pytest.raises(ValueError, match=key):
        bind_log_keys(**{key: "x"})
    assert current_log_keys() == {}


def test_the_context_manager_resets_on_error():
    with pytest.raises(KeyError), log_keys(agent_id="a"):
        raise KeyError("boom")
    assert current_log_keys() == {}


def test_the_filter_copies_the_keys_onto_records_of_child_loggers(captured):
    logger, records = captured
    logger.info("before")
    with log_keys(agent_id="agent-1", room_id="room-1", run_id="run-1"):
        logger.warning("during")
    logger.info("after")
    before, during, after = records
    assert (during.agent_id, during.room_id, during.run_id) == ("agent-1", "room-1", "run-1")
    assert not hasattr(before, "agent_id") and not hasattr(after, "agent_id")
    assert during.getMessage() == "during" and during.name == "core.test_log_context"


def test_an_explicit_extra_wins_over_the_bound_key(captured):
    logger, records = captured
    with log_keys(room_id="bound", agent_id="agent-1"):
        logger.info("explicit", extra={"room_id": "explicit"})
    (record,) = records
    assert (record.room_id, record.agent_id) == ("explicit", "agent-1")


def test_the_filter_never_drops_a_record():
    record = logging.LogRecord("core.x", logging.DEBUG, __file__, 1, "m", (), None)
    assert LogContextFilter().filter(record) is True


async def test_tasks_started_by_a_run_inherit_its_keys_and_its_caller_never_sees_them(captured):
    logger, records = captured

    async def provider(name: str) -> dict[str, str]:
        await asyncio.sleep(0)
        logger.info(name)
        return current_log_keys()

    async def run(room: str) -> list[dict[str, str]]:
        token = bind_log_keys(agent_id="agent-1", room_id=room, run_id=f"run-{room}")
        try:
            return await asyncio.gather(provider("p1"), provider("p2"))
        finally:
            reset_log_keys(token)

    # Two runs at once (handle_messages): each task sees its own room only.
    first, second = await asyncio.gather(asyncio.create_task(run("r1")), asyncio.create_task(run("r2")))
    assert [k["room_id"] for k in first] == ["r1", "r1"] and [k["room_id"] for k in second] == ["r2", "r2"]
    assert current_log_keys() == {}
    assert sorted((r.room_id, r.run_id) for r in records) == [
        ("r1", "run-r1"),
        ("r1", "run-r1"),
        ("r2", "run-r2"),
        ("r2", "run-r2"),
    ]


async def test_a_token_cannot_be_reset_from_another_task():
    token = await asyncio.create_task(_bind_in_a_task())
    with pytest.raises(ValueError):
        reset_log_keys(token)
    assert current_log_keys() == {}


async def _bind_in_a_task():
    return bind_log_keys(run_id="elsewhere")
