"""A turn as elizaOS's DefaultMessageService runs it: dynamic providers asked for by the model,
cached state, character templates, should-respond bypasses, action examples and logs, the
run timeout and multi-step mode. Real Postgres, scripted model."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.events import EventType
from core.memory.plugin import memory_plugin
from core.messaging.service import RunTimeoutError, handle_message
from core.orchestrator import AgentSpec, IncomingMessage, Orchestrator
from core.plugin import Action, ActionResult, ModelRegistration, Plugin, Provider, ProviderResult
from core.settings import Settings
from core.types import ChannelType, Content, Memory, ModelType
from core.types.log import LogType


def plan(actions: str, text: str = "", providers: str = "") -> str:
    return (
        f"<response><thought>t</thought><actions>{actions}</actions>"
        f"<providers>{providers}</providers><text>{text}</text></response>"
    )


@pytest.fixture
async def agent(database_url, scripted, request):
    """``await agent(plugins=..., settings=..., templates=...)`` → (orchestrator, runtime) of a fresh agent."""
    pool = create_pool(Settings(database_url=database_url))
    await pool.open()
    orchestrators = []

    async def make(plugins=(), settings=None, templates=None):
        orch = Orchestrator(PostgresAdapter(pool), plugins=[bootstrap, scripted.plugin()])
        name = f"Ada-{uuid.uuid4().hex[:8]}"
        character = load_character_dict({"name": name, "bio": ["A test agent."], "templates": templates or {}})
        await orch.add_agents([AgentSpec(character, plugins=plugins, settings=settings or {})], auto_start=True)
        orchestrators.append(orch)
        return orch, orch.runtime(name)

    try:
        yield make
    finally:
        await pool.close()


async def _group_message(runtime, text, source="api", **content_extra):
    message = Memory(
        entity_id=uuid.uuid4(),
        agent_id=runtime.agent_id,
        room_id=uuid.uuid4(),
        content=Content(text=text, source=source, channel_type="GROUP", **content_extra),
    )
    await runtime.ensure_connection(
        entity_id=message.entity_id, room_id=message.room_id, user_name="Bob", channel_type=ChannelType.GROUP
    )
    return message


def _weather_plugin(seen: dict):
    async def weather(runtime, message, state):
        seen["weather_state_agent"] = state.values.get("agentName")  # from the turn's cached state
        return ProviderResult(text="# Weather\nSunny, 21 C.", values={"weather": "sunny"})

    async def secret(runtime, message, state):
        seen["secret_ran"] = True
        return ProviderResult(text="# Secret\nthe launch codes")

    async def check(runtime, message, state, options, callback, responses):
        seen["action_state_weather"] = state.values.get("weather")
        await callback(Content(text=f"Weather is {state.values.get('weather')}", actions=["CHECK_WEATHER"]))
        return ActionResult(text="checked")

    return Plugin(
        name="weather",
        providers=(
            Provider(name="WEATHER", get=weather, dynamic=True, description="Today's weather."),
            Provider(name="SECRET", get=secret, private=True, description="Never for the model."),
        ),
        actions=(
            Action(
                name="CHECK_WEATHER",
                description="Tell the weather.",
                handler=check,
                examples=(
                    (
                        {"name": "{{name1}}", "content": {"text": "Is it raining?"}},
                        {"name": "{{agentName}}", "content": {"text": "Let me look.", "actions": ["CHECK_WEATHER"]}},
                    ),
                ),
            ),
        ),
    )


async def test_a_dynamic_provider_the_model_asks_for_is_composed_with_the_cached_state_before_the_action_runs(
    agent, scripted
):
    seen: dict = {}
    orch, runtime = await agent(plugins=[_weather_plugin(seen)])
    scripted.script(
        ModelType.TEXT_LARGE,
        plan("CHECK_WEATHER", "Let me look.", providers="WEATHER, SECRET, NOPE"),
        plan("CHECK_WEATHER", "Let me look."),
    )
    result = await orch.handle_message(runtime, IncomingMessage(text="What's the weather?"))

    first, second = (params["prompt"] for _, params in scripted.calls)
    # Offered (by the PROVIDERS provider's list; the instruction points at it), the private one not.
    assert "- **WEATHER**: Today's weather." in first and "(listed under # Providers above)" in first
    assert "SECRET" not in first
    assert "Sunny, 21 C." not in first and "Sunny, 21 C." in second  # composed, then the plan written again
    assert "Context you can ask for" not in second  # one round of context per turn
    assert seen == {"weather_state_agent": runtime.character.name, "action_state_weather": "sunny"}
    assert [r.text for r in result.responses] == ["Weather is sunny"] and result.mode == "actions"


async def test_action_examples_are_in_the_prompt_and_each_action_run_writes_an_action_log(agent, scripted):
    orch, runtime = await agent(plugins=[_weather_plugin({})])
    scripted.script(ModelType.TEXT_LARGE, plan("CHECK_WEATHER", "ok"))
    result = await orch.handle_message(runtime, IncomingMessage(text="Is it raining?"))

    prompt = scripted.calls[0][1]["prompt"]
    assert "# Action Examples\nUser 1: Is it raining?\n" in prompt
    assert f"{runtime.character.name}: Let me look. (actions: CHECK_WEATHER)" in prompt
    logs = await runtime.adapter.get_logs(runtime.agent_id, room_id=result.room_id, type=LogType.ACTION)
    assert [(log.body["action"], log.body["result"]["success"]) for log in logs] == [("CHECK_WEATHER", True)]
    assert logs[0].body["runId"] == str(result.run_id) and logs[0].body["duration"] >= 0


async def test_the_entities_provider_runs_on_every_message_without_being_asked(agent, scripted):
    orch, runtime = await agent(plugins=[memory_plugin])
    scripted.script(ModelType.TEXT_LARGE, plan("REPLY", "hi"))
    await orch.handle_message(runtime, IncomingMessage(text="hello", user_name="Grace"))
    prompt = scripted.calls[-1][1]["prompt"]
    assert '# People in the Room\n"Grace"' in prompt and "- ENTITIES:" not in prompt


async def test_the_characters_message_handler_and_should_respond_templates_are_used(agent, scripted):
    orch, runtime = await agent(
        templates={
            "shouldRespondTemplate": "DECIDE for {{agentName}}",
            "messageHandlerTemplate": "CUSTOM {{agentName}}\n{{providers}}",
        }
    )
    scripted.script(ModelType.TEXT_SMALL, "<response><action>RESPOND</action></response>")
    scripted.script(ModelType.TEXT_LARGE, plan("REPLY", "custom"))
    message = await _group_message(runtime, "anyone around?")
    result = await handle_message(runtime, message, ChannelType.GROUP)

    name = runtime.character.name
    assert [p["prompt"].split("\n")[0] for _, p in scripted.calls] == [f"DECIDE for {name}", f"CUSTOM {name}"]
    assert [r.text for r in result.responses] == ["custom"]


@pytest.mark.parametrize(
    ("settings", "source", "extra"),
    [
        ({}, "discord", {"mentionContext": {"isMention": False, "isReply": True}}),
        ({}, "discord", {"mentionContext": {"isMention": True}}),
        ({"ALWAYS_RESPOND_CHANNELS": "[group, feed]"}, "discord", {}),
        ({"ALWAYS_RESPOND_SOURCES": "telegram"}, "telegram-bot", {}),
        ({}, "client_chat", {}),
    ],
)
async def test_a_group_message_is_answered_without_a_decision_call_when_elizaos_would_bypass_it(
    agent, scripted, settings, source, extra
):
    orch, runtime = await agent(settings=settings)
    scripted.script(ModelType.TEXT_LARGE, plan("REPLY", "here"))
    message = await _group_message(runtime, "anyone around?", source=source, **extra)
    result = await handle_message(runtime, message, ChannelType.GROUP)
    assert result.did_respond and [t for t, _ in scripted.calls] == [ModelType.TEXT_LARGE]


async def test_without_a_bypass_a_group_message_asks_the_model_whether_to_answer(agent, scripted):
    orch, runtime = await agent(settings={"ALWAYS_RESPOND_SOURCES": "telegram"})
    scripted.script(ModelType.TEXT_SMALL, "<response><action>IGNORE</action></response>")
    message = await _group_message(runtime, "anyone around?", source="discord")
    result = await handle_message(runtime, message, ChannelType.GROUP)
    assert not result.did_respond and [t for t, _ in scripted.calls] == [ModelType.TEXT_SMALL]


async def test_a_turn_longer_than_the_run_timeout_emits_run_timeout_and_ends_its_run(agent, scripted):
    async def slow(runtime, params):
        await asyncio.sleep(5)
        return plan("REPLY", "too late")

    events = []

    async def record(payload):
        events.append((payload.get("status"), payload.get("source")))

    slow_model = Plugin(
        name="slow",
        models=(ModelRegistration(ModelType.TEXT_LARGE, slow, priority=10, capabilities={"structured_output"}),),
        events={EventType.RUN_TIMEOUT: (record,), EventType.RUN_ENDED: (record,)},
    )
    orch, runtime = await agent(plugins=[slow_model], settings={"RUN_TIMEOUT_S": "1"})
    with pytest.raises(RunTimeoutError, match="RUN_TIMEOUT_S=1"):
        await orch.handle_message(runtime, IncomingMessage(text="hi", source="api"))
    assert events == [("timeout", "api"), ("timeout", "api")]
    assert runtime.get_current_run_id() is None


async def test_multi_step_mode_composes_runs_one_action_per_step_and_replies_with_the_summary(agent, scripted):
    seen: dict = {}
    orch, runtime = await agent(plugins=[_weather_plugin(seen)], settings={"USE_MULTI_STEP": "true"})
    scripted.script(
        ModelType.TEXT_LARGE,
        "<response><thought>need weather</thought><providers>WEATHER</providers><action></action>"
        "<isFinish>false</isFinish></response>",
        "<response><thought>tell</thought><providers></providers><action>CHECK_WEATHER</action></response>",
        "<response><isFinish>true</isFinish></response>",
        "<response><thought>done</thought><text>It is sunny today.</text></response>",
    )
    result = await orch.handle_message(runtime, IncomingMessage(text="Weather?"))

    prompts = [p["prompt"] for _, p in scripted.calls]
    assert "No steps yet." in prompts[0]
    assert "1. WEATHER succeeded: # Weather\n       Sunny, 21 C." in prompts[1]
    assert "2. CHECK_WEATHER succeeded: Weather is sunny\n       checked" in prompts[3]
    assert [(r.text, r.content.actions) for r in result.responses] == [("It is sunny today.", ["MULTI_STEP_SUMMARY"])]
    assert result.mode == "simple" and seen["action_state_weather"] == "sunny"


def test_a_second_plugins_action_of_the_same_name_is_skipped_with_a_warning(caplog):
    from core.blueprint import AgentBlueprint

    async def first(*_):
        return ActionResult(text="first")

    async def second(*_):
        return ActionResult(text="second")

    character = load_character_dict({"name": "Dup"})
    blueprint = AgentBlueprint.build(
        character,
        [
            Plugin(name="a", actions=(Action(name="GO", description="a", handler=first),)),
            Plugin(name="b", actions=(Action(name="GO", description="b", handler=second),)),
        ],
    )
    assert blueprint.actions["GO"].handler is first
    assert "action GO of plugin b is already registered for Dup; the first one is kept" in caplog.text
