"""The embedding worker function: SQS event source, partial batch responses.

One batched model call and one database write per SQS batch (``core.embeddings.worker``);
Powertools' ``BatchProcessor`` reports each failed record in ``batchItemFailures`` so only
it is retried (and moved to its DLQ after ``maxReceiveCount``).

Agents' plugins hear about their memories' vectors (elizaOS ``EMBEDDING_GENERATION_COMPLETED`` /
``EMBEDDING_GENERATION_FAILED``): this one process serves every agent, so the worker's events go
to ``AgentEvents``, which hands each to the memory's agent (the orchestrator, built in the init
phase as the tasks function's is) with elizaOS's payload: ``runtime``, ``memory`` (read only
when the agent has a handler for the event: one read per such event), ``error`` and
``source: "embeddings"``, plus ours (``memoryId``, ``agentId``, ``model``). Unlike elizaOS the
vector itself (``embedding``) and the request's ``priority`` are not in the payload.

Observability (``functions.observability``): the invocation's request id is the batch's
``correlation_id``; one line per batch names its queues, SQS message ids and memory ids (so a
memory can be followed from the message function's ``message handled`` line), one warning per
failed or unreadable record. Metrics per batch: ``BatchSize``, ``EmbeddingsStored``,
``SkippedDuplicates``, ``SkippedStale``, ``EmbeddingsFailed``, ``InvalidEmbeddingRequests``,
``ModelLatency`` (the batch's model call, ms; per-provider latency and tokens come from
``core.model_providers.usage``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from core.embeddings.request import EmbeddingRequest
from core.embeddings.worker import BatchReport, EmbeddingWorker, Outcome
from core.events import EventBus
from core.types import ModelType
from functions import end_init_phase
from functions.init_phase import build_container
from functions.observability import Observability

if TYPE_CHECKING:
    from core.orchestrator import Orchestrator

observability = Observability("agent-embeddings")
logger, metrics = observability.logger, observability.metrics
container = build_container()
_models = container.model_registry()


#: Ids listed on the batch line (an SQS batch holds at most 10,000 records).
MAX_LOGGED_IDS = 100


class EmbeddingFailedError(Exception):
    """Raised for a record whose embedding failed, so the batch processor reports it."""


async def _embed(texts: list[str]) -> list[list[float]]:
    vectors: list[list[float]] = await _models.use(None, ModelType.TEXT_EMBEDDING, {"texts": texts})
    return vectors


class AgentEvents(EventBus):
    """The worker's events, each delivered to the handlers of the memory's agent.

    Args:
        agents: The process's orchestrator (every agent's blueprint and its plugins' handlers).
        fallback: Where an event of an agent this process does not know goes (the model
            plugins' handlers, ``Container.events``).
    """

    def __init__(self, agents: Orchestrator, fallback: EventBus) -> None:
        super().__init__()
        self.agents = agents
        self.fallback = fallback

    async def emit(self, names: str | Iterable[str], payload: Mapping[str, Any]) -> int:
        """Run the memory's agent's handlers of ``names`` with elizaOS's payload.

        Args:
            names: EMBEDDING_GENERATION_COMPLETED or _FAILED (one name or several).
            payload: The worker's: ``memoryId``, ``agentId`` (strings), ``model``, ``error``.

        Returns:
            How many handlers failed (each logged, never raised).
        """
        chosen = [names] if isinstance(names, str) else list(names)
        agent_id = UUID(str(payload["agentId"]))
        if not self.agents.has_agent(agent_id):
            await self.agents.before_request(str(agent_id))  # stored since the last refresh?
        if not self.agents.has_agent(agent_id):
            return await self.fallback.emit(chosen, payload)
        if not any(self.agents.get_agent(agent_id).events.handlers(n) for n in chosen):
            return 0  # no listener: no read
        runtime = self.agents.runtime(agent_id)
        memory = await runtime.get_memory_by_id(UUID(str(payload["memoryId"])))
        failures = await runtime.emit_event(chosen, {**payload, "memory": memory, "source": "embeddings"})
        await runtime.flush_embeddings()  # a handler may have stored and queued memories
        return failures


orchestrator = container.orchestrator()
# Recorded with each vector: which provider made it.
worker = EmbeddingWorker(
    container.adapter,
    _embed,
    model_name=_models.candidates(ModelType.TEXT_EMBEDDING)[0].provider,
    dimension=container.settings.embedding_dimension,
    events=AgentEvents(orchestrator, container.events()),
)
# Report an all-failed batch as failures rather than raising: same retry, explicit response.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _parse(record: dict[str, Any]) -> EmbeddingRequest | None:
    try:
        return EmbeddingRequest.model_validate_json(record.get("body") or "")
    except ValidationError:
        return None


@observability.lambda_handler()
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point for SQS events. Returns ``{"batchItemFailures": [...]}``."""
    logger.set_correlation_id(context.aws_request_id)  # one invocation, one batch
    records = event.get("Records", [])
    requests = {r["messageId"]: _parse(r) for r in records}
    _log_batch(records, requests)
    valid = [r for r in requests.values() if r is not None]
    report = container.run(worker.process(valid)) if valid else BatchReport()
    _record_metrics(report, len(requests), invalid=sum(r is None for r in requests.values()))
    for memory_id, error in report.errors.items():
        logger.warning("embedding failed", extra={"memory_id": str(memory_id), "error": error[:500]})

    def record_handler(record: SQSRecord) -> str:
        request = requests.get(record.message_id)
        if request is None:
            raise ValueError(f"message {record.message_id} is not an embedding request")
        outcome = report.outcomes[request.memory_id]
        if outcome is Outcome.FAILED:
            raise EmbeddingFailedError(report.errors.get(request.memory_id, "embedding failed"))
        return outcome.value

    response: dict[str, Any] = dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
    return response


def _log_batch(records: list[dict[str, Any]], requests: dict[str, EmbeddingRequest | None]) -> None:
    """One line per batch: where it came from and what it holds (ids only, never texts)."""
    queues = sorted({str(r.get("eventSourceARN", "")).rsplit(":", 1)[-1] for r in records})
    logger.info(
        "embedding batch",
        extra={
            "batch_size": len(records),
            "queues": queues,
            "message_ids": list(requests)[:MAX_LOGGED_IDS],
            "memory_ids": [str(r.memory_id) for r in requests.values() if r is not None][:MAX_LOGGED_IDS],
        },
    )
    for message_id, request in requests.items():
        if request is None:
            logger.warning(
                "not an embedding request: reported failed (retried, then dead-lettered)",
                extra={"message_id": message_id},
            )


def _record_metrics(report: BatchReport, batch_size: int, *, invalid: int = 0) -> None:
    metrics.add_metric(name="BatchSize", unit=MetricUnit.Count, value=batch_size)
    metrics.add_metric(name="InvalidEmbeddingRequests", unit=MetricUnit.Count, value=invalid)
    metrics.add_metric(name="EmbeddingsStored", unit=MetricUnit.Count, value=report.count(Outcome.EMBEDDED))
    metrics.add_metric(name="SkippedDuplicates", unit=MetricUnit.Count, value=report.count(Outcome.DUPLICATE))
    metrics.add_metric(name="SkippedStale", unit=MetricUnit.Count, value=report.count(Outcome.STALE))
    metrics.add_metric(name="EmbeddingsFailed", unit=MetricUnit.Count, value=report.count(Outcome.FAILED))
    if report.model_ms:
        metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=report.model_ms)


end_init_phase()  # last: resumes the collector paused by functions/__init__.py
