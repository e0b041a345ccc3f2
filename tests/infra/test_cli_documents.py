"""``agent documents import|list|show|delete|sync`` against a real database, with real files.

Each test has its own agent (a unique name) stored in the session's database; the import
limit ``KNOWLEDGE_MAX_DOCUMENT_BYTES`` comes from the stored character's settings, as the
runtime reads it. Embeddings are queued on moto's real SQS server when queue URLs are set.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.embeddings.request import EmbeddingRequest
from core.knowledge import SHARED_KNOWLEDGE_ID
from core.uuid import string_to_uuid
from infra.cli import main
from infra.cli.common import Io
from infra.cli.documents import NO_QUEUE_NOTE, FileProgress
from infra.cli.progress import Progress

#: The stored agent's import limit, bytes.
LIMIT = 1000
NOTES = " ".join(f"Sentence {i} says that the office fern needs water on day {i} of the month." for i in range(10))
PLAIN = "Plain notes about the office plants."
DEEP = "# Deep\n\nThe kettle is in the second cupboard."
REJECTED = [
    "  bad.txt: not UTF-8 text (byte 3)",
    f"  big.txt: too large: 2000 bytes; the limit is {LIMIT} (KNOWLEDGE_MAX_DOCUMENT_BYTES)",
    "  empty.txt: empty document",
    "  scan.pdf: unsupported file type '.pdf'",
]


@pytest.fixture
def db(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MODEL_PLUGINS", "core.model_providers.scripted")  # never called: documents need no model
    for priority in ("HIGH", "NORMAL", "LOW"):  # no queues unless a test sets them
        monkeypatch.delenv(f"EMBEDDINGS_{priority}_QUEUE_URL", raising=False)
    for name in ("KNOWLEDGE_MAX_DOCUMENT_BYTES", "KNOWLEDGE_PATH", "CHARACTERS"):
        monkeypatch.delenv(name, raising=False)
    return database_url


def store_agent(database_url: str, **character: Any) -> tuple[str, uuid.UUID]:
    agent_id, name = uuid.uuid4(), f"Docs-{uuid.uuid4().hex[:12]}"
    document = {
        "name": name,
        "bio": ["Keeps documents."],
        "settings": {"KNOWLEDGE_MAX_DOCUMENT_BYTES": LIMIT},
        **character,
    }
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agents (id, name, character) VALUES (%s, %s, %s)",
            (agent_id, name, json.dumps({**document, "name": name})),
        )
    return name, agent_id


@pytest.fixture
def agent(db) -> tuple[str, uuid.UUID]:
    return store_agent(db)


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "kb"
    (root / "sub").mkdir(parents=True)
    (root / "notes.md").write_text(NOTES)
    (root / "plain.txt").write_text(PLAIN)
    (root / "sub" / "deep.md").write_text(DEEP)
    (root / "empty.txt").write_text("")
    (root / "bad.txt").write_bytes(b"caf\xe9 au lait")  # Latin-1, not UTF-8
    (root / "big.txt").write_text("x" * 2000)
    (root / "scan.pdf").write_bytes(b"%PDF-1.4")
    (root / ".hidden.md").write_text("never imported")
    return root


def run(*argv: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([str(a) for a in argv], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def stored(database_url: str, agent_id: uuid.UUID) -> dict[str, int]:
    """The agent's documents in the database: name -> fragment count (counted in the knowledge table)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT d.metadata->>'title', (SELECT count(*) FROM memories f WHERE f.agent_id = d.agent_id"
            " AND f.type = 'knowledge' AND f.metadata->>'documentId' = d.id::text)"
            " FROM memories d WHERE d.agent_id = %s AND d.type = 'documents'",
            (agent_id,),
        ).fetchall()
    return dict(rows)


def figures(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if not line.startswith(" ") and ": " in line)


# -- import ----------------------------------------------------------------------------------


def test_import_reports_every_outcome_with_reasons_and_a_progress_bar(db, agent, folder):
    name, agent_id = agent
    status, out, err = run("documents", "import", name.upper(), folder)  # the agent by name, any case
    assert status == 1  # some files were rejected
    documents = stored(db, agent_id)
    assert set(documents) == {"notes.md", "plain.txt", "sub/deep.md"}  # hidden files are skipped
    fragments = sum(documents.values())
    assert documents["notes.md"] > 1 and fragments >= 5
    assert figures(out) == {
        "added": "3",
        "unchanged": "0",
        "replaced": "0",
        "rejected": "4",
        "fragments stored": str(fragments),
        "embeddings queued": "0",
        "embeddings": NO_QUEUE_NOTE.split(": ", 1)[1],
    }
    assert [line for line in out.splitlines() if line.startswith("  ")] == REJECTED
    assert out.splitlines()[-1] == NO_QUEUE_NOTE
    lines = err.splitlines()  # not a terminal: plain lines, the last one final
    assert lines[0].startswith("importing  0/7  0%") and lines[-1].startswith("importing  7/7  100%")
    assert lines[-1].endswith("  done") and "files/s" in lines[-1]


