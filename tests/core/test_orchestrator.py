"""The orchestrator: lifecycle, services, lookups, concurrency, health, agent-to-agent messages."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.errors import ConfigurationError, ModelError, NotFoundError
from core.model_providers.scripted import ScriptedModels
from core.orchestrator import AgentLoopError, AgentSpec, IncomingMessage, Orchestrator
from core.plugin import Plugin
from core.services import Service
from core.types import ModelType

REPLY = "<response><actions>REPLY</actions><text>ok</text></response>"


class Clock(Service):
    service_type = "clock"
    capability_description = "tells the time"
    stopped: list[str] = []

    async def stop(self) -> None:
        Clock.stopped.append("clock")


class Broken(Service):
    service_type = "broken"

    @classmethod
    async def start(cls, runtime):
        raise RuntimeError("cannot start")


def _character(prefix="O"):
    return load_character_dict({"name": f"{prefix}-{uuid.uuid4().hex[:8]}", "bio": ["x"]})


@pytest.fixture
def orchestrator(adapter, scripted):
    return Orchestrator(adapter, plugins=[bootstrap, scripted.plugin()])


async def test_lifecycle_runs_init_services_start_and_stop_once(orchestrator):
    calls: list[str] = []

    async def init(config, runtime):
        calls.append(f"init:{config['GREETING']}")

    async def start(runtime):
        calls.append(f"start:{runtime.has_service('clock')}")

    async def stop(runtime):
        calls.append("stop")

    async def broken_init(config, runtime):
        raise RuntimeError("init bug")

    plugins = [
        Plugin(name="broken-init", init=broken_init),
        Plugin(name="life", init=init, start=start, stop=stop, config={"GREETING": "hi"}, services=(Clock, Broken)),
    ]
    events: list[str] = []
    for name in ("agent:added", "agent:started", "agent:stopped", "agent:deleted"):
        orchestrator.events.register(name, lambda payload, name=name: _append(events, name))
    [agent_id] = await orchestrator.add_agents([AgentSpec(_character(), plugins=plugins)], auto_start=True)
    await orchestrator.start_agents()  # already started: nothing runs twice

    runtime = orchestrator.runtime(agent_id)
    assert calls == ["init:hi", "start:True"]
    assert isinstance(runtime.get_service("clock"), Clock) and runtime.get_service("broken") is None
    assert runtime.get_registered_service_types() == ["clock", "broken"]
    assert await asyncio.wait_for(runtime.get_service_load_promise("clock"), 1) is runtime.get_service("clock")
    assert runtime.get_services_by_type("clock") == [runtime.get_service("clock")]

    Clock.stopped.clear()
    assert await orchestrator.delete_agents([agent_id]) == 1
    assert calls[-1] == "stop" and Clock.stopped == ["clock"]
    assert events == ["agent:added", "agent:started", "agent:stopped", "agent:deleted"]
    with pytest.raises(NotFoundError):
        orchestrator.get_agent(agent_id)
    assert await orchestrator.adapter.get_agent(agent_id) is None


async def _append(events, name):
    events.append(name)


async def test_lookups_by_ids_and_names(orchestrator):
    first, second = _character("Ann"), _character("Bob")
    ids = await orchestrator.add_agents([first, second])
    assert [b.character.name for b in orchestrator.get_agents_by_names([second.name.upper(), "nobody"])] == [
        second.name
    ]
    assert [b.agent_id for b in orchestrator.get_agents_by_ids([ids[1], uuid.uuid4(), ids[0]])] == [ids[1], ids[0]]
    assert orchestrator.get_agent_by_name(first.name.lower()).agent_id == ids[0]


async def test_add_agents_refuses_migrations_and_duplicate_names(orchestrator):
    with pytest.raises(ConfigurationError, match="never migrates"):
        await orchestrator.add_agents([_character()], skip_migrations=False)
    character = _character()
    await orchestrator.add_agents([character])
    with pytest.raises(ConfigurationError, match="two agents"):
        await orchestrator.add_agents([load_character_dict({"name": character.name.upper(), "id": str(uuid.uuid4())})])


async def test_handle_messages_returns_each_result_or_error(orchestrator, scripted):
    a, b = _character(), _character()
    await orchestrator.add_agents([a, b])
    scripted.script(ModelType.TEXT_LARGE, REPLY, ModelError("provider down", retryable=False))
    outcomes = await orchestrator.handle_messages(
        [
            (a.name, IncomingMessage(text="one")),
            (b.name, IncomingMessage(text="two")),
            ("nobody", IncomingMessage(text="three")),
        ]
    )
    kinds = sorted(type(o).__name__ for o in outcomes)
    assert kinds == ["MessageResult", "ModelError", "NotFoundError"]
    assert isinstance(outcomes[2], NotFoundError)


async def test_health_check_and_api_key_validation_cover_every_agent(adapter):
    orchestrator = Orchestrator(adapter, plugins=[bootstrap])  # no model plugin: keys "missing"
    scripted = ScriptedModels()
    bare = _character()
    served = AgentSpec(_character(), plugins=[scripted.plugin()])
    [bare_id, served_id] = await orchestrator.add_agents([bare, served])
    keys = orchestrator.validate_api_keys()
    assert keys[str(bare_id)] == {"ok": False, "missing": ["TEXT_LARGE", "TEXT_EMBEDDING"]}
    assert keys[str(served_id)] == {"ok": True, "missing": []}
    health = await orchestrator.health_check()
    assert health["database"] is True
    assert health["agents"][str(served_id)]["healthy"] and not health["agents"][str(bare_id)]["healthy"]


async def test_agent_to_agent_messages_stop_at_the_hop_limit(orchestrator, scripted):
    alice, bob = _character("Alice"), _character("Bob")
    await orchestrator.add_agents([alice, AgentSpec(bob, settings={"MAX_AGENT_HOPS": "2"})])
    scripted.script(ModelType.TEXT_LARGE, REPLY, REPLY)
    sender = orchestrator.runtime(alice.name)
    first = await orchestrator.send_agent_message(sender, bob.name, "hello Bob")
    assert first.did_respond
    stored = await orchestrator.adapter.get_memory_by_id(orchestrator.get_agent(bob.name).agent_id, first.message_id)
    assert stored.content.source == "agent" and stored.content.model_extra["hops"] == 1
    second = await orchestrator.send_agent_message(sender, bob.name, "again", replying_to=stored)
    assert second.did_respond
    stored2 = await orchestrator.adapter.get_memory_by_id(orchestrator.get_agent(bob.name).agent_id, second.message_id)
    with pytest.raises(AgentLoopError, match="MAX_AGENT_HOPS=2"):
        await orchestrator.send_agent_message(sender, bob.name, "and again", replying_to=stored2)


async def test_a_malformed_hop_limit_refuses_the_message_naming_it(orchestrator):
    alice, bob = _character("Alice"), _character("Bob")
    await orchestrator.add_agents([alice, AgentSpec(bob, settings={"MAX_AGENT_HOPS": "two"})])
    with pytest.raises(ConfigurationError, match="MAX_AGENT_HOPS: must be an integer, got 'two'"):
        await orchestrator.send_agent_message(orchestrator.runtime(alice.name), bob.name, "hello Bob")


async def test_building_an_ephemeral_runtime_needs_no_sql(orchestrator, adapter):
    [agent_id] = await orchestrator.add_agents([_character()])
    await adapter.pool.close()  # any SQL now would fail
    runtime = orchestrator.runtime(agent_id)
    assert runtime.agent_id == agent_id and runtime.get_current_run_id() is None


async def test_ensure_connections_creates_rooms_entities_and_participants_once(orchestrator, adapter):
    from core.types import Entity, Room, World

    [agent_id] = await orchestrator.add_agents([_character()])
    runtime = orchestrator.runtime(agent_id)
    world = World(id=uuid.uuid4(), agent_id=agent_id, name="server")
    rooms = [Room(id=uuid.uuid4(), agent_id=agent_id, source="discord", type="GROUP") for _ in range(2)]
    people = [Entity(id=uuid.uuid4(), agent_id=agent_id, names=[f"user{i}"]) for i in range(3)]
    await runtime.ensure_connections(people, rooms, world)
    for room in rooms:
        assert set(await adapter.get_participants_for_room(agent_id, room.id)) == {p.id for p in people}
        assert (await adapter.get_room(agent_id, room.id)).world_id == world.id
    await adapter.pool.close()  # a second call for known pairs does no SQL
    await orchestrator.runtime(agent_id).ensure_connections(people, rooms, world)
