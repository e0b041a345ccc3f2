"""Fixtures for the local stack's pieces: fake AWS credentials and moto's real SQS server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.local.sqs import MotoSqs, start_moto_server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, so nothing can reach a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoSqs]:
    server = start_moto_server()
    yield server
    server.stop()


@pytest.fixture
def sqs(aws_env: None, moto: MotoSqs) -> Any:
    return boto3.client("sqs", endpoint_url=moto.endpoint_url, region_name="us-east-1")
