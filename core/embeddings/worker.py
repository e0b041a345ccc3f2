"""The embedding worker's logic: one batched model call and one write per SQS batch, idempotent.

The Lambda handler (``functions/embeddings``) turns SQS records into ``EmbeddingRequest``s,
calls ``EmbeddingWorker.process`` once for the batch, then reports per-record outcomes
through Powertools' ``BatchProcessor``.

Oversized texts: the text sent to the model is cut to ``MAX_EMBEDDING_CHARS`` characters
(about 2,000 tokens), at the last whitespace before the limit. Providers cut again at their
own token limit (all-MiniLM-L6-v2: 256 tokens); long documents are split into fragments
before they are queued, so a cut only ever drops the tail of one very long message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from core.db.adapter import DatabaseAdapter, EmbeddingRow, EmbeddingTarget
from core.embeddings.request import EmbeddingRequest
from core.errors import ModelError
from core.events import EventBus, EventType

logger = logging.getLogger(__name__)

#: Longest text sent to the embedding model (characters); see the module docstring.
MAX_EMBEDDING_CHARS = 8_000
#: ``embed(texts) -> vectors``: one model call for the whole batch.
EmbedFn = Callable[[list[str]], Awaitable[list[list[float]]]]


class Outcome(StrEnum):
    """What became of one request."""

    EMBEDDED = "embedded"  # vector computed and stored
    DUPLICATE = "duplicate"  # this text already has its vector: no model call, no write
    STALE = "stale"  # memory deleted, text changed or other dimension: acknowledged, skipped
    FAILED = "failed"  # model or write failed: the record is retried by SQS


@dataclass
class BatchReport:
    """Outcomes by memory id, plus figures for metrics.

    Attributes:
        outcomes: One per distinct memory id in the batch.
        model_ms: Wall time of the model call (0 when no call was needed).
        errors: Error text by memory id, for failed ones.
    """

    outcomes: dict[UUID, Outcome] = field(default_factory=dict)
    model_ms: float = 0.0
    errors: dict[UUID, str] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes.values() if o is outcome)


class EmbeddingWorker:
    """Computes and stores vectors for a batch of requests.

    Args:
        adapter: Database adapter (reads targets, writes vectors).
        embed: Batched embedding call.
        model_name: Recorded with each vector.
        dimension: ``EMBEDDING_DIMENSION``: requests queued for another one are stale.
        events: Where ``EMBEDDING_GENERATION_COMPLETED`` / ``_FAILED`` are emitted, one per memory.
    """

    def __init__(
        self,
        adapter: DatabaseAdapter,
        embed: EmbedFn,
        model_name: str,
        *,
        dimension: int = 384,
        events: EventBus | None = None,
    ) -> None:
        self.adapter = adapter
        self.embed = embed
        self.model_name = model_name
        self.dimension = dimension
        self.events = events

    async def process(self, requests: Sequence[EmbeddingRequest]) -> BatchReport:
        """Embed what needs it; classify the rest. Never raises for a model or write failure:
        those requests are reported ``FAILED`` so SQS retries them alone."""
        report = BatchReport()
        targets = {
            t.memory_id: t for t in await self.adapter.get_embedding_targets(list({r.memory_id for r in requests}))
        }
        todo: dict[UUID, EmbeddingTarget] = {}
        for request in requests:
            target = targets.get(request.memory_id)
            report.outcomes[request.memory_id] = _classify(request, target, self.dimension)
            if report.outcomes[request.memory_id] is Outcome.EMBEDDED and target is not None:
                todo[target.memory_id] = target
        if todo:
            await self._embed_and_store(list(todo.values()), report)
        await self._emit(report, targets)
        return report

    async def _emit(self, report: BatchReport, targets: dict[UUID, EmbeddingTarget]) -> None:
        if self.events is None:
            return
        for memory_id, outcome in report.outcomes.items():
            if outcome not in (Outcome.EMBEDDED, Outcome.FAILED):
                continue
            payload = {
                "memoryId": str(memory_id),
                "agentId": str(targets[memory_id].agent_id),
                "model": self.model_name,
                "error": report.errors.get(memory_id),
            }
            name = (
                EventType.EMBEDDING_GENERATION_COMPLETED
                if outcome is Outcome.EMBEDDED
                else EventType.EMBEDDING_GENERATION_FAILED
            )
            await self.events.emit(name, payload)

    async def _embed_and_store(self, targets: list[EmbeddingTarget], report: BatchReport) -> None:
        started = time.perf_counter()
        vectors = await self._vectors(targets, report)
        report.model_ms = (time.perf_counter() - started) * 1000
        done = [(t, v) for t, v in zip(targets, vectors, strict=True) if v is not None]
        if not done:
            return
        try:
            await self.adapter.upsert_embeddings(
                [EmbeddingRow(t.memory_id, t.agent_id, t.content_hash, self.model_name, v) for t, v in done]
            )
        except Exception as exc:  # the write failed: each record is retried by SQS
            logger.exception("storing %d embeddings failed", len(done))
            for target, _ in done:
                _fail(report, target, exc)

    async def _vectors(self, targets: list[EmbeddingTarget], report: BatchReport) -> list[list[float] | None]:
        """One vector per target (``None`` for a failed one, recorded in ``report``).

        One model call for the batch. When the model refuses it (a non-retryable
        ``ModelError``: one text it will not embed spoils the whole request), each text is sent
        alone, so the refused one fails by itself and its batch-mates are stored. A retryable
        failure (timeout, throttling, outage) fails the whole batch: splitting it would
        multiply the calls to a model that is already struggling, and SQS retries it anyway.
        """
        texts = [truncate(t.text) for t in targets]
        try:
            vectors: list[list[float] | None] = list(await self.embed(texts))
            return vectors
        except Exception as exc:
            if len(targets) == 1 or not _refused(exc):
                logger.exception("embedding batch of %d failed", len(targets))
                for target in targets:
                    _fail(report, target, exc)
                return [None] * len(targets)
            logger.warning("the model refused a batch of %d (%s): embedding its texts one at a time", len(targets), exc)
        alone: list[list[float] | None] = []
        for target, text in zip(targets, texts, strict=True):
            try:
                [vector] = await self.embed([text])
                alone.append(vector)
            except Exception as exc:
                logger.warning("the model refused memory %s: %s", target.memory_id, exc)
                _fail(report, target, exc)
                alone.append(None)
        return alone


def _refused(exc: BaseException) -> bool:
    """Whether a model error says the request itself is bad (so a smaller one may pass)."""
    return isinstance(exc, ModelError) and not exc.retryable


def _fail(report: BatchReport, target: EmbeddingTarget, exc: BaseException) -> None:
    report.outcomes[target.memory_id] = Outcome.FAILED
    report.errors[target.memory_id] = str(exc)


def truncate(text: str, limit: int = MAX_EMBEDDING_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, at the last whitespace when there is one."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut


def _classify(request: EmbeddingRequest, target: EmbeddingTarget | None, dimension: int) -> Outcome:
    if target is None or target.content_hash != request.content_hash or not target.text.strip():
        return Outcome.STALE
    if request.dimension != dimension:  # queued before a model change; the sweep re-queues it
        return Outcome.STALE
    if target.embedded_hash == target.content_hash:
        return Outcome.DUPLICATE
    return Outcome.EMBEDDED
