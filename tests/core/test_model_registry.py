"""The model layer through the runtime: order, fallback, defaults, streaming, usage rows, MODEL_USED."""

from __future__ import annotations

import logging
import uuid

import pytest

from core.blueprint import AgentBlueprint
from core.character import load_character_dict
from core.errors import ModelError, ModelNotFoundError
from core.events import EventType
from core.model_providers.base import ModelResult, instrument
from core.model_providers.scripted import ScriptedModels
from core.model_providers.usage import Usage
from core.model_registry import DEFAULT_PARAMS, GENERATION_TYPES, ModelRegistry, model_settings
from core.plugin import ModelRegistration, Plugin
from core.runtime import AgentRuntime
from core.types import ModelType
from core.types.log import ModelUsageBody


@pytest.fixture(autouse=True)
def clean_model_settings(monkeypatch):
    """No DEFAULT_* / <TYPE>_* sampling setting leaks in from the developer's environment."""
    for suffix, _ in DEFAULT_PARAMS.values():
        monkeypatch.delenv(f"DEFAULT_{suffix}", raising=False)
        for model_type in GENERATION_TYPES:
            monkeypatch.delenv(f"{model_type.value}_{suffix}", raising=False)


@pytest.fixture
def build(adapter, agent_id):
    """``build(*plugins, settings={...})``: a runtime of a fresh agent, on real Postgres."""

    def _build(*plugins, settings=None):
        character = load_character_dict({"id": str(agent_id), "name": f"agent-{agent_id}", "settings": settings or {}})
        return AgentRuntime(AgentBlueprint.build(character, plugins), adapter)

    return _build


def _answer(answer, calls: list, name: str):
    """A model handler that records ``(name, params)`` and answers (or raises ``answer``)."""

    async def handler(runtime, params):
        calls.append((name, dict(params)))
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return handler


def _models(*entries, model_type=ModelType.TEXT_LARGE) -> tuple[list, list[Plugin]]:
    """One plugin per ``(provider, answer, priority)``, in that order; returns (calls, plugins)."""
    calls: list = []
    plugins = [
        Plugin(name=name, models=(ModelRegistration(model_type, _answer(answer, calls, name), priority),))
        for name, answer, priority in entries
    ]
    return calls, plugins


def _listen(runtime) -> list[dict]:
    seen: list[dict] = []

    async def on_model_used(payload):
        seen.append(dict(payload))

    runtime.register_event(EventType.MODEL_USED, on_model_used)
    return seen


async def _usage_rows(adapter, agent_id) -> list[ModelUsageBody]:
    """The agent's useModel rows, oldest first."""
    logs = await adapter.get_logs(agent_id, type="useModel")
    return [ModelUsageBody.model_validate(log.body) for log in reversed(logs)]


# -- order, providers, fallback ---------------------------------------------------------------


async def test_highest_priority_wins_then_registration_order(build):
    calls, plugins = _models(("low", "low", 0), ("first", "first", 5), ("second", "second", 5))
    runtime = build(*plugins)
    assert await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"}) == "first"
    assert [e.provider for e in runtime.blueprint.models.candidates(ModelType.TEXT_LARGE)] == ["first", "second", "low"]


async def test_a_named_provider_is_used_even_when_it_is_not_the_best(build):
    calls, plugins = _models(("best", "best", 9), ("other", "other", 0))
    runtime = build(*plugins)
    assert await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"}, provider="other") == "other"
    assert [name for name, _ in calls] == ["other"]


async def test_register_model_lasts_for_the_blueprint_and_respects_priority(build, adapter):
    calls, plugins = _models(("plugin", "from plugin", 1))
    runtime = build(*plugins)
    runtime.register_model(
        ModelType.TEXT_LARGE,
        _answer("registered", calls, "mine"),
        "mine",
        priority=2,
        capabilities=["structured_output"],
    )
    later = AgentRuntime(runtime.blueprint, adapter)  # the next invocation's runtime
    assert await later.use_model(ModelType.TEXT_LARGE, {"prompt": "x"}) == "registered"
    assert later.model_capabilities(ModelType.TEXT_LARGE) == frozenset({"structured_output"})
    assert later.model_capabilities(ModelType.TEXT_LARGE, provider="plugin") == frozenset()


