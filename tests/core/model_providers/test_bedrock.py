"""Amazon Bedrock provider, replaying recorded responses through botocore.

Converse and InvokeModel go through ``botocore.stub.Stubber``. ConverseStream cannot: the
Stubber validates a response against the output shape and refuses an ``EventStream`` for
the ``stream`` member. So the recorded binary ``.eventstream`` file is served as the HTTP
body from a ``before-send`` hook, and botocore's real event-stream parser decodes it (the
decoded JSON copy is only used to check the result).
"""

from __future__ import annotations

import io
import json
import logging

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from botocore.stub import Stubber

from core.errors import ModelError
from core.model_providers import bedrock
from core.model_providers.http import ProviderError
from core.model_providers.resources import ProviderResources
from core.model_providers.scripted import ScriptedModels
from core.model_registry import ModelRegistry
from core.types import ModelType
from tests.core.model_providers.conftest import FakeRuntime, recorded, recorded_json, recording_sleep

NOVA = "us.amazon.nova-micro-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"
SETTINGS = {"BEDROCK_TEXT_MODEL_ID": NOVA, "BEDROCK_EMBEDDING_MODEL_ID": TITAN}


@pytest.fixture
def client():
    return boto3.client("bedrock-runtime", region_name="us-east-1")


@pytest.fixture
def resources(client, delays) -> ProviderResources:
    """The test's resources, with the stubbed ``bedrock-runtime`` client."""
    return ProviderResources(bedrock_client=client, sleep=recording_sleep(delays))


@pytest.fixture
def stubber(client):
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def handler(resources):
    """``handler(model_type)``: the handler the plugin registers for it, on the test's resources."""

    def find(model_type: ModelType):
        return next(m.handler for m in bedrock.build_plugin(SETTINGS, resources).models if m.model_type is model_type)

    return find


def body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_no_model_id_registers_nothing_and_says_so_once(caplog, resources):
    caplog.set_level(logging.WARNING)
    assert bedrock.build_plugin({}, resources).models == ()
    bedrock.build_plugin({"AWS_REGION": "eu-west-1"}, resources)
    assert caplog.text.count("bedrock is not enabled") == 1


def test_text_and_embedding_models_register_independently(resources):
    text_only = bedrock.build_plugin({"BEDROCK_TEXT_MODEL_ID": NOVA}, resources)
    assert ModelType.TEXT_EMBEDDING not in {m.model_type for m in text_only.models}
    assert all("structured_output" in m.capabilities for m in text_only.models)
    embed_only = bedrock.build_plugin({"BEDROCK_EMBEDDING_MODEL_ID": TITAN}, resources)
    assert [m.model_type for m in embed_only.models] == [ModelType.TEXT_EMBEDDING]


async def test_converse_recorded_response(stubber, adapter, agent_id, handler):
    request = recorded_json("bedrock/converse.nova_micro.request.json")
    stubber.add_response(
        "converse",
        recorded_json("bedrock/converse.nova_micro.response.json"),
        {
            "modelId": NOVA,
            "messages": request["messages"],
            "system": request["system"],
            "inferenceConfig": {"maxTokens": 4096},
        },
    )
    runtime = FakeRuntime(SETTINGS, adapter=adapter, agent_id=agent_id)
    text = await handler(ModelType.TEXT_LARGE)(runtime, {"system": "You are a chatbot.", "prompt": "Hello!"})
    assert text.startswith("Hello! How can I assist you today?")
    (log,) = await adapter.get_logs(agent_id, type="useModel")
    assert (log.body["promptTokens"], log.body["completionTokens"], log.body["totalTokens"]) == (7, 30, 37)
    assert log.body["provider"] == "bedrock" and log.body["model"] == NOVA


async def test_small_and_large_model_ids_can_differ(client, stubber, handler):
    # The model id as the client was asked for it, before the stubber answers: proves each call happened.
    asked: list[str] = []
    client.meta.events.register(
        "provide-client-params.bedrock-runtime.Converse", lambda params, **_: asked.append(params["modelId"])
    )
    answer = recorded_json("bedrock/converse.nova_micro.response.json")
    for model_id in ("small-model", NOVA):  # BEDROCK_LARGE_MODEL_ID unset: large falls back to the text id
        stubber.add_response(
            "converse",
            answer,
            {
                "modelId": model_id,
                "messages": [{"role": "user", "content": [{"text": "x"}]}],
                "inferenceConfig": {"maxTokens": 10, "temperature": 0.0, "stopSequences": ["END"]},
            },
        )
    runtime = FakeRuntime({**SETTINGS, "BEDROCK_SMALL_MODEL_ID": "small-model"})
    params = {"prompt": "x", "maxTokens": 10, "temperature": 0, "stopSequences": ["END"]}
    small = await handler(ModelType.TEXT_SMALL)(runtime, dict(params))
    large = await handler(ModelType.TEXT_LARGE)(runtime, dict(params))
    assert asked == ["small-model", NOVA]
    stubber.assert_no_pending_responses()
    assert small == large == answer["output"]["message"]["content"][0]["text"]


