"""A local stand-in for Lambda's SQS event source mapping, with queue priorities.

The poller receives messages from the embedding queues, highest priority first, wraps each
batch in the SQS event Lambda would deliver, calls the handler with a fresh
:class:`~infra.local.lambda_context.LambdaContext` and then settles the batch the way an event
source mapping with ``ReportBatchItemFailures`` does:

* the handler returns ``{"batchItemFailures": [{"itemIdentifier": id}, ...]}``: every other
  message is deleted; the failed ones are made visible again at once (locally we do not want
  to wait a visibility timeout to see the retry; the DLQ redrive still applies);
* the handler returns anything without failures: the whole batch is deleted;
* the handler raises, or reports an id that is not in the batch: nothing is deleted and the
  batch comes back after the visibility timeout, as in Lambda.

Lambda polls each queue with its own mapping; here one poller serves all priorities so a
busy high-priority queue always drains before the others are looked at.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from infra.local.background import BackgroundLoop
from infra.local.lambda_context import new_context
from infra.local.sqs import PRIORITIES, queue_arn

logger = logging.getLogger(__name__)

#: A Lambda handler: ``handler(event, context) -> result``.
Handler = Callable[[dict[str, Any], Any], Any]

#: SQS's limit for batch calls (receive, delete, change visibility).
_SQS_BATCH_LIMIT = 10

#: Seconds to wait before polling again after SQS itself failed (e.g. server not up yet).
_ERROR_BACKOFF_S = 1.0


class InvalidBatchResponse(ValueError):
    """The handler's ``batchItemFailures`` cannot be honoured; Lambda fails the whole batch."""


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def lambda_message_attribute(attribute: Mapping[str, Any]) -> dict[str, Any]:
    """Convert one SQS API message attribute to the lower-camel form of Lambda events.

    Args:
        attribute: As returned by ``ReceiveMessage`` through boto3 (binary values as bytes).

    Returns:
        ``{"stringValue"?, "binaryValue"? (base64), "stringListValues", "binaryListValues",
        "dataType"}``.
    """
    converted: dict[str, Any] = {}
    if "StringValue" in attribute:
        converted["stringValue"] = attribute["StringValue"]
    if "BinaryValue" in attribute:
        converted["binaryValue"] = _b64(attribute["BinaryValue"])
    converted["stringListValues"] = list(attribute.get("StringListValues", []))
    converted["binaryListValues"] = [_b64(v) for v in attribute.get("BinaryListValues", [])]
    converted["dataType"] = attribute["DataType"]
    return converted


def sqs_record(message: Mapping[str, Any], event_source_arn: str, region: str) -> dict[str, Any]:
    """Build one ``Records[]`` entry of a Lambda SQS event from a received message.

    Args:
        message: A message from ``ReceiveMessage`` (with ``AttributeNames=["All"]``,
            ``MessageAttributeNames=["All"]``).
        event_source_arn: ARN of the queue the message came from.
        region: AWS region put into ``awsRegion``.

    Returns:
        The record, in the shape Lambda delivers.
    """
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: lambda_message_attribute(attribute)
            for name, attribute in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": event_source_arn, "awsRegion": region})
    return record


def failed_message_ids(result: Any, message_ids: Iterable[str]) -> set[str]:
    """The messages a handler reported as failed (``ReportBatchItemFailures``).

    Args:
        result: What the handler returned.
        message_ids: Ids of the messages in the batch.

    Returns:
        Ids to retry; empty when the whole batch succeeded.

    Raises:
        InvalidBatchResponse: An item has no ``itemIdentifier`` or one not in the batch;
            Lambda then treats the whole batch as failed.
    """
    if not isinstance(result, Mapping):
        return set()
    failures = result.get("batchItemFailures") or []
    known = set(message_ids)
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not identifier or identifier not in known:
            raise InvalidBatchResponse(f"itemIdentifier {identifier!r} is not a message of this batch")
        failed.add(identifier)
    return failed


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ordered_queues(queue_urls: Mapping[str, str]) -> list[tuple[str, str]]:
    """Queues in drain order: known priorities first (high, normal, low), then the rest."""
    known = [(p, queue_urls[p]) for p in PRIORITIES if p in queue_urls]
    others = [(p, url) for p, url in queue_urls.items() if p not in PRIORITIES]
    return known + others