async def test_falls_back_on_retryable_errors(build):
    calls, plugins = _models(
        ("flaky", ModelError("HTTP 429", provider="flaky", retryable=True), 2), ("backup", "ok", 1)
    )
    runtime = build(*plugins)
    assert await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"}) == "ok"
    assert [name for name, _ in calls] == ["flaky", "backup"]


async def test_a_bad_request_is_raised_without_trying_the_next_provider(build):
    calls, plugins = _models(("strict", ModelError("HTTP 400 bad request", provider="strict"), 2), ("backup", "ok", 1))
    runtime = build(*plugins)
    with pytest.raises(ModelError, match="400") as caught:
        await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"})
    assert caught.value.retryable is False
    assert [name for name, _ in calls] == ["strict"]


async def test_an_unexpected_exception_is_not_a_reason_to_fall_back(build):
    calls, plugins = _models(("buggy", KeyError("choices"), 2), ("backup", "ok", 1))
    runtime = build(*plugins)
    with pytest.raises(KeyError):
        await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"})
    assert [name for name, _ in calls] == ["buggy"]


async def test_every_provider_failing_raises_the_last_error(build):
    calls, plugins = _models(
        ("a", ModelError("a timed out", retryable=True), 1), ("b", ModelError("b HTTP 503", retryable=True), 0)
    )
    runtime = build(*plugins)
    with pytest.raises(ModelError, match="b HTTP 503"):
        await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"})
    assert len(calls) == 2


async def test_a_named_provider_does_not_fall_back_to_others(build):
    calls, plugins = _models(("named", ModelError("HTTP 500", retryable=True), 0), ("other", "ok", 9))
    runtime = build(*plugins)
    with pytest.raises(ModelError, match="500"):
        await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"}, provider="named")
    assert [name for name, _ in calls] == ["named"]


async def test_no_handler_names_the_type_and_the_provider(build):
    calls, plugins = _models(("p", "x", 0))
    runtime = build(*plugins)
    with pytest.raises(ModelNotFoundError, match="no model handler registered for TEXT_EMBEDDING$"):
        await runtime.use_model(ModelType.TEXT_EMBEDDING, {"text": "x"})
    with pytest.raises(ModelNotFoundError, match="TEXT_LARGE from provider 'nobody'"):
        await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"}, provider="nobody")
    assert runtime.model_capabilities(ModelType.IMAGE) == frozenset()
    assert calls == []


def test_capabilities_given_as_any_iterable_are_a_frozenset():
    async def handler(runtime, params):
        return ""

    assert ModelRegistration(
        ModelType.TEXT_SMALL, handler, capabilities=["structured_output"]
    ).capabilities == frozenset({"structured_output"})
    assert ModelRegistration(ModelType.TEXT_SMALL, handler, capabilities="structured_output").capabilities == frozenset(
        {"structured_output"}
    )


async def test_the_registry_works_without_a_runtime():
    """The embeddings worker calls the registry with no agent: no defaults, no events, no row."""
    calls: list = []
    registry = ModelRegistry()
    registry.register("emb", ModelRegistration(ModelType.TEXT_EMBEDDING, _answer([[0.1]], calls, "emb")))
    assert await registry.use(None, ModelType.TEXT_EMBEDDING, {"texts": ["a"]}) == [[0.1]]
    assert calls == [("emb", {"texts": ["a"]})]


# -- defaults from settings ---------------------------------------------------------------------


