"""``agent documents import|list|show|delete|sync``: an agent's knowledge documents.

``knowledge`` is another name of the group (``agent knowledge sync`` is what
``core.tasks.agent_setup`` tells operators to run).

- ``import AGENT FOLDER``: every accepted file under FOLDER becomes a document named by its
  relative path (``core.knowledge.importer``), with a progress bar on stderr and the summary
  on stdout: added, unchanged, replaced, rejected with each reason, fragments stored,
  embeddings queued. Importing the same folder again reports every file unchanged; an edited
  file is replaced. Exit status 1 when some file was rejected.
- ``list``, ``show``, ``delete``: as ``GET``/``DELETE /agents/{agent}/documents`` do (same
  JSON); a document is named by its id, or by its name (``guides/setup.md``).
- ``status [AGENT]``: fragments embedded, queued and failed (``core.knowledge.status``), as
  ``GET /agents/{agent}/documents/status`` reports them; ``--wait`` draws the embedding's
  progress until nothing is queued.
- ``sync [AGENT]``: the configured characters' ``knowledge`` entries as documents
  (``core.knowledge.character``), as the scheduled tasks function does after each deploy.

AGENT is any agent stored in the database (``agent agents list``), by id or name. No model
is called: fragments are queued for embedding at low priority on the ``EMBEDDINGS_*_QUEUE_URL``
queues when they are set; otherwise they wait, and the scheduled sweep (the tasks function)
queues every fragment still without a vector.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from uuid import UUID

from core.character import CharacterError, load_character_dict
from core.knowledge import SHARED_KNOWLEDGE_ID
from core.knowledge.documents import document_id, is_shared
from core.knowledge.importer import ImportSummary
from core.uuid import string_to_uuid
from infra.cli.common import (
    CliError,
    Io,
    cell,
    find_agent,
    float_range,
    interruptible,
    open_container,
    print_table,
    utc,
)
from infra.cli.progress import Progress

if TYPE_CHECKING:
    from core.character import Character
    from core.deployment.container import Container
    from core.knowledge.status import KnowledgeStatus
    from core.orchestrator import Orchestrator
    from core.runtime import AgentRuntime
    from core.types import Memory

#: Documents read per query when listing (the adapter's page limit is 1000).
_PAGE = 500
#: Printed when there is no embedding queue and fragments were stored.
NO_QUEUE_NOTE = (
    "embeddings: not queued (no EMBEDDINGS_*_QUEUE_URL set); the scheduled sweep queues"
    " the fragments still without a vector (up to EMBEDDING_PENDING_MAX_AGE_S old, default 24 h)"
)


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``documents`` (also ``knowledge``): ``import``, ``status``, ``list``, ``show``, ``delete``, ``sync``."""
    parser = groups.add_parser(
        "documents",
        aliases=["knowledge"],
        help="an agent's knowledge documents (import a folder, status, sync)",
        description="An agent's knowledge documents: import a folder, list, show, delete; sync the"
        " characters' knowledge. AGENT is an agent id or name (any case); DOCUMENT an id or a name"
        " as listed.",
        epilog="No model is called here: new fragments are queued for embedding when"
        " EMBEDDINGS_*_QUEUE_URL is set, else the scheduled sweep queues them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    imports = commands.add_parser(
        "import",
        help="import every text file of a folder (progress bar, summary)",
        description="Import every accepted file under FOLDER (.txt, .md, .json, .csv, .yaml, .html..."
        " recursively, hidden files skipped) as a document named by its path relative to FOLDER."
        " The same folder imported again leaves unchanged files alone and replaces edited ones."
        " Progress goes to stderr, the summary to stdout.",
        epilog="Exit status: 0 every file imported or unchanged; 1 some file was rejected (empty, not"
        " UTF-8 text, over KNOWLEDGE_MAX_DOCUMENT_BYTES, unsupported type: the summary says why),"
        " or the folder or the agent does not exist.",
    )
    imports.add_argument("agent", metavar="AGENT", help="agent id or name (any case)")
    imports.add_argument("folder", metavar="FOLDER", type=Path, help="the folder to import")
    imports.add_argument(
        "--shared", action="store_true", help="store as shared knowledge, seen by every agent of the deployment"
    )
    imports.add_argument("--json", action="store_true", help="the summary as one JSON object")
    imports.set_defaults(handler=import_documents)

    listing = commands.add_parser(
        "list",
        help="the agent's documents and the shared ones",
        description="The agent's documents and the shared ones, newest first.",
    )
    listing.add_argument("agent", metavar="AGENT", help="agent id or name (any case)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line (as the API's)")
    listing.set_defaults(handler=list_documents)

    show = commands.add_parser(
        "show",
        help="one document with its text",
        description="One document (the agent's or a shared one) with its text.",
    )
    show.add_argument("agent", metavar="AGENT", help="agent id or name (any case)")
    show.add_argument("document", metavar="DOCUMENT", help="document id, or name as listed")
    show.add_argument("--fragments", action="store_true", help="also its fragments, in order")
    show.add_argument("--json", action="store_true", help="as the API returns it")
    show.set_defaults(handler=show_document)

    delete = commands.add_parser(
        "delete",
        help="delete a document and its fragments",
        description="Delete a document and its fragments; a shared document is deleted for every agent.",
    )
    delete.add_argument("agent", metavar="AGENT", help="agent id or name (any case)")
    delete.add_argument("document", metavar="DOCUMENT", help="document id, or name as listed")
    delete.set_defaults(handler=delete_document)

    status = commands.add_parser(
        "status",
        help="fragments embedded, queued and failed: how much is searchable",
        description="How far knowledge is searchable: fragments embedded (searchable), queued (sent to"
        " the embedding queues, being retried, or waiting for the scheduled sweep) and failed (still no"
        " vector after EMBEDDING_PENDING_MAX_AGE_S, default 24 h: nothing retries them; importing their"
        " document again does). With AGENT: its own fragments, the shared ones, and both; without:"
        " every enabled agent and the shared knowledge.",
        epilog="Exit status: 0 nothing failed; 1 some fragment failed, or AGENT is unknown.",
    )
    status.add_argument("agent", metavar="AGENT", nargs="?", help="agent id or name (any case); default: every agent")
    status.add_argument("--agent", dest="agent_option", metavar="AGENT", help="the same as AGENT")
    status.add_argument(
        "--wait",
        action="store_true",
        help="with AGENT: keep going until nothing is queued, with a progress bar of embedded"
        " fragments on stderr (Ctrl-C stops)",
    )
    status.add_argument(
        "--every",
        type=float_range(0.1, 3600.0),
        default=2.0,
        metavar="SECONDS",
        help="with --wait: seconds between two counts (default 2)",
    )
    status.add_argument("--json", action="store_true", help="one JSON object per line")
    status.set_defaults(handler=documents_status)

    sync = commands.add_parser(
        "sync",
        help="store the characters' knowledge entries as documents",
        description="Store the `knowledge` entries of the configured characters (CHARACTERS, else"
        " Eliza) as documents, as the scheduled tasks function does after each deploy: strings, files"
        " and folders (relative paths from KNOWLEDGE_PATH, default the current directory). Entries"
        " already stored are left alone; private documents of entries no longer in the character are"
        " deleted. Safe to run again.",
        epilog="Exit status: 0 every entry stored or unchanged; 1 some entry was rejected (a missing"
        " file...), or AGENT is unknown.",
    )
    sync.add_argument(
        "agent",
        metavar="AGENT",
        nargs="?",
        help="only this agent: a configured character, or any agent stored in the database"
        " (default: every configured character)",
    )
    sync.add_argument("--json", action="store_true", help="one JSON object per agent, one a line")
    sync.set_defaults(handler=sync_documents)


