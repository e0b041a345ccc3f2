"""Local SQS: moto's server running in this process, and the embedding queues on it.

Moto keeps its state in module-level backends, so every moto server started in one process
shares the same queues (a restarted server still lists the queues of the previous one, with
their old URLs). :meth:`MotoSqs.stop` therefore clears that state by default, so a stopped
server behaves like a process that exited.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
import urllib.request
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)

#: Queue priorities, in the order they are drained.
PRIORITIES: tuple[str, ...] = ("high", "normal", "low")

#: How long a dead-letter queue keeps messages: SQS's maximum, 14 days, in seconds.
_DLQ_RETENTION_S = 14 * 24 * 3600

#: Seconds moto's server may take to listen before start_moto_server gives up.
_START_TIMEOUT_S = 15

#: Error codes SQS uses for "a queue with this name exists with other attributes".
_QUEUE_EXISTS_CODES = frozenset({"QueueAlreadyExists", "QueueNameExists", "AWS.SimpleQueueService.QueueNameExists"})


@dataclass
class MotoSqs:
    """A running in-process moto server.

    Attributes:
        endpoint_url: Base URL to pass as ``endpoint_url`` to boto3 clients.
        server: The underlying ``moto.server.ThreadedMotoServer``.
    """

    endpoint_url: str
    server: Any

    def reset(self) -> None:
        """Drop every queue and message (moto's ``/moto-api/reset``)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=5):
            pass

    def stop(self, reset: bool = True) -> None:
        """Stop the server.

        Args:
            reset: Also drop moto's in-process state, which would otherwise outlive the
                server and show up in the next one started in this process.
        """
        if reset:
            try:
                self.reset()
            except OSError:
                logger.warning("could not reset moto state at %s", self.endpoint_url, exc_info=True)
        self.server.stop()
        logger.info("moto server at %s stopped", self.endpoint_url)


def start_moto_server(host: str = "127.0.0.1", port: int = 0) -> MotoSqs:
    """Start moto's server in a background thread of this process.

    Args:
        host: Interface to listen on.
        port: TCP port; 0 picks a free one.

    Returns:
        The running server, with its ``endpoint_url``.

    Raises:
        OSError: The port cannot be bound (``EADDRINUSE``...), or the server did not start in 15 s.
    """
    # Imported here: moto is a local-only dependency, never in the Lambda package.
    from moto.server import ThreadedMotoServer

    # moto binds in its own thread and its start() waits for that thread forever when the bind
    # fails: bind once here to fail with the cause, and never wait without a limit.
    if port:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))

    # Werkzeug logs every request at INFO through its own stderr handler unless the logger
    # is configured; a poller hits the server every second, so keep it to warnings.
    werkzeug_logger = logging.getLogger("werkzeug")
    if werkzeug_logger.level == logging.NOTSET:
        werkzeug_logger.setLevel(logging.WARNING)

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    starter = threading.Thread(target=server.start, name="moto-start", daemon=True)
    starter.start()
    starter.join(_START_TIMEOUT_S)
    if starter.is_alive():
        raise OSError(errno.ETIMEDOUT, f"moto's server did not start on {host}:{port} within {_START_TIMEOUT_S} s")
    bound_host, bound_port = server.get_host_and_port()
    url_host = "127.0.0.1" if bound_host in ("", "0.0.0.0") else bound_host
    endpoint_url = f"http://{url_host}:{bound_port}"
    logger.info("moto server listening on %s", endpoint_url)
    return MotoSqs(endpoint_url=endpoint_url, server=server)


def _ensure_queue(sqs_client: Any, name: str, attributes: dict[str, str]) -> str:
    """Create a queue, or bring an existing one to ``attributes``.

    Args:
        sqs_client: A boto3 SQS client.
        name: Queue name.
        attributes: Queue attributes to set.

    Returns:
        The queue URL.

    Raises:
        botocore.exceptions.ClientError: Any SQS error other than "queue exists".
    """
    try:
        created: str = sqs_client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return created
    except ClientError as exc:
        # CreateQueue is idempotent only for identical attributes; e.g. a changed
        # visibility timeout must update the queue instead of failing start-up.
        if exc.response.get("Error", {}).get("Code") not in _QUEUE_EXISTS_CODES:
            raise
    url: str = sqs_client.get_queue_url(QueueName=name)["QueueUrl"]
    sqs_client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def queue_arn(sqs_client: Any, queue_url: str) -> str:
    """The ARN of a queue.

    Args:
        sqs_client: A boto3 SQS client.
        queue_url: URL of the queue.

    Returns:
        The queue's ``QueueArn`` attribute.
    """
    attributes = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    arn: str = attributes["Attributes"]["QueueArn"]
    return arn


def create_embedding_queues(
    sqs_client: Any,
    prefix: str = "agent-runtime",
    max_receive_count: int = 3,
    visibility_timeout_s: int = 30,
) -> dict[str, str]:
    """Create the embedding queues, each with its dead-letter queue (idempotent).

    Queues are named ``{prefix}-embeddings-{priority}`` and
    ``{prefix}-embeddings-{priority}-dlq``; a message received more than
    ``max_receive_count`` times moves to the DLQ.

    Args:
        sqs_client: A boto3 SQS client.
        prefix: Name prefix of the queues.
        max_receive_count: Receives before a message is moved to its DLQ.
        visibility_timeout_s: Visibility timeout of the main queues, in seconds.

    Returns:
        Main queue URLs by priority: ``{"high": url, "normal": url, "low": url}``.
    """
    urls: dict[str, str] = {}
    for priority in PRIORITIES:
        name = f"{prefix}-embeddings-{priority}"
        dlq_url = _ensure_queue(sqs_client, f"{name}-dlq", {"MessageRetentionPeriod": str(_DLQ_RETENTION_S)})
        redrive_policy = json.dumps(
            {"deadLetterTargetArn": queue_arn(sqs_client, dlq_url), "maxReceiveCount": str(max_receive_count)}
        )
        urls[priority] = _ensure_queue(
            sqs_client,
            name,
            {"VisibilityTimeout": str(visibility_timeout_s), "RedrivePolicy": redrive_policy},
        )
    logger.info("embedding queues ready: %s", urls)
    return urls
