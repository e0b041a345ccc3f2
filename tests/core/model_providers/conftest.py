"""Fixtures for the model provider tests: recorded responses, a mock HTTP transport, a runtime.

Recorded provider traffic lives in ``tests/data/providers`` (its README names each file's
source and license); the tests replay it through ``httpx.MockTransport`` (HTTP providers)
and botocore (Bedrock).

Each test builds its own ``ProviderResources`` (the ``resources`` fixture: fresh breakers,
secrets cache and HTTP client, delays recorded instead of slept) and passes it to the
providers: no module state to reset.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest

from core.model_providers.resources import ProviderResources
from core.settings.providers import EnvironmentSettings, ProviderSettings
from tests.data import PROVIDERS

#: Settings of every provider, removed from the environment so a developer's keys never leak in.
PROVIDER_VARS = [k for k in os.environ if k.startswith(("OPENAI_", "ANTHROPIC_", "BEDROCK_", "OLLAMA_", "MODEL_"))]


def recorded(name: str) -> bytes:
    """Bytes of a recorded file, e.g. ``recorded("openai/embeddings.batch.response.json")``."""
    return (PROVIDERS / name).read_bytes()


def recorded_json(name: str) -> Any:
    return json.loads(recorded(name))


class FakeRuntime(EnvironmentSettings):
    """The slice of ``AgentRuntime`` the providers use: settings, and optionally an adapter.

    Settings come from ``settings`` only (never the process environment), so a test sees
    exactly what it set; they are read as ``EnvironmentSettings`` reads its mapping.
    """

    def __init__(
        self, settings: Mapping[str, Any] | None = None, adapter: Any = None, agent_id: uuid.UUID | None = None
    ) -> None:
        self.settings = dict(settings or {})
        super().__init__(self.settings)
        self.adapter = adapter
        self.agent_id = agent_id


class Recorder:
    """A ``MockTransport`` handler that answers from a queue and keeps the requests it saw."""

    def __init__(
        self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response], repeat: bool = False
    ) -> None:
        self.answers = list(answers)
        self.repeat = repeat  # keep giving the last answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self.answers[0] if self.repeat and len(self.answers) == 1 else self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers={"content-type": "application/json", **(headers or {})})


def sse_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream; charset=utf-8"})


class Routes:
    """The ``MockTransport`` handler of a test's resources: the ``Recorder`` ``mock_http`` installed, else none."""

    def __init__(self) -> None:
        self.recorder: Recorder | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.recorder is None:
            raise AssertionError(f"unexpected request {request.method} {request.url}: no mock_http in this test")
        return self.recorder(request)


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch):
    """No provider setting of the developer's environment reaches a test."""
    for key in PROVIDER_VARS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def delays() -> list[float]:
    """Backoff delays the code under test asked for, in seconds."""
    return []


def recording_sleep(delays: list[float]) -> Callable[[float], Any]:
    """A ``sleep`` that records each delay instead of waiting."""

    async def no_sleep(seconds: float) -> None:
        delays.append(seconds)

    return no_sleep


@pytest.fixture
def routes() -> Routes:
    return Routes()


@pytest.fixture
def resources(routes, delays) -> ProviderResources:
    """The test's own provider resources: HTTP through ``routes`` (see ``mock_http``), sleeps recorded."""
    return ProviderResources(ProviderSettings(), transport=httpx.MockTransport(routes), sleep=recording_sleep(delays))


@pytest.fixture
def mock_http(routes) -> Callable[..., Recorder]:
    """``mock_http(*answers)``: route every provider HTTP call of the test's resources to a ``Recorder``."""

    def install(*answers: Any, repeat: bool = False) -> Recorder:
        routes.recorder = Recorder(*answers, repeat=repeat)
        return routes.recorder

    return install
