"""``/agents``: the agents this deployment serves, and (admins) managing them.

Anyone with a token sees an agent's public face (name, username, bio, avatar). Only an admin
sees the character document; its secrets are write-only even then (names, never values).

Admins manage stored agents (``core.agent_admin``, the code ``agent agents put|delete`` runs too):

- ``PUT /agents/{agent}``: create (201) or replace (200) an agent from one elizaOS character
  document, 1.x or 0.x. Replacing is whole (``secrets`` included); the agent is served (enabled).
- ``PATCH /agents/{agent}``: change fields; ``settings`` and ``secrets`` are deep-merged (``null``
  removes a key); ``enabled`` turns serving off and on.
- ``DELETE /agents/{agent}``: disables it, memories kept (200); ``?purge=true`` deletes it with
  its memories, rooms, documents and tasks (200, ``memoriesDeleted``).

Errors, nothing written: 400 a body that is not JSON or empty; 422 not a character, a list of
characters, or a plugin off the deployment's allow-list (``AGENT_PLUGIN_ALLOWLIST``), each field
named; 409 a name another agent has, or an agent from the deployment's ``CHARACTERS`` (its file
is its source); 404 unknown agent. Every warm container serves the change without a restart
within ``AGENT_REFRESH_S`` (``AGENT_REFRESH_ON_MISS_S`` for a new name), with no query per
request (``core.agent_refresh``); the container that wrote it, on its next request.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from core import agent_admin
from functions.api.access import ADMIN_ONLY
from functions.api.context import caller, current
from functions.api.responses import error_response, invalid_fields, json_response

if TYPE_CHECKING:
    from core.blueprint import AgentBlueprint
    from functions.api.context import Api

router = APIGatewayHttpRouter()

#: OpenAPI: the schema of PUT's body (read by the route itself, as raw JSON: 0.x documents too).
CHARACTER_BODY: dict[str, Any] = {
    "type": "object",
    "title": "AgentCharacter",
    "description": "One elizaOS character document (1.x, or 0.x converted): `name` required; `bio`, `system`,"
    " `plugins` (Python ones on the allow-list), `settings`, `secrets` (write-only)...",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "bio": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "system": {"type": "string"},
        "plugins": {"type": "array", "items": {"type": "string"}},
        "settings": {"type": "object"},
        "secrets": {"type": "object"},
    },
}
#: OpenAPI: the schema of PATCH's body: any character fields, and ``enabled``.
CHARACTER_PATCH_BODY: dict[str, Any] = {
    "type": "object",
    "title": "AgentChanges",
    "description": "Fields to change: top-level character fields replace the stored ones; `settings` and"
    " `secrets` are deep-merged (`null` removes a key); `enabled` serves the agent or not.",
    "properties": {
        **{k: v for k, v in CHARACTER_BODY["properties"].items() if k != "name"},
        "name": {"type": "string", "minLength": 1},
        "enabled": {"type": "boolean"},
    },
}


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


@router.put(
    "/agents/<agent>",
    middlewares=ADMIN_ONLY,
    responses={
        200: {"description": "Replaced"},
        201: {"description": "Created"},
        400: {"description": "Not JSON, or empty"},
        409: {"description": "Name taken, or a configured agent"},
    },
)
def put_agent(agent: str) -> Response[dict[str, Any]]:
    """Create or replace an agent from one elizaOS character document (1.x or 0.x); *admin*.

    The document's ``name`` must be ``{agent}`` when ``{agent}`` is a name (rename through the id).
    Answers the stored agent without secret values, ``created``, and ``servedWithinS``.
    """
    document = _json_body()
    if isinstance(document, Response):
        return document
    api = current()
    return _admin_call(
        lambda: _put(agent, document),
        lambda outcome: json_response(
            201 if outcome.created else 200,
            {**_view(outcome.record), "created": outcome.created, "servedWithinS": _bound(api, outcome.created)},
        ),
    )


@router.patch(
    "/agents/<agent>",
    middlewares=ADMIN_ONLY,
    responses={
        200: {"description": "Changed"},
        400: {"description": "Not JSON, or empty"},
        409: {"description": "Name taken, or a configured agent"},
    },
)
def patch_agent(agent: str) -> Response[dict[str, Any]]:
    """Change an agent's fields; *admin*. ``settings`` and ``secrets`` are deep-merged (``null``
    removes a key), other fields replaced; ``enabled`` serves it or not."""
    changes = _json_body()
    if isinstance(changes, Response):
        return changes
    if not isinstance(changes, dict):
        return invalid_fields([_body_field("a JSON object of the fields to change")])
    api = current()
    return _admin_call(
        lambda: api.container.run(
            agent_admin.patch_agent(api.container.adapter, agent, changes, policy=_policy(), configured=_configured())
        ),
        lambda record: json_response(200, {**_view(record), "servedWithinS": _bound(api, False)}),
    )


@router.delete(
    "/agents/<agent>",
    middlewares=ADMIN_ONLY,
    responses={
        200: {"description": "Disabled (memories kept), or purged with its memories"},
        409: {"description": "A configured agent (CHARACTERS)"},
    },
)
def delete_agent(
    agent: str,
    purge: Annotated[bool, Query(description="Also delete its memories, rooms, documents and tasks")] = False,
) -> Response[dict[str, Any]]:
    """Disable an agent (memories, rooms, documents kept), or with ``purge=true`` delete it with them; *admin*."""
    api = current()

    def answer(outcome: agent_admin.DeleteOutcome) -> Response[dict[str, Any]]:
        name, within = outcome.record.name, _bound(api, False)
        if outcome.purged:
            message = (
                f"agent {name} is deleted with its {outcome.memories} memories, its rooms, documents and tasks;"
                f" every container stops serving it within {within} s"
            )
        else:
            message = (
                f"agent {name} is disabled: not served within {within} s; its {outcome.memories} memories, rooms,"
                " documents and tasks are kept (PATCH enabled=true serves it again; purge=true deletes them)"
            )
        return json_response(
            200,
            {
                "id": str(outcome.record.id),
                "name": name,
                "action": "deleted" if outcome.purged else "disabled",
                "memories": "deleted" if outcome.purged else "kept",
                "memoryCount": outcome.memories,
                "servedWithinS": within,
                "message": message,
            },
        )

    return _admin_call(
        lambda: api.container.run(
            agent_admin.delete_agent(api.container.adapter, agent, purge=purge, configured=_configured())
        ),
        answer,
    )


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


def _put(agent: str, document: Any) -> agent_admin.PutOutcome:
    api = current()
    character = agent_admin.parse_character(document)
    return api.container.run(
        agent_admin.put_agent(api.container.adapter, character, ref=agent, policy=_policy(), configured=_configured())
    )


def _admin_call(work: Any, answer: Any) -> Response[dict[str, Any]]:
    """Run one management call, refresh this container's agents, and answer; refusals as JSON errors."""
    api = current()
    try:
        outcome = work()
    except agent_admin.InvalidAgent as exc:
        return invalid_fields([{**f, "location": "body"} for f in exc.fields])
    except agent_admin.UnknownAgent as exc:
        return error_response(404, "not_found", str(exc))
    except agent_admin.AgentNameTaken as exc:
        return error_response(409, "name_taken", str(exc), field="name")
    except agent_admin.ConfiguredAgent as exc:
        return error_response(409, "configured_agent", str(exc))
    refresher = api.orchestrator.refresher
    if refresher is not None:  # this container serves the change on its next request
        api.container.run(refresher.refresh())
    return answer(outcome)  # type: ignore[no-any-return]


