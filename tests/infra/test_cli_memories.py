"""``agent memories search AGENT QUERY``: embedded with the configured model, searched in pgvector."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from core.db.adapter import AgentRecord, EmbeddingRow
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.errors import ModelError
from core.model_providers.scripted import models as scripted_models
from core.plugin import ModelRegistration, Plugin
from core.settings import Settings
from core.types import Content, Entity, Memory, ModelType, Room
from infra.cli import main

TEXTS = {
    "messages": [
        "the best pizza toppings are mushrooms and olives",
        "my cat sleeps all day long",
        "deploy the stack with sam deploy",
    ],
    "facts": ["alice prefers pizza with pineapple"],
}


async def _failing_embed(runtime: Any, params: Mapping[str, Any]) -> Any:
    raise ModelError("embedding endpoint returned 503", provider="flaky", retryable=True)


#: ``MODEL_PLUGINS=tests.infra.test_cli_memories:failing_plugin``: an embedding model that is down.
failing_plugin = Plugin(name="flaky", models=(ModelRegistration(ModelType.TEXT_EMBEDDING, _failing_embed, 0),))


@pytest.fixture
async def agent(database_url, monkeypatch):
    """An agent with memories in two rooms and two tables, embedded by the scripted model."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MODEL_PLUGINS", "core.model_providers.scripted")
    monkeypatch.delenv("EMBEDDING_DIMENSION", raising=False)
    pool = create_pool(Settings(database_url=database_url))
    await pool.open()
    try:
        adapter = PostgresAdapter(pool)
        agent_id, user = uuid.uuid4(), uuid.uuid4()
        name = f"Memo-{agent_id}"
        await adapter.upsert_agents([AgentRecord(agent_id, name, {"name": name})])
        rooms = [uuid.uuid4(), uuid.uuid4()]
        for room in rooms:
            await adapter.ensure_connection(
                Entity(id=user, agent_id=agent_id, names=["alice"]), Room(id=room, agent_id=agent_id), None
            )
        stored: dict[str, Memory] = {}
        for table, texts in TEXTS.items():
            memories = [
                Memory(
                    entity_id=user,
                    agent_id=agent_id,
                    room_id=rooms[i % 2],
                    content=Content(text=t),
                    created_at=1_700_000_000_000 + i,
                )
                for i, t in enumerate(texts)
            ]
            await adapter.create_memories(memories, table)
            stored.update({m.text: m for m in memories})
        await adapter.upsert_embeddings(
            [
                EmbeddingRow(m.id, agent_id, m.content_hash, "scripted", scripted_models.vector(m.text))
                for m in stored.values()
            ]
        )
        yield name, agent_id, rooms, stored
    finally:
        await pool.close()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_table_of_the_nearest_memories(agent):
    name, _, rooms, stored = agent
    status, out, err = run("memories", "search", name.upper(), "pizza toppings")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["SIMILARITY", "CREATED", "(UTC)", "ROOM", "TEXT"]
    assert lines[1].endswith("the best pizza toppings are mushrooms and olives")
    assert "2023-11-14 22:13:20" in lines[1] and str(rooms[0]) in lines[1]
    assert float(lines[1].split()[0]) > 0.4
    assert not any("pineapple" in line for line in lines)  # a fact: not in the messages table


def test_json_lines_best_first_with_similarity(agent):
    name, agent_id, _, stored = agent
    status, out, _ = run("memories", "search", str(agent_id), "pizza toppings", "--json", "--threshold", "-1")
    found = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and len(found) == 3
    assert found[0]["id"] == str(stored[TEXTS["messages"][0]].id)
    assert found[0]["content"]["text"] == TEXTS["messages"][0] and found[0]["agentId"] == str(agent_id)
    similarities = [m["similarity"] for m in found]
    assert similarities == sorted(similarities, reverse=True) and "embedding" not in found[0]


def test_filters(agent):
    name, _, rooms, _ = agent
    _, out, _ = run("memories", "search", name, "pizza", "--table", "facts", "--json")
    assert [json.loads(line)["content"]["text"] for line in out.splitlines()] == TEXTS["facts"]
    _, out, _ = run("memories", "search", name, "pizza", "--room-id", str(rooms[1]), "--threshold", "-1", "--json")
    assert {json.loads(line)["roomId"] for line in out.splitlines()} == {str(rooms[1])}
    _, out, _ = run("memories", "search", name, "cat sleeps", "--count", "1", "--threshold", "-1", "--json")
    [only] = [json.loads(line) for line in out.splitlines()]
    assert only["content"]["text"] == "my cat sleeps all day long"
    exact = TEXTS["messages"][2]
    _, out, _ = run("memories", "search", name, exact, "--threshold", "0.99", "--json")
    assert [json.loads(line)["content"]["text"] for line in out.splitlines()] == [exact]


