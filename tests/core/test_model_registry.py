from __future__ import annotations

import pytest

from core.errors import ModelError, ModelNotFoundError
from core.model_registry import ModelRegistry
from core.plugin import ModelRegistration
from core.types import ModelType


def _handler(answer, calls: list):
    async def handler(runtime, params):
        calls.append(answer if not isinstance(answer, Exception) else type(answer).__name__)
        if isinstance(answer, Exception):
            raise answer
        return answer
    return handler


async def test_highest_priority_wins_then_registration_order():
    calls: list = []
    registry = ModelRegistry()
    registry.register("low", ModelRegistration(ModelType.TEXT_LARGE, _handler("low", calls), priority=0))
    registry.register("first", ModelRegistration(ModelType.TEXT_LARGE, _handler("first", calls), priority=5))
    registry.register("second", ModelRegistration(ModelType.TEXT_LARGE, _handler("second", calls), priority=5))
    assert await registry.use(None, ModelType.TEXT_LARGE, {}) == "first"
    assert await registry.use(None, ModelType.TEXT_LARGE, {}, provider="low") == "low"


async def test_falls_back_on_retryable_errors_only():
    calls: list = []
    registry = ModelRegistry()
    registry.register("flaky", ModelRegistration(
        ModelType.TEXT_LARGE, _handler(ModelError("429", retryable=True), calls), priority=2))
    registry.register("backup", ModelRegistration(ModelType.TEXT_LARGE, _handler("ok", calls), priority=1))
    assert await registry.use(None, ModelType.TEXT_LARGE, {}) == "ok"
    assert calls == ["ModelError", "ok"]

    strict = ModelRegistry()
    strict.register("bad", ModelRegistration(ModelType.TEXT_LARGE, _handler(ModelError("400"), calls), priority=2))
    strict.register("backup", ModelRegistration(ModelType.TEXT_LARGE, _handler("ok", calls), priority=1))
    with pytest.raises(ModelError, match="400"):
        await strict.use(None, ModelType.TEXT_LARGE, {})


async def test_every_provider_failing_raises_the_last_error():
    registry = ModelRegistry()
    registry.register("a", ModelRegistration(ModelType.TEXT_SMALL, _handler(ModelError("a", retryable=True), [])))
    registry.register("b", ModelRegistration(ModelType.TEXT_SMALL, _handler(ModelError("b", retryable=True), [])))
    with pytest.raises(ModelError, match="b"):
        await registry.use(None, ModelType.TEXT_SMALL, {})


async def test_missing_type_names_the_type():
    with pytest.raises(ModelNotFoundError, match="TEXT_EMBEDDING"):
        await ModelRegistry().use(None, ModelType.TEXT_EMBEDDING, {})
    assert ModelRegistry().capabilities(ModelType.TEXT_LARGE) == frozenset()
