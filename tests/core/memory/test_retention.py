from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from core.character import Character
from core.errors import ConfigurationError, ModelError
from core.memory.plugin import memory_plugin
from core.memory.retention import (
    FACT_CONSOLIDATION_TASK,
    MESSAGE_RETENTION_TASK,
    ORPHAN_CLEANUP_TASK,
    RETENTION_TAG,
    SUMMARY_TABLE,
    RetentionSettings,
    _chunks,
    compress_messages,
    consolidate_facts,
    ensure_retention_tasks,
    remove_orphans,
    retention_task_id,
)
from core.orchestrator import Orchestrator
from core.settings.tasks import TaskRunnerSettings
from core.tasks.runner import TaskRunner
from core.types import Component, Content, Memory, ModelType
from core.types.fact import FACTS_TABLE, Fact
from core.types.memory import now_ms
from tests.core.memory.conftest import (
    bag_of_words,
    drain,
    embed_all,
    fixture_text,
    irc_lines,
    seed_room,
    sql,
)

DAY_MS = 86_400_000
SUMMARY = fixture_text("ubuntu_irc_summary.txt")


@pytest.fixture
def one_chunk(monkeypatch):
    """One summary for the 120 messages of log lines 1-130 (the default chunk is 100 messages)."""
    from core.memory import retention

    monkeypatch.setattr(retention, "SUMMARY_CHUNK_MESSAGES", 200)


async def messages_of(runtime, room_id) -> list[Memory]:
    return await runtime.adapter.get_memories(runtime.agent_id, room_id, "messages", 1000)


async def summaries_of(runtime, room_id) -> list[Memory]:
    return await runtime.adapter.get_memories(runtime.agent_id, room_id, SUMMARY_TABLE, 100)


async def recent_messages(runtime, room, count: int) -> list[Memory]:
    """``count`` messages of today in ``room`` (kept by retention)."""
    speaker = next(iter(room.people.values()))
    recent = [
        Memory(
            agent_id=runtime.agent_id,
            room_id=room.room_id,
            entity_id=speaker,
            content=Content(text=f"today's message {i}"),
        )
        for i in range(count)
    ]
    await runtime.adapter.create_memories(recent, "messages")
    return recent


# -- settings --------------------------------------------------------------------------------------


def test_settings_have_safe_defaults(make_runtime):
    settings = RetentionSettings.from_runtime(make_runtime())
    assert settings.message_retention_days is None and settings.summarize is True
    assert (settings.max_rows, settings.max_summaries, settings.facts_max_per_room) == (500, 5, 200)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MESSAGE_RETENTION_DAYS", "0"),
        ("MESSAGE_RETENTION_DAYS", "soon"),
        ("RETENTION_MAX_ROWS", "5000"),
        ("FACTS_MAX_PER_ROOM", "0"),
        ("RETENTION_INTERVAL_S", "1"),
        ("MESSAGE_RETENTION_SUMMARIZE", "maybe"),
    ],
)
async def test_invalid_settings_fail_the_run_naming_the_setting(make_runtime, name, value):
    runtime = make_runtime({name: value})
    with pytest.raises(ConfigurationError, match=name):
        await compress_messages(runtime)


# -- message retention -----------------------------------------------------------------------------


async def test_without_a_retention_age_messages_are_kept(make_runtime, scripted):
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 20))
    report = await compress_messages(runtime)
    assert report.disabled and report.deleted == 0
    assert len(await messages_of(runtime, room.room_id)) == len(room.messages) and scripted.calls == []