# -- import -----------------------------------------------------------------------------


def import_documents(args: argparse.Namespace, io: Io) -> int:
    """``documents import``: the summary; exit status 1 when some file was rejected."""
    from core.knowledge.importer import import_folder

    folder: Path = args.folder
    if not folder.is_dir():  # before any database work
        raise CliError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    with open_container() as container:
        orchestrator = _orchestrator(container)
        runtime = interruptible(container, _stored_runtime(container, orchestrator, args.agent))
        queue = orchestrator.embedding_queue is not None
        summary = ImportSummary()
        with FileProgress(io, summary if queue else None) as progress:
            interruptible(
                container, import_folder(runtime, folder, shared=args.shared, progress=progress, summary=summary)
            )
    if args.json:
        print(
            json.dumps(
                {
                    "agentId": str(runtime.agent_id),
                    "agent": runtime.character.name,
                    "folder": str(folder),
                    "shared": args.shared,
                    **summary_json(summary),
                    "embeddingQueue": queue,
                }
            ),
            file=io.out,
        )
    else:
        print(summary.describe(), file=io.out)
        if not queue and summary.fragments:
            print(NO_QUEUE_NOTE, file=io.out)
        elif summary.queued:
            print(
                f"embeddings: queued at low priority; `agent documents status {runtime.character.name} --wait`"
                " follows them",
                file=io.out,
            )
    return 1 if summary.rejected else 0


