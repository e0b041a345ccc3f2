"""The SQS poller against moto's real server: priorities, event shape, batch failures, DLQ."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from typing import Any

import pytest

from infra.local.lambda_context import LambdaContext
from infra.local.poller import SqsPoller
from infra.local.sqs import create_embedding_queues

RECORD_KEYS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}
ATTRIBUTE_KEYS = {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"}
MAX_RECEIVE_COUNT = 3


class Recorder:
    """A handler that records events and answers with ``result(event)``."""

    def __init__(self, result: Any = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.result = result or (lambda event: None)

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        return self.result(event)

    def bodies(self, index: int = -1) -> list[str]:
        return [r["body"] for r in self.events[index]["Records"]]


@pytest.fixture
def queues(sqs: Any) -> dict[str, str]:
    # Fresh queues per test (moto's state is process-wide); a 1 s visibility timeout keeps
    # the "comes back after the timeout" test short, since moto's clock is real time.
    prefix = f"t{uuid.uuid4().hex[:8]}"
    return create_embedding_queues(sqs, prefix=prefix, max_receive_count=MAX_RECEIVE_COUNT, visibility_timeout_s=1)


def counts(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    visible = int(attributes["ApproximateNumberOfMessages"])
    return visible, int(attributes["ApproximateNumberOfMessagesNotVisible"])


def dlq_url(sqs: Any, url: str) -> str:
    return sqs.get_queue_url(QueueName=url.rsplit("/", 1)[1] + "-dlq")["QueueUrl"]


def send(sqs: Any, url: str, *bodies: str) -> None:
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)


def test_high_priority_drains_first(sqs: Any, queues: dict[str, str]) -> None:
    send(sqs, queues["low"], "low-1", "low-2")
    send(sqs, queues["normal"], "normal-1")
    send(sqs, queues["high"], "high-1")
    handler = Recorder()
    poller = SqsPoller(sqs, queues, handler, wait_s=0)

    delivered = [poller.poll_once() for _ in range(4)]

    assert delivered == [1, 1, 2, 0]
    assert handler.bodies(0) == ["high-1"]
    assert handler.bodies(1) == ["normal-1"]
    assert sorted(handler.bodies(2)) == ["low-1", "low-2"]
    assert [e["Records"][0]["eventSourceARN"].rsplit("-", 1)[1] for e in handler.events] == [
        "high",
        "normal",
        "low",
    ]
    assert all(counts(sqs, url) == (0, 0) for url in queues.values())  # successes are deleted


def test_event_has_lambdas_sqs_shape(sqs: Any, queues: dict[str, str]) -> None:
    sqs.send_message(
        QueueUrl=queues["normal"],
        MessageBody='{"memoryId": "m1"}',
        MessageAttributes={
            "priority": {"DataType": "String", "StringValue": "normal"},
            "attempt": {"DataType": "Number", "StringValue": "2"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
        },
    )
    handler = Recorder()

    assert SqsPoller(sqs, queues, handler, function_name="embeddings", region="us-east-1").poll_once() == 1

    (record,) = handler.events[0]["Records"]
    assert record.keys() >= RECORD_KEYS
    assert record["attributes"].keys() >= ATTRIBUTE_KEYS
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["body"] == '{"memoryId": "m1"}'
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert (
        record["eventSourceARN"]
        == sqs.get_queue_attributes(QueueUrl=queues["normal"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    )
    assert record["awsRegion"] == "us-east-1"
    no_lists = {"stringListValues": [], "binaryListValues": []}
    assert record["messageAttributes"] == {
        "priority": {"stringValue": "normal", **no_lists, "dataType": "String"},
        "attempt": {"stringValue": "2", **no_lists, "dataType": "Number"},
        "blob": {"binaryValue": base64.b64encode(b"\x00\x01\xff").decode(), **no_lists, "dataType": "Binary"},
    }
    (context,) = handler.contexts
    assert isinstance(context, LambdaContext) and context.function_name == "embeddings"
    assert context.get_remaining_time_in_millis() > 0


def test_batch_item_failures_retry_only_failed_messages_then_dead_letter(sqs: Any, queues: dict[str, str]) -> None:
    send(sqs, queues["normal"], "ok-1", "poison", "ok-2")

    def fail_poison(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "poison"]
        }

    handler = Recorder(fail_poison)
    poller = SqsPoller(sqs, queues, handler, wait_s=0)

    assert poller.poll_once() == 3
    # The failed message is visible again at once; the others are gone.
    for receive in range(2, MAX_RECEIVE_COUNT + 1):
        assert poller.poll_once() == 1
        (record,) = handler.events[-1]["Records"]
        assert record["body"] == "poison"
        assert record["attributes"]["ApproximateReceiveCount"] == str(receive)
    # Received max_receive_count times: the next receive moves it to the DLQ (SQS redrive).
    assert poller.poll_once() == 0
    assert counts(sqs, queues["normal"]) == (0, 0)
    dead = sqs.receive_message(QueueUrl=dlq_url(sqs, queues["normal"]), MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]


def test_raising_handler_deletes_nothing(sqs: Any, queues: dict[str, str]) -> None:
    send(sqs, queues["high"], "a", "b")

    def explode(event: dict[str, Any]) -> Any:
        raise RuntimeError("model down")

    poller = SqsPoller(sqs, queues, Recorder(explode), wait_s=0)

    assert poller.poll_once() == 2
    assert counts(sqs, queues["high"]) == (0, 2)  # in flight, not deleted
    time.sleep(1.2)  # the 1 s visibility timeout, as Lambda would wait
    retry = Recorder()
    assert SqsPoller(sqs, queues, retry, wait_s=0).poll_once() == 2
    assert sorted(retry.bodies()) == ["a", "b"]
    assert {r["attributes"]["ApproximateReceiveCount"] for r in retry.events[0]["Records"]} == {"2"}


def test_unknown_item_identifier_fails_the_whole_batch(sqs: Any, queues: dict[str, str]) -> None:
    send(sqs, queues["low"], "x", "y")
    handler = Recorder(lambda event: {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]})

    assert SqsPoller(sqs, queues, handler, wait_s=0).poll_once() == 2

    assert counts(sqs, queues["low"]) == (0, 2)


def test_background_thread_delivers_and_stops_quickly(sqs: Any, queues: dict[str, str]) -> None:
    delivered = threading.Event()
    handler = Recorder(lambda event: delivered.set())
    poller = SqsPoller(sqs, queues, handler, wait_s=1).start()
    try:
        send(sqs, queues["low"], "background")
        assert delivered.wait(timeout=5)
    finally:
        started = time.monotonic()
        poller.stop()
        stop_s = time.monotonic() - started

    assert handler.bodies(0) == ["background"]
    assert stop_s < 2.5  # bounded by the 1 s long poll
    assert counts(sqs, queues["low"]) == (0, 0)
