"""The HTTP API function (API Gateway HTTP API, payload 2.0): messages, history, search, agents.

Init phase (module level, once per container): settings, loop, pool, model plugins,
characters, the orchestrator. Per invocation: an ephemeral runtime, no set-up SQL.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.errors import ModelError, ModelNotFoundError, NotFoundError, TransientDatabaseError
from core.model_providers.circuit import provider_health
from core.orchestrator import IncomingMessage
from core.types import ModelType, Task
from functions.api_models import (
    TAGS_QUERY_PATTERN,
    MessageBody,
    SearchBody,
    TaskBody,
    memory_json,
    query_tags,
    task_json,
)
from functions.container import Container

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "agent-messages"))
container = Container()
orchestrator = container.orchestrator()
app = APIGatewayHttpResolver(enable_validation=True)


# -- routes --------------------------------------------------------------------------------

@app.get("/health")
def health() -> dict[str, Any]:
    """Database reachable, agents loaded, and each model provider's circuit as this process sees it."""
    container.run(_ping_database())
    providers = provider_health()
    degraded = any(p["state"] == "open" for p in providers.values())
    return {"status": "degraded" if degraded else "ok", "agents": len(orchestrator.get_agents()),
            "providers": providers}


async def _ping_database() -> None:
    async with container.pool.connection() as conn:
        await conn.execute("SELECT 1")


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


# -- errors: JSON with a status that says what happened --------------------------------------

def _error(status: int, error: str, message: str, **extra: Any) -> Response:
    return Response(status_code=status, content_type="application/json",
                    body={"error": error, "message": message, **extra})


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


@app.exception_handler(NotFoundError)
def _not_found(exc: NotFoundError) -> Response:
    return _error(404, "not_found", str(exc))


@app.not_found
def _no_route(exc: Exception) -> Response:
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


# -- entry point -----------------------------------------------------------------------------

@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point for API Gateway HTTP API (payload format 2.0) events.

    A body over ``MAX_BODY_BYTES`` (64 KiB by default) is refused with 413 before parsing.
    """
    size = _body_size(event)
    limit = container.settings.max_body_bytes
    if size > limit:
        body = {"error": "payload_too_large", "message": f"body is {size} bytes; the limit is {limit}"}
        return {"statusCode": 413, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
    return app.resolve(_as_json(event), context)


def _as_json(event: dict[str, Any]) -> dict[str, Any]:
    """Every body of this API is JSON, whatever the Content-Type says.

    ``curl -d`` labels its body ``application/x-www-form-urlencoded``; Powertools would
    parse that as a form. API Gateway passes the body through untouched, so we decide here.
    """
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    return {**event, "headers": {**headers, "content-type": "application/json"}}


def _body_size(event: dict[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(base64.b64decode(body))
    return len(body.encode())
