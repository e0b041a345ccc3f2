"""API keys from settings, Secrets Manager and SSM (stubbed boto3 clients), cached."""

from __future__ import annotations

import json

import boto3
import httpx
import pytest
from botocore.stub import Stubber

from core.errors import ModelError
from core.model_providers import secrets
from core.model_providers.resources import ProviderResources
from core.model_providers.secrets import SecretStore
from core.settings.providers import ProviderSettings
from tests.core.model_providers.conftest import FakeRuntime, recording_sleep

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/openai-AbCdEf"


@pytest.fixture
def clients():
    return boto3.client("secretsmanager", region_name="us-east-1"), boto3.client("ssm", region_name="us-east-1")


@pytest.fixture
def resources(clients, routes, delays) -> ProviderResources:
    """The test's resources, with stubbed Secrets Manager and SSM clients."""
    sm, ssm = clients
    return ProviderResources(
        transport=httpx.MockTransport(routes), sleep=recording_sleep(delays), secrets_client=sm, ssm_client=ssm
    )


@pytest.fixture
def store(resources) -> SecretStore:
    return resources.secrets


@pytest.fixture
def aws(clients):
    sm, ssm = clients
    with Stubber(sm) as sm_stub, Stubber(ssm) as ssm_stub:
        yield sm_stub, ssm_stub
        sm_stub.assert_no_pending_responses()
        ssm_stub.assert_no_pending_responses()


def secret_value(value: str) -> dict:
    return {"ARN": ARN, "Name": "prod/openai", "VersionId": "v1" * 16, "SecretString": value}


async def test_a_direct_setting_wins_and_needs_no_aws(aws, store):
    runtime = FakeRuntime({"OPENAI_API_KEY": "sk-direct", "OPENAI_API_KEY_SECRET_ID": ARN})
    assert await store.resolve(runtime, "OPENAI_API_KEY", provider="openai") == "sk-direct"


async def test_nothing_set_gives_none(store):
    assert await store.resolve(FakeRuntime({}), "OPENAI_API_KEY", provider="openai") is None


async def test_secrets_manager_value_is_fetched_once_and_cached(aws, store):
    sm_stub, _ = aws
    sm_stub.add_response("get_secret_value", secret_value("sk-from-secret\n"), {"SecretId": ARN})
    runtime = FakeRuntime({"OPENAI_API_KEY_SECRET_ID": ARN})
    assert await store.resolve(runtime, "OPENAI_API_KEY", provider="openai") == "sk-from-secret"
    assert await store.resolve(runtime, "OPENAI_API_KEY", provider="openai") == "sk-from-secret"  # no 2nd call


async def test_a_json_secret_gives_the_member_named_like_the_setting(aws, store):
    sm_stub, _ = aws
    sm_stub.add_response(
        "get_secret_value",
        secret_value(json.dumps({"OPENAI_API_KEY": "sk-openai", "ANTHROPIC_API_KEY": "sk-ant"})),
        {"SecretId": ARN},
    )
    runtime = FakeRuntime({"ANTHROPIC_API_KEY_SECRET_ID": ARN})
    assert await store.resolve(runtime, "ANTHROPIC_API_KEY", provider="anthropic") == "sk-ant"


async def test_the_cache_expires_after_max_age(aws, clients):
    sm_stub, _ = aws
    sm_stub.add_response("get_secret_value", secret_value("old"), {"SecretId": ARN})
    sm_stub.add_response("get_secret_value", secret_value("rotated"), {"SecretId": ARN})
    max_age = ProviderSettings.from_env({"MODEL_SECRETS_MAX_AGE_S": "0"}).secrets_max_age_s
    store = SecretStore(max_age, secrets_client=clients[0], ssm_client=clients[1])
    runtime = FakeRuntime({"OPENAI_API_KEY_SECRET_ID": ARN})
    assert await store.resolve(runtime, "OPENAI_API_KEY", provider="openai") == "old"
    assert await store.resolve(runtime, "OPENAI_API_KEY", provider="openai") == "rotated"


async def test_ssm_parameter_is_decrypted(aws, store):
    _, ssm_stub = aws
    ssm_stub.add_response(
        "get_parameter",
        {"Parameter": {"Name": "/prod/anthropic", "Type": "SecureString", "Value": "sk-ant-ssm", "Version": 1}},
        {"Name": "/prod/anthropic", "WithDecryption": True},
    )
    runtime = FakeRuntime({"ANTHROPIC_API_KEY_PARAMETER": "/prod/anthropic"})
    assert await store.resolve(runtime, "ANTHROPIC_API_KEY", provider="anthropic") == "sk-ant-ssm"


async def test_access_denied_is_a_non_retryable_error_naming_the_setting(aws, store):
    sm_stub, _ = aws
    sm_stub.add_client_error(
        "get_secret_value", "AccessDeniedException", "User arn:aws:iam::1:role/x is not authorized", 400
    )
    with pytest.raises(ModelError) as caught:
        await store.resolve(FakeRuntime({"OPENAI_API_KEY_SECRET_ID": ARN}), "OPENAI_API_KEY", provider="openai")
    assert str(caught.value) == "openai: cannot read OPENAI_API_KEY_SECRET_ID (AccessDeniedException)"
    assert not caught.value.retryable and caught.value.__cause__ is None


async def test_a_provider_uses_the_secret_for_its_calls(aws, mock_http, resources):
    from core.model_providers import openai
    from core.types import ModelType
    from tests.core.model_providers.conftest import json_response

    sm_stub, _ = aws
    sm_stub.add_response("get_secret_value", secret_value("sk-secret-key"), {"SecretId": ARN})
    recorder = mock_http(json_response({"choices": [{"message": {"content": "ok"}}], "model": "m"}))
    plugin = openai.build_plugin({"OPENAI_API_KEY_SECRET_ID": ARN}, resources)
    model = next(m for m in plugin.models if m.model_type is ModelType.TEXT_SMALL)
    assert await model.handler(FakeRuntime({"OPENAI_API_KEY_SECRET_ID": ARN}), {"prompt": "x"}) == "ok"
    assert recorder.requests[0].headers["authorization"] == "Bearer sk-secret-key"


def test_has_source_sees_every_reference():
    assert secrets.has_source("OPENAI_API_KEY", {"OPENAI_API_KEY_PARAMETER": "/p"})
    assert secrets.has_source("OPENAI_API_KEY", {"OPENAI_API_KEY_SECRET_ID": "s"})
    assert not secrets.has_source("OPENAI_API_KEY", {"OPENAI_API_KEY": ""})
