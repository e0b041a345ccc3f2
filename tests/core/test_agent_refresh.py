"""Agents stored while the process runs (core.agent_refresh), on a real database with a test clock.

The shared test database holds other tests' agents too: every assertion names this test's own
agents, and the stored rows are written as ``agent agents put`` writes them (``upsert_agents``
with the character's JSON dump).
"""

from __future__ import annotations

import logging
import uuid
from contextlib import asynccontextmanager

import pytest

from core.agent_refresh import AgentRefresher, RefreshSettings
from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.db.adapter import AgentRecord
from core.errors import ConfigurationError, NotFoundError
from core.orchestrator import AgentSpec, Orchestrator
from core.plugin import Action, Plugin


class Clock:
    """Wall-clock seconds that a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def orchestrator(adapter, scripted, clock):
    orchestrator = Orchestrator(adapter, plugins=[bootstrap, scripted.plugin()])
    orchestrator.refresher = AgentRefresher(orchestrator, RefreshSettings(interval_s=5, miss_interval_s=1), clock=clock)
    await orchestrator.refresher.refresh()  # the init phase's read
    return orchestrator


@pytest.fixture
def checkouts(adapter, monkeypatch):
    """Connections taken from the pool: every statement the adapter runs takes one."""
    taken: list[int] = []
    connection = adapter.pool.connection

    @asynccontextmanager
    async def counted(*args, **kwargs):
        taken.append(1)
        async with connection(*args, **kwargs) as conn:
            yield conn

    monkeypatch.setattr(adapter.pool, "connection", counted)
    return taken


def _record(name: str | None = None, **fields) -> AgentRecord:
    """A row as ``agent agents put`` stores it: the validated character's JSON dump, id from the name."""
    name = name or f"Stored-{uuid.uuid4().hex[:8]}"
    character = load_character_dict({"name": name, "bio": ["stored while running"], **fields})
    agent_id = uuid.uuid4()
    return AgentRecord(agent_id, name, character.model_dump(mode="json", by_alias=True))


async def test_an_agent_stored_while_running_is_served_on_the_first_request_naming_it(orchestrator, adapter, clock):
    record = _record()
    await adapter.upsert_agents([record])
    assert not orchestrator.has_agent(record.name)
    clock.now += 1  # AGENT_REFRESH_ON_MISS_S since the last read
    await orchestrator.before_request(record.name.upper())
    runtime = orchestrator.runtime(record.name)
    assert runtime.agent_id == record.id and runtime.character.bio == ["stored while running"]
    assert orchestrator.get_agent(record.id).started


async def test_an_agent_stored_while_running_is_served_by_the_periodic_read(orchestrator, adapter, clock):
    record = _record()
    await adapter.upsert_agents([record])
    clock.now += 4.9
    await orchestrator.before_request(None)
    assert not orchestrator.has_agent(record.id)  # not due yet
    clock.now += 0.1
    await orchestrator.before_request(None)
    assert orchestrator.has_agent(record.id)


async def test_an_unknown_name_reads_the_table_at_most_once_per_miss_interval(orchestrator, clock, checkouts):
    reads = orchestrator.refresher.reads
    for _ in range(50):  # a burst of requests for an agent nobody stored
        await orchestrator.before_request("nobody-by-this-name")
    assert orchestrator.refresher.reads - reads == 0 and checkouts == []  # read less than 1 s ago
    clock.now += 1
    for _ in range(50):
        await orchestrator.before_request("nobody-by-this-name")
        clock.now += 0.01  # 50 requests over half a second
    assert orchestrator.refresher.reads - reads == 1 and len(checkouts) == 1
    with pytest.raises(NotFoundError):
        orchestrator.runtime("nobody-by-this-name")


async def test_a_known_agent_costs_no_query_until_the_interval_is_over(orchestrator, adapter, clock, checkouts):
    record = _record()
    await adapter.upsert_agents([record])
    checkouts.clear()
    clock.now += 1
    await orchestrator.before_request(record.name)
    assert len(checkouts) == 1
    for _ in range(100):
        clock.now += 0.039  # 3.9 s more: under AGENT_REFRESH_S
        await orchestrator.before_request(record.name)
        orchestrator.runtime(record.name)
    assert len(checkouts) == 1


