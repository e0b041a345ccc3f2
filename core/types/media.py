"""Media: an attachment of a message (elizaOS ``Media`` and ``ContentType``, ``types/primitives.ts``)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from core.types._base import ElizaModel

if TYPE_CHECKING:
    from core.types.memory import Memory


class ContentType(StrEnum):
    """elizaOS ``ContentType``: what kind of media an attachment is."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    LINK = "link"


class Media(ElizaModel):
    """One attachment (``content.attachments[]``), as elizaOS clients send it.

    Attributes:
        id: The attachment's id, unique within the message (a platform id or a uuid).
        url: Where it is: ``https://...`` or a ``data:<mime>;base64,...`` URL.
        title: Its name (a file name, a link title).
        source: Where it came from (``"discord"``, ``"Image"``...).
        description: What it shows or says, e.g. from ``IMAGE_DESCRIPTION`` (filled by the agent).
        text: Its text, e.g. a ``TRANSCRIPTION`` or a document's content (filled by the agent).
        content_type: image, video, audio, document or link (``contentType`` on the wire).
    """

    id: str
    url: str
    title: str | None = None
    source: str | None = None
    description: str | None = None
    text: str | None = None
    content_type: ContentType | None = None


def attachments_of(memory: Memory) -> list[Media]:
    """The memory's attachments (``[]`` when it has none)."""
    return list(memory.content.attachments or [])
