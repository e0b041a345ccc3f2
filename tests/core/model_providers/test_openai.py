"""OpenAI-compatible provider, replaying recorded OpenAI responses through httpx.MockTransport."""

from __future__ import annotations

import array
import base64
import json
import logging

import httpx
import pytest

from core.errors import ConfigurationError, ModelError
from core.model_providers import openai
from core.model_providers.http import ProviderError
from core.model_providers.resources import ProviderResources
from core.model_providers.scripted import ScriptedModels
from core.model_registry import ModelRegistry
from core.types import ModelType
from tests.core.model_providers.conftest import (
    FakeRuntime,
    json_response,
    recorded,
    recorded_json,
    sse_response,
)

KEY = "sk-test-abcdefghijklmnopqrstuvwxyz0123456789"
SETTINGS = {"OPENAI_API_KEY": KEY}


@pytest.fixture
def handler(resources):
    """``handler(model_type)``: the handler the plugin registers for it, on the test's resources."""

    def find(model_type: ModelType, environ: dict | None = None):
        plugin = openai.build_plugin(environ or {"OPENAI_API_KEY": KEY}, resources)
        return next(m.handler for m in plugin.models if m.model_type is model_type)

    return find


def test_no_credentials_registers_nothing_and_says_so_once(caplog, resources):
    caplog.set_level(logging.WARNING)
    first = openai.build_plugin({}, resources)
    second = openai.build_plugin({}, resources)
    assert first.models == () and second.models == ()
    notes = [r for r in caplog.records if "openai is not enabled" in r.getMessage()]
    assert len(notes) == 1
    assert "OPENAI_API_KEY" in notes[0].getMessage()


def test_credentials_register_every_type_with_priority_and_capabilities(resources):
    plugin = openai.build_plugin({"OPENAI_API_KEY_SECRET_ID": "prod/openai", "OPENAI_PRIORITY": "7"}, resources)
    by_type = {m.model_type: m for m in plugin.models}
    assert set(by_type) == {
        ModelType.TEXT_SMALL,
        ModelType.TEXT_LARGE,
        ModelType.OBJECT_SMALL,
        ModelType.OBJECT_LARGE,
        ModelType.TEXT_EMBEDDING,
        ModelType.IMAGE_DESCRIPTION,
        ModelType.IMAGE,
        ModelType.TRANSCRIPTION,
        ModelType.TEXT_TO_SPEECH,
    }
    assert {m.priority for m in plugin.models} == {7}
    assert "structured_output" in by_type[ModelType.TEXT_LARGE].capabilities
    assert by_type[ModelType.TEXT_EMBEDDING].capabilities == frozenset()
    small = openai.build_plugin(
        {"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1", "OPENAI_STRUCTURED_OUTPUT": "false"}, resources
    )
    assert all("structured_output" not in m.capabilities for m in small.models)


async def test_missing_key_at_call_time_is_a_non_retryable_error_naming_the_setting(mock_http, handler):
    recorder = mock_http()
    with pytest.raises(ModelError, match="OPENAI_API_KEY") as caught:
        await handler(ModelType.TEXT_LARGE)(FakeRuntime({}), {"prompt": "hi"})
    assert caught.value.retryable is False
    assert recorder.requests == []


async def test_non_streaming_chat_returns_text_and_sends_a_well_formed_request(mock_http, handler):
    recorder = mock_http(json_response(recorded("openai/chat_completions.nonstream.text.response.json")))
    text = await handler(ModelType.TEXT_LARGE)(
        FakeRuntime({**SETTINGS, "OPENAI_LARGE_MODEL": "o3-mini"}),
        {
            "prompt": "Who are you?",
            "system": "You are a potato.",
            "max_tokens": 50,
            "temperature": 0,
            "stop_sequences": ["</response>"],
        },
    )
    assert text.startswith("That's right—I am a potato!")
    request = recorder.requests[0]
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert recorder.json() == {
        "model": "o3-mini",
        "messages": [{"role": "system", "content": "You are a potato."}, {"role": "user", "content": "Who are you?"}],
        "max_completion_tokens": 50,
        "temperature": 0.0,
        "stop": ["</response>"],
    }


