"""The embedding worker function: SQS event source, partial batch responses.

One batched model call and one database write per SQS batch (``core.embeddings.worker``);
Powertools' ``BatchProcessor`` reports each failed record in ``batchItemFailures`` so only
it is retried (and moved to its DLQ after ``maxReceiveCount``).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from core.embeddings.request import EmbeddingRequest
from core.embeddings.worker import BatchReport, EmbeddingWorker, Outcome
from core.types import ModelType
from functions.container import Container

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "agent-embeddings"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ServerlessAgentRuntime"))
container = Container()
_models = container.model_registry()


class EmbeddingFailedError(Exception):
    """Raised for a record whose embedding failed, so the batch processor reports it."""


async def _embed(texts: list[str]) -> list[list[float]]:
    return await _models.use(None, ModelType.TEXT_EMBEDDING, {"texts": texts})  # type: ignore[arg-type]


# Recorded with each vector: which provider made it.
worker = EmbeddingWorker(container.adapter, _embed, model_name=_models.candidates(ModelType.TEXT_EMBEDDING)[0].provider,
                         dimension=container.settings.embedding_dimension, events=container.events())
# Report an all-failed batch as failures rather than raising: same retry, explicit response.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _parse(record: dict[str, Any]) -> EmbeddingRequest | None:
    try:
        return EmbeddingRequest.model_validate_json(record.get("body") or "")
    except ValidationError:
        return None


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point for SQS events. Returns ``{"batchItemFailures": [...]}``."""
    requests = {r["messageId"]: _parse(r) for r in event.get("Records", [])}
    valid = [r for r in requests.values() if r is not None]
    report = container.run(worker.process(valid)) if valid else BatchReport()
    _record_metrics(report, len(requests))

    def record_handler(record: SQSRecord) -> str:
        request = requests.get(record.message_id)
        if request is None:
            raise ValueError(f"message {record.message_id} is not an embedding request")
        outcome = report.outcomes[request.memory_id]
        if outcome is Outcome.FAILED:
            raise EmbeddingFailedError(report.errors.get(request.memory_id, "embedding failed"))
        return outcome.value

    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)


def _record_metrics(report: BatchReport, batch_size: int) -> None:
    metrics.add_metric(name="BatchSize", unit=MetricUnit.Count, value=batch_size)
    metrics.add_metric(name="EmbeddingsStored", unit=MetricUnit.Count, value=report.count(Outcome.EMBEDDED))
    metrics.add_metric(name="SkippedDuplicates", unit=MetricUnit.Count, value=report.count(Outcome.DUPLICATE))
    metrics.add_metric(name="SkippedStale", unit=MetricUnit.Count, value=report.count(Outcome.STALE))
    metrics.add_metric(name="EmbeddingsFailed", unit=MetricUnit.Count, value=report.count(Outcome.FAILED))
    if report.model_ms:
        metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=report.model_ms)
