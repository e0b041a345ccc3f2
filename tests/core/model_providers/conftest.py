"""Fixtures for the model provider tests: recorded responses, a mock HTTP transport, a runtime.

Recorded provider traffic lives in ``tests/data/providers`` (its README names each file's
source and license); the tests replay it through ``httpx.MockTransport`` (HTTP providers)
and botocore (Bedrock).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest

from core.model_providers import base, bedrock, circuit, http, secrets
from tests.data import PROVIDERS

#: Settings of every provider, removed from the environment so a developer's keys never leak in.
PROVIDER_VARS = [k for k in os.environ if k.startswith(("OPENAI_", "ANTHROPIC_", "BEDROCK_", "OLLAMA_", "MODEL_"))]


def recorded(name: str) -> bytes:
    """Bytes of a recorded file, e.g. ``recorded("openai/embeddings.batch.response.json")``."""
    return (PROVIDERS / name).read_bytes()


def recorded_json(name: str) -> Any:
    return json.loads(recorded(name))


class FakeRuntime:
    """The slice of ``AgentRuntime`` the providers use: settings, and optionally an adapter.

    Settings come from ``settings`` only (never the process environment), so a test sees
    exactly what it set.
    """

    def __init__(self, settings: Mapping[str, Any] | None = None, adapter: Any = None,
                 agent_id: uuid.UUID | None = None) -> None:
        self.settings = dict(settings or {})
        self.adapter = adapter
        self.agent_id = agent_id

    def get_setting(self, key: str) -> Any:
        value = self.settings.get(key)
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        return value


class Recorder:
    """A ``MockTransport`` handler that answers from a queue and keeps the requests it saw."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response],
                 repeat: bool = False) -> None:
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


@pytest.fixture(autouse=True)
def clean_provider_state(monkeypatch):
    """Fresh breakers, secrets cache and HTTP client per test; sleeps recorded, not slept."""
    for key in PROVIDER_VARS:
        monkeypatch.delenv(key, raising=False)
    delays: list[float] = []

    async def no_sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(http, "sleep", no_sleep)
    circuit.reset()
    base._announced.clear()
    secrets._cache.clear()
    yield delays
    http.configure()
    bedrock.configure(None)
    circuit.reset()
    secrets._cache.clear()


@pytest.fixture
def delays(clean_provider_state) -> list[float]:
    """Backoff delays the code under test asked for, in seconds."""
    return clean_provider_state


@pytest.fixture
def mock_http() -> Callable[..., Recorder]:
    """``mock_http(*answers)``: route every provider HTTP call to a ``Recorder``."""
    def install(*answers: Any, repeat: bool = False) -> Recorder:
        recorder = Recorder(*answers, repeat=repeat)
        http.configure(transport=httpx.MockTransport(recorder))
        return recorder
    return install
