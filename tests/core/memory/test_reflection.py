from __future__ import annotations

import logging
import uuid

import pytest

from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.errors import ConfigurationError, ModelError
from core.memory.reflection import (
    handler,
    marker_key,
    parse_reflection,
    reflect,
    reflection,
    reflection_interval,
    validate,
)
from core.plugin import ProviderResult
from core.settings import Settings
from core.types import ChannelType, Content, Memory, ModelType, State
from core.types.fact import FACTS_TABLE, Fact
from tests.core.memory.conftest import drain, fixture_text, irc_lines, seed_room, sql
from tests.wire import WireTrace

ANSWER = """<response><thought>ok</thought>
<facts><fact><claim>tweaked is new to Linux</claim><subject>tweaked</subject><predicate>is new to</predicate>
<object>Linux</object><type>status</type><in_bio>false</in_bio><already_known>false</already_known></fact></facts>
<relationships><relationship><sourceEntityId>HrdwrBoB</sourceEntityId><targetEntityId>tweaked</targetEntityId>
<tags>group_interaction, helping ,helping</tags></relationship></relationships></response>"""


# -- parsing ---------------------------------------------------------------------------------------


def test_the_xml_answer_is_read_with_every_field():
    answer = parse_reflection(ANSWER)
    (fact,) = answer.facts
    assert (fact.claim, fact.subject, fact.predicate, fact.object, fact.kind) == (
        "tweaked is new to Linux",
        "tweaked",
        "is new to",
        "Linux",
        "status",
    )
    assert not fact.in_bio and not fact.already_known
    (tie,) = answer.relationships
    assert (tie.source, tie.target, tie.tags) == ("HrdwrBoB", "tweaked", ("group_interaction", "helping"))
    assert answer.thought == "ok"


def test_fences_think_sections_and_entities_are_handled():
    xml = ANSWER.replace("tweaked is new", "tweaked &amp; co are new")
    raw = "<think>let me see</think>Sure!\n```xml\n" + xml + "\n```"
    answer = parse_reflection(raw)
    assert answer.facts[0].claim == "tweaked & co are new to Linux"


def test_empty_sections_are_a_valid_answer_with_nothing_in_it():
    answer = parse_reflection("<response><thought>quiet</thought><facts></facts><relationships/></response>")
    assert answer is not None and answer.facts == () and answer.relationships == ()


def test_a_json_answer_is_accepted():
    answer = parse_reflection(
        '{"thought": "t", "facts": [{"claim": "mdz uses MythTV", "already_known": true},'
        ' {"type": "fact"}], "relationships": [{"sourceEntityId": "a", "targetEntityId": "b",'
        ' "tags": ["group_interaction"]}, {"sourceEntityId": "a"}]}'
    )
    assert [f.claim for f in answer.facts] == ["mdz uses MythTV"] and answer.facts[0].already_known
    assert [(r.source, r.target, r.tags) for r in answer.relationships] == [("a", "b", ("group_interaction",))]


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "I could not find any facts in this conversation.",
        "<response><thought>x</thought><facts><fact><claim>a</claim></fact></facts></response>",  # no relationships
        "<response><facts><fact><claim>cut short",
        '{"facts": "none"}',
        "{not json}",
    ],
)
def test_malformed_answers_parse_to_none(raw):
    assert parse_reflection(raw) is None


def test_items_without_their_required_parts_are_dropped():
    answer = parse_reflection(
        "<facts><fact><subject>x</subject></fact><fact><claim> a\x00 b </claim></fact></facts>"
        "<relationships><relationship><sourceEntityId>a</sourceEntityId></relationship>"
        "</relationships>"
    )
    assert [f.claim for f in answer.facts] == ["a b"] and answer.relationships == ()


# -- validate --------------------------------------------------------------------------------------


