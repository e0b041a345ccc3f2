"""Bedrock IMAGE_DESCRIPTION: Converse with an image block, checked by botocore's Stubber, recorded answer."""

from __future__ import annotations

import base64

import boto3
import httpx
import pytest
from botocore.stub import Stubber

from core.errors import ModelError
from core.model_providers import bedrock
from core.model_providers.resources import ProviderResources
from core.types import ModelType
from tests.core.model_providers.conftest import FakeRuntime, recorded_json, recording_sleep

LITE = "us.amazon.nova-lite-v1:0"
SETTINGS = {"BEDROCK_IMAGE_DESCRIPTION_MODEL_ID": LITE}
#: A real 1x1 PNG (the smallest valid one: signature, IHDR, IDAT, IEND).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def client():
    return boto3.client("bedrock-runtime", region_name="us-east-1")


@pytest.fixture
def stubber(client):
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def describe(client, delays):
    """The IMAGE_DESCRIPTION handler; an https image is served by ``pages`` (url -> bytes)."""
    pages: dict[str, bytes] = {}
    web = httpx.MockTransport(lambda request: httpx.Response(200, content=pages[str(request.url)]))
    resources = ProviderResources(bedrock_client=client, sleep=recording_sleep(delays), transport=web)
    plugin = bedrock.build_plugin(SETTINGS, resources)
    handler = next(m.handler for m in plugin.models if m.model_type is ModelType.IMAGE_DESCRIPTION)
    handler.pages = pages  # type: ignore[attr-defined]
    return handler


def _expect(stubber, image: dict, prompt: str = bedrock.media.DESCRIBE_PROMPT) -> None:
    stubber.add_response(
        "converse",
        recorded_json("bedrock/converse.nova_micro.response.json"),
        {
            "modelId": LITE,
            "messages": [{"role": "user", "content": [{"image": image}, {"text": prompt}]}],
            "inferenceConfig": {"maxTokens": 1024},
        },
    )


def test_image_description_is_served_only_with_its_own_model_id(client):
    resources = ProviderResources(bedrock_client=client)
    text_only = bedrock.build_plugin({"BEDROCK_TEXT_MODEL_ID": "us.amazon.nova-micro-v1:0"}, resources)
    assert ModelType.IMAGE_DESCRIPTION not in {m.model_type for m in text_only.models}
    assert {m.model_type for m in bedrock.build_plugin(SETTINGS, resources).models} == {ModelType.IMAGE_DESCRIPTION}


async def test_image_bytes_go_in_an_image_block_and_the_answer_becomes_title_and_description(stubber, describe):
    _expect(stubber, {"format": "png", "source": {"bytes": PNG}}, "What is in it?")
    result = await describe(FakeRuntime(SETTINGS), {"image": PNG, "prompt": "What is in it?"})
    answer = recorded_json("bedrock/converse.nova_micro.response.json")["output"]["message"]["content"][0]["text"]
    assert result == {"title": "Image Analysis", "description": answer}


async def test_a_data_url_and_an_https_url_are_read_into_bytes(stubber, describe):
    _expect(stubber, {"format": "png", "source": {"bytes": PNG}})
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert (await describe(FakeRuntime(SETTINGS), {"image_url": data_url}))["title"] == "Image Analysis"
    # A public address written as such: no DNS needed here (the host check resolves every name).
    describe.pages["https://93.184.215.14/pixel.png"] = PNG
    _expect(stubber, {"format": "png", "source": {"bytes": PNG}})
    assert (await describe(FakeRuntime(SETTINGS), {"imageUrl": "https://93.184.215.14/pixel.png"}))["description"]


async def test_an_s3_uri_is_passed_for_the_model_to_read(stubber, describe):
    _expect(stubber, {"format": "jpeg", "source": {"s3Location": {"uri": "s3://photos/cat.jpg"}}})
    assert await describe(FakeRuntime(SETTINGS), {"image_url": "s3://photos/cat.jpg"})


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"prompt": "no image"}, "needs image_url or image bytes"),
        ({"image": b"%PDF-1.7 not an image"}, "not PNG, JPEG, GIF or WebP"),
        ({"image_url": "http://example.com/a.png"}, "must be data:, s3:// or https://"),
        ({"image_url": "data:image/png,raw"}, "must be base64"),
        # A user's attachment URL must not make the function read its own network (SSRF).
        ({"image_url": "https://169.254.169.254/latest/meta-data/"}, "not a public address"),
        ({"image_url": "https://127.0.0.1/x.png"}, "not a public address"),
        ({"image_url": "https://10.0.0.5/x.png"}, "not a public address"),
        ({"image_url": "https://[::1]/x.png"}, "not a public address"),
        ({"image_url": "https://localhost/x.png"}, "not a public address"),
    ],
)
async def test_unusable_images_fail_at_once_without_a_call(stubber, describe, params, match):
    with pytest.raises(ModelError, match=match) as caught:
        await describe(FakeRuntime(SETTINGS), params)
    assert caught.value.retryable is False
