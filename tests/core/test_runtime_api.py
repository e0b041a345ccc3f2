"""The elizaOS IAgentRuntime surface plugins use: registration, lookup, agent-scoped storage, settings, connections."""

from __future__ import annotations

import uuid

import pytest

from core.blueprint import AgentBlueprint
from core.character import load_character_dict
from core.errors import NotFoundError
from core.model_providers.scripted import ScriptedModels
from core.plugin import Action, Evaluator, Plugin, Provider, ProviderResult
from core.runtime import AgentRuntime
from core.services import Service
from core.types import ChannelType, Component, Content, Memory, ModelType, World
from core.uuid import create_unique_uuid


@pytest.fixture
def build(adapter, agent_id):
    def _build(*plugins, agent=None):
        the_id = agent or agent_id
        character = load_character_dict({"id": str(the_id), "name": f"agent-{the_id}"})
        return AgentRuntime(AgentBlueprint.build(character, plugins), adapter)

    return _build


async def _nothing(*_):
    return None


async def _empty(*_):
    return ProviderResult(text="x")


class Clock(Service):
    service_type = "clock"
    capability_description = "Tells {{agentName}} the time."


async def test_registered_actions_providers_and_evaluators_are_kept_once_by_name(build):
    runtime = build()
    action = Action(name="WAVE", description="wave", handler=_nothing)
    assert runtime.register_action(action) is True
    assert runtime.register_action(Action(name="WAVE", description="other", handler=_nothing)) is False
    assert runtime.find_action("wave") is action
    assert runtime.register_provider(Provider(name="P", get=_empty)) is True
    assert runtime.register_provider(Provider(name="P", get=_empty, description="again")) is False
    assert [p.name for p in runtime.providers] == ["P"]
    assert runtime.register_evaluator(Evaluator(name="E", description="e", handler=_nothing)) is True
    assert runtime.register_evaluator(Evaluator(name="E", description="e", handler=_nothing)) is False
    assert [e.name for e in runtime.evaluators] == ["E"]


async def test_a_plugin_registered_after_build_is_initialised_its_services_started_and_its_parts_usable(build):
    calls = []

    async def init(config, runtime):
        calls.append(("init", dict(config)))

    async def start(runtime):
        calls.append(("start", runtime.has_service("clock")))

    plugin = Plugin(
        name="late",
        actions=(Action(name="LATE", description="late", handler=_nothing),),
        services=(Clock,),
        init=init,
        start=start,
        config={"K": 1},
    )
    runtime = build()
    assert await runtime.register_plugin(plugin) is True
    assert await runtime.register_plugin(plugin) is False
    assert calls == [("init", {"K": 1}), ("start", True)]
    assert runtime.find_action("LATE") is not None
    assert list(runtime.get_all_services()) == ["clock"]


async def test_a_plugin_whose_dependency_is_missing_is_refused_with_its_name(build):
    from core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="needs base"):
        await build().register_plugin(Plugin(name="child", dependencies=("base",)))


async def test_register_service_starts_the_service_and_returns_it(build):
    runtime = build()
    service = await runtime.register_service(Clock)
    assert isinstance(service, Clock)
    assert runtime.get_service("clock") is service


async def test_get_model_returns_the_handler_use_model_would_call_or_none(build):
    scripted = ScriptedModels()
    runtime = build(scripted.plugin())
    scripted.script(ModelType.TEXT_SMALL, "hi")
    handler = runtime.get_model(ModelType.TEXT_SMALL)
    assert handler is not None and await handler(runtime, {"prompt": "x"}) == "hi"
    assert runtime.get_model(ModelType.IMAGE) is None


async def test_set_setting_is_read_back_first_and_lasts_for_the_runtime_only(build):
    runtime = build()
    runtime.set_setting("MY_FLAG", "true")
    assert runtime.get_setting("MY_FLAG") is True
    assert build().get_setting("MY_FLAG") is None


async def test_conversation_length_defaults_to_32_and_follows_the_setting(build):
    runtime = build()
    assert runtime.get_conversation_length() == 32
    runtime.set_setting("CONVERSATION_LENGTH", "5")
    assert runtime.get_conversation_length() == 5


async def test_the_full_ensure_connection_stores_world_room_and_entity_with_platform_details(build):
    runtime = build()
    entity, room = uuid.uuid4(), uuid.uuid4()
    await runtime.ensure_connection(
        entity_id=entity,
        room_id=room,
        user_name="ada_l",
        name="Ada",
        world_name="Analytical",
        source="discord",
        channel_type=ChannelType.GROUP,
        channel_id="c-1",
        server_id="s-1",
        metadata={"avatar": "a.png"},
        user_id="u-1",
    )
    world_id = create_unique_uuid(runtime.agent_id, "s-1")
    stored_room = await runtime.get_room(room)
    assert stored_room is not None
    assert (stored_room.world_id, stored_room.channel_id, stored_room.type) == (world_id, "c-1", ChannelType.GROUP)
    world = await runtime.get_world(world_id)
    assert world is not None and (world.name, world.server_id) == ("Analytical", "s-1")
    person = await runtime.get_entity_by_id(entity)
    assert person is not None and set(person.names) == {"Ada", "ada_l"}
    assert person.metadata["discord"] == {"id": "u-1", "name": "Ada", "userName": "ada_l", "avatar": "a.png"}
    assert await runtime.get_participants_for_room(room) == [entity]


