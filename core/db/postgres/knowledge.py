"""Knowledge: documents and their fragments, written together and searched across owners.

A document is a memory of type ``"documents"`` holding the whole text; its fragments are
memories of type ``"knowledge"`` with ``metadata.documentId`` (the document's id) and
``metadata.position`` (0, 1, ...), as elizaOS plugin-knowledge stores them. Fragments get
vectors through the ordinary embedding path (``upsert_embeddings``); documents are never
embedded by this module.

Every method takes the *owners* it may read or write: the agent's id, plus the id that owns
the deployment's shared knowledge (``core.knowledge.SHARED_KNOWLEDGE_ID``) when shared
knowledge is visible. Every statement is scoped by those ``agent_id`` values, bound as
parameters; a search runs one index scan per owner (each on its own hash partition of
``embeddings``), never an unscoped one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from core.db.adapter import FragmentCounts, KnowledgeWrite, MemoryPage
from core.db.postgres.base import MEMORY_COLUMNS, PostgresBase, memory_from_row
from core.db.postgres.embeddings import TEXT_SCORE, TEXT_SEARCH_CONFIG, fuse_ranks, vector_column
from core.db.postgres.memories import decode_cursor, encode_cursor
from core.db.postgres.values import check_page, from_ms
from core.db.retry import idempotent
from core.types import Memory

#: elizaOS plugin-knowledge's table names, stored in ``memories.type``.
DOCUMENTS_TABLE = "documents"
FRAGMENTS_TABLE = "knowledge"
#: Most owners one call may name (an agent and the shared owner, with room to spare).
MAX_OWNERS = 8

# A document's columns without its text: a listing must not ship megabytes of documents.
_DOCUMENT_LIST_COLUMNS = (
    "m.id, m.agent_id, m.room_id, m.world_id, m.entity_id, m.content - 'text' AS content, m.metadata, m.created_at"
)


def _check_owners(owner_ids: Sequence[UUID]) -> list[UUID]:
    owners = list(dict.fromkeys(owner_ids))
    if not 1 <= len(owners) <= MAX_OWNERS:
        raise ValueError(f"name 1 to {MAX_OWNERS} owners, got {len(owners)}")
    return owners


class KnowledgeMixin(PostgresBase):
    """Documents and fragments (elizaOS plugin-knowledge's ``documents`` and ``knowledge`` tables)."""

    # -- writes ---------------------------------------------------------------------------------

    async def upsert_knowledge_document(self, document: Memory, fragments: Sequence[Memory]) -> KnowledgeWrite:
        """Store a document and its fragments, or do nothing when the same version is stored.

        One transaction, serialised per document by an advisory lock. The stored document
        with the same id is *the same version* when its ``content_hash`` (SHA-256 of the text)
        and its ``metadata.fingerprint`` (how it was split) are both equal: then nothing is
        written. Otherwise the old fragments are deleted (their vectors go with them, ``ON
        DELETE CASCADE``), the document row is inserted or overwritten, and the new fragments
        inserted; a reader sees the old version or the new one, never a mix. The owner's
        knowledge room (``document.room_id``) is created when missing.

        Safe to re-run after a lost connection: a second run finds the version stored and
        reports ``unchanged`` (with the fragments still lacking a vector to queue).

        Args:
            document: The document memory; its ``agent_id`` is the owner.
            fragments: Its fragments: same owner, ``metadata.documentId`` equal to the
                document's id.

        Returns:
            ``added``, ``unchanged`` or ``replaced``, and the fragments to queue for
            embedding: all new ones, or for an unchanged document those without a vector
            of their current text (a lost queue message heals on re-import).

        Raises:
            ValueError: a fragment belongs to another owner or document, or the id is used by
                a memory that is not a document.
            ConfigurationError: ``embedding_dimension`` is not a supported dimension.
        """
        owner, doc_id = document.agent_id, document.id
        for fragment in fragments:
            if fragment.agent_id != owner or (fragment.metadata.model_extra or {}).get("documentId") != str(doc_id):
                raise ValueError(f"fragment {fragment.id} does not belong to document {doc_id} of {owner}")
        fingerprint = (document.metadata.model_extra or {}).get("fingerprint")
        async with self._transaction() as conn:
            async with conn.pipeline():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"knowledge:{owner}:{doc_id}",)
                )
                found = await conn.execute(
                    "SELECT content_hash, metadata->>'fingerprint' AS fingerprint FROM memories"
                    " WHERE agent_id = %s AND id = %s AND type = %s",
                    (owner, doc_id, DOCUMENTS_TABLE),
                )
            stored = await found.fetchone()
            if stored is not None and (stored["content_hash"], stored["fingerprint"]) == (
                document.content_hash,
                fingerprint,
            ):
                pending = await self._unembedded_fragments(conn, owner, doc_id)
                return KnowledgeWrite("unchanged", doc_id, pending)
            await self._write_version(conn, document, fragments)
        status = "added" if stored is None else "replaced"
        return KnowledgeWrite(status, doc_id, list(fragments))

    async def _write_version(
        self, conn: psycopg.AsyncConnection[Any], document: Memory, fragments: Sequence[Memory]
    ) -> None:
        owner = document.agent_id
        async with conn.pipeline():
            await conn.execute(
                "INSERT INTO rooms (agent_id, id, name, source, type) VALUES (%s, %s, 'knowledge', 'knowledge', 'SELF')"
                " ON CONFLICT DO NOTHING",
                (owner, document.room_id),
            )
            await conn.execute(
                "DELETE FROM memories WHERE agent_id = %s AND type = %s AND metadata->>'documentId' = %s",
                (owner, FRAGMENTS_TABLE, str(document.id)),
            )
            # The id is the document's only if this owner's document holds it: another memory
            # with the id (another owner's, or not a document) is left alone and reported.
            upsert = await conn.execute(
                "INSERT INTO memories (id, agent_id, type, room_id, world_id, entity_id, content, metadata,"
                ' content_hash, "unique", created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, true, %s)'
                " ON CONFLICT (id) DO UPDATE SET content = excluded.content, metadata = excluded.metadata,"
                " content_hash = excluded.content_hash, room_id = excluded.room_id,"
                " entity_id = excluded.entity_id, created_at = excluded.created_at"
                " WHERE memories.agent_id = excluded.agent_id AND memories.type = excluded.type",
                _row(document, DOCUMENTS_TABLE),
            )
            if fragments:
                async with conn.cursor() as cur:
                    await cur.executemany(
                        "INSERT INTO memories (id, agent_id, type, room_id, world_id, entity_id, content, metadata,"
                        ' content_hash, "unique", created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, true, %s)',
                        [_row(f, FRAGMENTS_TABLE) for f in fragments],
                    )
        if upsert.rowcount != 1:
            # Raising inside the transaction rolls back the fragments written above.
            raise ValueError(f"memory id {document.id} is already used by another memory")

    async def _unembedded_fragments(
        self, conn: psycopg.AsyncConnection[Any], owner: UUID, doc_id: UUID
    ) -> list[Memory]:
        column = vector_column(self.embedding_dimension).name
        query = sql.SQL(
            "SELECT {columns} FROM memories m"
            " WHERE m.agent_id = %s AND m.type = %s AND m.metadata->>'documentId' = %s"
            "   AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.memory_id = m.id AND e.agent_id = m.agent_id"
            "                   AND e.content_hash = m.content_hash AND e.{column} IS NOT NULL)"
            " ORDER BY (m.metadata->>'position')::int"
        ).format(columns=sql.SQL(MEMORY_COLUMNS), column=sql.Identifier(column))
        rows = await (await conn.execute(query, (owner, FRAGMENTS_TABLE, str(doc_id)))).fetchall()
        return [memory_from_row(r) for r in rows]

    @idempotent  # deleting twice leaves the same state; the second run reports False
    async def delete_knowledge_document(self, owner_ids: Sequence[UUID], document_id: UUID) -> bool:
        """Delete a document and its fragments (and their vectors) in one statement.

        Args:
            owner_ids: Owners whose document it may be (the agent, and the shared owner).
            document_id: The document.

        Returns:
            True when one of the owners had this document.

        Raises:
            ValueError: no owner, or more than ``MAX_OWNERS``.
        """
        owners = _check_owners(owner_ids)
        documents: int = await self._fetch_value(
            "WITH doc AS (DELETE FROM memories WHERE agent_id = ANY(%(owners)s) AND id = %(id)s"
            "             AND type = %(documents)s RETURNING id, agent_id),"
            " frag AS (DELETE FROM memories f USING doc WHERE f.agent_id = doc.agent_id"
            "          AND f.type = %(fragments)s AND f.metadata->>'documentId' = doc.id::text RETURNING f.id)"
            " SELECT (SELECT count(*) FROM doc) AS documents, (SELECT count(*) FROM frag) AS fragments",
            {"owners": owners, "id": document_id, "documents": DOCUMENTS_TABLE, "fragments": FRAGMENTS_TABLE},
        )
        return documents == 1

    # -- reads ----------------------------------------------------------------------------------

    async def get_knowledge_document(self, owner_ids: Sequence[UUID], document_id: UUID) -> Memory | None:
        """A document with its text, or ``None`` when none of the owners has it.

        Raises:
            ValueError: no owner, or more than ``MAX_OWNERS``.
        """
        owners = _check_owners(owner_ids)
        row = await self._fetch_one(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.agent_id = ANY(%s) AND m.id = %s AND m.type = %s",
            (owners, document_id, DOCUMENTS_TABLE),
        )
        return memory_from_row(row) if row else None

    async def get_knowledge_fragments(self, owner_id: UUID, document_id: UUID) -> list[Memory]:
        """A document's fragments in ``position`` order (empty when the owner has no such document)."""
        rows = await self._fetch_all(
            f"SELECT {MEMORY_COLUMNS} FROM memories m"
            " WHERE m.agent_id = %s AND m.type = %s AND m.metadata->>'documentId' = %s"
            " ORDER BY (m.metadata->>'position')::int, m.id",
            (owner_id, FRAGMENTS_TABLE, str(document_id)),
        )
        return [memory_from_row(r) for r in rows]

    async def knowledge_embedding_counts(
        self, owner_ids: Sequence[UUID], *, given_up_after_s: float
    ) -> list[FragmentCounts]:
        """How many of each owner's fragments are embedded, queued or failed, in one query.

        SQS counts receives and moves a message to its DLQ, and the scheduled sweep queues again
        any memory still without a vector of its current text until ``EMBEDDING_PENDING_MAX_AGE_S``
        after it was created, at most ``EMBEDDING_MAX_REQUEUES`` times. So a fragment without
        one is *queued* while that sweep still retries it, and *failed* once it is older or the
        sweep gave up on its text: nothing will embed it unless its document is imported again.

        Args:
            owner_ids: The owners (an agent, the shared knowledge owner).
            given_up_after_s: ``EMBEDDING_PENDING_MAX_AGE_S``, seconds.

        Returns:
            One entry per owner, in the order given (zeros for an owner without fragments).

        Raises:
            ValueError: no owner or too many, or a negative age.
            ConfigurationError: ``embedding_dimension`` is not a supported dimension.
        """
        owners = _check_owners(owner_ids)
        if not given_up_after_s >= 0:
            raise ValueError(f"given_up_after_s must be at least 0, got {given_up_after_s!r}")
        column = sql.Identifier(vector_column(self.embedding_dimension).name)
        # Failed also: a text the sweep gave up on after EMBEDDING_MAX_REQUEUES (migration 0008).
        given_up = "(m.created_at <= now() - make_interval(secs => %(age)s) OR r.memory_id IS NOT NULL)"
        query = sql.SQL(
            "SELECT m.agent_id, count(*) AS fragments, count(e.memory_id) AS embedded,"
            " count(*) FILTER (WHERE e.memory_id IS NULL AND NOT {given_up}) AS queued,"
            " count(*) FILTER (WHERE e.memory_id IS NULL AND {given_up}) AS failed"
            " FROM memories m LEFT JOIN embeddings e ON e.memory_id = m.id AND e.agent_id = m.agent_id"
            "   AND e.content_hash = m.content_hash AND e.{column} IS NOT NULL"
            " LEFT JOIN embedding_requeues r ON r.memory_id = m.id AND r.content_hash = m.content_hash"
            "   AND r.failed_at IS NOT NULL"
            " WHERE m.agent_id = ANY(%(owners)s) AND m.type = %(fragments)s GROUP BY m.agent_id"
        ).format(column=column, given_up=sql.SQL(given_up))
        rows = await self._fetch_all(
            query, {"owners": owners, "fragments": FRAGMENTS_TABLE, "age": float(given_up_after_s)}
        )
        found = {r["agent_id"]: r for r in rows}
        return [
            FragmentCounts(
                o, *(int(found[o][k]) if o in found else 0 for k in ("fragments", "embedded", "queued", "failed"))
            )
            for o in owners
        ]

    async def list_knowledge_documents(
        self, owner_ids: Sequence[UUID], *, limit: int = 50, cursor: str | None = None
    ) -> MemoryPage:
        """One page of the owners' documents, newest first, *without* their text.

        Keyset pages on ``(created_at, id)`` as ``list_memories`` does.

        Args:
            owner_ids: The agent, and the shared owner when shared documents are listed.
            limit: Page size, 1 to ``MAX_PAGE_SIZE``.
            cursor: ``next_cursor`` of the previous page.

        Returns:
            Documents whose ``content`` lacks ``text`` (metadata keeps name, size, counts).

        Raises:
            ValueError: bad owners, ``limit`` or ``cursor``.
        """
        owners = _check_owners(owner_ids)
        check_page(limit)
        params: dict[str, Any] = {"owners": owners, "type": DOCUMENTS_TABLE, "limit": limit + 1}
        after = sql.SQL("")
        if cursor is not None:
            params["c_at"], params["c_id"] = decode_cursor(cursor)
            after = sql.SQL(" AND (m.created_at, m.id) < (%(c_at)s, %(c_id)s)")
        query = sql.SQL(
            "SELECT {columns}, m.created_at AS exact_created_at FROM memories m"
            " WHERE m.agent_id = ANY(%(owners)s) AND m.type = %(type)s{after}"
            " ORDER BY m.created_at DESC, m.id DESC LIMIT %(limit)s"
        ).format(columns=sql.SQL(_DOCUMENT_LIST_COLUMNS), after=after)
        rows = await self._fetch_all(query, params)
        next_cursor = (
            encode_cursor(rows[limit - 1]["exact_created_at"], rows[limit - 1]["id"]) if len(rows) > limit else None
        )
        return MemoryPage(memories=[memory_from_row(r) for r in rows[:limit]], next_cursor=next_cursor)

    async def search_knowledge(
        self,
        owner_ids: Sequence[UUID],
        embedding: Sequence[float],
        *,
        count: int = 5,
        match_threshold: float = 0.0,
        query_text: str | None = None,
    ) -> list[Memory]:
        """Fragments of the owners most similar to ``embedding`` (cosine), best first.

        Each owner's nearest fragments come from its own scan (HNSW with iterative scan, or
        the ``(agent_id, type)`` index when the planner finds that cheaper), in one
        statement and one round trip; the union is cut at ``match_threshold`` and ordered by
        distance. With ``query_text``, the ``rerank_pool * count`` candidates are re-ranked by
        reciprocal-rank fusion with their full-text rank, exactly as ``search_memories`` does.

        Args:
            owner_ids: The agent, and the shared owner when shared knowledge is visible.
            embedding: Query vector of length ``embedding_dimension``.
            count: Most results (at least 1).
            match_threshold: Least similarity (``1 - cosine distance``, -1 to 1).
            query_text: The query's text, to re-rank by words as well.

        Returns:
            At most ``count`` fragments with ``similarity`` set, best first.

        Raises:
            EmbeddingDimensionError: the vector has the wrong length.
            ValueError: bad owners, or ``count`` below 1.
            ConfigurationError: ``embedding_dimension`` is not a supported dimension.
        """
        owners = _check_owners(owner_ids)
        self.check_dimension(embedding)
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        column = vector_column(self.embedding_dimension)
        limit = count * self.rerank_pool if query_text else count
        params: dict[str, Any] = {
            "q": column.literal(embedding),
            "type": FRAGMENTS_TABLE,
            "limit": limit,
            "threshold": match_threshold,
            "text": query_text,
            "config": TEXT_SEARCH_CONFIG,
            **{f"owner{i}": owner for i, owner in enumerate(owners)},
        }
        query = _search_sql(column.name, column.pg_type, len(owners), rerank=bool(query_text))
        rows = await self._fetch_all(query, params, local=self._vector_search_settings())
        if query_text:
            rows = fuse_ranks(rows)
        return [memory_from_row(r) for r in rows[:count]]


