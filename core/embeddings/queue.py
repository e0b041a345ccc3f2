"""Sending embedding requests to SQS: one ``SendMessageBatch`` per turn, within a time budget.

A turn buffers a high-priority request (the user's message) and a normal one (each reply).
They go in one call to the high queue (``RIDE_ALONG``): one SQS round trip on the reply path
instead of one per priority, and a reply's vector arrives as soon as its message's. Low
requests (facts, document fragments, possibly hundreds) keep their own queue, so a bulk
import never crowds the high queue.

The sends run at the end of a turn, after the reply is known. A process that can run work after
its response (the messages function: ``functions.after_response``, a Lambda internal extension)
gives the queue ``after_response``: the sends then leave the reply path altogether and run once
the response has gone. Otherwise the turn waits for them, at most ``budget_s``
(``EMBEDDING_QUEUE_BUDGET_S``, 1 s); deferred sends keep to the same budget, which bounds the
billed time after the response. The client is made with matching timeouts and no retry
(``core.aws.fail_fast_config``), so a send still running then ends on its own soon after.
Requests not accepted leave their memory pending: the scheduled sweep queues it again
(``core.tasks.housekeeping``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError

from core.embeddings.request import PRIORITIES, EmbeddingRequest, Priority
from core.types import Memory

logger = logging.getLogger(__name__)

#: SQS accepts at most 10 entries per ``SendMessageBatch`` call.
SQS_BATCH_LIMIT = 10
#: Requests sent in the same call as the high ones when a turn has both (one SQS round trip).
RIDE_ALONG: frozenset[Priority] = frozenset({"normal"})
#: Takes a no-argument callable and runs it after the invocation's response (``functions.after_response``).
AfterResponse = Callable[[Callable[[], object]], None]


class EmbeddingQueue:
    """The process's link to the three embedding queues.

    Args:
        sqs_client: A boto3 SQS client, made once per process.
        queue_urls: Queue URL by priority (``high``, ``normal``, ``low``).
        dimension: ``EMBEDDING_DIMENSION``, carried in every request.
        budget_s: Most seconds one ``flush`` spends on SQS (``None``: as long as the client takes).
        after_response: Where the sends go when the reply must not wait for them (see the module
            docstring); ``None``: ``flush`` sends and waits.
    """

    def __init__(
        self,
        sqs_client: Any,
        queue_urls: Mapping[str, str],
        *,
        dimension: int = 384,
        budget_s: float | None = None,
        after_response: AfterResponse | None = None,
    ) -> None:
        self.sqs = sqs_client
        self.queue_urls = dict(queue_urls)
        self.dimension = dimension
        self.budget_s = budget_s
        self.after_response = after_response

    def batch(self) -> EmbeddingBatch:
        """A new per-invocation buffer of requests."""
        return EmbeddingBatch(self)


class EmbeddingBatch:
    """Requests gathered during one invocation, sent together at the end of the turn."""

    def __init__(self, queue: EmbeddingQueue) -> None:
        self._queue = queue
        self._pending: dict[Priority, list[EmbeddingRequest]] = {p: [] for p in PRIORITIES}
        #: Memories whose request SQS accepted in the last ``flush``.
        self.accepted: list[UUID] = []

    def add(self, memory: Memory, priority: Priority = "normal") -> bool:
        """Buffer a request for ``memory`` (elizaOS ``queueEmbeddingGeneration``).

        Returns:
            False when skipped: the memory already has an embedding or has no text.

        Raises:
            ValueError: ``priority`` is not ``high``, ``normal`` or ``low``.
        """
        if priority not in self._pending:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")
        if memory.embedding is not None or not memory.text.strip():
            return False
        self._pending[priority].append(
            EmbeddingRequest(
                memory_id=memory.id,
                agent_id=memory.agent_id,
                content_hash=memory.content_hash,
                priority=priority,
                dimension=self._queue.dimension,
            )
        )
        return True

    @property
    def size(self) -> int:
        """Requests buffered and not yet sent."""
        return sum(len(v) for v in self._pending.values())

    async def flush(self) -> int:
        """Send everything buffered: one ``SendMessageBatch`` per queue (per 10 requests), at once.

        Normal requests ride in the high queue's call when there are high ones (``RIDE_ALONG``).

        SQS failures are logged, never raised: the reply must not fail because SQS did; the
        memories stay without embedding and the scheduled sweep queues them again. Waits at
        most the queue's ``budget_s``; sends still running then count as not accepted. With
        ``after_response``, hands the sends over and returns at once (they keep to the budget).

        Returns:
            Number of requests SQS accepted (their memories are listed in ``accepted``); 0 when
            the sends were deferred until after the response.
        """
        calls = [
            (priority, requests[i : i + SQS_BATCH_LIMIT])
            for priority, requests in _by_queue(self._pending).items()
            for i in range(0, len(requests), SQS_BATCH_LIMIT)
        ]
        self._pending = {p: [] for p in PRIORITIES}
        self.accepted = []
        if not calls:
            return 0
        if self._queue.after_response is not None:
            self._queue.after_response(lambda: self._send_within_budget(calls))
            return 0
        sends = [asyncio.create_task(asyncio.to_thread(self._send, priority, chunk)) for priority, chunk in calls]
        done, late = await asyncio.wait(sends, timeout=self._queue.budget_s)
        if late:
            logger.warning(
                "SQS did not answer within %.2f s: %d SendMessageBatch call(s) left pending for the sweep",
                self._queue.budget_s,
                len(late),
            )
        for task in done:
            self.accepted.extend(task.result())
        return len(self.accepted)

    def _send_within_budget(self, calls: list[tuple[Priority, list[EmbeddingRequest]]]) -> None:
        """The deferred sends, one after the other (after the response, nobody waits for them in
        parallel); those the budget leaves no time for stay pending for the sweep."""
        started = time.monotonic()
        for done, (priority, chunk) in enumerate(calls):
            if self._queue.budget_s is not None and time.monotonic() - started > self._queue.budget_s:
                left = sum(len(c) for _, c in calls[done:])
                logger.warning("embedding queue budget spent: %d request(s) left pending for the sweep", left)
                return
            self._send(priority, chunk)  # failures are logged there; the sweep covers them

    def _send(self, priority: Priority, requests: list[EmbeddingRequest]) -> list[UUID]:
        """One ``SendMessageBatch``; returns the memories whose request SQS accepted."""
        url = self._queue.queue_urls.get(priority)
        if not url:
            logger.warning("no %s embedding queue configured; %d request(s) left pending", priority, len(requests))
            return []
        entries = [{"Id": str(i), "MessageBody": r.model_dump_json(by_alias=True)} for i, r in enumerate(requests)]
        try:
            response = self._queue.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        except (BotoCoreError, ClientError) as exc:
            logger.warning(
                "SendMessageBatch to the %s queue failed (%s); %d request(s) left pending", priority, exc, len(requests)
            )
            return []
        for failure in response.get("Failed", []):
            logger.warning("SQS refused embedding request %s: %s", failure.get("Id"), failure.get("Message"))
        return [requests[int(ok["Id"])].memory_id for ok in response.get("Successful", [])]


def _by_queue(pending: dict[Priority, list[EmbeddingRequest]]) -> dict[Priority, list[EmbeddingRequest]]:
    """The queue each buffered request goes to: normal ones join high ones (one call), low ones stay."""
    queues = {p: list(requests) for p, requests in pending.items() if requests}
    if "high" in queues:
        for priority in RIDE_ALONG & queues.keys():
            queues["high"] += queues.pop(priority)
    return queues
