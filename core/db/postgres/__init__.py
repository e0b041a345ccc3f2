"""``DatabaseAdapter`` on Postgres + pgvector, over a shared ``psycopg_pool`` pool.

One module per concern; ``PostgresAdapter`` composes them. Closing an adapter never closes
the pool (an elizaOS bug): the pool belongs to the process and is closed at shutdown only.
No query here runs DDL: the schema is the migrations' job.
"""

from __future__ import annotations

from core.db.postgres.agents import AgentsMixin
from core.db.postgres.connections import ConnectionsMixin
from core.db.postgres.embeddings import EmbeddingsMixin
from core.db.postgres.memories import MemoriesMixin


class PostgresAdapter(AgentsMixin, ConnectionsMixin, MemoriesMixin, EmbeddingsMixin):
    """Postgres implementation of ``core.db.adapter.DatabaseAdapter``.

    Args:
        pool: The process's open (or openable) pool; shared by every runtime.
        embedding_dimension: Length every vector must have (``EMBEDDING_DIMENSION``).
    """


__all__ = ["PostgresAdapter"]
