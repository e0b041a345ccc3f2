"""``GET /agents`` and ``GET /agents/{agent}``: the agents this deployment serves.

Anyone with a token sees an agent's public face (name, username, bio, avatar). Only an admin
sees the character document; its secrets are write-only even then (names, never values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from functions.api.context import caller, current

if TYPE_CHECKING:
    from core.blueprint import AgentBlueprint

router = APIGatewayHttpRouter()


@router.get("/agents")
def list_agents() -> dict[str, Any]:
    """Every agent served: id, name, username and the first line of its bio."""
    return {"agents": [agent_json(b) for b in current().orchestrator.get_agents()]}


@router.get("/agents/<agent>")
def get_agent(agent: str) -> dict[str, Any]:
    """One agent (by id or name, any case): its public face, and for an admin its character
    without secret values (``secretNames`` lists what is set)."""
    blueprint = current().orchestrator.get_agent(agent)
    public = {**agent_json(blueprint), "bio": blueprint.character.bio}
    if not caller().is_admin:
        return public
    character = blueprint.character
    return {
        **public,
        "character": character.model_dump(mode="json", by_alias=True, exclude={"secrets"}),
        "secretNames": sorted(character.secrets),
    }


def agent_json(blueprint: AgentBlueprint) -> dict[str, Any]:
    """An agent in a listing: id, name, username, the first line of its bio, its avatar URL."""
    character = blueprint.character
    avatar = character.settings.get("avatar")
    return {
        "id": str(blueprint.agent_id),
        "name": character.name,
        "username": character.username,
        "bio": character.bio[:1],
        "avatar": avatar if isinstance(avatar, str) else None,
    }
