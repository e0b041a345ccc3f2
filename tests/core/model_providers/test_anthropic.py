"""Anthropic Messages API provider, replaying recorded responses through httpx.MockTransport."""

from __future__ import annotations

import json
import logging

import pytest

from core.errors import ModelError
from core.model_providers import anthropic
from core.model_providers.http import ProviderError
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

KEY = "sk-ant-api03-test-0123456789abcdefghij"
SETTINGS = {"ANTHROPIC_API_KEY": KEY}

# Shape from Anthropic's tool use docs: a forced tool call answers with one tool_use block.
TOOL_ANSWER = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {
            "type": "tool_use",
            "id": "toolu_01",
            "name": "reply_plan",
            "input": {"actions": ["REPLY"], "text": "Bonjour!"},
        }
    ],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 400, "output_tokens": 30},
}


@pytest.fixture
def handler(resources):
    """``handler(model_type)``: the handler the plugin registers for it, on the test's resources."""

    def find(model_type: ModelType):
        return next(m.handler for m in anthropic.build_plugin(SETTINGS, resources).models if m.model_type is model_type)

    return find


def test_no_key_registers_nothing_and_says_so_once(caplog, resources):
    caplog.set_level(logging.WARNING)
    assert anthropic.build_plugin({}, resources).models == ()
    assert anthropic.build_plugin({"OPENAI_API_KEY": "x"}, resources).models == ()
    assert caplog.text.count("anthropic is not enabled") == 1


def test_a_key_registers_text_and_object_models_with_structured_output(resources):
    plugin = anthropic.build_plugin({"ANTHROPIC_API_KEY_PARAMETER": "/prod/anthropic"}, resources)
    assert {m.model_type for m in plugin.models} == {
        ModelType.TEXT_SMALL,
        ModelType.TEXT_LARGE,
        ModelType.OBJECT_SMALL,
        ModelType.OBJECT_LARGE,
    }
    assert all("structured_output" in m.capabilities and m.priority == 10 for m in plugin.models)


async def test_non_streaming_text_with_system_prompt(mock_http, handler):
    recorder = mock_http(json_response(recorded("anthropic/messages.nonstream.text.response.json")))
    request = recorded_json("anthropic/messages.nonstream.text.request.json")
    text = await handler(ModelType.TEXT_LARGE)(
        FakeRuntime({**SETTINGS, "ANTHROPIC_LARGE_MODEL": "claude-3-opus-latest"}),
        {"system": request["system"], "prompt": "What is the capital of France?", "max_tokens": 4096},
    )
    assert text == "The capital of France is Paris."
    sent = recorder.requests[0]
    assert str(sent.url) == "https://api.anthropic.com/v1/messages"
    assert sent.headers["x-api-key"] == KEY and sent.headers["anthropic-version"] == "2023-06-01"
    assert recorder.json() == {
        "model": "claude-3-opus-latest",
        "max_tokens": 4096,
        "system": "You are a helpful assistant.\n\n",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    }


async def test_streaming_recorded_response_with_padding_and_pings(mock_http, handler):
    recorder = mock_http(sse_response(recorded("anthropic/messages.stream.text.response.sse")))
    chunks: list[str] = []
    text = await handler(ModelType.TEXT_SMALL)(
        FakeRuntime(SETTINGS), {"prompt": "What is 1+1? Answer with just the number.", "on_stream_chunk": chunks.append}
    )
    assert text == "2" and chunks == ["2"]
    assert recorder.json()["stream"] is True and recorder.json()["model"] == "claude-haiku-4-5"


async def test_streaming_sdk_fixture_delivers_every_delta_and_usage(mock_http, adapter, agent_id, handler):
    mock_http(sse_response(recorded("anthropic/sdk_fixture.basic_response.sse")))
    chunks: list[str] = []
    runtime = FakeRuntime(SETTINGS, adapter=adapter, agent_id=agent_id)
    text = await handler(ModelType.TEXT_LARGE)(runtime, {"prompt": "hi", "on_stream_chunk": chunks.append})
    assert text == "Hello there!" and chunks == ["Hello", " there", "!"]
    (log,) = await adapter.get_logs(agent_id, type="useModel")
    assert (log.body["promptTokens"], log.body["completionTokens"]) == (11, 6)
    assert log.body["model"] == "claude-3-opus-latest"


async def test_structured_output_is_a_forced_tool_call(mock_http, handler):
    recorder = mock_http(json_response(TOOL_ANSWER), json_response(TOOL_ANSWER))
    schema = {"type": "object", "properties": {"actions": {"type": "array"}, "text": {"type": "string"}}}
    result = await handler(ModelType.OBJECT_LARGE)(
        FakeRuntime(SETTINGS), {"prompt": "plan", "schema": schema, "schema_name": "reply_plan"}
    )
    assert result == {"actions": ["REPLY"], "text": "Bonjour!"}
    body = recorder.json()
    assert body["tools"][0]["name"] == "reply_plan" and body["tools"][0]["input_schema"] == schema
    assert body["tool_choice"] == {"type": "tool", "name": "reply_plan"}
    text = await handler(ModelType.TEXT_LARGE)(
        FakeRuntime(SETTINGS), {"prompt": "plan", "schema": schema, "schema_name": "reply_plan"}
    )
    assert json.loads(text) == {"actions": ["REPLY"], "text": "Bonjour!"}


