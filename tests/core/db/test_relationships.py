from __future__ import annotations

import asyncio
import math
import uuid

import pytest

from core.types import Entity, Relationship

HOSTILE_TAGS = [
    "'; DROP TABLE memories; --",
    "x' OR '1'='1",
    "$$; DROP TABLE relationships; $$",
    "{friend}",
    "friend,colleague",
    '"}',
]


@pytest.fixture
async def people(adapter, agent_id):
    """Four entities of the agent: alice, bob, carol, dave."""
    ids = [uuid.uuid4() for _ in range(4)]
    await adapter.create_entities([Entity(id=i, agent_id=agent_id) for i in ids])
    return ids


async def _relationship_count(adapter) -> int:
    async with adapter.pool.connection() as conn:
        return (await (await conn.execute("SELECT count(*) AS n FROM relationships")).fetchone())["n"]


async def test_create_and_get_relationship(adapter, agent_id, people):
    alice, bob, *_ = people
    created = await adapter.create_relationship(
        agent_id, alice, bob, tags=["friend", "friend", "colleague"], metadata={"since": 2020}
    )
    assert isinstance(created, Relationship)
    assert (created.source_entity_id, created.target_entity_id, created.agent_id) == (alice, bob, agent_id)
    assert (created.tags, created.metadata) == (["friend", "colleague"], {"since": 2020})
    assert (created.strength, created.interaction_count, created.last_interaction_at) == (0.0, 0, None)
    assert created.created_at is not None and created.updated_at is not None
    assert await adapter.get_relationship(agent_id, alice, bob) == created


async def test_relationships_are_directed(adapter, agent_id, people):
    alice, bob, *_ = people
    await adapter.create_relationship(agent_id, alice, bob, tags=["follows"])
    assert await adapter.get_relationship(agent_id, bob, alice) is None
    back = await adapter.create_relationship(agent_id, bob, alice, tags=["ignores"])
    assert back.tags == ["ignores"]
    assert (await adapter.get_relationship(agent_id, alice, bob)).tags == ["follows"]


async def test_creating_again_merges_tags_and_metadata_and_keeps_the_rest(adapter, agent_id, people):
    alice, bob, *_ = people
    first = await adapter.create_relationship(
        agent_id, alice, bob, tags=["friend"], metadata={"discord": {"a": 1}, "note": "x"}, strength=0.4
    )
    await adapter.record_interaction(agent_id, alice, bob)
    again = await adapter.create_relationship(
        agent_id, alice, bob, tags=["colleague", "friend"], metadata={"discord": {"b": 2}, "note": "y"}
    )
    assert again.id == first.id
    assert again.tags == ["friend", "colleague"]
    assert again.metadata == {"discord": {"a": 1, "b": 2}, "note": "y"}
    assert again.interaction_count == 1
    assert math.isclose(again.strength, 0.4 + 0.1 * 0.6)  # not reset by the second create
    assert again.created_at == first.created_at and again.updated_at >= first.updated_at
    assert (await adapter.create_relationship(agent_id, alice, bob, strength=0.9)).strength == 0.9


async def test_create_relationship_refuses_bad_input(adapter, agent_id, people):
    alice, bob, *_ = people
    with pytest.raises(ValueError, match="different"):
        await adapter.create_relationship(agent_id, alice, alice)
    for strength in (-0.01, 1.01, math.nan, math.inf, True, "0.5"):
        with pytest.raises(ValueError, match="strength"):
            await adapter.create_relationship(agent_id, alice, bob, strength=strength)
    for tags in ("friend", ["ok", 3]):
        with pytest.raises(ValueError, match="tags"):
            await adapter.create_relationship(agent_id, alice, bob, tags=tags)
    assert await adapter.get_relationship(agent_id, alice, bob) is None


async def test_create_relationship_with_unknown_or_foreign_entities_is_none(adapter, agent_id, other_agent, people):
    alice, bob, *_ = people
    before = await _relationship_count(adapter)
    assert await adapter.create_relationship(agent_id, alice, uuid.uuid4()) is None
    assert await adapter.create_relationship(agent_id, uuid.uuid4(), bob) is None
    assert await adapter.create_relationship(other_agent, alice, bob) is None  # the other agent has no alice
    assert await adapter.create_relationship(uuid.uuid4(), alice, bob) is None
    assert await _relationship_count(adapter) == before


