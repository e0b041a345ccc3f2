from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import ValidationError

from core.errors import NotFoundError
from core.memory.facts import store_facts
from core.types import Content, Entity, Memory, Room
from core.types.fact import FACTS_TABLE, MAX_EVIDENCE, Fact, combine_confidence, fact_key, normalise_term
from tests.core.memory.conftest import drain, sql


@pytest.fixture
async def room(adapter, agent_id):
    room_id, entity = uuid.uuid4(), uuid.uuid4()
    await adapter.ensure_connection(
        Entity(id=entity, agent_id=agent_id, names=["billytwowilly"]), Room(id=room_id, agent_id=agent_id), None
    )
    return room_id


def kernel_fact(agent_id, room_id, **changes) -> Fact:
    fields = {
        "agent_id": agent_id,
        "room_id": room_id,
        "text": "billytwowilly runs kernel 2.6.8.1-3-686",
        "subject": "billytwowilly",
        "predicate": "runs kernel",
        "object": "2.6.8.1-3-686",
        "confidence": 0.5,
        "source_message_id": uuid.uuid4(),
        **changes,
    }
    return Fact(**fields)


async def count_facts(adapter, agent_id, room_id=None) -> int:
    return await adapter.count_memories(agent_id, room_id=room_id, table=FACTS_TABLE)


# -- helpers ---------------------------------------------------------------------------------------


def test_the_key_ignores_case_spacing_and_outer_punctuation():
    assert normalise_term('  "Runs   Kernel." ') == "runs kernel"
    assert fact_key("x", "Billytwowilly", "runs  kernel", "2.6.8.1-3-686.") == fact_key(
        "other words", "billytwowilly", "Runs kernel", "2.6.8.1-3-686"
    )
    # Without a full triple, the text decides; a text never collides with a triple.
    assert fact_key("Tweaked is new to Linux.", "tweaked", None, None) == fact_key("tweaked is new to linux")
    assert fact_key("a b c") != fact_key("whatever", "a", "b", "c")


def test_confidence_combines_as_independent_evidence_and_never_passes_one():
    assert combine_confidence(0.5, 0.5) == 0.75
    assert combine_confidence(0.75, 0.5) == 0.875
    assert combine_confidence(0.9, 1.0) == 1.0
    assert combine_confidence(1.0, 0.3) == 1.0


@pytest.mark.parametrize(
    "changes",
    [
        {"text": "   "},
        {"text": "a\x00b"},
        {"confidence": 0.0},
        {"confidence": 1.5},
        {"kind": "rumour"},
        {"subject": "x" * 501},
        {"unknown_field": 1},
    ],
)
def test_invalid_facts_are_refused(agent_id, changes):
    with pytest.raises(ValidationError):
        kernel_fact(agent_id, uuid.uuid4(), **changes)


def test_a_fact_round_trips_through_its_memory(agent_id):
    fact = kernel_fact(agent_id, uuid.uuid4(), kind="status", object_entity_id=uuid.uuid4(), source="reflection")
    memory = fact.to_memory()
    assert memory.entity_id == agent_id  # about nobody known: kept under the agent, as elizaOS does
    assert memory.metadata.model_extra["factKey"] == fact.key
    back = Fact.from_memory(memory)
    assert back.model_dump(exclude={"entity_id"}) == fact.model_dump(exclude={"entity_id"}) | {
        "last_seen_at": fact.created_at
    }
    assert back.entity_id == agent_id


def test_an_elizaos_style_fact_memory_reads_without_triple_at_half_confidence(agent_id):
    memory = Memory(
        agent_id=agent_id,
        room_id=uuid.uuid4(),
        entity_id=agent_id,
        content=Content(text="John is new to the community"),
    )
    fact = Fact.from_memory(memory)
    assert (fact.text, fact.subject, fact.confidence, fact.mentions) == ("John is new to the community", None, 0.5, 1)


# -- storage ---------------------------------------------------------------------------------------


async def test_a_new_fact_is_stored_as_a_memory_of_table_facts(adapter, agent_id, room):
    fact = kernel_fact(agent_id, room, kind="status", source="reflection")
    (write,) = await adapter.upsert_facts([fact])
    assert write.created and write.fact.id == fact.id
    stored = await adapter.get_memory_by_id(agent_id, fact.id)
    assert stored.text == "billytwowilly runs kernel 2.6.8.1-3-686"
    meta = stored.metadata.model_extra
    assert (meta["subject"], meta["predicate"], meta["object"]) == ("billytwowilly", "runs kernel", "2.6.8.1-3-686")
    assert (meta["confidence"], meta["mentions"], meta["kind"]) == (0.5, 1, "status")
    assert meta["sourceMessageId"] == str(fact.source_message_id)
    assert stored.metadata.type == "custom" and stored.metadata.source == "reflection"


async def test_the_same_fact_again_raises_confidence_instead_of_adding_a_row(adapter, agent_id, room):
    first = kernel_fact(agent_id, room)
    await adapter.upsert_facts([first])
    again = kernel_fact(agent_id, room, text="Billytwowilly runs kernel 2.6.8.1-3-686.", subject="BillyTwoWilly")
    (write,) = await adapter.upsert_facts([again])
    assert not write.created
    assert write.fact.id == first.id and write.fact.text == first.text  # the stored text (and vector) stay
    assert write.fact.confidence == 0.75 and write.fact.mentions == 2
    assert write.fact.last_seen_at >= first.created_at
    (third,) = await adapter.upsert_facts([kernel_fact(agent_id, room, confidence=0.9)])
    assert third.fact.confidence == pytest.approx(0.975)
    assert await count_facts(adapter, agent_id, room) == 1


