"""elizaOS plugin-autonomy on our runtime: the service starts with the agent, routes switch the
loop (a repeating task here), each thought is a message turn started by MESSAGE_RECEIVED, the
AUTONOMY_STATUS provider shows in ordinary conversations. Real Postgres, scripted model."""

from __future__ import annotations

import json

import pydantic
import pytest

from core.orchestrator import IncomingMessage
from core.types import ChannelType, ModelType

from .autonomy import autonomy_plugin
from .autonomy.service import FIRST_THOUGHT, THINK_TASK, autonomous_room_id
from .conftest import call_route
from .experience import experience_plugin
from .experience.components import EXTRACTION_COUNTER_KEY

REPLY = "<response><thought>t</thought><actions>REPLY</actions><text>{}</text></response>"


async def test_the_service_starts_with_the_agent_and_owns_a_self_room_with_autonomy_off(make_agent):
    orchestrator, agent_id = await make_agent(autonomy_plugin)
    runtime = orchestrator.runtime(agent_id)
    room = await runtime.get_room(autonomous_room_id(agent_id))
    assert room.name == "Autonomous Thoughts" and room.type is ChannelType.SELF
    assert agent_id in await runtime.get_participants_for_room(room.id)
    status = await call_route(runtime, "autonomy", "GET", "/autonomy/status")
    assert status["data"]["enabled"] is False and status["data"]["running"] is False
    assert await runtime.get_tasks_by_name(THINK_TASK) == []


async def test_autonomy_enabled_in_the_character_settings_starts_the_loop_with_the_agent(make_agent):
    orchestrator, agent_id = await make_agent(autonomy_plugin, settings={"AUTONOMY_ENABLED": "true"})
    [task] = await orchestrator.runtime(agent_id).get_tasks_by_name(THINK_TASK)
    assert {"queue", "repeat"} <= set(task.tags) and task.room_id == autonomous_room_id(agent_id)


async def test_the_routes_enable_disable_and_toggle_the_loop_across_invocations(make_agent):
    orchestrator, agent_id = await make_agent(autonomy_plugin)
    enabled = await call_route(orchestrator.runtime(agent_id), "autonomy", "POST", "/autonomy/enable")
    assert enabled["message"] == "Autonomy enabled" and enabled["data"]["running"] is True
    later = orchestrator.runtime(agent_id)  # another invocation's runtime sees the same state
    assert (await call_route(later, "autonomy", "GET", "/autonomy/status"))["data"]["enabled"] is True
    await call_route(later, "autonomy", "POST", "/autonomy/enable")
    assert len(await later.get_tasks_by_name(THINK_TASK)) == 1  # enabling twice schedules once
    toggled = await call_route(later, "autonomy", "POST", "/autonomy/toggle")
    assert toggled["message"] == "Autonomy disabled" and await later.get_tasks_by_name(THINK_TASK) == []
    disabled = await call_route(later, "autonomy", "POST", "/autonomy/disable")
    assert disabled["data"] == {"enabled": False, "running": False, "interval": 1000}


async def test_the_interval_route_accepts_five_seconds_to_ten_minutes_and_clamps_to_a_minute(make_agent):
    orchestrator, agent_id = await make_agent(autonomy_plugin)
    runtime = orchestrator.runtime(agent_id)
    await call_route(runtime, "autonomy", "POST", "/autonomy/enable")
    answer = await call_route(runtime, "autonomy", "POST", "/autonomy/interval", {"interval": 120_000})
    assert answer["data"] == {"interval": 60_000, "intervalSeconds": 60}  # setLoopInterval's 1-minute cap
    [task] = await runtime.get_tasks_by_name(THINK_TASK)
    assert task.metadata.update_interval == 60_000
    with pytest.raises(pydantic.ValidationError):
        await call_route(runtime, "autonomy", "POST", "/autonomy/interval", {"interval": 1000})


async def test_a_thought_is_a_message_turn_started_by_message_received_and_the_next_continues_it(make_agent, scripted):
    orchestrator, agent_id = await make_agent(autonomy_plugin)
    runtime = orchestrator.runtime(agent_id)
    worker = runtime.get_task_worker(THINK_TASK)
    scripted.script(ModelType.TEXT_LARGE, REPLY.format("I wonder how tides work."), REPLY.format("The moon pulls."))
    await worker.execute(runtime, {}, None)
    await worker.execute(orchestrator.runtime(agent_id), {}, None)

    history = await runtime.get_memories(autonomous_room_id(agent_id), "messages", 10)
    assert [m.entity_id for m in history] == [agent_id] * 4
    assert history[0].text == FIRST_THOUGHT and history[0].content.metadata["isAutonomous"] is True
    assert history[1].text == "I wonder how tides work."
    assert 'from your last thought: "I wonder how tides work."' in history[2].text
    assert history[2].content.metadata["isContinuation"] is True and history[3].text == "The moon pulls."


async def test_the_status_provider_shows_in_conversations_but_not_in_the_autonomous_room(make_agent, scripted):
    orchestrator, agent_id = await make_agent(autonomy_plugin)
    await call_route(orchestrator.runtime(agent_id), "autonomy", "POST", "/autonomy/enable")
    scripted.script(ModelType.TEXT_LARGE, REPLY.format("Yes."), REPLY.format("Hmm."))
    await orchestrator.handle_message(agent_id, IncomingMessage(text="Are you thinking on your own?"))
    runtime = orchestrator.runtime(agent_id)
    await runtime.get_task_worker(THINK_TASK).execute(runtime, {}, None)
    conversation, thought = [p["prompt"] for t, p in scripted.calls if t is ModelType.TEXT_LARGE]
    assert "[AUTONOMY_STATUS]\nCurrent status: 🤖 running autonomously\nThinking interval: 1 seconds" in conversation
    assert "[AUTONOMY_STATUS]" not in thought


async def test_autonomous_thoughts_feed_the_experience_evaluator_of_another_ported_plugin(make_agent, scripted):
    orchestrator, agent_id = await make_agent(autonomy_plugin, experience_plugin)
    runtime = orchestrator.runtime(agent_id)
    await runtime.set_cache(EXTRACTION_COUNTER_KEY, "8")  # the 9th and 10th agent messages follow
    learned = [{"type": "DISCOVERY", "learning": "Tides follow the moon", "context": "musing", "confidence": 0.8}]
    scripted.script(
        ModelType.TEXT_LARGE,
        *[
            lambda p: json.dumps(learned) if "novel learning experiences" in p["prompt"] else REPLY.format("Tides.")
            for _ in range(3)
        ],
    )
    for _ in range(2):
        await runtime.get_task_worker(THINK_TASK).execute(orchestrator.runtime(agent_id), {}, None)
    experiences = await runtime.get_service("EXPERIENCE").query_experiences(runtime, _everything())
    assert [e.learning for e in experiences] == ["Tides follow the moon"]


def _everything():
    from .experience.types import ExperienceQuery

    return ExperienceQuery()
