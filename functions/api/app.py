"""The HTTP API function (API Gateway HTTP API, payload 2.0): the resolver, its error handlers and the handler.

Init phase (module level, once per container): settings, loop, pool, model plugins,
characters, the orchestrator, and the resolver with every router of ``functions.api``.
Per invocation: an ephemeral runtime, no set-up SQL.

Observability (``functions.observability``): every log line carries the API request id as
``correlation_id``; metrics ``MessagesHandled`` (split by ``Mode`` and ``DidRespond``) and
``MessageErrors`` (split by ``StatusClass``, ``4xx``/``5xx``) for ``POST .../messages``;
model latency and tokens come from ``core.model_providers.usage``.

Errors are JSON with a status that says what happened (``functions.api.responses``): 400
invalid JSON, 401 no verified caller, 403 a caller's role does not allow it (naming the field
when one is to blame), 404 unknown agent, room or route (or a room the caller may not see), 405
wrong method on a plugin route, 413 body over ``MAX_BODY_BYTES``, 422 invalid field (named), 502
model failure (the user's message is kept), 503 with ``Retry-After`` when the database is briefly
unavailable, 500 without internals.

Embedding requests (``SendMessageBatch``) are sent after the response, by an internal Lambda
extension (``functions.after_response``): SQS is not on the reply path.

Who calls is the verified token's caller (``functions.api.identity``), never a body field; what
it may touch is ``functions.api.access``. Only ``GET /health`` answers without one.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.errors import ModelError, ModelNotFoundError, NotFoundError, TransientDatabaseError
from functions import end_init_phase
from functions.after_response import AfterResponse
from functions.api import (
    access,
    agents,
    documents,
    events,
    facts,
    health,
    identity,
    memories,
    messages,
    plugins,
    rooms,
    screening,
    streaming,
    tasks,
)
from functions.api.context import Api, Unauthenticated, serving
from functions.api.openapi import openapi_enabled, openapi_json
from functions.api.responses import error_response, invalid_fields
from functions.init_phase import build_container
from functions.observability import Observability

#: Every resource's router, in the order their routes are matched.
ROUTERS = (health, agents, messages, rooms, memories, tasks, documents, facts, plugins)
#: Routes that answer without a verified caller (``template.yaml`` gives them ``Authorizer: NONE``).
PUBLIC_ROUTES = frozenset({("GET", "/health")})
_UNAUTHORIZED = "a valid token is required (Authorization: Bearer ...)"


def create_app(observability: Observability) -> APIGatewayHttpResolver:
    """The resolver with every router and the API's error handlers (a test may build its own).

    Args:
        observability: Where the error handlers log.
    """
    app = APIGatewayHttpResolver(enable_validation=True)
    for module in ROUTERS:
        app.include_router(module.router)
    _register_error_handlers(app, observability)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_document() -> Response[Any]:
        """This API's OpenAPI 3.1 document when ``SERVE_OPENAPI=true``; 404 otherwise."""
        if not openapi_enabled():
            return _no_route(app)
        return Response(status_code=200, content_type="application/json", body=_openapi(app))

    return app


@functools.cache
def _openapi(app: APIGatewayHttpResolver) -> str:
    return openapi_json(app, health.code_versions()["package"])


def _no_route(app: APIGatewayHttpResolver) -> Response[dict[str, Any]]:
    event = app.current_event
    return error_response(404, "not_found", f"no route for {event.http_method} {event.path}")