def _json_body() -> Any:
    """The body as JSON, or a 400 response (empty, or not JSON)."""
    raw = router.current_event.decoded_body
    if raw is None or not raw.strip():
        return error_response(400, "empty_body", "the request body is empty: send one character document (JSON)")
    try:
        return json.loads(raw)
    except ValueError:
        return error_response(400, "invalid_json", "the request body is not valid JSON")


def _body_field(message: str) -> dict[str, str]:
    return {"field": "body", "location": "body", "type": "invalid_type", "message": message}


def _view(record: Any) -> dict[str, Any]:
    return agent_admin.public_view(record)


def _policy() -> agent_admin.PluginPolicy:
    refresher = current().orchestrator.refresher
    if refresher is not None:
        return refresher.policy
    return agent_admin.PluginPolicy.for_deployment(current().container.settings.model_plugins, [])


def _configured() -> frozenset[Any]:
    refresher = current().orchestrator.refresher
    return refresher.configured_ids if refresher is not None else frozenset()


def _bound(api: Api, new: bool) -> float:
    """Seconds within which every warm container serves the change (``core.agent_refresh``)."""
    refresher = api.orchestrator.refresher
    if refresher is None:
        return 0.0
    return refresher.settings.miss_interval_s if new else refresher.settings.interval_s
