from __future__ import annotations

import asyncio

from core.events import EventBus, EventType


async def test_handlers_run_concurrently_and_failures_are_isolated(caplog):
    bus, seen = EventBus(), []
    started = asyncio.Event()

    async def slow(payload):
        started.set()
        await asyncio.sleep(0.01)
        seen.append(("slow", payload["n"]))

    async def waits_for_slow(payload):
        await asyncio.wait_for(started.wait(), 1)  # proves the two run at the same time
        seen.append(("second", payload["n"]))

    async def broken(payload):
        raise RuntimeError("boom")

    for handler in (slow, waits_for_slow, broken):
        bus.register(EventType.MODEL_USED, handler)
    failures = await bus.emit(EventType.MODEL_USED, {"n": 1})
    assert failures == 1
    assert sorted(seen) == [("second", 1), ("slow", 1)]
    assert "MODEL_USED handler failed" in caplog.text


async def test_emit_several_names_and_unknown_names():
    bus, seen = EventBus(), []

    async def record(payload):
        seen.append(payload["k"])

    bus.register("A", record)
    bus.register("B", record)
    assert await bus.emit(["A", "B", "C"], {"k": 7}) == 0
    assert seen == [7, 7]
    assert await bus.emit("nothing-registered", {}) == 0