def _register_error_handlers(app: APIGatewayHttpResolver, observability: Observability) -> None:
    """JSON errors with a status that says what happened; never internals."""
    logger = observability.logger

    @app.exception_handler(RequestValidationError)
    def invalid_request(exc: RequestValidationError) -> Response[dict[str, Any]]:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "invalid_json", "the request body is not valid JSON")
        return invalid_fields(
            [
                {
                    "field": ".".join(str(p) for p in e.get("loc", ())[1:]) or e.get("loc", ("body",))[0],
                    "location": e.get("loc", ("body",))[0],
                    "type": e.get("type"),
                    "message": e.get("msg"),
                }
                for e in errors
            ]
        )

    @app.exception_handler(Unauthenticated)
    def unauthenticated(exc: Unauthenticated) -> Response[dict[str, Any]]:
        return error_response(401, "unauthorized", _UNAUTHORIZED)

    @app.exception_handler(access.Forbidden)
    def forbidden(exc: access.Forbidden) -> Response[dict[str, Any]]:
        extra = {} if exc.field is None else {"field": exc.field}
        return error_response(403, "forbidden", str(exc), **extra)

    @app.exception_handler(plugins.MethodNotAllowedError)
    def method_not_allowed(exc: plugins.MethodNotAllowedError) -> Response[dict[str, Any]]:
        response = error_response(405, "method_not_allowed", str(exc))
        response.headers["Allow"] = ", ".join(exc.allowed)
        return response

    @app.exception_handler(NotFoundError)
    def not_found(exc: NotFoundError) -> Response[dict[str, Any]]:
        return error_response(404, "not_found", str(exc))

    @app.not_found
    def no_route(exc: Exception | None) -> Response[dict[str, Any]]:
        return _no_route(app)

    @app.exception_handler(ModelError)
    def model_failed(exc: ModelError) -> Response[dict[str, Any]]:
        logger.warning("model call failed", extra={"provider": exc.provider, "retryable": exc.retryable})
        return error_response(502, "model_error", "the language model failed; your message was stored")

    @app.exception_handler(ModelNotFoundError)
    def no_model(exc: ModelNotFoundError) -> Response[dict[str, Any]]:
        logger.error(str(exc))
        return error_response(502, "model_unavailable", "no model is configured for this request")

    @app.exception_handler(TransientDatabaseError)
    def database_unavailable(exc: TransientDatabaseError) -> Response[dict[str, Any]]:
        logger.warning("database unavailable", extra={"sqlstate": getattr(exc, "sqlstate", None)})
        response = error_response(503, "database_unavailable", "the database is briefly unavailable; try again")
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response[dict[str, Any]]:
        logger.error("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "internal server error")


observability = Observability("agent-messages")
after_response = AfterResponse.for_this_process("agent-messages")  # registers in the init phase only
container = build_container(after_response=after_response.defer)
orchestrator = container.orchestrator()
api = Api(container=container, orchestrator=orchestrator, observability=observability)
app = create_app(observability)


@after_response.handler  # outermost: the deferred work runs after the metrics flush too
@observability.lambda_handler(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point for API Gateway HTTP API (payload format 2.0) events, and the WebSocket API's.

    A body over ``MAX_BODY_BYTES`` (64 KiB by default) is refused with 413 before parsing; a
    body marked base64 that is not base64 of UTF-8 text with 400. A request that names a
    connection streams its reply there as well (``functions.api.streaming``).
    """
    if (event.get("requestContext") or {}).get("eventType") in ("CONNECT", "DISCONNECT"):
        return {"statusCode": 200}  # WebSocket: the $connect authorizer has admitted the caller
    try:
        event = streaming.websocket_to_http(event) or event
    except ValueError as exc:
        return events.plain_error(400, "invalid_frame", str(exc))
    stream = streaming.stream_for(event)
    with streaming.streaming(stream):
        response = _respond(event, context)
    if stream is not None:
        stream.finish(response)
    if response["statusCode"] >= 400 and events.is_message_post(event):
        observability.count("MessageErrors", StatusClass=f"{response['statusCode'] // 100}xx")
    return response


def _respond(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    caller = identity.caller_from_event(event, container.identity)
    if caller is None and events.route_key(event) not in PUBLIC_ROUTES:
        return events.plain_error(401, "unauthorized", _UNAUTHORIZED)
    size, limit = events.body_size(event), container.settings.max_body_bytes
    if size > limit:
        return events.plain_error(413, "payload_too_large", f"body is {size} bytes; the limit is {limit}")
    try:
        request = events.as_json(event)
    except ValueError:  # binascii.Error, UnicodeDecodeError
        return events.plain_error(
            400, "invalid_json", "the request body is marked base64 but is not base64-encoded UTF-8 text"
        )
    try:  # what no route can store (NUL, lone surrogates, NaN, deep nesting): refused before any write
        screening.screen_body(request.get("body"))
        screening.screen_query(request.get("queryStringParameters"))
    except screening.RefusedInput as refused:
        return refused.response()
    # Agents stored since the last read (core.agent_refresh): no SQL unless due or unknown.
    container.run(orchestrator.before_request(events.agent_ref(event)))
    with serving(api, caller):
        return app.resolve(request, context)


end_init_phase()  # last: resumes the collector paused by functions/__init__.py
