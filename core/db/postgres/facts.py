"""Facts: de-duplicated upserts, per-room consolidation and orphan removal (see ``core.memory.facts``).

Facts are memories of type ``'facts'``; ``core/db/postgres/migrations/0007_facts.sql`` adds the unique
index on (agent, room, ``metadata->>'factKey'``) that the upsert's ``ON CONFLICT`` uses. Every
statement is scoped by agent, and every bound is a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.errors import ForeignKeyViolation
from psycopg.types.json import Jsonb

from core.db.postgres.base import MEMORY_COLUMNS, PostgresBase, memory_from_row, required_row
from core.db.postgres.memories import decode_cursor, encode_cursor
from core.db.postgres.values import check_page, from_ms, to_ms
from core.db.retry import idempotent
from core.errors import NotFoundError
from core.types.fact import FACTS_TABLE, MAX_EVIDENCE, Fact, FactWrite, OrphanSweep
from core.types.memory import now_ms

#: A fact's stored confidence; NULL when missing or not a number (facts written by other code).
_CONFIDENCE = (
    "CASE WHEN jsonb_typeof({0}.metadata -> 'confidence') = 'number' THEN ({0}.metadata ->> 'confidence')::float8 END"
)
#: When a fact was last confirmed, ms since the epoch (its creation when never confirmed).
_LAST_SEEN_MS = (
    "coalesce(CASE WHEN jsonb_typeof({0}.metadata -> 'lastSeenAt') = 'number'"
    " THEN ({0}.metadata ->> 'lastSeenAt')::float8 END, extract(epoch FROM {0}.created_at) * 1000)"
)
_STORED = _CONFIDENCE.format("m")
_EVIDENCE = "coalesce(m.metadata -> 'evidence', '[]'::jsonb)"

_UPSERT_FACT = (
    "INSERT INTO memories AS m (id, agent_id, type, room_id, world_id, entity_id, content, metadata, content_hash,"
    ' "unique", created_at)'
    " VALUES (%(id)s, %(agent)s, %(table)s, %(room)s,"
    "  coalesce(%(world)s::uuid, (SELECT world_id FROM rooms WHERE agent_id = %(agent)s AND id = %(room)s)),"
    "  %(entity)s, %(content)s, %(metadata)s, %(hash)s, true, %(created)s)"
    " ON CONFLICT (agent_id, room_id, (metadata ->> 'factKey')) WHERE type = 'facts' DO UPDATE SET metadata ="
    # Evidence already counted (a retry, a second reading of the same message): unchanged.
    f"  CASE WHEN {_EVIDENCE} ? %(evidence)s THEN m.metadata"
    "   ELSE m.metadata || jsonb_build_object("
    f"    'confidence', least(1.0, coalesce({_STORED}, 0) + %(confidence)s * (1 - coalesce({_STORED}, 0))),"
    "    'mentions', CASE WHEN jsonb_typeof(m.metadata -> 'mentions') = 'number'"
    "                THEN (m.metadata ->> 'mentions')::int + 1 ELSE 2 END,"
    "    'lastSeenAt', %(now)s::bigint,"
    # The evidence list keeps its last MAX_EVIDENCE ids, the new one included.
    "    'evidence', (SELECT coalesce(jsonb_agg(e.v ORDER BY e.i), '[]'::jsonb)"
    f"      FROM jsonb_array_elements({_EVIDENCE} || jsonb_build_array(%(evidence)s::text)) WITH ORDINALITY AS e(v, i)"
    f"      WHERE e.i > jsonb_array_length({_EVIDENCE}) + 1 - %(max_evidence)s))"
    "  END"
    f" RETURNING {MEMORY_COLUMNS}"
)

_FACT_ROOMS_SINCE = (
    "SELECT room_id, max(created_at) AS newest FROM memories"
    " WHERE agent_id = %(agent)s AND type = %(table)s AND created_at >= %(since)s"
    " GROUP BY room_id ORDER BY newest, room_id LIMIT %(limit)s"
)

# Rank a room's facts by score = confidence × 0.5^(age since last confirmed / half-life), best
# first (ties: most recently confirmed, then id), and delete the worst beyond `keep`, at most
# `limit` of them (the worst first, so a bounded run removes the right ones).
_DELETE_EXCESS = (
    "WITH ranked AS ("
    "  SELECT m.id, row_number() OVER (ORDER BY"
    f"    coalesce({_STORED}, %(default_confidence)s)"
    f"      * power(0.5, greatest(0, %(now)s - {_LAST_SEEN_MS.format('m')}) / %(half_life)s) DESC,"
    f"    {_LAST_SEEN_MS.format('m')} DESC, m.id) AS rank"
    "  FROM memories m WHERE m.agent_id = %(agent)s AND m.room_id = %(room)s AND m.type = %(table)s"
    "), doomed AS (SELECT id FROM ranked WHERE rank > %(keep)s ORDER BY rank DESC LIMIT %(limit)s)"
    " DELETE FROM memories d USING doomed WHERE d.agent_id = %(agent)s AND d.id = doomed.id"
)

_UUID_RE = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# One window of the agent's facts in (created_at, id) order after the cursor; among them,
# those about (entity_id) or naming (objectEntityId) an entity the agent no longer has are
# deleted. The agent itself has no entities row and is never an orphan. The CASE keeps the
# uuid cast away from text that is not a uuid.
_DELETE_ORPHANS = (
    "WITH scan AS ("
    "  SELECT m.id, m.created_at, m.entity_id,"
    f"   CASE WHEN m.metadata ->> 'objectEntityId' ~ '{_UUID_RE}' THEN (m.metadata ->> 'objectEntityId')::uuid END"
    "     AS object_entity_id"
    "  FROM memories m WHERE m.agent_id = %(agent)s AND m.type = %(table)s"
    "   AND (%(after_at)s::timestamptz IS NULL OR (m.created_at, m.id) > (%(after_at)s, %(after_id)s::uuid))"
    "  ORDER BY m.created_at, m.id LIMIT %(scan)s"
    "), orphan AS ("
    "  SELECT s.id FROM scan s WHERE"
    "   (s.entity_id <> %(agent)s AND NOT EXISTS"
    "     (SELECT 1 FROM entities e WHERE e.agent_id = %(agent)s AND e.id = s.entity_id))"
    "   OR (s.object_entity_id IS NOT NULL AND s.object_entity_id <> %(agent)s AND NOT EXISTS"
    "     (SELECT 1 FROM entities e WHERE e.agent_id = %(agent)s AND e.id = s.object_entity_id))"
    "), gone AS ("
    "  DELETE FROM memories d USING orphan o WHERE d.agent_id = %(agent)s AND d.id = o.id RETURNING d.id"
    ")"
    " SELECT (SELECT count(*) FROM scan) AS scanned, (SELECT count(*) FROM gone) AS deleted,"
    "  last.created_at AS last_at, last.id AS last_id"
    " FROM (SELECT 1) AS one"
    " LEFT JOIN LATERAL (SELECT created_at, id FROM scan ORDER BY created_at DESC, id DESC LIMIT 1) last ON true"
)


class FactsMixin(PostgresBase):
    async def upsert_facts(self, facts: Sequence[Fact]) -> list[FactWrite]:
        """Store facts, each new one as a memory, each known one by raising its confidence.

        One transaction and one round trip (pipelined ``executemany``). A fact is known when
        its room already has a fact with the same ``Fact.key``; then its confidence becomes
        ``c + c_new × (1 − c)`` (at most 1), ``mentions`` goes up by one and ``lastSeenAt``
        is now, unless this evidence (``Fact.evidence_id``) was already counted, in which
        case nothing changes. Text, triple and entity of a known fact are kept (so is its
        vector). Safe to retry: a re-run counts no evidence twice.

        Args:
            facts: Facts to store, each scoped by its own ``agent_id``.

        Returns:
            One ``FactWrite`` per fact, in order: the fact as stored, and whether it was new.

        Raises:
            NotFoundError: a fact's room is unknown to its agent (nothing is stored).
        """
        if not facts:
            return []
        now = now_ms()
        params = [self._fact_params(fact, now) for fact in facts]
        try:
            async with self._transaction() as conn, conn.cursor() as cur:
                await cur.executemany(_UPSERT_FACT, params, returning=True)
                rows = [required_row(await cur.fetchone()) async for _ in cur.results()]
        except ForeignKeyViolation as exc:
            raise NotFoundError(f"unknown room for facts of agent {facts[0].agent_id}") from exc
        return [
            FactWrite(fact=Fact.from_memory(memory_from_row(row)), created=row["id"] == fact.id)
            for fact, row in zip(facts, rows, strict=True)
        ]

    @staticmethod
    def _fact_params(fact: Fact, now: int) -> dict[str, Any]:
        memory = fact.to_memory()
        return {
            "id": memory.id,
            "agent": memory.agent_id,
            "table": FACTS_TABLE,
            "room": memory.room_id,
            "world": memory.world_id,
            "entity": memory.entity_id,
            "content": Jsonb(memory.content.to_json_dict()),
            "metadata": Jsonb(memory.metadata.to_json_dict()),
            "hash": memory.content_hash,
            "created": from_ms(memory.created_at, "created_at"),
            "evidence": fact.evidence_id,
            "confidence": fact.confidence,
            "now": now,
            "max_evidence": MAX_EVIDENCE,
        }

    async def get_fact_rooms_since(self, agent_id: UUID, since_ms: int, limit: int = 100) -> list[tuple[UUID, int]]:
        """Rooms that got facts created at or after ``since_ms``, by their newest such fact (oldest first).

        Reads only the facts created since then (``memories_type_keyset`` range), so a
        consolidation run that remembers where it stopped reads each new fact about once.

        Args:
            agent_id: The agent.
            since_ms: Lower bound on ``created_at``, ms since the epoch (inclusive).
            limit: Most rooms, 1 to ``MAX_PAGE_SIZE``.

        Returns:
            ``(room_id, newest_created_ms)`` pairs, ``newest_created_ms`` ascending.

        Raises:
            ValueError: invalid ``limit`` or ``since_ms``.
        """
        check_page(limit)
        rows = await self._fetch_all(
            _FACT_ROOMS_SINCE,
            {
                "agent": agent_id,
                "table": FACTS_TABLE,
                "since": from_ms(since_ms, "since_ms"),
                "limit": limit,
            },
        )
        return [(r["room_id"], to_ms(r["newest"])) for r in rows]

    @idempotent  # converges: a re-run after a lost connection finds the room already trimmed
    async def delete_excess_facts(
        self,
        agent_id: UUID,
        room_id: UUID,
        *,
        keep: int,
        half_life_ms: float,
        limit: int,
        default_confidence: float = 0.5,
    ) -> int:
        """Keep a room's ``keep`` best facts and delete the worst of the rest, at most ``limit``.

        A fact's score is ``confidence × 0.5^(age / half_life_ms)``, ``age`` being the time
        since it was last confirmed (``lastSeenAt``, else its creation): with a 30-day
        half-life, a fact confirmed today at 0.5 (score 0.5) outranks one last confirmed 30
        days ago at 0.9 (score 0.45). Ties go to the most recently confirmed, then the id.

        Args:
            agent_id: The agent.
            room_id: The room.
            keep: Facts kept, 1 or more.
            half_life_ms: Age that halves a score, in ms (> 0).
            limit: Most facts deleted by this call, 1 to ``MAX_PAGE_SIZE`` (the worst first).
            default_confidence: Score basis of facts stored without a confidence.

        Returns:
            How many facts were deleted (0 when the room has ``keep`` or fewer).

        Raises:
            ValueError: a bound is out of range.
        """
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an integer >= 1, got {keep!r}")
        if not half_life_ms > 0:
            raise ValueError(f"half_life_ms must be > 0, got {half_life_ms!r}")
        check_page(limit)
        return await self._execute(
            _DELETE_EXCESS,
            {
                "agent": agent_id,
                "room": room_id,
                "table": FACTS_TABLE,
                "keep": keep,
                "limit": limit,
                "half_life": float(half_life_ms),
                "now": float(now_ms()),
                "default_confidence": default_confidence,
            },
        )

    @idempotent  # converges: a re-run finds the orphans already gone
    async def delete_orphan_facts(
        self, agent_id: UUID, *, cursor: str | None = None, scan_limit: int = 500
    ) -> OrphanSweep:
        """Delete facts about, or naming, entities the agent no longer has; one bounded window per call.

        Relationships and components need no such sweep: their entity columns are foreign
        keys with ``ON DELETE CASCADE`` (``0002_components_relationships.sql``), so they go
        with their entity. A fact's entities are not foreign keys (a fact's ``entity_id`` may
        be the agent, which has no entities row), hence this sweep.

        Args:
            agent_id: The agent.
            cursor: ``next_cursor`` of the previous window; ``None`` starts from the oldest fact.
            scan_limit: Facts looked at by this call, 1 to ``MAX_PAGE_SIZE``.

        Returns:
            Facts scanned and deleted, and where the next window starts.

        Raises:
            ValueError: invalid ``scan_limit`` or ``cursor``.
        """
        check_page(scan_limit)
        after_at: datetime | None = None
        after_id: UUID | None = None
        if cursor is not None:
            after_at, after_id = decode_cursor(cursor)
        row = await self._fetch_row(
            _DELETE_ORPHANS,
            {
                "agent": agent_id,
                "table": FACTS_TABLE,
                "after_at": after_at,
                "after_id": after_id,
                "scan": scan_limit,
            },
        )
        full = row["scanned"] == scan_limit and row["last_at"] is not None
        return OrphanSweep(
            scanned=row["scanned"],
            deleted=row["deleted"],
            next_cursor=encode_cursor(row["last_at"], row["last_id"]) if full else None,
        )


__all__ = ["FactsMixin"]
