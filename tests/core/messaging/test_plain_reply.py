"""Models without structured output (the tiny local model) get a plain chat request."""

from __future__ import annotations

from dataclasses import replace

from core.orchestrator import IncomingMessage
from core.types import ModelType


async def test_plain_models_reply_without_the_action_format(orchestrator, scripted):
    blueprint = orchestrator.get_agent(orchestrator.test_agent_name)
    entries = blueprint.models.candidates(ModelType.TEXT_LARGE)  # the registry's own list: made plain in place
    entries[:] = [e._replace(registration=replace(e.registration, capabilities=frozenset())) for e in entries]
    scripted.script(ModelType.TEXT_LARGE, "  Hi! I'm Ada.  ")

    first = await orchestrator.handle_message(orchestrator.test_agent_name, IncomingMessage(text="Hello"))
    assert first.did_respond and first.mode == "simple"
    assert [(r.text, r.content.actions) for r in first.responses] == [("Hi! I'm Ada.", ["REPLY"])]
    params = scripted.calls[-1][1]
    assert "prompt" not in params
    assert params["messages"] == [{"role": "user", "content": "Hello"}]
    assert params["repeat_penalty"] > 1 and "A helpful test agent." in params["system"]

    scripted.script(ModelType.TEXT_LARGE, "Sure.")
    await orchestrator.handle_message(orchestrator.test_agent_name, IncomingMessage(text="And?", room_id=first.room_id))
    assert [m["role"] for m in scripted.calls[-1][1]["messages"]] == ["user", "assistant", "user"]
