"""The message pipeline's lifecycle: runs, hooks, evaluators, callbacks, streaming, supersede, STOP."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from core.character import load_character_dict
from core.errors import ConfigurationError, DatabaseError, ModelError
from core.events import EventType
from core.orchestrator import AgentSpec, IncomingMessage
from core.plugin import Evaluator, ModelRegistration, Plugin, Provider, ProviderResult, Reject
from core.types import ChannelType, Content, ModelType

REPLY = "<response><thought>t</thought><actions>REPLY</actions><text>Hello &amp; welcome.</text></response>"


async def _agent(orchestrator, request, *plugins: Plugin) -> str:
    name = f"P-{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"
    await orchestrator.add_agents([AgentSpec(load_character_dict({"name": name, "bio": ["x"]}), plugins=plugins)])
    return name


async def _history(orchestrator, agent, room_id):
    return await orchestrator.runtime(agent).get_memories(room_id, "messages", 50)


async def test_run_is_started_announced_and_always_ended(orchestrator, scripted, request):
    seen: list[tuple[str, object]] = []

    async def record(payload):
        seen.append((payload["runtime"].get_current_run_id(), payload.get("status")))

    plugin = Plugin(name="runs", events={EventType.RUN_STARTED: (record,), EventType.RUN_ENDED: (record,)})
    agent = await _agent(orchestrator, request, plugin)
    scripted.script(ModelType.TEXT_LARGE, REPLY, "garbage", "garbage", "garbage")
    runtime = orchestrator.runtime(agent)
    result = await orchestrator.handle_message(runtime, IncomingMessage(text="hi"))

    assert result.run_id is not None and runtime.get_current_run_id() is None
    assert seen == [(result.run_id, "started"), (result.run_id, "completed")]
    # A failed turn still ends its run.
    seen.clear()
    with pytest.raises(ModelError):
        await orchestrator.handle_message(runtime, IncomingMessage(text="again"))
    assert seen[-1][1] == "error" and runtime.get_current_run_id() is None


async def test_before_message_may_rewrite_or_reject(orchestrator, scripted, request):
    async def before(runtime, message):
        if "spam" in message.text:
            return Reject("looks like spam")
        message.content.text = message.text.upper()
        return message

    agent = await _agent(orchestrator, request, Plugin(name="filter", before_message=before))
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    room = uuid.uuid4()
    rejected = await orchestrator.handle_message(agent, IncomingMessage(text="buy spam now", room_id=room))
    assert rejected.rejected == "looks like spam" and not rejected.did_respond
    ok = await orchestrator.handle_message(agent, IncomingMessage(text="hello", room_id=room))
    assert ok.did_respond
    assert [m.text for m in await _history(orchestrator, agent, room)] == ["HELLO", "Hello & welcome."]


async def test_failing_hooks_are_isolated_and_after_message_sees_the_result(orchestrator, scripted, request):
    results = []

    async def broken(*_):
        raise RuntimeError("hook bug")

    async def after(runtime, message, result):
        results.append((message.text, [r.text for r in result.responses]))

    plugins = (
        Plugin(name="broken", before_message=broken, after_message=broken),
        Plugin(name="watcher", after_message=after),
    )
    agent = await _agent(orchestrator, request, *plugins)
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    result = await orchestrator.handle_message(agent, IncomingMessage(text="hi"))
    assert result.did_respond
    assert results == [("hi", ["Hello & welcome."])]


async def test_evaluators_run_after_the_reply_and_failures_do_not_fail_the_turn(orchestrator, scripted, request):
    order: list[str] = []

    async def on_response(content: Content):
        order.append(f"response:{content.text}")

    async def evaluate(runtime, message, state, options, callback, responses):
        order.append(f"evaluated:{[r.text for r in responses]}")

    async def broken(*_):
        raise RuntimeError("evaluator bug")

    async def never(runtime, message, state):
        return False

    evaluators = (
        Evaluator("NOTE", "notes", evaluate),
        Evaluator("BROKEN", "fails", broken),
        Evaluator("SKIPPED", "never valid", evaluate, validate=never),
    )
    agent = await _agent(orchestrator, request, Plugin(name="evals", evaluators=evaluators))
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    completed = []
    result = await orchestrator.handle_message(
        agent, IncomingMessage(text="hi"), on_response=on_response, on_complete=completed.append
    )
    assert result is not None and result.did_respond
    assert order == ["response:Hello & welcome.", "evaluated:['Hello & welcome.']"]
    assert completed == [result]


async def test_always_run_evaluator_runs_when_the_agent_stays_quiet(orchestrator, scripted, request):
    ran = []

    async def evaluate(runtime, message, *_):
        ran.append(message.text)

    agent = await _agent(
        orchestrator,
        request,
        Plugin(
            name="always",
            evaluators=(Evaluator("ALWAYS", "x", evaluate, always_run=True), Evaluator("ONLY_REPLIES", "x", evaluate)),
        ),
    )
    scripted.script(ModelType.TEXT_LARGE, "<response><actions>IGNORE</actions><text></text></response>")
    result = await orchestrator.handle_message(agent, IncomingMessage(text="quiet please"))
    assert not result.did_respond and ran == ["quiet please"]


async def test_callback_mode_reports_errors_instead_of_raising(orchestrator, scripted, request):
    errors = []
    scripted.script(ModelType.TEXT_LARGE, "garbage", "garbage", "garbage")
    outcome = await orchestrator.handle_message(
        orchestrator.test_agent_name, IncomingMessage(text="hi"), on_response=lambda c: None, on_error=errors.append
    )
    assert outcome is None and len(errors) == 1 and "could not be parsed" in str(errors[0])


async def test_max_parse_retries_bounds_the_model_calls(orchestrator, scripted, request):
    name = f"R-{uuid.uuid4().hex[:6]}"
    character = load_character_dict({"name": name, "bio": ["x"], "settings": {"MAX_PARSE_RETRIES": "0"}})
    await orchestrator.add_agents([character])
    scripted.script(ModelType.TEXT_LARGE, "garbage", REPLY)
    with pytest.raises(ModelError, match="could not be parsed"):
        await orchestrator.handle_message(name, IncomingMessage(text="hi"))  # one attempt: REPLY is left unused


async def test_a_malformed_max_parse_retries_fails_the_turn_naming_it(orchestrator, scripted):
    name = f"R-{uuid.uuid4().hex[:6]}"
    await orchestrator.add_agents(
        [load_character_dict({"name": name, "bio": ["x"], "settings": {"MAX_PARSE_RETRIES": "-1"}})]
    )
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    with pytest.raises(ConfigurationError, match="MAX_PARSE_RETRIES: must be at least 0, got -1"):
        await orchestrator.handle_message(name, IncomingMessage(text="hi"))


async def test_structured_answer_streams_only_the_text_element(orchestrator, request):
    answer = (
        "<response><thought>secret plan</thought><actions>REPLY</actions><text>Hi there &amp; hello</text></response>"
    )

    async def streaming_model(runtime, params):
        for i in range(0, len(answer), 5):
            await params["on_stream_chunk"](answer[i : i + 5])
        return answer

    models = Plugin(
        name="streamer",
        models=(ModelRegistration(ModelType.TEXT_LARGE, streaming_model, 100, frozenset({"structured_output"})),),
    )
    agent = await _agent(orchestrator, request, models)
    chunks: list[str] = []
    result = await orchestrator.handle_message(agent, IncomingMessage(text="hi"), on_stream_chunk=chunks.append)
    assert "".join(chunks) == "Hi there & hello" and len(chunks) > 1
    assert result.responses[0].text == "Hi there & hello"


async def test_a_newer_message_supersedes_the_reply_in_flight(orchestrator, scripted, request):
    agent = await _agent(orchestrator, request)
    room = uuid.uuid4()
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(params):
        started.set()
        await release.wait()
        return REPLY

    scripted.script(ModelType.TEXT_LARGE, slow, REPLY.replace("Hello &amp; welcome.", "Second answer."))
    # The scripted model calls callables synchronously: wrap it so the first call can wait.
    original = scripted.text

    async def text(model_type, params):
        answer = scripted.answers[model_type][0]
        if answer is slow:
            scripted.answers[model_type].popleft()
            return await slow(params)
        return await original(model_type, params)

    scripted.text = text
    first = asyncio.create_task(orchestrator.handle_message(agent, IncomingMessage(text="first", room_id=room)))
    await started.wait()
    await asyncio.sleep(0.01)  # the second message must be stored after the first
    second = await orchestrator.handle_message(agent, IncomingMessage(text="second", room_id=room))
    release.set()
    first_result = await first

    assert first_result.superseded and not first_result.did_respond and first_result.responses == []
    assert second.did_respond and not second.superseded
    assert [m.text for m in await _history(orchestrator, agent, room)] == ["first", "second", "Second answer."]


async def test_stop_in_a_group_really_stops(orchestrator, scripted):
    scripted.script(ModelType.TEXT_SMALL, "<response><action>STOP</action></response>")
    result = await orchestrator.handle_message(
        orchestrator.test_agent_name,
        IncomingMessage(text="please stop talking", channel_type=ChannelType.GROUP, room_id=uuid.uuid4()),
    )
    assert result.stopped and not result.did_respond
    assert [c[0] for c in scripted.calls] == [ModelType.TEXT_SMALL]  # no reply was generated


async def test_log_lines_of_a_run_carry_agent_room_and_run_ids(orchestrator, scripted, request):
    from core.log_context import current_log_keys
    from core.plugin import Provider, ProviderResult

    seen = []

    async def peek(runtime, message, state):
        seen.append(current_log_keys())
        return ProviderResult()

    agent = await _agent(orchestrator, request, Plugin(name="peek", providers=(Provider("PEEK", peek),)))
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    result = await orchestrator.handle_message(agent, IncomingMessage(text="hi"))
    assert seen == [
        {
            "agent_id": str(orchestrator.get_agent(agent).agent_id),
            "room_id": str(result.room_id),
            "run_id": str(result.run_id),
        }
    ]
    assert current_log_keys() == {}


async def test_providers_that_take_a_json_schema_get_one_for_the_response(orchestrator, request):
    seen = []

    async def object_model(runtime, params):
        seen.append(params)
        return {"thought": "greet them", "actions": ["reply"], "text": "Hello from JSON."}

    models = Plugin(
        name="schema-model",
        models=(ModelRegistration(ModelType.OBJECT_LARGE, object_model, 100, frozenset({"structured_output"})),),
    )
    agent = await _agent(orchestrator, request, models)
    result = await orchestrator.handle_message(agent, IncomingMessage(text="hi"))

    assert [r.text for r in result.responses] == ["Hello from JSON."]
    assert result.responses[0].content.actions == ["REPLY"] and result.mode == "simple"
    schema = seen[0]["schema"]
    assert set(schema["properties"]) >= {"thought", "actions", "text"} and "actions" in schema["required"]
    assert "<response>" not in seen[0]["prompt"]  # no XML format asked of a schema-taking provider


async def test_a_schema_answer_that_stays_invalid_fails_the_turn_keeping_the_message(orchestrator, request):
    from core.errors import StructuredOutputError

    async def bad_model(runtime, params):
        return {"thought": "no actions"}

    models = Plugin(
        name="bad-schema-model",
        models=(ModelRegistration(ModelType.OBJECT_LARGE, bad_model, 100, frozenset({"structured_output"})),),
    )
    agent = await _agent(orchestrator, request, models)
    room = uuid.uuid4()
    with pytest.raises(StructuredOutputError):
        await orchestrator.handle_message(agent, IncomingMessage(text="hello?", room_id=room))
    assert [m.text for m in await _history(orchestrator, agent, room)] == ["hello?"]


async def test_a_turns_cached_state_is_forgotten_when_the_turn_ends(orchestrator, scripted, request):
    """Nothing reads a message's provider results after its turn; kept, they held the room's recent
    memories per message in every warm container until evicted (8 MiB at the default size)."""
    agent = await _agent(orchestrator, request, Plugin(name="quiet"))
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    runtime = orchestrator.runtime(agent)
    result = await orchestrator.handle_message(runtime, IncomingMessage(text="hi"))
    assert result.did_respond
    assert len(runtime.blueprint.state_cache) == 0


async def test_a_turns_model_usage_logs_are_written_with_its_reply(orchestrator, scripted, request):
    agent = await _agent(orchestrator, request)
    runtime = orchestrator.runtime(agent)
    seen_with_reply: list[int] = []

    async def count_logs(content: Content) -> None:  # the reply is stored; the turn is not over
        seen_with_reply.append(len(await runtime.adapter.get_logs(runtime.agent_id, type="useModel")))

    scripted.script(ModelType.TEXT_LARGE, REPLY)
    result = await orchestrator.handle_message(agent, IncomingMessage(text="hi"), on_response=count_logs)

    # Written in the reply's round trip (core.db.postgres.memories.create_reply), not one each.
    assert seen_with_reply == [1]
    logs = await runtime.adapter.get_logs(runtime.agent_id, type="useModel")
    assert [log.body["modelType"] for log in logs] == ["TEXT_LARGE"]
    assert logs[0].body["runId"] == str(result.run_id)


async def test_when_the_reply_cannot_be_stored_the_turns_logs_are_still_written(orchestrator, scripted, request):
    async def remove_room(runtime, message, state):  # the room is gone before the reply is stored
        await runtime.adapter.delete_room(runtime.agent_id, message.room_id)
        return ProviderResult()

    agent = await _agent(orchestrator, request, Plugin(name="vanishing", providers=[Provider("GONE", remove_room)]))
    runtime = orchestrator.runtime(agent)
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    with pytest.raises(DatabaseError):
        await orchestrator.handle_message(agent, IncomingMessage(text="hi"))
    logs = await runtime.adapter.get_logs(runtime.agent_id, type="useModel")
    assert [log.body["modelType"] for log in logs] == ["TEXT_LARGE"]  # kept, then written at the turn's end


async def test_a_model_call_outside_a_turn_is_logged_at_once(orchestrator, request):
    agent = await _agent(orchestrator, request)
    runtime = orchestrator.runtime(agent)
    await runtime.use_model(ModelType.TEXT_EMBEDDING, {"text": "hello"})
    logs = await runtime.adapter.get_logs(runtime.agent_id, type="useModel")
    assert [log.body["modelType"] for log in logs] == ["TEXT_EMBEDDING"]
