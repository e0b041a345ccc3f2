from __future__ import annotations

import asyncio
import uuid

import pytest

from core.db.adapter import AgentRecord, EmbeddingRow
from core.types import ChannelType, Component, Content, Entity, Memory, Room, World

#: Every table that holds agent data, with the column that scopes it.
_AGENT_TABLES = {
    "entities": "agent_id",
    "worlds": "agent_id",
    "rooms": "agent_id",
    "participants": "agent_id",
    "memories": "agent_id",
    "embeddings": "agent_id",
    "components": "agent_id",
    "relationships": "agent_id",
}


def _record(name: str | None = None, **character) -> AgentRecord:
    agent = uuid.uuid4()
    name = name or f"agent-{agent}"
    return AgentRecord(agent, name, {"name": name, **character})


async def _counts(adapter, agent_id) -> dict[str, int]:
    select = ", ".join(f"(SELECT count(*) FROM {t} WHERE {c} = %(a)s) AS {t}" for t, c in _AGENT_TABLES.items())
    async with adapter.pool.connection() as conn:
        return await (await conn.execute(f"SELECT {select}", {"a": agent_id})).fetchone()


async def _populate(adapter, agent_id) -> None:
    """One row in every agent table: world, room, two entities, participants, memory, vector..."""
    world, room = uuid.uuid4(), uuid.uuid4()
    alice, bob = uuid.uuid4(), uuid.uuid4()
    await adapter.ensure_connection(
        Entity(id=alice, agent_id=agent_id, names=["alice"]),
        Room(id=room, agent_id=agent_id, world_id=world, type=ChannelType.GROUP),
        World(id=world, agent_id=agent_id, name="w"),
    )
    await adapter.create_entities([Entity(id=bob, agent_id=agent_id, names=["bob"])])
    assert await adapter.add_participants_room(agent_id, [bob], room)
    memory = Memory(agent_id=agent_id, room_id=room, entity_id=alice, content=Content(text="hello"))
    await adapter.create_memories([memory], "messages")
    vector = [0.0] * 384
    vector[0] = 1.0
    assert await adapter.upsert_embeddings([EmbeddingRow(memory.id, agent_id, memory.content_hash, "t", vector)]) == 1
    assert await adapter.create_component(
        Component(entity_id=alice, agent_id=agent_id, room_id=room, world_id=world, type="profile", data={"a": 1})
    )
    assert await adapter.create_relationship(agent_id, alice, bob, tags=["friend"]) is not None


async def test_create_then_get_agent(adapter):
    record = _record(bio=["hi"])
    assert await adapter.create_agent(record) is True
    assert await adapter.get_agent(record.id) == record


async def test_create_agent_refuses_a_taken_id_or_name_and_keeps_the_stored_one(adapter):
    record = _record()
    assert await adapter.create_agent(record)
    assert await adapter.create_agent(AgentRecord(record.id, f"other-{record.id}", {"x": 1})) is False
    assert await adapter.create_agent(AgentRecord(uuid.uuid4(), record.name.upper(), {})) is False
    assert await adapter.get_agent(record.id) == record


async def test_get_agent_of_unknown_id_is_none(adapter):
    assert await adapter.get_agent(uuid.uuid4()) is None


async def test_get_agents_lists_enabled_by_default_and_all_on_request(adapter):
    on, off = _record(), _record()
    off = AgentRecord(off.id, off.name, off.character, enabled=False)
    await adapter.create_agent(on)
    await adapter.create_agent(off)
    enabled = {a.id: a for a in await adapter.get_agents()}
    assert on.id in enabled and off.id not in enabled
    everything = {a.id: a for a in await adapter.get_agents(include_disabled=True)}
    assert everything[off.id].enabled is False and everything[on.id].enabled is True


async def test_get_agents_are_ordered_by_name_case_insensitively(adapter):
    tag = uuid.uuid4().hex
    records = [_record(f"{tag}-b"), _record(f"{tag}-A"), _record(f"{tag}-c")]
    for record in records:
        await adapter.create_agent(record)
    names = [a.name for a in await adapter.get_agents() if a.name.startswith(tag)]
    assert names == [f"{tag}-A", f"{tag}-b", f"{tag}-c"]


async def test_upsert_agents_keeps_the_enabled_flag(adapter):
    record = _record()
    await adapter.create_agent(record)
    assert await adapter.update_agent(record.id, {"enabled": False})
    await adapter.upsert_agents([AgentRecord(record.id, record.name, {**record.character, "bio": ["new"]})])
    stored = await adapter.get_agent(record.id)
    assert stored.enabled is False and stored.character["bio"] == ["new"]


