"""The HTTP API function (API Gateway HTTP API, payload 2.0): messages, history, search, agents.

Init phase (module level, once per container): settings, loop, pool, model plugins,
characters, the orchestrator (with the other agents stored in the table). Per invocation: an
ephemeral runtime, no set-up SQL; agents stored since are picked up by a rate-limited re-read
of the agents table (``core.agent_refresh``: every ``AGENT_REFRESH_S``, or on an unknown
``{agent}`` at most every ``AGENT_REFRESH_ON_MISS_S``).

Observability (``functions.observability``): every log line carries the API request id as
``correlation_id``; metrics ``MessagesHandled`` (split by ``Mode`` and ``DidRespond``) and
``MessageErrors`` (split by ``StatusClass``, ``4xx``/``5xx``) for ``POST .../messages``;
model latency and tokens come from ``core.model_providers.usage``.

``GET /health`` checks the database and reports versions; ``GET /openapi.json`` serves the
OpenAPI document of this API when ``SERVE_OPENAPI=true`` (the local stack sets it; deployed,
the route answers 404 like any unknown path).
"""

from __future__ import annotations

from functions.init_phase import begin_init_phase, build_container, end_init_phase

begin_init_phase()  # first: the imports below are most of the init phase

import base64
import functools
import json
import os
import platform
import re
import time
import urllib.parse
from typing import Annotated, Any
from uuid import UUID

import psycopg
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from core.errors import DatabaseError, ModelError, ModelNotFoundError, NotFoundError, TransientDatabaseError
from core.orchestrator import IncomingMessage
from core.plugin import RouteRequest
from core.types import ModelType, Task
from functions import documents_api, facts_api, plugin_routes
from functions.api_models import (
    TAGS_QUERY_PATTERN,
    MessageBody,
    SearchBody,
    TaskBody,
    memory_json,
    query_tags,
    task_json,
)
from functions.observability import Observability

#: Seconds ``GET /health`` waits for a pooled connection before answering 503.
HEALTH_DB_TIMEOUT_S = 3.0

observability = Observability("agent-messages")
logger, metrics = observability.logger, observability.metrics
container = build_container()
orchestrator = container.orchestrator()
app = APIGatewayHttpResolver(enable_validation=True)


# -- routes --------------------------------------------------------------------------------

@app.get("/health")
def health() -> Response[dict[str, Any]]:
    """The database (one query through the pool), versions, agents, and each model provider's circuit.

    ``status`` is ``ok``; ``degraded`` when a provider's circuit is open or the database's
    schema is older than this code's migrations; ``unavailable`` (HTTP 503) when the
    database does not answer within ``HEALTH_DB_TIMEOUT_S``.
    """
    from core.model_providers.circuit import provider_health  # health checks are rare: not at init

    providers = provider_health()
    common = {"agents": len(orchestrator.get_agents()), "providers": providers}
    try:
        database, versions = container.run(_check_database())
    except (psycopg.Error, DatabaseError, OSError) as exc:  # PoolTimeout and PoolClosed are psycopg errors
        logger.warning("health: database unavailable", extra={"error": type(exc).__name__})
        return _json(503, {"status": "unavailable", "database": {"ok": False, "error": type(exc).__name__},
                           "versions": _code_versions(), **common})
    degraded = any(p["state"] == "open" for p in providers.values()) or not database["schemaCurrent"]
    return _json(200, {"status": "degraded" if degraded else "ok", "database": database,
                       "versions": {**_code_versions(), **versions}, **common})


async def _check_database() -> tuple[dict[str, Any], dict[str, str | None]]:
    """One round trip: the server's version, pgvector's, and the newest core migration applied."""
    started = time.perf_counter()
    async with container.pool.connection(timeout=HEALTH_DB_TIMEOUT_S) as conn:
        try:
            row = await (await conn.execute(_HEALTH_SQL)).fetchone()
        except psycopg.errors.UndefinedTable:  # reachable, but never migrated
            row = await (await conn.execute(_HEALTH_SQL_UNMIGRATED)).fetchone()
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    applied = row["schema"]
    expected = _expected_schema()
    # The schema may be ahead of the code (migrations run before a deploy's code): only behind is stale.
    current = applied is not None and applied[:4] >= expected[:4]
    return ({"ok": True, "latencyMs": latency_ms, "schemaCurrent": current},
            {"postgres": row["postgres"], "pgvector": row["pgvector"], "schema": applied})


_HEALTH_SQL = (
    "SELECT current_setting('server_version') AS postgres,"
    " (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector,"
    " (SELECT name FROM schema_migrations WHERE namespace = 'core' ORDER BY version DESC LIMIT 1) AS schema"
)
_HEALTH_SQL_UNMIGRATED = (
    "SELECT current_setting('server_version') AS postgres,"
    " (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector, NULL::text AS schema"
)


