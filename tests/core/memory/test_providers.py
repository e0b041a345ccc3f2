from __future__ import annotations

import logging
import uuid

from core.errors import ModelError
from core.memory import providers as memory_providers
from core.memory.providers import ENTITIES, FACTS, RELATIONSHIPS
from core.types import ChannelType, Component, Content, Memory, ModelType, State
from core.types.fact import Fact
from tests.core.memory.conftest import bag_of_words, embed_all, irc_lines, seed_room

FACT_TEXTS = [
    "billytwowilly runs the Linux kernel 2.6.8.1-3-686.",
    "tweaked is new to Linux.",
    "HrdwrBoB mounts his storage drive at /home/hrdwrbob/storage.",
    "mdz says there are MythTV packages for Ubuntu.",
    "epod once found 1951 pieces of spyware with Ad-Aware on a customer's PC.",
    "traviss wanted the apt-get command for the gtk and glib development packages.",
    "ogra listed the conference attendees on the wiki.",
    "tuxx uses the install CD as a package source.",
]


def message(runtime, room_id, entity_id, text: str) -> Memory:
    return Memory(agent_id=runtime.agent_id, room_id=room_id, entity_id=entity_id, content=Content(text=text))


async def store_facts(runtime, room_id, texts, embed=None) -> list[Fact]:
    writes = await runtime.adapter.upsert_facts(
        [Fact(agent_id=runtime.agent_id, room_id=room_id, text=t) for t in texts]
    )
    if embed:
        await embed_all(runtime.adapter, [w.fact.to_memory() for w in writes], embed)
    return [w.fact for w in writes]


def test_the_providers_are_dynamic_as_in_elizaos():
    assert all(p.dynamic for p in (FACTS, RELATIONSHIPS, ENTITIES))
    assert [p.name for p in (FACTS, RELATIONSHIPS, ENTITIES)] == ["FACTS", "RELATIONSHIPS", "ENTITIES"]


# -- FACTS -----------------------------------------------------------------------------------------


async def test_facts_nearest_to_the_message_come_first(make_runtime, scripted, monkeypatch):
    monkeypatch.setattr(memory_providers, "RECENT_FACTS", 2)
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 20))
    await store_facts(runtime, room.room_id, FACT_TEXTS, bag_of_words(scripted))
    asked = message(runtime, room.room_id, room.people["billytwowilly"], "which linux kernel does billytwowilly run?")

    result = await FACTS.get(runtime, asked, State())

    facts = result.data["facts"]
    assert facts[0].text == FACT_TEXTS[0]
    assert result.text.startswith("# Key facts that Eliza knows\n- billytwowilly runs the Linux kernel")
    assert result.values["facts"].count("\n") == len(facts) - 1
    assert len({f.id for f in facts}) == len(facts) <= 6 + 2  # relevant + recent, each once
    assert scripted.calls[-1] == (ModelType.TEXT_EMBEDDING, {"text": "which linux kernel does billytwowilly run?"})


async def test_facts_of_other_rooms_are_not_shown(make_runtime, scripted):
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 20))
    elsewhere = await seed_room(runtime, irc_lines(1, 5))
    await store_facts(runtime, elsewhere.room_id, ["billytwowilly has a secret"], bag_of_words(scripted))
    result = await FACTS.get(runtime, message(runtime, room.room_id, room.people["epod"], "billytwowilly"), State())
    assert result.text == "" and result.data["facts"] == [] and result.values == {"facts": ""}


async def test_facts_fall_back_to_recent_ones_when_the_embedding_fails(make_runtime, scripted, caplog):
    caplog.set_level(logging.WARNING)
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 20))
    await store_facts(runtime, room.room_id, FACT_TEXTS[:3])

    async def broken(params):
        raise ModelError("embedding service down", provider="scripted")

    scripted.embed = broken  # the TEXT_EMBEDDING handler calls it
    result = await FACTS.get(runtime, message(runtime, room.room_id, room.people["epod"], "kernel?"), State())
    assert {f.text for f in result.data["facts"]} == set(FACT_TEXTS[:3])
    assert "similarity search failed" in caplog.text