async def test_compatible_server_needs_no_key_and_gets_max_tokens(mock_http, handler):
    recorder = mock_http(json_response(recorded("openai/chat_completions.nonstream.text.response.json")))
    runtime = FakeRuntime({"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1/", "TEXT_SMALL_MODEL": "qwen2.5"})
    await handler(ModelType.TEXT_SMALL, {"OPENAI_BASE_URL": "x"})(
        runtime, {"messages": [{"role": "user", "content": "hi"}]}
    )
    request = recorder.requests[0]
    assert str(request.url) == "http://127.0.0.1:8000/v1/chat/completions"
    assert "authorization" not in request.headers
    body = recorder.json()
    assert body["model"] == "qwen2.5" and body["max_tokens"] == 4096 and "max_completion_tokens" not in body


async def test_streaming_delivers_chunks_and_returns_the_full_text_with_usage(mock_http, handler):
    recorder = mock_http(sse_response(recorded("openai/chat_completions.stream.text.response.sse")))
    chunks: list[str] = []

    async def on_chunk(chunk: str) -> None:  # an async callback is awaited
        chunks.append(chunk)

    params = {"prompt": "capital?", "on_stream_chunk": on_chunk}
    text = await handler(ModelType.TEXT_LARGE)(FakeRuntime(SETTINGS), params)
    assert text == "The capital of the UK is London."
    assert chunks == ["The", " capital", " of", " the", " UK", " is", " London", "."]
    body = recorder.json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert recorder.requests[0].headers["accept"] == "text/event-stream"


async def test_streaming_usage_reaches_the_usage_log(mock_http, adapter, agent_id, handler):
    mock_http(sse_response(recorded("openai/chat_completions.stream.text.response.sse")))
    runtime = FakeRuntime(SETTINGS, adapter=adapter, agent_id=agent_id)
    await handler(ModelType.TEXT_LARGE)(runtime, {"prompt": "capital?", "on_stream_chunk": lambda c: None})
    (log,) = await adapter.get_logs(agent_id, type="useModel")
    assert log.body["provider"] == "openai" and log.body["model"] == "gpt-4o-mini-2024-07-18"
    assert (log.body["promptTokens"], log.body["completionTokens"], log.body["totalTokens"]) == (78, 9, 87)


async def test_structured_output_sends_a_json_schema_and_object_calls_parse_it(mock_http, handler):
    # Shape from OpenAI's structured outputs guide: the JSON arrives as the message content.
    answer = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": '{"thought":"greet","actions":["REPLY"],"text":"Hello!"}',
                    "refusal": None,
                },
            }
        ],
        "model": "gpt-4o-2024-08-06",
        "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
    }
    recorder = mock_http(json_response(answer), json_response(answer))
    schema = {"type": "object", "title": "Reply plan", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    result = await handler(ModelType.OBJECT_LARGE)(
        FakeRuntime(SETTINGS), {"prompt": "plan", "schema": schema, "strict": True}
    )
    assert result == {"thought": "greet", "actions": ["REPLY"], "text": "Hello!"}
    assert recorder.json(0)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Reply_plan", "schema": schema, "strict": True},
    }
    text = await handler(ModelType.TEXT_LARGE)(FakeRuntime(SETTINGS), {"prompt": "plan", "schema": schema})
    assert json.loads(text)["text"] == "Hello!"


async def test_object_call_without_schema_uses_json_mode(mock_http, handler):
    answer = {"choices": [{"message": {"role": "assistant", "content": "[1, 2]"}}], "model": "gpt-4o-mini"}
    recorder = mock_http(json_response(answer))
    assert await handler(ModelType.OBJECT_SMALL)(FakeRuntime(SETTINGS), {"prompt": "json list"}) == [1, 2]
    assert recorder.json()["response_format"] == {"type": "json_object"}


