"""Bulk import of a folder of text files as documents (the CLI's ``knowledge import``).

Files are read in sorted order, recursively; hidden files and folders (``.git``,
``.DS_Store``) are skipped without a word. Each file is a document named by its path relative
to the folder (``guides/setup.md``), so importing the same folder again reports every file
``unchanged`` and an edited file ``replaced``. Accepted: ``ACCEPTED_SUFFIXES`` (plain text,
Markdown, and JSON/CSV/YAML/XML read as text); anything else, files over
``KNOWLEDGE_MAX_DOCUMENT_BYTES``, files that are not UTF-8 text, and empty files are
*rejected* with a reason, and the import goes on. Embedding requests are sent after every
file, so a long import is not one huge buffer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from core.knowledge import KnowledgeSettings
from core.knowledge.documents import DocumentError, DocumentStatus, add_document, decode_document

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)

#: File suffixes imported (lower case), with the media type recorded.
ACCEPTED_SUFFIXES: dict[str, str] = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".rst": "text/x-rst",
    ".json": "application/json",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".xml": "application/xml",
    ".html": "text/html",
}
#: ``progress(done, total)``: called once before the first file (0) and after every file; the CLI
#: draws it with ``infra.cli.progress.Progress``.
ProgressFn = Callable[[int, int], None]


class Rejected(NamedTuple):
    """A file that was not imported, and why."""

    path: str
    reason: str


@dataclass
class ImportSummary:
    """What an import did.

    Attributes:
        added: New documents.
        unchanged: Documents already stored with the same text.
        replaced: Documents whose text changed (old fragments replaced).
        rejected: Files not imported, each with a reason.
        fragments: Fragments of the added and replaced documents.
        queued: Embedding requests sent (low priority).
        removed: Documents deleted because their source is gone (character knowledge only).
    """

    added: int = 0
    unchanged: int = 0
    replaced: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    fragments: int = 0
    queued: int = 0
    removed: int = 0

    def count(self, status: DocumentStatus, fragments: int, queued: int) -> None:
        """Record one stored document."""
        if status is DocumentStatus.ADDED:
            self.added += 1
        elif status is DocumentStatus.REPLACED:
            self.replaced += 1
        else:
            self.unchanged += 1
        if status is not DocumentStatus.UNCHANGED:
            self.fragments += fragments
        self.queued += queued

    def merge(self, other: ImportSummary) -> None:
        """Add ``other``'s counts to these."""
        self.added += other.added
        self.unchanged += other.unchanged
        self.replaced += other.replaced
        self.rejected += other.rejected
        self.fragments += other.fragments
        self.queued += other.queued
        self.removed += other.removed

    def describe(self) -> str:
        """One line per figure, then one per rejected file: what the CLI prints."""
        lines = [
            f"added: {self.added}",
            f"unchanged: {self.unchanged}",
            f"replaced: {self.replaced}",
            f"rejected: {len(self.rejected)}",
            f"fragments stored: {self.fragments}",
            f"embeddings queued: {self.queued}",
        ] + ([f"removed: {self.removed}"] if self.removed else [])
        lines += [f"  {r.path}: {r.reason}" for r in self.rejected]
        return "\n".join(lines)


def list_files(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder``, sorted by relative path.

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
    """
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, f) for f in files if not f.startswith(".")]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


async def import_folder(
    runtime: AgentRuntime,
    folder: str | Path,
    *,
    shared: bool = False,
    progress: ProgressFn | None = None,
    origin: str = "import",
    name_prefix: str = "",
    summary: ImportSummary | None = None,
) -> ImportSummary:
    """Import every accepted file under ``folder`` as a document of ``runtime``'s agent.

    Each document's fragments are queued for embedding (low priority, ``SendMessageBatch`` of 10)
    as soon as it is stored, when the runtime has an embedding queue; without one they wait for
    the scheduled sweep.

    Args:
        runtime: The agent's runtime.
        folder: The folder.
        shared: Import as shared knowledge (every agent sees it).
        progress: Called with (files done, files in all).
        origin: Recorded in each document's metadata.
        name_prefix: Put before each relative path to make the document name.
        summary: Where to count (a new one by default): a progress display may read it as the
            import goes (``queued``, ``fragments``).

    Returns:
        Counts and rejected files with reasons.

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
        ConfigurationError: invalid knowledge settings.
    """
    folder = Path(folder)
    files = list_files(folder)
    settings = KnowledgeSettings.from_runtime(runtime)
    summary = summary if summary is not None else ImportSummary()
    if progress:
        progress(0, len(files))
    for done, path in enumerate(files, 1):
        name = name_prefix + path.relative_to(folder).as_posix()
        await import_file(runtime, path, name=name, shared=shared, settings=settings, summary=summary, origin=origin)
        if progress:
            progress(done, len(files))
    return summary


async def import_file(
    runtime: AgentRuntime,
    path: Path,
    *,
    name: str,
    shared: bool,
    settings: KnowledgeSettings,
    summary: ImportSummary,
    origin: str = "import",
) -> None:
    """Import one file as the document ``name``, recording the outcome in ``summary``.

    A file that cannot be imported is recorded as rejected; database and model errors are raised.
    """
    content_type = ACCEPTED_SUFFIXES.get(path.suffix.lower())
    if content_type is None:
        summary.rejected.append(Rejected(name, f"unsupported file type {path.suffix or '(no suffix)'!r}"))
        return
    try:
        size = path.stat().st_size
        if size > settings.max_document_bytes:  # refused before reading a huge file
            summary.rejected.append(
                Rejected(
                    name,
                    f"too large: {size} bytes; the limit is "
                    f"{settings.max_document_bytes} (KNOWLEDGE_MAX_DOCUMENT_BYTES)",
                )
            )
            return
        text = decode_document(path.read_bytes(), max_bytes=settings.max_document_bytes)
        result = await add_document(
            runtime, text, name=name, shared=shared, content_type=content_type, origin=origin, settings=settings
        )
    except OSError as exc:
        summary.rejected.append(Rejected(name, f"cannot read: {exc.strerror or exc}"))
        return
    except DocumentError as exc:
        summary.rejected.append(Rejected(name, exc.reason))
        return
    summary.count(result.status, result.fragment_count, result.queued)
