from __future__ import annotations

import uuid

from core.knowledge.documents import add_document, delete_document
from core.knowledge.provider import KNOWLEDGE, format_knowledge, knowledge_plugin
from core.settings.knowledge import MAX_MATCH_COUNT
from core.types import Content, Memory, ModelType, State


def _message(runtime, text: str | None) -> Memory:
    return Memory(agent_id=runtime.agent_id, room_id=uuid.uuid4(), entity_id=uuid.uuid4(), content=Content(text=text))


async def _ask(runtime, text):
    return await KNOWLEDGE.get(runtime, _message(runtime, text), State())


async def test_the_most_similar_fragments_come_first_with_their_source(make_runtime, run_worker):
    runtime = await make_runtime(
        {"KNOWLEDGE_CHUNK_CHARS": 60, "KNOWLEDGE_CHUNK_OVERLAP_CHARS": 0, "KNOWLEDGE_MATCH_THRESHOLD": 0.2}
    )
    await add_document(
        runtime,
        "Zebras have black and white stripes.\n\nPenguins cannot fly but swim fast.\n\nOwls hunt at night in silence.",
        name="animals.md",
    )
    await run_worker()
    result = await _ask(runtime, "why do penguins swim so fast?")
    fragments = result.data["knowledge"]
    assert [f.text for f in fragments] == ["Penguins cannot fly but swim fast."]  # the others are below 0.2
    assert fragments[0].similarity >= 0.2
    assert result.text == "# Knowledge\n[1] (source: animals.md) Penguins cannot fly but swim fast."
    assert result.values == {"knowledge": result.text}


async def test_count_and_threshold_settings(make_runtime, run_worker):
    texts = [f"Fact {i} about the red planet Mars." for i in range(6)]
    many = await make_runtime({"KNOWLEDGE_MATCH_COUNT": 2, "KNOWLEDGE_MATCH_THRESHOLD": -1})
    strict = await make_runtime({"KNOWLEDGE_MATCH_THRESHOLD": 0.99})
    for runtime in (many, strict):
        for text in texts:
            await add_document(runtime, text)
    await run_worker()
    assert len((await _ask(many, "red planet Mars")).data["knowledge"]) == 2
    empty = await _ask(strict, "a question about something else entirely")
    assert (empty.text, empty.data["knowledge"]) == ("", [])


async def test_shared_knowledge_is_found_by_every_agent_private_only_by_its_own(
    make_runtime, run_worker, adapter, monkeypatch
):
    # Every shared document of the session's database is a candidate too: enough room in the answer
    # that those whose hashed words happen to collide with the query's never crowd these two out.
    settings = {"KNOWLEDGE_MATCH_THRESHOLD": 0.1, "KNOWLEDGE_MATCH_COUNT": MAX_MATCH_COUNT}
    # Which fragments an agent may see is checked here, not the index's recall (bench/vector_search.py):
    # the shared partition holds every test's shared fragments, and bag-of-words vectors are mostly
    # orthogonal to the query, all at the same distance, where a scan of 64 HNSW candidates can miss
    # the nearest. The widest scan pgvector allows takes in the whole partition.
    monkeypatch.setattr(adapter, "hnsw_ef_search", 1000)
    alice, bob = await make_runtime(settings), await make_runtime(settings)
    word = f"quokka{uuid.uuid4().hex[:8]}"  # nothing else in the session's database says it
    private = await add_document(alice, f"The {word} lives on Rottnest island.", name="private.txt")
    shared = await add_document(alice, f"Every {word} smiles for photos.", name="shared.txt", shared=True)
    try:
        await run_worker()
        alice_sees = {f.metadata.model_extra["documentId"] for f in (await _ask(alice, word)).data["knowledge"]}
        bob_sees = {f.metadata.model_extra["documentId"] for f in (await _ask(bob, word)).data["knowledge"]}
        assert alice_sees >= {str(private.document_id), str(shared.document_id)}
        assert str(shared.document_id) in bob_sees and str(private.document_id) not in bob_sees
    finally:
        await delete_document(alice, shared.document_id)


async def test_fragments_without_vectors_are_not_found_yet(make_runtime, run_worker):
    runtime = await make_runtime({"KNOWLEDGE_MATCH_THRESHOLD": -1})
    await add_document(runtime, "Volcanoes erupt lava.")
    assert (await _ask(runtime, "volcanoes")).data["knowledge"] == []
    await run_worker()
    assert [f.text for f in (await _ask(runtime, "volcanoes")).data["knowledge"]] == ["Volcanoes erupt lava."]


async def test_a_message_without_text_costs_nothing(make_runtime, scripted):
    runtime = await make_runtime()
    for text in (None, "", "   "):
        result = await _ask(runtime, text)
        assert (result.text, result.data["knowledge"]) == ("", [])
    assert [c for c in scripted.calls if c[0] is ModelType.TEXT_EMBEDDING] == []


async def test_the_provider_runs_in_every_state_and_is_placed_before_the_conversation(make_runtime, run_worker):
    runtime = await make_runtime({"KNOWLEDGE_MATCH_THRESHOLD": 0.1})
    await add_document(runtime, "Our shop closes at six on Sundays.", name="hours.txt")
    await run_worker()
    state = await runtime.compose_state(_message(runtime, "when does the shop close on sunday"))
    assert "[1] (source: hours.txt) Our shop closes at six on Sundays." in state.text
    assert not KNOWLEDGE.dynamic and knowledge_plugin.providers == (KNOWLEDGE,)
    positions = {p.name: p.position for p in runtime.blueprint.providers.values()}
    assert positions["CHARACTER"] < positions["KNOWLEDGE"] < positions["RECENT_MESSAGES"]


def test_format_names_each_source_and_falls_back():
    fragment = Memory(agent_id=uuid.uuid4(), room_id=uuid.uuid4(), entity_id=uuid.uuid4(), content=Content(text="x"))
    assert format_knowledge([]) == ""
    assert format_knowledge([fragment]) == "# Knowledge\n[1] (source: knowledge) x"
