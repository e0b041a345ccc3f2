"""The example plugin of docs/plugins.md, extracted from the page and run through the pipeline."""

from __future__ import annotations

import re
import sys
import types
import uuid
from pathlib import Path

import pytest

from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.model_providers.scripted import ScriptedModels
from core.orchestrator import AgentSpec, IncomingMessage, Orchestrator
from core.plugin import RouteRequest
from core.settings import Settings
from core.types import ModelType, Task

GUIDE = Path(__file__).parents[2] / "docs" / "plugins.md"


@pytest.fixture(scope="module")
def notes():
    """The first python block of the guide, imported as a module."""
    code = re.search(r"```python\n(.*?)```", GUIDE.read_text(), re.DOTALL).group(1)
    module = types.ModuleType("guide_notes")
    sys.modules["guide_notes"] = module
    exec(compile(code, str(GUIDE), "exec"), module.__dict__)
    yield module
    del sys.modules["guide_notes"]


@pytest.fixture
async def setup(database_url, notes):
    pool = create_pool(Settings(database_url=database_url))
    await pool.open()
    scripted = ScriptedModels()
    orchestrator = Orchestrator(PostgresAdapter(pool), plugins=[bootstrap, scripted.plugin()])
    character = load_character_dict({"name": f"Notes-{uuid.uuid4().hex[:8]}", "bio": ["keeps notes"]})
    [agent_id] = await orchestrator.add_agents([AgentSpec(character, plugins=[notes.plugin])], auto_start=True)
    try:
        yield orchestrator, scripted, agent_id
    finally:
        await pool.close()


async def test_the_example_plugin_works_end_to_end(setup, notes):
    orchestrator, scripted, agent_id = setup
    scripted.script(
        ModelType.TEXT_LARGE,
        "<response><actions>TAKE_NOTE</actions><text></text></response>",
        "<response><actions>REPLY</actions><text>You asked me to buy milk.</text></response>",
    )
    first = await orchestrator.handle_message(agent_id, IncomingMessage(text="note: buy milk"))
    assert first.mode == "actions" and [r.text for r in first.responses] == ["Noted: buy milk"]
    runtime = orchestrator.runtime(agent_id)
    assert runtime.get_service("note_counter").count == 1  # the evaluator saw the action's result

    await orchestrator.handle_message(agent_id, IncomingMessage(text="what did I say?", room_id=None))
    prompt = scripted.calls[-1][1]["prompt"]
    assert "# Notes in this room" in prompt and "- buy milk" in prompt

    route = runtime.blueprint.routes[("notes", "POST", "/list")]
    body = route.body_model.model_validate({"roomId": str(first.room_id)})
    listed = await route.handler(runtime, RouteRequest(method="POST", path="/list", body=body))
    assert listed == {"notes": ["buy milk"]}

    scripted.script(ModelType.TEXT_SMALL, "One note: buy milk.")
    worker = runtime.get_task_worker("NOTES_DIGEST")
    task = Task(agent_id=agent_id, name="NOTES_DIGEST", room_id=first.room_id)
    await worker.execute(runtime, {}, task)
    digests = await runtime.get_memories(first.room_id, "documents", 5)
    assert [d.text for d in digests] == ["One note: buy milk."]


async def test_take_note_refuses_an_empty_note(setup, notes):
    orchestrator, scripted, agent_id = setup
    scripted.script(ModelType.TEXT_LARGE, "<response><actions>TAKE_NOTE</actions><text></text></response>")
    result = await orchestrator.handle_message(agent_id, IncomingMessage(text="note:"))
    assert not result.did_respond
    runtime = orchestrator.runtime(agent_id)
    [stored] = await runtime.get_memories(result.room_id, "action_results", 5)
    assert stored.text == "nothing to note"