async def test_a_changed_bio_is_served_after_the_interval_by_a_rebuilt_blueprint(orchestrator, adapter, clock):
    record = _record()
    await adapter.upsert_agents([record])
    clock.now += 5
    await orchestrator.before_request(None)
    before = orchestrator.get_agent(record.id)
    changed = _record(record.name, bio=["a new biography"])._replace(id=record.id)
    await adapter.upsert_agents([changed])
    clock.now += 4
    await orchestrator.before_request(record.name)
    assert orchestrator.runtime(record.id).character.bio == ["stored while running"]  # within the bound
    clock.now += 1
    await orchestrator.before_request(record.name)
    after = orchestrator.get_agent(record.id)
    assert after is not before and after.started and not before.started
    assert orchestrator.runtime(record.id).character.bio == ["a new biography"]


async def test_an_unchanged_row_is_not_shipped_again_nor_rebuilt(orchestrator, adapter, clock):
    record = _record()
    await adapter.upsert_agents([record])
    clock.now += 5
    await orchestrator.before_request(None)
    blueprint = orchestrator.get_agent(record.id)
    versions = await adapter.get_agent_versions({record.id: (await _updated_at(adapter, record.id))})
    assert next(v for v in versions if v.id == record.id).character is None
    await adapter.upsert_agents([record])  # the same character again: the row is not touched
    clock.now += 5
    await orchestrator.before_request(None)
    assert orchestrator.get_agent(record.id) is blueprint


async def test_a_disabled_or_deleted_agent_stops_being_served(orchestrator, adapter, clock):
    disabled, deleted = _record(), _record()
    await adapter.upsert_agents([disabled, deleted])
    clock.now += 5
    await orchestrator.before_request(None)
    assert orchestrator.has_agent(disabled.id) and orchestrator.has_agent(deleted.id)
    removed: list[str] = []

    async def on_removed(payload):
        removed.append(payload["name"])

    orchestrator.events.register("agent:removed", on_removed)
    await adapter.update_agent(disabled.id, {"enabled": False})
    await adapter.delete_agent(deleted.id)
    clock.now += 5
    await orchestrator.before_request(None)
    assert not orchestrator.has_agent(disabled.id) and not orchestrator.has_agent(deleted.id)
    assert sorted(removed) == sorted([disabled.name, deleted.name])
    await adapter.update_agent(disabled.id, {"enabled": True})  # enabled again: served again
    clock.now += 5
    await orchestrator.before_request(None)
    assert orchestrator.has_agent(disabled.id)


async def test_an_agent_added_with_its_own_plugins_keeps_them_when_its_character_changes(orchestrator, adapter, clock):
    async def wave(runtime, message, state=None, options=None, callback=None):
        return None

    extra = Plugin(name="waver", actions=(Action(name="WAVE", description="waves", handler=wave),))
    character = load_character_dict({"name": f"Spec-{uuid.uuid4().hex[:8]}", "bio": ["configured"]})
    [agent_id] = await orchestrator.add_agents([AgentSpec(character, plugins=[extra], settings={"X": "1"})])
    changed = character.model_copy(update={"bio": ["changed in the table"]}).model_dump(mode="json", by_alias=True)
    await adapter.upsert_agents([AgentRecord(agent_id, character.name, changed)])
    clock.now += 5
    await orchestrator.before_request(None)
    runtime = orchestrator.runtime(agent_id)
    assert runtime.character.bio == ["changed in the table"]
    assert "WAVE" in runtime.blueprint.actions and runtime.get_setting("X") == "1"


async def test_an_agent_registered_without_a_row_is_never_removed(orchestrator, clock):
    [agent_id] = await orchestrator.add_agents(
        [load_character_dict({"name": f"Local-{uuid.uuid4().hex[:8]}"})], persist=False
    )
    clock.now += 5
    await orchestrator.before_request(None)
    assert orchestrator.has_agent(agent_id)


async def test_an_invalid_stored_character_is_skipped_with_one_warning(orchestrator, adapter, clock, caplog):
    name = f"Broken-{uuid.uuid4().hex[:8]}"
    record = AgentRecord(uuid.uuid4(), name, {"name": name, "bio": 42})
    await adapter.upsert_agents([record])
    with caplog.at_level(logging.WARNING, logger="core.agent_refresh"):
        for _ in range(3):
            clock.now += 5
            await orchestrator.before_request(name)
    warnings = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert len(warnings) == 1 and "is not served: its character is invalid" in warnings[0] and "bio" in warnings[0]
    assert not orchestrator.has_agent(name)


async def test_a_stored_agent_naming_a_missing_plugin_is_skipped_and_the_others_served(
    orchestrator, adapter, clock, caplog
):
    broken, fine = _record(plugins=["no_such_module_anywhere:plugin"]), _record()
    await adapter.upsert_agents([broken, fine])
    clock.now += 5
    with caplog.at_level(logging.WARNING, logger="core.agent_refresh"):
        await orchestrator.before_request(None)
    assert not orchestrator.has_agent(broken.id) and orchestrator.has_agent(fine.id)
    assert any(broken.name in r.getMessage() and "no_such_module_anywhere" in r.getMessage() for r in caplog.records)


