"""``GET /agents`` and ``GET /agents/{agent}``: the agents this deployment serves (secrets never returned)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from functions.api.context import current

if TYPE_CHECKING:
    from core.blueprint import AgentBlueprint

router = APIGatewayHttpRouter()


@router.get("/agents")
def list_agents() -> dict[str, Any]:
    """Every agent served: id, name, username and the first line of its bio."""
    return {"agents": [agent_json(b) for b in current().orchestrator.get_agents()]}


@router.get("/agents/<agent>")
def get_agent(agent: str) -> dict[str, Any]:
    """One agent (by id or name, any case) with its character, without its secrets."""
    blueprint = current().orchestrator.get_agent(agent)
    return {
        **agent_json(blueprint),
        "character": blueprint.character.model_dump(mode="json", by_alias=True, exclude={"secrets"}),
    }


def agent_json(blueprint: AgentBlueprint) -> dict[str, Any]:
    """An agent in a listing."""
    character = blueprint.character
    return {
        "id": str(blueprint.agent_id),
        "name": character.name,
        "username": character.username,
        "bio": character.bio[:1],
    }
