"""Token usage: the useModel log in real Postgres, the EMF metric, the cost estimate."""

from __future__ import annotations

import json
import logging

import pytest

from core.errors import ModelError
from core.model_providers import anthropic, openai
from core.model_providers.usage import Usage, estimate_cost, record_usage
from core.types import ModelType
from core.types.log import ModelUsageBody
from tests.core.model_providers.conftest import FakeRuntime, json_response, recorded

PRICES = {"gpt-4o-mini": {"input": 0.15, "output": 0.6}, "o3-mini": {"input": 1.1, "output": 4.4}}


def test_usage_fills_the_total():
    assert Usage(3, 4).total_tokens == 7
    assert Usage(3, None).total_tokens is None
    assert Usage(3, 4, 9).total_tokens == 9


def test_cost_uses_the_exact_model_then_the_longest_prefix():
    assert estimate_cost(PRICES, "gpt-4o-mini", Usage(1_000_000, 1_000_000)) == pytest.approx(0.75)
    assert estimate_cost(PRICES, "o3-mini-2025-01-31", Usage(11, 809)) == pytest.approx((11 * 1.1 + 809 * 4.4) / 1e6)
    assert estimate_cost(json.dumps(PRICES), "gpt-4o-mini-2024-07-18", Usage(10, 0)) == pytest.approx(1.5e-6)


def test_no_cost_without_a_price():
    assert estimate_cost(None, "gpt-4o", Usage(1, 1)) is None
    assert estimate_cost(PRICES, "claude-sonnet-4-5", Usage(1, 1)) is None
    assert estimate_cost(PRICES, "gpt-4o-mini", Usage()) is None
    assert estimate_cost({"m": {"input": "cheap"}}, "m", Usage(1, 1)) is None


def test_a_malformed_price_table_is_ignored_with_a_warning(caplog):
    caplog.set_level(logging.WARNING)
    assert estimate_cost("{not json", "gpt-4o", Usage(1, 1)) is None
    assert "MODEL_PRICES is not JSON" in caplog.text


async def test_usage_is_written_to_the_log_table(adapter, agent_id):
    runtime = FakeRuntime({"MODEL_PRICES": json.dumps(PRICES)}, adapter=adapter, agent_id=agent_id)
    await record_usage(
        runtime,
        provider="openai",
        model_type=ModelType.TEXT_LARGE,
        model="gpt-4o-mini",
        usage=Usage(100, 20),
        duration_ms=123.4,
    )
    (log,) = await adapter.get_logs(agent_id, type="useModel")
    body = ModelUsageBody.model_validate(log.body)
    assert (body.provider, body.model, body.model_type) == ("openai", "gpt-4o-mini", "TEXT_LARGE")
    assert (body.prompt_tokens, body.completion_tokens, body.total_tokens) == (100, 20, 120)
    assert body.duration_ms == pytest.approx(123.4)
    assert log.body["costUsd"] == pytest.approx((100 * 0.15 + 20 * 0.6) / 1e6)
    assert log.entity_id == agent_id


async def test_a_failing_log_write_never_fails_the_call(caplog):
    class BrokenAdapter:
        async def log(self, entry):
            raise RuntimeError("database down")

    caplog.set_level(logging.WARNING)
    runtime = FakeRuntime({}, adapter=BrokenAdapter(), agent_id=__import__("uuid").uuid4())
    body = await record_usage(
        runtime, provider="p", model_type=ModelType.TEXT_SMALL, model=None, usage=None, duration_ms=1.0
    )
    assert body.provider == "p" and "could not write the model usage log" in caplog.text


async def test_without_a_runtime_only_the_metric_is_emitted(monkeypatch, capsys):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "TestNs")
    await record_usage(
        None,
        provider="anthropic",
        model_type=ModelType.TEXT_SMALL,
        model="claude-haiku-4-5",
        usage=Usage(20, 10),
        duration_ms=50.0,
        error="anthropic: HTTP 529",
    )
    blob = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "TestNs" and ["Provider", "ModelType"] in directive["Dimensions"]
    names = {m["Name"] for m in directive["Metrics"]}
    assert {"PromptTokens", "CompletionTokens", "TotalTokens", "ModelLatency", "ModelErrors"} <= names
    assert (blob["Provider"], blob["PromptTokens"], blob["TotalTokens"]) == ("anthropic", [20.0], [30.0])
    assert blob["model"] == "claude-haiku-4-5"


