"""The shared HTTP client: retries, Retry-After, typed errors, scrubbing, SSE parsing."""

from __future__ import annotations

import asyncio
import email.utils
import time

import httpx
import pytest

from core.errors import ConfigurationError
from core.model_providers import http
from core.model_providers.http import HttpClient, ProviderError, RetryPolicy
from core.settings.providers import ProviderSettings
from tests.core.model_providers.conftest import Recorder, json_response, sse_response

URL = "https://models.example/v1/thing"


async def post(client: HttpClient, **kwargs):
    return await client.post_json("acme", URL, {"q": 1}, headers={"authorization": "Bearer k"}, **kwargs)


def test_retry_after_reads_seconds_milliseconds_and_dates():
    assert http.retry_after({"retry-after": "3"}) == 3.0
    assert http.retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= http.retry_after({"retry-after": future}) <= 31
    assert http.retry_after({"retry-after": "soon"}) is None
    assert http.retry_after({}) is None


def test_backoff_is_jittered_capped_and_honours_retry_after():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=4.0, max_retry_after_s=10.0)
    samples = [policy.delay(attempt, None) for attempt in range(6) for _ in range(50)]
    assert all(0.0 <= d <= 4.0 for d in samples)
    assert len({round(d, 6) for d in samples}) > 100  # jitter: not all in step
    assert policy.delay(0, 7.0) >= 7.0
    assert policy.delay(0, 11.0) is None  # too long for a Lambda: fall back now


async def test_shared_client_is_reused_within_a_loop_with_explicit_timeouts():
    http_client = HttpClient.from_settings(ProviderSettings.from_env({"MODEL_HTTP_CONNECT_TIMEOUT_S": "2.5"}))
    client = http_client.client()
    assert http_client.client() is client
    assert client.timeout.connect == 2.5 and client.timeout.read == 60.0
    assert client.timeout.write == 10.0 and client.timeout.pool == 5.0


def test_a_new_event_loop_gets_its_own_client():
    http_client = HttpClient()
    first = asyncio.run(_client(http_client))
    second = asyncio.run(_client(http_client))
    assert first is not second


async def _client(http_client: HttpClient) -> httpx.AsyncClient:
    return http_client.client()


def test_malformed_settings_name_the_variable():
    with pytest.raises(ConfigurationError, match="^MODEL_HTTP_MAX_ATTEMPTS: must be at least 1"):
        ProviderSettings.from_env({"MODEL_HTTP_MAX_ATTEMPTS": "0"})
    with pytest.raises(ConfigurationError, match="^MODEL_HTTP_READ_TIMEOUT_S: must be a number"):
        ProviderSettings.from_env({"MODEL_HTTP_READ_TIMEOUT_S": "soon"})
    settings = ProviderSettings.from_env({"MODEL_HTTP_MAX_ATTEMPTS": " ", "AWS_REGION": "eu-west-1"})
    assert settings.max_attempts == 3 and settings.bedrock_region == "eu-west-1"


async def test_429_then_success(mock_http, delays, resources):
    recorder = mock_http(
        json_response({"error": {"type": "rate_limit_error"}}, 429, {"retry-after": "1.5"}), json_response({"ok": True})
    )
    assert await post(resources.http) == {"ok": True}
    assert len(recorder.requests) == 2 and delays[0] >= 1.5


async def test_5xx_exhausted_raises_a_retryable_error(mock_http, delays, resources):
    recorder = mock_http(
        lambda r: json_response({"error": {"message": "oops", "type": "server_error"}}, 503), repeat=True
    )
    with pytest.raises(ProviderError) as caught:
        await post(resources.http)
    assert caught.value.retryable and caught.value.status == 503 and caught.value.provider == "acme"
    assert "HTTP 503 server_error: oops" in str(caught.value)
    assert len(recorder.requests) == 3 and len(delays) == 2


async def test_long_retry_after_is_not_waited_for(mock_http, delays, resources):
    recorder = mock_http(json_response({}, 429, {"retry-after": "120"}), json_response({"ok": True}))
    with pytest.raises(ProviderError) as caught:
        await post(resources.http)
    assert caught.value.retryable and caught.value.retry_after_s == 120.0
    assert len(recorder.requests) == 1 and delays == []


async def test_4xx_is_not_retried(mock_http, delays, resources):
    recorder = mock_http(json_response({"error": {"type": "permission_error", "message": "no"}}, 403))
    with pytest.raises(ProviderError) as caught:
        await post(resources.http)
    assert not caught.value.retryable and caught.value.code == "permission_error"
    assert len(recorder.requests) == 1 and delays == []


async def test_connection_errors_are_retried_then_retryable(mock_http, delays, resources):
    recorder = mock_http(
        httpx.ConnectError("boom at https://models.example"), httpx.ReadTimeout("slow"), json_response({"ok": 1})
    )
    assert await post(resources.http) == {"ok": 1}
    assert len(recorder.requests) == 3 and len(delays) == 2
    mock_http(lambda r: (_ for _ in ()).throw(httpx.ConnectTimeout("t")), repeat=True)
    with pytest.raises(ProviderError, match="ConnectTimeout") as caught:
        await post(resources.http)
    assert caught.value.retryable and caught.value.status is None
    assert "models.example" not in str(caught.value)


