"""The handlers as Lambda runs them: imported once (init phase) with a real database, moto's SQS
server and the scripted models; invoked with real API Gateway and SQS events."""

from __future__ import annotations

import importlib
import os

import boto3
import pytest

from core.model_providers.scripted import models as scripted_models


@pytest.fixture(scope="session")
def sqs_server():
    from infra.local.sqs import create_embedding_queues, start_moto_server

    server = start_moto_server()
    client = boto3.client("sqs", endpoint_url=server.endpoint_url, region_name="us-east-1")
    urls = create_embedding_queues(client, prefix="fn-test", max_receive_count=2, visibility_timeout_s=1)
    yield client, urls, server.endpoint_url
    server.stop()


@pytest.fixture(scope="session")
def function_env(database_url, sqs_server):
    _, urls, endpoint = sqs_server
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "MODEL_PLUGINS": "core.model_providers.scripted",
            "AWS_ENDPOINT_URL_SQS": endpoint,
            **{f"EMBEDDINGS_{p.upper()}_QUEUE_URL": u for p, u in urls.items()},
        }
    )


def _function(name: str):
    module = importlib.import_module(name)
    yield module
    module.container.close()  # process shutdown: close the pool on its loop


@pytest.fixture(scope="session")
def messages_fn(function_env):
    yield from _function("functions.api.app")


@pytest.fixture(scope="session")
def embeddings_fn(function_env):
    yield from _function("functions.embeddings")


@pytest.fixture
def scripted():
    scripted_models.reset()
    yield scripted_models
    scripted_models.reset()


@pytest.fixture
def purge(sqs_server):
    client, urls, _ = sqs_server

    def _purge() -> None:
        # Deleted, not only received: a received message comes back after the visibility timeout (1 s).
        for url in urls.values():
            while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                client.delete_message_batch(QueueUrl=url, Entries=entries)

    _purge()
    return _purge