async def test_confidence_is_capped_at_one(adapter, agent_id, room):
    await adapter.upsert_facts([kernel_fact(agent_id, room, confidence=1.0)])
    (write,) = await adapter.upsert_facts([kernel_fact(agent_id, room, confidence=1.0)])
    assert write.fact.confidence == 1.0 and write.fact.mentions == 2


async def test_the_same_evidence_counts_once_so_a_retried_write_changes_nothing(adapter, agent_id, room):
    fact = kernel_fact(agent_id, room)
    await adapter.upsert_facts([fact])
    (retry,) = await adapter.upsert_facts([fact])
    assert retry.created  # the retry of a create reports the create
    same_source = kernel_fact(agent_id, room, source_message_id=fact.source_message_id)
    (same_message,) = await adapter.upsert_facts([same_source])
    assert not same_message.created
    assert same_message.fact.confidence == 0.5 and same_message.fact.mentions == 1


async def test_evidence_remembered_is_bounded(adapter, agent_id, room):
    for _ in range(MAX_EVIDENCE + 5):
        await adapter.upsert_facts([kernel_fact(agent_id, room, confidence=0.01)])
    (row,) = await sql(adapter, "SELECT metadata FROM memories WHERE agent_id = %s AND type = 'facts'", (agent_id,))
    assert len(row["metadata"]["evidence"]) == MAX_EVIDENCE
    assert row["metadata"]["mentions"] == MAX_EVIDENCE + 5


async def test_duplicates_within_one_batch_make_one_fact(adapter, agent_id, room):
    message = uuid.uuid4()
    writes = await adapter.upsert_facts(
        [
            kernel_fact(agent_id, room, source_message_id=message),
            kernel_fact(agent_id, room, source_message_id=message),
            kernel_fact(agent_id, room, text="tweaked is new to Linux", subject=None),
        ]
    )
    assert [w.created for w in writes] == [True, False, True]
    assert writes[1].fact.confidence == 0.5  # same message: one piece of evidence
    assert await count_facts(adapter, agent_id, room) == 2


async def test_concurrent_writers_of_one_fact_store_one_row_and_count_every_confirmation(adapter, agent_id, room):
    writes = await asyncio.gather(*(adapter.upsert_facts([kernel_fact(agent_id, room)]) for _ in range(4)))
    assert sum(w[0].created for w in writes) == 1
    assert await count_facts(adapter, agent_id, room) == 1
    (final,) = await adapter.upsert_facts([kernel_fact(agent_id, room, source_message_id=writes[0][0].fact.id)])
    assert final.fact.mentions == 5 and final.fact.confidence == pytest.approx(1 - 0.5**5)


async def test_facts_are_scoped_by_room_and_agent(adapter, agent_id, other_agent, room):
    other_room = uuid.uuid4()
    await adapter.create_rooms([Room(id=other_room, agent_id=agent_id)])
    await adapter.create_rooms([Room(id=room, agent_id=other_agent)])
    writes = await adapter.upsert_facts(
        [kernel_fact(agent_id, room), kernel_fact(agent_id, other_room), kernel_fact(other_agent, room)]
    )
    assert all(w.created for w in writes)
    assert await count_facts(adapter, agent_id) == 2 and await count_facts(adapter, other_agent) == 1


async def test_an_unknown_room_stores_nothing_of_the_batch(adapter, agent_id, room):
    with pytest.raises(NotFoundError):
        await adapter.upsert_facts([kernel_fact(agent_id, room), kernel_fact(agent_id, uuid.uuid4())])
    assert await count_facts(adapter, agent_id) == 0
    assert await adapter.upsert_facts([]) == []


async def test_a_fact_takes_its_rooms_world(adapter, agent_id):
    from core.types import World

    world, room_id = uuid.uuid4(), uuid.uuid4()
    await adapter.create_world(World(id=world, agent_id=agent_id))
    await adapter.create_rooms([Room(id=room_id, agent_id=agent_id, world_id=world)])
    (write,) = await adapter.upsert_facts([kernel_fact(agent_id, room_id)])
    assert write.fact.world_id == world


async def test_store_facts_queues_only_new_facts_for_embedding_at_low_priority(make_runtime, sqs, agent_id, room):
    runtime = make_runtime()
    first = await store_facts(runtime, [kernel_fact(agent_id, room)])
    again = await store_facts(runtime, [kernel_fact(agent_id, room)])
    await runtime.flush_embeddings()
    client, urls = sqs
    low = drain(client, urls["low"])
    assert [r["memoryId"] for r in low] == [str(first[0].fact.id)] and not again[0].created
    assert drain(client, urls["normal"]) == [] and drain(client, urls["high"]) == []


async def test_store_facts_refuses_another_agents_fact(make_runtime, other_agent, room):
    with pytest.raises(ValueError, match="belongs to agent"):
        await store_facts(make_runtime(), [kernel_fact(other_agent, room)])
