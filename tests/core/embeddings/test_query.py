"""One embedding call per turn for a text that several providers embed."""

from __future__ import annotations

import asyncio

import pytest

from core.embeddings import query
from core.embeddings.query import embed_query
from core.errors import ModelError
from core.types import ModelType


class CountingRuntime:
    """A runtime's ``use_model`` for ``TEXT_EMBEDDING``: counts calls, fails while told to."""

    def __init__(self, failures: int = 0) -> None:
        self.calls = 0
        self.failures = failures

    async def use_model(self, model_type: ModelType, params: dict) -> list[float]:
        assert model_type is ModelType.TEXT_EMBEDDING
        self.calls += 1
        await asyncio.sleep(0.01)  # both providers ask while the first call is under way
        if self.failures:
            self.failures -= 1
            raise ModelError("embedding failed", provider="test", retryable=True)
        return [float(len(params["text"]))] * 3


async def test_two_providers_asking_at_once_share_one_model_call():
    runtime = CountingRuntime()
    first, second = await asyncio.gather(embed_query(runtime, "hello"), embed_query(runtime, "hello"))
    assert first == second == [5.0, 5.0, 5.0]
    assert runtime.calls == 1


async def test_another_runtime_or_text_makes_its_own_call():
    one, other = CountingRuntime(), CountingRuntime()
    await embed_query(one, "hello")
    await embed_query(one, "bye")
    await embed_query(other, "hello")
    assert (one.calls, other.calls) == (2, 1)


async def test_a_failed_call_is_not_remembered():
    runtime = CountingRuntime(failures=1)
    with pytest.raises(ModelError):
        await embed_query(runtime, "hello")
    assert await embed_query(runtime, "hello") == [5.0, 5.0, 5.0]
    assert runtime.calls == 2


async def test_a_long_lived_runtime_keeps_only_the_latest_texts():
    runtime = CountingRuntime()
    for i in range(query.MAX_TEXTS + 3):
        await embed_query(runtime, f"text {i}")
    assert len(query._pending[runtime]) == query.MAX_TEXTS


async def test_a_prefetched_query_is_awaited_once_and_then_served_without_another_call():
    runtime = CountingRuntime()
    query.prefetch_query(runtime, "hello")
    assert runtime.calls == 0  # started, not yet run: the caller goes on (storing the message)
    await query.prefetched_queries(runtime)
    assert runtime.calls == 1
    assert await embed_query(runtime, "hello") == [5.0, 5.0, 5.0]
    assert runtime.calls == 1


async def test_a_failed_prefetch_is_not_raised_by_the_wait_but_by_the_provider_that_asks():
    runtime = CountingRuntime(failures=1)
    query.prefetch_query(runtime, "hello")
    await query.prefetched_queries(runtime)  # never raises
    with pytest.raises(ModelError):
        await embed_query(runtime, "hello")  # the prefetch's error
    assert await embed_query(runtime, "hello") == [5.0, 5.0, 5.0]  # not remembered: called again
    assert runtime.calls == 2


async def test_waiting_without_a_prefetch_returns_at_once():
    runtime = CountingRuntime()
    await query.prefetched_queries(runtime)
    assert runtime.calls == 0
