"""Tests for core.character, driven by the real elizaOS character files in tests/data/characters."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.character import (
    Character,
    CharacterError,
    KnowledgeItem,
    convert_legacy,
    default_character_path,
    load_character_dict,
    load_characters,
)
from tests.data import CHARACTERS

LEGACY_FILES = [
    "c3po.character.json",
    "cosmosHelper.character.json",
    "dobby.character.json",
    "eliza.character.json",
    "snoop.json",
    "trader.character.json",
    "trump.character.json",
]
V1_FILES = ["ada.json", "max.json", "shaw.json"]
EXPECTED_NAMES = {
    "ada.json": ["Ada"],
    "c3po.character.json": ["C-3PO"],
    "cosmosHelper.character.json": ["CosmosHelper"],
    "dobby.character.json": ["Dobby"],
    "eliza.character.json": ["Eliza"],
    "max.json": ["Max"],
    "multi-chars.json": ["Ada", "Max", "Shaw"],
    "shaw.json": ["Shaw"],
    "snoop.json": ["snoop"],
    "test-character.json": ["TestAgent"],
    "trader.character.json": ["Trader"],
    "trump.character.json": ["trump"],
}
TRADER_SECRET_VALUES = ["YOUR_PRIVATE_KEY_HERE", "YOUR_FLASHBOTS_KEY_HERE", "YOUR_EXECUTOR_ADDRESS_HERE"]


def _data_files() -> list[str]:
    return sorted(path.name for path in CHARACTERS.iterdir() if path.suffix == ".json")


def _raw(name: str) -> dict[str, Any]:
    return json.loads((CHARACTERS / name).read_text(encoding="utf-8"))


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- real files


@pytest.mark.parametrize("name", _data_files())
def test_every_real_character_file_loads_or_fails_cleanly(name: str) -> None:
    path = CHARACTERS / name
    if path.stat().st_size == 0:
        with pytest.raises(CharacterError, match=r"jin\.character\.json: file is empty"):
            load_characters(path)
        return
    characters = load_characters(path)
    assert [c.name for c in characters] == EXPECTED_NAMES.get(name, [c.name for c in characters])
    for character in characters:
        assert character.bio, f"{name}: {character.name} has no bio"
        assert all(m.name and "text" in m.content for conv in character.message_examples for m in conv)
        dumped = character.model_dump(by_alias=True, mode="json")
        assert Character.model_validate(dumped) == character


def test_the_data_set_holds_the_files_these_tests_expect() -> None:
    present = {path.name for path in CHARACTERS.iterdir()}
    assert set(EXPECTED_NAMES) | {"jin.character.json"} <= present


def test_empty_file_error_is_structured() -> None:
    with pytest.raises(CharacterError) as info:
        load_characters(CHARACTERS / "jin.character.json")
    assert info.value.source.endswith("jin.character.json")
    assert info.value.errors[0]["type"] == "empty_file"


def test_multi_character_file_keeps_order_and_content() -> None:
    ada, max_, shaw = load_characters(CHARACTERS / "multi-chars.json")
    assert (ada.name, max_.name, shaw.name) == ("Ada", "Max", "Shaw")
    assert ada.plugins == _raw("multi-chars.json")[0]["plugins"]


# ---------------------------------------------------------------------------- 0.x conversion


@pytest.mark.parametrize("name", LEGACY_FILES)
def test_legacy_files_produce_conversion_warnings(name: str) -> None:
    raw = _raw(name)
    converted, warnings = convert_legacy(raw, source=name)
    assert all(w.startswith(f"{name}: ") for w in warnings)
    for field in ("lore", "messageExamples", "modelProvider", "clients"):
        assert any(w.startswith(f"{name}: {field}:") for w in warnings), (field, warnings)
    assert not {"lore", "clients", "modelProvider"} & set(converted)
    assert converted["settings"]["MODEL_PROVIDER"] == raw["modelProvider"]


@pytest.mark.parametrize("name", V1_FILES)
def test_v1_files_convert_without_warnings(name: str) -> None:
    raw = _raw(name)
    assert convert_legacy(raw, source=name) == (raw, [])


def test_lore_is_appended_to_bio() -> None:
    raw = _raw("dobby.character.json")
    [dobby] = load_characters(CHARACTERS / "dobby.character.json")
    assert dobby.bio == raw["bio"] + raw["lore"]


def test_example_user_becomes_name_and_placeholders_are_kept() -> None:
    raw = _raw("cosmosHelper.character.json")
    [helper] = load_characters(CHARACTERS / "cosmosHelper.character.json")
    expected = [[(m["user"], m["content"]) for m in conv] for conv in raw["messageExamples"]]
    assert [[(m.name, m.content) for m in conv] for conv in helper.message_examples] == expected
    assert helper.message_examples[0][0].name == "{{user1}}"
    assert "{{mantrachaintestnet2}}" in helper.message_examples[0][0].content["text"]


def test_warnings_are_logged_with_the_file_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="core.character"):
        load_characters(CHARACTERS / "c3po.character.json")
    messages = [r.getMessage() for r in caplog.records if r.name == "core.character"]
    assert any("c3po.character.json: twitterSpaces: dropped unknown field" in m for m in messages)
    assert any("c3po.character.json: clients: dropped" in m for m in messages)
    assert any("c3po.character.json: lore: merged 4 entries into bio" in m for m in messages)


def test_trader_conversion_moves_secrets_provider_and_drops_clients(caplog: pytest.LogCaptureFixture) -> None:
    raw = _raw("trader.character.json")
    with caplog.at_level(logging.WARNING, logger="core.character"):
        [trader] = load_characters(CHARACTERS / "trader.character.json")
    assert trader.secrets == raw["settings"]["secrets"]
    assert "secrets" not in trader.settings
    assert trader.settings == {"arbitrage": raw["settings"]["arbitrage"], "MODEL_PROVIDER": "anthropic"}
    assert "clients" not in trader.model_dump(by_alias=True)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for field in ("clients", "settings.secrets", "description", "modelSettings"):
        assert f"trader.character.json: {field}:" in logged
    text = logged + repr(trader) + str(trader)
    assert not [secret for secret in TRADER_SECRET_VALUES if secret in text]


def test_top_level_secrets_win_over_settings_secrets() -> None:
    raw = {"name": "A", "secrets": {"KEY": "top"}, "settings": {"secrets": {"KEY": "old", "OTHER": "o"}}}
    converted, warnings = convert_legacy(raw, source="a.json")
    assert converted["secrets"] == {"KEY": "top", "OTHER": "o"}
    assert converted["settings"] == {}
    assert warnings == [
        "a.json: settings.secrets: moved 1 keys to top-level secrets (1 overridden by top-level secrets)"
    ]
    assert raw["settings"]["secrets"] == {"KEY": "old", "OTHER": "o"}, "input must not be mutated"


def test_existing_model_provider_setting_is_kept() -> None:
    raw = {"name": "A", "modelProvider": "openai", "settings": {"MODEL_PROVIDER": "ollama"}}
    converted, warnings = convert_legacy(raw, source="a.json")
    assert converted["settings"] == {"MODEL_PROVIDER": "ollama"}
    assert "already set" in warnings[0]


def test_unknown_fields_are_dropped_by_the_loader_but_rejected_by_the_model() -> None:
    data = {"name": "A", "people": ["x"], "twitterSpaces": {}}
    assert load_character_dict(data).name == "A"
    with pytest.raises(ValidationError, match="people"):
        Character.model_validate(data)


def test_snake_case_field_names_are_accepted() -> None:
    character = load_character_dict({"name": "A", "post_examples": ["p"]})
    assert character.post_examples == ["p"]


# ---------------------------------------------------------------------------- errors


def test_malformed_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.json", '{\n  "name": "A",\n  "bio": [,]\n}\n')
    with pytest.raises(CharacterError, match=r"broken\.json: invalid JSON at line 3, column 11") as info:
        load_characters(path)
    assert info.value.errors[0]["type"] == "json_invalid"


def test_whitespace_only_file_is_empty(tmp_path: Path) -> None:
    with pytest.raises(CharacterError, match=r"blank\.json: file is empty"):
        load_characters(_write(tmp_path, "blank.json", " \n"))


def test_missing_file_is_a_character_error(tmp_path: Path) -> None:
    with pytest.raises(CharacterError, match=r"nope\.json: cannot read file"):
        load_characters(tmp_path / "nope.json")


@pytest.mark.parametrize(("content", "kind"), [("42", "a number"), ('"Eliza"', "a string"), ("null", "null")])
def test_top_level_must_be_object_or_list(tmp_path: Path, content: str, kind: str) -> None:
    with pytest.raises(CharacterError, match=f"object or a list of characters, got {kind}"):
        load_characters(_write(tmp_path, "odd.json", content))


def test_empty_list_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(CharacterError, match=r"none\.json: the list holds no characters"):
        load_characters(_write(tmp_path, "none.json", "[]"))


def test_list_element_error_names_index_and_field(tmp_path: Path) -> None:
    data = _raw("multi-chars.json")
    del data[1]["name"]
    with pytest.raises(CharacterError) as info:
        load_characters(_write(tmp_path, "multi.json", data))
    assert "multi.json[1]: name: Field required" in str(info.value)
    assert [(e["index"], e["field"], e["type"]) for e in info.value.errors] == [(1, "name", "missing")]


def test_list_reports_every_bad_element(tmp_path: Path) -> None:
    path = _write(tmp_path, "many.json", [{"name": "ok"}, "oops", {"name": "B", "bio": 7}])
    with pytest.raises(CharacterError) as info:
        load_characters(path)
    message = str(info.value)
    assert "many.json[1]: a character must be an object, got a string" in message
    assert "many.json[2]: bio: Input should be a valid list" in message
    assert [e["index"] for e in info.value.errors] == [1, 2]


def test_wrong_type_names_the_field() -> None:
    with pytest.raises(CharacterError, match=r"^bad\.json: bio: Input should be a valid list$") as info:
        load_character_dict({"name": "A", "bio": 42}, source="bad.json")
    assert info.value.errors[0]["loc"] == ("bio",)


def test_nested_error_uses_dotted_camel_case_path() -> None:
    examples = [[{"user": "{{user1}}", "content": {"text": "hi"}}, {"name": 5, "content": {"text": "yo"}}]]
    with pytest.raises(CharacterError, match=r"messageExamples\.0\.1\.name: Input should be a valid string"):
        load_character_dict({"name": "A", "messageExamples": examples})


def test_blank_name_is_rejected_and_name_is_stripped() -> None:
    assert load_character_dict({"name": "  Eliza \n"}).name == "Eliza"
    with pytest.raises(CharacterError, match=r"<dict>: name: String should have at least 1 character"):
        load_character_dict({"name": "   "})


def test_secrets_never_appear_in_error_messages() -> None:
    secret = "sk-live-0123456789abcdef"
    bad = {"name": 3, "secrets": secret, "settings": {"secrets": {"API_KEY": secret}}, "bio": [secret, 1]}
    with pytest.raises(CharacterError) as info:
        load_character_dict(bad, source="leaky.json")
    assert {e["field"] for e in info.value.errors} >= {"name", "secrets", "bio.1"}
    assert secret not in str(info.value) + repr(info.value.errors)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_malformed_settings_secrets_is_an_error_without_the_value() -> None:
    with pytest.raises(CharacterError, match=r"x\.json: settings\.secrets: expected an object") as info:
        load_character_dict({"name": "A", "settings": {"secrets": "hunter2"}}, source="x.json")
    assert "hunter2" not in str(info.value)


def test_non_dict_character_is_rejected() -> None:
    with pytest.raises(CharacterError, match="a character must be an object, got an array"):
        load_character_dict([{"name": "A"}])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- model


def test_bio_string_becomes_one_item_list() -> None:
    assert load_character_dict({"name": "A", "bio": "A helpful agent."}).bio == ["A helpful agent."]


def test_knowledge_accepts_strings_paths_and_directories() -> None:
    items = ["fact", {"path": "docs/a.md"}, {"directory": "docs", "shared": True}]
    character = load_character_dict({"name": "A", "knowledge": items})
    assert character.knowledge[1] == KnowledgeItem(path="docs/a.md")
    assert character.model_dump(by_alias=True, mode="json")["knowledge"] == [
        "fact",
        {"path": "docs/a.md", "shared": False},
        {"directory": "docs", "shared": True},
    ]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"path": "a", "directory": "b"}, "knowledge.0: Value error, exactly one of 'path' or 'directory'"),
        ({"shared": True}, "knowledge.0: Value error, exactly one of 'path' or 'directory'"),
        (5, "knowledge.0: Input should be a string or an object with 'path' or 'directory'"),
    ],
)
def test_invalid_knowledge_entries_name_the_entry(entry: Any, expected: str) -> None:
    with pytest.raises(CharacterError) as info:
        load_character_dict({"name": "A", "knowledge": [entry]})
    assert expected in str(info.value)


def test_round_trip_gives_elizaos_camel_case_json() -> None:
    data = {
        "id": "b850bc30-45f8-0041-a00a-83df46d8555d",
        "name": "A",
        "system": "Be brief.",
        "bio": ["b"],
        "messageExamples": [[{"name": "{{user1}}", "content": {"text": "hi", "actions": ["NONE"]}}]],
        "postExamples": ["p"],
        "knowledge": [{"directory": "kb"}],
        "secrets": {"K": "v"},
        "style": {"all": ["terse"], "chat": [], "post": []},
    }
    character = Character.model_validate(data)
    dumped = character.model_dump(by_alias=True, mode="json")
    assert {"messageExamples", "postExamples"} <= set(dumped)
    assert not [key for key in dumped if "_" in key]
    assert "username" not in dumped, "unset optional scalars are omitted (zod rejects null)"
    assert dumped["id"] == data["id"] and dumped["messageExamples"] == data["messageExamples"]
    assert Character.model_validate(dumped) == character


def test_secrets_are_hidden_from_repr() -> None:
    character = Character(name="A", secrets={"OPENAI_API_KEY": "sk-abc123"})
    assert "sk-abc123" not in repr(character) and "secrets" not in repr(character)
    assert character.secrets == {"OPENAI_API_KEY": "sk-abc123"}


def test_all_style_combines_all_with_the_kind() -> None:
    character = Character(name="A", style={"all": ["a"], "chat": ["c"], "post": ["p"]})
    assert character.all_style("chat") == ["a", "c"]
    assert character.all_style("post") == ["a", "p"]
    with pytest.raises(ValueError, match="'chat' or 'post'"):
        character.all_style("all")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- default character


def test_default_character_loads_as_eliza() -> None:
    path = default_character_path()
    assert path.name == "eliza.character.json" and path.is_file()
    [eliza] = load_characters(path)
    assert eliza.name == "Eliza"
    assert eliza.system and eliza.message_examples and eliza.all_style("chat")


def test_loading_the_default_character_logs_no_conversion_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="core.character"):
        load_characters(default_character_path())
    assert [r.getMessage() for r in caplog.records if r.name == "core.character"] == []


def test_the_default_character_file_is_in_the_elizaos_1x_format() -> None:
    raw = json.loads(default_character_path().read_text(encoding="utf-8"))
    converted, warnings = convert_legacy(raw, source="eliza")
    assert warnings == [] and converted == raw
    assert not {"lore", "clients", "modelProvider"} & set(raw)
    assert all("name" in m and "user" not in m for conversation in raw["messageExamples"] for m in conversation)


def test_the_default_character_is_the_starter_file_converted_to_1x() -> None:
    starter, _ = convert_legacy(_raw("eliza.character.json"), source="eliza")
    del starter["settings"]["MODEL_PROVIDER"]  # "openrouter": dropped on purpose (see core/characters/NOTICE)
    expected = Character.model_validate(starter).model_dump(mode="json", by_alias=True)
    [eliza] = load_characters(default_character_path())
    assert eliza.model_dump(mode="json", by_alias=True) == expected