async def test_update_relationship_replaces_tags_metadata_and_strength(adapter, agent_id, people):
    alice, bob, *_ = people
    created = await adapter.create_relationship(agent_id, alice, bob, tags=["a", "b"], metadata={"k": {"x": 1}})
    await adapter.record_interaction(agent_id, alice, bob)
    stale = created.model_copy(
        update={"tags": ["c", "c"], "metadata": {"k": {"y": 2}}, "strength": 0.75, "id": uuid.uuid4()}
    )  # found by pair, not by id
    assert await adapter.update_relationship(stale) is True
    stored = await adapter.get_relationship(agent_id, alice, bob)
    assert (stored.tags, stored.metadata, stored.strength) == (["c"], {"k": {"y": 2}}, 0.75)
    assert stored.interaction_count == 1  # a stale copy never loses interactions
    assert stored.id == created.id


async def test_update_relationship_misses_and_bad_values(adapter, agent_id, other_agent, people):
    alice, bob, carol, _ = people
    created = await adapter.create_relationship(agent_id, alice, bob, tags=["a"])
    assert await adapter.update_relationship(created.model_copy(update={"target_entity_id": carol})) is False
    assert await adapter.update_relationship(created.model_copy(update={"agent_id": other_agent})) is False
    assert await adapter.get_relationship(agent_id, alice, carol) is None
    bad = created.model_copy()
    bad.strength = 2.0  # not re-validated on assignment: the adapter checks
    with pytest.raises(ValueError, match="strength"):
        await adapter.update_relationship(bad)
    assert await adapter.get_relationship(agent_id, alice, bob) == created


async def test_get_relationship_misses(adapter, agent_id, other_agent, people):
    alice, bob, *_ = people
    await adapter.create_relationship(agent_id, alice, bob)
    assert await adapter.get_relationship(other_agent, alice, bob) is None
    assert await adapter.get_relationship(agent_id, alice, uuid.uuid4()) is None


async def test_get_relationships_of_an_entity_either_side_strongest_first(adapter, agent_id, other_agent, people):
    alice, bob, carol, dave = people
    await adapter.create_relationship(agent_id, alice, bob, tags=["friend"], strength=0.2)
    await adapter.create_relationship(agent_id, carol, alice, tags=["colleague"], strength=0.9)
    await adapter.create_relationship(agent_id, alice, dave, tags=["family", "friend"], strength=0.5)
    await adapter.create_relationship(agent_id, bob, carol, tags=["friend"])  # alice not in it
    got = await adapter.get_relationships(agent_id, alice)
    assert [(r.source_entity_id, r.target_entity_id) for r in got] == [(carol, alice), (alice, dave), (alice, bob)]
    assert await adapter.get_relationships(other_agent, alice) == []
    assert await adapter.get_relationships(agent_id, uuid.uuid4()) == []


async def test_get_relationships_tag_filter_matches_any_tag(adapter, agent_id, people):
    alice, bob, carol, dave = people
    await adapter.create_relationship(agent_id, alice, bob, tags=["friend"])
    await adapter.create_relationship(agent_id, alice, carol, tags=["colleague"])
    await adapter.create_relationship(agent_id, alice, dave, tags=["family", "friend"])

    async def targets(tags):
        return {r.target_entity_id for r in await adapter.get_relationships(agent_id, alice, tags=tags)}

    assert await targets(["friend"]) == {bob, dave}
    assert await targets(["colleague", "family"]) == {carol, dave}
    assert await targets(["Friend"]) == set()  # tags are matched exactly
    assert await targets(["enemy"]) == set()
    assert await targets([]) == {bob, carol, dave}  # empty means no filter, as elizaOS
    assert await targets(None) == {bob, carol, dave}
    with pytest.raises(ValueError, match="tags"):
        await adapter.get_relationships(agent_id, alice, tags="friend")