@functools.cache
def _code_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("serverless-agent-runtime")
    except PackageNotFoundError:  # a deployment package holds the code without its metadata
        package = "unknown"
    return {"package": package, "python": platform.python_version()}


@functools.cache
def _expected_schema() -> str:
    """The newest core migration this code ships (``NNNN_name.sql``)."""
    from core.db.migrations import core_migrations

    return core_migrations()[-1].name


@app.get("/agents")
def list_agents() -> dict[str, Any]:
    return {"agents": [_agent_json(b) for b in orchestrator.get_agents()]}


@app.get("/agents/<agent>")
def get_agent(agent: str) -> dict[str, Any]:
    blueprint = orchestrator.get_agent(agent)
    return {**_agent_json(blueprint),
            "character": blueprint.character.model_dump(mode="json", by_alias=True, exclude={"secrets"})}


@app.post("/agents/<agent>/messages")
def post_message(agent: str, body: MessageBody) -> dict[str, Any]:
    incoming = IncomingMessage(
        text=body.text, entity_id=body.entity_id, room_id=body.room_id, world_id=body.world_id,
        source=body.source, user_name=body.user_name, channel_type=body.channel_type,
    )
    result = container.run(orchestrator.handle_message(agent, incoming))
    observability.count("MessagesHandled", Mode=result.mode, DidRespond=str(result.did_respond).lower())
    logger.info("message handled", extra={"agent": agent, "room_id": str(result.room_id),
                                          "message_id": str(result.message_id), "mode": result.mode,
                                          "did_respond": result.did_respond, "responses": len(result.responses)})
    return {
        "messageId": str(result.message_id),
        "roomId": str(result.room_id),
        "didRespond": result.did_respond,
        "mode": result.mode,
        "responses": [
            {"id": str(r.id), "text": r.text, "actions": r.content.actions or [], "thought": r.content.thought}
            for r in result.responses
        ],
    }