class FileProgress:
    """``import_folder``'s ``progress(done, total)`` callback drawing a :class:`Progress` on stderr.

    The bar is made on the first call, when the number of files is known; leaving the ``with``
    block closes it (``done``, ``interrupted`` or ``failed``). With the import's ``summary``, its
    label counts the embedding requests sent so far (``importing, 1200 embeddings queued``).

    Args:
        io: Its ``err`` stream gets the bar.
        summary: The import's running counts (``None``: no embedding queue, nothing to count).
    """

    def __init__(self, io: Io, summary: ImportSummary | None = None) -> None:
        self.stream = io.err
        self.summary = summary
        self.bar: Progress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = Progress(total, "importing", unit="files", stream=self.stream)
        if self.summary is not None:
            self.bar.label = f"importing, {self.summary.queued} embeddings queued"
        self.bar.advance(max(done - self.bar.done, 0))

    def __enter__(self) -> FileProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.__exit__(exc_type, exc, tb)


def summary_json(summary: ImportSummary) -> dict[str, Any]:
    """An import's counts in camelCase, rejected files as ``{"path", "reason"}``."""
    return {
        "added": summary.added,
        "unchanged": summary.unchanged,
        "replaced": summary.replaced,
        "rejected": [{"path": r.path, "reason": r.reason} for r in summary.rejected],
        "fragments": summary.fragments,
        "queued": summary.queued,
        "removed": summary.removed,
    }


# -- status -----------------------------------------------------------------------------


def documents_status(args: argparse.Namespace, io: Io) -> int:
    """``documents status``: a table (or JSON lines) of fragments by embedding state; 1 when some failed."""
    from core.knowledge.status import given_up_after_s

    ref = _status_agent(args)
    if args.wait and ref is None:
        raise CliError("--wait needs AGENT", 2)
    age = given_up_after_s()  # a bad EMBEDDING_PENDING_* setting is named before any database work
    with open_container() as container:
        if ref is None:
            rows = container.run(_every_agent_status(container, age))
        else:
            agent = container.run(find_agent(container.adapter, ref))
            status = (
                _wait(container, agent, age, io, args.every)
                if args.wait
                else container.run(_status(container, agent.id, age))
            )
            rows = [(agent.name, agent.id, status)]
    failed = _print_status(io, rows, json_lines=args.json)
    return 1 if failed else 0


def _status_agent(args: argparse.Namespace) -> str | None:
    if args.agent and args.agent_option and args.agent != args.agent_option:
        raise CliError("give AGENT once (as AGENT or --agent)", 2)
    agent: str | None = args.agent or args.agent_option
    return agent


async def _status(container: Container, agent_id: UUID, age: float) -> KnowledgeStatus:
    from core.knowledge.status import knowledge_status

    return await knowledge_status(container.adapter, agent_id, failed_after_s=age)


