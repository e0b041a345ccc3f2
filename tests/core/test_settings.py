from __future__ import annotations

import pydantic
import pytest

from core.db.adapter import EMBEDDING_DIMENSIONS
from core.errors import ConfigurationError
from core.settings import Settings


def test_embedding_dimension_defaults_to_384():
    assert Settings.from_env({}).embedding_dimension == 384


@pytest.mark.parametrize("dim", EMBEDDING_DIMENSIONS)
def test_every_supported_dimension_is_accepted(dim):
    assert Settings.from_env({"EMBEDDING_DIMENSION": str(dim)}).embedding_dimension == dim


def test_the_supported_set_covers_the_usual_models():
    # MiniLM 384, bge-base 768, bge-large/Cohere 1024, OpenAI small 1536, OpenAI large 3072.
    assert {384, 768, 1024, 1536, 3072} <= set(EMBEDDING_DIMENSIONS)


@pytest.mark.parametrize("value", ["100", "383", "2048", "4096", "0", "-384"])
def test_an_unsupported_dimension_is_refused_naming_the_variable(value):
    with pytest.raises(ConfigurationError, match="EMBEDDING_DIMENSION") as caught:
        Settings.from_env({"EMBEDDING_DIMENSION": value})
    if int(value) > 0:
        assert "384, 512, 768, 1024, 1536, 3072" in str(caught.value)


@pytest.mark.parametrize("value", ["abc", "384.5", "3e3"])
def test_a_non_integer_dimension_is_refused_naming_the_variable(value):
    with pytest.raises(ConfigurationError, match="EMBEDDING_DIMENSION"):
        Settings.from_env({"EMBEDDING_DIMENSION": value})


def test_direct_construction_validates_too():
    with pytest.raises(pydantic.ValidationError, match="not supported"):
        Settings(embedding_dimension=100)
    assert Settings(embedding_dimension=1536).embedding_dimension == 1536
