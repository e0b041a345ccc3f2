"""Relationship: a directed tie between two entities as one agent sees it (elizaOS ``Relationship``)."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from pydantic import Field

from core.types._base import ElizaModel


class Relationship(ElizaModel):
    """How ``source_entity_id`` relates to ``target_entity_id``, for one agent.

    There is at most one relationship per agent and direction (source, target).

    Attributes:
        id: Relationship id (random uuid4 when not given; the stored one wins on conflict).
        source_entity_id: The entity the tie goes from.
        target_entity_id: The entity the tie goes to (never the source).
        agent_id: The agent that keeps it.
        tags: Free labels (``"friend"``, ``"colleague"``...), no duplicates.
        metadata: Free-form data (JSON object).
        strength: How strong the tie is, 0 (none) to 1; ``record_interaction`` nudges it up.
        interaction_count: Interactions recorded so far.
        last_interaction_at: Milliseconds since the epoch of the last recorded interaction.
        created_at: Milliseconds since the epoch (set by the database).
        updated_at: Milliseconds since the epoch of the last change (set by the database).
    """

    id: UUID = Field(default_factory=uuid.uuid4)
    source_entity_id: UUID
    target_entity_id: UUID
    agent_id: UUID
    tags: list[str] = []
    metadata: dict[str, Any] = {}
    strength: float = Field(default=0.0, ge=0.0, le=1.0)
    interaction_count: int = Field(default=0, ge=0)
    last_interaction_at: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