async def _every_agent_status(container: Container, age: float) -> list[tuple[str, UUID, KnowledgeStatus]]:
    """Every enabled agent's status (shared counts included in each), in one query per 7 agents."""
    from core.db.postgres.knowledge import MAX_OWNERS
    from core.knowledge.status import KnowledgeStatus

    agents = await container.adapter.get_agents()
    rows = []
    for start in range(0, len(agents), MAX_OWNERS - 1):
        chunk = agents[start : start + MAX_OWNERS - 1]
        counts = await container.adapter.knowledge_embedding_counts(
            [a.id for a in chunk] + [SHARED_KNOWLEDGE_ID], given_up_after_s=age
        )
        rows += [(a.name, a.id, KnowledgeStatus(c, counts[-1], age)) for a, c in zip(chunk, counts, strict=False)]
    return rows


def _wait(container: Container, agent: Any, age: float, io: Io, every: float) -> KnowledgeStatus:
    """Count every ``every`` seconds until nothing is queued, drawing embedded/fragments on stderr."""
    import time

    status = container.run(_status(container, agent.id, age))
    with Progress(status.total("fragments"), "embedding", unit="fragments", stream=io.err) as bar:
        while True:
            bar.total = status.total("fragments")
            bar.label = f"embedding, {status.total('queued')} queued, {status.total('failed')} failed"
            bar.advance(max(status.total("embedded") - bar.done, 0))
            if not status.total("queued"):
                return status
            time.sleep(every)
            status = interruptible(container, _status(container, agent.id, age))


def _print_status(io: Io, rows: list[tuple[str, UUID, KnowledgeStatus]], *, json_lines: bool) -> int:
    """Print the rows; returns the number of failed fragments (shared ones counted once)."""
    if json_lines:
        for name, agent_id, status in rows:
            print(json.dumps({"agentId": str(agent_id), "agent": name, **status.as_json()}), file=io.out)
    elif len(rows) == 1:
        _, _, status = rows[0]
        table = [
            ["private", *_counts(status.private)],
            ["shared", *_counts(status.shared)],
            ["total", *_counts(status.private, status.shared)],
        ]
        print_table(["SCOPE", "FRAGMENTS", "EMBEDDED", "QUEUED", "FAILED", "SEARCHABLE"], table, io.out)
    else:
        table = [[name, *_counts(status.private)] for name, _, status in rows]
        if rows:
            table.append(["(shared)", *_counts(rows[0][2].shared)])
        print_table(["AGENT", "FRAGMENTS", "EMBEDDED", "QUEUED", "FAILED", "SEARCHABLE"], table, io.out)
    shared_failed = rows[0][2].shared.failed if rows else 0
    return sum(status.private.failed for _, _, status in rows) + shared_failed


def _counts(*parts: Any) -> list[str]:
    fragments, embedded, queued, failed = (
        sum(getattr(p, f) for p in parts) for f in ("fragments", "embedded", "queued", "failed")
    )
    searchable = f"{embedded / fragments:.0%}" if fragments else "-"
    return [str(fragments), str(embedded), str(queued), str(failed), searchable]


# -- list, show, delete -----------------------------------------------------------------


def list_documents(args: argparse.Namespace, io: Io) -> int:
    """``documents list``: a table, or JSON lines shaped as ``GET /agents/{agent}/documents``'s."""
    from core.knowledge.documents import document_json

    with open_container() as container:
        agent = container.run(find_agent(container.adapter, args.agent))
        documents = container.run(_all_documents(container, agent.id))
    if args.json:
        for document in documents:
            print(json.dumps(document_json(document)), file=io.out)
        return 0
    rows = [_row(document) for document in documents]
    print_table(["ID", "NAME", "SCOPE", "BYTES", "FRAGMENTS", "ORIGIN", "CREATED (UTC)"], rows, io.out)
    return 0