async def test_compression_summarises_old_messages_into_a_document_then_deletes_them(
    make_runtime, scripted, sqs, one_chunk
):
    runtime = make_runtime({"MESSAGE_RETENTION_DAYS": "30"})
    room = await seed_room(runtime, irc_lines(1, 130))
    kept = await recent_messages(runtime, room, 3)
    scripted.script(ModelType.TEXT_SMALL, SUMMARY)

    report = await compress_messages(runtime)

    old = room.messages
    assert (report.scanned, report.deleted, report.summaries, report.more) == (len(old), len(old), 1, False)
    assert {m.id for m in await messages_of(runtime, room.room_id)} == {m.id for m in kept}
    (summary,) = await summaries_of(runtime, room.room_id)
    meta = summary.metadata.model_extra
    assert summary.metadata.type == "document" and summary.metadata.source == "compression"
    assert (meta["startMs"], meta["endMs"], meta["messageCount"]) == (old[0].created_at, old[-1].created_at, len(old))
    assert summary.text.startswith(
        f"Summary of {len(old)} messages from 2004-11-15 12:18 to 2004-11-15 12:29 UTC: "
        "In #ubuntu, billytwowilly could not build a kernel module"
    )
    assert summary.entity_id == runtime.agent_id
    # The prompt carried the real lines with speakers and times.
    prompt = scripted.calls[-1][1]["prompt"]
    assert f"These {len(old)} messages, from 2004-11-15 12:18 to 2004-11-15 12:29" in prompt
    assert "[2004-11-15 12:21] bob2: billytwowilly: install linux-headers-2.6.8.1-3-686" in prompt
    # Queued for embedding at low priority.
    await runtime.flush_embeddings()
    client, urls = sqs
    assert [r["memoryId"] for r in drain(client, urls["low"])] == [str(summary.id)]

    again = await compress_messages(runtime)  # idempotent: nothing left to do, no model call
    assert (again.scanned, again.deleted, again.summaries) == (0, 0, 0) and len(scripted.calls) == 1


async def test_recall_survives_compression(make_runtime, scripted, adapter, one_chunk):
    runtime = make_runtime({"MESSAGE_RETENTION_DAYS": "30"})
    room = await seed_room(runtime, irc_lines(1, 130))
    others = await seed_room(runtime, irc_lines(300, 420))  # another old conversation, also compressed
    embed = bag_of_words(scripted)
    await embed_all(adapter, room.messages + others.messages, embed)
    query = "billytwowilly linux-headers kernel headers build-essential gcc"
    before = await adapter.search_memories(runtime.agent_id, scripted.vector(query), count=3, query_text=query)
    assert before[0].id in {m.id for m in room.messages} and "billytwowilly" in before[0].text

    scripted.script(ModelType.TEXT_SMALL, SUMMARY, "<summary>epod and HrdwrBoB talked about mkfs.vfat.</summary>")
    await compress_messages(runtime)
    documents = await summaries_of(runtime, room.room_id) + await summaries_of(runtime, others.room_id)
    await embed_all(adapter, documents, embed)  # what the embedding worker does with the queued requests

    after = await adapter.search_memories(runtime.agent_id, scripted.vector(query), count=3, query_text=query)
    assert after[0].room_id == room.room_id and after[0].metadata.type == "document"
    assert "linux-headers-2.6.8.1-3-686" in after[0].text
    assert not {m.id for m in after} & {m.id for m in room.messages + others.messages}  # the messages are gone
    assert await messages_of(runtime, room.room_id) == []


@pytest.mark.local_models
async def test_recall_survives_compression_with_the_real_embedding_model(make_runtime, scripted, adapter, one_chunk):
    from core.model_providers import local_embedding

    model = local_embedding.get_model()

    async def embed(texts: list[str]) -> list[list[float]]:
        return model.embed(texts)

    runtime = make_runtime({"MESSAGE_RETENTION_DAYS": "30"})
    room = await seed_room(runtime, irc_lines(1, 130))
    others = await seed_room(runtime, irc_lines(300, 420))
    scripted.script(
        ModelType.TEXT_SMALL,
        SUMMARY,
        "<summary>epod and HrdwrBoB talked about formatting a disk as"
        " FAT with mkfs.vfat, which said the file system was too large."
        "</summary>",
    )
    await compress_messages(runtime)
    documents = await summaries_of(runtime, room.room_id) + await summaries_of(runtime, others.room_id)
    await embed_all(adapter, documents, embed)

    question = "How did billytwowilly get the headers for his kernel?"
    (vector,) = model.embed([question])
    found = await adapter.search_memories(runtime.agent_id, vector, count=2)
    assert found[0].room_id == room.room_id and found[0].similarity > found[1].similarity


