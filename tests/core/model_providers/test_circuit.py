"""Circuit breaker per provider: open after N failures, skip for a cool-down, probe, close."""

from __future__ import annotations

import httpx
import pytest

from core.model_providers import openai
from core.model_providers.circuit import CircuitBreaker, CircuitOpenError, CircuitState
from core.model_providers.resources import ProviderResources
from core.model_providers.scripted import ScriptedModels
from core.model_registry import ModelRegistry
from core.settings.providers import ProviderSettings
from core.types import ModelType
from tests.core.model_providers.conftest import FakeRuntime, json_response, recording_sleep


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_rejects_calls():
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=3, cool_down_s=30, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    clock.now += 10
    with pytest.raises(CircuitOpenError) as caught:
        breaker.before_call()
    assert caught.value.retryable and caught.value.provider == "p"
    assert caught.value.retry_in_s == pytest.approx(20.0)


def test_success_resets_the_count():
    breaker = CircuitBreaker("p", failure_threshold=2)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED


def test_non_retryable_failures_do_not_count():
    breaker = CircuitBreaker("p", failure_threshold=1)
    breaker.before_call()
    breaker.record_neutral()
    breaker.before_call()
    assert breaker.state is CircuitState.CLOSED


def test_after_the_cool_down_one_probe_goes_through():
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=1, cool_down_s=5, clock=clock)
    breaker.record_failure()
    clock.now += 5
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # a second caller while the probe runs
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    breaker.before_call()


def test_a_failed_probe_opens_the_circuit_again():
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=3, cool_down_s=5, clock=clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 6
    breaker.before_call()
    breaker.record_failure()  # one failure is enough in half-open
    assert breaker.state is CircuitState.OPEN
    assert breaker.snapshot() == {"state": "open", "consecutive_failures": 4, "retry_in_s": 5.0, "times_opened": 2}


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        CircuitBreaker("p", failure_threshold=0)


def test_provider_health_lists_breakers_from_the_settings():
    breakers = ProviderResources(ProviderSettings.from_env({"MODEL_CIRCUIT_FAILURES": "1"})).breakers
    breakers.get("zeta").record_failure()
    breakers.get("alpha")
    assert breakers.get("alpha") is breakers.get("alpha")  # one breaker per provider
    health = breakers.health()
    assert list(health) == ["alpha", "zeta"]
    assert health["alpha"]["state"] == "closed"
    assert health["zeta"]["state"] == "open" and health["zeta"]["retry_in_s"] > 0


async def test_open_circuit_makes_the_registry_fall_back_without_calling_the_provider(mock_http, routes, delays):
    resources = ProviderResources(
        ProviderSettings(circuit_failures=2), transport=httpx.MockTransport(routes), sleep=recording_sleep(delays)
    )
    recorder = mock_http(lambda r: json_response({"error": {"type": "server_error"}}, 500), repeat=True)
    backup = ScriptedModels()
    backup.script(ModelType.TEXT_LARGE, "b1", "b2", "b3")
    registry = ModelRegistry()
    for plugin in (openai.build_plugin({"OPENAI_API_KEY": "sk-x"}, resources), backup.plugin()):
        for registration in plugin.models:
            registry.register(plugin.name, registration)
    runtime = FakeRuntime({"OPENAI_API_KEY": "sk-x"})
    assert await registry.use(runtime, ModelType.TEXT_LARGE, {"prompt": "1"}) == "b1"
    assert await registry.use(runtime, ModelType.TEXT_LARGE, {"prompt": "2"}) == "b2"
    calls_so_far = len(recorder.requests)
    assert calls_so_far == 6  # two calls of three attempts each
    assert resources.breakers.health()["openai"]["state"] == "open"
    assert await registry.use(runtime, ModelType.TEXT_LARGE, {"prompt": "3"}) == "b3"
    assert len(recorder.requests) == calls_so_far  # skipped at once: no attempt, no backoff


def test_the_process_health_report_reads_the_process_resources():
    """``GET /health`` calls ``resources.provider_health()``: the breakers of the process's own resources."""
    from core.model_providers import resources

    assert resources.provider_health() == resources.process_resources().breakers.health()
    assert resources.process_resources() is resources.process_resources()
