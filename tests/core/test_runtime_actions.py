"""Actions through the public runtime API: lookup, results, chaining, events, hooks, memories."""

from __future__ import annotations

import uuid

import pytest

from core.blueprint import AgentBlueprint
from core.character import load_character_dict
from core.events import EventType
from core.plugin import Action, ActionResult, Plugin, normalise_action_result
from core.runtime import AgentRuntime
from core.types import Content, Memory, State


def _action(name, handler=None, similes=()):
    async def default(runtime, message, state, options, callback, responses):
        return ActionResult(text=f"{name} done", values={name.lower(): True})

    return Action(name=name, description=name, handler=handler or default, similes=tuple(similes))


@pytest.fixture
def build(adapter, agent_id):
    def _build(*plugins):
        character = load_character_dict({"id": str(agent_id), "name": f"agent-{agent_id}"})
        return AgentRuntime(AgentBlueprint.build(character, plugins), adapter)

    return _build


async def _message(runtime, text="do it"):
    message = Memory(
        entity_id=uuid.uuid4(), agent_id=runtime.agent_id, room_id=uuid.uuid4(), content=Content(text=text)
    )
    await runtime.ensure_connection(entity_id=message.entity_id, room_id=message.room_id)
    return message


def _plan(runtime, message, *actions):
    return Memory(
        entity_id=runtime.agent_id,
        agent_id=runtime.agent_id,
        room_id=message.room_id,
        content=Content(text="plan", actions=list(actions)),
    )


async def _noop_callback(content):
    return []


def test_exact_name_wins_over_a_simile_and_normalised_names_match(build):
    exact = _action("SEND_EMAIL")
    fuzzy = _action("MAIL", similes=["SEND_EMAIL"])
    runtime = build(Plugin(name="p", actions=(fuzzy, exact)))
    assert runtime.find_action("SEND_EMAIL") is exact
    assert runtime.find_action("send-email") is exact
    assert runtime.find_action("mail") is fuzzy
    assert runtime.find_action("nothing") is None


async def test_plan_runs_in_order_chains_values_and_stores_results(build, adapter):
    seen_values = []

    async def second(runtime, message, state, options, callback, responses):
        seen_values.append(dict(state.values))
        previous = runtime.get_action_results(message.id)
        return {"success": True, "text": f"after {previous[0].text}", "extra": 1}

    runtime = build(Plugin(name="p", actions=(_action("FIRST"), _action("SECOND", second))))
    message = await _message(runtime)
    state = State()
    results = await runtime.process_actions(
        message, [_plan(runtime, message, "FIRST", "SECOND", "UNKNOWN")], state, _noop_callback
    )

    assert [r.success for r in results] == [True, True, False]
    assert results[1].text == "after FIRST done" and results[1].data == {"extra": 1}
    assert results[2].error == "unknown action UNKNOWN"
    assert seen_values[0]["first"] is True  # values of the first action reached the second
    assert runtime.get_action_results(message.id) == results
    stored = await adapter.get_memories(runtime.agent_id, message.room_id, "action_results", 10)
    assert [m.content.actions for m in stored] == [["FIRST"], ["SECOND"], ["UNKNOWN"]]
    assert stored[2].text == "unknown action UNKNOWN"
    assert all(m.content.in_reply_to == message.id for m in stored)


async def test_failing_action_is_recorded_and_does_not_stop_the_plan(build):
    async def boom(*_):
        raise RuntimeError("exploded")

    runtime = build(Plugin(name="p", actions=(_action("BOOM", boom), _action("AFTER"))))
    message = await _message(runtime)
    results = await runtime.process_actions(
        message, [_plan(runtime, message, "BOOM", "AFTER")], State(), _noop_callback
    )
    assert results[0].success is False and "exploded" in results[0].error
    assert results[1].success is True


async def test_events_and_hooks_around_actions(build):
    events, after = [], []

    async def on_event(payload):
        events.append((payload["action"], "result" in payload))

    async def veto(runtime, action, message, state):
        return action.name != "FORBIDDEN"

    async def broken(*_):
        raise RuntimeError("hook bug")

    async def after_action(runtime, action, message, result):
        after.append((action.name, result.success))

    plugin = Plugin(
        name="p",
        actions=(_action("ALLOWED"), _action("FORBIDDEN")),
        before_action=veto,
        after_action=after_action,
        events={EventType.ACTION_STARTED: (on_event,), EventType.ACTION_COMPLETED: (on_event,)},
    )
    runtime = build(plugin, Plugin(name="broken", before_action=broken, after_action=broken))
    message = await _message(runtime)
    results = await runtime.process_actions(
        message, [_plan(runtime, message, "FORBIDDEN", "ALLOWED")], State(), _noop_callback
    )
    assert results[0].success is False and "vetoed" in results[0].error
    assert events == [("ALLOWED", False), ("ALLOWED", True)]
    assert after == [("ALLOWED", True)]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ActionResult()),
        (True, ActionResult()),
        (False, ActionResult(success=False)),
        ({"text": "t", "values": {"a": 1}, "foo": 2}, ActionResult(text="t", values={"a": 1}, data={"foo": 2})),
        ("plain", ActionResult(data={"value": "plain"})),
    ],
)
def test_handler_results_are_normalised(raw, expected):
    assert normalise_action_result(raw) == expected
