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


def http_event(
    method: str, path: str, body: str | bytes | dict | None = None, query: dict[str, str] | None = None
) -> dict[str, Any]:
    """A real API Gateway HTTP API (v2) event from Powertools' samples, re-aimed at ``method path``."""
    event = copy.deepcopy(_event("pt-py.apiGatewayProxyV2Event.json"))
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