async def test_explicit_params_win_over_type_settings_which_win_over_defaults(build):
    calls, plugins = _models(("p", "ok", 0))
    runtime = build(
        *plugins,
        settings={
            "TEXT_LARGE_TEMPERATURE": "0.2",
            "DEFAULT_TEMPERATURE": 0.9,
            "DEFAULT_MAX_TOKENS": "300",
            "TEXT_SMALL_MAX_TOKENS": 10,
            "DEFAULT_TOP_P": 0.5,
            "DEFAULT_FREQUENCY_PENALTY": 0.1,
            "TEXT_LARGE_PRESENCE_PENALTY": "-0.5",
        },
    )
    params = {"prompt": "x", "top_p": 0.99}
    await runtime.use_model(ModelType.TEXT_LARGE, params)
    ((_, sent),) = calls
    assert sent == {
        "prompt": "x",
        "temperature": 0.2,
        "max_tokens": 300,
        "top_p": 0.99,
        "frequency_penalty": 0.1,
        "presence_penalty": -0.5,
    }
    assert isinstance(sent["max_tokens"], int)
    assert params == {"prompt": "x", "top_p": 0.99}  # the caller's dict is not modified


async def test_camel_case_params_count_as_given_and_none_takes_the_default(build):
    calls, plugins = _models(("p", "ok", 0))
    runtime = build(*plugins, settings={"DEFAULT_MAX_TOKENS": 300, "DEFAULT_TEMPERATURE": 0.4})
    await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x", "maxTokens": 50, "temperature": None})
    ((_, sent),) = calls
    assert "max_tokens" not in sent and sent["maxTokens"] == 50
    assert sent["temperature"] == 0.4


async def test_an_invalid_setting_falls_through_to_the_default(build, caplog):
    caplog.set_level(logging.WARNING)
    calls, plugins = _models(("p", "ok", 0))
    runtime = build(
        *plugins,
        settings={
            "TEXT_LARGE_TEMPERATURE": "warm",
            "DEFAULT_TEMPERATURE": "0.3",
            "DEFAULT_MAX_TOKENS": "12.5",
            "DEFAULT_TOP_P": "true",
        },
    )
    await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"})
    ((_, sent),) = calls
    assert sent == {"prompt": "x", "temperature": 0.3}
    assert "TEXT_LARGE_TEMPERATURE='warm' is not a number" in caplog.text


async def test_defaults_come_from_the_environment_too_and_only_for_text_and_object_types(build, monkeypatch):
    monkeypatch.setenv("DEFAULT_TEMPERATURE", "0.7")
    monkeypatch.setenv("OBJECT_SMALL_TEMPERATURE", "0")
    calls, plugins = _models(("p", "ok", 0), model_type=ModelType.OBJECT_SMALL)
    runtime = build(*plugins)
    runtime.register_model(ModelType.TEXT_EMBEDDING, _answer([0.0], calls, "emb"), "emb")
    await runtime.use_model(ModelType.OBJECT_SMALL, {"prompt": "x"})
    await runtime.use_model(ModelType.TEXT_EMBEDDING, {"text": "x"})
    assert calls == [("p", {"prompt": "x", "temperature": 0.0}), ("emb", {"text": "x"})]
    assert model_settings(runtime, ModelType.TEXT_SMALL) == {"temperature": 0.7}
    assert model_settings(None, ModelType.TEXT_SMALL) == {}


# -- streaming ----------------------------------------------------------------------------------


async def test_a_streaming_handler_delivers_its_chunks_once(build):
    async def streaming(runtime, params):  # a plugin's own handler with a sync-only view of the callback
        for piece in ("Hel", "lo"):
            params["on_stream_chunk"](piece)
        return "Hello"

    runtime = build()
    runtime.register_model(ModelType.TEXT_LARGE, streaming, "s")
    chunks: list[str] = []
    assert await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"}, on_stream_chunk=chunks.append) == "Hello"
    assert chunks == ["Hel", "lo"]


async def test_a_handler_that_does_not_stream_gives_the_whole_text_once(build):
    scripted = ScriptedModels()
    scripted.script(ModelType.TEXT_LARGE, "All at once.", "Again.")
    runtime = build(scripted.plugin())
    chunks: list[str] = []

    async def collect(chunk):  # an async callback, as the message service gives
        chunks.append(chunk)

    assert await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"}, on_stream_chunk=collect) == "All at once."
    assert chunks == ["All at once."]
    # Callers that put the callback in params (elizaOS spelling too) get the same.
    assert await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "y", "onStreamChunk": chunks.append}) == "Again."
    assert chunks == ["All at once.", "Again."]
    assert "onStreamChunk" not in scripted.calls[-1][1] and callable(scripted.calls[-1][1]["on_stream_chunk"])


