"""Memories: messages, documents, facts... scoped by agent, room and table.

``table`` is elizaOS's table name (``"messages"``, ``"facts"``...), stored in ``memories.type``
and always passed as a bound parameter. Deleting a memory deletes its embedding
(``ON DELETE CASCADE``).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.abc import Params
from psycopg.types.json import Jsonb

from core.db.adapter import MemoryPage
from core.db.pool import Connection
from core.db.postgres.base import MEMORY_COLUMNS, PostgresBase, Query, in_one_round_trip, memory_from_row, required_row
from core.db.postgres.logs import LOG_INSERT, log_insert_columns
from core.db.postgres.values import EPOCH, MAX_PAGE_SIZE, check_name, check_page, from_ms, json_text
from core.db.retry import idempotent
from core.errors import NotFoundError
from core.types import Content, Log, Memory, MemoryMetadata
from core.types.memory import content_hash

logger = logging.getLogger(__name__)

_MICROSECOND = timedelta(microseconds=1)

# -- cursors ------------------------------------------------------------------------------------


def encode_cursor(created_at: datetime, memory_id: UUID) -> str:
    """Opaque cursor for the position (created_at, id); exact to the microsecond."""
    micros = (created_at - EPOCH) // _MICROSECOND
    return base64.urlsafe_b64encode(f"{micros}:{memory_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The (created_at, id) position of a cursor from ``encode_cursor``.

    Raises:
        ValueError: the cursor was not made by ``encode_cursor``.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        micros, memory_id = raw.split(":")
        return EPOCH + int(micros) * _MICROSECOND, UUID(memory_id)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc


class MemoriesMixin(PostgresBase):
    # -- writes ---------------------------------------------------------------------------------

    @idempotent  # keyed by id: a retry after a dropped connection finds its row and stores nothing
    async def create_memories(self, memories: Sequence[Memory], table: str) -> None:
        """Insert memories in one round trip (pipelined ``executemany``), no de-duplication by text.

        Idempotent by id: a memory whose id is already stored is left as it is, so a retried
        call (or a retried request with the same message id) never stores a second copy.
        A memory without ``world_id`` takes its room's.

        Args:
            memories: Memories to store; ``embedding`` is ignored (vectors go through
                ``upsert_embeddings``).
            table: elizaOS table name (``"messages"``, ``"documents"``...), stored as ``type``.

        Raises:
            ValueError: ``table`` is empty or holds NUL.
        """
        check_name(table, "table")
        params = [_insert_values(m, table) for m in memories]
        await self._execute_many(
            "INSERT INTO memories (id, agent_id, type, room_id, world_id, entity_id, content, metadata,"
            ' content_hash, "unique", created_at) VALUES (%s, %s, %s, %s,'
            " coalesce(%s::uuid, (SELECT world_id FROM rooms WHERE agent_id = %s AND id = %s)),"
            " %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            params,
        )

    async def create_reply(self, reply: Memory, table: str, *, answering: Memory, logs: Sequence[Log] = ()) -> bool:
        """Store an agent's reply unless a newer message has arrived in the room meanwhile.

        The check and the insert are one statement, so a reply is never stored after a newer
        message it did not see. "Newer" means a memory of ``table`` in the same room, written
        by someone other than the agent, created after ``answering``.

        Args:
            reply: The agent's reply.
            table: elizaOS table name (``"messages"``).
            answering: The message the reply answers.
            logs: The turn's logs so far (model usage, actions), written in the same round trip
                and transaction; if that fails, the reply is stored alone (see ``_reply_with_logs``).

        Returns:
            False when the reply was superseded (nothing stored).

        Raises:
            ValueError: ``table`` is invalid, or a log has an invalid type or body (nothing written).
        """
        check_name(table, "table")
        m = reply
        insert = (
            "INSERT INTO memories (id, agent_id, type, room_id, world_id, entity_id, content, metadata,"
            ' content_hash, "unique", created_at)'
            " SELECT %s, %s, %s, %s, coalesce(%s::uuid, (SELECT world_id FROM rooms WHERE agent_id = %s"
            " AND id = %s)), %s, %s, %s, %s, %s, %s"
            " WHERE NOT EXISTS (SELECT 1 FROM memories n WHERE n.agent_id = %s AND n.room_id = %s"
            " AND n.type = %s AND n.entity_id <> %s AND n.created_at > %s)"
        )
        params = (
            *_insert_values(m, table),
            m.agent_id,
            m.room_id,
            table,
            m.agent_id,
            from_ms(answering.created_at, "created_at"),
        )
        if not logs:
            return await self._execute(insert, params) == 1
        log_columns = log_insert_columns(logs)  # validated before anything is sent
        async with self.pool.connection() as conn:
            return await _reply_with_logs(conn, (insert, params), (LOG_INSERT, log_columns))

    @idempotent  # a re-run finds its own row (same id) and returns it
    async def create_memory(self, memory: Memory, table: str, unique: bool = False) -> UUID:
        """Store one memory (elizaOS ``createMemory``), optionally de-duplicated.

        De-duplication (``unique=True``): when this agent already has a memory in the same
        room and table whose ``content_hash`` (SHA-256 of ``content.text``) is the same, its id
        is returned and nothing is stored. Memories without text are never de-duplicated
        (an empty text says nothing about the content). Concurrent unique inserts of the same
        text serialise on a transaction-scoped advisory lock, so exactly one is stored. elizaOS
        compares embeddings at insert time instead; here the embedding does not exist yet
        (it is computed later, off the request path), so identical text is the test.

        The stored ``unique`` flag (what ``count_memories(unique_only=True)`` counts) says
        whether the memory was the first with its text in that room and table, whichever
        ``unique`` was. Storing the same memory id again (a retried call) returns the id.
        A memory without ``world_id`` takes its room's.

        Args:
            memory: The memory; its ``agent_id`` scopes the insert.
            table: elizaOS table name, stored as ``type``.
            unique: De-duplicate by text as described.

        Returns:
            The id of the stored memory, or of the existing duplicate.

        Raises:
            NotFoundError: the agent has no such room (or no such agent).
            ValueError: ``table`` is invalid, or the id belongs to another agent's memory.
        """
        check_name(table, "table")
        text_hash = memory.content_hash
        params = {
            "id": memory.id,
            "agent": memory.agent_id,
            "type": table,
            "room": memory.room_id,
            "world": memory.world_id,
            "entity": memory.entity_id,
            "content": Jsonb(memory.content.to_json_dict()),
            "metadata": Jsonb(memory.metadata.to_json_dict()),
            "hash": text_hash,
            "check": bool(memory.text),
            "dedupe": unique,
            "created": from_ms(memory.created_at, "created_at"),
        }
        statements: list[tuple[Query, Params | None]] = []
        if unique and memory.text:
            lock = f"memories:{memory.agent_id}:{memory.room_id}:{table}:{text_hash}"
            statements.append(("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock,)))
        statements.append((_CREATE_MEMORY, params))
        try:
            async with self.pool.connection() as conn:
                *_, cursor = await in_one_round_trip(conn, statements)
                row = required_row(await cursor.fetchone())
        except psycopg.errors.ForeignKeyViolation as exc:
            raise NotFoundError(f"agent {memory.agent_id} has no room {memory.room_id}") from exc
        inserted: UUID | None = row["inserted"]
        duplicate: UUID | None = row["duplicate"]
        if inserted is not None:
            return inserted
        if unique and duplicate is not None:
            return duplicate
        if row["owner"] == memory.agent_id:
            return memory.id
        raise ValueError(f"memory id {memory.id} is already used")

    @idempotent  # setting the same content and merging the same keys twice changes nothing more
    async def update_memory(
        self,
        agent_id: UUID,
        id: UUID,
        content: Content | dict[str, Any] | None = None,
        metadata: MemoryMetadata | dict[str, Any] | None = None,
    ) -> bool:
        """Replace a memory's content and/or merge into its metadata (elizaOS ``updateMemory``).

        New content recomputes ``content_hash``; the stored embedding keeps the hash of the
        text it was made from, so the embedding worker sees it is stale and re-embeds.
        Metadata is merged shallowly: only the keys given are written.

        Args:
            agent_id: Owner of the memory.
            id: The memory.
            content: New content (replaces the old one).
            metadata: Keys to set in the metadata.

        Returns:
            True when the memory was updated; False when this agent has no such memory.

        Raises:
            ValueError: neither ``content`` nor ``metadata`` given, or they do not validate.
        """
        if content is None and metadata is None:
            raise ValueError("update_memory needs content or metadata")
        sets: list[sql.Composable] = []
        params: dict[str, Any] = {"agent": agent_id, "id": id}
        if content is not None:
            new = Content.model_validate(content)
            sets.append(sql.SQL("content = %(content)s, content_hash = %(hash)s"))
            params |= {"content": Jsonb(new.to_json_dict()), "hash": content_hash(new.text or "")}
        if metadata is not None:
            # exclude_unset: MemoryMetadata's defaults (type="message") must not overwrite stored keys.
            changes = MemoryMetadata.model_validate(metadata).model_dump(by_alias=True, exclude_unset=True)
            sets.append(sql.SQL("metadata = metadata || %(metadata)s::jsonb"))
            params["metadata"] = json_text(changes, "metadata", coerce=True)
        query = sql.SQL("UPDATE memories SET {} WHERE agent_id = %(agent)s AND id = %(id)s").format(
            sql.SQL(", ").join(sets)
        )
        return await self._execute(query, params) == 1

    async def delete_memory(self, agent_id: UUID, id: UUID) -> bool:
        """Delete one memory and its embedding.

        Returns:
            True when it existed for this agent.
        """
        return await self._execute("DELETE FROM memories WHERE agent_id = %s AND id = %s", (agent_id, id)) == 1

    async def delete_many_memories(self, agent_id: UUID, ids: Sequence[UUID]) -> int:
        """Delete memories (and their embeddings) in one statement.

        Returns:
            How many of ``ids`` this agent had (others' ids are ignored).
        """
        if not ids:
            return 0
        return await self._execute("DELETE FROM memories WHERE agent_id = %s AND id = ANY(%s)", (agent_id, list(ids)))

    async def delete_all_memories(self, agent_id: UUID, room_id: UUID, table: str) -> int:
        """Delete every memory of one table in one room (elizaOS ``deleteAllMemories``).

        Returns:
            Number of memories deleted.

        Raises:
            ValueError: ``table`` is invalid.
        """
        check_name(table, "table")
        return await self._execute(
            "DELETE FROM memories WHERE agent_id = %s AND room_id = %s AND type = %s",
            (agent_id, room_id, table),
        )

    # -- reads ----------------------------------------------------------------------------------

    async def get_memories(self, agent_id: UUID, room_id: UUID, table: str, count: int) -> list[Memory]:
        """The newest ``count`` memories of a room, returned oldest first (conversation order)."""
        rows = await self._fetch_all(
            f"SELECT {MEMORY_COLUMNS} FROM memories m"
            " WHERE m.agent_id = %s AND m.room_id = %s AND m.type = %s"
            " ORDER BY m.created_at DESC, m.id DESC LIMIT %s",
            (agent_id, room_id, table, count),
        )
        return [memory_from_row(r) for r in reversed(rows)]

    async def get_message_with_replies(self, agent_id: UUID, message_id: UUID) -> tuple[Memory | None, list[Memory]]:
        """A stored message and the agent's replies to it (``content.inReplyTo``), oldest first,
        in one round trip: what a retried request with the same message id gets back.

        Returns:
            ``(message, replies)``; ``(None, [])`` when this agent has no such message.
        """
        rows = await self._fetch_all(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.agent_id = %(a)s AND (m.id = %(id)s OR ("
            "   m.type = 'messages' AND m.entity_id = %(a)s AND m.content->>'inReplyTo' = %(id)s::text"
            "   AND m.room_id = (SELECT room_id FROM memories WHERE agent_id = %(a)s AND id = %(id)s)))"
            " ORDER BY m.created_at, m.id",
            {"a": agent_id, "id": message_id},
        )
        memories = [memory_from_row(r) for r in rows]
        message = next((m for m in memories if m.id == message_id), None)
        return message, [m for m in memories if m.id != message_id]

    async def get_memory_by_id(self, agent_id: UUID, id: UUID) -> Memory | None:
        """The memory, or ``None`` when this agent has no such memory."""
        row = await self._fetch_one(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.agent_id = %s AND m.id = %s",
            (agent_id, id),
        )
        return memory_from_row(row) if row else None

    async def get_memories_by_ids(self, agent_id: UUID, ids: Sequence[UUID], table: str | None = None) -> list[Memory]:
        """Memories by id, in the order of ``ids`` (each once); missing or others' ids are skipped.

        Args:
            agent_id: Owner of the memories.
            ids: Ids to fetch (at most ``MAX_PAGE_SIZE``).
            table: Only memories of this table.

        Raises:
            ValueError: too many ids, or ``table`` is invalid.
        """
        if len(ids) > MAX_PAGE_SIZE:
            raise ValueError(f"at most {MAX_PAGE_SIZE} ids per call, got {len(ids)}")
        if table is not None:
            check_name(table, "table")
        if not ids:
            return []
        rows = await self._fetch_all(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.agent_id = %(agent)s AND m.id = ANY(%(ids)s)"
            " AND (%(table)s::text IS NULL OR m.type = %(table)s)",
            {"agent": agent_id, "ids": list(ids), "table": table},
        )
        found = {r["id"]: memory_from_row(r) for r in rows}
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    async def get_memories_by_room_ids(
        self, agent_id: UUID, room_ids: Sequence[UUID], table: str, limit: int = 100
    ) -> list[Memory]:
        """The newest memories of several rooms together, newest first (elizaOS ``getMemoriesByRoomIds``).

        Args:
            agent_id: Owner of the memories.
            room_ids: The rooms.
            table: elizaOS table name.
            limit: Most memories in all (1 to ``MAX_PAGE_SIZE``).

        Raises:
            ValueError: invalid ``table`` or ``limit``.
        """
        check_name(table, "table")
        check_page(limit)
        if not room_ids:
            return []
        rows = await self._fetch_all(
            f"SELECT {MEMORY_COLUMNS} FROM memories m"
            " WHERE m.agent_id = %s AND m.room_id = ANY(%s) AND m.type = %s"
            " ORDER BY m.created_at DESC, m.id DESC LIMIT %s",
            (agent_id, list(room_ids), table, limit),
        )
        return [memory_from_row(r) for r in rows]

    async def get_memories_by_world_id(
        self, agent_id: UUID, world_id: UUID, table: str, count: int = 100
    ) -> list[Memory]:
        """The newest memories of a world, newest first (elizaOS ``getMemoriesByWorldId``).

        A memory's world is its own ``world_id``, which inserts fill from the room when the
        memory has none.

        Args:
            agent_id: Owner of the memories.
            world_id: The world.
            table: elizaOS table name.
            count: Most memories (1 to ``MAX_PAGE_SIZE``).

        Raises:
            ValueError: invalid ``table`` or ``count``.
        """
        page = await self.list_memories(agent_id, table=table, world_id=world_id, limit=count)
        return page.memories

    async def list_memories(
        self,
        agent_id: UUID,
        *,
        table: str,
        room_id: UUID | None = None,
        entity_id: UUID | None = None,
        world_id: UUID | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = True,
    ) -> MemoryPage:
        """One page of memories matching the filters, ordered by (created_at, id).

        Pages use a keyset (the last row's ``(created_at, id)``), not ``OFFSET``: ``OFFSET n``
        reads and throws away n rows on every page (slower the deeper you go), and rows
        inserted meanwhile (new messages arrive all the time) shift it, so a page repeats or
        skips rows. A keyset page starts right where the last one ended, through the index.

        Args:
            agent_id: Owner of the memories.
            table: elizaOS table name.
            room_id: Only this room.
            entity_id: Only memories by this entity.
            world_id: Only this world.
            start_ms: Created at or after, ms since the epoch.
            end_ms: Created at or before, ms since the epoch.
            limit: Page size, 1 to ``MAX_PAGE_SIZE``.
            cursor: ``next_cursor`` of the previous page; ``None`` for the first page.
            newest_first: Order newest first (default) or oldest first.

        Returns:
            The page and the cursor of the next one (``None`` when this page is the last).

        Raises:
            ValueError: invalid ``table``, ``limit``, time bounds or ``cursor``.
        """
        check_name(table, "table")
        check_page(limit)
        where: list[sql.Composable] = [sql.SQL("m.agent_id = %(agent)s"), sql.SQL("m.type = %(table)s")]
        params: dict[str, Any] = {"agent": agent_id, "table": table, "limit": limit + 1}
        for column, value in (("room_id", room_id), ("entity_id", entity_id), ("world_id", world_id)):
            if value is not None:
                where.append(sql.SQL("m.{} = %({})s").format(sql.Identifier(column), sql.SQL(column)))
                params[column] = value
        if start_ms is not None:
            where.append(sql.SQL("m.created_at >= %(start)s"))
            params["start"] = from_ms(start_ms, "start_ms")
        if end_ms is not None:
            where.append(sql.SQL("m.created_at <= %(end)s"))
            params["end"] = from_ms(end_ms, "end_ms")
        if start_ms is not None and end_ms is not None and start_ms > end_ms:
            raise ValueError(f"start_ms ({start_ms}) is after end_ms ({end_ms})")
        if cursor is not None:
            params["c_at"], params["c_id"] = decode_cursor(cursor)
            where.append(
                sql.SQL(
                    "(m.created_at, m.id) < (%(c_at)s, %(c_id)s)"
                    if newest_first
                    else "(m.created_at, m.id) > (%(c_at)s, %(c_id)s)"
                )
            )
        order = sql.SQL("DESC" if newest_first else "ASC")
        query = sql.SQL(
            "SELECT {}, m.created_at AS exact_created_at FROM memories m WHERE {}"
            " ORDER BY m.created_at {}, m.id {} LIMIT %(limit)s"
        ).format(sql.SQL(MEMORY_COLUMNS), sql.SQL(" AND ").join(where), order, order)
        rows = await self._fetch_all(query, params)
        # One extra row was read to know whether another page exists without a second query.
        next_cursor = (
            encode_cursor(rows[limit - 1]["exact_created_at"], rows[limit - 1]["id"]) if len(rows) > limit else None
        )
        return MemoryPage(memories=[memory_from_row(r) for r in rows[:limit]], next_cursor=next_cursor)

    async def count_memories(
        self, agent_id: UUID, room_id: UUID | None = None, table: str | None = None, unique_only: bool = False
    ) -> int:
        """How many memories match (elizaOS ``countMemories``).

        Args:
            agent_id: Owner of the memories.
            room_id: Only this room.
            table: Only this table.
            unique_only: Only memories stored as unique (first with their text; see ``create_memory``).

        Raises:
            ValueError: invalid ``table``.
        """
        if table is not None:
            check_name(table, "table")
        count: int = await self._fetch_value(
            "SELECT count(*) FROM memories WHERE agent_id = %(agent)s"
            " AND (%(room)s::uuid IS NULL OR room_id = %(room)s)"
            " AND (%(table)s::text IS NULL OR type = %(table)s)"
            ' AND (NOT %(unique)s OR "unique")',
            {"agent": agent_id, "room": room_id, "table": table, "unique": unique_only},
        )
        return count


# One statement: find a duplicate (same agent, room, table and text hash), insert unless
# de-duplicating found one, and report the id's current owner for retried inserts. The final
# SELECT runs on the statement's snapshot, so "owner" is whoever held the id before.
_CREATE_MEMORY = """
WITH dup AS (
    SELECT id FROM memories
    WHERE agent_id = %(agent)s AND room_id = %(room)s AND type = %(type)s
      AND content_hash = %(hash)s AND %(check)s
    ORDER BY created_at, id LIMIT 1
), ins AS (
    INSERT INTO memories (id, agent_id, type, room_id, world_id, entity_id, content, metadata,
                          content_hash, "unique", created_at)
    SELECT %(id)s, %(agent)s, %(type)s, %(room)s,
           coalesce(%(world)s::uuid, (SELECT world_id FROM rooms WHERE agent_id = %(agent)s AND id = %(room)s)),
           %(entity)s, %(content)s, %(metadata)s, %(hash)s, NOT EXISTS (SELECT 1 FROM dup), %(created)s
    WHERE NOT (%(dedupe)s AND EXISTS (SELECT 1 FROM dup))
    ON CONFLICT (id) DO NOTHING
    RETURNING id
)
SELECT (SELECT id FROM ins) AS inserted, (SELECT id FROM dup) AS duplicate,
       (SELECT agent_id FROM memories WHERE id = %(id)s) AS owner
"""


def _insert_values(m: Memory, table: str) -> tuple[Any, ...]:
    """The values of one memory's INSERT: id, agent, type, room, world (else the room's: agent
    and room again), entity, content, metadata, content hash, unique flag, creation time."""
    return (
        m.id,
        m.agent_id,
        table,
        m.room_id,
        m.world_id,
        m.agent_id,
        m.room_id,
        m.entity_id,
        Jsonb(m.content.to_json_dict()),
        Jsonb(m.metadata.to_json_dict()),
        m.content_hash,
        m.unique,
        from_ms(m.created_at, "created_at"),
    )


async def _reply_with_logs(conn: Connection, reply: tuple[Query, Params], logs: tuple[Query, Params]) -> bool:
    """The reply's and the logs' inserts behind one Sync: one round trip, one transaction, one
    commit (its WAL flush is most of a write's time). True when the reply was stored.

    Should that transaction fail, the reply is stored alone and the logs are given up (a
    warning): failed logs never undo a reply.

    Raises:
        psycopg.Error: the reply failed on its own too.
    """
    try:
        async with conn.pipeline():
            stored = await conn.execute(*reply)
            await conn.execute(*logs)
        return stored.rowcount == 1
    except psycopg.Error:
        logger.warning("the reply and the turn's logs failed together; the reply is stored alone", exc_info=True)
    return (await conn.execute(*reply)).rowcount == 1