async def test_a_stored_name_taken_by_an_agent_without_a_row_is_skipped(orchestrator, adapter, clock, caplog):
    name = f"Twin-{uuid.uuid4().hex[:8]}"
    [local] = await orchestrator.add_agents([load_character_dict({"name": name})], persist=False)
    stored = _record(name.lower())
    await adapter.upsert_agents([stored])
    clock.now += 5
    with caplog.at_level(logging.WARNING, logger="core.agent_refresh"):
        await orchestrator.before_request(None)
    assert orchestrator.get_agent(name).agent_id == local
    assert any("two agents are named" in r.getMessage() for r in caplog.records)


async def test_a_failed_read_keeps_the_known_agents_and_does_not_raise(orchestrator, adapter, clock, caplog):
    record = _record()
    await adapter.upsert_agents([record])
    clock.now += 5
    await orchestrator.before_request(None)
    await adapter.pool.close()  # the database is gone
    clock.now += 5
    with caplog.at_level(logging.WARNING, logger="core.agent_refresh"):
        await orchestrator.before_request("someone-new")
    assert orchestrator.has_agent(record.id)
    assert any("could not re-read the agents table" in r.getMessage() for r in caplog.records)


async def test_a_clock_that_goes_back_reads_again(orchestrator, clock):
    reads = orchestrator.refresher.reads
    clock.now -= 60
    await orchestrator.before_request(None)
    assert orchestrator.refresher.reads == reads + 1


async def test_building_a_runtime_after_a_refresh_needs_no_sql(orchestrator, adapter, clock):
    record = _record()
    await adapter.upsert_agents([record])
    clock.now += 1
    await orchestrator.before_request(record.name)
    await adapter.pool.close()  # any SQL now would fail
    assert orchestrator.runtime(record.name).agent_id == record.id


async def test_without_a_refresher_before_request_does_nothing(adapter, scripted):
    orchestrator = Orchestrator(adapter, plugins=[bootstrap, scripted.plugin()])
    await adapter.pool.close()
    await orchestrator.before_request("anyone")  # no SQL: it would fail on a closed pool


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, RefreshSettings(interval_s=5.0, miss_interval_s=1.0)),
        (
            {"AGENT_REFRESH_S": " 2.5 ", "AGENT_REFRESH_ON_MISS_S": "0"},
            RefreshSettings(interval_s=2.5, miss_interval_s=0.0),
        ),
        ({"AGENT_REFRESH_S": ""}, RefreshSettings(interval_s=5.0, miss_interval_s=1.0)),
    ],
)
def test_refresh_settings_from_the_environment(environ, expected):
    assert RefreshSettings.from_env(environ) == expected


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"AGENT_REFRESH_S": "soon"}, "AGENT_REFRESH_S"),
        ({"AGENT_REFRESH_S": "-1"}, "AGENT_REFRESH_S"),
        ({"AGENT_REFRESH_S": "nan"}, "AGENT_REFRESH_S"),
        ({"AGENT_REFRESH_ON_MISS_S": "1e9"}, "AGENT_REFRESH_ON_MISS_S"),
    ],
)
def test_a_bad_refresh_setting_names_the_variable(environ, variable):
    with pytest.raises(ConfigurationError, match=variable):
        RefreshSettings.from_env(environ)


async def _updated_at(adapter, agent_id):
    async with adapter.pool.connection() as conn:
        row = await (await conn.execute("SELECT updated_at FROM agents WHERE id = %s", (agent_id,))).fetchone()
    return row["updated_at"]


def test_every_bad_refresh_setting_is_named_at_once():
    with pytest.raises(ConfigurationError) as caught:
        RefreshSettings.from_env({"AGENT_REFRESH_S": "soon", "AGENT_REFRESH_ON_MISS_S": "-1"})
    assert str(caught.value) == "AGENT_REFRESH_S: must be a number, got 'soon'"
    with pytest.raises(ConfigurationError) as caught:
        RefreshSettings.from_env({"AGENT_REFRESH_S": "86401", "AGENT_REFRESH_ON_MISS_S": "-1"})
    assert str(caught.value) == (
        "AGENT_REFRESH_S: must be at most 86400, got 86401.0; AGENT_REFRESH_ON_MISS_S: must be at least 0, got -1.0"
    )