async def test_record_interaction_creates_then_counts_and_strengthens(adapter, agent_id, people):
    alice, bob, *_ = people
    first = await adapter.record_interaction(agent_id, alice, bob)
    assert (first.interaction_count, first.strength) == (1, pytest.approx(0.1))
    assert first.last_interaction_at is not None
    second = await adapter.record_interaction(agent_id, alice, bob)
    third = await adapter.record_interaction(agent_id, alice, bob, step=0.5)
    assert (second.interaction_count, second.strength) == (2, pytest.approx(0.19))
    assert (third.interaction_count, third.strength) == (3, pytest.approx(0.19 + 0.5 * 0.81))
    assert third.last_interaction_at >= first.last_interaction_at
    assert await adapter.get_relationship(agent_id, alice, bob) == third
    assert await adapter.get_relationship(agent_id, bob, alice) is None


async def test_record_interaction_never_passes_full_strength(adapter, agent_id, people):
    alice, bob, *_ = people
    for _ in range(3):
        last = await adapter.record_interaction(agent_id, alice, bob, step=1.0)
    assert (last.strength, last.interaction_count) == (1.0, 3)


async def test_concurrent_interactions_are_all_counted(adapter, agent_id, people):
    alice, bob, *_ = people
    await asyncio.gather(*(adapter.record_interaction(agent_id, alice, bob) for _ in range(20)))
    stored = await adapter.get_relationship(agent_id, alice, bob)
    assert stored.interaction_count == 20
    assert stored.strength == pytest.approx(1 - 0.9**20)


async def test_record_interaction_refuses_bad_input(adapter, agent_id, other_agent, people):
    alice, bob, *_ = people
    for step in (0, -0.1, 1.5, math.nan, "0.1"):
        with pytest.raises(ValueError, match="step"):
            await adapter.record_interaction(agent_id, alice, bob, step=step)
    with pytest.raises(ValueError, match="different"):
        await adapter.record_interaction(agent_id, alice, alice)
    assert await adapter.record_interaction(agent_id, alice, uuid.uuid4()) is None
    assert await adapter.record_interaction(other_agent, alice, bob) is None
    assert await adapter.get_relationship(agent_id, alice, bob) is None


async def test_relationships_go_with_their_entities(adapter, agent_id, people):
    alice, bob, carol, _ = people
    await adapter.create_relationship(agent_id, alice, bob)
    await adapter.create_relationship(agent_id, carol, alice)
    await adapter.create_relationship(agent_id, bob, carol)
    async with adapter.pool.connection() as conn:
        await conn.execute("DELETE FROM entities WHERE agent_id = %s AND id = %s", (agent_id, alice))
    assert await adapter.get_relationships(agent_id, alice) == []
    assert [r.target_entity_id for r in await adapter.get_relationships(agent_id, bob)] == [carol]


async def test_hostile_tags_and_metadata_keys_are_literal(adapter, agent_id, people):
    alice, bob, carol, _ = people
    metadata = {h: {h: h} for h in HOSTILE_TAGS} | {"k'\"": 1}
    created = await adapter.create_relationship(agent_id, alice, bob, tags=HOSTILE_TAGS, metadata=metadata)
    assert created.tags == HOSTILE_TAGS and created.metadata == metadata
    await adapter.create_relationship(agent_id, alice, carol, tags=["plain"])
    before = await _relationship_count(adapter)
    for tag in HOSTILE_TAGS:
        got = await adapter.get_relationships(agent_id, alice, tags=[tag])
        assert [r.target_entity_id for r in got] == [bob], tag
    for probe in ("x' OR '1'='1' --", "friend", "colleague", "%", "'"):
        assert await adapter.get_relationships(agent_id, alice, tags=[probe]) == [], probe
    merged = await adapter.create_relationship(
        agent_id, alice, bob, tags=["$$"], metadata={HOSTILE_TAGS[0]: {"more": "'"}}
    )
    assert merged.tags == [*HOSTILE_TAGS, "$$"]
    assert merged.metadata[HOSTILE_TAGS[0]] == {HOSTILE_TAGS[0]: HOSTILE_TAGS[0], "more": "'"}
    assert await _relationship_count(adapter) == before
    async with adapter.pool.connection() as conn:
        row = await (
            await conn.execute("SELECT to_regclass('memories') AS m, to_regclass('relationships') AS r")
        ).fetchone()
    assert row == {"m": "memories", "r": "relationships"}