async def test_ensure_world_and_room_exist_create_once_and_keep_existing_rows(build):
    runtime = build()
    world = World(id=uuid.uuid4(), agent_id=runtime.agent_id, name="first")
    await runtime.ensure_world_exists(world)
    await runtime.ensure_world_exists(world.model_copy(update={"name": "second"}))
    assert (await runtime.get_world(world.id)).name == "first"
    from core.types import Room

    room = Room(id=uuid.uuid4(), agent_id=uuid.uuid4(), name="general", world_id=world.id)
    await runtime.ensure_room_exists(room)  # the agent id is the runtime's, whatever the caller passed
    assert [r.name for r in await runtime.get_rooms(world.id)] == ["general"]


async def test_storage_is_agent_scoped_another_agents_runtime_sees_nothing(build, other_agent, adapter):
    runtime, other = build(), build(agent=other_agent)
    entity, room = uuid.uuid4(), uuid.uuid4()
    await runtime.ensure_connection(entity_id=entity, room_id=room, user_name="bo")
    memory = await runtime.create_memory(
        Memory(entity_id=entity, agent_id=runtime.agent_id, room_id=room, content=Content(text="secret"))
    )
    assert await other.get_entity_by_id(entity) is None
    assert await other.get_room(room) is None
    assert await other.get_memory_by_id(memory.id) is None
    assert await other.delete_memory(memory.id) is False
    assert (await runtime.get_memory_by_id(memory.id)).text == "secret"


async def test_update_memory_replaces_the_content_and_delete_memory_removes_it(build):
    runtime = build()
    entity, room = uuid.uuid4(), uuid.uuid4()
    await runtime.ensure_connection(entity_id=entity, room_id=room)
    memory = await runtime.create_memory(
        Memory(entity_id=entity, agent_id=runtime.agent_id, room_id=room, content=Content(text="old"))
    )
    assert await runtime.update_memory(memory.id, {"text": "new"}) is True
    assert (await runtime.get_memory_by_id(memory.id)).text == "new"
    assert await runtime.delete_memory(memory.id) is True
    assert await runtime.get_memory_by_id(memory.id) is None
    assert await runtime.update_memory(memory.id, {"text": "gone"}) is False


async def test_a_memory_given_an_embedding_is_stored_with_it_and_found_by_search(build):
    scripted = ScriptedModels()
    runtime = build(scripted.plugin())
    entity, room = uuid.uuid4(), uuid.uuid4()
    await runtime.ensure_connection(entity_id=entity, room_id=room)
    memory = Memory(entity_id=entity, agent_id=runtime.agent_id, room_id=room, content=Content(text="purple cats"))
    embedded = await runtime.add_embedding_to_memory(memory)
    assert embedded.embedding == scripted.vector("purple cats")
    assert await runtime.add_embedding_to_memory(embedded) is embedded
    await runtime.create_memory(embedded)
    found = await runtime.search_memories(scripted.vector("purple cats"), room_id=room, entity_id=entity)
    assert [m.id for m in found] == [memory.id]
    assert found[0].similarity == pytest.approx(1.0, abs=1e-3)


async def test_the_agents_own_room_state_can_be_set_although_it_never_joined_the_room(build):
    runtime = build()
    entity, room = uuid.uuid4(), uuid.uuid4()
    await runtime.ensure_connection(entity_id=entity, room_id=room)
    assert await runtime.get_participant_user_state(room, runtime.agent_id) is None
    await runtime.set_participant_user_state(room, runtime.agent_id, "MUTED")
    assert await runtime.get_participant_user_state(room, runtime.agent_id) == "MUTED"
    await runtime.set_participant_user_state(room, runtime.agent_id, None)
    assert await runtime.get_participant_user_state(room, runtime.agent_id) is None
    with pytest.raises(NotFoundError):
        await runtime.set_participant_user_state(room, uuid.uuid4(), "FOLLOWED")


async def test_components_round_trip_through_the_runtime(build):
    runtime = build()
    entity, room = uuid.uuid4(), uuid.uuid4()
    await runtime.ensure_connection(entity_id=entity, room_id=room)
    component = Component(entity_id=entity, agent_id=uuid.uuid4(), type="telegram", data={"username": "ada"})
    assert await runtime.create_component(component) is True
    found = await runtime.get_component(entity, "telegram")
    assert found is not None and found.data == {"username": "ada"} and found.agent_id == runtime.agent_id
    await runtime.update_component(found.model_copy(update={"data": {"username": "ada2"}}))
    assert [c.data for c in await runtime.get_components(entity)] == [{"username": "ada2"}]
    assert await runtime.delete_component(found.id) is True


async def test_the_cache_is_per_agent(build, other_agent):
    runtime, other = build(), build(agent=other_agent)
    await runtime.set_cache("k", {"v": 1})
    assert await runtime.get_cache("k") == {"v": 1}
    assert await other.get_cache("k") is None
    assert await runtime.delete_cache("k") is True
