"""Plugin routes (elizaOS ``Plugin.routes``) served by the HTTP API's one route for them.

``/agents/{agent}/plugins/{plugin}/{path...}`` finds the agent, then the plugin's route with
that method and path, validates the JSON body against the route's ``body_model`` and calls
its handler with an ephemeral runtime. Errors follow the API's conventions: 404 for an
unknown agent, plugin or route; 405 for a known path with another method; 422 naming the
invalid fields; 400 for a body that is not JSON (read base64-decoded when API Gateway
encoded it, as it does a ``curl -d`` body); 403 for a caller who is not an admin, unless the
route is ``public``.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from pydantic import BaseModel, ValidationError

from core.errors import NotFoundError
from core.orchestrator import Orchestrator
from core.plugin import Route, RouteRequest
from functions.api.access import Forbidden
from functions.api.context import caller, current
from functions.api.responses import error_response, invalid_fields

#: Path prefix of plugin routes, after the agent: ``/agents/{agent}`` + this + ``/{plugin}``.
PREFIX = "/plugins/"

router = APIGatewayHttpRouter()


# Not in the OpenAPI document: each plugin defines its own paths and bodies.
@router.route(
    "/agents/<agent>/plugins/<plugin>/.+", method=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
def plugin_route(agent: str, plugin: str) -> Response[Any]:
    """A plugin's own route: ``/agents/{agent}/plugins/{plugin}{path}``."""
    api = current()
    event = router.current_event
    path = event.path.split(f"{PREFIX}{plugin}", 1)[1]
    route = find_route(api.orchestrator, agent, plugin, event.http_method, path)
    if not (route.public or caller().is_admin):
        raise Forbidden("this plugin route is for admins")
    try:
        body = parse_body(route, event)
    except ValidationError as exc:
        return invalid_fields(validation_fields(exc))
    except ValueError:
        return error_response(400, "invalid_json", "the request body is not valid JSON")
    request = RouteRequest(
        method=event.http_method,
        path=path,
        query=event.query_string_parameters or {},
        body=body,
        headers={k.lower(): v for k, v in (event.headers or {}).items()},
    )
    return api.container.run(call_route(api.orchestrator, agent, route, request))


class MethodNotAllowedError(NotFoundError):
    """The plugin has the path, but not for this method."""

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed


def find_route(orchestrator: Orchestrator, agent: str, plugin: str, method: str, path: str) -> Route:
    """The plugin route for ``method path`` of ``agent``.

    Raises:
        NotFoundError: unknown agent, plugin (for this agent) or path.
        MethodNotAllowedError: the path exists with other methods only.
    """
    blueprint = orchestrator.get_agent(agent)
    if not any(p.name == plugin for p in blueprint.plugins):
        raise NotFoundError(f"agent {agent} has no plugin {plugin!r}")
    route = blueprint.routes.get((plugin, method.upper(), path))
    if route is not None:
        return route
    allowed = sorted(m for (p, m, r) in blueprint.routes if p == plugin and r == path)
    if allowed:
        raise MethodNotAllowedError(f"{method.upper()} is not allowed on {path}", allowed)
    raise NotFoundError(f"plugin {plugin!r} has no route {path}")


def parse_body(route: Route, event: BaseProxyEvent) -> Any:
    """The request body: JSON, validated against ``route.body_model`` when it has one.

    Read as the rest of the API reads bodies: Powertools' ``event.decoded_body``, base64-decoded
    when ``isBase64Encoded`` is true. API Gateway HTTP APIs base64-encode bodies whose
    ``Content-Type`` is not text, such as the ``application/x-www-form-urlencoded`` that a plain
    ``curl -d '{"name": "Ann"}'`` sends; whatever the ``Content-Type``, the body is read as JSON.

    Raises:
        ValueError: the body is not base64 when it says it is, not UTF-8, or not JSON (the
            caller answers 400).
        pydantic.ValidationError: it does not fit the model (the caller answers 422).
    """
    raw = event.decoded_body  # binascii.Error and UnicodeDecodeError are ValueErrors
    data = json.loads(raw) if raw else None
    if route.body_model is None:
        return data
    model: type[BaseModel] = route.body_model
    return model.model_validate(data if data is not None else {})


async def call_route(orchestrator: Orchestrator, agent: str, route: Route, request: RouteRequest) -> Response[Any]:
    """Run the handler with a fresh runtime and wrap its value as a JSON response."""
    runtime = orchestrator.runtime(agent)
    value = await route.handler(runtime, request)
    if isinstance(value, Response):
        return value
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    return Response(status_code=route.status, content_type="application/json", body=value)


def validation_fields(exc: ValidationError) -> list[dict[str, Any]]:
    """The API's ``fields`` list for a pydantic error (field path, location, type, message)."""
    return [
        {
            "field": ".".join(str(p) for p in e.get("loc", ())) or "body",
            "location": "body",
            "type": e.get("type"),
            "message": e.get("msg"),
        }
        for e in exc.errors()
    ]