async def test_a_sync_callback_reaches_a_provider_handler_that_streams(build):
    """``base.instrument``'s providers call the callback and await what it returns, if anything."""
    from core.model_providers.base import emit, stream_callback

    async def call(runtime, params, model):
        for piece in ("a", "b"):
            await emit(stream_callback(params), piece)
        return ModelResult("ab", model)

    runtime = build()
    runtime.register_model(
        ModelType.TEXT_SMALL, instrument(f"p{uuid.uuid4().hex[:6]}", ModelType.TEXT_SMALL, call, lambda r, p: "m"), "p"
    )
    chunks: list[str] = []
    assert await runtime.use_model(ModelType.TEXT_SMALL, {"prompt": "x"}, on_stream_chunk=chunks.append) == "ab"
    assert chunks == ["a", "b"]


async def test_no_fallback_once_text_has_reached_the_caller(build):
    calls: list = []

    async def breaks_mid_stream(runtime, params):
        calls.append("first")
        params["on_stream_chunk"]("The answer is")
        raise ModelError("connection reset mid-stream", retryable=True)

    runtime = build()
    runtime.register_model(ModelType.TEXT_LARGE, breaks_mid_stream, "first", priority=1)
    runtime.register_model(ModelType.TEXT_LARGE, _answer("other answer", calls, "backup"), "backup")
    chunks: list[str] = []
    with pytest.raises(ModelError, match="mid-stream"):
        await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"}, on_stream_chunk=chunks.append)
    assert chunks == ["The answer is"] and calls == ["first"]
    # Without a callback (nothing shown yet) the same failure falls back.
    calls.clear()

    async def fails(runtime, params):
        calls.append("first")
        raise ModelError("HTTP 503", retryable=True)

    runtime.register_model(ModelType.TEXT_SMALL, fails, "first", priority=1)
    runtime.register_model(ModelType.TEXT_SMALL, _answer("backup text", calls, "backup"), "backup")
    assert (
        await runtime.use_model(ModelType.TEXT_SMALL, {"prompt": "x"}, on_stream_chunk=chunks.append) == "backup text"
    )
    assert chunks == ["The answer is", "backup text"]


async def test_a_non_text_result_is_not_streamed(build):
    runtime = build()
    runtime.register_model(ModelType.OBJECT_SMALL, _answer({"a": 1}, [], "o"), "o")
    chunks: list[str] = []
    assert await runtime.use_model(ModelType.OBJECT_SMALL, {"prompt": "x"}, on_stream_chunk=chunks.append) == {"a": 1}
    assert chunks == []


# -- usage rows and MODEL_USED ------------------------------------------------------------------


async def test_model_used_and_the_usage_row_carry_the_run_id(build, adapter, agent_id):
    calls, plugins = _models(("p", "hello", 0))
    runtime = build(*plugins)
    seen = _listen(runtime)
    run_id = runtime.start_run()
    try:
        await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "secret prompt text"})
    finally:
        runtime.end_run()
    (event,) = seen
    assert event["runtime"] is runtime
    assert {k: event[k] for k in ("type", "provider", "source", "model", "runId", "tokens", "success", "error")} == {
        "type": "TEXT_LARGE",
        "provider": "p",
        "source": "p",
        "model": None,
        "runId": run_id,
        "tokens": None,
        "success": True,
        "error": None,
    }
    assert event["durationMs"] >= 0 and "secret prompt text" not in repr(event)
    (row,) = await _usage_rows(adapter, agent_id)
    assert (row.model_type, row.provider, row.run_id, row.error) == ("TEXT_LARGE", "p", run_id, None)
    assert row.duration_ms >= 0 and row.total_tokens is None