def show_document(args: argparse.Namespace, io: Io) -> int:
    """``documents show``: the metadata, then the text (or the fragments); or JSON as the API's."""
    from core.knowledge.documents import document_json

    with open_container() as container:

        async def read() -> tuple[Memory, list[Memory]]:
            agent = await find_agent(container.adapter, args.agent)
            document = await _find_document(container, agent.id, agent.name, args.document)
            fragments = (
                await container.adapter.get_knowledge_fragments(document.agent_id, document.id)
                if args.fragments
                else []
            )
            return document, fragments

        document, fragments = container.run(read())
    if args.json:
        answer = document_json(document, text=True)
        if args.fragments:
            answer["fragments"] = [_fragment_json(f) for f in fragments]
        print(json.dumps(answer, indent=2, ensure_ascii=False), file=io.out)
        return 0
    meta = document.metadata.model_extra or {}
    fields: list[tuple[str, Any]] = [
        ("id", document.id),
        ("name", meta.get("title")),
        ("scope", _scope(document)),
        ("source", document.metadata.source),
        ("type", meta.get("contentType")),
        ("bytes", meta.get("size")),
        ("fragments", meta.get("fragmentCount")),
        ("origin", meta.get("origin")),
        ("created", f"{utc(document.created_at)} UTC"),
        ("sha256", meta.get("contentHash")),
    ]
    for name, value in fields:
        print(f"{name + ':':<11}{cell(value, limit=100)}", file=io.out)
    if args.fragments:
        for fragment in fragments:
            position = (fragment.metadata.model_extra or {}).get("position")
            print(f"\n--- fragment {position} ({fragment.id})\n{fragment.text}", file=io.out)
    else:
        print(f"\n{document.text}", file=io.out)
    return 0


def delete_document(args: argparse.Namespace, io: Io) -> int:
    """``documents delete``: one line saying what was deleted."""
    with open_container() as container:

        async def delete() -> Memory:
            agent = await find_agent(container.adapter, args.agent)
            document = await _find_document(container, agent.id, agent.name, args.document)
            # Owners named explicitly: the agent's own document, or a shared one, never another's.
            await container.adapter.delete_knowledge_document([agent.id, SHARED_KNOWLEDGE_ID], document.id)
            return document

        document = container.run(delete())
    name = (document.metadata.model_extra or {}).get("title")
    label = f"{name} ({document.id})" if name else str(document.id)
    suffix = " (shared: gone for every agent)" if is_shared(document) else ""
    print(f"deleted document {label}{suffix}", file=io.out)
    return 0


async def _all_documents(container: Container, agent_id: UUID) -> list[Memory]:
    documents: list[Memory] = []
    cursor: str | None = None
    while True:
        page = await container.adapter.list_knowledge_documents(
            [agent_id, SHARED_KNOWLEDGE_ID], limit=_PAGE, cursor=cursor
        )
        documents += page.memories
        if page.next_cursor is None:
            return documents
        cursor = page.next_cursor


async def _find_document(container: Container, agent_id: UUID, agent_name: str, ref: str) -> Memory:
    """A document the agent sees, by id, else by name (its own first, then a shared one).

    Raises:
        CliError: the agent sees no such document.
    """
    owners = [agent_id, SHARED_KNOWLEDGE_ID]
    try:
        candidates = [UUID(ref)]
    except ValueError:  # a name: the id is derived from the owner and the name
        candidates = [document_id(owner, name=ref.strip(), text_hash="") for owner in owners]
    for candidate in candidates:
        document = await container.adapter.get_knowledge_document(owners, candidate)
        if document is not None:
            return document
    raise CliError(f"no document {ref!r} for agent {agent_name} (see `agent documents list {agent_name}`)")


def _row(document: Memory) -> list[str]:
    meta = document.metadata.model_extra or {}
    return [
        str(document.id),
        cell(meta.get("title"), limit=50),
        _scope(document),
        cell(meta.get("size")),
        cell(meta.get("fragmentCount")),
        cell(meta.get("origin")),
        utc(document.created_at),
    ]


