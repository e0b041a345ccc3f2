"""MUTE_ROOM and FOLLOW_ROOM end to end: the agent's room state steers the next turns' should-respond step."""

from __future__ import annotations

import uuid

from core.db.adapter import ParticipantUserState
from core.orchestrator import IncomingMessage
from core.types import ChannelType, ModelType

REPLY = "<response><actions>REPLY</actions><text>Here I am.</text></response>"


def _plan(action: str) -> str:
    return f"<response><thought>asked to</thought><actions>{action}</actions><text></text></response>"


async def _say(orchestrator, room_id: uuid.UUID, text: str, entity_id: uuid.UUID):
    message = IncomingMessage(text=text, room_id=room_id, entity_id=entity_id, channel_type=ChannelType.GROUP)
    return await orchestrator.handle_message(orchestrator.test_agent_name, message)


async def _agent_state(orchestrator, room_id: uuid.UUID) -> ParticipantUserState | None:
    runtime = orchestrator.runtime(orchestrator.test_agent_name)
    return await runtime.get_participant_user_state(room_id, runtime.agent_id)


async def test_a_muted_group_is_ignored_without_a_model_call_until_the_agent_is_named(orchestrator, scripted):
    name, room, user = orchestrator.test_agent_name, uuid.uuid4(), uuid.uuid4()
    scripted.script(ModelType.TEXT_LARGE, _plan("MUTE_ROOM"))
    scripted.script(ModelType.TEXT_SMALL, "YES")  # MUTE_ROOM's own question
    await _say(orchestrator, room, f"{name}, please be quiet in here", user)
    assert await _agent_state(orchestrator, room) is ParticipantUserState.MUTED

    scripted.calls.clear()
    quiet = await _say(orchestrator, room, "so what does everyone think?", user)
    assert not quiet.did_respond and quiet.mode == "none"
    assert scripted.calls == []  # no should-respond call, no reply call

    scripted.script(ModelType.TEXT_LARGE, REPLY)
    named = await _say(orchestrator, room, f"what do you think, {name.upper()}?", user)
    assert named.did_respond and [r.text for r in named.responses] == ["Here I am."]
    assert [t for t, _ in scripted.calls] == [ModelType.TEXT_LARGE]


async def test_a_followed_group_is_answered_without_the_should_respond_call(orchestrator, scripted):
    name, room, user = orchestrator.test_agent_name, uuid.uuid4(), uuid.uuid4()
    scripted.script(ModelType.TEXT_LARGE, _plan("FOLLOW_ROOM"))
    scripted.script(ModelType.TEXT_SMALL, "YES")  # FOLLOW_ROOM's own question
    await _say(orchestrator, room, f"{name}, please follow this conversation", user)
    assert await _agent_state(orchestrator, room) is ParticipantUserState.FOLLOWED

    scripted.calls.clear()
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    answered = await _say(orchestrator, room, "so what does everyone think?", user)
    assert answered.did_respond
    assert [t for t, _ in scripted.calls] == [ModelType.TEXT_LARGE]  # straight to the reply


async def test_an_ordinary_group_still_asks_the_small_model(orchestrator, scripted):
    scripted.script(ModelType.TEXT_SMALL, "<response><action>IGNORE</action></response>")
    result = await _say(orchestrator, uuid.uuid4(), "so what does everyone think?", uuid.uuid4())
    assert not result.did_respond and [t for t, _ in scripted.calls] == [ModelType.TEXT_SMALL]
