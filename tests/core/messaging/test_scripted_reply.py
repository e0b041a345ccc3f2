"""SCRIPTED_REPLY: the scripted models answer every text call so that a turn replies with it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from core.memory.reflection import parse_reflection
from core.messaging.response_parser import parse_response, parse_tag
from core.model_providers.scripted import fixed_answer
from core.orchestrator import IncomingMessage
from core.types import ChannelType

REPLY = 'Hi <there> & "welcome"'


def test_the_fixed_answer_reads_as_a_reply_a_respond_decision_and_an_empty_reflection() -> None:
    answer = fixed_answer(REPLY)

    parsed = parse_response(answer)
    assert parsed.text == REPLY and parsed.actions == ["REPLY"]
    assert parse_tag(answer, "action") == "RESPOND"
    reflection = parse_reflection(answer)
    assert reflection is not None and reflection.facts == () and reflection.relationships == ()


async def test_every_turn_replies_with_the_fixed_reply_in_direct_and_group_rooms(orchestrator, scripted) -> None:
    scripted.fixed_reply = REPLY
    name = orchestrator.test_agent_name

    direct = [await orchestrator.handle_message(name, IncomingMessage(text=f"message {i}")) for i in range(3)]
    group = await orchestrator.handle_message(
        name, IncomingMessage(text="anyone?", room_id=uuid.uuid4(), channel_type=ChannelType.GROUP)
    )

    assert [r.responses[0].text for r in direct] == [REPLY] * 3
    assert group.did_respond and group.responses[0].text == REPLY
    assert scripted.calls == []  # a load test keeps no log of calls


def test_the_process_models_read_scripted_reply_from_the_environment() -> None:
    code = "from core.model_providers import scripted; print(scripted.models.fixed_reply)"
    env = {**os.environ, "SCRIPTED_REPLY": "hi"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "hi"
