"""Ollama native API provider, replaying the documented responses through httpx.MockTransport."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from core.errors import ModelError
from core.model_providers import ollama
from core.model_providers.http import ProviderError
from core.model_providers.scripted import ScriptedModels
from core.model_registry import ModelRegistry
from core.types import ModelType
from tests.core.model_providers.conftest import FakeRuntime, json_response, recorded_json

SETTINGS = {"OLLAMA_BASE_URL": "http://127.0.0.1:11434"}


@pytest.fixture
def handler(resources):
    """``handler(model_type)``: the handler the plugin registers for it, on the test's resources."""

    def find(model_type: ModelType):
        return next(m.handler for m in ollama.build_plugin(SETTINGS, resources).models if m.model_type is model_type)

    return find


def ndjson(*chunks: dict) -> httpx.Response:
    return httpx.Response(
        200,
        content="".join(json.dumps(c) + "\n" for c in chunks).encode(),
        headers={"content-type": "application/x-ndjson"},
    )


def test_no_base_url_registers_nothing_and_says_so_once(caplog, resources):
    caplog.set_level(logging.WARNING)
    assert ollama.build_plugin({}, resources).models == () and ollama.build_plugin({}, resources).models == ()
    assert caplog.text.count("ollama is not enabled") == 1


def test_structured_output_capability_is_opt_in(resources):
    assert all(not m.capabilities for m in ollama.build_plugin(SETTINGS, resources).models)
    opted = ollama.build_plugin({**SETTINGS, "OLLAMA_STRUCTURED_OUTPUT": "true"}, resources)
    assert "structured_output" in next(m for m in opted.models if m.model_type is ModelType.TEXT_LARGE).capabilities
    assert {m.priority for m in opted.models} == {0}


async def test_non_streaming_chat(mock_http, adapter, agent_id, handler):
    recorder = mock_http(json_response(recorded_json("ollama/api_chat.nonstream.response.json")))
    runtime = FakeRuntime(SETTINGS, adapter=adapter, agent_id=agent_id)
    text = await handler(ModelType.TEXT_LARGE)(
        runtime, {"prompt": "why is the sky blue?", "temperature": 0.2, "repeat_penalty": 1.3, "max_tokens": 120}
    )
    assert text == "Hello! How are you today?"
    assert str(recorder.requests[0].url) == "http://127.0.0.1:11434/api/chat"
    request = recorded_json("ollama/api_chat.nonstream.request.json")
    assert recorder.json() == {**request, "options": {"num_predict": 120, "temperature": 0.2, "repeat_penalty": 1.3}}
    (log,) = await adapter.get_logs(agent_id, type="useModel")
    assert (log.body["promptTokens"], log.body["completionTokens"], log.body["totalTokens"]) == (26, 298, 324)


async def test_streaming_ndjson(mock_http, handler):
    first = recorded_json("ollama/api_chat.stream.chunk_first.json")
    middle = {**first, "message": {"role": "assistant", "content": " sky"}}
    recorder = mock_http(ndjson(first, middle, recorded_json("ollama/api_chat.stream.chunk_final.json")))
    chunks: list[str] = []
    runtime = FakeRuntime({"OLLAMA_API_ENDPOINT": "http://127.0.0.1:11434/api"})  # elizaOS's spelling, with /api
    text = await handler(ModelType.TEXT_SMALL)(runtime, {"prompt": "why?", "on_stream_chunk": chunks.append})
    assert text == "The sky" and chunks == ["The", " sky"]
    assert str(recorder.requests[0].url) == "http://127.0.0.1:11434/api/chat"
    assert recorder.json()["stream"] is True


async def test_error_line_in_a_stream_is_retryable(mock_http, handler):
    mock_http(ndjson({"message": {"content": "The"}, "done": False}, {"error": "model runner crashed"}))
    with pytest.raises(ProviderError, match="model runner crashed") as caught:
        await handler(ModelType.TEXT_SMALL)(FakeRuntime(SETTINGS), {"prompt": "x", "on_stream_chunk": print})
    assert caught.value.retryable


async def test_structured_output_uses_format(mock_http, handler):
    answer = {
        **recorded_json("ollama/api_chat.nonstream.response.json"),
        "message": {"role": "assistant", "content": '{"age": 22, "available": true}'},
    }
    recorder = mock_http(json_response(answer))
    schema = {"type": "object", "properties": {"age": {"type": "integer"}, "available": {"type": "boolean"}}}
    assert await handler(ModelType.OBJECT_SMALL)(FakeRuntime(SETTINGS), {"prompt": "x", "schema": schema}) == {
        "age": 22,
        "available": True,
    }
    assert recorder.json()["format"] == schema


async def test_embed_documented_response(mock_http, handler):
    recorder = mock_http(json_response(recorded_json("ollama/api_embed.single.response.json")))
    vector = await handler(ModelType.TEXT_EMBEDDING)(FakeRuntime(SETTINGS), {"text": "Why is the sky blue?"})
    assert len(vector) == 10 and vector[0] == pytest.approx(0.010071029)
    assert recorder.json() == {"model": "all-minilm", "input": ["Why is the sky blue?"]}


async def test_embed_batch_in_one_request(mock_http, handler):
    answer = {"model": "all-minilm", "embeddings": [[0.1], [0.2], [0.3]], "prompt_eval_count": 9}
    recorder = mock_http(json_response(answer))
    runtime = FakeRuntime({**SETTINGS, "OLLAMA_EMBEDDING_MODEL": "nomic-embed-text"})
    assert await handler(ModelType.TEXT_EMBEDDING)(runtime, {"texts": ["a", "b", "c"]}) == [[0.1], [0.2], [0.3]]
    assert len(recorder.requests) == 1 and recorder.json()["model"] == "nomic-embed-text"


async def test_missing_model_404_is_not_retryable_and_500_falls_back(mock_http, delays, handler, resources):
    mock_http(json_response({"error": "model 'llama3.2' not found, try pulling it first"}, 404))
    with pytest.raises(ModelError, match="not found") as caught:
        await handler(ModelType.TEXT_LARGE)(FakeRuntime(SETTINGS), {"prompt": "x"})
    assert not caught.value.retryable
    mock_http(lambda r: json_response({"error": "out of memory"}, 500), repeat=True)
    backup = ScriptedModels()
    backup.script(ModelType.TEXT_LARGE, "backup")
    registry = ModelRegistry()
    for plugin in (ollama.build_plugin(SETTINGS, resources), backup.plugin(priority=-1)):
        for registration in plugin.models:
            registry.register(plugin.name, registration)
    assert await registry.use(FakeRuntime(SETTINGS), ModelType.TEXT_LARGE, {"prompt": "x"}) == "backup"


async def test_api_key_is_sent_as_bearer(mock_http, handler):
    recorder = mock_http(json_response(recorded_json("ollama/api_chat.nonstream.response.json")))
    await handler(ModelType.TEXT_LARGE)(FakeRuntime({**SETTINGS, "OLLAMA_API_KEY": "ollama-key-123"}), {"prompt": "x"})
    assert recorder.requests[0].headers["authorization"] == "Bearer ollama-key-123"


async def test_base_url_removed_after_registration_is_a_clear_error(mock_http, handler):
    with pytest.raises(ModelError, match="OLLAMA_BASE_URL is not set"):
        await handler(ModelType.TEXT_LARGE)(FakeRuntime({}), {"prompt": "x"})