def test_the_interval_follows_elizaos_unless_set(make_runtime):
    assert reflection_interval(make_runtime()) == 8  # ceil(32 / 4)
    assert reflection_interval(make_runtime({"CONVERSATION_LENGTH": 10})) == 3
    assert reflection_interval(make_runtime({"REFLECTION_INTERVAL": "5"})) == 5


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"REFLECTION_INTERVAL": "often"}, "REFLECTION_INTERVAL: must be an integer, got 'often'"),
        ({"REFLECTION_INTERVAL": 0}, "REFLECTION_INTERVAL: must be at least 1, got 0"),
        ({"REFLECTION_INTERVAL": 5000}, "REFLECTION_INTERVAL: must be at most 1000, got 5000"),
        ({"CONVERSATION_LENGTH": "lots"}, "CONVERSATION_LENGTH: must be an integer, got 'lots'"),
    ],
)
def test_an_invalid_interval_is_an_error_naming_the_setting(make_runtime, settings, message):
    with pytest.raises(ConfigurationError, match=message):
        reflection_interval(make_runtime(settings))


async def test_an_invalid_interval_skips_reflection_without_failing_the_turn(make_runtime, caplog):
    # The one rule raises; the runtime isolates evaluators, so the reply is already out and only
    # reflection is skipped, with the setting named in the log.
    runtime = make_runtime({"REFLECTION_INTERVAL": "often"})
    message = Memory(
        entity_id=uuid.uuid4(), agent_id=runtime.agent_id, room_id=uuid.uuid4(), content=Content(text="hello")
    )
    caplog.set_level(logging.ERROR)
    assert await runtime.evaluate(message, State()) == []
    assert "REFLECTION_INTERVAL: must be an integer" in caplog.text


async def test_validate_is_true_every_n_messages_of_the_room(make_runtime, scripted):
    runtime = make_runtime({"REFLECTION_INTERVAL": 3})
    room = await seed_room(runtime, irc_lines(1, 2))
    last = room.messages[-1]
    assert not await validate(runtime, last)
    more = await seed_room(runtime, irc_lines(3, 3), room_id=room.room_id)
    assert await validate(runtime, more.messages[-1])

    scripted.script(ModelType.TEXT_SMALL, "<facts/><relationships/>")
    await handler(runtime, more.messages[-1], None, {}, None, [])
    assert not await validate(runtime, more.messages[-1])  # the marker moved past every message
    later = await seed_room(runtime, irc_lines(4, 6), room_id=room.room_id)
    assert await validate(runtime, later.messages[-1])
    assert reflection.validate is validate and reflection.name == "REFLECTION"


def _recent(messages: list[Memory]) -> State:
    """A composed state whose RECENT_MESSAGES holds ``messages``."""
    return State(data={"providers": {"RECENT_MESSAGES": ProviderResult(data={"recentMessages": messages})}})


async def test_a_conversation_shorter_than_the_interval_is_not_due_and_reads_nothing(make_runtime, database_url):
    runtime = make_runtime({"REFLECTION_INTERVAL": 3})
    room = await seed_room(runtime, irc_lines(1, 2))
    # RECENT_MESSAGES asked for 32 and found 2: the whole room. An adapter on a pool never
    # opened fails any read, so a False here is decided without the database.
    runtime.adapter = PostgresAdapter(create_pool(Settings(database_url=database_url)))
    assert not await validate(runtime, room.messages[-1], _recent(room.messages))


async def test_a_full_recent_messages_page_is_not_taken_for_the_whole_room(make_runtime):
    runtime = make_runtime({"REFLECTION_INTERVAL": 3, "CONVERSATION_LENGTH": 2})
    room = await seed_room(runtime, irc_lines(1, 5))
    # Two recent messages, fewer than the interval, but the page was full: the room is read.
    assert await validate(runtime, room.messages[-1], _recent(room.messages[-2:]))


# -- reflection on the real #ubuntu conversation ------------------------------------------------------