def test_importing_again_reports_unchanged_then_an_edited_file_replaced(db, agent, folder):
    name, agent_id = agent
    assert run("documents", "import", name, folder)[0] == 1
    before = stored(db, agent_id)

    status, out, _ = run("documents", "import", name, folder)
    assert status == 1 and figures(out) == {
        "added": "0",
        "unchanged": "3",
        "replaced": "0",
        "rejected": "4",
        "fragments stored": "0",
        "embeddings queued": "0",
    }
    assert NO_QUEUE_NOTE not in out  # nothing new waits for an embedding

    (folder / "plain.txt").write_text("Plain notes: the fern needs water on Mondays.")
    (folder / "big.txt").unlink()
    status, out, _ = run("documents", "import", name, folder, "--json")
    summary = json.loads(out)
    assert status == 1 and (summary["added"], summary["unchanged"], summary["replaced"]) == (0, 2, 1)
    assert summary["fragments"] == 1 and summary["queued"] == 0 and summary["embeddingQueue"] is False
    assert [r["path"] for r in summary["rejected"]] == ["bad.txt", "empty.txt", "scan.pdf"]
    assert stored(db, agent_id) == before  # same documents, plain.txt's one fragment replaced
    _, shown, _ = run("documents", "show", name, "plain.txt", "--fragments", "--json")
    assert [f["text"] for f in json.loads(shown)["fragments"]] == ["Plain notes: the fern needs water on Mondays."]


def test_a_clean_import_exits_0_with_a_json_summary(db, agent, tmp_path):
    name, agent_id = agent
    (tmp_path / "one.md").write_text(DEEP)
    (tmp_path / "two.txt").write_text(PLAIN)
    status, out, err = run("documents", "import", str(agent_id), tmp_path, "--json")
    assert status == 0, err
    summary = json.loads(out)
    assert summary == {
        "agentId": str(agent_id),
        "agent": name,
        "folder": str(tmp_path),
        "shared": False,
        "added": 2,
        "unchanged": 0,
        "replaced": 0,
        "rejected": [],
        "fragments": 2,
        "queued": 0,
        "removed": 0,
        "embeddingQueue": False,
    }
    assert err.splitlines()[-1].startswith("importing  2/2  100%")


def test_an_empty_folder_imports_nothing(db, agent, tmp_path):
    status, out, err = run("documents", "import", agent[0], tmp_path)
    assert status == 0 and figures(out)["added"] == "0" and NO_QUEUE_NOTE not in out
    assert err.splitlines()[-1].startswith("importing  0/0")