async def test_a_run_is_bounded_and_leaves_the_rest_for_the_next(make_runtime, scripted):
    runtime = make_runtime(
        {"MESSAGE_RETENTION_DAYS": 1, "MESSAGE_RETENTION_SUMMARIZE": "false", "RETENTION_MAX_ROWS": 4}
    )
    room = await seed_room(runtime, irc_lines(1, 11))
    assert len(room.messages) == 11
    kept = await recent_messages(runtime, room, 2)
    runs = [await compress_messages(runtime) for _ in range(4)]
    assert [(r.deleted, r.more) for r in runs] == [(4, True), (4, True), (3, False), (0, False)]
    assert {m.id for m in await messages_of(runtime, room.room_id)} == {m.id for m in kept}
    assert scripted.calls == [] and await summaries_of(runtime, room.room_id) == []


async def test_summaries_per_run_are_bounded_too(make_runtime, scripted):
    runtime = make_runtime({"MESSAGE_RETENTION_DAYS": 1, "RETENTION_MAX_SUMMARIES": 1})
    first = await seed_room(runtime, irc_lines(1, 11))
    second = await seed_room(runtime, irc_lines(12, 25))
    scripted.script(ModelType.TEXT_SMALL, "<summary>first part</summary>", "<summary>second part</summary>")

    one = await compress_messages(runtime)
    assert (one.summaries, one.more, one.deleted) == (1, True, len(first.messages))
    two = await compress_messages(runtime)
    assert (two.summaries, two.more, two.deleted) == (1, False, len(second.messages))
    assert [s.text.split(": ", 1)[1] for s in await summaries_of(runtime, second.room_id)] == ["second part"]


@pytest.mark.parametrize("answer", [ModelError("outage", provider="scripted"), "", "<response></response>"])
async def test_a_failed_summary_keeps_the_messages_and_does_not_raise(make_runtime, scripted, answer):
    runtime = make_runtime({"MESSAGE_RETENTION_DAYS": 1})
    room = await seed_room(runtime, irc_lines(1, 11))
    scripted.script(ModelType.TEXT_SMALL, answer)
    report = await compress_messages(runtime)
    assert (report.summary_failures, report.summaries, report.deleted) == (1, 0, 0)
    assert len(await messages_of(runtime, room.room_id)) == len(room.messages)
    assert await summaries_of(runtime, room.room_id) == []


async def test_a_run_that_died_after_its_summary_is_finished_without_a_second_one(make_runtime, scripted):
    runtime = make_runtime({"MESSAGE_RETENTION_DAYS": 1})
    room = await seed_room(runtime, irc_lines(1, 11))
    # What a run that crashed after storing its summary left: the summary, and every message.
    (chunk,) = _chunks(room.messages)
    await runtime.adapter.create_memory(
        Memory(
            id=chunk.summary_id,
            agent_id=runtime.agent_id,
            room_id=room.room_id,
            entity_id=runtime.agent_id,
            content=Content(text="earlier summary"),
        ),
        SUMMARY_TABLE,
    )
    report = await compress_messages(runtime)  # no answer is scripted: a model call would fail
    assert (report.summaries, report.summary_failures, report.deleted) == (0, 0, len(room.messages))
    assert [s.text for s in await summaries_of(runtime, room.room_id)] == ["earlier summary"]


def test_chunks_follow_rooms_and_bounds(agent_id, monkeypatch):
    from core.memory import retention

    monkeypatch.setattr(retention, "SUMMARY_CHUNK_MESSAGES", 3)
    a, b = uuid.uuid4(), uuid.uuid4()
    messages = [
        Memory(agent_id=agent_id, room_id=room, entity_id=agent_id, content=Content(text="x"))
        for room in (a, b, a, a, a, b, a)
    ]
    chunks = _chunks(messages)
    assert [(c.room_id, len(c.messages)) for c in chunks] == [(a, 3), (a, 2), (b, 2)]
    assert len({c.summary_id for c in chunks}) == 3 and _chunks(messages)[0].summary_id == chunks[0].summary_id


# -- fact consolidation ----------------------------------------------------------------------------