async def test_reflection_on_a_real_group_conversation_stores_facts_and_relationships(make_runtime, scripted, sqs):
    runtime = make_runtime({"CONVERSATION_LENGTH": 200})
    room = await seed_room(runtime, irc_lines(1, 130))
    people = room.people
    trigger = room.messages[-1]
    scripted.script(ModelType.TEXT_SMALL, fixture_text("ubuntu_irc_reflection.xml"))

    report = await reflect(runtime, trigger)

    # The prompt showed the real conversation, who is in the room (with ids) and the context.
    prompt = scripted.calls[-1][1]["prompt"]
    assert "billytwowilly: I thought I installed those.. I'll take a look again" in prompt
    assert f"- HrdwrBoB (ID: {people['HrdwrBoB']})" in prompt and "Room type: GROUP" in prompt
    sender = irc_lines(1, 130)[-1].nick
    assert f"Last message from: {sender} (ID: {people[sender]})" in prompt

    assert (report.facts_created, report.facts_confirmed, report.facts_skipped) == (8, 0, 1)
    facts = {f.text: f for f in report.stored}
    kernel = facts["billytwowilly runs the Linux kernel 2.6.8.1-3-686."]
    assert kernel.entity_id == people["billytwowilly"] and kernel.kind == "status"
    assert (kernel.subject, kernel.predicate, kernel.object) == ("billytwowilly", "runs kernel", "2.6.8.1-3-686")
    assert kernel.confidence == 0.5 and kernel.source_message_id == trigger.id and kernel.source == "reflection"
    helped = facts["tweaked formatted /dev/hdb1 as ext3 with help from HrdwrBoB."]
    assert helped.entity_id == people["tweaked"] and helped.object_entity_id == people["HrdwrBoB"]
    assert "Ubuntu is a Linux distribution." not in facts  # already known: skipped
    stored = await runtime.adapter.list_memories(runtime.agent_id, table=FACTS_TABLE, room_id=room.room_id, limit=50)
    assert len(stored.memories) == 8

    # New facts are queued for embedding, at low priority.
    await runtime.flush_embeddings()
    client, urls = sqs
    assert {r["memoryId"] for r in drain(client, urls["low"])} == {str(f.id) for f in report.stored}

    # Relationships between the right entities, with tags, one interaction each; ubotu is not here.
    assert (report.relationships, report.relationships_skipped) == (5, 1)
    help_tie = await runtime.adapter.get_relationship(runtime.agent_id, people["HrdwrBoB"], people["tweaked"])
    assert help_tie.tags == ["group_interaction", "helping"]
    assert help_tie.interaction_count == 1 and help_tie.strength == pytest.approx(0.1)
    back = await runtime.adapter.get_relationship(runtime.agent_id, people["tweaked"], people["HrdwrBoB"])
    assert back.tags == ["group_interaction", "asking_for_help"]
    assert await runtime.adapter.get_relationship(runtime.agent_id, people["Matt|"], people["epod"]) is not None

    # The marker records the newest message reflected on.
    marker = await runtime.adapter.get_cache(runtime.agent_id, marker_key(room.room_id))
    assert marker == {"messageId": str(trigger.id), "createdAt": room.messages[-1].created_at}


async def test_reflecting_again_confirms_instead_of_duplicating(make_runtime, scripted):
    runtime = make_runtime({"CONVERSATION_LENGTH": 200})
    room = await seed_room(runtime, irc_lines(1, 130))
    scripted.script(
        ModelType.TEXT_SMALL, fixture_text("ubuntu_irc_reflection.xml"), fixture_text("ubuntu_irc_reflection.xml")
    )
    await reflect(runtime, room.messages[-1])
    later = await seed_room(runtime, irc_lines(131, 140), room_id=room.room_id)

    report = await reflect(runtime, later.messages[-1])

    assert (report.facts_created, report.facts_confirmed) == (0, 8)
    assert {f.confidence for f in report.stored} == {0.75} and {f.mentions for f in report.stored} == {2}
    assert await runtime.adapter.count_memories(runtime.agent_id, room.room_id, FACTS_TABLE) == 8
    # The known facts were in the second prompt, for the model to mark already_known.
    assert "- tweaked is new to Linux." in scripted.calls[-1][1]["prompt"]
    tie = await runtime.adapter.get_relationship(runtime.agent_id, room.people["HrdwrBoB"], room.people["tweaked"])
    assert tie.interaction_count == 2 and tie.strength == pytest.approx(0.19)
    assert tie.tags == ["group_interaction", "helping"]


