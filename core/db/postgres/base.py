"""Shared state of the Postgres adapter's parts, and the one way they run a statement.

Every part runs its SQL through the helpers of ``PostgresBase``: ``_fetch_all``,
``_fetch_one``, ``_fetch_row``, ``_fetch_value``, ``_execute`` and ``_execute_many`` take a
connection from the pool for one statement (autocommit: the statement is its own
transaction); ``_transaction`` holds one connection in one transaction for several. The
helpers are private on purpose: ``core.db.retry.retry_public_methods`` wraps the *public*
methods, so a retry re-runs a whole adapter operation and errors name that operation, never a
helper.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, LiteralString, TypeVar, cast

import psycopg
from psycopg import sql
from psycopg.abc import Params
from psycopg.rows import DictRow
from pydantic import BaseModel

from core.db.pool import Connection, Pool
from core.db.postgres.values import to_ms
from core.errors import EmbeddingDimensionError
from core.types import Content, Memory, MemoryMetadata

if TYPE_CHECKING:
    from core.secret_box import SecretBox

M = TypeVar("M", bound=BaseModel)

#: A statement: literal SQL text or a ``psycopg.sql`` composition (never text built from values).
Query = LiteralString | bytes | sql.SQL | sql.Composed

#: Columns every memory query selects (alias ``m``), in the order ``memory_from_row`` reads; the
#: JSON columns as text, parsed by pydantic (``_parsed``).
MEMORY_COLUMNS = (
    "m.id, m.agent_id, m.room_id, m.world_id, m.entity_id, m.content::text AS content, m.metadata::text AS metadata,"
    " m.created_at"
)


class PostgresBase:
    """The pool, the settings and the statement helpers every part of ``PostgresAdapter`` uses.

    Args:
        pool: The process's pool; shared by every runtime and never closed by the adapter.
        embedding_dimension: Length every vector must have (``EMBEDDING_DIMENSION``).
        secret_box: Encrypts character secrets at rest (``core.secret_box``); ``None`` stores
            them as given (a library user's choice: every container passes one).

    Attributes:
        hnsw_ef_search: Candidate list size of one HNSW scan (``hnsw.ef_search``); higher is
            slower and more exact. Tuned by ``bench/vector_search.py``.
        hnsw_max_scan_tuples: Most tuples an iterative scan visits before giving up
            (``hnsw.max_scan_tuples``): bounds the cost of a filter that matches few rows.
        rerank_pool: How many vector candidates per result the text re-rank considers.
    """

    hnsw_ef_search: int = 64
    hnsw_max_scan_tuples: int = 20_000
    rerank_pool: int = 3

    def __init__(self, pool: Pool, *, embedding_dimension: int = 384, secret_box: SecretBox | None = None) -> None:
        self.pool = pool
        self.embedding_dimension = embedding_dimension
        self.secret_box = secret_box

    def check_dimension(self, vector: Sequence[float]) -> None:
        """Raises ``EmbeddingDimensionError`` when ``vector`` is not ``embedding_dimension`` long."""
        if len(vector) != self.embedding_dimension:
            raise EmbeddingDimensionError(
                f"vector has {len(vector)} dimensions; EMBEDDING_DIMENSION is {self.embedding_dimension}"
            )

    def _vector_search_settings(self) -> dict[str, str]:
        """``SET LOCAL`` values of a vector search: pgvector's iterative scan, bounded by the attributes."""
        return {
            "hnsw.iterative_scan": "relaxed_order",
            "hnsw.ef_search": str(self.hnsw_ef_search),
            "hnsw.max_scan_tuples": str(self.hnsw_max_scan_tuples),
        }

    # -- running statements -------------------------------------------------------------------

    async def _fetch_all(
        self, query: Query, params: Params | None = None, *, local: Mapping[str, str] | None = None
    ) -> list[DictRow]:
        """Every row of one statement.

        Args:
            query: The statement (a literal string or a ``psycopg.sql`` composition).
            params: Its parameters (a sequence for ``%s``, a mapping for ``%(name)s``).
            local: Server settings for this statement only (``{"hnsw.ef_search": "64"}``),
                set with ``SET LOCAL`` semantics in the same round trip (``_fetch_all_local``).

        Raises:
            psycopg.Error: the statement failed (typed and retried by ``core.db.retry``).
        """
        async with self.pool.connection() as conn:
            if local:
                return await _fetch_all_local(conn, local, query, params)
            return await (await conn.execute(query, params)).fetchall()

    async def _fetch_one(self, query: Query, params: Params | None = None) -> DictRow | None:
        """The first row of one statement, ``None`` when it returns none."""
        async with self.pool.connection() as conn:
            return await (await conn.execute(query, params)).fetchone()

    async def _fetch_row(self, query: Query, params: Params | None = None) -> DictRow:
        """The row of a statement that always returns one (an aggregate, ``RETURNING`` of an upsert...).

        Raises:
            RuntimeError: it returned no row (a bug in the statement, not a state of the data).
        """
        return required_row(await self._fetch_one(query, params))

    async def _fetch_value(self, query: Query, params: Params | None = None) -> Any:
        """The first column of the row of a statement that always returns one (``SELECT count(*)...``)."""
        return next(iter((await self._fetch_row(query, params)).values()))

    async def _execute(self, query: Query, params: Params | None = None) -> int:
        """Run one statement; returns how many rows it touched (``rowcount``)."""
        async with self.pool.connection() as conn:
            return (await conn.execute(query, params)).rowcount

    async def _execute_many(self, query: Query, params_seq: Iterable[Params]) -> None:
        """Run one statement once per parameter set, pipelined: one round trip, one transaction each."""
        async with self.pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(query, params_seq)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        """One connection in one transaction: committed when the block ends, rolled back if it raises."""
        async with self.pool.connection() as conn, conn.transaction():
            yield conn


async def _fetch_all_local(
    conn: Connection, local: Mapping[str, str], query: Query, params: Params | None
) -> list[DictRow]:
    """``query``'s rows after setting ``local`` for its transaction only, in one round trip.

    ``set_config(name, value, true)`` is ``SET LOCAL`` with bound values, and it ends with the
    transaction, so no session state pins an RDS Proxy connection. The transaction is sent as
    one round trip by ``in_one_round_trip`` (counted on the wire by ``bench/write_path.py``).

    Raises:
        psycopg.Error: a statement failed (the transaction is rolled back first, so the
            connection goes back to the pool idle).
    """
    values = [item for pair in local.items() for item in pair]
    _, cursor = await in_one_round_trip(conn, [(_set_local_sql(len(local)), values), (query, params)])
    return cast(list[DictRow], await cursor.fetchall())


@functools.cache
def _set_local_sql(settings: int) -> bytes:
    """``SELECT set_config(%s, %s, true), ...`` for ``settings`` settings (rendered once)."""
    return b"SELECT " + b", ".join([b"set_config(%s, %s, true)"] * settings)


async def in_one_round_trip(conn: Connection, statements: Sequence[tuple[Query, Params | None]]) -> list[Any]:
    """Run ``statements`` as one transaction sent in one round trip; returns their cursors, in order.

    BEGIN, the statements and COMMIT are pipelined behind a single Sync: ``conn.transaction()``
    would sync after BEGIN and again at COMMIT, three round trips where one does. Inside a
    ``core.db.pipelined`` block the statements go out back to back among the block's others, in
    the block's round trip (a nested pipeline would sync what the others sent first, and again
    at its end); their results are read from the cursors, which fetch them.

    Raises:
        psycopg.Error: a statement failed (outside a block, the transaction is rolled back
            first, so the connection goes back to the pool idle).
    """
    together = [("BEGIN", None), *statements, ("COMMIT", None)]
    if hasattr(conn, "execute_together"):  # a core.db.pipelined block's: join its round trip, no sync of our own
        return cast(list[Any], (await conn.execute_together(together))[1:-1])
    try:
        async with conn.pipeline():
            cursors = [await conn.execute(query, params) for query, params in together]
    except psycopg.Error:
        await conn.rollback()
        raise
    return cursors[1:-1]


def required_row(row: DictRow | None) -> DictRow:
    """``row``, from a statement that always returns one (inside a ``_transaction`` too).

    Raises:
        RuntimeError: it is ``None`` (a bug in the statement, not a state of the data).
    """
    if row is None:
        raise RuntimeError("a statement that always returns a row returned none")
    return row


def _parsed(model: type[M], value: str | Mapping[str, Any]) -> M:
    """``model`` from JSON text (``MEMORY_COLUMNS`` casts the jsonb columns: pydantic's own
    parser is twice as fast as ``json.loads`` and validation) or from an already parsed object."""
    return model.model_validate_json(value) if isinstance(value, str) else model.model_validate(value)


def memory_from_row(row: Mapping[str, Any]) -> Memory:
    """A ``Memory`` from a row selected with ``MEMORY_COLUMNS`` (plus an optional ``similarity``)."""
    return Memory(
        id=row["id"],
        agent_id=row["agent_id"],
        room_id=row["room_id"],
        world_id=row["world_id"],
        entity_id=row["entity_id"],
        content=_parsed(Content, row["content"]),
        metadata=_parsed(MemoryMetadata, row["metadata"]),
        created_at=to_ms(row["created_at"]),
        similarity=row.get("similarity"),
    )
