"""Housekeeping done by every scheduled run, bounded per run.

* **Lost embeddings.** A memory is stored first and its embedding queued after the reply
  (docs/architecture.md "Embeddings off the reply path"); if SQS was down, or a request went to a DLQ,
  the memory stays without a vector. Memories with text still without a vector of their
  current text are queued again at normal priority, at most ``EMBEDDING_REQUEUE_LIMIT`` per
  run, and the sweep converges instead of piling up (``embedding_requeues``, migration 0008):

  - a memory is queued again only ``requeue_after_s`` after it was created and after its last
    re-queue: ``EMBEDDING_PENDING_AFTER_S``, but never less than the queues' visibility timeout
    (``EMBEDDING_VISIBILITY_TIMEOUT_S``), so a request still waiting in a backlog or being
    worked on is not doubled at every run;
  - a text queued ``EMBEDDING_MAX_REQUEUES`` times and still without a vector (the model
    refuses it) is marked failed and never looked at again: it takes one slot of one run,
    not the head of every run's limit, so it never holds back newer memories;
  - only the requests SQS accepted are recorded: a run during an outage costs no attempt;
  - memories older than ``EMBEDDING_PENDING_MAX_AGE_S`` are not looked at (bounds the scan).

  The worker is idempotent, so a request that was merely slow costs one skipped duplicate.
  Measured (``tests/core/tasks/test_sweep_convergence.py``, fastest settings: visibility
  timeout and pending age 2 s, a run every second): after a 10 s SQS outage during which 40
  memories were written, every one is embedded within 8 s of the outage's end and the queues
  are empty; the text the model refuses is sent 1 + ``EMBEDDING_MAX_REQUEUES`` times in all.
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
                settings.requeue_after_s,
                settings.embedding_requeue_limit,
                max_age_s=settings.embedding_pending_max_age_s,
                max_requeues=settings.embedding_max_requeues,
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
        accepted = set(batch.accepted)
        try:
            await self.adapter.record_embedding_requeues([m for m in pending if m.id in accepted])
        except Exception:  # unrecorded, they are queued again a visibility timeout later: a duplicate, no loss
            logger.exception("recording %d re-queued embeddings failed", len(accepted))
            report.errors += 1

    async def sweep_cache(self, report: HousekeepingReport) -> None:
        """Delete up to ``CACHE_SWEEP_LIMIT`` expired cache rows."""
        try:
            report.expired_cache_deleted = await self.adapter.delete_expired_cache(self.settings.cache_sweep_limit)
        except Exception:
            logger.exception("deleting expired cache rows failed")
            report.errors += 1
