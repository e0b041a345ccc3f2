from __future__ import annotations

import json

from core.knowledge.character import ingest_character_knowledge
from core.knowledge.documents import get_document, is_shared, list_documents
from core.knowledge.importer import Rejected
from tests.data import CHARACTERS

TRUMP = CHARACTERS / "trump.character.json"


def trump() -> dict:
    return json.loads(TRUMP.read_text())


async def _documents(runtime):
    return [d for d in (await list_documents(runtime, limit=1000)).memories if not is_shared(d)]


async def test_string_knowledge_becomes_one_document_each_once(make_runtime, run_worker, scripted):
    runtime = await make_runtime(character=trump())
    summary = await ingest_character_knowledge(runtime)
    assert (summary.added, summary.unchanged, summary.rejected) == (20, 0, [])
    assert summary.queued == 20  # each entry is short: one fragment
    assert len((await run_worker()).outcomes) == 20
    documents = await _documents(runtime)
    assert {d.metadata.source for d in documents} == {f"{runtime.character.name}'s character"}
    assert {d.metadata.model_extra["origin"] for d in documents} == {"character"}

    calls = len(scripted.calls)
    again = await ingest_character_knowledge(runtime)
    assert (again.added, again.unchanged, again.queued, again.removed) == (0, 20, 0, 0)
    assert (await run_worker()).outcomes == {} and len(scripted.calls) == calls


async def test_an_edited_entry_replaces_its_document(make_runtime):
    runtime = await make_runtime(character={"knowledge": ["The sky is blue.", "Grass is green."]})
    await ingest_character_knowledge(runtime)
    runtime.character.knowledge[1] = "Grass is green after rain."
    summary = await ingest_character_knowledge(runtime)
    assert (summary.added, summary.unchanged, summary.removed) == (1, 1, 1)
    assert sorted(d.metadata.model_extra["size"] for d in await _documents(runtime)) == [16, 26]


async def test_file_and_directory_entries(make_runtime, tmp_path):
    (tmp_path / "facts.md").write_text("The office opens at nine.")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "leave.txt").write_text("Staff get 25 days of leave.")
    (tmp_path / "policies" / "photo.png").write_bytes(b"\x89PNG")
    character = {
        "knowledge": [
            {"path": "facts.md"},
            {"path": "missing.md"},
            {"directory": "policies"},
            "",
            {"path": str(tmp_path / "facts.md"), "shared": True},
        ]
    }
    runtime = await make_runtime({"KNOWLEDGE_PATH": str(tmp_path)}, character=character)
    summary = await ingest_character_knowledge(runtime)
    try:
        assert (summary.added, summary.unchanged) == (3, 0)
        assert summary.rejected == [
            Rejected("knowledge[1] missing.md", f"file not found: {tmp_path / 'missing.md'}"),
            Rejected("policies/photo.png", "unsupported file type '.png'"),
            Rejected("knowledge[3]", "empty document"),
        ]
        names = {d.metadata.model_extra["title"] for d in await _documents(runtime)}
        assert names == {"facts.md", "policies/leave.txt"}
        other = await make_runtime()
        shared = [
            d
            for d in (await list_documents(other, limit=1000)).memories
            if d.metadata.model_extra["title"] == str(tmp_path / "facts.md")
        ]
        assert len(shared) == 1 and (await get_document(other, shared[0].id)).text == "The office opens at nine."

        # The file changes and one entry goes away: replaced, removed; the missing file stays rejected.
        (tmp_path / "facts.md").write_text("The office opens at ten.")
        runtime.character.knowledge.pop(2)
        again = await ingest_character_knowledge(runtime)
        assert (again.added, again.replaced, again.unchanged, again.removed) == (0, 2, 0, 1)
        assert {d.metadata.model_extra["title"] for d in await _documents(runtime)} == {"facts.md"}
    finally:
        for document in shared:
            await runtime.adapter.delete_knowledge_document([document.agent_id], document.id)


async def test_a_character_without_knowledge_stores_nothing(make_runtime, run_worker):
    runtime = await make_runtime()
    summary = await ingest_character_knowledge(runtime)
    assert (summary.added, summary.queued, summary.removed, summary.rejected) == (0, 0, 0, [])
    assert await _documents(runtime) == [] and (await run_worker()).outcomes == {}