async def seed_facts(runtime, room_id, specs) -> dict[str, Fact]:
    """``specs``: (text, confidence, days since last confirmed)."""
    now = now_ms()
    facts = [
        Fact(
            agent_id=runtime.agent_id,
            room_id=room_id,
            text=text,
            confidence=conf,
            created_at=now - int(age * DAY_MS) - 1000,
            last_seen_at=now - int(age * DAY_MS),
        )
        for text, conf, age in specs
    ]
    await runtime.adapter.upsert_facts(facts)
    return {f.text: f for f in facts}


async def fact_texts(runtime, room_id) -> set[str]:
    page = await runtime.adapter.list_memories(runtime.agent_id, table=FACTS_TABLE, room_id=room_id, limit=100)
    return {m.text for m in page.memories}


async def task_named(runtime, name):
    await ensure_retention_tasks(runtime)
    return await runtime.get_task(retention_task_id(runtime.agent_id, name))


SPECS = [
    ("fresh and sure", 0.9, 0),
    ("fresh and unsure", 0.3, 0),
    ("old but sure", 0.9, 60),
    ("month old", 0.5, 30),
    ("ancient", 0.9, 365),
    ("yesterday", 0.5, 1),
    ("week old", 0.6, 7),
]


async def test_consolidation_keeps_the_best_facts_by_confidence_and_recency(make_runtime):
    runtime = make_runtime({"FACTS_MAX_PER_ROOM": 4, "FACT_HALF_LIFE_DAYS": 30})
    room = await seed_room(runtime, irc_lines(1, 5))
    small = await seed_room(runtime, irc_lines(6, 8))
    await seed_facts(runtime, room.room_id, SPECS)
    await seed_facts(runtime, small.room_id, SPECS[:3])
    task = await task_named(runtime, FACT_CONSOLIDATION_TASK)

    report = await consolidate_facts(runtime, task.metadata.model_dump(by_alias=True), task)

    # Scores: 0.9, 0.3, 0.225, 0.25, ~0, 0.489, 0.512 → the four best stay.
    assert await fact_texts(runtime, room.room_id) == {"fresh and sure", "yesterday", "week old", "fresh and unsure"}
    assert len(await fact_texts(runtime, small.room_id)) == 3  # under the cap: untouched
    assert (report.deleted, report.scanned, report.more) == (3, 2, False)

    task = await runtime.get_task(task.id)
    again = await consolidate_facts(runtime, task.metadata.model_dump(by_alias=True), task)
    assert again.deleted == 0


async def test_consolidation_is_bounded_and_resumes(make_runtime):
    runtime = make_runtime({"FACTS_MAX_PER_ROOM": 2, "RETENTION_MAX_ROWS": 3})
    room = await seed_room(runtime, irc_lines(1, 5))
    await seed_facts(runtime, room.room_id, SPECS)
    task = await task_named(runtime, FACT_CONSOLIDATION_TASK)

    first = await consolidate_facts(runtime, task.metadata.model_dump(by_alias=True), task)
    assert (first.deleted, first.more) == (3, True)
    assert len(await fact_texts(runtime, room.room_id)) == 4
    task = await runtime.get_task(task.id)
    second = await consolidate_facts(runtime, task.metadata.model_dump(by_alias=True), task)
    assert (second.deleted, second.more) == (2, False)
    assert await fact_texts(runtime, room.room_id) == {"fresh and sure", "week old"}


