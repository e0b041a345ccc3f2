"""Moto's SQS server in process and the embedding queues created on it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import httpx
import pytest

from infra.local.sqs import MotoSqs, create_embedding_queues, start_moto_server


@pytest.fixture
def prefix() -> str:
    """A fresh queue prefix per test: moto's state is shared by the whole process."""
    return f"t{uuid.uuid4().hex[:8]}"


def test_server_listens_on_a_free_port(moto: MotoSqs) -> None:
    assert moto.endpoint_url.startswith("http://127.0.0.1:")
    assert int(moto.endpoint_url.rsplit(":", 1)[1]) > 0


def test_creates_three_queues_each_with_its_dlq(sqs: Any, prefix: str) -> None:
    urls = create_embedding_queues(sqs, prefix=prefix, max_receive_count=4, visibility_timeout_s=7)

    assert list(urls) == ["high", "normal", "low"]
    for priority, url in urls.items():
        assert url.endswith(f"/{prefix}-embeddings-{priority}")
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["VisibilityTimeout"] == "7"
        policy = json.loads(attributes["RedrivePolicy"])
        assert int(policy["maxReceiveCount"]) == 4
        assert policy["deadLetterTargetArn"].endswith(f":{prefix}-embeddings-{priority}-dlq")
        dlq_url = sqs.get_queue_url(QueueName=f"{prefix}-embeddings-{priority}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]
        assert dlq_arn["QueueArn"] == policy["deadLetterTargetArn"]


def test_creating_twice_returns_the_same_urls(sqs: Any, prefix: str) -> None:
    first = create_embedding_queues(sqs, prefix=prefix)
    second = create_embedding_queues(sqs, prefix=prefix)

    assert first == second
    names = [u.rsplit("/", 1)[1] for u in sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]]
    assert len(names) == 6


def test_recreating_with_other_settings_updates_the_queues(sqs: Any, prefix: str) -> None:
    first = create_embedding_queues(sqs, prefix=prefix, visibility_timeout_s=30)
    second = create_embedding_queues(sqs, prefix=prefix, visibility_timeout_s=5, max_receive_count=9)

    assert first == second
    attributes = sqs.get_queue_attributes(QueueUrl=second["low"], AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "5"
    assert int(json.loads(attributes["RedrivePolicy"])["maxReceiveCount"]) == 9


def test_stop_closes_the_endpoint_and_clears_state(aws_env: None) -> None:
    server = start_moto_server()
    client = boto3.client("sqs", endpoint_url=server.endpoint_url, region_name="us-east-1")
    client.create_queue(QueueName="left-behind")

    server.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(server.endpoint_url, timeout=2)
    # Moto's backends outlive the server; stop() must not leak queues into the next one.
    again = start_moto_server()
    try:
        client = boto3.client("sqs", endpoint_url=again.endpoint_url, region_name="us-east-1")
        assert "QueueUrls" not in client.list_queues(QueueNamePrefix="left-behind")
    finally:
        again.stop(reset=False)