async def test_object_call_with_unparsable_answer_is_retryable(mock_http, handler):
    answer = {"choices": [{"message": {"role": "assistant", "content": "not json"}}], "model": "gpt-4o-mini"}
    mock_http(json_response(answer))
    with pytest.raises(ModelError, match="not valid JSON") as caught:
        await handler(ModelType.OBJECT_SMALL)(FakeRuntime(SETTINGS), {"prompt": "json"})
    assert caught.value.retryable is True


async def test_refusal_is_a_non_retryable_error(mock_http, handler):
    answer = {"choices": [{"message": {"role": "assistant", "content": None, "refusal": "I can't help"}}]}
    mock_http(json_response(answer))
    with pytest.raises(ModelError, match="refused") as caught:
        await handler(ModelType.TEXT_SMALL)(FakeRuntime(SETTINGS), {"prompt": "x"})
    assert caught.value.retryable is False


def _floats(b64: str) -> list[float]:
    return array.array("f", base64.b64decode(b64)).tolist()


async def test_embeddings_batch_decodes_base64_in_input_order(mock_http, handler):
    response = recorded_json("openai/embeddings.batch.response.json")
    expected = [_floats(item["embedding"]) for item in response["data"]]
    response["data"].reverse()  # the API may answer out of order: ``index`` decides
    recorder = mock_http(json_response(response))
    vectors = await handler(ModelType.TEXT_EMBEDDING)(FakeRuntime(SETTINGS), {"texts": ["hello", "world"]})
    assert vectors == expected
    assert len(vectors) == 2 and all(len(v) == 1536 for v in vectors)
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-3  # OpenAI vectors are unit length
    assert recorder.json() == {
        "model": "text-embedding-3-small",
        "input": ["hello", "world"],
        "encoding_format": "base64",
    }


async def test_embedding_single_text_returns_one_vector(mock_http, handler):
    mock_http(json_response(recorded("openai/embeddings.single.response.json")))
    vector = await handler(ModelType.TEXT_EMBEDDING)(FakeRuntime(SETTINGS), {"text": "Hello, world!"})
    assert isinstance(vector, list) and len(vector) == 1536 and isinstance(vector[0], float)


async def test_embeddings_are_batched_and_send_dimensions(mock_http, handler):
    single = recorded_json("openai/embeddings.single.response.json")
    recorder = mock_http(lambda r: json_response(single), repeat=True)
    runtime = FakeRuntime({**SETTINGS, "OPENAI_EMBEDDING_BATCH_SIZE": "1", "EMBEDDING_DIMENSION": "1536"})
    vectors = await handler(ModelType.TEXT_EMBEDDING)(runtime, {"texts": ["a", "", "c"]})
    assert len(vectors) == 3 and len(recorder.requests) == 3
    assert [recorder.json(i)["input"] for i in range(3)] == [["a"], [" "], ["c"]]  # empty text still embedded
    assert {recorder.json(i)["dimensions"] for i in range(3)} == {1536}


async def test_embeddings_float_encoding_for_servers_without_base64(mock_http, handler):
    answer = {"data": [{"index": 0, "embedding": [0.5, -0.25]}], "model": "nomic", "usage": {"prompt_tokens": 1}}
    recorder = mock_http(json_response(answer))
    runtime = FakeRuntime(
        {
            "OPENAI_BASE_URL": "http://127.0.0.1:1234/v1",
            "OPENAI_EMBEDDING_ENCODING": "float",
            "OPENAI_EMBEDDING_MODEL": "nomic",
            "EMBEDDING_DIMENSION": "384",
        }
    )
    assert await handler(ModelType.TEXT_EMBEDDING)(runtime, {"text": "x"}) == [0.5, -0.25]
    assert "dimensions" not in recorder.json()  # only text-embedding-3 models take it
    assert recorder.json()["encoding_format"] == "float"


async def test_embedding_count_mismatch_is_retryable(mock_http, handler):
    mock_http(json_response(recorded("openai/embeddings.single.response.json")))
    with pytest.raises(ModelError, match="asked for 2 embeddings, got 1") as caught:
        await handler(ModelType.TEXT_EMBEDDING)(FakeRuntime(SETTINGS), {"texts": ["a", "b"]})
    assert caught.value.retryable is True


