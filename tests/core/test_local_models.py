"""Smoke tests of the embedded default's real models (the ``local`` extra)."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytestmark = pytest.mark.local_models


@pytest.fixture(scope="module")
def embedding_model():
    from core.model_providers import local_embedding

    return local_embedding.get_model()


def test_embeddings_are_384_finite_unit_vectors(embedding_model):
    vectors = embedding_model.embed(["Hello, who are you?", ""])
    assert [len(v) for v in vectors] == [384, 384]
    assert all(math.isfinite(x) for v in vectors for x in v)
    assert math.isclose(float(np.linalg.norm(vectors[0])), 1.0, rel_tol=1e-4)


def test_paraphrases_are_closer_than_unrelated_text(embedding_model):
    a, b, c = np.array(
        embedding_model.embed(
            [
                "How do I reset my password?",
                "I forgot my password, how can I change it?",
                "The volcano erupted last night near the village.",
            ]
        )
    )
    assert float(a @ b) > 0.6
    assert float(a @ b) > float(a @ c) + 0.3


def test_batch_and_single_calls_agree(embedding_model):
    texts = ["short", "a much longer sentence about embedding models and padding"]
    batch = np.array(embedding_model.embed(texts))
    single = np.array([embedding_model.embed([t])[0] for t in texts])
    assert np.allclose(batch, single, atol=1e-4)


async def test_the_local_text_model_replies_in_text():
    from core.model_providers.local_text import generate_text

    reply = await generate_text(
        None,
        {
            "system": "You are Eliza, a friendly AI. Answer in one sentence.",
            "messages": [{"role": "user", "content": "Hello, who are you?"}],
            "max_tokens": 60,
            "repeat_penalty": 1.3,
        },
    )
    assert isinstance(reply, str) and len(reply.split()) >= 2


async def test_the_local_text_model_needs_a_prompt():
    from core.errors import ModelError
    from core.model_providers.local_text import generate_text

    with pytest.raises(ModelError, match="prompt"):
        await generate_text(None, {})


ELIZA = {
    "system": "You are Eliza, a friendly AI. Answer in one sentence.",
    "messages": [{"role": "user", "content": "Hello, who are you?"}],
    "max_tokens": 60,
    "repeat_penalty": 1.3,
}


async def test_the_local_text_model_streams_chunks_that_join_to_the_returned_text():
    from core.model_providers.local_text import generate_text

    chunks: list[str] = []
    reply = await generate_text(None, {**ELIZA, "on_stream_chunk": chunks.append})
    assert len(chunks) > 1, chunks  # token by token, not the whole reply at the end
    assert "".join(chunks) == reply and reply == reply.strip() and reply


async def test_chunks_reach_an_async_callback_through_the_model_registry_before_the_call_returns():
    """Through the registry, which would deliver the whole text once if the handler did not stream."""
    import time

    from core.model_providers.local import plugin
    from core.model_registry import ModelRegistry
    from core.types import ModelType

    registry = ModelRegistry()
    for registration in plugin.models:
        registry.register(plugin.name, registration)
    arrivals: list[tuple[float, str]] = []

    async def on_chunk(text: str) -> None:
        arrivals.append((time.monotonic(), text))

    reply = await registry.use(None, ModelType.TEXT_LARGE, ELIZA, on_stream_chunk=on_chunk)
    returned = time.monotonic()
    assert len(arrivals) > 1 and "".join(text for _, text in arrivals) == reply
    assert arrivals[0][0] < returned