async def test_every_attempt_of_a_fallback_is_logged_and_emitted(build, adapter, agent_id):
    calls, plugins = _models(("flaky", ModelError("flaky: HTTP 429", retryable=True), 1), ("backup", "ok", 0))
    runtime = build(*plugins)
    seen = _listen(runtime)
    await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"})
    assert [(e["provider"], e["success"], e["error"]) for e in seen] == [
        ("flaky", False, "flaky: HTTP 429"),
        ("backup", True, None),
    ]
    assert all(e["runId"] is None for e in seen)  # outside a run
    rows = await _usage_rows(adapter, agent_id)
    assert [(r.provider, r.error) for r in rows] == [("flaky", "flaky: HTTP 429"), ("backup", None)]


async def test_a_failing_non_model_error_is_logged_with_its_type(build, adapter, agent_id):
    calls, plugins = _models(("buggy", ValueError("x" * 1000), 0))
    runtime = build(*plugins)
    seen = _listen(runtime)
    with pytest.raises(ValueError):
        await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"})
    (row,) = await _usage_rows(adapter, agent_id)
    assert row.error.startswith("ValueError: xxx") and len(row.error) == 300
    assert seen[0]["success"] is False and seen[0]["error"] == row.error


async def test_an_instrumented_handler_writes_the_only_row_and_its_tokens_reach_the_event(build, adapter, agent_id):
    provider = f"hosted{uuid.uuid4().hex[:6]}"  # circuit breakers are per provider name, process-wide

    async def call(runtime, params, model):
        return ModelResult("Paris.", "model-7", Usage(12, 3))

    runtime = build()
    runtime.register_model(
        ModelType.TEXT_LARGE, instrument(provider, ModelType.TEXT_LARGE, call, lambda r, p: "model-7"), provider
    )
    seen = _listen(runtime)
    run_id = runtime.start_run()
    try:
        assert await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "capital?"}) == "Paris."
    finally:
        runtime.end_run()
    (row,) = await _usage_rows(adapter, agent_id)  # one row: the registry did not add its own
    assert (row.provider, row.model, row.run_id) == (provider, "model-7", run_id)
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (12, 3, 15)
    (event,) = seen
    assert event["tokens"] == {"prompt": 12, "completion": 3, "total": 15}
    assert (event["model"], event["runId"], event["success"]) == ("model-7", run_id, True)


async def test_nested_model_calls_are_each_accounted_once(build, adapter, agent_id):
    """A handler that itself calls use_model (a router, a judge): one row per handler call."""
    runtime = build()
    runtime.register_model(ModelType.TEXT_SMALL, _answer("inner", [], "inner"), "inner")

    async def outer(rt, params):
        return "outer+" + await rt.use_model(ModelType.TEXT_SMALL, {"prompt": "sub"})

    runtime.register_model(ModelType.TEXT_LARGE, outer, "outer")
    assert await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"}) == "outer+inner"
    rows = await _usage_rows(adapter, agent_id)
    assert sorted(r.provider for r in rows) == ["inner", "outer"]


async def test_a_failing_event_handler_or_log_write_never_fails_the_call(build, caplog):
    calls, plugins = _models(("p", "fine", 0))
    runtime = build(*plugins)

    async def broken(payload):
        raise RuntimeError("listener bug")

    runtime.register_event(EventType.MODEL_USED, broken)

    class BrokenLogs:
        def __getattr__(self, name):
            return getattr(runtime_adapter, name)

        async def log(self, entry):
            raise RuntimeError("database down")

    runtime_adapter = runtime.adapter
    runtime.adapter = BrokenLogs()
    caplog.set_level(logging.WARNING)
    assert await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"}) == "fine"
    assert "could not write the model usage log" in caplog.text and "listener bug" in caplog.text


async def test_no_event_and_no_row_when_nothing_serves_the_type(build, adapter, agent_id):
    runtime = build()
    seen = _listen(runtime)
    with pytest.raises(ModelNotFoundError):
        await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": "x"})
    assert seen == [] and await _usage_rows(adapter, agent_id) == []
