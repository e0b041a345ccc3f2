from __future__ import annotations

import json
import uuid

import pytest

from core.errors import ModelError
from core.orchestrator import IncomingMessage
from core.types import ChannelType, ModelType
from tests.core.messaging.conftest import drain

REPLY = "<response><thought>greet</thought><actions>REPLY</actions><text>Hello, I am Ada.</text></response>"


async def _history(orchestrator, room_id):
    runtime = orchestrator.runtime(orchestrator.test_agent_name)
    return await runtime.get_memories(room_id, "messages", 50)


async def test_dm_turn_stores_message_and_reply_and_queues_embeddings(orchestrator, scripted, sqs):
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    result = await orchestrator.handle_message(orchestrator.test_agent_name, IncomingMessage(text="Hi, who are you?"))

    assert result.did_respond and result.mode == "simple"
    assert [r.text for r in result.responses] == ["Hello, I am Ada."]
    assert result.responses[0].content.in_reply_to == result.message_id
    history = await _history(orchestrator, result.room_id)
    assert [m.text for m in history] == ["Hi, who are you?", "Hello, I am Ada."]
    assert history[1].entity_id == orchestrator.get_agent(orchestrator.test_agent_name).agent_id
    # The prompt carried the character, the actions and the conversation.
    prompt = scripted.calls[-1][1]["prompt"]
    assert "A helpful test agent." in prompt and "REPLY" in prompt and "Hi, who are you?" in prompt

    client, urls = sqs
    high = [json.loads(b) for b in drain(client, urls["high"])]
    normal = [json.loads(b) for b in drain(client, urls["normal"])]
    # One SendMessageBatch: the reply's request rides in the high queue with its message's.
    assert [r["memoryId"] for r in high] == [str(result.message_id), str(result.responses[0].id)]
    assert normal == []
    assert [r["priority"] for r in high] == ["high", "normal"] and "text" not in high[0]


async def test_conversation_continues_in_the_same_room(orchestrator, scripted):
    scripted.script(ModelType.TEXT_LARGE, REPLY, REPLY.replace("Hello, I am Ada.", "Still me."))
    first = await orchestrator.handle_message(orchestrator.test_agent_name, IncomingMessage(text="one"))
    second = await orchestrator.handle_message(
        orchestrator.test_agent_name, IncomingMessage(text="two", room_id=first.room_id)
    )
    assert second.room_id == first.room_id
    assert [m.text for m in await _history(orchestrator, first.room_id)] == [
        "one",
        "Hello, I am Ada.",
        "two",
        "Still me.",
    ]
    assert "Hello, I am Ada." in scripted.calls[-1][1]["prompt"]


async def test_ignore_stores_no_reply(orchestrator, scripted):
    scripted.script(ModelType.TEXT_LARGE, "<response><actions>IGNORE</actions><text></text></response>")
    result = await orchestrator.handle_message(orchestrator.test_agent_name, IncomingMessage(text="spam"))
    assert not result.did_respond and result.mode == "none" and result.responses == []
    assert [m.text for m in await _history(orchestrator, result.room_id)] == ["spam"]


async def test_malformed_answers_are_retried_then_fail_keeping_the_message(orchestrator, scripted, sqs):
    scripted.script(ModelType.TEXT_LARGE, "garbage", "more garbage", "<thought>no text</thought>")
    room = uuid.uuid4()
    with pytest.raises(ModelError, match="could not be parsed"):
        await orchestrator.handle_message(orchestrator.test_agent_name, IncomingMessage(text="hello?", room_id=room))
    assert len(scripted.calls) == 3
    assert [m.text for m in await _history(orchestrator, room)] == ["hello?"]
    client, urls = sqs
    assert len(drain(client, urls["high"])) == 1  # still queued for embedding


async def test_a_malformed_answer_then_a_good_one_succeeds(orchestrator, scripted):
    scripted.script(ModelType.TEXT_LARGE, "oops", REPLY)
    result = await orchestrator.handle_message(orchestrator.test_agent_name, IncomingMessage(text="hi"))
    assert result.did_respond and len(scripted.calls) == 2


async def test_model_failure_keeps_the_users_message(orchestrator, scripted):
    scripted.script(ModelType.TEXT_LARGE, ModelError("provider down", retryable=True))
    room = uuid.uuid4()
    with pytest.raises(ModelError):
        await orchestrator.handle_message(
            orchestrator.test_agent_name, IncomingMessage(text="still here", room_id=room)
        )
    assert [m.text for m in await _history(orchestrator, room)] == ["still here"]


async def test_group_messages_ask_the_small_model_and_stop_really_stops(orchestrator, scripted):
    scripted.script(ModelType.TEXT_SMALL, "<response><action>STOP</action></response>")
    result = await orchestrator.handle_message(
        orchestrator.test_agent_name, IncomingMessage(text="please be quiet", channel_type=ChannelType.GROUP)
    )
    assert not result.did_respond
    assert [t for t, _ in scripted.calls] == [ModelType.TEXT_SMALL]

    scripted.script(ModelType.TEXT_SMALL, "<response><action>RESPOND</action></response>")
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    result = await orchestrator.handle_message(
        orchestrator.test_agent_name, IncomingMessage(text="what is up", channel_type=ChannelType.GROUP)
    )
    assert result.did_respond


async def test_group_mention_bypasses_the_decision(orchestrator, scripted):
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    name = orchestrator.test_agent_name
    result = await orchestrator.handle_message(
        name, IncomingMessage(text=f"hey {name.lower()}, hi", channel_type=ChannelType.GROUP)
    )
    assert result.did_respond
    assert [t for t, _ in scripted.calls] == [ModelType.TEXT_LARGE]


async def test_other_actions_run_through_their_handlers(orchestrator, scripted):
    scripted.script(
        ModelType.TEXT_LARGE, "<response><actions>REPLY,NO_SUCH_ACTION</actions><text>done</text></response>"
    )
    result = await orchestrator.handle_message(orchestrator.test_agent_name, IncomingMessage(text="do it"))
    assert result.mode == "actions"
    assert [r.text for r in result.responses] == ["done"]


async def test_sqs_outage_does_not_fail_the_reply(orchestrator, scripted, sqs):
    client, urls = sqs
    client.delete_queue(QueueUrl=urls["high"])
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    result = await orchestrator.handle_message(orchestrator.test_agent_name, IncomingMessage(text="hi"))
    assert result.did_respond


async def test_unknown_agent_is_not_found(orchestrator):
    from core.errors import NotFoundError

    with pytest.raises(NotFoundError):
        await orchestrator.handle_message("nobody", IncomingMessage(text="hi"))
