"""Test data factories: real AWS events with the parts a test needs changed, characters, memories."""

from __future__ import annotations

import copy
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"


@cache
def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


#: The issuer of the test tokens (what API Gateway's JWT authorizer would have verified).
TEST_ISSUER = "https://issuer.test"


def jwt_authorizer(sub: str, *, scopes: tuple[str, ...] = (), **claims: str) -> dict[str, Any]:
    """``requestContext.authorizer`` as API Gateway's JWT authorizer fills it for a verified token."""
    all_claims = {"sub": sub, "iss": TEST_ISSUER, **claims}
    if scopes:
        all_claims["scope"] = " ".join(scopes)
    return {"jwt": {"claims": all_claims, "scopes": list(scopes) or None}}


def user(name: str = "alice") -> dict[str, Any]:
    """An ordinary user's verified token."""
    return jwt_authorizer(f"user-{name}", name=name)


def connector(source: str = "discord") -> dict[str, Any]:
    """A connector's client-credentials token, speaking for ``source``."""
    return jwt_authorizer(f"client-{source}", scopes=(f"agents/connector.{source}",))


#: An admin's token: the default caller of ``http_event`` (most tests exercise what admins may do).
ADMIN = jwt_authorizer("admin", scopes=("agents/admin",))


def http_event(
    method: str,
    path: str,
    body: str | bytes | dict | None = None,
    query: dict[str, str] | None = None,
    *,
    caller: dict[str, Any] | None = ADMIN,
) -> dict[str, Any]:
    """A real API Gateway HTTP API (v2) event from Powertools' samples, re-aimed at ``method path``,
    authorised for ``caller`` (``requestContext.authorizer``; ``None``: no verified caller)."""
    event = copy.deepcopy(_event("pt-py.apiGatewayProxyV2Event.json"))
    if caller is None:
        event["requestContext"].pop("authorizer", None)
    else:
        event["requestContext"]["authorizer"] = copy.deepcopy(caller)
    event["rawPath"] = path
    event["routeKey"] = "$default"
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["routeKey"] = "$default"
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    event["queryStringParameters"] = query or None
    event.pop("pathParameters", None)
    if body is None:
        event.pop("body", None)
    else:
        event["body"] = json.dumps(body) if isinstance(body, dict) else body
    event["isBase64Encoded"] = False
    return event


def sqs_event(bodies: list[str], queue: str = "agent-runtime-embeddings-high") -> dict[str, Any]:
    """A real SQS event (Powertools' sample) carrying ``bodies``, one record each."""
    template = _event("pt-py.sqsEvent.json")["Records"][0]
    records = []
    for body in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = str(uuid.uuid4())
        record["body"] = body
        record["eventSourceARN"] = f"arn:aws:sqs:us-east-1:123456789012:{queue}"
        records.append(record)
    return {"Records": records}


class FakeContext:
    """The attributes of a Lambda context that Powertools reads."""

    function_name = "test-function"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/test-function"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