def serve_event_stream(client, raw: bytes, seen: list) -> None:
    class Raw(io.BytesIO):
        def stream(self, amt=1024, **kwargs):
            while chunk := self.read(amt):
                yield chunk

    def send(request, **kwargs):
        seen.append(json.loads(request.body))
        return AWSResponse(request.url, 200, {"content-type": "application/vnd.amazon.eventstream"}, Raw(raw))

    client.meta.events.register("before-send.bedrock-runtime.ConverseStream", send)


async def test_converse_stream_recorded_event_stream(client, adapter, agent_id, handler):
    seen: list = []
    serve_event_stream(client, recorded("bedrock/converse_stream.nova_micro.response.eventstream"), seen)
    chunks: list[str] = []
    runtime = FakeRuntime(SETTINGS, adapter=adapter, agent_id=agent_id)
    text = await handler(ModelType.TEXT_LARGE)(
        runtime,
        {
            "system": "You are a helpful chatbot.",
            "prompt": "What is the capital of France?",
            "temperature": 0.0,
            "on_stream_chunk": chunks.append,
        },
    )
    decoded = recorded_json("bedrock/converse_stream.nova_micro.response.decoded.json")
    expected = [e["payload"]["delta"]["text"] for e in decoded if e["headers"][":event-type"] == "contentBlockDelta"]
    assert chunks == expected and text == "".join(expected)
    assert text.startswith("The capital of France is Paris.")
    assert seen[0]["system"] == [{"text": "You are a helpful chatbot."}]
    assert seen[0]["inferenceConfig"]["temperature"] == 0.0
    (log,) = await adapter.get_logs(agent_id, type="useModel")
    assert (log.body["promptTokens"], log.body["completionTokens"], log.body["totalTokens"]) == (13, 82, 95)


async def test_structured_output_through_tool_use(stubber, handler):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    # Shape from the Converse API reference: a toolUse content block carrying ``input``.
    answer = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": "answer", "input": {"city": "Paris"}}}],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 300, "outputTokens": 20, "totalTokens": 320},
        "metrics": {"latencyMs": 400},
    }
    stubber.add_response(
        "converse",
        answer,
        {
            "modelId": NOVA,
            "messages": [{"role": "user", "content": [{"text": "capital?"}]}],
            "inferenceConfig": {"maxTokens": 4096},
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "answer",
                            "description": "Give the answer in this structure.",
                            "inputSchema": {"json": schema},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": "answer"}},
            },
        },
    )
    result = await handler(ModelType.OBJECT_LARGE)(
        FakeRuntime(SETTINGS), {"prompt": "capital?", "schema": schema, "schema_name": "answer"}
    )
    assert result == {"city": "Paris"}


async def test_titan_embeddings_one_request_per_text(stubber, handler):
    raw = recorded("bedrock/invoke_model.titan_embed_text_v2.default_1024.response.json")
    for text in ("Hello, world!", "second"):
        stubber.add_response(
            "invoke_model",
            {"body": body(raw), "contentType": "application/json"},
            {
                "modelId": TITAN,
                "body": json.dumps({"inputText": text, "normalize": True, "dimensions": 1024}),
                "contentType": "application/json",
                "accept": "application/json",
            },
        )
    runtime = FakeRuntime({**SETTINGS, "EMBEDDING_DIMENSION": "1024"})
    vectors = await handler(ModelType.TEXT_EMBEDDING)(runtime, {"texts": ["Hello, world!", "second"]})
    expected = json.loads(raw)["embedding"]
    assert vectors == [expected, expected] and len(vectors[0]) == 1024


