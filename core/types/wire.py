"""Records as clients write and read them: camelCase JSON, shared by the HTTP API and the CLI.

Request bodies (``MessageBody``, ``SearchBody``, ``TaskBody``) validate what a client sends;
``memory_json``, ``task_json`` and ``document_json`` are the JSON views the API answers with and
the CLI prints (docs/architecture.md "The HTTP API").
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from core.types import ChannelType, Memory, Task, TaskMetadata
from core.types.media import ContentType

#: Numbers as JSON writes them: ``true``/``false`` are not 1/0 (pydantic's lax mode would take them).
StrictInt = Annotated[int, Strict()]
#: A float that also takes an integer, never a boolean.
StrictFloat = Annotated[float, Strict()]


class ApiModel(BaseModel):
    """Base of the request bodies: camelCase JSON (snake_case accepted), unknown keys
    rejected (HTTP 422 naming the key); the validator is built on first use, not at import."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True)


#: Attachments per message, and the longest ``url`` (bytes of a ``data:`` URL count: the body's own limit, 64 KiB
#: by default, bounds them anyway).
MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_URL_CHARS = 65_536


class AttachmentBody(ApiModel):
    """One attachment of a message (elizaOS ``Media``): an ``https`` URL or a ``data:`` URL.

    ``description`` and ``text`` are what the agent fills (``IMAGE_DESCRIPTION``, ``TRANSCRIPTION``);
    a client may send them, as an elizaOS connector does for platform-provided alt text.
    """

    id: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    url: str = Field(
        min_length=1,
        max_length=MAX_ATTACHMENT_URL_CHARS,
        pattern=r"^(https://[^\s]+|data:[\w.+-]+/[\w.+-]+(;[\w=.+-]+)*,\S*)$",
    )
    title: str | None = Field(default=None, max_length=500, pattern=r"^[^\x00]*$")
    source: str | None = Field(default=None, max_length=64, pattern=r"^[^\x00]*$")
    description: str | None = Field(default=None, max_length=4000, pattern=r"^[^\x00]*$")
    text: str | None = Field(default=None, max_length=32_000, pattern=r"^[^\x00]*$")
    content_type: ContentType | None = None


class MessageBody(ApiModel):
    """``POST /agents/{agent}/messages``.

    ``messageId`` (or the ``Idempotency-Key`` header) makes the post idempotent: a retry with
    the same value stores nothing twice and gets the stored reply back.
    """

    text: str = Field(min_length=1, max_length=32_000)
    message_id: UUID | None = None
    attachments: list[AttachmentBody] = Field(default=[], max_length=MAX_ATTACHMENTS)
    entity_id: UUID | None = None
    room_id: UUID | None = None
    world_id: UUID | None = None
    source: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    user_name: str | None = Field(default=None, max_length=100)
    channel_type: ChannelType = ChannelType.DM

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be blank")
        return value


class SearchBody(ApiModel):
    """``POST /agents/{agent}/memories/search``."""

    query: str = Field(min_length=1, max_length=8_000)
    room_id: UUID | None = None
    table: str = Field(default="messages", pattern=r"^[a-z_]{1,32}$")
    count: StrictInt = Field(default=10, ge=1, le=100)  # strict: JSON true is not 1
    threshold: StrictFloat = Field(default=0.0, ge=-1.0, le=1.0)  # an integer is taken, a boolean is not


def memory_json(memory: Memory) -> dict[str, Any]:
    """A memory as the API returns it (elizaOS JSON, without the vector)."""
    return memory.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"embedding"})


# -- tasks -----------------------------------------------------------------------------------

#: A task tag: what elizaOS uses (``queue``, ``repeat``, ``immediate``...) and other labels.
TAG_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
#: The ``tags`` query parameter: tags separated by commas.
TAGS_QUERY_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}(,[A-Za-z0-9_.:-]{1,64})*$"


class TaskBody(ApiModel):
    """``POST /agents/{agent}/tasks``: an elizaOS task for the agent.

    ``metadata`` is elizaOS ``TaskMetadata`` (``updateInterval`` in ms, ``options``, any
    other keys). Without ``nextRunAt`` (ms since the epoch) the first run follows elizaOS:
    tagged ``queue``, at once (a ``repeat`` task after one interval, unless ``immediate``);
    not tagged ``queue``, never by the scheduler.
    """

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")
    description: str | None = Field(default=None, max_length=1000, pattern=r"^[^\x00]*$")
    room_id: UUID | None = None
    world_id: UUID | None = None
    entity_id: UUID | None = None
    tags: list[str] = Field(default=[], max_length=20)
    metadata: TaskMetadata = Field(default_factory=TaskMetadata, validate_default=True)
    next_run_at: StrictInt | None = Field(default=None, ge=0, le=253_402_300_799_999)  # up to year 9999

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        if any(not re.fullmatch(TAG_PATTERN, tag) for tag in tags):
            raise ValueError("each tag must be 1 to 64 letters, digits or _ . : -")
        return list(dict.fromkeys(tags))  # duplicates dropped, order kept

    @field_validator("metadata")
    @classmethod
    def _repeat_needs_interval(cls, metadata: TaskMetadata, info: ValidationInfo) -> TaskMetadata:
        # elizaOS runs a repeat task without an interval on every tick; here that would be
        # every scheduled run, which is rarely meant: ask for the interval instead.
        if "repeat" in info.data.get("tags", []) and metadata.update_interval is None:
            raise ValueError("a repeat task needs metadata.updateInterval (milliseconds)")
        return metadata


def query_tags(raw: str | None) -> list[str] | None:
    """The ``tags`` query parameter (``TAGS_QUERY_PATTERN``) as a list; ``None`` when absent."""
    return raw.split(",") if raw else None


def task_json(task: Task) -> dict[str, Any]:
    """A task as the API returns it: elizaOS fields plus the scheduler state, without the lease owner."""
    return task.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"lease_owner"})
