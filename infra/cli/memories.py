"""``agent memories search``: an agent's memories nearest in meaning to a query.

The query is embedded with the deployment's embedding model (``MODEL_PLUGINS``, the model
that embedded the stored memories), then searched as ``POST /agents/{agent}/memories/search``
does: cosine similarity on the HNSW index, scoped to the agent.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from core.errors import EmbeddingDimensionError, ModelError, ModelNotFoundError
from core.knowledge import FRAGMENTS_TABLE
from core.types import Memory, ModelType
from core.types.fact import FACTS_TABLE
from core.types.wire import memory_json
from infra.cli.common import (
    CliError,
    Io,
    cell,
    find_agent,
    float_range,
    int_range,
    open_container,
    print_table,
    utc,
    uuid_arg,
)

#: The memory tables that get embeddings, hence can be searched: ``--table`` accepts these and
#: its help lists them. (``documents`` and ``action_results`` are never embedded, see
#: ``core.db.postgres.embeddings.NEVER_EMBEDDED``: a document is searched through its fragments,
#: table ``knowledge``.)
#: ``summaries`` is ``core.memory.retention.SUMMARY_TABLE``, not imported: that module costs the
#: CLI's start-up a Powertools import (a test keeps the two equal).
SEARCHABLE_TABLES = ("messages", FACTS_TABLE, FRAGMENTS_TABLE, "summaries")


def _table(text: str) -> str:
    if text not in SEARCHABLE_TABLES:
        hint = (
            f" (a document's text is searched in table {FRAGMENTS_TABLE!r})"
            if text in {"documents", "fragments"}
            else ""
        )
        raise argparse.ArgumentTypeError(f"unknown table {text!r}; one of {', '.join(SEARCHABLE_TABLES)}{hint}")
    return text


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``memories search``."""
    parser = groups.add_parser(
        "memories", help="an agent's memories", description="An agent's memories: search by meaning."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    search = commands.add_parser(
        "search",
        help="memories nearest in meaning to a query",
        description="Memories of an agent nearest in meaning to QUERY, best first"
        " (only memories whose embedding has been computed).",
    )
    search.add_argument("agent", metavar="AGENT", help="agent id or name (any case)")
    search.add_argument("query", metavar="QUERY", help="what to look for")
    search.add_argument("--room-id", type=uuid_arg, metavar="UUID", help="only this room")
    search.add_argument(
        "--table",
        type=_table,
        default="messages",
        metavar="TABLE",
        help=f"memory table: {', '.join(SEARCHABLE_TABLES)} (default messages;"
        f" {FRAGMENTS_TABLE} holds the fragments of imported documents)",
    )
    search.add_argument("--count", type=int_range(1, 100), default=10, help="most results (1-100, default 10)")
    search.add_argument(
        "--threshold", type=float_range(-1.0, 1.0), default=0.0, help="least cosine similarity (-1 to 1, default 0)"
    )
    search.add_argument("--json", action="store_true", help="one JSON object per line, with similarity")
    search.set_defaults(handler=search_memories)


def search_memories(args: argparse.Namespace, io: Io) -> int:
    """``memories search``: a table (similarity, time, room, text), or JSON lines."""
    if not args.query.strip():
        raise CliError("QUERY is empty", 2)
    with open_container(models=True) as container:
        registry = container.model_registry()  # ConfigurationError when nothing embeds

        async def search() -> list[Memory]:
            agent = await find_agent(container.adapter, args.agent)
            vector = await registry.use(None, ModelType.TEXT_EMBEDDING, {"text": args.query})
            return await container.adapter.search_memories(
                agent.id,
                vector,
                table=args.table,
                room_id=args.room_id,
                count=args.count,
                match_threshold=args.threshold,
            )

        try:
            memories = container.run(search())
        except (ModelError, ModelNotFoundError) as exc:
            raise CliError(f"the embedding model failed: {exc}") from None
        except EmbeddingDimensionError as exc:
            raise CliError(f"{exc}: set EMBEDDING_DIMENSION to the embedding model's") from None
    if args.json:
        for memory in memories:
            print(json.dumps(memory_json(memory)), file=io.out)
        return 0
    rows = [_row(memory) for memory in memories]
    print_table(["SIMILARITY", "CREATED (UTC)", "ROOM", "TEXT"], rows, io.out)
    return 0


def _row(memory: Memory) -> list[str]:
    similarity: Any = memory.similarity
    return [
        f"{similarity:.3f}" if similarity is not None else "-",
        utc(memory.created_at),
        str(memory.room_id),
        cell(memory.text, limit=80),
    ]