async def test_update_agent_replaces_top_level_keys_and_deep_merges_settings(adapter):
    record = _record(
        bio=["old"],
        topics=["a", "b"],
        settings={"model": "small", "voice": {"model": "v1", "speed": 1}, "secrets": {"A": "1", "B": "2"}},
        secrets={"TOKEN": "t", "OTHER": "o"},
    )
    await adapter.create_agent(record)
    changed = await adapter.update_agent(
        record.id,
        {
            "character": {
                "bio": ["new"],
                "settings": {"voice": {"speed": 2}, "secrets": {"B": None, "C": "3"}, "model": None},
                "secrets": {"OTHER": None},
            }
        },
    )
    assert changed is True
    character = (await adapter.get_agent(record.id)).character
    assert character["bio"] == ["new"]
    assert character["topics"] == ["a", "b"]
    assert character["settings"] == {"voice": {"model": "v1", "speed": 2}, "secrets": {"A": "1", "C": "3"}}
    assert character["secrets"] == {"TOKEN": "t"}
    assert character["name"] == record.name


async def test_update_agent_keeps_name_column_and_character_name_equal(adapter):
    record = _record()
    await adapter.create_agent(record)
    new_name = f"renamed-{record.id}"
    assert await adapter.update_agent(record.id, {"name": new_name})
    stored = await adapter.get_agent(record.id)
    assert (stored.name, stored.character["name"]) == (new_name, new_name)
    newer = f"again-{record.id}"
    assert await adapter.update_agent(record.id, {"character": {"name": newer}})
    stored = await adapter.get_agent(record.id)
    assert (stored.name, stored.character["name"]) == (newer, newer)


async def test_update_agent_can_disable_and_enable(adapter):
    record = _record()
    await adapter.create_agent(record)
    assert await adapter.update_agent(record.id, {"enabled": False})
    assert record.id not in {a.id for a in await adapter.get_agents()}
    assert await adapter.update_agent(record.id, {"enabled": True})
    assert record.id in {a.id for a in await adapter.get_agents()}


async def test_update_unknown_agent_is_false(adapter):
    assert await adapter.update_agent(uuid.uuid4(), {"enabled": False}) is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": str(uuid.uuid4())}, "cannot update"),
        ({"created_at": 0}, "cannot update"),
        ({"name": ""}, "non-empty"),
        ({"name": 42}, "non-empty"),
        ({"enabled": "yes"}, "bool"),
        ({"character": ["not", "an", "object"]}, "JSON object"),
        ({"name": "a", "character": {"name": "b"}}, "disagree"),
        ({"character": {"name": None}}, "non-empty"),
    ],
)
async def test_update_agent_refuses_bad_changes(adapter, changes, message):
    record = _record()
    await adapter.create_agent(record)
    with pytest.raises(ValueError, match=message):
        await adapter.update_agent(record.id, changes)
    assert await adapter.get_agent(record.id) == record


async def test_update_agent_to_a_taken_name_raises_and_changes_nothing(adapter):
    first, second = _record(), _record()
    await adapter.create_agent(first)
    await adapter.create_agent(second)
    with pytest.raises(ValueError, match="already named"):
        await adapter.update_agent(second.id, {"name": first.name.upper(), "enabled": False})
    assert await adapter.get_agent(second.id) == second


async def test_concurrent_updates_of_different_settings_both_survive(adapter):
    record = _record(settings={"secrets": {}})
    await adapter.create_agent(record)
    await asyncio.gather(
        *(
            adapter.update_agent(record.id, {"character": {"settings": {"secrets": {f"K{i}": str(i)}}}})
            for i in range(6)
        )
    )
    secrets = (await adapter.get_agent(record.id)).character["settings"]["secrets"]
    assert secrets == {f"K{i}": str(i) for i in range(6)}


async def test_delete_agent_cascades_to_everything_it_owns(adapter):
    doomed, kept = _record(), _record()
    await adapter.create_agent(doomed)
    await adapter.create_agent(kept)
    await _populate(adapter, doomed.id)
    await _populate(adapter, kept.id)
    before = await _counts(adapter, doomed.id)
    assert all(n >= 1 for n in before.values()), before

    assert await adapter.delete_agent(doomed.id) is True

    assert await _counts(adapter, doomed.id) == {t: 0 for t in _AGENT_TABLES}
    assert await adapter.get_agent(doomed.id) is None
    assert await _counts(adapter, kept.id) == before  # the other agent's rows are untouched


async def test_delete_unknown_agent_is_false(adapter):
    assert await adapter.delete_agent(uuid.uuid4()) is False


async def test_agent_versions_ship_a_character_only_when_the_caller_lacks_that_version(adapter):
    fresh, known, disabled = _record(), _record(), _record()
    await adapter.upsert_agents([fresh, known, disabled])
    await adapter.update_agent(disabled.id, {"enabled": False})
    first = {v.id: v for v in await adapter.get_agent_versions({})}
    assert disabled.id not in first and first[fresh.id].character == fresh.character
    versions = {v.id: v for v in await adapter.get_agent_versions({known.id: first[known.id].updated_at})}
    assert versions[known.id].character is None and versions[fresh.id].character == fresh.character
    await adapter.update_agent(known.id, {"character": {"bio": ["changed"]}})
    changed = {v.id: v for v in await adapter.get_agent_versions({known.id: first[known.id].updated_at})}
    assert changed[known.id].character["bio"] == ["changed"]
    assert changed[known.id].updated_at > first[known.id].updated_at
