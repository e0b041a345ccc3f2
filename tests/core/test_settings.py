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


# -- the one rule: parse_setting ------------------------------------------------------------

@pytest.mark.parametrize("raw", [None, "", "   "])
def test_an_unset_or_blank_setting_is_its_default(raw):
    from core.settings import parse_setting

    assert parse_setting("X", raw, int, 7) == 7
    assert parse_setting("X", raw, bool, True) is True


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("YES", True), ("1", True), (" on ", True),
                                               ("false", False), ("No", False), ("0", False), ("off", False),
                                               (True, True), (False, False)])
def test_booleans_from_the_environment_or_a_character_read_the_same(raw, expected):
    from core.settings import parse_setting

    assert parse_setting("FLAG", raw, bool, not expected) is expected


@pytest.mark.parametrize(("raw", "kind", "message"), [
    ("maybe", bool, "FLAG: must be true or false, got 'maybe'"),
    ("ten", int, "FLAG: must be an integer, got 'ten'"),
    ("1.5", int, "FLAG: must be an integer, got '1.5'"),
    (True, int, "FLAG: must be an integer, got True"),
    ("nan", float, "FLAG: must be a finite number"),
    ("inf", float, "FLAG: must be a finite number"),
])
def test_a_malformed_setting_is_an_error_naming_it(raw, kind, message):
    from core.errors import ConfigurationError
    from core.settings import parse_setting

    with pytest.raises(ConfigurationError, match=message.replace(".", r"\.")):
        parse_setting("FLAG", raw, kind, kind())


def test_numbers_outside_their_range_are_refused_with_the_bound():
    from core.errors import ConfigurationError
    from core.settings import parse_setting

    assert parse_setting("N", " 5 ", int, 1, minimum=1, maximum=10) == 5
    assert parse_setting("N", 2.5, float, 1.0, minimum=0) == 2.5
    with pytest.raises(ConfigurationError, match="N: must be at least 1, got 0"):
        parse_setting("N", "0", int, 1, minimum=1)
    with pytest.raises(ConfigurationError, match="N: must be at most 10, got 11"):
        parse_setting("N", "11", int, 1, maximum=10)


def test_a_runtime_setting_prefers_the_character_and_applies_the_rule(monkeypatch):
    from core.blueprint import AgentBlueprint
    from core.character import load_character_dict
    from core.runtime import AgentRuntime

    monkeypatch.setenv("KNOWLEDGE_MATCH_COUNT", "9")
    character = load_character_dict({"name": "S", "settings": {"KNOWLEDGE_MATCH_COUNT": "3", "BAD": "x"}})
    runtime = AgentRuntime(AgentBlueprint.build(character, []), adapter=None)  # type: ignore[arg-type]  # no SQL
    assert runtime.setting("KNOWLEDGE_MATCH_COUNT", int, 5) == 3
    assert runtime.setting("UNSET_SETTING_FOR_TEST", int, 5) == 5
    with pytest.raises(ConfigurationError, match="BAD: must be an integer"):
        runtime.setting("BAD", int, 5)