@pytest.mark.parametrize(
    "answer",
    [
        "Sorry, I cannot help with that.",
        fixture_text("ubuntu_irc_reflection.xml").split("<relationships>")[0],  # cut short
        "<response><thought>x</thought></response>",
        ModelError("scripted outage", provider="scripted"),
    ],
)
async def test_a_malformed_answer_or_failed_call_stores_nothing_and_never_raises(
    make_runtime, scripted, caplog, answer
):
    caplog.set_level(logging.WARNING)
    runtime = make_runtime({"CONVERSATION_LENGTH": 200})
    room = await seed_room(runtime, irc_lines(1, 60))
    scripted.script(ModelType.TEXT_SMALL, answer)

    await handler(runtime, room.messages[-1], None, {}, None, [])

    assert await runtime.adapter.count_memories(runtime.agent_id, room.room_id, FACTS_TABLE) == 0
    assert await runtime.adapter.get_relationships(runtime.agent_id, room.people["billytwowilly"]) == []
    assert "malformed" in caplog.text or "model call failed" in caplog.text


async def test_a_database_failure_is_logged_not_raised(make_runtime, caplog):
    caplog.set_level(logging.ERROR)
    runtime = make_runtime()
    message = Memory(
        agent_id=runtime.agent_id, room_id=uuid.uuid4(), entity_id=uuid.uuid4(), content=Content(text="hi")
    )

    class Broken:
        def __getattr__(self, name):
            async def fail(*args, **kwargs):
                raise RuntimeError("database down")

            return fail

    runtime.adapter = Broken()
    await handler(runtime, message)
    assert "reflection in room" in caplog.text and "database down" in caplog.text


async def test_only_participants_and_the_agent_resolve(make_runtime, scripted, agent_id):
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 30))
    people = room.people
    made_up = uuid.uuid4()
    scripted.script(
        ModelType.TEXT_SMALL,
        f"""<response><facts>
      <fact><claim>Eliza welcomed bob2</claim><subject>eliza</subject><predicate>welcomed</predicate>
        <object>bob2</object></fact>
      <fact><claim>trey likes spyware counts</claim><subject>trey</subject><predicate>likes</predicate>
        <object>spyware counts</object><type>rumour</type></fact></facts>
      <relationships>
      <relationship><sourceEntityId>{agent_id}</sourceEntityId><targetEntityId>{people["bob2"]}</targetEntityId>
        <tags></tags></relationship>
      <relationship><sourceEntityId>{made_up}</sourceEntityId><targetEntityId>bob2</targetEntityId>
        <tags>group_interaction</tags></relationship>
      <relationship><sourceEntityId>tre</sourceEntityId><targetEntityId>bob2</targetEntityId></relationship>
      <relationship><sourceEntityId>bob2</sourceEntityId><targetEntityId>BOB2</targetEntityId></relationship>
      </relationships></response>""",
    )

    report = await reflect(runtime, room.messages[-1])

    eliza_fact, trey_fact = sorted(report.stored, key=lambda f: f.text)
    assert eliza_fact.entity_id == agent_id and eliza_fact.object_entity_id == people["bob2"]
    assert trey_fact.entity_id == agent_id and trey_fact.kind is None  # "trey" is not "|trey|"; no such kind
    # The agent's tie needs an entities row for the agent: created then, named after the character.
    (tie,) = report.ties
    assert (tie.source_entity_id, tie.target_entity_id, tie.tags) == (agent_id, people["bob2"], ["group_interaction"])
    assert (await runtime.adapter.get_entities_by_ids(agent_id, [agent_id]))[0].names == ["Eliza"]
    # A made-up id, a partial name and a self-tie resolve to nothing.
    assert report.relationships_skipped == 3


async def test_a_name_two_participants_share_resolves_to_neither(make_runtime, scripted):
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 10))
    impostor = uuid.uuid4()
    await runtime.ensure_connection(
        entity_id=impostor, room_id=room.room_id, user_name="epod", channel_type=ChannelType.GROUP
    )
    scripted.script(
        ModelType.TEXT_SMALL,
        "<facts/><relationships><relationship><sourceEntityId>epod"
        "</sourceEntityId><targetEntityId>Matt|</targetEntityId></relationship>"
        "</relationships>",
    )
    report = await reflect(runtime, room.messages[-1])
    assert report.relationships == 0 and report.relationships_skipped == 1


