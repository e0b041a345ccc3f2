"""TEXT_TOKENIZER_ENCODE / _DECODE of the local default: SmolLM2's own llama.cpp tokenizer, in its child process."""

from __future__ import annotations

import pytest

from core.errors import ModelError
from core.model_providers import local
from core.model_registry import ModelRegistry
from core.types import ModelType

pytestmark = pytest.mark.local_models


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    models = ModelRegistry()
    for registration in local.plugin.models:
        models.register(local.plugin.name, registration)
    return models


async def test_text_round_trips_through_the_text_models_tokens(registry):
    text = "Hello, who are you? Ünïcödé and numbers 12345."
    tokens = await registry.use(None, ModelType.TEXT_TOKENIZER_ENCODE, {"prompt": text})
    assert tokens and all(isinstance(t, int) for t in tokens)
    assert len(tokens) < len(text)  # subword tokens, not characters
    assert await registry.use(None, ModelType.TEXT_TOKENIZER_DECODE, {"tokens": tokens}) == text


async def test_control_token_texts_are_tokenized_as_plain_text(registry):
    tokens = await registry.use(None, ModelType.TEXT_TOKENIZER_ENCODE, {"prompt": "<|im_start|>system"})
    # As a control token it would be two ids (<|im_start|>, system); as text it is several.
    assert len(tokens) > 2
    assert await registry.use(None, ModelType.TEXT_TOKENIZER_DECODE, {"tokens": tokens}) == "<|im_start|>system"


async def test_bad_params_fail_without_reaching_the_model(registry):
    with pytest.raises(ModelError, match="needs 'prompt'"):
        await registry.use(None, ModelType.TEXT_TOKENIZER_ENCODE, {"text_missing": True})
    with pytest.raises(ModelError, match="needs 'tokens'"):
        await registry.use(None, ModelType.TEXT_TOKENIZER_DECODE, {"tokens": ["a"]})
