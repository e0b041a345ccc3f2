"""Adding, replacing, reading and deleting an agent's documents (elizaOS plugin-knowledge's service).

A document is stored whole as a memory of table ``"documents"`` and split (``chunking``)
into fragments, memories of table ``"knowledge"`` with ``metadata.documentId`` and
``metadata.position``; each fragment is queued for embedding at **low** priority and becomes
searchable once the embedding worker has stored its vector.

Identity: a document with a ``name`` (a file name, a path) is identified by the owner and
the name, so adding ``notes.md`` again with new text *replaces* it; a document without a
name is identified by the owner and its content hash, so the same text is only stored once.
Adding a version that is already stored (same text, same splitting settings) changes
nothing and costs no model call. (elizaOS plugin-knowledge skips a document whose id exists
even when its text changed, so an edited file is never re-learnt, and finds a document's
fragments by loading the agent's whole ``knowledge`` table and filtering it in memory; here
a changed version replaces the old fragments, found through an index.) A private document
is owned by the agent; a shared one by ``SHARED_KNOWLEDGE_ID`` (see ``core.knowledge`` for
why), and every agent sees it.

Settings: see ``core.knowledge`` (``KNOWLEDGE_CHUNK_CHARS``, ``KNOWLEDGE_CHUNK_OVERLAP_CHARS``,
``KNOWLEDGE_MAX_DOCUMENT_BYTES``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from core.db.adapter import AgentRecord, MemoryPage
from core.errors import ConfigurationError
from core.knowledge import (
    SHARED_KNOWLEDGE_ID,
    SHARED_KNOWLEDGE_NAME,
    KnowledgeSettings,
    owner_ids,
)
from core.knowledge.chunking import normalise, split_text
from core.types import Content, Memory, MemoryMetadata, MemoryType
from core.types.memory import content_hash
from core.uuid import create_unique_uuid

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)

#: Bump when ``chunking`` changes how text is split: stored documents are then re-split on re-add.
CHUNKER_VERSION = 1
#: Longest document name (a path), characters.
MAX_NAME_CHARS = 512


class DocumentError(ValueError):
    """A document that cannot be stored: empty, not UTF-8 text, holding NUL... (HTTP 422).

    Attributes:
        reason: Why, for people (``"not UTF-8 text (byte 12)"``).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DocumentTooLargeError(DocumentError):
    """A document over ``KNOWLEDGE_MAX_DOCUMENT_BYTES`` (HTTP 413).

    Attributes:
        size: Its size, bytes.
        limit: The limit, bytes.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"document is {size} bytes; the limit is {limit} (KNOWLEDGE_MAX_DOCUMENT_BYTES)")
        self.size = size
        self.limit = limit


class DocumentStatus(StrEnum):
    """What adding a document did."""

    ADDED = "added"
    UNCHANGED = "unchanged"
    REPLACED = "replaced"


class DocumentResult(NamedTuple):
    """The outcome of ``add_document``.

    Attributes:
        document_id: The document's id.
        status: Added, unchanged or replaced.
        name: Its name, if it has one.
        shared: Whether every agent sees it.
        fragment_count: How many fragments it is split into.
        queued: Embedding requests buffered (low priority); for an unchanged document, those
            of fragments still without a vector.
        content_hash: SHA-256 of its (normalised) text.
        size: Its size, bytes of UTF-8.
    """

    document_id: UUID
    status: DocumentStatus
    name: str | None
    shared: bool
    fragment_count: int
    queued: int
    content_hash: str
    size: int


def decode_document(data: bytes, *, max_bytes: int) -> str:
    """The text of a file's bytes, checked as ``add_document`` will check it.

    Args:
        data: The file.
        max_bytes: ``KNOWLEDGE_MAX_DOCUMENT_BYTES``.

    Returns:
        The text (a UTF-8 byte-order mark dropped).

    Raises:
        DocumentTooLargeError: more than ``max_bytes``.
        DocumentError: not UTF-8, holds NUL, or blank.
    """
    if len(data) > max_bytes:
        raise DocumentTooLargeError(len(data), max_bytes)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not UTF-8 text (byte {exc.start})") from None
    return check_text(text, max_bytes=max_bytes)


def check_text(text: str, *, max_bytes: int) -> str:
    """``text`` normalised (``chunking.normalise``) once it passes the checks.

    Raises:
        DocumentTooLargeError: more than ``max_bytes`` of UTF-8.
        DocumentError: holds NUL (Postgres cannot store it), or is blank.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise DocumentTooLargeError(size, max_bytes)
    if "\x00" in text:
        raise DocumentError("holds a NUL character; is it a binary file?")
    text = normalise(text)
    if not text.strip():
        raise DocumentError("empty document")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DocumentError(f"holds an unpaired surrogate at character {exc.start}") from None
    return text