async def test_html_error_page_gives_no_excerpt(mock_http, resources):
    mock_http(httpx.Response(502, content=b"<html>" + b"x" * 5000 + b"</html>"), repeat=True)
    with pytest.raises(ProviderError) as caught:
        await post(resources.http)
    assert str(caught.value) == "acme: HTTP 502" and caught.value.retryable


async def test_malformed_and_non_object_json_are_retryable(mock_http, resources):
    mock_http(lambda r: httpx.Response(200, content=b"{nope"), repeat=True)
    with pytest.raises(ProviderError, match="not valid JSON") as caught:
        await post(resources.http)
    assert caught.value.retryable
    mock_http(lambda r: json_response([1, 2]), repeat=True)
    with pytest.raises(ProviderError, match="not an object"):
        await post(resources.http)


async def test_stream_retries_before_the_body_and_closes_after(mock_http, delays, resources):
    recorder = mock_http(json_response({}, 500), sse_response(b"data: a\n\ndata: b\n\n"))
    async with resources.http.stream_post("acme", URL, {}, headers={}) as response:
        events = [e.data async for e in http.iter_sse(response)]
    assert events == ["a", "b"] and len(recorder.requests) == 2 and len(delays) == 1
    assert response.is_closed


async def test_stream_error_status_is_typed(mock_http, resources):
    mock_http(json_response({"error": {"type": "invalid_request_error", "message": "bad"}}, 400))
    with pytest.raises(ProviderError, match="HTTP 400 invalid_request_error: bad") as caught:
        async with resources.http.stream_post("acme", URL, {}, headers={}):
            pass
    assert not caught.value.retryable


async def test_sse_parser_follows_the_spec():
    body = (
        b': comment\nevent: one\ndata: first\ndata:  second\nid: 7\n\ndata:no-space\n\n\n\nevent: last\ndata: {"x": 1}'
    )
    response = httpx.Response(200, content=body)
    events = [(e.event, e.data) async for e in http.iter_sse(response)]
    assert events == [("one", "first\n second"), ("message", "no-space"), ("last", '{"x": 1}')]


def test_scrub_removes_keys_prompts_and_cuts_long_text():
    prompt = "Please summarise my medical record: patient has condition X and takes medicine Y daily."
    text = f"Bad key sk-proj-AbCdEf123456 and Bearer abc.def; you said: {prompt[10:80]}"
    scrubbed = http.scrub(text, [prompt, "sk-proj-AbCdEf123456"])
    assert "sk-proj" not in scrubbed and "abc.def" not in scrubbed
    assert "medical record: patient has" not in scrubbed
    assert len(http.scrub("y" * 1000)) == http.MAX_ERROR_EXCERPT


def test_retryable_statuses_cover_rate_limits_and_overload():
    for status in (408, 429, 500, 502, 503, 504, 529):
        assert http.error_from_response("p", status, {}, b"").retryable
    for status in (400, 401, 403, 404, 413, 422):
        assert not http.error_from_response("p", status, {}, b"").retryable


def test_ollama_style_string_errors_are_kept():
    error = http.error_from_response("ollama", 404, {}, b'{"error": "model \'x\' not found"}')
    assert str(error) == "ollama: HTTP 404: model 'x' not found"


async def test_no_retry_once_the_budget_is_spent(delays):
    recorder = Recorder(
        json_response({}, 503, {"retry-after": "2"}),
        json_response({}, 503, {"retry-after": "2"}),
        json_response({"ok": True}),
    )
    clock = [0.0]

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)
        clock[0] += seconds

    client = HttpClient(
        policy=RetryPolicy(max_attempts=5, budget_s=3.0, max_retry_after_s=60.0),
        transport=httpx.MockTransport(recorder),
        sleep=fake_sleep,
        clock=lambda: clock[0],
    )
    with pytest.raises(ProviderError) as caught:
        await post(client)
    # the first wait (2 s) fits in the 3 s budget; the second would end at 4 s: fall back instead
    assert caught.value.status == 503 and len(recorder.requests) == 2 and delays == [2.0]


class _BreakingStream(httpx.AsyncByteStream):
    async def __aiter__(self):
        yield b"data: part one\n\n"
        raise httpx.ReadError("connection reset")


async def test_a_stream_broken_half_way_is_a_retryable_error_and_is_not_replayed(mock_http, resources):
    recorder = mock_http(httpx.Response(200, stream=_BreakingStream(), headers={"content-type": "text/event-stream"}))
    seen: list[str] = []
    with pytest.raises(ProviderError, match="ReadError") as caught:
        async with resources.http.stream_post("acme", URL, {}, headers={}) as response:
            async for event in http.iter_sse(response):
                seen.append(event.data)
    assert caught.value.retryable and seen == ["part one"] and len(recorder.requests) == 1
