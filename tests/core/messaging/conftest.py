from __future__ import annotations

import pytest

from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.embeddings.queue import EmbeddingQueue
from core.orchestrator import Orchestrator
from core.settings import Settings


@pytest.fixture
async def orchestrator(database_url, sqs, scripted, request):
    """An orchestrator with one fresh agent per test, scripted models, real Postgres, moto SQS."""
    client, urls = sqs
    pool = create_pool(Settings(database_url=database_url))
    await pool.open()
    orch = Orchestrator(
        PostgresAdapter(pool), embedding_queue=EmbeddingQueue(client, urls), plugins=[bootstrap, scripted.plugin()]
    )
    name = f"Ada-{request.node.name[:30]}"
    await orch.add_agents([load_character_dict({"name": name, "bio": ["A helpful test agent."]})])
    orch.test_agent_name = name  # type: ignore[attr-defined]
    try:
        yield orch
    finally:
        await pool.close()


def drain(client, url) -> list[str]:
    bodies = []
    while True:
        got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        bodies += [m["Body"] for m in got]