async def test_recorded_400_is_not_retried_and_keeps_the_error_code(mock_http, delays, handler):
    recorder = mock_http(json_response(recorded("openai/chat_completions.error_400.response.json"), status=400))
    with pytest.raises(ProviderError) as caught:
        await handler(ModelType.TEXT_LARGE)(FakeRuntime(SETTINGS), {"prompt": "Hello", "system": "x"})
    assert caught.value.retryable is False and caught.value.status == 400
    assert caught.value.code == "invalid_request_error"
    assert "does not support 'system'" in str(caught.value)
    assert len(recorder.requests) == 1 and delays == []


async def test_429_then_success_waits_for_retry_after(mock_http, delays, handler):
    recorder = mock_http(
        json_response({"error": {"type": "rate_limit_error", "message": "slow down"}}, 429, {"retry-after": "2"}),
        json_response(recorded("openai/chat_completions.nonstream.text.response.json")),
    )
    text = await handler(ModelType.TEXT_LARGE)(FakeRuntime(SETTINGS), {"prompt": "hi"})
    assert "potato" in text
    assert len(recorder.requests) == 2 and len(delays) == 1 and delays[0] >= 2.0


async def test_500_exhausted_falls_back_to_the_next_provider(mock_http, delays, resources):
    recorder = mock_http(
        lambda r: json_response({"error": {"message": "boom", "type": "server_error"}}, 500), repeat=True
    )
    backup = ScriptedModels()
    backup.script(ModelType.TEXT_LARGE, "from the backup")
    registry = ModelRegistry()
    for plugin in (openai.build_plugin({"OPENAI_API_KEY": KEY}, resources), backup.plugin(priority=0)):
        for registration in plugin.models:
            registry.register(plugin.name, registration)
    assert await registry.use(FakeRuntime(SETTINGS), ModelType.TEXT_LARGE, {"prompt": "hi"}) == "from the backup"
    assert len(recorder.requests) == 3 and len(delays) == 2  # three attempts, two backoffs


async def test_malformed_json_is_retryable_and_falls_back(mock_http, handler):
    recorder = mock_http(
        lambda r: httpx.Response(200, content=b'{"choices": [', headers={"content-type": "application/json"}),
        repeat=True,
    )
    with pytest.raises(ProviderError, match="not valid JSON") as caught:
        await handler(ModelType.TEXT_LARGE)(FakeRuntime(SETTINGS), {"prompt": "hi"})
    assert caught.value.retryable is True and len(recorder.requests) == 3


async def test_unexpected_shape_is_a_retryable_model_error(mock_http, handler):
    mock_http(json_response({"choices": [{"no_message": True}]}))
    with pytest.raises(ModelError, match="unexpected response shape") as caught:
        await handler(ModelType.TEXT_LARGE)(FakeRuntime(SETTINGS), {"prompt": "hi"})
    assert caught.value.retryable is True