async def test_consolidation_reads_only_rooms_with_new_facts_and_starts_over_when_the_cap_changes(make_runtime):
    runtime = make_runtime({"FACTS_MAX_PER_ROOM": 5})
    busy = await seed_room(runtime, irc_lines(1, 5))
    quiet = await seed_room(runtime, irc_lines(6, 8))
    await seed_facts(runtime, busy.room_id, SPECS[:5])
    task = await task_named(runtime, FACT_CONSOLIDATION_TASK)
    first = await consolidate_facts(runtime, task.metadata.model_dump(by_alias=True), task)
    assert (first.scanned, first.deleted) == (1, 0)
    task = await runtime.get_task(task.id)
    assert task.metadata.model_dump(by_alias=True)["factCap"] == 5

    # Facts stored with old creation times (an import) land before the cursor: that room is not read.
    old = now_ms() - 10 * DAY_MS
    await runtime.adapter.upsert_facts(
        [
            Fact(agent_id=runtime.agent_id, room_id=quiet.room_id, text=f"imported {i}", created_at=old + i)
            for i in range(6)
        ]
    )
    report = await consolidate_facts(runtime, task.metadata.model_dump(by_alias=True), task)
    assert report.deleted == 0 and len(await fact_texts(runtime, quiet.room_id)) == 6

    # A new fact brings the room back.
    await seed_facts(runtime, quiet.room_id, [("brand new", 0.9, 0)])
    task = await runtime.get_task(task.id)
    report = await consolidate_facts(runtime, task.metadata.model_dump(by_alias=True), task)
    assert report.deleted == 2 and "brand new" in await fact_texts(runtime, quiet.room_id)

    # A lower cap reads every room again.
    lower = make_runtime({"FACTS_MAX_PER_ROOM": 2})
    task = await lower.get_task(task.id)
    report = await consolidate_facts(lower, task.metadata.model_dump(by_alias=True), task)
    assert (report.scanned, report.deleted) == (2, 6)


# -- orphans ---------------------------------------------------------------------------------------


async def test_orphan_facts_go_and_relationships_and_components_go_with_their_entity(make_runtime, adapter):
    runtime = make_runtime()
    room = await seed_room(runtime, irc_lines(1, 130))
    people, agent = room.people, runtime.agent_id
    gone, stays = people["tweaked"], people["HrdwrBoB"]
    await adapter.upsert_facts(
        [
            Fact(agent_id=agent, room_id=room.room_id, text="tweaked is new to Linux", entity_id=gone),
            Fact(
                agent_id=agent,
                room_id=room.room_id,
                text="HrdwrBoB helped tweaked",
                entity_id=stays,
                object_entity_id=gone,
            ),
            Fact(agent_id=agent, room_id=room.room_id, text="HrdwrBoB uses /home/hrdwrbob/storage", entity_id=stays),
            Fact(
                agent_id=agent, room_id=room.room_id, text="Ubuntu is a Linux distribution"
            ),  # about no one: the agent
        ]
    )
    await adapter.create_relationship(agent, stays, gone, tags=["helping"])
    await adapter.create_component(Component(entity_id=gone, agent_id=agent, type="profile", data={"new": True}))

    # No adapter method deletes an entity; other tools (or a future delete_entity) do it in SQL.
    await sql(adapter, "DELETE FROM entities WHERE agent_id = %s AND id = %s", (agent, gone))
    # The schema already removed the relationship and the component (ON DELETE CASCADE)...
    assert await adapter.get_relationships(agent, stays) == []
    assert await adapter.get_components(agent, gone) == []
    # ...but not the facts: that is the sweep's job.
    assert len(await fact_texts(runtime, room.room_id)) == 4

    task = await task_named(runtime, ORPHAN_CLEANUP_TASK)
    report = await remove_orphans(runtime, {}, task)
    assert (report.scanned, report.deleted, report.more) == (4, 2, False)
    assert await fact_texts(runtime, room.room_id) == {
        "HrdwrBoB uses /home/hrdwrbob/storage",
        "Ubuntu is a Linux distribution",
    }
    again = await remove_orphans(runtime, {}, task)
    assert (again.scanned, again.deleted) == (2, 0)


async def test_the_orphan_sweep_is_bounded_and_resumes_where_it_stopped(make_runtime, adapter):
    runtime = make_runtime({"RETENTION_MAX_ROWS": 2})
    room = await seed_room(runtime, irc_lines(1, 20))
    gone = room.people["billytwowilly"]
    base = now_ms() - 1000
    await adapter.upsert_facts(
        [
            Fact(agent_id=runtime.agent_id, room_id=room.room_id, text=f"fact {i}", entity_id=gone, created_at=base + i)
            for i in range(5)
        ]
    )
    await sql(adapter, "DELETE FROM entities WHERE agent_id = %s AND id = %s", (runtime.agent_id, gone))
    task = await task_named(runtime, ORPHAN_CLEANUP_TASK)

    reports = []
    for _ in range(4):
        task = await runtime.get_task(task.id)
        reports.append(await remove_orphans(runtime, task.metadata.model_dump(by_alias=True, exclude_none=True), task))
    assert [(r.scanned, r.deleted, r.more) for r in reports] == [
        (2, 2, True),
        (2, 2, True),
        (1, 1, False),
        (0, 0, False),
    ]
    assert await fact_texts(runtime, room.room_id) == set()