async def test_a_character_template_replaces_the_default(make_runtime, scripted):
    runtime = make_runtime(templates={"reflectionTemplate": "Reflect as {{agentName}} on:\n{{recentMessages}}"})
    room = await seed_room(runtime, irc_lines(1, 5))
    scripted.script(ModelType.TEXT_SMALL, "<facts/><relationships/>")
    await reflect(runtime, room.messages[-1])
    assert scripted.calls[-1][1]["prompt"].startswith("Reflect as Eliza on:\n[2004-11-15 12:18] |trey|: usual,")


async def test_facts_from_reflection_read_back_as_facts(make_runtime, scripted, adapter):
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 40))
    scripted.script(ModelType.TEXT_SMALL, ANSWER)
    await reflect(runtime, room.messages[-1])
    (row,) = await sql(adapter, "SELECT id FROM memories WHERE agent_id = %s AND type = 'facts'", (runtime.agent_id,))
    fact = Fact.from_memory(await adapter.get_memory_by_id(runtime.agent_id, row["id"]))
    assert fact.entity_id == room.people["tweaked"] and fact.text == "tweaked is new to Linux"


async def test_the_prompt_lists_recent_speakers_first_and_is_bounded(make_runtime, scripted, monkeypatch):
    from core.memory import reflection as module

    monkeypatch.setattr(module, "MAX_LISTED_ENTITIES", 3)
    runtime = make_runtime({"CONVERSATION_LENGTH": 4})
    room = await seed_room(runtime, irc_lines(1, 130))
    scripted.script(ModelType.TEXT_SMALL, "<facts/><relationships/>")
    await reflect(runtime, room.messages[-1])
    prompt = scripted.calls[-1][1]["prompt"]
    listing = prompt.split("# People in the room\n")[1].split("\n\n")[0].splitlines()
    recent = list(dict.fromkeys(line.nick for line in reversed(irc_lines(1, 130)[-4:])))
    assert [line.split(" (ID")[0][2:] for line in listing[:3]] == recent[:3]
    assert listing[3] == f"- ... and {len(room.people) - 3} more who did not speak recently"
    assert listing[4] == f"- Eliza (ID: {runtime.agent_id}) [you, the agent]"
    assert prompt.count("\n[2004-11-15 ") == 4  # the conversation window is CONVERSATION_LENGTH messages


async def test_the_context_reads_and_the_marker_write_cost_two_round_trips(
    make_runtime, scripted, database_url, tmp_path
):
    # As deployed (one connection per container): the five reads go out together in one
    # pipelined block, and the marker write rides on the block's final Sync. Counted on the
    # wire (libpq's protocol trace) up to the model call: one round trip is what the client
    # sends before it next hears from the server, when that ends with a Sync, Flush or Query.
    pool = create_pool(Settings(database_url=database_url, pool_max_size=1, pool_check_after_s=3600))
    await pool.open()
    try:
        runtime = make_runtime()
        runtime.adapter = PostgresAdapter(pool)
        room = await seed_room(runtime, irc_lines(1, 20))
        async with pool.connection() as conn:  # the pool's one connection, the block's
            pgconn = conn.pgconn
        trace = tmp_path / "trace"
        wire = WireTrace()

        def answer(params):
            pgconn.untrace()  # flushes libpq's trace file
            wire.read(iter(trace.read_text().splitlines()))
            return "<facts/><relationships/>"

        scripted.script(ModelType.TEXT_SMALL, answer)
        with trace.open("w") as out:
            pgconn.trace(out.fileno())
            report = await reflect(runtime, room.messages[-1])

        assert not report.malformed and not report.model_failed
        round_trips = wire.round_trips
        assert len(round_trips) == 2, round_trips
        assert round_trips[0].count("Execute") == 5 and round_trips[1].count("Execute") == 1  # reads, then marker
        marker = await runtime.adapter.get_cache(runtime.agent_id, marker_key(room.room_id))
        assert marker == {"messageId": str(room.messages[-1].id), "createdAt": room.messages[-1].created_at}
    finally:
        await pool.close()