def _scope(document: Memory) -> str:
    return "shared" if is_shared(document) else "private"


def _fragment_json(fragment: Memory) -> dict[str, Any]:
    meta = fragment.metadata.model_extra or {}
    return {
        "id": str(fragment.id),
        "position": meta.get("position"),
        "start": meta.get("start"),
        "end": meta.get("end"),
        "text": fragment.text,
    }


# -- sync -------------------------------------------------------------------------------


def sync_documents(args: argparse.Namespace, io: Io) -> int:
    """``documents sync``: one summary per agent; exit status 1 when some entry was rejected."""
    from core.knowledge.character import ingest_character_knowledge

    rejected = False
    with open_container() as container:
        orchestrator = _orchestrator(container)
        runtimes = interruptible(container, _sync_runtimes(container, orchestrator, args.agent))
        queue = orchestrator.embedding_queue is not None
        for runtime in runtimes:
            summary = interruptible(container, ingest_character_knowledge(runtime))
            rejected = rejected or bool(summary.rejected)
            _print_sync(io, runtime, summary, json_lines=args.json, queue=queue)
    return 1 if rejected else 0


async def _sync_runtimes(container: Container, orchestrator: Orchestrator, ref: str | None) -> list[AgentRuntime]:
    """Runtimes of the configured characters (stored, as the stack stores them), or of AGENT alone.

    Raises:
        CliError: AGENT is neither configured nor stored.
        CharacterError: a configured character file is invalid.
    """
    characters = container.characters()
    if ref is not None:
        characters = [c for c in characters if _is(c, ref)]
        if not characters:  # not configured: an agent stored with `agent agents put`
            return [await _stored_runtime(container, orchestrator, ref)]
    ids = await orchestrator.add_agents(characters)  # their rows, which documents reference
    return [orchestrator.runtime(agent_id) for agent_id in ids]


def _is(character: Character, ref: str) -> bool:
    agent_id = character.id or string_to_uuid(character.name)
    return character.name.lower() == ref.strip().lower() or str(agent_id) == ref.strip().lower()


def _print_sync(io: Io, runtime: AgentRuntime, summary: ImportSummary, *, json_lines: bool, queue: bool) -> None:
    if json_lines:
        print(
            json.dumps(
                {
                    "agentId": str(runtime.agent_id),
                    "agent": runtime.character.name,
                    **summary_json(summary),
                    "embeddingQueue": queue,
                }
            ),
            file=io.out,
        )
        return
    print(f"{runtime.character.name} ({runtime.agent_id}):", file=io.out)
    for line in summary.describe().splitlines():
        print(f"  {line}", file=io.out)
    if not queue and summary.fragments:
        print(f"  {NO_QUEUE_NOTE}", file=io.out)


# -- runtimes ---------------------------------------------------------------------------


def _orchestrator(container: Container) -> Orchestrator:
    """An orchestrator with the built-in plugins and the SQS queues when configured.

    ``Container.embedding_queue`` is only asked when queue URLs are set: without them it warns
    that embeddings "stay pending", where the summary says what happens to them.
    """
    from core.deployment.plugins import built_in_plugins
    from core.orchestrator import Orchestrator

    queue = container.embedding_queue() if container.settings.queue_urls else None
    return Orchestrator(container.adapter, embedding_queue=queue, plugins=built_in_plugins())


async def _stored_runtime(container: Container, orchestrator: Orchestrator, ref: str) -> AgentRuntime:
    """The runtime of an agent stored in the database, from its stored character (not re-stored).

    Raises:
        CliError: no such agent, or its stored character is no longer valid.
    """
    record = await find_agent(container.adapter, ref)
    try:
        character = load_character_dict(record.character, source=f"agent {record.name}")
    except CharacterError as exc:
        raise CliError(f"the stored character is invalid: {exc}") from None
    # The row's id is the agent's, whatever the document says (ids derived from names may differ).
    await orchestrator.add_agents([character.model_copy(update={"id": record.id})], persist=False)
    return orchestrator.runtime(record.id)