def _row(memory: Memory, table: str) -> tuple[Any, ...]:
    return (
        memory.id,
        memory.agent_id,
        table,
        memory.room_id,
        memory.world_id,
        memory.entity_id,
        Jsonb(memory.content.to_json_dict()),
        Jsonb(memory.metadata.to_json_dict()),
        memory.content_hash,
        from_ms(memory.created_at, "created_at"),
    )


@functools.cache
def _search_sql(column: str, pg_type: str, owners: int, *, rerank: bool) -> bytes:
    # One parenthesised branch per owner, each with its own ORDER BY ... LIMIT, so each is a
    # scan of one agent's partition (pruned at plan time: the owner is a parameter of the
    # branch) rather than one scan whose filter keeps two agents out of many. Rendered once per
    # shape: psycopg renders a composition on every execute (0.3 ms of each KNOWLEDGE lookup),
    # and caches its parsing of plain bytes (the identifiers come from an allow-list).
    branch = sql.SQL(
        "(SELECT e.memory_id, e.agent_id, e.{col} <=> %(q)s::{type} AS distance FROM embeddings e"
        " WHERE e.agent_id = {owner} AND e.type = %(type)s AND e.{col} IS NOT NULL"
        " ORDER BY e.{col} <=> %(q)s::{type} LIMIT %(limit)s)"
    )
    branches = sql.SQL(" UNION ALL ").join(
        branch.format(col=sql.Identifier(column), type=sql.SQL(pg_type), owner=sql.Placeholder(f"owner{i}"))
        for i in range(owners)
    )
    text_score = TEXT_SCORE if rerank else sql.SQL("")
    return (
        sql.SQL(
            "WITH candidates AS MATERIALIZED ({branches})"
            " SELECT {columns}, 1 - c.distance AS similarity{text_score}"
            " FROM candidates c JOIN memories m ON m.id = c.memory_id AND m.agent_id = c.agent_id"
            " WHERE 1 - c.distance >= %(threshold)s"
            " ORDER BY c.distance, m.id LIMIT %(limit)s"
        )
        .format(branches=branches, columns=sql.SQL(MEMORY_COLUMNS), text_score=text_score)
        .as_bytes(None)
    )
