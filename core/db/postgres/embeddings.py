"""Embeddings: vectors stored beside memories, written by the worker, searched by cosine.

Layout (``core/db/postgres/migrations/0004_embedding_dimensions.sql``): one ``embeddings`` row per
memory, with one nullable column per supported dimension (``dim_384`` ... ``dim_3072``), each
with its own HNSW cosine index, and copies of the memory's filter columns (``agent_id``,
``type``, ``room_id``, ``world_id``, ``entity_id``) so a filtered search never joins
``memories`` before the top rows are known.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

import psycopg
from pgvector import HalfVector, Vector
from psycopg import sql
from psycopg.rows import DictRow

from core.db.adapter import EMBEDDING_DIMENSIONS, EmbeddingRow, EmbeddingTarget
from core.db.postgres.base import MEMORY_COLUMNS, PostgresBase, memory_from_row
from core.db.postgres.values import check_page
from core.errors import ConfigurationError
from core.types import Memory

#: Reciprocal-rank-fusion constant (Cormack et al., 2009): damps the weight of the top ranks.
RRF_K = 60
#: Text search configuration of the re-rank (stemming and stop words of English).
TEXT_SEARCH_CONFIG = "english"
#: The re-rank's ``text_score`` column of a candidate memory ``m``: ``ts_rank_cd`` of its text
#: against any word of ``%(text)s`` (words OR-ed, so one matching word is enough), 0 without one.
TEXT_SCORE = sql.SQL(
    ", ts_rank_cd(to_tsvector(%(config)s::regconfig, coalesce(m.content->>'text', '')),"
    " replace(plainto_tsquery(%(config)s::regconfig, %(text)s)::text, ' & ', ' | ')::tsquery) AS text_score"
)


class _VectorColumn(NamedTuple):
    """Where vectors of one dimension live: the column and its pgvector type."""

    name: str
    pg_type: str  # "vector", or "halfvec" above HNSW's 2,000-dimension limit for vector

    def literal(self, values: Sequence[float]) -> Vector | HalfVector:
        # A plain list: pgvector needs no numpy for it, and numpy is not a runtime dependency.
        floats = [float(v) for v in values]
        return HalfVector(floats) if self.pg_type == "halfvec" else Vector(floats)


#: The allow-list of vector columns: SQL identifiers come from here only.
_COLUMNS: dict[int, _VectorColumn] = {
    dim: _VectorColumn(f"dim_{dim}", "halfvec" if dim > 2000 else "vector") for dim in EMBEDDING_DIMENSIONS
}


def vector_column(dimension: int) -> _VectorColumn:
    """The column (and pgvector type) of vectors of ``dimension``.

    Raises:
        ConfigurationError: ``dimension`` is not one of ``EMBEDDING_DIMENSIONS``.
    """
    try:
        return _COLUMNS[dimension]
    except KeyError:
        raise ConfigurationError(
            f"EMBEDDING_DIMENSION={dimension} is not supported; use one of {', '.join(map(str, EMBEDDING_DIMENSIONS))}"
        ) from None


class EmbeddingsMixin(PostgresBase):
    """Vector storage and search (its HNSW knobs are ``PostgresBase``'s attributes, and these).

    Attributes:
        hnsw_ef_search_rows: Vectors in the searched agent's partition up to which
            ``hnsw_ef_search`` is used as is. A bigger graph needs a longer candidate list for
            the same recall: ``hnsw.ef_search`` grows as ``hnsw_ef_search * sqrt(rows /
            hnsw_ef_search_rows)``, from the partition's row estimate (``pg_class.reltuples``).
            Measured by ``bench/vector_search.py`` (384-d, m 16, ef_construction 64, top-10
            through the adapter, shared 2-core machine): 200,000 vectors over 50 agents (12-32k
            rows per partition, ef 64-97) keep recall@10 1.0 at the p50 of a fixed 64 (2.09
            against 2.06 ms); one agent of 200,000 gets 242: recall@10 0.956 at p50 4.96 ms,
            where the fixed 64 gave 0.830 (3.49 ms).
        hnsw_ef_search_max: The most ``hnsw.ef_search`` a search uses (pgvector allows 1,000).
        hnsw_ef_search_ttl_s: Seconds an agent's ``hnsw.ef_search`` is kept by this adapter
            (a partition's size changes slowly). The value is computed by the server in the
            search's own round trip the first time (``_SEARCH_SETTINGS_LOOKUP``, ~0.1 ms more),
            then sent as a literal.
    """

    hnsw_ef_search_rows: int = 14_000
    hnsw_ef_search_max: int = 400
    hnsw_ef_search_ttl_s: float = 600.0

    def _vector_column(self) -> _VectorColumn:
        return vector_column(self.embedding_dimension)

    async def get_embedding_targets(self, memory_ids: Sequence[UUID]) -> list[EmbeddingTarget]:
        """Current text and embedding state of the memories that still exist.

        Args:
            memory_ids: Memories to look up (missing ones are left out of the result).

        Returns:
            One target per existing memory; ``embedded_hash`` is ``None`` unless a vector of
            the configured dimension is stored (a vector from a previous model of another
            dimension does not count: it must be recomputed).

        Raises:
            ConfigurationError: ``embedding_dimension`` is not a supported dimension.
        """
        column = sql.Identifier(self._vector_column().name)
        query = sql.SQL(
            "SELECT m.id, m.agent_id, coalesce(m.content->>'text', '') AS text, m.content_hash,"
            " CASE WHEN e.{column} IS NOT NULL THEN e.content_hash END AS embedded_hash"
            " FROM memories m LEFT JOIN embeddings e ON e.memory_id = m.id AND e.agent_id = m.agent_id"
            " WHERE m.id = ANY(%s)"
        ).format(column=column)
        rows = await self._fetch_all(query, (list(memory_ids),))
        return [
            EmbeddingTarget(
                memory_id=r["id"],
                agent_id=r["agent_id"],
                text=r["text"],
                content_hash=r["content_hash"],
                embedded_hash=r["embedded_hash"],
            )
            for r in rows
        ]

    async def upsert_embeddings(self, rows: Sequence[EmbeddingRow]) -> int:
        """Store vectors in one round trip; a vector for text that changed since is not written.

        Idempotent: a row identical to the stored one (same hash, model and vector) is not
        rewritten, so an SQS redelivery does not churn the HNSW index. Storing a vector clears
        the memory's vector of any other dimension (it came from an earlier model). The
        memory's filter columns are copied from ``memories`` in the same statement.

        Args:
            rows: Vectors to store; for a memory listed twice, the last row wins.

        Returns:
            Number of rows inserted or changed.

        Raises:
            EmbeddingDimensionError: a vector's length is not ``embedding_dimension``
                (nothing is written: unlike elizaOS, a vector is never silently dropped).
            ConfigurationError: ``embedding_dimension`` is not a supported dimension.
        """
        for row in rows:
            self.check_dimension(row.vector)
        column = self._vector_column()
        # ON CONFLICT cannot touch one row twice in a statement: keep the last row per memory.
        batch = list({row.memory_id: row for row in rows}.values())
        if not batch:
            return 0
        return await self._execute(
            _upsert_sql(column),
            (
                [r.memory_id for r in batch],
                [r.agent_id for r in batch],
                [r.content_hash for r in batch],
                [r.model for r in batch],
                [column.literal(r.vector) for r in batch],
            ),
        )

    async def get_pending_embeddings(
        self, older_than_s: float, limit: int, *, max_age_s: float = 86_400.0, max_requeues: int | None = None
    ) -> list[Memory]:
        """Memories still without a vector of their current text, for the scheduled sweep to re-queue.

        Deliberately across agents (the sweep serves the deployment); each memory carries its
        ``agent_id``. A memory counts as pending when it has text, was created between
        ``max_age_s`` and ``older_than_s`` ago, is not of a ``NEVER_EMBEDDED`` table, has no
        vector of the configured dimension made from its current text (a vector of older text,
        or of another model's dimension, does not count), and, if the sweep queued this text
        before (``record_embedding_requeues``), was last queued at least ``older_than_s`` ago and
        was not given up. The scan is bounded by that window, on the ``memories_created`` index,
        and by ``limit``; the oldest come first.

        With ``max_requeues``, a memory already queued that many times is not returned: it is
        marked failed in the same statement (``knowledge_embedding_counts`` counts it so) and
        never looked at again, so a text the model refuses costs one slot of one run, not every run.

        Args:
            older_than_s: Least age, seconds, of the memory and of its last re-queue
                (``HousekeepingSettings.requeue_after_s``): younger requests are probably still queued.
            limit: Most memories returned, 1 to ``MAX_PAGE_SIZE``.
            max_age_s: Greatest age, seconds (``EMBEDDING_PENDING_MAX_AGE_S``).
            max_requeues: Re-queues of one text before it is failed (``EMBEDDING_MAX_REQUEUES``);
                ``None``: no limit.

        Returns:
            The memories, oldest first.

        Raises:
            ValueError: invalid ``limit``, ages (``0 <= older_than_s < max_age_s``) or ``max_requeues`` (< 1).
            ConfigurationError: ``embedding_dimension`` is not a supported dimension.
        """
        check_page(limit)
        if not 0 <= older_than_s < max_age_s:
            raise ValueError(f"need 0 <= older_than_s < max_age_s, got {older_than_s!r} and {max_age_s!r}")
        if max_requeues is not None and max_requeues < 1:
            raise ValueError(f"max_requeues must be at least 1, got {max_requeues!r}")
        query = _pending_sql(self._vector_column())
        rows = await self._fetch_all(
            query,
            {
                "older": float(older_than_s),
                "max_age": float(max_age_s),
                "limit": limit,
                "never_embedded": list(NEVER_EMBEDDED),
                "max_requeues": max_requeues,
            },
        )
        return [memory_from_row(r) for r in rows]

    async def record_embedding_requeues(self, memories: Sequence[Memory]) -> None:
        """Note that the sweep queued these memories again now (one statement).

        Counts one more attempt for a memory whose text was queued before, and starts again
        from one for an edited text (its ``content_hash`` changed). Not retried after a lost
        connection (``core.db.retry``): a second run would count the attempt twice.

        Args:
            memories: Memories whose request SQS accepted.
        """
        if not memories:
            return
        await self._execute(
            "INSERT INTO embedding_requeues (memory_id, content_hash, attempts, queued_at)"
            " SELECT b.id, b.hash, 1, now() FROM unnest(%s::uuid[], %s::text[]) AS b(id, hash)"
            " JOIN memories m ON m.id = b.id"  # a memory deleted meanwhile is skipped, not a foreign key error
            " ON CONFLICT (memory_id) DO UPDATE SET queued_at = now(), failed_at = NULL,"
            "   attempts = CASE WHEN embedding_requeues.content_hash = excluded.content_hash"
            "                   THEN embedding_requeues.attempts + 1 ELSE 1 END,"
            "   content_hash = excluded.content_hash",
            ([m.id for m in memories], [m.content_hash for m in memories]),
        )

    async def search_memories(
        self,
        agent_id: UUID,
        embedding: Sequence[float],
        *,
        table: str | None = None,
        room_id: UUID | None = None,
        world_id: UUID | None = None,
        entity_id: UUID | None = None,
        count: int = 10,
        match_threshold: float = 0.0,
        query_text: str | None = None,
    ) -> list[Memory]:
        """Memories of one agent most similar to ``embedding`` (cosine), best first.

        Runs on the HNSW index of the configured dimension with pgvector's iterative scan
        (``relaxed_order``), so a selective filter still fills ``count`` results; the rows
        found are re-sorted by exact distance.

        With ``query_text``, the ``rerank_pool * count`` nearest candidates are re-ranked by
        reciprocal-rank fusion of their vector rank and their full-text rank:
        ``score = 1 / (RRF_K + vector_rank) + 1 / (RRF_K + text_rank)``, ranks starting at 1,
        ``text_rank`` ordering the candidates that match any word of ``query_text`` by
        ``ts_rank_cd`` over ``content.text`` (a candidate matching no word gets no text term).

        Args:
            agent_id: Only this agent's memories are searched.
            embedding: Query vector of length ``embedding_dimension``.
            table: elizaOS table name to search (``"messages"``...); all tables when ``None``.
            room_id: Restrict to one room.
            world_id: Restrict to one world.
            entity_id: Restrict to what one entity said.
            count: Most results (at least 1).
            match_threshold: Least similarity (``1 - cosine distance``, -1 to 1) a result
                must have.
            query_text: The query's text, to re-rank candidates by words as well.

        Returns:
            At most ``count`` memories with ``similarity`` set, best first.

        Raises:
            EmbeddingDimensionError: the query vector has the wrong length.
            ValueError: ``count`` is less than 1.
            ConfigurationError: ``embedding_dimension`` is not a supported dimension.
        """
        self.check_dimension(embedding)
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        column = self._vector_column()
        filters: dict[str, Any] = {"type": table, "room_id": room_id, "world_id": world_id, "entity_id": entity_id}
        active = {name: value for name, value in filters.items() if value is not None}
        limit = count * self.rerank_pool if query_text else count
        params: dict[str, Any] = {
            "q": column.literal(embedding),
            "agent": agent_id,
            "limit": limit,
            "threshold": match_threshold,
            "text": query_text,
            "config": TEXT_SEARCH_CONFIG,
            **active,
        }
        query = _search_sql(column, list(active), rerank=bool(query_text))
        rows = await self._fetch_searched(query, params, agent_id)
        if query_text:
            rows = fuse_ranks(rows)
        return [memory_from_row(r) for r in rows[:count]]

    async def _fetch_searched(self, query: sql.Composed, params: dict[str, Any], agent_id: UUID) -> list[DictRow]:
        """``query``'s rows after the search settings of ``agent_id``'s partition, in one round trip.

        As ``PostgresBase._fetch_all(local=...)`` (BEGIN, ``set_config(..., true)``, the query
        and COMMIT pipelined behind one Sync: nothing outlives the transaction to pin an RDS
        Proxy connection), except that ``hnsw.ef_search`` is the agent's: known, or computed
        by the server from the partition's size (``_SEARCH_SETTINGS_LOOKUP``) and kept.

        Raises:
            psycopg.Error: a statement failed (the transaction is rolled back first).
        """
        known: dict[UUID, tuple[float, int]] = vars(self).setdefault("_ef_search_by_agent", {})
        now = time.monotonic()
        entry = known.get(agent_id)
        ef = entry[1] if entry is not None and entry[0] > now else None
        base_ef = self.hnsw_ef_search if ef is None else ef
        settings = {
            "agent": agent_id,
            "ef": base_ef,
            "ef_rows": self.hnsw_ef_search_rows,
            "ef_max": max(self.hnsw_ef_search, self.hnsw_ef_search_max),
            "max_scan": str(self.hnsw_max_scan_tuples),
        }
        async with self.pool.connection() as conn:
            try:
                async with conn.pipeline():
                    await conn.execute("BEGIN")
                    chosen = await conn.execute(
                        _SEARCH_SETTINGS_LOOKUP if ef is None else _SEARCH_SETTINGS_KNOWN, settings
                    )
                    cursor = await conn.execute(query, params)
                    await conn.execute("COMMIT")
            except psycopg.Error:
                await conn.rollback()
                raise
            rows = await cursor.fetchall()
            if ef is None:
                if len(known) >= _MOST_KNOWN_AGENTS:  # a bound, not an LRU: agents are few
                    known.clear()
                row = await chosen.fetchone()
                known[agent_id] = (now + self.hnsw_ef_search_ttl_s, int(row["ef_search"]) if row else base_ef)
            return rows


#: Most agents whose ``hnsw.ef_search`` an adapter keeps before starting over.
_MOST_KNOWN_AGENTS = 10_000
#: The settings of one search, for its transaction only: pgvector's iterative scan (a
#: selective filter still fills the LIMIT), bounded by ``hnsw.max_scan_tuples``, and
#: ``hnsw.ef_search``.
_SETTINGS_PREFIX = (
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true) AS iterative_scan,"
    " set_config('hnsw.max_scan_tuples', %(max_scan)s, true) AS max_scan_tuples,"
)
_SEARCH_SETTINGS_KNOWN = sql.SQL(_SETTINGS_PREFIX + " set_config('hnsw.ef_search', %(ef)s::text, true) AS ef_search")
#: As ``_SEARCH_SETTINGS_KNOWN``, with ``hnsw.ef_search`` by the size of the agent's partition
#: (``EmbeddingsMixin``): the partition whose hash bounds the agent id satisfies, found in the
#: catalog (never a scan of embeddings, whose rows of one agent may be far apart), and its
#: ``reltuples`` (-1 before the first ANALYZE). Unpartitioned: the base value.
_SEARCH_SETTINGS_LOOKUP = sql.SQL(
    _SETTINGS_PREFIX + " set_config('hnsw.ef_search', coalesce(("
    "   SELECT least(%(ef_max)s, greatest(%(ef)s, ceil(%(ef)s * sqrt(greatest(c.reltuples, 0) / %(ef_rows)s))))"
    "   FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,"
    "   LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), 'modulus (\\d+), remainder (\\d+)') AS b(m)"
    "   WHERE i.inhparent = 'embeddings'::regclass"
    "     AND satisfies_hash_partition('embeddings'::regclass, b.m[1]::int, b.m[2]::int, %(agent)s::uuid)"
    " ), %(ef)s)::int::text, true) AS ef_search"
)


def fuse_ranks(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order candidates by reciprocal-rank fusion of vector and text ranks.

    Args:
        rows: Candidates ordered by cosine distance (best first), each with ``text_score``
            (``ts_rank_cd``; 0 when no word matches).

    Returns:
        The same rows, best fused score first (ties keep vector order).
    """
    by_text = sorted((i for i, r in enumerate(rows) if r["text_score"] > 0), key=lambda i: -rows[i]["text_score"])
    text_rank = {i: rank for rank, i in enumerate(by_text, start=1)}

    def score(i: int) -> float:
        fused = 1 / (RRF_K + i + 1)
        if i in text_rank:
            fused += 1 / (RRF_K + text_rank[i])
        return fused

    return [rows[i] for i in sorted(range(len(rows)), key=lambda i: (-score(i), i))]


#: Tables whose memories are never embedded, so the sweep never re-queues them: a document's
#: fragments are embedded instead of its whole text, and action results are a log.
NEVER_EMBEDDED = ("documents", "action_results")


def _pending_sql(column: _VectorColumn) -> sql.Composed:
    """``get_pending_embeddings``'s statement for vectors in ``column``.

    Params ``older``, ``max_age``, ``limit``, ``never_embedded``, ``max_requeues`` (NULL: no limit).
    """
    # OFFSET 0 keeps NOT EXISTS a per-row probe of the embeddings primary key (pruned to the
    # memory's partition at run time) while the window is read in created_at order, so the
    # scan stops at LIMIT. As an anti-join, the planner hashes every embeddings row instead:
    # measured with 200,000 memories over 30 days (99% embedded), 193 ms against 25 ms.
    # The requeue row is a primary-key probe too; a row of another text does not count.
    # The exhausted candidates are marked failed by the data-modifying CTE and left out.
    return sql.SQL(
        "WITH candidates AS ("
        " SELECT {memory_columns}, r.attempts FROM memories m"
        " LEFT JOIN embedding_requeues r ON r.memory_id = m.id AND r.content_hash = m.content_hash"
        " WHERE m.created_at <= now() - make_interval(secs => %(older)s)"
        "   AND m.created_at > now() - make_interval(secs => %(max_age)s)"
        "   AND btrim(coalesce(m.content->>'text', '')) <> ''"
        "   AND m.type <> ALL(%(never_embedded)s)"
        "   AND (r.memory_id IS NULL OR (r.failed_at IS NULL"
        "        AND r.queued_at <= now() - make_interval(secs => %(older)s)))"
        "   AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.memory_id = m.id AND e.agent_id = m.agent_id"
        "                   AND e.content_hash = m.content_hash AND e.{column} IS NOT NULL OFFSET 0)"
        " ORDER BY m.created_at, m.id LIMIT %(limit)s),"
        " given_up AS ("
        " UPDATE embedding_requeues r SET failed_at = now() FROM candidates c"
        " WHERE r.memory_id = c.id AND c.attempts >= %(max_requeues)s)"
        " SELECT * FROM candidates c"
        " WHERE c.attempts IS NULL OR %(max_requeues)s::int IS NULL OR c.attempts < %(max_requeues)s"
        " ORDER BY c.created_at, c.id"
    ).format(memory_columns=sql.SQL(MEMORY_COLUMNS), column=sql.Identifier(column.name))


def _upsert_sql(column: _VectorColumn) -> sql.Composed:
    # One statement for the whole batch: unnest() the columns, and join memories so a vector
    # whose memory was deleted or edited meanwhile (hash differs) is not stored, and so the
    # filter columns are copied from the memory itself, not trusted from the caller. The
    # vectors go as a binary array (%b): psycopg sends a list of them as text otherwise,
    # and formatting 384 floats as text costs ~0.4 ms a vector (75x the binary dump).
    others = [sql.SQL("{} = NULL").format(sql.Identifier(c.name)) for c in _COLUMNS.values() if c != column]
    return sql.SQL(
        "INSERT INTO embeddings (memory_id, agent_id, type, room_id, world_id, entity_id,"
        " content_hash, model, {col})"
        " SELECT m.id, m.agent_id, m.type, m.room_id, m.world_id, m.entity_id, b.content_hash, b.model, b.vec"
        " FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::text[], %b::{type}[])"
        "   AS b(memory_id, agent_id, content_hash, model, vec)"
        " JOIN memories m ON m.id = b.memory_id AND m.agent_id = b.agent_id AND m.content_hash = b.content_hash"
        " ON CONFLICT (memory_id, agent_id) DO UPDATE SET content_hash = excluded.content_hash,"
        "   model = excluded.model, {col} = excluded.{col}, {others}, type = excluded.type,"
        "   room_id = excluded.room_id, world_id = excluded.world_id,"
        "   entity_id = excluded.entity_id, created_at = now()"
        " WHERE embeddings.content_hash IS DISTINCT FROM excluded.content_hash"
        "   OR embeddings.model IS DISTINCT FROM excluded.model"
        "   OR embeddings.{col} IS DISTINCT FROM excluded.{col}"
    ).format(
        col=sql.Identifier(column.name),
        type=sql.SQL(column.pg_type),
        others=sql.SQL(", ").join(others),
    )


def _search_sql(column: _VectorColumn, filters: list[str], *, rerank: bool) -> sql.Composed:
    # The MATERIALIZED CTE keeps the LIMIT on the index scan (pgvector's advice for iterative
    # scans); the threshold is applied outside it, since a distance filter inside would make
    # the scan walk up to max_scan_tuples whenever fewer rows than LIMIT pass it.
    where = sql.SQL("").join(
        sql.SQL(" AND e.{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in filters
    )
    text_score = TEXT_SCORE if rerank else sql.SQL("")
    return sql.SQL(
        "WITH candidates AS MATERIALIZED ("
        " SELECT e.memory_id, e.{col} <=> %(q)s::{type} AS distance FROM embeddings e"
        " WHERE e.agent_id = %(agent)s AND e.{col} IS NOT NULL{where}"
        " ORDER BY e.{col} <=> %(q)s::{type} LIMIT %(limit)s)"
        " SELECT {memory_columns}, 1 - c.distance AS similarity{text_score}"
        " FROM candidates c JOIN memories m ON m.id = c.memory_id AND m.agent_id = %(agent)s"
        " WHERE 1 - c.distance >= %(threshold)s"
        " ORDER BY c.distance, m.id"
    ).format(
        col=sql.Identifier(column.name),
        type=sql.SQL(column.pg_type),
        where=where,
        memory_columns=sql.SQL(MEMORY_COLUMNS),
        text_score=text_score,
    )