async def test_a_provider_call_logs_the_tokens_the_provider_reported(mock_http, adapter, agent_id, resources):
    mock_http(json_response(recorded("anthropic/messages.nonstream.text.response.json")))
    runtime = FakeRuntime(
        {
            "ANTHROPIC_API_KEY": "sk-ant-test-123456",
            "MODEL_PRICES": json.dumps({"claude-3-opus": {"input": 15, "output": 75}}),
        },
        adapter=adapter,
        agent_id=agent_id,
    )
    model = next(
        m
        for m in anthropic.build_plugin({"ANTHROPIC_API_KEY": "k"}, resources).models
        if m.model_type is ModelType.TEXT_LARGE
    )
    assert await model.handler(runtime, {"prompt": "capital of France?"}) == "The capital of France is Paris."
    (log,) = await adapter.get_logs(agent_id, type="useModel")
    assert log.body["model"] == "claude-3-opus-20240229"
    assert (log.body["promptTokens"], log.body["completionTokens"], log.body["totalTokens"]) == (20, 10, 30)
    assert log.body["costUsd"] == pytest.approx((20 * 15 + 10 * 75) / 1e6)
    assert log.body["executionTime"] >= 0


async def test_a_failed_call_is_logged_with_its_scrubbed_error(mock_http, adapter, agent_id, resources):
    mock_http(json_response({"error": {"type": "invalid_request_error", "message": "bad"}}, 400))
    runtime = FakeRuntime({"OPENAI_API_KEY": "sk-x"}, adapter=adapter, agent_id=agent_id)
    model = next(
        m
        for m in openai.build_plugin({"OPENAI_API_KEY": "k"}, resources).models
        if m.model_type is ModelType.TEXT_SMALL
    )
    with pytest.raises(ModelError):
        await model.handler(runtime, {"prompt": "x"})
    (log,) = await adapter.get_logs(agent_id, type="useModel")
    assert log.body["error"] == "openai: HTTP 400 invalid_request_error: bad"
    assert log.body["model"] == "gpt-4o-mini" and "promptTokens" not in log.body


class _RunRuntime(FakeRuntime):
    def __init__(self, run_id, **kwargs) -> None:
        super().__init__({}, **kwargs)
        self.run_id = run_id

    def get_current_run_id(self):
        return self.run_id


async def test_the_row_carries_the_current_run_id(adapter, agent_id):
    run_id = __import__("uuid").uuid4()
    await record_usage(
        _RunRuntime(run_id, adapter=adapter, agent_id=agent_id),
        provider="p",
        model_type=ModelType.TEXT_SMALL,
        model="m",
        usage=None,
        duration_ms=1.0,
    )
    await record_usage(
        _RunRuntime(None, adapter=adapter, agent_id=agent_id),
        provider="p",
        model_type=ModelType.TEXT_SMALL,
        model="m",
        usage=None,
        duration_ms=1.0,
    )
    outside, inside = await adapter.get_logs(agent_id, type="useModel")  # newest first
    assert inside.body["runId"] == str(run_id) and ModelUsageBody.model_validate(inside.body).run_id == run_id
    assert "runId" not in outside.body


async def test_a_strange_run_id_is_left_out_rather_than_failing_the_call():
    class Odd(FakeRuntime):
        def get_current_run_id(self):
            return object()

    class Broken(FakeRuntime):
        def get_current_run_id(self):
            raise RuntimeError("no run")

    for runtime in (Odd(), Broken()):
        body = await record_usage(
            runtime, provider="p", model_type=ModelType.TEXT_SMALL, model=None, usage=None, duration_ms=1.0
        )
        assert body.run_id is None


async def test_collect_usage_sees_the_bodies_of_its_block_only():
    from core.model_providers.usage import collect_usage

    async def call(name):
        return await record_usage(
            None, provider=name, model_type=ModelType.TEXT_SMALL, model=None, usage=None, duration_ms=1.0
        )

    await call("before")
    with collect_usage() as outer:
        await call("outer-1")
        with collect_usage() as inner:
            await call("inner")
        await call("outer-2")
    await call("after")
    assert [b.provider for b in outer] == ["outer-1", "outer-2"]
    assert [b.provider for b in inner] == ["inner"]
