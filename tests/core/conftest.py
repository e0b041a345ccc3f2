"""Adapters on real Postgres and fresh agents, for every test under tests/core."""

from __future__ import annotations

import uuid

import boto3
import pytest
from moto import mock_aws

from core.db.adapter import AgentRecord
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.model_providers.scripted import ScriptedModels
from core.settings import Settings


@pytest.fixture
async def adapter(database_url):
    pool = create_pool(Settings(database_url=database_url, pool_max_size=4))
    await pool.open()
    try:
        yield PostgresAdapter(pool)
    finally:
        await pool.close()


@pytest.fixture
async def agent_id(adapter):
    """A fresh agent row per test, so tests never see each other's data."""
    agent = uuid.uuid4()
    await adapter.upsert_agents([AgentRecord(agent, f"agent-{agent}", {"name": f"agent-{agent}"})])
    return agent


@pytest.fixture
async def other_agent(adapter):
    """A second agent, to check that nothing of ``agent_id``'s is visible to it."""
    other = uuid.uuid4()
    await adapter.upsert_agents([AgentRecord(other, f"other-{other}", {})])
    return other


@pytest.fixture
def sqs():
    """moto's in-process SQS with the three embedding queues: ``(client, {priority: url})``."""
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        urls = {p: client.create_queue(QueueName=f"embeddings-{p}")["QueueUrl"] for p in ("high", "normal", "low")}
        yield client, urls


@pytest.fixture
def scripted() -> ScriptedModels:
    """A fresh scripted model provider per test."""
    return ScriptedModels()