async def test_malformed_stream_chunk_is_retryable(mock_http, handler):
    body = b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\ndata: {"choices": [\n\n'
    mock_http(sse_response(body))
    chunks: list[str] = []
    with pytest.raises(ProviderError, match="not valid JSON") as caught:
        await handler(ModelType.TEXT_LARGE)(FakeRuntime(SETTINGS), {"prompt": "hi", "on_stream_chunk": chunks.append})
    assert caught.value.retryable is True and chunks == ["Hel"]


async def test_errors_never_leak_the_key_or_the_prompt(mock_http, caplog, adapter, agent_id, resources):
    caplog.set_level(logging.DEBUG)
    prompt = "My secret diary entry: " + "the quick brown fox jumps over the lazy dog " * 5
    echo = {
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "message": f"Incorrect API key provided: {KEY}. Your prompt was: {prompt}",
        }
    }
    mock_http(json_response(echo, 401))
    runtime = FakeRuntime(SETTINGS, adapter=adapter, agent_id=agent_id)
    registry = ModelRegistry()
    for registration in openai.build_plugin({"OPENAI_API_KEY": KEY}, resources).models:
        registry.register("openai", registration)
    with pytest.raises(ModelError) as caught:
        await registry.use(runtime, ModelType.TEXT_LARGE, {"prompt": prompt})
    (log,) = await adapter.get_logs(agent_id, type="useModel")
    for text in (
        str(caught.value),
        repr(caught.value),
        caplog.text,
        json.dumps(log.body),
        str(caught.value.__cause__ or ""),
    ):
        assert KEY not in text and "sk-test" not in text
        assert "quick brown fox jumps over the lazy dog the quick" not in text
    assert "invalid_request_error" in str(caught.value) and "[redacted]" in str(caught.value)
    assert log.body["error"].startswith("openai: HTTP 401")


@pytest.mark.parametrize("module", ["openai", "anthropic", "bedrock", "ollama"])
def test_every_provider_resolves_by_its_module_path(module):
    from core.blueprint import resolve_plugin
    from core.plugin import Plugin

    plugin = resolve_plugin(f"core.model_providers.{module}")  # MODEL_PLUGINS=core.model_providers.<module>
    assert isinstance(plugin, Plugin) and plugin.name == module


async def test_a_call_without_a_runtime_reads_the_environment(mock_http, handler, monkeypatch):
    """The embeddings function calls handlers with ``runtime=None``: keys and models come from the environment."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_EMBEDDING_MODEL", "text-embedding-3-large")
    recorder = mock_http(json_response(recorded("openai/embeddings.single.response.json")))
    vector = await handler(ModelType.TEXT_EMBEDDING)(None, {"text": "Hello, world!"})
    assert len(vector) == 1536
    assert recorder.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert recorder.json()["model"] == "text-embedding-3-large"


async def test_a_malformed_per_agent_setting_names_the_variable(mock_http, handler):
    mock_http()
    runtime = FakeRuntime({**SETTINGS, "OPENAI_EMBEDDING_BATCH_SIZE": "lots"})
    with pytest.raises(ConfigurationError, match="^OPENAI_EMBEDDING_BATCH_SIZE: must be an integer"):
        await handler(ModelType.TEXT_EMBEDDING)(runtime, {"texts": ["a"]})


async def test_a_provider_trips_the_breaker_of_its_own_resources_only(mock_http, resources):
    """Two resources (two processes, or two tests) learn about a provider separately."""
    mock_http(lambda r: json_response({"error": {"type": "server_error"}}, 500), repeat=True)
    failing = next(
        m.handler for m in openai.build_plugin(SETTINGS, resources).models if m.model_type is ModelType.TEXT_SMALL
    )
    for _ in range(3):  # the default threshold
        with pytest.raises(ProviderError):
            await failing(FakeRuntime(SETTINGS), {"prompt": "x"})
    assert resources.breakers.health()["openai"]["state"] == "open"
    assert ProviderResources().breakers.health() == {}


async def test_image_description_sends_the_image_and_returns_title_and_description(mock_http, handler):
    recorder = mock_http(json_response(recorded_json("openai/chat_completions.image_description.response.json")))
    describe = handler(ModelType.IMAGE_DESCRIPTION)
    result = await describe(FakeRuntime(SETTINGS), {"image_url": "https://example.com/boardwalk.jpg"})
    assert result["title"] == "Wooden Boardwalk Through a Green Meadow"
    assert result["description"].startswith("A wooden boardwalk runs straight")
    sent = recorder.json()
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://example.com/boardwalk.jpg"},
    }


async def test_image_generation_returns_the_urls(mock_http, handler):
    recorder = mock_http(json_response(recorded_json("openai/images_generations.response.json")))
    images = await handler(ModelType.IMAGE)(FakeRuntime(SETTINGS), {"prompt": "a sea otter", "size": "1024x1024"})
    assert images == [{"url": recorded_json("openai/images_generations.response.json")["data"][0]["url"]}]
    assert recorder.requests[0].url.path == "/v1/images/generations"
    assert recorder.json()["model"] == "dall-e-3"
