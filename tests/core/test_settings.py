from __future__ import annotations

import pydantic
import pytest
from pydantic import Field, model_validator

from core.db.adapter import EMBEDDING_DIMENSIONS
from core.errors import ConfigurationError
from core.settings import Settings
from core.settings.groups import AgentSetting, SettingsGroup


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


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("YES", True),
        ("1", True),
        (" on ", True),
        ("false", False),
        ("No", False),
        ("0", False),
        ("off", False),
        (True, True),
        (False, False),
    ],
)
def test_booleans_from_the_environment_or_a_character_read_the_same(raw, expected):
    from core.settings import parse_setting

    assert parse_setting("FLAG", raw, bool, not expected) is expected


@pytest.mark.parametrize(
    ("raw", "kind", "message"),
    [
        ("maybe", bool, "FLAG: must be true or false, got 'maybe'"),
        ("ten", int, "FLAG: must be an integer, got 'ten'"),
        ("1.5", int, "FLAG: must be an integer, got '1.5'"),
        (True, int, "FLAG: must be an integer, got True"),
        ("nan", float, "FLAG: must be a finite number"),
        ("inf", float, "FLAG: must be a finite number"),
    ],
)
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


def test_a_whole_number_is_an_integer_but_a_fraction_is_not():
    from core.settings import parse_setting

    assert parse_setting("N", 3.0, int, 1) == 3
    with pytest.raises(ConfigurationError, match="N: must be an integer, got 2.5"):
        parse_setting("N", 2.5, int, 1)


# -- settings groups: one loader, one formatter ------------------------------------------------------


class _Group(SettingsGroup):
    count: int = Field(default=3, ge=1, le=10, validation_alias="TEST_COUNT")
    ratio: float | None = Field(default=None, gt=0, validation_alias="TEST_RATIO")
    flag: bool = Field(default=True, validation_alias="TEST_FLAG")
    label: str = Field(default="x", validation_alias="TEST_LABEL")

    @model_validator(mode="after")
    def _check(self) -> _Group:
        if self.ratio is not None and self.ratio > self.count:
            raise ValueError(f"TEST_RATIO: must be at most TEST_COUNT ({self.count}), got {self.ratio:g}")
        return self


def test_a_group_reads_each_variable_by_the_rule():
    group = _Group.from_env({"TEST_COUNT": " 5 ", "TEST_RATIO": "0.5", "TEST_FLAG": "off", "TEST_LABEL": " a "})
    assert (group.count, group.ratio, group.flag, group.label) == (5, 0.5, False, "a")
    assert _Group.from_env({"TEST_COUNT": "", "TEST_RATIO": "  "}) == _Group()
    assert _Group(count=2).count == 2  # built by field name in code and tests


def test_a_group_reads_an_agents_settings_as_json_values():
    class Source:
        def get_setting(self, key: str) -> object:
            return {"TEST_COUNT": 4, "TEST_FLAG": False, "TEST_RATIO": 1}.get(key)

    group = _Group.from_runtime(Source())
    assert (group.count, group.flag, group.ratio) == (4, False, 1.0)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TEST_COUNT": "many"}, "TEST_COUNT: must be an integer, got 'many'"),
        ({"TEST_FLAG": "maybe"}, "TEST_FLAG: must be true or false, got 'maybe'"),
        ({"TEST_RATIO": "nan"}, "TEST_RATIO: must be a finite number, got 'nan'"),
        ({"TEST_COUNT": "0"}, "TEST_COUNT: must be at least 1, got 0"),
        ({"TEST_COUNT": "11"}, "TEST_COUNT: must be at most 10, got 11"),
        ({"TEST_RATIO": "0"}, "TEST_RATIO: must be more than 0, got 0.0"),
        ({"TEST_COUNT": "2", "TEST_RATIO": "3"}, "TEST_RATIO: must be at most TEST_COUNT (2), got 3"),
        (
            {"TEST_COUNT": "many", "TEST_FLAG": "maybe"},
            "TEST_COUNT: must be an integer, got 'many'; TEST_FLAG: must be true or false, got 'maybe'",
        ),
    ],
)
def test_a_malformed_group_value_is_an_error_naming_the_variable(environ, message):
    with pytest.raises(ConfigurationError) as caught:
        _Group.from_env(environ)
    assert str(caught.value) == message


def _declared_variables() -> list[str]:
    """Every variable declared in core.settings: group fields' aliases (once per declaring class) and AgentSettings."""
    import importlib
    import pkgutil

    import core.settings

    names: list[str] = []
    for info in pkgutil.iter_modules(core.settings.__path__):
        module = importlib.import_module(f"core.settings.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, SettingsGroup) and value.__module__ == module.__name__:
                own = value.__dict__.get("__annotations__", {})  # inherited fields are counted with their class
                names += [
                    str(f.validation_alias) for n, f in value.model_fields.items() if n in own and f.validation_alias
                ]
            elif isinstance(value, AgentSetting):
                names.append(value.name)
    return names


def test_every_variable_is_named_once():
    names = _declared_variables()
    assert len(names) > 30
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
    assert all(n.isupper() for n in names), names
