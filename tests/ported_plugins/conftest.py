"""An orchestrator with the bootstrap plugin, scripted models and real Postgres, building one
fresh agent per test with the ported plugins it asks for."""

from __future__ import annotations

import uuid

import pytest

from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.model_providers.scripted import ScriptedModels
from core.orchestrator import AgentSpec, Orchestrator
from core.plugin import RouteRequest
from core.settings import Settings


@pytest.fixture
def scripted() -> ScriptedModels:
    return ScriptedModels()


@pytest.fixture
async def make_agent(database_url, scripted):
    """``await make_agent(*plugins, settings={...})`` → ``(orchestrator, agent_id)``, agent started."""
    pool = create_pool(Settings(database_url=database_url))
    await pool.open()
    orchestrator = Orchestrator(PostgresAdapter(pool), plugins=[bootstrap, scripted.plugin()])

    async def make(*plugins, settings=None):
        character = load_character_dict(
            {"name": f"Port-{uuid.uuid4().hex[:8]}", "bio": ["A ported-plugin test agent."], "settings": settings or {}}
        )
        [agent_id] = await orchestrator.add_agents([AgentSpec(character, plugins=list(plugins))], auto_start=True)
        return orchestrator, agent_id

    try:
        yield make
    finally:
        await orchestrator.stop_agents()
        await pool.close()


async def call_route(runtime, plugin: str, method: str, path: str, body=None):
    """Call a plugin route as the HTTP router would (its body model validated first)."""
    route = runtime.blueprint.routes[(plugin, method, path)]
    if route.body_model is not None:
        body = route.body_model.model_validate(body or {})
    return await route.handler(runtime, RouteRequest(method=method, path=path, body=body))