async def test_facts_through_compose_state_by_name(make_runtime, scripted):
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 20))
    await store_facts(runtime, room.room_id, FACT_TEXTS[:2], bag_of_words(scripted))
    asked = message(runtime, room.room_id, room.people["tweaked"], "am I new to linux?")
    assert "FACTS" not in (await runtime.compose_state(asked)).data.get("providers", {})
    state = await runtime.compose_state(asked, include_list=["FACTS"], only_include=True)
    assert "tweaked is new to Linux." in state.text and "tweaked is new to Linux." in state.values["facts"]


# -- RELATIONSHIPS ---------------------------------------------------------------------------------


async def test_relationships_list_the_other_side_with_strength_and_direction(make_runtime):
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 130))
    people, adapter, agent = room.people, runtime.adapter, runtime.agent_id
    await adapter.create_relationship(
        agent, people["HrdwrBoB"], people["tweaked"], tags=["group_interaction", "helping"]
    )
    for _ in range(3):
        await adapter.record_interaction(agent, people["HrdwrBoB"], people["tweaked"])
    await adapter.record_interaction(agent, people["tweaked"], people["|trey|"])

    result = await RELATIONSHIPS.get(runtime, message(runtime, room.room_id, people["tweaked"], "hi"), State())

    lines = result.text.splitlines()
    assert lines[0] == "# Relationships (2) - tweaked's connections"
    assert lines[1] == "name,direction,interactions,strength,tags"
    assert lines[2] == "HrdwrBoB,from,3,0.27,group_interaction;helping"  # the sender is the target here
    assert lines[3] == "|trey|,to,1,0.10,"
    assert [r.interaction_count for r in result.data["relationships"]] == [3, 1]


async def test_names_with_commas_are_quoted(make_runtime):
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 10))
    odd = uuid.uuid4()
    await runtime.ensure_connection(
        entity_id=odd, room_id=room.room_id, user_name='Smith, "J"', channel_type=ChannelType.GROUP
    )
    await runtime.adapter.record_interaction(runtime.agent_id, room.people["epod"], odd)
    result = await RELATIONSHIPS.get(runtime, message(runtime, room.room_id, room.people["epod"], "x"), State())
    assert result.text.splitlines()[2] == '"Smith, ""J""",to,1,0.10,'


async def test_no_relationships_says_so(make_runtime):
    runtime = make_runtime()
    result = await RELATIONSHIPS.get(runtime, message(runtime, uuid.uuid4(), uuid.uuid4(), "x"), State())
    assert result.text == "No relationships found." and result.data == {"relationships": []}


# -- ENTITIES --------------------------------------------------------------------------------------


async def test_entities_list_the_sender_first_with_component_data(make_runtime):
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 30))
    sender = room.people["bob2"]
    await runtime.adapter.create_component(
        Component(entity_id=sender, agent_id=runtime.agent_id, type="profile", data={"distro": "debian"})
    )
    result = await ENTITIES.get(runtime, message(runtime, room.room_id, sender, "hi"), State())
    blocks = result.text.split("\n\n")
    assert blocks[0].startswith(f'# People in the Room\n"bob2"\nID: {sender}\nData: ')
    assert '"distro":"debian"' in blocks[0] and '"irc":{"userName":"bob2"}' in blocks[0]
    assert result.values["senderName"] == "bob2" and len(result.data["entitiesData"]) == len(room.people)


async def test_entities_are_bounded(make_runtime, monkeypatch):
    monkeypatch.setattr(memory_providers, "MAX_ENTITIES", 3)
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 130))
    result = await ENTITIES.get(runtime, message(runtime, room.room_id, room.people["mdz"], "x"), State())
    assert result.text.count("\nID: ") == 3
    assert result.text.endswith(f"... and {len(room.people) - 3} more people in the room")


async def test_an_empty_room_has_no_entities_text(make_runtime):
    runtime = make_runtime()
    result = await ENTITIES.get(runtime, message(runtime, uuid.uuid4(), uuid.uuid4(), "x"), State())
    assert result.text == "" and result.values == {"entities": "", "senderName": ""}