def document_id(owner_id: UUID, *, name: str | None, text_hash: str) -> UUID:
    """The id of the owner's document named ``name``, or of its unnamed document with this text."""
    key = f"knowledge-document:name:{name}" if name is not None else f"knowledge-document:sha256:{text_hash}"
    return create_unique_uuid(owner_id, key)


async def add_document(
    runtime: AgentRuntime,
    text: str,
    *,
    name: str | None = None,
    shared: bool = False,
    content_type: str = "text/plain",
    origin: str = "api",
    source: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    settings: KnowledgeSettings | None = None,
    flush: bool = True,
) -> DocumentResult:
    """Store a document for ``runtime``'s agent (or for every agent), split and queued for embedding.

    Args:
        runtime: The agent's runtime (adapter, settings, embedding queue).
        text: The document.
        name: Its name (a file name or path); identifies it, and is shown as the source of its
            fragments. Without one, the text identifies it.
        shared: Store it as shared knowledge, seen by every agent of the deployment.
        content_type: Its media type, kept in the metadata.
        origin: Where it came from (``"api"``, ``"import"``, ``"character"``), kept in the metadata.
        source: The source shown with its fragments in the prompt (default: ``name``, else ``origin``).
        metadata: The caller's own metadata, kept under ``metadata.custom``.
        settings: Splitting settings (default: the agent's ``KnowledgeSettings``).
        flush: Send the embedding requests now (``runtime.flush_embeddings``); a caller that
            adds many documents in one turn may flush once at the end instead.

    Returns:
        What was done.

    Raises:
        DocumentTooLargeError: over ``KNOWLEDGE_MAX_DOCUMENT_BYTES``.
        DocumentError: blank, holding NUL, or a bad name.
        ConfigurationError: invalid knowledge settings, or the shared owner's name is taken.
    """
    settings = settings or KnowledgeSettings.from_runtime(runtime)
    text = check_text(text, max_bytes=settings.max_document_bytes)
    name = _check_name(name)
    owner = SHARED_KNOWLEDGE_ID if shared else runtime.agent_id
    if shared:
        await _ensure_shared_owner(runtime)
    document, fragments = build_document(
        owner,
        text,
        name=name,
        shared=shared,
        content_type=content_type,
        origin=origin,
        source=source,
        metadata=metadata,
        settings=settings,
    )
    write = await runtime.adapter.upsert_knowledge_document(document, fragments)
    queued = sum(runtime.queue_embedding_generation(f, "low") for f in write.to_embed)
    if flush and queued:
        await runtime.flush_embeddings()
    return DocumentResult(
        document_id=document.id,
        status=DocumentStatus(write.status),
        name=name,
        shared=shared,
        fragment_count=len(fragments),
        queued=queued,
        content_hash=document.content_hash,
        size=len(text.encode()),
    )


