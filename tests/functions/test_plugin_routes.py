"""Plugin routes and the documents/facts routers, served by the deployed messages handler."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from pydantic import BaseModel, Field

from core.character import load_character_dict
from core.errors import NotFoundError
from core.orchestrator import AgentSpec
from core.plugin import Plugin, Route
from tests.factories import FakeContext, http_event


class Greeting(BaseModel):
    name: str = Field(min_length=1)
    times: int = Field(default=1, ge=1, le=3)


async def _status(runtime, request):
    return {"agent": str(runtime.agent_id), "path": request.path, "q": dict(request.query)}


async def _greet(runtime, request):
    return {"text": " ".join([f"hello {request.body.name}"] * request.body.times)}


async def _missing(runtime, request):
    raise NotFoundError("no such widget")


ROUTES = Plugin(
    name="widgets",
    routes=(
        Route("GET", "/status", _status),
        Route("POST", "/greet", _greet, body_model=Greeting, status=201),
        Route("GET", "/deep/nested/thing", _missing),
    ),
)


@pytest.fixture(scope="module")
def agent(messages_fn):
    name = f"Routes-{uuid.uuid4().hex[:8]}"
    character = load_character_dict({"name": name, "bio": ["serves routes"]})
    messages_fn.container.run(messages_fn.orchestrator.add_agents([AgentSpec(character, plugins=[ROUTES])]))
    return name


def call(fn, method, path, body=None, query=None):
    response = fn.handler(http_event(method, path, body, query), FakeContext())
    return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


def test_a_plugin_get_route_answers_with_the_agents_runtime(messages_fn, agent):
    status, body, _ = call(messages_fn, "GET", f"/agents/{agent}/plugins/widgets/status", query={"x": "1"})
    assert status == 200
    assert body == {
        "agent": str(messages_fn.orchestrator.get_agent(agent).agent_id),
        "path": "/status",
        "q": {"x": "1"},
    }


def test_a_plugin_body_is_validated_against_its_model(messages_fn, agent):
    path = f"/agents/{agent}/plugins/widgets/greet"
    assert call(messages_fn, "POST", path, {"name": "Ann", "times": 2})[:2] == (201, {"text": "hello Ann hello Ann"})
    status, body, _ = call(messages_fn, "POST", path, {"name": "", "times": 9})
    assert status == 422 and {f["field"] for f in body["fields"]} == {"name", "times"}
    status, body, _ = call(messages_fn, "POST", path, "{not json")
    assert status == 400 and body["error"] == "invalid_json"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/agents/{agent}/plugins/nope/status", 404),
        ("GET", "/agents/{agent}/plugins/widgets/unknown", 404),
        ("GET", "/agents/{agent}/plugins/widgets/deep/nested/thing", 404),
        ("GET", "/agents/nobody-here/plugins/widgets/status", 404),
    ],
)
def test_unknown_plugins_paths_and_agents_are_404(messages_fn, agent, method, path, status):
    got, body, _ = call(messages_fn, method, path.format(agent=agent))
    assert got == status and body["error"] == "not_found" and body["message"]


def test_a_known_path_with_another_method_is_405(messages_fn, agent):
    status, body, headers = call(messages_fn, "DELETE", f"/agents/{agent}/plugins/widgets/greet")
    assert status == 405 and headers["Allow"] == "POST" and body["error"] == "method_not_allowed"


def test_documents_and_facts_routers_are_served(messages_fn, agent, scripted):
    status, added, _ = call(
        messages_fn,
        "POST",
        f"/agents/{agent}/documents",
        {"name": "faq.md", "text": "The office opens at nine. It closes at five."},
    )
    assert status == 201, added
    status, listing, _ = call(messages_fn, "GET", f"/agents/{agent}/documents")
    # Other tests' shared documents are listed for every agent: this agent's own are its one document.
    assert status == 200 and [d["name"] for d in listing["documents"] if not d["shared"]] == ["faq.md"]
    status, body, _ = call(
        messages_fn, "POST", f"/agents/{agent}/facts", {"roomId": str(uuid.uuid4()), "text": "Ann likes tea"}
    )
    assert status == 404 and "room" in body["message"]  # facts belong to a known room


def test_every_route_the_function_serves_is_routed_by_the_template(messages_fn):
    """A route missing from template.yaml would answer locally and 404 once deployed."""
    import re
    from pathlib import Path

    template = (Path(__file__).parents[2] / "template.yaml").read_text()
    deployed = set(re.findall(r"Method: (\w+)\n\s+Path: (\S+)", template))
    app = messages_fn.app
    served = {(r.method, r.openapi_path) for r in app._static_routes + app._dynamic_routes if r.include_in_schema}
    served.discard(("GET", "/openapi.json"))  # local only (SERVE_OPENAPI)

    def shape(path: str) -> str:  # parameter names may differ ({room_id} here, {roomId} there)
        return re.sub(r"\{[^}]+\}", "{}", path)

    assert {(m, shape(p)) for m, p in served} <= {(m, shape(p)) for m, p in deployed}
    assert ("ANY", "/agents/{agent}/plugins/{plugin}/{proxy+}") in deployed


def _curl_d_event(path: str, raw: bytes) -> dict:
    """What API Gateway sends for ``curl -d``: a form content type and the body base64-encoded."""
    event = http_event("POST", path)
    event["headers"] = {**event["headers"], "content-type": "application/x-www-form-urlencoded"}
    event["body"] = base64.b64encode(raw).decode()
    event["isBase64Encoded"] = True
    return event


def test_a_plain_curl_d_body_base64_encoded_by_api_gateway_is_read_as_json(messages_fn, agent):
    event = _curl_d_event(f"/agents/{agent}/plugins/widgets/greet", b'{"name": "Ann", "times": 2}')
    response = messages_fn.handler(event, FakeContext())
    assert (response["statusCode"], json.loads(response["body"])) == (201, {"text": "hello Ann hello Ann"})


def test_a_base64_body_that_fits_no_model_names_the_field(messages_fn, agent):
    event = _curl_d_event(f"/agents/{agent}/plugins/widgets/greet", b'{"name": "Ann", "times": 7}')
    response = messages_fn.handler(event, FakeContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 422 and [f["field"] for f in body["fields"]] == ["times"]


@pytest.mark.parametrize("raw", [b"name=Ann&times=2", b"\xff\xfe{}", b"{not json"])
def test_a_base64_body_that_is_not_utf8_json_is_a_400(messages_fn, agent, raw):
    event = _curl_d_event(f"/agents/{agent}/plugins/widgets/greet", raw)
    response = messages_fn.handler(event, FakeContext())
    assert response["statusCode"] == 400 and json.loads(response["body"])["error"] == "invalid_json"


def test_a_body_marked_base64_that_is_not_base64_is_a_400(messages_fn, agent):
    event = _curl_d_event(f"/agents/{agent}/plugins/widgets/greet", b"")
    event["body"] = "%%%not-base64"
    response = messages_fn.handler(event, FakeContext())
    assert response["statusCode"] == 400 and json.loads(response["body"])["error"] == "invalid_json"


@pytest.mark.parametrize("route", ["/agents/{agent}/messages", "/agents/{agent}/documents"])
def test_a_body_marked_base64_that_is_not_base64_is_a_400_on_every_json_route(messages_fn, agent, route):
    event = _curl_d_event(route.format(agent=agent), b"")
    event["body"] = "%%%not-base64"
    response = messages_fn.handler(event, FakeContext())
    assert response["statusCode"] == 400 and json.loads(response["body"])["error"] == "invalid_json"


def test_a_base64_body_over_the_limit_is_refused_by_its_decoded_size(messages_fn, agent, monkeypatch):
    container = messages_fn.container
    monkeypatch.setattr(container, "settings", container.settings.model_copy(update={"max_body_bytes": 30}))
    fits = _curl_d_event(f"/agents/{agent}/plugins/widgets/greet", b'{"name": "Ann", "times": 1}')  # 27 bytes
    assert messages_fn.handler(fits, FakeContext())["statusCode"] == 201
    over = _curl_d_event(f"/agents/{agent}/plugins/widgets/greet", b'{"name": "Annabel", "times": 1}')  # 31 bytes
    response = messages_fn.handler(over, FakeContext())
    assert response["statusCode"] == 413 and "31 bytes" in json.loads(response["body"])["message"]
