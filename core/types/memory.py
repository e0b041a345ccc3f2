"""Memory and Content (elizaOS ``types/memory.ts``, ``types/primitives.ts``)."""

from __future__ import annotations

import hashlib
import time
import uuid
from enum import StrEnum
from uuid import UUID

from pydantic import Field

from core.types._base import ElizaModel
from core.types.media import Media


class MemoryType(StrEnum):
    """elizaOS ``MemoryType``, stored in ``memories.type`` together with the table name."""

    MESSAGE = "message"
    DOCUMENT = "document"
    FRAGMENT = "fragment"
    DESCRIPTION = "description"
    CUSTOM = "custom"


class Content(ElizaModel):
    """What a message says. Open-ended: unknown keys are kept.

    Attributes:
        text: The text shown to people.
        thought: The agent's private reasoning for this content.
        actions: Action names the agent chose (e.g. ``["REPLY"]``).
        providers: Provider names the agent asked for.
        source: Where the content came from (``"api"``, ``"discord"``...).
        in_reply_to: Id of the memory this content answers.
        channel_type: The room's ``ChannelType`` when the message arrived.
        attachments: Images, audio, documents or links sent with it (elizaOS ``Media``).
    """

    text: str | None = None
    thought: str | None = None
    actions: list[str] | None = None
    providers: list[str] | None = None
    source: str | None = None
    in_reply_to: UUID | None = None
    channel_type: str | None = None
    attachments: list[Media] | None = None


class MemoryMetadata(ElizaModel):
    """elizaOS ``MemoryMetadata``: type, scope and origin of a memory."""

    type: MemoryType = MemoryType.MESSAGE
    source: str | None = None
    scope: str | None = None
    timestamp: int | None = None


def now_ms() -> int:
    """Current time in milliseconds since the epoch (elizaOS's ``createdAt`` unit)."""
    return time.time_ns() // 1_000_000


class Memory(ElizaModel):
    """One stored item: a message, a document, a fragment, a fact...

    Attributes:
        id: Memory id (random uuid4 when not given).
        entity_id: Who said it.
        agent_id: The agent whose memory this is.
        room_id: Where it was said.
        world_id: The room's world, if any.
        content: What was said.
        created_at: Milliseconds since the epoch.
        embedding: The vector once computed (never required: embeddings arrive later, via SQS).
        similarity: Set by vector search: ``1 - cosine distance``.
        unique: elizaOS flag for de-duplication on insert.
        metadata: Type, source and scope.
    """

    id: UUID = Field(default_factory=uuid.uuid4)
    entity_id: UUID
    agent_id: UUID
    room_id: UUID
    world_id: UUID | None = None
    content: Content
    created_at: int = Field(default_factory=now_ms)
    embedding: list[float] | None = None
    similarity: float | None = None
    unique: bool = True
    metadata: MemoryMetadata = Field(default_factory=MemoryMetadata)

    @property
    def text(self) -> str:
        """``content.text`` or the empty string."""
        return self.content.text or ""

    @property
    def content_hash(self) -> str:
        """SHA-256 hex of the text: the embedding worker's idempotency key."""
        return content_hash(self.text)


def content_hash(text: str) -> str:
    """SHA-256 hex digest of ``text`` (UTF-8)."""
    return hashlib.sha256(text.encode()).hexdigest()
