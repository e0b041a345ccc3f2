"""elizaOS plugin-experience on our runtime: RECORD_EXPERIENCE chosen in a turn, the EXPERIENCE
provider's text in the prompt, EXPERIENCE_EVALUATOR on the agent's tenth message. Real
Postgres, scripted model (its embeddings are a hashed bag of words, so similar texts match)."""

from __future__ import annotations

import json

from core.events import EventType
from core.orchestrator import IncomingMessage
from core.types import ChannelType, Content, Memory, ModelType, Room

from .experience import experience_plugin
from .experience.components import EXTRACTION_COUNTER_KEY, detect_domain, sanitize_context
from .experience.types import EXPERIENCES_TABLE, ExperienceQuery, ExperienceType

REPLY = "<response><thought>t</thought><actions>REPLY</actions><text>{}</text></response>"
JQ = "The jq command parses JSON output in the shell"


async def test_record_experience_is_chosen_in_a_turn_and_stores_the_message_with_its_context(make_agent, scripted):
    orchestrator, agent_id = await make_agent(experience_plugin)
    scripted.script(ModelType.TEXT_LARGE, "<response><actions>RECORD_EXPERIENCE</actions><text></text></response>")
    result = await orchestrator.handle_message(agent_id, IncomingMessage(text="Remember that jq parses JSON"))
    runtime = orchestrator.runtime(agent_id)
    [stored] = await runtime.get_memories(result.room_id, EXPERIENCES_TABLE, 5)
    assert stored.text == "Remember that jq parses JSON"
    assert stored.content.model_extra["type"] == "experience"
    assert "Remember that jq parses JSON" in stored.content.model_extra["context"]["recentMessages"]


async def test_record_experience_is_offered_only_when_the_message_says_remember_or_record(make_agent):
    orchestrator, agent_id = await make_agent(experience_plugin)
    runtime = orchestrator.runtime(agent_id)
    action = runtime.find_action("RECORD_EXPERIENCE")

    def message(text):
        return Memory(entity_id=agent_id, agent_id=agent_id, room_id=agent_id, content=Content(text=text))

    assert await action.validate(runtime, message("Please RECORD this"), None)
    assert not await action.validate(runtime, message("hello there"), None)


async def test_the_experience_provider_puts_relevant_experiences_in_the_prompt(make_agent, scripted):
    orchestrator, agent_id = await make_agent(experience_plugin)
    runtime = orchestrator.runtime(agent_id)
    service = runtime.get_service("EXPERIENCE")
    await service.record_experience(
        runtime,
        type=ExperienceType.DISCOVERY,
        context="parsing shell output",
        learning=JQ,
        domain="shell",
        confidence=0.8,
        importance=0.8,
    )
    scripted.script(ModelType.TEXT_LARGE, REPLY.format("Use jq."))
    await orchestrator.handle_message(agent_id, IncomingMessage(text="How do I parse JSON output in the shell?"))
    prompt = next(p["prompt"] for t, p in scripted.calls if t is ModelType.TEXT_LARGE)
    assert "[RELEVANT EXPERIENCES]" in prompt
    assert f"Experience 1: In shell context, when parsing shell output, I learned: {JQ}" in prompt


async def test_the_experience_provider_says_nothing_for_short_messages_or_weak_experiences(make_agent):
    orchestrator, agent_id = await make_agent(experience_plugin)
    runtime = orchestrator.runtime(agent_id)
    await runtime.get_service("EXPERIENCE").record_experience(runtime, learning=JQ, confidence=0.3, importance=0.9)
    provider = next(p for p in runtime.providers if p.name == "EXPERIENCE")

    def message(text):
        return Memory(entity_id=agent_id, agent_id=agent_id, room_id=agent_id, content=Content(text=text))

    assert (await provider.get(runtime, message("jq?"), None)).text == ""
    assert (await provider.get(runtime, message(JQ), None)).text == ""  # confidence 0.3 < 0.6


