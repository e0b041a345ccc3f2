"""Optional response cache for deterministic calls, in the real database cache table."""

from __future__ import annotations

import logging

import pytest

from core.model_providers import cache, openai
from core.types import ModelType
from tests.core.model_providers.conftest import FakeRuntime, json_response, recorded

ON = {"OPENAI_API_KEY": "sk-x", "MODEL_RESPONSE_CACHE": "true"}


@pytest.fixture
def text_handler(resources):
    """``text_handler()``: OpenAI's TEXT_LARGE handler on the test's resources."""

    def find():
        return next(
            m.handler
            for m in openai.build_plugin({"OPENAI_API_KEY": "k"}, resources).models
            if m.model_type is ModelType.TEXT_LARGE
        )

    return find


def answer():
    return json_response(recorded("openai/chat_completions.nonstream.text.response.json"))


def test_only_temperature_zero_is_deterministic():
    assert cache.is_deterministic({"temperature": 0})
    assert cache.is_deterministic({"temperature": 0.0})
    assert not cache.is_deterministic({})
    assert not cache.is_deterministic({"temperature": 0.7})
    assert not cache.is_deterministic({"temperature": False})


def test_key_depends_on_what_shapes_the_answer_only():
    params = {"prompt": "p", "system": "s", "temperature": 0}
    key = cache.cache_key("openai", "gpt-4o", "TEXT_LARGE", params)
    assert key.startswith("model-response:") and len(key) == len("model-response:") + 64
    assert cache.cache_key("openai", "gpt-4o", "TEXT_LARGE", {**params, "on_stream_chunk": print}) == key
    assert cache.cache_key("openai", "gpt-4o-mini", "TEXT_LARGE", params) != key
    assert cache.cache_key("openai", "gpt-4o", "TEXT_LARGE", {**params, "prompt": "q"}) != key
    assert cache.cache_key("anthropic", "gpt-4o", "TEXT_LARGE", params) != key


async def test_off_by_default(mock_http, adapter, agent_id, text_handler):
    recorder = mock_http(answer(), answer())
    runtime = FakeRuntime({"OPENAI_API_KEY": "sk-x"}, adapter=adapter, agent_id=agent_id)
    for _ in range(2):
        await text_handler()(runtime, {"prompt": "hi", "temperature": 0})
    assert len(recorder.requests) == 2


async def test_deterministic_call_is_served_from_the_cache(mock_http, adapter, agent_id, text_handler):
    recorder = mock_http(answer())
    runtime = FakeRuntime({**ON, "MODEL_RESPONSE_CACHE_TTL_S": "60"}, adapter=adapter, agent_id=agent_id)
    params = {"prompt": "hi", "temperature": 0}
    first = await text_handler()(runtime, params)
    chunks: list[str] = []
    second = await text_handler()(runtime, {**params, "on_stream_chunk": chunks.append})
    assert first == second and chunks == [first]  # a streaming caller still gets its text
    assert len(recorder.requests) == 1
    key = cache.cache_key("openai", "gpt-4o", "TEXT_LARGE", params)
    assert await adapter.get_cache(agent_id, key) == {"text": first}
    logs = await adapter.get_logs(agent_id, type="useModel")
    assert sorted(bool(log.body.get("cached")) for log in logs) == [False, True]


async def test_sampled_calls_are_never_cached(mock_http, adapter, agent_id, text_handler):
    recorder = mock_http(answer(), answer())
    runtime = FakeRuntime(ON, adapter=adapter, agent_id=agent_id)
    for _ in range(2):
        await text_handler()(runtime, {"prompt": "hi", "temperature": 0.7})
    assert len(recorder.requests) == 2


async def test_cache_failures_fall_through_to_the_model(mock_http, caplog, agent_id, text_handler):
    class BrokenAdapter:
        async def get_cache(self, agent_id, key):
            raise RuntimeError("db down")

        async def set_cache(self, agent_id, key, value, ttl_s=None):
            raise RuntimeError("db down")

        async def log(self, entry):
            return entry.id

    caplog.set_level(logging.WARNING)
    recorder = mock_http(answer())
    runtime = FakeRuntime(ON, adapter=BrokenAdapter(), agent_id=agent_id)
    assert "potato" in await text_handler()(runtime, {"prompt": "hi", "temperature": 0})
    assert len(recorder.requests) == 1
    assert "cache read failed" in caplog.text and "cache write failed" in caplog.text


async def test_without_an_adapter_the_cache_is_skipped(mock_http, text_handler):
    recorder = mock_http(answer())
    assert "potato" in await text_handler()(FakeRuntime(ON), {"prompt": "hi", "temperature": 0})
    assert len(recorder.requests) == 1