def build_document(
    owner: UUID,
    text: str,
    *,
    name: str | None,
    shared: bool,
    content_type: str,
    origin: str,
    metadata: Mapping[str, Any] | None,
    settings: KnowledgeSettings,
    source: str | None = None,
) -> tuple[Memory, list[Memory]]:
    """The document memory and its fragment memories, with deterministic ids.

    Fragment ids derive from the document, the version's fingerprint and the position, so
    the same version always has the same fragments.
    """
    text_hash = content_hash(text)
    doc_id = document_id(owner, name=name, text_hash=text_hash)
    fingerprint = hashlib.sha256(
        f"{text_hash}:{settings.chunk_chars}:{settings.overlap_chars}:{CHUNKER_VERSION}".encode()
    ).hexdigest()
    chunks = split_text(text, settings.chunk_chars, settings.overlap_chars)
    scope = "shared" if shared else "private"
    source = source or name or origin
    document = Memory(
        id=doc_id,
        agent_id=owner,
        entity_id=owner,
        room_id=owner,
        content=Content(text=text, source=origin),
        metadata=MemoryMetadata.model_validate(
            {
                "type": MemoryType.DOCUMENT,
                "source": source,
                "scope": scope,
                "documentId": str(doc_id),
                "title": name,
                "contentType": content_type,
                "size": len(text.encode()),
                "origin": origin,
                "fragmentCount": len(chunks),
                "contentHash": text_hash,
                "fingerprint": fingerprint,
                "chunkChars": settings.chunk_chars,
                "overlapChars": settings.overlap_chars,
                **({"custom": dict(metadata)} if metadata else {}),
            }
        ),
    )
    fragments = [
        Memory(
            id=create_unique_uuid(owner, f"knowledge-fragment:{doc_id}:{fingerprint}:{chunk.position}"),
            agent_id=owner,
            entity_id=owner,
            room_id=owner,
            created_at=document.created_at,
            content=Content(text=chunk.text, source=origin),
            metadata=MemoryMetadata.model_validate(
                {
                    "type": MemoryType.FRAGMENT,
                    "source": source,
                    "scope": scope,
                    "documentId": str(doc_id),
                    "position": chunk.position,
                    "start": chunk.start,
                    "end": chunk.end,
                }
            ),
        )
        for chunk in chunks
    ]
    return document, fragments


async def get_document(runtime: AgentRuntime, document_id: UUID) -> Memory | None:
    """One of the agent's documents, or a shared one, with its text; ``None`` otherwise."""
    return await runtime.adapter.get_knowledge_document(owner_ids(runtime.agent_id), document_id)


async def get_fragments(runtime: AgentRuntime, document: Memory) -> list[Memory]:
    """The fragments of a document returned by ``get_document``, in order."""
    return await runtime.adapter.get_knowledge_fragments(document.agent_id, document.id)


async def list_documents(runtime: AgentRuntime, *, limit: int = 50, cursor: str | None = None) -> MemoryPage:
    """The agent's documents and the shared ones, newest first, without their text.

    Raises:
        ValueError: bad ``limit`` or ``cursor``.
    """
    return await runtime.adapter.list_knowledge_documents(owner_ids(runtime.agent_id), limit=limit, cursor=cursor)


async def delete_document(runtime: AgentRuntime, document_id: UUID) -> bool:
    """Delete one of the agent's documents, or a shared one (for every agent), with its fragments.

    Returns:
        False when the agent sees no such document (another agent's private one included).
    """
    return await runtime.adapter.delete_knowledge_document(owner_ids(runtime.agent_id), document_id)


def is_shared(document: Memory) -> bool:
    """Whether a stored document is shared knowledge."""
    return document.agent_id == SHARED_KNOWLEDGE_ID


def _check_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or "\x00" in name:
        raise DocumentError(f"a document name must be 1 to {MAX_NAME_CHARS} characters without NUL")
    return name


async def _ensure_shared_owner(runtime: AgentRuntime) -> None:
    """Create the shared knowledge owner's row (a disabled agent) unless it exists."""
    adapter = runtime.adapter
    if await adapter.get_agent(SHARED_KNOWLEDGE_ID) is not None:
        return
    record = AgentRecord(
        SHARED_KNOWLEDGE_ID,
        SHARED_KNOWLEDGE_NAME,
        {"name": SHARED_KNOWLEDGE_NAME, "system": "Owner of the shared knowledge."},
        enabled=False,
    )
    if not await adapter.create_agent(record) and await adapter.get_agent(SHARED_KNOWLEDGE_ID) is None:
        raise ConfigurationError(f"the agent name {SHARED_KNOWLEDGE_NAME!r} is taken; shared knowledge needs it")


def document_json(document: Memory, *, text: bool = False) -> dict[str, Any]:
    """A document as the API returns it (camelCase); ``text`` adds the whole text."""
    meta = document.metadata.model_extra or {}
    answer = {
        "id": str(document.id),
        "name": meta.get("title"),
        "shared": is_shared(document),
        "source": document.metadata.source,
        "contentType": meta.get("contentType"),
        "size": meta.get("size"),
        "fragmentCount": meta.get("fragmentCount"),
        "contentHash": meta.get("contentHash"),
        "origin": meta.get("origin"),
        "createdAt": document.created_at,
        "metadata": meta.get("custom"),
    }
    if text:
        answer["text"] = document.text
    return answer
