"""prepare_agents: retention tasks and character knowledge, once and idempotently."""

from __future__ import annotations

import uuid

from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.knowledge.documents import list_documents
from core.memory.plugin import memory_plugin
from core.model_providers.scripted import ScriptedModels
from core.orchestrator import Orchestrator
from core.tasks.agent_setup import prepare_agents


async def test_agents_get_their_retention_tasks_and_knowledge_once(adapter):
    orchestrator = Orchestrator(adapter, plugins=[bootstrap, memory_plugin, ScriptedModels().plugin()])
    character = load_character_dict(
        {"name": f"Setup-{uuid.uuid4().hex[:8]}", "knowledge": ["The library opens at nine.", "Cats sleep a lot."]}
    )
    [agent_id] = await orchestrator.add_agents([character])

    first = await prepare_agents(orchestrator)
    assert first.failed == [] and first.agents == 1
    assert first.tasks_created == 3 and first.documents_added == 2
    runtime = orchestrator.runtime(agent_id)
    assert {t.name for t in await runtime.get_tasks(tags=["retention"])} == {w.name for w in memory_plugin.task_workers}
    assert len((await list_documents(runtime)).memories) == 2

    again = await prepare_agents(orchestrator)
    assert (again.tasks_created, again.documents_added, again.failed) == (0, 0, [])


async def test_skipped_agents_are_left_alone_and_a_failing_agent_does_not_stop_the_others(adapter):
    orchestrator = Orchestrator(adapter, plugins=[bootstrap, memory_plugin, ScriptedModels().plugin()])
    good = load_character_dict({"name": f"Good-{uuid.uuid4().hex[:8]}"})
    bad = load_character_dict(
        {
            "name": f"Bad-{uuid.uuid4().hex[:8]}",
            "settings": {"KNOWLEDGE_CHUNK_CHARS": 1},
            "knowledge": ["Any text: the splitting setting is refused."],
        }
    )
    done = load_character_dict({"name": f"Done-{uuid.uuid4().hex[:8]}"})
    good_id, bad_id, done_id = await orchestrator.add_agents([good, bad, done])

    report = await prepare_agents(orchestrator, skip={done_id})
    assert report.prepared == [good_id] and report.failed == [bad.name] and report.agents == 1
    assert await orchestrator.runtime(done_id).get_tasks(tags=["retention"]) == []  # skipped: not touched
