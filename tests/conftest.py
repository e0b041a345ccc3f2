"""Shared fixtures: one real Postgres (embedded, with pgvector) per test session, migrated once."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.db.migrations import migrate
from tests.ci_guard import pytest_configure, pytest_runtest_makereport  # noqa: F401 (hooks: local models never skip in CI)

# Fake AWS credentials before anything imports boto3: no test may reach a real account.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    # The server's secret (DM room ids, the character-secrets key): deployed it comes from Secrets Manager.
    "SERVER_SECRET": "test-server-secret-0123456789abcdef0123456789abcdef",
}.items():
    os.environ[_key] = _value


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A running embedded Postgres for the session (data under /tmp, never the home directory)."""
    from infra.local.postgres import start_embedded_postgres

    data_dir = Path(tempfile.mkdtemp(prefix="agent-runtime-test-pg-", dir="/tmp")) / "data"
    server = start_embedded_postgres(data_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_url(postgres) -> str:
    """URL of a migrated database, shared by the session (tests use their own agents and rooms)."""
    postgres.create_database("agents_test")
    url = postgres.database_url("agents_test")
    migrate(url)
    return url