class SqsPoller(BackgroundLoop):
    """Delivers SQS messages to a Lambda handler, high priority first.

    Example:
        >>> poller = SqsPoller(sqs, create_embedding_queues(sqs), embeddings.handler).start()
        >>> poller.stop()
    """

    def __init__(
        self,
        sqs_client: Any,
        queue_urls: dict[str, str],
        handler: Handler,
        function_name: str = "embeddings",
        batch_size: int = 10,
        wait_s: int = 1,
        region: str = "us-east-1",
        timeout_s: float = 30,
        memory_mb: int = 1024,
    ) -> None:
        """Configure the poller; nothing is received until :meth:`start` or :meth:`poll_once`.

        Args:
            sqs_client: A boto3 SQS client.
            queue_urls: Queue URLs by priority (``high``, ``normal``, ``low``), drained in
                that order.
            handler: The Lambda handler, ``handler(event, context)``.
            function_name: Function name put into each invocation's context.
            batch_size: Most messages per event (1-10, SQS's receive limit).
            wait_s: Long-poll time when every queue is empty, in whole seconds; also bounds
                how long :meth:`stop` takes.
            region: AWS region put into each record's ``awsRegion``.
            timeout_s: Function timeout in seconds, as seen by ``get_remaining_time_in_millis``.
            memory_mb: Memory size reported in the context, in MiB.

        Raises:
            ValueError: ``queue_urls`` is empty or ``batch_size`` is outside 1-10.
        """
        if not queue_urls:
            raise ValueError("queue_urls is empty")
        if not 1 <= batch_size <= _SQS_BATCH_LIMIT:
            raise ValueError(f"batch_size must be 1-{_SQS_BATCH_LIMIT}, got {batch_size}")
        self._sqs = sqs_client
        self._queues = _ordered_queues(queue_urls)
        self._handler = handler
        super().__init__("poller", function_name)
        self.batch_size = batch_size
        self.wait_s = int(wait_s)
        self.region = region
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._arns: dict[str, str] = {}

    # --- public API ---------------------------------------------------------------------

    def _detail(self) -> str:
        return f" on {[p for p, _ in self._queues]}"

    def poll_once(self) -> int:
        """Deliver at most one batch, from the highest-priority queue that has messages.

        Never waits: every queue is asked with ``WaitTimeSeconds=0``. Do not call it while
        the background thread runs (one container handles one event at a time).

        Returns:
            Number of messages delivered to the handler (0 when every queue was empty).

        Raises:
            botocore.exceptions.ClientError: SQS refused a receive.
        """
        for priority, url in self._queues:
            messages = self._receive(url, wait_s=0)
            if messages:
                self._deliver(priority, url, messages)
                return len(messages)
        return 0

    # --- internals ----------------------------------------------------------------------

    def _run(self) -> None:
        """Background loop: drain by priority, long-poll the top queue when all are empty."""
        top_priority, top_url = self._queues[0]
        while not self._stop.is_set():
            try:
                if self.poll_once():
                    continue  # start over from the top: high always drains first
                # Everything is empty: wait on the top queue. Lower queues are looked at
                # again after at most wait_s, which is fine for background work.
                messages = self._receive(top_url, wait_s=self.wait_s)
                if messages and not self._stop.is_set():
                    self._deliver(top_priority, top_url, messages)
                elif messages:
                    self._release(top_url, messages)  # stopping: hand them back at once
            except Exception:
                logger.exception("polling for %s failed; retrying", self.function_name)
                self._stop.wait(_ERROR_BACKOFF_S)

    def _receive(self, url: str, wait_s: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _arn(self, url: str) -> str:
        """The queue's ARN, looked up once per queue."""
        if url not in self._arns:
            self._arns[url] = queue_arn(self._sqs, url)
        return self._arns[url]

    def build_event(self, url: str, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The Lambda SQS event for a batch received from ``url``.

        Args:
            url: Queue the messages came from.
            messages: Messages as returned by ``ReceiveMessage``.

        Returns:
            ``{"Records": [...]}`` in Lambda's shape.
        """
        arn = self._arn(url)
        return {"Records": [sqs_record(m, arn, self.region) for m in messages]}

    def _deliver(self, priority: str, url: str, messages: Sequence[Mapping[str, Any]]) -> None:
        """Invoke the handler on one batch and settle it (delete, retry or leave)."""
        event = self.build_event(url, messages)
        context = new_context(self.function_name, self.timeout_s, self.memory_mb)
        try:
            result = self._handler(event, context)
        except Exception:
            # Lambda retries the whole batch after the visibility timeout: delete nothing.
            logger.exception(
                "%s failed on %d message(s) from the %s queue; batch left for retry",
                self.function_name,
                len(messages),
                priority,
            )
            return
        ids = [m["MessageId"] for m in messages]
        try:
            failed = failed_message_ids(result, ids)
        except InvalidBatchResponse as exc:
            logger.error("%s: %s; whole batch of %d left for retry", self.function_name, exc, len(messages))
            return
        self._delete(url, [m for m in messages if m["MessageId"] not in failed])
        self._release(url, [m for m in messages if m["MessageId"] in failed])
        logger.info(
            "%s: delivered %d message(s) from the %s queue, %d failed",
            self.function_name,
            len(messages),
            priority,
            len(failed),
        )

    def _delete(self, url: str, messages: Sequence[Mapping[str, Any]]) -> None:
        for chunk in _chunks(messages, _SQS_BATCH_LIMIT):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            response = self._sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            for failure in response.get("Failed", []):
                logger.warning("could not delete a message from %s: %s", url, failure)

    def _release(self, url: str, messages: Sequence[Mapping[str, Any]]) -> None:
        """Make messages visible again now, so their retry (or DLQ move) comes at once."""
        for chunk in _chunks(messages, _SQS_BATCH_LIMIT):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(chunk)
            ]
            response = self._sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
            for failure in response.get("Failed", []):
                logger.warning("could not release a message on %s: %s", url, failure)
