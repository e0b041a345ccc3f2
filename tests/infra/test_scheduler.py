"""The local scheduler: scheduled events shaped like AWS's, ticks on a rate, failures survived."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.local.scheduler import LocalScheduler, scheduled_event

SAMPLE = json.loads((Path(__file__).parents[1] / "events" / "rust.example-eventbridge-schedule.json").read_text())


def test_scheduled_event_has_the_shape_aws_delivers():
    when = datetime(2026, 3, 1, 12, 30, 15, 999_000, tzinfo=UTC)
    event = scheduled_event(
        "arn:aws:scheduler:us-east-1:123456789012:schedule/default/tick", region="eu-west-1", when=when
    )
    assert set(event) == set(SAMPLE)
    assert {k: type(v) for k, v in event.items()} == {k: type(v) for k, v in SAMPLE.items()}
    assert (event["version"], event["detail-type"], event["detail"]) == ("0", "Scheduled Event", {})
    assert event["time"] == "2026-03-01T12:30:15Z"  # whole seconds, like the sample's "2015-10-08T16:53:06Z"
    assert len(event["time"]) == len(SAMPLE["time"])
    assert event["region"] == "eu-west-1" and event["account"] == "123456789012"
    assert event["resources"] == ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/tick"]
    assert scheduled_event("arn:x")["id"] != scheduled_event("arn:x")["id"]


def test_ticks_on_its_rate_with_fresh_events_and_contexts():
    calls = []
    done = threading.Event()

    def handler(event, context):
        calls.append((event, context, context.get_remaining_time_in_millis()))
        if len(calls) == 3:
            done.set()
        return {"ok": True}

    scheduler = LocalScheduler(handler, interval_s=0.05, timeout_s=90, function_name="tasks").start()
    try:
        assert done.wait(5), "three ticks did not come"
    finally:
        scheduler.stop()
    ticks = scheduler.ticks
    time.sleep(0.15)
    assert scheduler.ticks == ticks  # stopped means stopped
    assert len({e["id"] for e, _, _ in calls}) == len(calls)
    assert len({c.aws_request_id for _, c, _ in calls}) == len(calls)
    for event, context, remaining in calls:
        assert set(event) == set(SAMPLE) and event["resources"] == [scheduler.schedule_arn]
        assert context.function_name == "tasks" and 85_000 < remaining <= 90_000


def test_a_failing_tick_is_logged_and_the_next_one_comes(caplog):
    calls = []
    done = threading.Event()

    def handler(event, context):
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("database down")
        done.set()

    scheduler = LocalScheduler(handler, interval_s=0.05).start()
    try:
        assert done.wait(5)
    finally:
        scheduler.stop()
    assert scheduler.failures == 1 and "tick 1 failed" in caplog.text


def test_first_tick_waits_one_interval_unless_told_otherwise():
    calls = []
    slow = LocalScheduler(lambda e, c: calls.append("slow"), interval_s=30).start()
    eager = LocalScheduler(lambda e, c: calls.append("eager"), interval_s=30, first_tick_s=0).start()
    time.sleep(0.3)
    slow.stop()
    eager.stop()
    assert calls == ["eager"]


def test_tick_invokes_once_and_returns_what_the_handler_returned():
    scheduler = LocalScheduler(lambda event, context: event["detail-type"], interval_s=60)
    assert scheduler.tick() == "Scheduled Event" and scheduler.ticks == 1

    def broken(event, context):
        raise ValueError("no")

    with pytest.raises(ValueError):
        LocalScheduler(broken).tick()


def test_start_twice_and_bad_settings_are_refused_stop_twice_is_fine():
    scheduler = LocalScheduler(lambda e, c: None, interval_s=60).start()
    with pytest.raises(RuntimeError):
        scheduler.start()
    scheduler.stop()
    scheduler.stop()
    for kwargs in ({"interval_s": 0}, {"interval_s": -1}, {"timeout_s": 0}):
        with pytest.raises(ValueError):
            LocalScheduler(lambda e, c: None, **kwargs)
