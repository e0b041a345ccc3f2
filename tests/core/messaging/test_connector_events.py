"""A connector ported from elizaOS: it emits MESSAGE_RECEIVED with a callback and gets the reply
through it; observers see one MESSAGE_RECEIVED per message. Real Postgres, scripted model."""

from __future__ import annotations

import uuid

from core.events import EventType
from core.types import ChannelType, Content, Memory, ModelType

REPLY = "<response><thought>t</thought><actions>REPLY</actions><text>Hello from Ada.</text></response>"


async def _connector_message(runtime, room_id=None, channel_type=ChannelType.GROUP, **extra):
    message = Memory(
        entity_id=uuid.uuid4(),
        agent_id=runtime.agent_id,
        room_id=room_id or uuid.uuid4(),
        content=Content(text="hi there", channel_type=channel_type.value, **extra),
    )
    return message


async def test_message_received_from_a_connector_is_answered_through_its_callback(orchestrator, scripted):
    runtime = orchestrator.runtime(orchestrator.test_agent_name)
    seen = []

    async def observe(payload):
        seen.append((payload["message"].id, payload.get("source"), "runId" in payload))

    runtime.register_event(EventType.MESSAGE_RECEIVED, observe)
    message = await _connector_message(runtime, mentionContext={"isMention": True})
    await runtime.ensure_connection(
        entity_id=message.entity_id, room_id=message.room_id, source="discord", channel_type=ChannelType.GROUP
    )
    sent: list[Content] = []

    async def callback(content):
        sent.append(content)
        return []

    scripted.script(ModelType.TEXT_LARGE, REPLY)
    await runtime.emit_event(
        EventType.MESSAGE_RECEIVED, {"message": message, "callback": callback, "source": "discord"}
    )

    assert [c.text for c in sent] == ["Hello from Ada."]
    assert seen == [(message.id, "discord", False)]  # the connector's event only, not a second one
    history = await runtime.get_memories(message.room_id, "messages", 10)
    assert [(m.text, m.content.source) for m in history] == [("hi there", "discord"), ("Hello from Ada.", "discord")]


async def test_a_turn_started_by_the_api_announces_its_message_once_and_is_not_answered_twice(orchestrator, scripted):
    from core.orchestrator import IncomingMessage

    runtime = orchestrator.runtime(orchestrator.test_agent_name)
    seen = []

    async def observe(payload):
        seen.append(payload["runId"])

    runtime.register_event(EventType.MESSAGE_RECEIVED, observe)
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    result = await orchestrator.handle_message(runtime, IncomingMessage(text="hi"))
    assert seen == [result.run_id] and len(result.responses) == 1 and len(scripted.calls) == 1


async def test_message_received_for_a_room_the_agent_does_not_know_is_not_answered(orchestrator, scripted):
    runtime = orchestrator.runtime(orchestrator.test_agent_name)
    message = await _connector_message(runtime)
    await runtime.emit_event(EventType.MESSAGE_RECEIVED, {"message": message, "callback": None, "source": "x"})
    assert scripted.calls == [] and await runtime.get_memories(message.room_id, "messages", 10) == []
