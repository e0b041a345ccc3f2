"""An orchestrator as the messages function builds it, for tests that measure a turn as deployed.

The built-in plugins (bootstrap, knowledge, memory), the scripted model, the embedding queue on,
one pooled connection per container, one agent named ``agent``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from core.character import load_character_dict
from core.db.pool import Pool, create_pool
from core.db.postgres import PostgresAdapter
from core.deployment.plugins import built_in_plugins
from core.embeddings.queue import EmbeddingQueue
from core.model_providers.scripted import ScriptedModels
from core.orchestrator import Orchestrator
from core.settings import Settings


@asynccontextmanager
async def deployed_orchestrator(
    settings: Settings, sqs: tuple[Any, dict[str, str]], scripted: ScriptedModels, agent: str
) -> AsyncIterator[tuple[Orchestrator, Pool]]:
    """The orchestrator and its opened pool (closed when the block ends).

    Args:
        settings: The pool's settings (``database_url`` at least).
        sqs: The SQS client and the embedding queues' URLs (the ``sqs`` fixture).
        scripted: The model plugin's scripted models.
        agent: The agent's character name.
    """
    client, urls = sqs
    pool = create_pool(settings)
    await pool.open()
    try:
        orchestrator = Orchestrator(
            PostgresAdapter(pool),
            embedding_queue=EmbeddingQueue(client, urls),
            plugins=[*built_in_plugins(), scripted.plugin()],
        )
        await orchestrator.add_agents([load_character_dict({"name": agent, "bio": ["A test agent."]})])
        yield orchestrator, pool
    finally:
        await pool.close()