@app.get("/agents/<agent>/rooms/<room_id>/messages")
def room_messages(agent: str, room_id: UUID, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    runtime = orchestrator.runtime(agent)
    if container.run(runtime.adapter.get_room(runtime.agent_id, room_id)) is None:
        raise NotFoundError(f"room {room_id} not found for agent {agent}")
    messages = container.run(runtime.get_memories(room_id, "messages", limit))
    return {"roomId": str(room_id), "messages": [memory_json(m) for m in messages]}


@app.post("/agents/<agent>/memories/search")
def search_memories(agent: str, body: SearchBody) -> dict[str, Any]:
    runtime = orchestrator.runtime(agent)

    async def search() -> list:
        vector = await runtime.use_model(ModelType.TEXT_EMBEDDING, {"text": body.query})
        return await runtime.adapter.search_memories(
            runtime.agent_id, vector, table=body.table, room_id=body.room_id,
            count=body.count, match_threshold=body.threshold,
        )

    return {"memories": [memory_json(m) for m in container.run(search())]}


@app.get("/agents/<agent>/tasks")
def list_tasks(agent: str, tags: Annotated[str | None, Query(max_length=1400, pattern=TAGS_QUERY_PATTERN)] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """The agent's tasks with their scheduler state (``status``, ``attempts``, ``lastError``, ``nextRunAt``).

    ``tags`` (comma-separated) keeps tasks having all of them.
    """
    runtime = orchestrator.runtime(agent)
    tasks = container.run(runtime.adapter.get_tasks(runtime.agent_id, tags=query_tags(tags), limit=limit))
    return {"tasks": [task_json(t) for t in tasks]}


@app.post("/agents/<agent>/tasks")
def create_task(agent: str, body: TaskBody) -> Response[dict[str, Any]]:
    """Create a task for the agent; 201 with the stored task. A ``queue`` task needs a worker here."""
    runtime = orchestrator.runtime(agent)
    if "queue" in body.tags and runtime.get_task_worker(body.name) is None:
        known = ", ".join(sorted(runtime.blueprint.task_workers)) or "none"
        return _error(422, "validation_error", f"invalid request: name: no task worker {body.name!r} for this"
                      f" agent (registered: {known})", fields=[{
                          "field": "name", "location": "body", "type": "unknown_task_worker",
                          "message": f"no task worker named {body.name!r} is registered for this agent"}])
    task = Task(agent_id=runtime.agent_id, **body.model_dump(exclude_unset=True))

    async def create() -> Task | None:
        await runtime.create_task(task)
        return await runtime.get_task(task.id)

    stored = container.run(create())
    return Response(status_code=201, content_type="application/json", body=task_json(stored or task))


def _agent_json(blueprint: Any) -> dict[str, Any]:
    character = blueprint.character
    return {"id": str(blueprint.agent_id), "name": character.name, "username": character.username,
            "bio": character.bio[:1]}


# -- plugin routes (``Plugin.routes``) and the routers of other modules ----------------------

# Not in the OpenAPI document: each plugin defines its own paths and bodies.
@app.route("/agents/<agent>/plugins/<plugin>/.+", method=["GET", "POST", "PUT", "PATCH", "DELETE"],
           include_in_schema=False)
def plugin_route(agent: str, plugin: str) -> Response[Any]:
    """A plugin's own route: ``/agents/{agent}/plugins/{plugin}{path}`` (see ``functions.plugin_routes``)."""
    event = app.current_event
    path = event.path.split(f"{plugin_routes.PREFIX}{plugin}", 1)[1]
    route = plugin_routes.find_route(orchestrator, agent, plugin, event.http_method, path)
    try:
        body = plugin_routes.parse_body(route, event)
    except ValidationError as exc:
        fields = plugin_routes.validation_fields(exc)
        return _error(422, "validation_error", f"invalid request: {', '.join(f['field'] for f in fields)}",
                      fields=fields)
    except ValueError:
        return _error(400, "invalid_json", "the request body is not valid JSON")
    request = RouteRequest(method=event.http_method, path=path, query=event.query_string_parameters or {},
                           body=body, headers={k.lower(): v for k, v in (event.headers or {}).items()})
    return container.run(plugin_routes.call_route(orchestrator, agent, route, request))


app.include_router(documents_api.router)
app.include_router(facts_api.router)


# -- errors: JSON with a status that says what happened --------------------------------------

def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type="application/json", body=body)


def _error(status: int, error: str, message: str, **extra: Any) -> Response:
    return _json(status, {"error": error, "message": message, **extra})


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return _error(400, "invalid_json", "the request body is not valid JSON")
    fields = [{"field": ".".join(str(p) for p in e.get("loc", ())[1:]) or e.get("loc", ("body",))[0],
               "location": e.get("loc", ("body",))[0], "type": e.get("type"), "message": e.get("msg")}
              for e in errors]
    names = ", ".join(f["field"] for f in fields)
    return _error(422, "validation_error", f"invalid request: {names}", fields=fields)


@app.exception_handler(plugin_routes.MethodNotAllowedError)
def _method_not_allowed(exc: plugin_routes.MethodNotAllowedError) -> Response:
    response = _error(405, "method_not_allowed", str(exc))
    response.headers["Allow"] = ", ".join(exc.allowed)
    return response


@app.exception_handler(NotFoundError)
def _not_found(exc: NotFoundError) -> Response:
    return _error(404, "not_found", str(exc))


@app.not_found
def _no_route(exc: Exception | None) -> Response:
    return _error(404, "not_found", f"no route for {app.current_event.http_method} {app.current_event.path}")


@app.exception_handler(ModelError)
def _model_failed(exc: ModelError) -> Response:
    logger.warning("model call failed", extra={"provider": exc.provider, "retryable": exc.retryable})
    return _error(502, "model_error", "the language model failed; your message was stored")


@app.exception_handler(ModelNotFoundError)
def _no_model(exc: ModelNotFoundError) -> Response:
    logger.error(str(exc))
    return _error(502, "model_unavailable", "no model is configured for this request")


@app.exception_handler(TransientDatabaseError)
def _database_unavailable(exc: TransientDatabaseError) -> Response:
    logger.warning("database unavailable", extra={"sqlstate": getattr(exc, "sqlstate", None)})
    response = _error(503, "database_unavailable", "the database is briefly unavailable; try again")
    response.headers["Retry-After"] = "1"
    return response


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    logger.error("unhandled error", exc_info=exc)
    return _error(500, "internal_error", "internal server error")


# -- OpenAPI document (local only) -------------------------------------------------------------

@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[Any]:
    """This API's OpenAPI 3.1 document, when ``SERVE_OPENAPI=true``; 404 otherwise."""
    if not openapi_enabled():
        return _no_route(None)
    return Response(status_code=200, content_type="application/json", body=openapi_json())


def openapi_enabled() -> bool:
    """``SERVE_OPENAPI`` is true (read per request, so a test or the local stack can turn it on)."""
    return os.environ.get("SERVE_OPENAPI", "").strip().lower() in {"1", "true", "yes", "on"}


@functools.cache
def openapi_json() -> str:
    """The OpenAPI document of the routes above (generated once per container, from their types).

    Powertools documents its own validation error shape; this API answers every error with
    ``ApiError`` (see ``_error``), so the document says that instead.
    """
    document = json.loads(app.get_openapi_json_schema(
        title="Serverless Agent Runtime API",
        version=_code_versions()["package"],
        summary="An elizaOS-style agent runtime on AWS Lambda.",
        description=("Talk to agents (characters), read their conversations, search their memories and"
                     " schedule their tasks. Every error is an `ApiError`: 400 bad JSON, 404 unknown agent,"
                     " room or route, 413 body too large, 422 invalid field (named in `fields`), 502 model"
                     " failure, 503 database briefly unavailable (with `Retry-After`)."),
    ))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["ApiError"] = _API_ERROR_SCHEMA
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "Invalid request: the fields are named in `fields`", **error}
            responses["default"] = {"description": "Error", **error}
    return json.dumps(document)