def test_nothing_found(agent):
    name, *_ = agent
    status, out, _ = run("memories", "search", name, "quantum chromodynamics", "--threshold", "0.9")
    assert status == 0 and out.split() == ["SIMILARITY", "CREATED", "(UTC)", "ROOM", "TEXT"]
    assert run("memories", "search", name, "quantum chromodynamics", "--threshold", "0.9", "--json") == (0, "", "")


def test_the_query_is_embedded_with_the_configured_model(agent):
    name, *_ = agent
    scripted_models.reset()
    run("memories", "search", name, "olives")
    assert scripted_models.calls == [(ModelType.TEXT_EMBEDDING, {"text": "olives"})]


def test_unknown_agent(agent):
    status, out, err = run("memories", "search", "nobody-at-all", "pizza")
    assert (status, out) == (1, "") and err == "error: no agent 'nobody-at-all' (see `agent agents list`)\n"


def test_an_empty_query(agent):
    name, *_ = agent
    status, out, err = run("memories", "search", name, "   ")
    assert (status, out) == (2, "") and err == "error: QUERY is empty\n"


def test_no_embedding_model(agent, monkeypatch):
    name, *_ = agent
    monkeypatch.setenv("MODEL_PLUGINS", "core.bootstrap")  # a plugin that serves no model
    status, out, err = run("memories", "search", name, "pizza")
    assert (status, out) == (1, "") and err == "error: no model plugin serves TEXT_EMBEDDING\n"


def test_the_embedding_model_fails(agent, monkeypatch):
    name, *_ = agent
    monkeypatch.setenv("MODEL_PLUGINS", f"{__name__}:failing_plugin")
    status, out, err = run("memories", "search", name, "pizza")
    assert (status, out) == (1, "") and err == "error: the embedding model failed: embedding endpoint returned 503\n"


def test_a_model_of_another_dimension(agent, monkeypatch):
    name, *_ = agent
    monkeypatch.setenv("EMBEDDING_DIMENSION", "768")  # the scripted model makes 384-d vectors
    status, out, err = run("memories", "search", name, "pizza")
    assert (status, out) == (1, "") and err.startswith("error: ") and "768" in err and "384" in err
    assert "EMBEDDING_DIMENSION" in err


def test_the_help_names_the_real_tables_and_not_fragments():
    status, out, _ = run("memories", "search", "--help")
    text = " ".join(out.split())  # argparse wraps the help
    assert status == 0 and "messages, facts, knowledge, summaries" in text and "fragments," not in text


def test_a_table_outside_the_list_is_refused_with_the_list():
    status, out, err = run("memories", "search", "eliza", "pizza", "--table", "fragments")
    assert (status, out) == (2, "")
    assert "unknown table 'fragments'; one of messages, facts, knowledge, summaries" in err
    assert "searched in table 'knowledge'" in err


def test_every_listed_table_is_the_name_its_writer_uses_and_is_embedded():
    from core.db.postgres.embeddings import NEVER_EMBEDDED
    from core.knowledge import FRAGMENTS_TABLE
    from core.memory.retention import SUMMARY_TABLE
    from core.types.fact import FACTS_TABLE
    from infra.cli.memories import SEARCHABLE_TABLES

    assert SEARCHABLE_TABLES == ("messages", FACTS_TABLE, FRAGMENTS_TABLE, SUMMARY_TABLE)
    assert not set(SEARCHABLE_TABLES) & set(NEVER_EMBEDDED)


def test_the_knowledge_table_finds_a_fragment(agent, database_url):
    name, agent_id, rooms, _ = agent
    fragment = Memory(
        entity_id=agent_id,
        agent_id=agent_id,
        room_id=rooms[0],
        content=Content(text="olives grow on trees in the mediterranean"),
    )
    asyncio.run(_store_embedded(database_url, fragment, "knowledge"))
    status, out, err = run("memories", "search", name, "olives trees", "--table", "knowledge", "--json")
    assert (status, err) == (0, "")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [str(fragment.id)]


async def _store_embedded(database_url: str, memory: Memory, table: str) -> None:
    pool = create_pool(Settings(database_url=database_url))
    await pool.open()
    try:
        adapter = PostgresAdapter(pool)
        await adapter.create_memories([memory], table)
        await adapter.upsert_embeddings(
            [
                EmbeddingRow(
                    memory.id, memory.agent_id, memory.content_hash, "scripted", scripted_models.vector(memory.text)
                )
            ]
        )
    finally:
        await pool.close()
