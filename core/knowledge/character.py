"""A character's ``knowledge`` entries as documents, synced at init/migrate time, never per request.

``ingest_character_knowledge(runtime)`` is idempotent: run it from the migrate function or
the CLI after every deploy. For each entry of ``runtime.character.knowledge``:

- a string is an unnamed private document (identified by its text), shown in the prompt as
  coming from ``"<name>'s character"``;
- ``{"path": ..., "shared": ...}`` is the file, read as ``importer`` reads files and named by
  the path as written; relative paths are resolved against ``KNOWLEDGE_PATH`` (default: the
  current directory). A file that does not exist in the deployment is reported as rejected,
  not an error, and its stored document (if any) is kept;
- ``{"directory": ..., "shared": ...}`` is every accepted file of the folder
  (``importer.import_folder``), named ``<directory>/<relative path>``.

Unchanged entries cost a look-up each and no model call. Private documents this function
stored earlier (``metadata.origin == "character"``) whose entry is no longer in the
character are deleted, so editing a knowledge string replaces its document. Shared
documents are never deleted here: another character may name the same file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from core.character import KnowledgeItem
from core.knowledge import KnowledgeSettings
from core.knowledge.documents import DocumentError, add_document, document_id
from core.knowledge.importer import ImportSummary, Rejected, import_file, import_folder
from core.settings.knowledge import KNOWLEDGE_PATH

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)

ORIGIN = "character"
#: Documents listed per page when looking for stale ones.
_PAGE = 500


async def ingest_character_knowledge(runtime: AgentRuntime) -> ImportSummary:
    """Store the character's knowledge entries as documents and drop the ones it no longer has.

    Args:
        runtime: The agent's runtime (its character, adapter and embedding queue).

    Returns:
        Counts, with each entry that could not be stored as rejected (``knowledge[3]: ...``).

    Raises:
        ConfigurationError: invalid knowledge settings.
    """
    settings = KnowledgeSettings.from_runtime(runtime)
    base = Path(KNOWLEDGE_PATH.read(runtime) or os.getcwd())
    summary = ImportSummary()
    kept: set[UUID] = set()
    kept_prefixes: list[str] = []
    for index, entry in enumerate(runtime.character.knowledge):
        label = f"knowledge[{index}]"
        if isinstance(entry, str):
            await _ingest_text(runtime, entry, label, settings, summary, kept)
        elif entry.path is not None:
            await _ingest_file(runtime, entry, base, label, settings, summary, kept)
        else:
            await _ingest_directory(runtime, entry, base, label, summary, kept_prefixes)
    summary.removed = await _remove_stale(runtime, kept, kept_prefixes)
    await runtime.flush_embeddings()
    logger.info("character %s knowledge: %s", runtime.character.name, summary.describe().replace("\n", "; "))
    return summary


async def _ingest_text(
    runtime: AgentRuntime, text: str, label: str, settings: KnowledgeSettings, summary: ImportSummary, kept: set[UUID]
) -> None:
    try:
        result = await add_document(
            runtime, text, origin=ORIGIN, source=f"{runtime.character.name}'s character", settings=settings, flush=False
        )
    except DocumentError as exc:
        summary.rejected.append(Rejected(label, exc.reason))
        return
    kept.add(result.document_id)
    summary.count(result.status, result.fragment_count, result.queued)


async def _ingest_file(
    runtime: AgentRuntime,
    entry: KnowledgeItem,
    base: Path,
    label: str,
    settings: KnowledgeSettings,
    summary: ImportSummary,
    kept: set[UUID],
) -> None:
    name = (entry.path or "").strip()
    if not entry.shared:  # kept even when unreadable: a missing file must not erase knowledge
        kept.add(document_id(runtime.agent_id, name=name, text_hash=""))
    path = _resolve(base, name)
    if not name or not path.is_file():
        summary.rejected.append(Rejected(f"{label} {name}", f"file not found: {path}"))
        return
    await import_file(runtime, path, name=name, shared=entry.shared, settings=settings, summary=summary, origin=ORIGIN)


async def _ingest_directory(
    runtime: AgentRuntime,
    entry: KnowledgeItem,
    base: Path,
    label: str,
    summary: ImportSummary,
    kept_prefixes: list[str],
) -> None:
    directory = (entry.directory or "").strip()
    prefix = directory.rstrip("/") + "/"
    if not entry.shared:
        kept_prefixes.append(prefix)
    folder = _resolve(base, directory)
    if not directory or not folder.is_dir():
        summary.rejected.append(Rejected(f"{label} {directory}", f"folder not found: {folder}"))
        return
    summary.merge(await import_folder(runtime, folder, shared=entry.shared, origin=ORIGIN, name_prefix=prefix))


async def _remove_stale(runtime: AgentRuntime, kept: set[UUID], kept_prefixes: list[str]) -> int:
    """Delete the agent's character documents that no entry produced this time."""
    stale: list[UUID] = []
    cursor: str | None = None
    while True:
        page = await runtime.adapter.list_knowledge_documents([runtime.agent_id], limit=_PAGE, cursor=cursor)
        for doc in page.memories:
            extra = doc.metadata.model_extra or {}
            name = extra.get("title") or ""
            if extra.get("origin") != ORIGIN or doc.id in kept or any(name.startswith(p) for p in kept_prefixes):
                continue
            stale.append(doc.id)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    for doc_id in stale:
        await runtime.adapter.delete_knowledge_document([runtime.agent_id], doc_id)
    return len(stale)


def _resolve(base: Path, path: str) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base / candidate