_API_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "title": "ApiError", "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "What happened: `validation_error`, `not_found`..."},
        "message": {"type": "string", "description": "A sentence for people; no internals."},
        "fields": {"type": "array", "description": "For 422: one entry per invalid field.", "items": {
            "type": "object", "properties": {"field": {"type": "string"}, "location": {"type": "string"},
                                             "type": {"type": "string"}, "message": {"type": "string"}}}},
    },
}


# -- entry point -----------------------------------------------------------------------------

#: ``POST /agents/{agent}/messages``: the route whose failures count as ``MessageErrors``.
_MESSAGE_ROUTE = re.compile(r"^/agents/[^/]+/messages/?$")


@observability.lambda_handler(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point for API Gateway HTTP API (payload format 2.0) events.

    A body over ``MAX_BODY_BYTES`` (64 KiB by default) is refused with 413 before parsing.
    """
    size = _body_size(event)
    limit = container.settings.max_body_bytes
    if size > limit:
        response = _plain_error(413, "payload_too_large", f"body is {size} bytes; the limit is {limit}")
    else:
        try:
            request = _as_json(event)
        except ValueError:  # binascii.Error, UnicodeDecodeError
            request = None
            response = _plain_error(400, "invalid_json", "the request body is marked base64 but is not"
                                    " base64-encoded UTF-8 text")
        if request is not None:
            # Agents stored since the last read (core.agent_refresh): no SQL unless due or unknown.
            container.run(orchestrator.before_request(_agent_ref(event)))
            # Powertools clears the routers' context after each request: give it on every invocation.
            app.append_context(orchestrator=orchestrator, container=container)
            response = app.resolve(request, context)
    _count_message_error(event, response["statusCode"])
    return response


#: ``/agents/{agent}/...``: the agent a request names.
_AGENT_PATH = re.compile(r"^/agents/([^/]+)")


def _agent_ref(event: dict[str, Any]) -> str | None:
    """The ``{agent}`` of the request's path (URL-decoded), or ``None`` for other paths."""
    path = event.get("rawPath") or ((event.get("requestContext") or {}).get("http") or {}).get("path") or ""
    match = _AGENT_PATH.match(path)
    return urllib.parse.unquote(match.group(1)) if match else None


def _count_message_error(event: dict[str, Any], status: int) -> None:
    http = (event.get("requestContext") or {}).get("http") or {}
    if status >= 400 and http.get("method") == "POST" and _MESSAGE_ROUTE.match(http.get("path") or ""):
        observability.count("MessageErrors", StatusClass=f"{status // 100}xx")


def _as_json(event: dict[str, Any]) -> dict[str, Any]:
    """Every body of this API is JSON text, whatever the Content-Type says.

    ``curl -d`` labels its body ``application/x-www-form-urlencoded``: Powertools would parse
    that as a form, and API Gateway HTTP APIs base64-encode it (``isBase64Encoded``), as they do
    every body whose type is not text. So the body is decoded here, once, for every route.

    Raises:
        ValueError: the body is marked base64 but is not base64 of UTF-8 text.
    """
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    request = {**event, "headers": {**headers, "content-type": "application/json"}}
    if event.get("isBase64Encoded") and event.get("body"):
        request.update(body=base64.b64decode(event["body"], validate=True).decode("utf-8"), isBase64Encoded=False)
    return request


def _plain_error(status: int, error: str, message: str) -> dict[str, Any]:
    """An error response built without the resolver (before the request reaches it)."""
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"error": error, "message": message})}


def _body_size(event: dict[str, Any]) -> int:
    """The body's size in bytes; for a base64 body, computed from its length without decoding it
    (exact for valid base64; a body that is not base64 is refused later, with 400)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4 - (len(body) - len(body.rstrip("=")))
    return len(body.encode())


end_init_phase()  # last: everything above lives as long as the container