async def test_the_evaluator_extracts_experiences_on_the_agents_tenth_message(make_agent, scripted):
    orchestrator, agent_id = await make_agent(experience_plugin)
    runtime = orchestrator.runtime(agent_id)
    room = await _self_room(runtime, "Let me try to run this Python script.", "Error: ModuleNotFoundError for pandas.")
    await runtime.set_cache(EXTRACTION_COUNTER_KEY, "9")
    extracted = [
        {
            "type": "CORRECTION",
            "learning": "Install Python packages before running a script that imports them",
            "context": "user asked me to run a script on /home/ada",
            "confidence": 0.95,
        },
        {"type": "LEARNING", "learning": "too unsure to keep", "context": "x", "confidence": 0.4},
    ]
    scripted.script(
        ModelType.TEXT_LARGE,
        lambda p: json.dumps(extracted) if "novel learning experiences" in p["prompt"] else REPLY.format("Noted."),
        lambda p: json.dumps(extracted) if "novel learning experiences" in p["prompt"] else REPLY.format("Noted."),
    )
    await _agent_says(runtime, room, "After installing pandas, the script ran successfully.")

    assert await runtime.get_cache(EXTRACTION_COUNTER_KEY) == "10"
    [found] = await runtime.get_service("EXPERIENCE").query_experiences(runtime, ExperienceQuery())
    assert found.type is ExperienceType.CORRECTION and found.outcome == "positive"
    assert (
        found.confidence == 0.9 and found.importance == 0.8 and found.domain == "shell"
    )  # "script": shell comes first, as upstream
    assert found.context == "when asked me to run a script on /home/[USER]"
    assert found.tags == ["extracted", "novel", "correction"]
    prompt = next(p["prompt"] for t, p in scripted.calls if "novel learning experiences" in p.get("prompt", ""))
    assert "Let me try to run this Python script." in prompt and "Existing similar experiences:\nNone" in prompt


async def test_the_evaluator_ignores_other_peoples_messages_and_the_agents_first_nine(make_agent, scripted):
    orchestrator, agent_id = await make_agent(experience_plugin)
    runtime = orchestrator.runtime(agent_id)
    evaluator = next(e for e in runtime.evaluators if e.name == "EXPERIENCE_EVALUATOR")
    user = Memory(entity_id=agent_id.__class__(int=1), agent_id=agent_id, room_id=agent_id, content=Content(text="hi"))
    own = Memory(entity_id=agent_id, agent_id=agent_id, room_id=agent_id, content=Content(text="hi"))
    assert not await evaluator.validate(runtime, user, None)
    assert [await evaluator.validate(runtime, own, None) for _ in range(10)] == [False] * 9 + [True]


def test_the_helpers_sanitize_and_classify_as_upstream():
    assert sanitize_context("mail ada@example.com from 10.0.0.1") == "mail [EMAIL] from [IP]"
    assert sanitize_context("") == "Unknown context"
    assert detect_domain("curl the api") == "network" and detect_domain("a poem") == "general"


async def _self_room(runtime, *earlier: str) -> Room:
    """A SELF room with the agent's ``earlier`` messages in it."""
    room = Room(
        id=runtime.agent_id.__class__(int=runtime.agent_id.int ^ 1),
        agent_id=runtime.agent_id,
        type=ChannelType.SELF,
        source="test",
    )
    await runtime.ensure_room_exists(room)
    await runtime.ensure_participant_in_room(runtime.agent_id, room.id)
    for text in earlier:
        await runtime.create_memory(_own(runtime, room, text), "messages")
    return room


def _own(runtime, room, text) -> Memory:
    return Memory(entity_id=runtime.agent_id, agent_id=runtime.agent_id, room_id=room.id, content=Content(text=text))


async def _agent_says(runtime, room, text) -> None:
    """The agent's own message, delivered as a connector (or the autonomy service) does."""
    await runtime.emit_event(EventType.MESSAGE_RECEIVED, {"message": _own(runtime, room, text), "source": "test"})