async def test_an_invalid_orphan_cursor_starts_over(make_runtime, caplog):
    report = await remove_orphans(make_runtime(), {"orphanCursor": "not-a-cursor"})
    assert report.scanned == 0 and "starting over" in caplog.text


# -- tasks, metrics, runner ------------------------------------------------------------------------


async def test_retention_tasks_are_created_once(make_runtime):
    runtime = make_runtime({"RETENTION_INTERVAL_S": 600})
    created = await asyncio.gather(*(ensure_retention_tasks(runtime) for _ in range(3)))
    assert len({task_id for ids in created for task_id in ids}) == 3
    assert await ensure_retention_tasks(runtime) == []
    tasks = await runtime.get_tasks(tags=[RETENTION_TAG])
    assert sorted(t.name for t in tasks) == sorted(
        [MESSAGE_RETENTION_TASK, FACT_CONSOLIDATION_TASK, ORPHAN_CLEANUP_TASK]
    )
    assert all(t.tags == ["queue", "repeat", RETENTION_TAG] and t.metadata.update_interval == 600_000 for t in tasks)
    assert all(t.next_run_at and t.next_run_at > now_ms() for t in tasks)  # first run after one interval


async def test_each_run_emits_one_metrics_blob_and_one_log_line(make_runtime, monkeypatch, capsys, caplog):
    caplog.set_level("INFO", logger="core.memory.retention")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "RetentionTest")
    runtime = make_runtime()
    await remove_orphans(runtime)
    blob = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "RetentionTest" and ["Task"] in directive["Dimensions"]
    assert blob["Task"] == ORPHAN_CLEANUP_TASK and blob["RowsDeleted"] == [0.0] and blob["MoreWork"] == [0.0]
    assert blob["agentId"] == str(runtime.agent_id)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "core.memory.retention"]
    assert line.startswith(f"ORPHAN_CLEANUP of agent {runtime.agent_id}: scanned=0 deleted=0")


async def test_metrics_respect_the_off_switch(make_runtime, capsys):
    await remove_orphans(make_runtime())  # POWERTOOLS_METRICS_DISABLED=true in tests/conftest.py
    assert "_aws" not in capsys.readouterr().out


async def test_the_scheduled_runner_runs_the_three_tasks_and_reschedules_them(adapter, scripted):
    orchestrator = Orchestrator(
        adapter, plugins=[memory_plugin, scripted.plugin()], settings={"MESSAGE_RETENTION_DAYS": "30"}
    )
    (agent,) = await orchestrator.add_agents([Character(name=f"retention-{uuid.uuid4()}")])
    runtime = orchestrator.runtime(agent)
    room = await seed_room(runtime, irc_lines(1, 30))
    await ensure_retention_tasks(runtime)
    await sql(adapter, "UPDATE tasks SET next_run_at = now() - interval '1 second' WHERE agent_id = %s", (agent,))
    scripted.script(ModelType.TEXT_SMALL, "<summary>The first minutes of #ubuntu that night.</summary>")

    report = await TaskRunner(adapter, orchestrator, TaskRunnerSettings(task_timeout_s=10, time_reserve_s=1)).run()

    assert (report.claimed, report.succeeded, report.retried) == (3, 3, 0)
    assert await messages_of(runtime, room.room_id) == []
    assert len(await summaries_of(runtime, room.room_id)) == 1
    tasks = await runtime.get_tasks(tags=[RETENTION_TAG])
    assert len(tasks) == 3 and all(t.next_run_at > now_ms() and t.attempts == 0 for t in tasks)
