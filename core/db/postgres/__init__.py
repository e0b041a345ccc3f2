"""``DatabaseAdapter`` on Postgres + pgvector, over a shared ``psycopg_pool`` pool.

One module per concern; ``PostgresAdapter`` composes them. Closing an adapter never closes
the pool (an elizaOS bug): the pool belongs to the process and is closed at shutdown only.
No query here runs DDL: the schema is the migrations' job.
"""

from __future__ import annotations

from typing import Any

from core.db.adapter import DatabaseAdapter
from core.db.pool import Pool
from core.db.postgres.agents import AgentsMixin
from core.db.postgres.cache import CacheMixin
from core.db.postgres.components import ComponentsMixin
from core.db.postgres.connections import ConnectionsMixin
from core.db.postgres.embeddings import EmbeddingsMixin
from core.db.postgres.facts import FactsMixin
from core.db.postgres.knowledge import KnowledgeMixin
from core.db.postgres.logs import LogsMixin
from core.db.postgres.memories import MemoriesMixin
from core.db.postgres.relationships import RelationshipsMixin
from core.db.postgres.tasks import TasksMixin
from core.db.retry import RetryPolicy, retry_public_methods


# Every public async method retries transient errors (core.db.retry: what, when, why it is safe).
@retry_public_methods
class PostgresAdapter(
    AgentsMixin,
    ConnectionsMixin,
    ComponentsMixin,
    RelationshipsMixin,
    MemoriesMixin,
    EmbeddingsMixin,
    LogsMixin,
    CacheMixin,
    TasksMixin,
    KnowledgeMixin,
    FactsMixin,
):
    """Postgres implementation of ``core.db.adapter.DatabaseAdapter``.

    Args:
        pool: The process's open (or openable) pool; shared by every runtime.
        embedding_dimension: Length every vector must have (``EMBEDDING_DIMENSION``).
        retry_policy: Attempts and backoff for transient errors (``DB_RETRY_*`` by default).
        **kwargs: Passed on to the parts (``PostgresBase``).
    """

    def __init__(self, pool: Pool, *, retry_policy: RetryPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(pool, **kwargs)
        self.retry_policy = retry_policy or RetryPolicy.from_env()


# Checked by mypy: the adapter has every method of the protocol, with compatible signatures
# (retry_public_methods keeps them: its wrapper is typed with the wrapped method's ParamSpec).
_CONFORMS: type[DatabaseAdapter] = PostgresAdapter

__all__ = ["PostgresAdapter"]
