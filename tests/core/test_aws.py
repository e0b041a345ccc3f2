"""core.aws: the process's boto3 clients come from one session (moto stands in for AWS)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import botocore.loaders
import pytest
from botocore.exceptions import UnknownServiceError
from moto import mock_aws

from core import aws


@pytest.fixture
def fresh_session(monkeypatch):
    """No shared session yet, as at a cold start; the test's session is dropped after it."""
    monkeypatch.setattr(aws, "_session", None)
    with mock_aws():
        yield


@pytest.fixture
def endpoint_loads(monkeypatch):
    """How many times botocore parses ``endpoints.json`` (1.2 MB; once per session)."""
    loads: list[str] = []
    real = botocore.loaders.Loader.load_data_with_path

    def counting(self, name, *args, **kwargs):
        if name == "endpoints":
            loads.append(name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(botocore.loaders.Loader, "load_data_with_path", counting)
    return loads


def test_clients_of_several_services_share_one_session(fresh_session, endpoint_loads):
    sqs = aws.client("sqs", region_name="us-east-1")
    secrets = aws.client("secretsmanager", region_name="us-east-1")
    ssm = aws.client("ssm", region_name="us-east-1")

    assert len(endpoint_loads) == 1  # a session each would parse it three times
    queue_url = sqs.create_queue(QueueName="shared")["QueueUrl"]
    assert sqs.get_queue_url(QueueName="shared")["QueueUrl"] == queue_url
    arn = secrets.create_secret(Name="db", SecretString="{}")["ARN"]
    assert secrets.get_secret_value(SecretId=arn)["SecretString"] == "{}"
    ssm.put_parameter(Name="/agent/key", Value="v", Type="SecureString")
    assert ssm.get_parameter(Name="/agent/key", WithDecryption=True)["Parameter"]["Value"] == "v"


def test_each_call_makes_a_new_client_with_its_own_options(fresh_session):
    first = aws.client("sqs", region_name="us-east-1")
    second = aws.client("sqs", region_name="eu-west-1", endpoint_url="http://127.0.0.1:9")

    assert first is not second
    assert first.meta.region_name == "us-east-1"
    assert second.meta.region_name == "eu-west-1"
    assert second.meta.endpoint_url == "http://127.0.0.1:9"


def test_clients_made_on_many_threads_at_once_all_work(fresh_session, endpoint_loads):
    start = threading.Barrier(8)

    def make(_: int):
        start.wait()  # all eight threads ask at once
        return aws.client("sqs", region_name="us-east-1")

    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = list(pool.map(make, range(8)))  # re-raises a thread's exception here

    assert len(clients) == 8 and len(endpoint_loads) == 1
    assert all(c.list_queues().get("QueueUrls", []) == [] for c in clients)


def test_an_unknown_service_is_a_typed_error(fresh_session):
    with pytest.raises(UnknownServiceError):
        aws.client("no-such-service", region_name="us-east-1")