async def test_titan_single_text_leaves_unsupported_dimensions_out(stubber, handler):
    raw = recorded("bedrock/invoke_model.titan_embed_text_v2.default_1024.response.json")
    stubber.add_response(
        "invoke_model",
        {"body": body(raw), "contentType": "application/json"},
        {
            "modelId": TITAN,
            "body": json.dumps({"inputText": "Hello, world!", "normalize": True}),
            "contentType": "application/json",
            "accept": "application/json",
        },
    )
    runtime = FakeRuntime({**SETTINGS, "EMBEDDING_DIMENSION": "384"})  # Titan has no 384
    vector = await handler(ModelType.TEXT_EMBEDDING)(runtime, {"text": "Hello, world!"})
    assert len(vector) == 1024 and vector[0] == pytest.approx(-0.05289186164736748)


async def test_cohere_embeddings_are_batched(stubber, handler):
    # Shape from the Cohere Embed on Bedrock docs: {"embeddings": [[...], ...], "id", "texts"}.
    answer = json.dumps(
        {"embeddings": [[0.1, 0.2], [0.3, 0.4]], "id": "e1", "response_type": "embeddings_floats", "texts": ["a", "b"]}
    ).encode()
    stubber.add_response(
        "invoke_model",
        {
            "body": body(answer),
            "contentType": "application/json",
            "ResponseMetadata": {"HTTPHeaders": {"x-amzn-bedrock-input-token-count": "4"}},
        },
        {
            "modelId": COHERE,
            "body": json.dumps({"texts": ["a", "b"], "input_type": "search_query", "truncate": "END"}),
            "contentType": "application/json",
            "accept": "application/json",
        },
    )
    runtime = FakeRuntime({**SETTINGS, "BEDROCK_EMBEDDING_MODEL_ID": COHERE})
    assert await handler(ModelType.TEXT_EMBEDDING)(runtime, {"texts": ["a", "b"], "input_type": "search_query"}) == [
        [0.1, 0.2],
        [0.3, 0.4],
    ]


async def test_throttling_then_success(stubber, delays, handler):
    stubber.add_client_error("converse", "ThrottlingException", "Too many requests", 429)
    stubber.add_response("converse", recorded_json("bedrock/converse.nova_micro.response.json"))
    text = await handler(ModelType.TEXT_SMALL)(FakeRuntime(SETTINGS), {"prompt": "Hello!"})
    assert text.startswith("Hello!") and len(delays) == 1


async def test_server_errors_exhausted_fall_back_to_the_next_provider(stubber, delays, resources):
    for _ in range(3):
        stubber.add_client_error("converse", "InternalServerException", "internal", 500)
    backup = ScriptedModels()
    backup.script(ModelType.TEXT_LARGE, "backup")
    registry = ModelRegistry()
    for plugin in (bedrock.build_plugin(SETTINGS, resources), backup.plugin(priority=-5)):
        for registration in plugin.models:
            registry.register(plugin.name, registration)
    assert await registry.use(FakeRuntime(SETTINGS), ModelType.TEXT_LARGE, {"prompt": "x"}) == "backup"
    assert len(delays) == 2


async def test_validation_error_is_not_retried_and_is_scrubbed(stubber, delays, handler):
    prompt = "my very private prompt text that must never appear in any error message at all"
    stubber.add_client_error("converse", "ValidationException", f"Malformed input request: {prompt}", 400)
    with pytest.raises(ProviderError) as caught:
        await handler(ModelType.TEXT_LARGE)(FakeRuntime(SETTINGS), {"prompt": prompt})
    assert not caught.value.retryable and caught.value.code == "ValidationException"
    assert "private prompt text that must never" not in str(caught.value) and delays == []


async def test_malformed_embedding_body_is_retryable(stubber, handler):
    for _ in range(3):
        stubber.add_response("invoke_model", {"body": body(b"{not json"), "contentType": "application/json"})
    with pytest.raises(ProviderError, match="not valid JSON") as caught:
        await handler(ModelType.TEXT_EMBEDDING)(FakeRuntime(SETTINGS), {"text": "x"})
    assert caught.value.retryable


async def test_connection_errors_are_retryable(client, delays, handler):
    from botocore.exceptions import EndpointConnectionError

    def fail(request, **kwargs):
        raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register("before-send.bedrock-runtime.Converse", fail)
    with pytest.raises(ModelError, match="EndpointConnectionError") as caught:
        await handler(ModelType.TEXT_LARGE)(FakeRuntime(SETTINGS), {"prompt": "x"})
    assert caught.value.retryable and len(delays) == 2


async def test_no_credentials_is_not_retryable(delays):
    from botocore.exceptions import NoCredentialsError

    error = bedrock.error_from_exception(NoCredentialsError(), [])
    assert not error.retryable and str(error) == "bedrock: NoCredentialsError"
