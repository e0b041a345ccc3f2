"""Housekeeping done by every scheduled run, bounded per run.

* **Lost embeddings.** A memory is stored first and its embedding queued after the reply
  (docs/architecture.md "Embeddings off the reply path"); if SQS was down, or a request went to a DLQ,
  the memory stays without a vector. Memories with text still without a vector of their
  current text ``EMBEDDING_PENDING_AFTER_S`` after creation (and younger than
  ``EMBEDDING_PENDING_MAX_AGE_S``) are queued again at normal priority, at most
  ``EMBEDDING_REQUEUE_LIMIT`` per run. The worker is idempotent, so a request that was merely
  slow costs one skipped duplicate.
* **Expired cache rows.** Invisible to reads already; deleted here, at most
  ``CACHE_SWEEP_LIMIT`` per run.

Each step is independent: one failing is logged and does not stop the other, nor the tasks.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from core.db.adapter import DatabaseAdapter
from core.embeddings.queue import EmbeddingQueue
from core.settings.tasks import HousekeepingSettings

logger = logging.getLogger(__name__)


@dataclass
class HousekeepingReport:
    """What one housekeeping pass did.

    Attributes:
        pending_embeddings: Memories found without a current vector.
        requeued_embeddings: Requests SQS accepted for them.
        expired_cache_deleted: Expired cache rows deleted.
        errors: Steps that failed (logged).
    """

    pending_embeddings: int = 0
    requeued_embeddings: int = 0
    expired_cache_deleted: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        """The report as a JSON-ready dict (snake_case keys)."""
        return asdict(self)


class Housekeeping:
    """Re-queues lost embeddings and deletes expired cache rows.

    Args:
        adapter: The database adapter.
        embedding_queue: The process's SQS link; ``None`` skips the re-queue (with a warning).
        settings: Bounds (``HousekeepingSettings.from_env()`` by default).
    """

    def __init__(
        self,
        adapter: DatabaseAdapter,
        embedding_queue: EmbeddingQueue | None,
        settings: HousekeepingSettings | None = None,
    ) -> None:
        self.adapter = adapter
        self.embedding_queue = embedding_queue
        self.settings = settings or HousekeepingSettings.from_env()

    async def run(self) -> HousekeepingReport:
        """One pass: re-queue lost embeddings, then delete expired cache rows. Never raises."""
        report = HousekeepingReport()
        await self.requeue_embeddings(report)
        await self.sweep_cache(report)
        return report

    async def requeue_embeddings(self, report: HousekeepingReport) -> None:
        """Queue again (normal priority) memories whose embedding never arrived."""
        if self.embedding_queue is None:
            logger.warning("no embedding queue configured: pending embeddings are not re-queued")
            return
        settings = self.settings
        try:
            pending = await self.adapter.get_pending_embeddings(
                settings.embedding_pending_after_s,
                settings.embedding_requeue_limit,
                max_age_s=settings.embedding_pending_max_age_s,
            )
        except Exception:
            logger.exception("looking for pending embeddings failed")
            report.errors += 1
            return
        report.pending_embeddings = len(pending)
        if not pending:
            return
        batch = self.embedding_queue.batch()
        for memory in pending:
            batch.add(memory, "normal")
        report.requeued_embeddings = await batch.flush()  # SQS failures are logged, never raised
        logger.info("re-queued %d of %d memories still without an embedding", report.requeued_embeddings, len(pending))

    async def sweep_cache(self, report: HousekeepingReport) -> None:
        """Delete up to ``CACHE_SWEEP_LIMIT`` expired cache rows."""
        try:
            report.expired_cache_deleted = await self.adapter.delete_expired_cache(self.settings.cache_sweep_limit)
        except Exception:
            logger.exception("deleting expired cache rows failed")
            report.errors += 1
