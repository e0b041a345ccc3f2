"""Relationships: directed ties between two entities of one agent (elizaOS ``Relationship``).

One row per agent and direction (source, target). Besides elizaOS's tags and metadata, a
relationship has a ``strength`` in [0, 1] and an ``interaction_count``, both maintained by
``record_interaction`` in a single upsert (no read-modify-write, so concurrent turns never
lose an increment).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from psycopg.errors import ForeignKeyViolation
from psycopg.types.json import Jsonb

from core.db.postgres.base import PostgresBase
from core.db.retry import idempotent
from core.types import Relationship

_MS = "(extract(epoch FROM {0}) * 1000)::bigint AS {0}"
_RELATIONSHIP_COLUMNS = (
    "id, agent_id, source_entity_id, target_entity_id, tags, metadata, strength, interaction_count, "
    + ", ".join(_MS.format(c) for c in ("last_interaction_at", "created_at", "updated_at"))
)
#: How much one interaction closes the gap to full strength, by default.
DEFAULT_INTERACTION_STEP = 0.1


def _check_pair(source_entity_id: UUID, target_entity_id: UUID) -> None:
    if source_entity_id == target_entity_id:
        raise ValueError("a relationship needs two different entities (source == target)")


def _check_unit(name: str, value: float, *, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{name} must be a number, not {value!r}")
    low_ok = value >= 0 if allow_zero else value > 0
    if not low_ok or value > 1:
        raise ValueError(f"{name} must be in {'[0' if allow_zero else '(0'}, 1], not {value!r}")
    return float(value)


def _check_tags(tags: Sequence[str]) -> list[str]:
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise ValueError("tags must be a sequence of strings")
    return list(tags)


class RelationshipsMixin(PostgresBase):
    @idempotent
    async def create_relationship(
        self,
        agent_id: UUID,
        source_entity_id: UUID,
        target_entity_id: UUID,
        *,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        strength: float | None = None,
    ) -> Relationship | None:
        """Create the relationship, or add to it when it exists (elizaOS ``createRelationship``).

        elizaOS fails on the second create of a pair; here creating again is an upsert, so
        an evaluator can state a tie every turn. On an existing pair, ``tags`` are added to
        the stored ones (stored first, no duplicates), ``metadata`` is merged per top-level
        key, ``strength`` replaces the stored one only when given; the interaction count is
        kept.

        Args:
            agent_id: The agent.
            source_entity_id: Entity the tie goes from.
            target_entity_id: Entity the tie goes to.
            tags: Labels (``"friend"``...).
            metadata: Free-form JSON object.
            strength: Initial strength in [0, 1] (0 for a new relationship when ``None``).

        Returns:
            The stored relationship; ``None`` when either entity is unknown to the agent.

        Raises:
            ValueError: source and target are the same entity, ``strength`` is outside
                [0, 1], or ``tags`` is not a sequence of strings.
        """
        _check_pair(source_entity_id, target_entity_id)
        tag_list = _check_tags(tags)
        value = None if strength is None else _check_unit("strength", strength)
        try:
            row = await self._fetch_one(
                "INSERT INTO relationships (agent_id, id, source_entity_id, target_entity_id, tags,"
                " metadata, strength)"
                " VALUES (%(a)s, %(id)s, %(s)s, %(t)s, text_array_union(%(tags)s::text[], NULL), %(m)s,"
                "  coalesce(%(st)s::float8, 0))"
                " ON CONFLICT (agent_id, source_entity_id, target_entity_id) DO UPDATE SET"
                "  tags = text_array_union(relationships.tags, excluded.tags),"
                "  metadata = jsonb_merge_per_key(relationships.metadata, excluded.metadata),"
                "  strength = coalesce(%(st)s::float8, relationships.strength),"
                "  updated_at = now()"
                f" RETURNING {_RELATIONSHIP_COLUMNS}",
                {
                    "a": agent_id,
                    "id": uuid.uuid4(),
                    "s": source_entity_id,
                    "t": target_entity_id,
                    "tags": tag_list,
                    "m": Jsonb(dict(metadata or {})),
                    "st": value,
                },
            )
        except ForeignKeyViolation:
            return None
        return Relationship.model_validate(row)

    @idempotent
    async def update_relationship(self, relationship: Relationship) -> bool:
        """Replace a relationship's tags, metadata and strength (elizaOS ``updateRelationship``).

        The relationship is found by agent, source and target (its ``id`` is not needed).
        ``interaction_count`` is left alone: only ``record_interaction`` changes it, so an
        update from a stale copy never loses interactions.

        Returns:
            True when the relationship exists; False otherwise (nothing is created).

        Raises:
            ValueError: ``strength`` is outside [0, 1] or ``tags`` is not a list of strings
                (the model is not re-validated on attribute assignment).
        """
        strength = _check_unit("strength", relationship.strength)
        tags = _check_tags(relationship.tags)
        return (
            await self._execute(
                "UPDATE relationships SET tags = text_array_union(%s::text[], NULL), metadata = %s, strength = %s,"
                " updated_at = now() WHERE agent_id = %s AND source_entity_id = %s AND target_entity_id = %s",
                (
                    tags,
                    Jsonb(relationship.metadata),
                    strength,
                    relationship.agent_id,
                    relationship.source_entity_id,
                    relationship.target_entity_id,
                ),
            )
            == 1
        )

    async def get_relationship(
        self, agent_id: UUID, source_entity_id: UUID, target_entity_id: UUID
    ) -> Relationship | None:
        """The relationship from source to target (direction matters), or ``None``."""
        row = await self._fetch_one(
            f"SELECT {_RELATIONSHIP_COLUMNS} FROM relationships"
            " WHERE agent_id = %s AND source_entity_id = %s AND target_entity_id = %s",
            (agent_id, source_entity_id, target_entity_id),
        )
        return None if row is None else Relationship.model_validate(row)

    async def get_relationships(
        self, agent_id: UUID, entity_id: UUID, tags: Sequence[str] | None = None
    ) -> list[Relationship]:
        """Relationships the entity is in, either side, strongest first (elizaOS ``getRelationships``).

        Args:
            agent_id: The agent.
            entity_id: The entity, as source or target.
            tags: Only relationships having at least one of these tags; ``None`` or empty
                means no tag filter (as elizaOS).

        Raises:
            ValueError: ``tags`` is not a sequence of strings.
        """
        tag_filter = _check_tags(tags) if tags else None
        rows = await self._fetch_all(
            f"SELECT {_RELATIONSHIP_COLUMNS} FROM relationships"
            " WHERE agent_id = %(a)s AND (source_entity_id = %(e)s OR target_entity_id = %(e)s)"
            "   AND (%(tags)s::text[] IS NULL OR tags && %(tags)s::text[])"
            " ORDER BY strength DESC, interaction_count DESC, id",
            {"a": agent_id, "e": entity_id, "tags": tag_filter},
        )
        return [Relationship.model_validate(r) for r in rows]

    async def record_interaction(
        self,
        agent_id: UUID,
        source_entity_id: UUID,
        target_entity_id: UUID,
        *,
        step: float = DEFAULT_INTERACTION_STEP,
    ) -> Relationship | None:
        """Count one interaction from source to target and strengthen the tie, in one statement.

        ``interaction_count`` goes up by one and ``strength`` moves ``step`` of the way to 1
        (``s + step * (1 - s)``: quick at first, never past 1). A pair without a
        relationship gets one (count 1, strength ``step``).

        Args:
            agent_id: The agent.
            source_entity_id: Who interacted.
            target_entity_id: With whom.
            step: Fraction of the remaining gap to full strength closed, in (0, 1].

        Returns:
            The relationship after the update; ``None`` when either entity is unknown.

        Raises:
            ValueError: source and target are the same entity, or ``step`` is outside (0, 1].
        """
        _check_pair(source_entity_id, target_entity_id)
        value = _check_unit("step", step, allow_zero=False)
        try:
            row = await self._fetch_one(
                "INSERT INTO relationships (agent_id, id, source_entity_id, target_entity_id, strength,"
                " interaction_count, last_interaction_at)"
                " VALUES (%(a)s, %(id)s, %(s)s, %(t)s, %(step)s, 1, now())"
                " ON CONFLICT (agent_id, source_entity_id, target_entity_id) DO UPDATE SET"
                "  interaction_count = relationships.interaction_count + 1,"
                "  strength = least(1, relationships.strength + %(step)s * (1 - relationships.strength)),"
                "  last_interaction_at = now(), updated_at = now()"
                f" RETURNING {_RELATIONSHIP_COLUMNS}",
                {"a": agent_id, "id": uuid.uuid4(), "s": source_entity_id, "t": target_entity_id, "step": value},
            )
        except ForeignKeyViolation:
            return None
        return Relationship.model_validate(row)