async def test_object_call_without_schema_asks_for_any_object(mock_http, handler):
    answer = {**TOOL_ANSWER, "content": [{"type": "tool_use", "id": "t", "name": "response", "input": {"a": 1}}]}
    recorder = mock_http(json_response(answer))
    assert await handler(ModelType.OBJECT_SMALL)(FakeRuntime(SETTINGS), {"prompt": "x"}) == {"a": 1}
    assert recorder.json()["tools"][0]["input_schema"] == {"type": "object"}


async def test_missing_tool_call_is_retryable(mock_http, handler):
    mock_http(json_response(recorded("anthropic/messages.nonstream.text.response.json")))
    with pytest.raises(ModelError, match="did not call the structured-output tool") as caught:
        await handler(ModelType.OBJECT_SMALL)(FakeRuntime(SETTINGS), {"prompt": "x"})
    assert caught.value.retryable


async def test_streamed_tool_input_is_assembled(mock_http, handler):
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {"model": "claude-sonnet-4-5", "usage": {"input_tokens": 50, "output_tokens": 1}},
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "response", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"text": "Hi'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ' there"}'},
            },
        ),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    body = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()
    mock_http(sse_response(body))
    chunks: list[str] = []
    result = await handler(ModelType.OBJECT_LARGE)(
        FakeRuntime(SETTINGS), {"prompt": "x", "on_stream_chunk": chunks.append}
    )
    assert result == {"text": "Hi there"} and chunks == ['{"text": "Hi', ' there"}']


async def test_stream_error_event_overloaded_is_retryable(mock_http, handler):
    body = (
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":5}}}\n\n'
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    mock_http(sse_response(body))
    with pytest.raises(ProviderError, match="overloaded_error") as caught:
        await handler(ModelType.TEXT_LARGE)(FakeRuntime(SETTINGS), {"prompt": "x", "on_stream_chunk": print})
    assert caught.value.retryable


async def test_529_overloaded_exhausted_falls_back(mock_http, delays, resources):
    recorder = mock_http(
        lambda r: json_response({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, 529),
        repeat=True,
    )
    backup = ScriptedModels()
    backup.script(ModelType.TEXT_LARGE, "backup answer")
    registry = ModelRegistry()
    for plugin in (anthropic.build_plugin(SETTINGS, resources), backup.plugin(priority=-1)):
        for registration in plugin.models:
            registry.register(plugin.name, registration)
    assert await registry.use(FakeRuntime(SETTINGS), ModelType.TEXT_LARGE, {"prompt": "x"}) == "backup answer"
    assert len(recorder.requests) == 3 and len(delays) == 2


async def test_429_then_success(mock_http, delays, handler):
    recorder = mock_http(
        json_response(
            {"type": "error", "error": {"type": "rate_limit_error", "message": "x"}}, 429, {"retry-after": "1"}
        ),
        json_response(recorded("anthropic/messages.nonstream.text.response.json")),
    )
    assert (
        await handler(ModelType.TEXT_SMALL)(FakeRuntime(SETTINGS), {"prompt": "x"}) == "The capital of France is Paris."
    )
    assert len(recorder.requests) == 2 and delays[0] >= 1


async def test_malformed_json_is_retryable(mock_http, handler):
    mock_http(lambda r: json_response(b"<html>gateway</html>"), repeat=True)
    with pytest.raises(ProviderError, match="not valid JSON") as caught:
        await handler(ModelType.TEXT_SMALL)(FakeRuntime(SETTINGS), {"prompt": "x"})
    assert caught.value.retryable


async def test_turns_are_merged_to_alternate_and_start_with_the_user(mock_http, handler):
    recorder = mock_http(json_response(recorded("anthropic/messages.nonstream.text.response.json")))
    await handler(ModelType.TEXT_LARGE)(
        FakeRuntime(SETTINGS),
        {
            "system": "Be Eliza.",
            "messages": [
                {"role": "assistant", "content": "Welcome!"},
                {"role": "user", "content": "hi"},
                {"role": "user", "content": "anyone?"},
                {"role": "system", "content": "Keep it short."},
            ],
        },
    )
    body = recorder.json()
    assert body["system"] == "Be Eliza.\n\nKeep it short."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == "hi\n\nanyone?"


async def test_missing_key_at_call_time_names_the_setting(mock_http, handler):
    mock_http()
    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY is not set") as caught:
        await handler(ModelType.TEXT_SMALL)(FakeRuntime({}), {"prompt": "x"})
    assert not caught.value.retryable


async def test_no_prompt_is_a_non_retryable_error(mock_http, handler):
    with pytest.raises(ModelError, match="needs 'prompt' or 'messages'") as caught:
        await handler(ModelType.TEXT_SMALL)(FakeRuntime(SETTINGS), {})
    assert not caught.value.retryable