def test_a_missing_folder_or_a_file_is_refused_before_the_database(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")  # never reached
    missing = tmp_path / "nope"
    assert run("documents", "import", "anyone", missing) == (1, "", f"error: {missing}: no such folder\n")
    file = tmp_path / "notes.md"
    file.write_text(PLAIN)
    assert run("documents", "import", "anyone", file) == (1, "", f"error: {file}: not a folder\n")


def test_import_for_an_unknown_agent(db, folder):
    status, out, err = run("documents", "import", "nobody-at-all", folder)
    assert (status, out) == (1, "") and err == "error: no agent 'nobody-at-all' (see `agent agents list`)\n"


def test_an_agent_whose_stored_character_is_invalid(db, folder):
    name, _ = store_agent(db, bio=5)
    status, out, err = run("documents", "import", name, folder)
    assert (status, out) == (1, "") and err.startswith("error: the stored character is invalid:")
    assert "bio" in err and err.count("\n") == 1


def test_import_queues_every_new_fragment_at_low_priority(db, agent, folder, sqs, moto, monkeypatch):
    name, agent_id = agent
    urls = {
        p: sqs.create_queue(QueueName=f"docs-{p}-{uuid.uuid4().hex[:8]}")["QueueUrl"] for p in ("high", "normal", "low")
    }
    for priority, url in urls.items():
        monkeypatch.setenv(f"EMBEDDINGS_{priority.upper()}_QUEUE_URL", url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)  # the container's boto3 client

    status, out, err = run("documents", "import", name, folder)
    assert status == 1
    fragments = sum(stored(db, agent_id).values())
    assert figures(out)["embeddings queued"] == figures(out)["fragments stored"] == str(fragments)
    assert NO_QUEUE_NOTE not in out and "EMBEDDINGS_" not in err  # no "stay pending" warning either

    requests = drain(sqs, urls["low"])
    assert drain(sqs, urls["high"]) == drain(sqs, urls["normal"]) == []
    ids = set()
    for document in ("notes.md", "plain.txt", "sub/deep.md"):
        shown = json.loads(run("documents", "show", name, document, "--fragments", "--json")[1])
        ids |= {uuid.UUID(f["id"]) for f in shown["fragments"]}
    assert {r.memory_id for r in requests} == ids and len(requests) == fragments
    assert {r.agent_id for r in requests} == {agent_id} and {r.priority for r in requests} == {"low"}

    status, out, _ = run("documents", "import", name, folder)  # unchanged, but not embedded yet: queued again
    assert figures(out)["embeddings queued"] == str(fragments) and figures(out)["unchanged"] == "3"


def drain(client: Any, url: str) -> list[EmbeddingRequest]:
    requests = []
    while got := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in got:
            requests.append(EmbeddingRequest.model_validate(json.loads(message["Body"])))
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return requests


def test_a_shared_import_is_seen_and_deleted_by_every_agent(db, agent, tmp_path):
    name, _ = agent
    other, _ = store_agent(db)
    file_name = f"shared-{uuid.uuid4().hex}.md"
    (tmp_path / file_name).write_text(DEEP)
    status, out, _ = run("documents", "import", name, tmp_path, "--shared", "--json")
    assert status == 0 and json.loads(out)["shared"] is True and json.loads(out)["added"] == 1

    listed = [json.loads(line) for line in run("documents", "list", other, "--json")[1].splitlines()]
    [document] = [d for d in listed if d["name"] == file_name]
    assert document["shared"] is True
    with psycopg.connect(db) as conn:  # stored once, owned by the shared owner
        owner = conn.execute("SELECT agent_id FROM memories WHERE id = %s", (document["id"],)).fetchone()[0]
    assert owner == SHARED_KNOWLEDGE_ID

    status, out, _ = run("documents", "delete", other, file_name)  # by name: the shared one
    assert (status, out) == (0, f"deleted document {file_name} ({document['id']}) (shared: gone for every agent)\n")
    assert run("documents", "show", name, document["id"])[0] == 1


def test_interrupting_an_import_closes_the_bar_and_exits_130(db, agent, folder, monkeypatch):
    real_advance = Progress.advance

    def advance(self: Progress, n: int = 1) -> None:
        real_advance(self, n)
        if self.done == 4:  # bad.txt, big.txt, empty.txt rejected, notes.md stored
            raise KeyboardInterrupt  # as Ctrl-C between two files

    monkeypatch.setattr(Progress, "advance", advance)
    status, out, err = run("documents", "import", agent[0], folder)
    assert (status, out) == (130, "")
    assert err.splitlines()[-2].startswith("importing  4/7") and err.splitlines()[-2].endswith("interrupted")
    assert set(stored(db, agent[1])) == {"notes.md"}  # what was done is kept; a re-import goes on


def test_file_progress_draws_a_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    with FileProgress(Io(out=io.StringIO(), err=err, stdin=io.StringIO())) as progress:
        for done in range(4):
            progress(done, 3)
    assert progress.bar is not None and progress.bar.done == 3
    assert err.getvalue().startswith("\r[") and "3/3" in err.getvalue() and err.getvalue().endswith("done\n")


def test_help_says_a_rejected_file_exits_1():
    status, out, _ = run("documents", "import", "--help")
    assert status == 0 and "1 some file was rejected" in " ".join(out.split())
    status, out, _ = run("knowledge", "sync", "--help")
    assert status == 0 and "configured characters" in " ".join(out.split())


# -- list, show, delete ----------------------------------------------------------------------


def test_list_show_and_delete(db, agent, folder):
    name, agent_id = agent
    run("knowledge", "import", name, folder)  # `knowledge` is the group's other name
    status, out, _ = run("documents", "list", name)
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == [
        "ID",
        "NAME",
        "SCOPE",
        "BYTES",
        "FRAGMENTS",
        "ORIGIN",
        "CREATED",
        "(UTC)",
    ]
    deep = next(line.split() for line in lines if " sub/deep.md " in line)
    assert deep[2:6] == ["private", str(len(DEEP)), "1", "import"]

    listed = {
        d["name"]: d
        for d in (json.loads(line) for line in run("documents", "list", name, "--json")[1].splitlines())
        if not d["shared"]
    }
    assert set(listed) == {"notes.md", "plain.txt", "sub/deep.md"}
    assert listed["notes.md"]["contentType"] == "text/markdown" and "text" not in listed["notes.md"]
    doc_id = listed["notes.md"]["id"]

    status, out, _ = run("documents", "show", name, doc_id)
    fields = dict(line.split(":", 1) for line in out.split("\n\n", 1)[0].splitlines())
    assert status == 0 and fields["name"].strip() == "notes.md" and fields["scope"].strip() == "private"
    assert fields["fragments"].strip() == str(listed["notes.md"]["fragmentCount"])
    assert out.split("\n\n", 1)[1] == NOTES + "\n"

    status, out, _ = run("documents", "show", name, "notes.md", "--fragments")
    parts = out.split("\n--- fragment ")[1:]
    assert status == 0 and len(parts) == listed["notes.md"]["fragmentCount"]
    assert parts[0].startswith("0 (") and "Sentence 0 says" in parts[0]

    shown = json.loads(run("documents", "show", name, doc_id, "--json", "--fragments")[1])
    assert shown["text"] == NOTES and [f["position"] for f in shown["fragments"]] == list(
        range(listed["notes.md"]["fragmentCount"])
    )

    assert run("documents", "delete", name, doc_id) == (0, f"deleted document notes.md ({doc_id})\n", "")
    assert set(stored(db, agent_id)) == {"plain.txt", "sub/deep.md"}
    with psycopg.connect(db) as conn:  # its fragments went with it
        assert (
            conn.execute("SELECT count(*) FROM memories WHERE metadata->>'documentId' = %s", (doc_id,)).fetchone()[0]
            == 0
        )
    status, out, err = run("documents", "delete", name, doc_id)
    assert (status, out) == (1, "")
    assert err == f"error: no document {doc_id!r} for agent {name} (see `agent documents list {name}`)\n"


def test_another_agents_private_document_is_not_found(db, agent, folder):
    name, _ = agent
    other, other_id = store_agent(db)
    run("documents", "import", other, folder)
    other_doc = next(
        d
        for d in map(json.loads, run("documents", "list", other, "--json")[1].splitlines())
        if d["name"] == "plain.txt"
    )
    for verb in ("show", "delete"):
        status, _, err = run("documents", verb, name, other_doc["id"])
        assert status == 1 and err.startswith(f"error: no document {other_doc['id']!r} for agent {name}")
    assert "plain.txt" in stored(db, other_id)
    assert run("documents", "show", name, "no-such-name.md")[0] == 1
    assert run("documents", "list", "nobody-at-all")[0] == 1


def test_list_of_an_agent_without_documents(db, agent):
    status, out, _ = run("documents", "list", agent[0], "--json")
    assert status == 0 and all(json.loads(line)["shared"] for line in out.splitlines())  # only shared ones


# -- sync ------------------------------------------------------------------------------------


@pytest.fixture
def configured(db, tmp_path, monkeypatch) -> tuple[str, Path]:
    """A configured character whose knowledge is a string, a file, a missing file and a folder."""
    name = f"Sync-{uuid.uuid4().hex[:12]}"
    (tmp_path / "facts.md").write_text("The office opens at nine.")
    (tmp_path / "guides").mkdir()
    (tmp_path / "guides" / "setup.md").write_text(DEEP)
    character = {
        "name": name,
        "bio": ["Knows things."],
        "knowledge": [
            "The password policy asks for 12 characters.",
            {"path": "facts.md"},
            {"path": "later.md"},
            {"directory": "guides"},
        ],
    }
    path = tmp_path / "sync.character.json"
    path.write_text(json.dumps(character))
    monkeypatch.setenv("CHARACTERS", str(path))
    monkeypatch.setenv("KNOWLEDGE_PATH", str(tmp_path))
    return name, tmp_path


def test_sync_stores_the_configured_knowledge_then_leaves_it_alone(db, configured):
    name, base = configured
    agent_id = string_to_uuid(name)
    status, out, _ = run("knowledge", "sync")
    lines = out.splitlines()
    assert status == 1  # later.md does not exist yet
    assert lines[0] == f"{name} ({agent_id}):"
    assert dict(line.strip().split(": ", 1) for line in lines[1:7]) == {
        "added": "3",
        "unchanged": "0",
        "replaced": "0",
        "rejected": "1",
        "fragments stored": "3",
        "embeddings queued": "0",
    }
    assert f"    knowledge[2] later.md: file not found: {base / 'later.md'}" in lines
    assert lines[-1] == f"  {NO_QUEUE_NOTE}"
    assert set(stored(db, agent_id)) == {None, "facts.md", "guides/setup.md"}  # the string has no name

    (base / "later.md").write_text("Lunch is at noon.")
    status, out, _ = run("knowledge", "sync", name.lower(), "--json")
    summary = json.loads(out)
    assert status == 0 and (summary["agentId"], summary["agent"]) == (str(agent_id), name)
    assert (summary["added"], summary["unchanged"], summary["rejected"]) == (1, 3, [])


def test_sync_of_an_agent_stored_but_not_configured(db, configured):
    name, agent_id = store_agent(db, knowledge=["Stored agents know things too."])
    status, out, _ = run("documents", "sync", str(agent_id), "--json")
    summary = json.loads(out)
    assert status == 0 and summary["agentId"] == str(agent_id) and summary["added"] == 1
    assert list(stored(db, agent_id).values()) == [1]
    assert not stored(db, string_to_uuid(configured[0]))  # the configured character was not synced


def test_sync_of_an_unknown_agent(db, configured):
    status, out, err = run("knowledge", "sync", "nobody-at-all")
    assert (status, out) == (1, "") and err == "error: no agent 'nobody-at-all' (see `agent agents list`)\n"


def test_sync_with_an_invalid_character_file(db, tmp_path, monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "bio": 5}')
    monkeypatch.setenv("CHARACTERS", str(bad))
    status, out, err = run("knowledge", "sync")
    assert (status, out) == (1, "") and err.startswith(f"error: {bad}") and "bio" in err


# -- progress and status -----------------------------------------------------------------------


def use_queues(sqs: Any, moto: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fresh embedding queues on moto's server, configured as the running stack exports them."""
    urls = {
        p: sqs.create_queue(QueueName=f"docs-{p}-{uuid.uuid4().hex[:8]}")["QueueUrl"] for p in ("high", "normal", "low")
    }
    for priority, url in urls.items():
        monkeypatch.setenv(f"EMBEDDINGS_{priority.upper()}_QUEUE_URL", url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)
    return urls


def test_the_import_progress_counts_the_embeddings_queued(db, agent, folder, sqs, moto, monkeypatch):
    urls = use_queues(sqs, moto, monkeypatch)
    status, out, err = run("documents", "import", agent[0], folder)
    queued = figures(out)["embeddings queued"]
    assert int(queued) == len(drain(sqs, urls["low"])) > 0
    assert out.splitlines()[-1] == (
        f"embeddings: queued at low priority; `agent documents status {agent[0]} --wait` follows them"
    )
    assert err.splitlines()[0].startswith("importing, 0 embeddings queued  0/7")
    assert err.splitlines()[-1].startswith(f"importing, {queued} embeddings queued  7/7  100%")


def status_json(*argv: Any) -> tuple[int, dict[str, Any]]:
    status, out, err = run("documents", "status", *argv, "--json")
    assert err == "", err
    return status, json.loads(out)


def embed(database_url: str, agent_id: uuid.UUID, count: int | None = None) -> int:
    """The real embedding worker (scripted vectors) on the owner's fragments still without a vector."""
    import asyncio

    from core.db.pool import create_pool
    from core.db.postgres import PostgresAdapter
    from core.embeddings.worker import EmbeddingWorker, Outcome
    from core.model_providers.scripted import models as scripted
    from core.settings import Settings

    async def work() -> int:
        pool = create_pool(Settings(database_url=database_url))
        await pool.open()
        try:
            adapter = PostgresAdapter(pool)
            async with pool.connection() as conn:
                rows = await (
                    await conn.execute(
                        "SELECT id, content_hash FROM memories m WHERE agent_id = %s AND type = 'knowledge'"
                        " AND NOT EXISTS (SELECT 1 FROM embeddings e"
                        " WHERE e.memory_id = m.id AND e.agent_id = m.agent_id"
                        "  AND e.content_hash = m.content_hash AND e.dim_384 IS NOT NULL) ORDER BY id",
                        (agent_id,),
                    )
                ).fetchall()
            requests = [
                EmbeddingRequest(memory_id=r["id"], agent_id=agent_id, content_hash=r["content_hash"], priority="low")
                for r in rows[:count]
            ]

            async def vectors(texts: list[str]) -> list[list[float]]:
                return [scripted.vector(t) for t in texts]

            report = await EmbeddingWorker(adapter, vectors, "scripted").process(requests)
            assert report.count(Outcome.EMBEDDED) == len(requests), (report.outcomes, report.errors)
            return len(requests)
        finally:
            await pool.close()

    return asyncio.run(work())


def test_status_moves_from_queued_to_embedded_and_a_given_up_fragment_is_failed(db, agent, tmp_path):
    name, agent_id = agent
    (tmp_path / "notes.md").write_text(NOTES)
    assert run("documents", "import", name, tmp_path)[0] == 0
    fragments = stored(db, agent_id)["notes.md"]

    status, before = status_json(name)
    assert status == 0 and before["private"] == {
        "fragments": fragments,
        "embedded": 0,
        "queued": fragments,
        "failed": 0,
    }
    assert embed(db, agent_id, count=fragments - 1) == fragments - 1
    status, after = status_json("--agent", name)
    assert status == 0 and after["private"] == {
        "fragments": fragments,
        "embedded": fragments - 1,
        "queued": 1,
        "failed": 0,
    }
    with psycopg.connect(db, autocommit=True) as conn:  # the last one is older than the sweep's window
        conn.execute(
            "UPDATE memories m SET created_at = now() - interval '2 days' WHERE agent_id = %s"
            " AND type = 'knowledge' AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.memory_id = m.id"
            " AND e.agent_id = m.agent_id)",
            (agent_id,),
        )
    status, failed = status_json(name)
    assert status == 1 and failed["private"]["failed"] == 1 and failed["private"]["queued"] == 0

    status, out, _ = run("documents", "status", name)
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert out.splitlines()[0].split() == ["SCOPE", "FRAGMENTS", "EMBEDDED", "QUEUED", "FAILED", "SEARCHABLE"]
    assert rows["private"] == [str(fragments), str(fragments - 1), "0", "1", f"{(fragments - 1) / fragments:.0%}"]
    assert set(rows) == {"private", "shared", "total"}


def test_status_without_an_agent_lists_every_agent_and_the_shared_knowledge(db, agent, tmp_path):
    name, agent_id = agent
    other, _ = store_agent(db)
    (tmp_path / "notes.md").write_text(NOTES)
    run("documents", "import", name, tmp_path)
    status, out, err = run("documents", "status")
    assert err == ""
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert lines[name][0] == str(stored(db, agent_id)["notes.md"]) and lines[other][0] == "0"
    assert "(shared)" in lines and out.splitlines()[0].split()[0] == "AGENT"


def test_status_wait_draws_the_embedding_until_nothing_is_queued(db, agent, tmp_path, monkeypatch):
    name, agent_id = agent
    (tmp_path / "notes.md").write_text(NOTES)
    run("documents", "import", name, tmp_path)
    _, before = status_json(name)  # other tests' shared documents count too: this agent sees them
    naps: list[float] = []

    def sleep(seconds: float) -> None:  # the worker embeds two fragments while the command waits
        naps.append(seconds)
        assert len(naps) <= before["queued"], "the wait did not end when nothing was queued"
        assert (embed(db, agent_id, count=2) or embed(db, SHARED_KNOWLEDGE_ID, count=2)) > 0

    monkeypatch.setattr("time.sleep", sleep)
    status, out, err = run("documents", "status", name, "--wait", "--every", "0.5")
    assert status == 0 and naps == [0.5] * ((before["queued"] + 1) // 2)
    lines, total = err.splitlines(), before["fragments"]
    assert lines[0].startswith(f"embedding, {before['queued']} queued, 0 failed  {before['embedded']}/{total}")
    assert lines[-1].startswith(f"embedding, 0 queued, 0 failed  {total}/{total}  100%") and lines[-1].endswith("done")
    assert out.splitlines()[-1].split() == ["total", str(total), str(total), "0", "0", "100%"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--wait"], "error: --wait needs AGENT\n"),
        (["one", "--agent", "two"], "error: give AGENT once (as AGENT or --agent)\n"),
    ],
)
def test_status_refuses_contradictory_arguments(argv, message):
    assert run("documents", "status", *argv) == (2, "", message)


def test_status_of_an_unknown_agent(db):
    assert run("documents", "status", "nobody-at-all") == (
        1,
        "",
        "error: no agent 'nobody-at-all' (see `agent agents list`)\n",
    )
