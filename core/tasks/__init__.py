"""Scheduled task workers: durable, leased, exactly one executor at a time.

``TaskWorker`` (``worker``) is what plugins register. ``TaskRunner`` (``runner``) claims due
tasks with a lease and runs them; ``Housekeeping`` (``housekeeping``) re-queues lost
embeddings and deletes expired cache rows; both are driven by ``functions.tasks`` on an
EventBridge Scheduler rate. Only ``TaskWorker`` is imported here, so ``core.plugin`` can use
it without importing the runtime.
"""

from __future__ import annotations

from core.tasks.worker import TaskWorker

__all__ = ["TaskWorker"]
