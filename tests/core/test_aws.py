"""core.aws: the process's AWS clients come from one botocore session (moto stands in for AWS)."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import botocore.loaders
import pytest
from botocore.exceptions import UnknownServiceError
from moto import mock_aws

from core import aws


@pytest.fixture
def clients():
    """Clients with no session yet, as at a cold start (the process's own are left alone)."""
    with mock_aws():
        yield aws.AwsClients()


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


def test_clients_of_several_services_share_one_session(clients, endpoint_loads):
    sqs = clients.client("sqs", region_name="us-east-1")
    secrets = clients.client("secretsmanager", region_name="us-east-1")
    ssm = clients.client("ssm", region_name="us-east-1")

    assert len(endpoint_loads) == 1  # a session each would parse it three times
    queue_url = sqs.create_queue(QueueName="shared")["QueueUrl"]
    assert sqs.get_queue_url(QueueName="shared")["QueueUrl"] == queue_url
    arn = secrets.create_secret(Name="db", SecretString="{}")["ARN"]
    assert secrets.get_secret_value(SecretId=arn)["SecretString"] == "{}"
    ssm.put_parameter(Name="/agent/key", Value="v", Type="SecureString")
    assert ssm.get_parameter(Name="/agent/key", WithDecryption=True)["Parameter"]["Value"] == "v"


def test_each_call_makes_a_new_client_with_its_own_options(clients):
    first = clients.client("sqs", region_name="us-east-1")
    second = clients.client("sqs", region_name="eu-west-1", endpoint_url="http://127.0.0.1:9")

    assert first is not second
    assert first.meta.region_name == "us-east-1"
    assert second.meta.region_name == "eu-west-1"
    assert second.meta.endpoint_url == "http://127.0.0.1:9"


def test_clients_made_on_many_threads_at_once_all_work(clients, endpoint_loads):
    start = threading.Barrier(8)

    def make(_: int):
        start.wait()  # all eight threads ask at once
        return clients.client("sqs", region_name="us-east-1")

    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = list(pool.map(make, range(8)))  # re-raises a thread's exception here

    assert len(clients) == 8 and len(endpoint_loads) == 1
    assert all(c.list_queues().get("QueueUrls", []) == [] for c in clients)


def test_an_unknown_service_is_a_typed_error(clients):
    with pytest.raises(UnknownServiceError):
        clients.client("no-such-service", region_name="us-east-1")


def test_the_module_function_uses_the_process_clients():
    assert isinstance(aws.PROCESS, aws.AwsClients)
    with mock_aws():
        assert aws.client("sqs", region_name="us-east-1").meta.service_model.service_name == "sqs"


def test_making_a_client_does_not_import_boto3():
    # boto3 costs ~24 MiB and ~120 ms (s3transfer mostly) and adds nothing to these clients.
    code = (
        "import sys; from core import aws;"
        " c = aws.AwsClients().client('sqs', region_name='us-east-1', aws_access_key_id='x',"
        " aws_secret_access_key='x');"
        " assert c.meta.service_model.service_name == 'sqs';"
        " print(sorted(m for m in sys.modules if m == 'boto3' or m.startswith(('boto3.', 's3transfer'))))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
