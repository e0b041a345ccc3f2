"""``agent agents list|show|put`` against a real database, with real elizaOS character files."""

from __future__ import annotations

import io
import json
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest

from core.character import default_character_path
from core.uuid import string_to_uuid
from infra.cli import main
from tests.data import CHARACTERS


@pytest.fixture
def db(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([str(a) for a in argv], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def character_file(tmp_path: Path, **fields) -> tuple[Path, str]:
    """A minimal 1.x character with a unique name."""
    name = fields.pop("name", f"Put-{uuid.uuid4()}")
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "bio": ["A test agent."], **fields}))
    return path, name


def test_put_a_legacy_file_then_show_it_without_secrets(db, tmp_path):
    # trader.character.json: elizaOS 0.x, with settings.secrets (placeholder private keys)
    source = CHARACTERS / "trader.character.json"
    raw = json.loads(source.read_text())
    secret_values = [str(v) for v in raw["settings"]["secrets"].values() if v]
    status, out, err = run("agents", "put", source)
    assert status == 0, err
    agent_id = string_to_uuid("Trader")  # what the runtime derives from the name
    assert out == f"stored agent Trader ({agent_id})\n"

    status, out, _ = run("agents", "show", "TRADER")  # any case
    assert status == 0
    fields = dict(line.split(":", 1) for line in out.splitlines() if not line.startswith("bio:"))
    assert fields["id"].strip() == str(agent_id) and fields["name"].strip() == "Trader"
    assert fields["secrets"].strip() == f"{len(raw['settings']['secrets'])} set (not shown)"
    assert fields["enabled"].strip() == "yes"
    assert any(line.startswith("bio:") for line in out.splitlines())
    assert not any(value in out for value in secret_values)

    status, out, _ = run("agents", "show", str(agent_id), "--json")
    shown = json.loads(out)
    assert status == 0 and (shown["id"], shown["name"], shown["enabled"]) == (str(agent_id), "Trader", True)
    assert "secrets" not in shown["character"] and "secrets" not in shown["character"].get("settings", {})
    assert shown["character"]["name"] == "Trader" and shown["character"]["bio"]
    assert not any(value in out for value in secret_values)
    with psycopg.connect(db) as conn:  # the secrets are stored (the runtime needs them), only never shown
        stored = conn.execute("SELECT character FROM agents WHERE id = %s", (agent_id,)).fetchone()[0]
    assert set(stored["secrets"]) == set(raw["settings"]["secrets"])


def test_put_a_list_of_characters_then_list_them(db):
    status, out, err = run("agents", "put", CHARACTERS / "multi-chars.json")
    assert status == 0, err
    assert out.splitlines() == [f"stored agent {n} ({string_to_uuid(n)})" for n in ("Ada", "Max", "Shaw")]

    status, out, _ = run("agents", "list")
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["ID", "NAME", "ENABLED", "USERNAME", "PLUGINS", "BIO"]
    ada = next(line for line in lines if f"{string_to_uuid('Ada')}  Ada " in line)
    assert " yes " in ada and "@elizaos/plugin-sql" in ada

    status, out, _ = run("agents", "list", "--json")
    listed = {a["name"]: a for a in map(json.loads, out.splitlines())}
    assert status == 0 and {"Ada", "Max", "Shaw"} <= set(listed)
    assert set(listed["Max"]) == {"id", "name", "enabled", "username", "plugins", "bio"}
    assert listed["Max"]["id"] == str(string_to_uuid("Max")) and listed["Max"]["enabled"] is True
    assert listed["Max"]["bio"] and all(isinstance(line, str) for line in listed["Max"]["bio"])


def test_put_again_updates_and_keeps_the_id(db, tmp_path):
    path, name = character_file(tmp_path, system="first")
    assert run("agents", "put", path)[0] == 0
    path.write_text(json.dumps({"name": name, "bio": "Now one line.", "system": "second"}))
    status, out, _ = run("agents", "put", path)
    assert status == 0 and out == f"stored agent {name} ({string_to_uuid(name)})\n"
    shown = json.loads(run("agents", "show", name, "--json")[1])
    assert shown["character"]["system"] == "second" and shown["character"]["bio"] == ["Now one line."]
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM agents WHERE lower(name) = lower(%s)", (name,)).fetchone()[0] == 1


def test_put_keeps_the_id_a_character_gives(db, tmp_path):
    agent_id = uuid.uuid4()
    path, name = character_file(tmp_path, id=str(agent_id))
    status, out, _ = run("agents", "put", path)
    assert status == 0 and out == f"stored agent {name} ({agent_id})\n"


def test_list_shows_disabled_agents(db):
    agent_id, name = uuid.uuid4(), f"Off-{uuid.uuid4()}"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agents (id, name, character, enabled) VALUES (%s, %s, %s, false)",
            (agent_id, name, json.dumps({"name": name, "bio": "Asleep."})),
        )
    _, out, _ = run("agents", "list")
    assert any(line.startswith(f"{agent_id}  {name}") and " no " in line for line in out.splitlines())
    _, out, _ = run("agents", "list", "--json")
    [row] = [a for a in map(json.loads, out.splitlines()) if a["id"] == str(agent_id)]
    assert row["enabled"] is False and row["bio"] == ["Asleep."]  # a bio stored as a string is a list
    _, out, _ = run("agents", "show", name)
    assert "enabled:    no" in out


def test_list_and_show_survive_a_stored_character_that_is_not_valid(db):
    """Rows written by other code (or an older version) may not validate: shown as they are, never a crash."""
    agent_id, name = uuid.uuid4(), f"Odd-{uuid.uuid4()}"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agents (id, name, character) VALUES (%s, %s, %s)",
            (agent_id, name, json.dumps({"name": name, "bio": 42, "plugins": "solo", "settings": [1]})),
        )
    status, out, err = run("agents", "list", "--json")
    [row] = [a for a in map(json.loads, out.splitlines()) if a["id"] == str(agent_id)]
    assert (status, err) == (0, "") and row["bio"] == [42] and row["plugins"] == ["solo"]
    status, out, err = run("agents", "list")
    assert (status, err) == (0, "") and any(line.startswith(f"{agent_id}  {name}") for line in out.splitlines())
    status, out, err = run("agents", "show", name)
    assert (status, err) == (0, "") and "bio:        42" in out and "settings:   1" in out


def test_unknown_agent(db):
    for ref in ("nobody-at-all", str(uuid.uuid4())):
        status, out, err = run("agents", "show", ref)
        assert (status, out) == (1, "") and err == f"error: no agent {ref!r} (see `agent agents list`)\n"


def test_an_empty_file_is_refused_before_any_database_work(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")  # never reached
    path = CHARACTERS / "jin.character.json"  # 0 bytes, committed as a character
    status, out, err = run("agents", "put", path)
    assert (status, out) == (1, "") and err == f"error: {path}: file is empty\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"name": "x", "bio": 5}', "bio: Input should be a valid list"),
        ('{"bio": ["no name"]}', "name: Field required"),
        ('{"name": "x", "secrets": {"KEY": "sk-live-123"}, "style": 7}', "style:"),
        ("[1, 2]", "[0]: a character must be an object"),
        ("{not json", "invalid JSON at line 1, column 2"),
    ],
)
def test_an_invalid_file_names_the_file_and_the_field(monkeypatch, tmp_path, content, message):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")  # never reached
    path = tmp_path / "bad.character.json"
    path.write_text(content)
    status, out, err = run("agents", "put", path)
    assert (status, out) == (1, "") and err.startswith(f"error: {path}") and message in err
    assert "sk-live-123" not in err and err.count("\n") == 1


def test_a_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    status, _, err = run("agents", "put", tmp_path / "nope.json")
    assert status == 1 and "nope.json: cannot read file" in err


def test_a_name_taken_by_another_agent_is_refused(db, tmp_path):
    other_id, name = uuid.uuid4(), f"Taken-{uuid.uuid4()}"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("INSERT INTO agents (id, name, character) VALUES (%s, %s, '{}')", (other_id, name))
    path, _ = character_file(tmp_path, name=name.upper())  # names are unique in any case
    status, out, err = run("agents", "put", path)
    assert (status, out) == (1, "")
    assert err.startswith(f"error: {path}: the name {name.upper()!r} is taken by agent {other_id}")


def test_two_characters_of_one_name_in_a_file(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    path = tmp_path / "twins.json"
    path.write_text(json.dumps([{"name": "Twin"}, {"name": "twin"}]))
    status, _, err = run("agents", "put", path)
    assert status == 1 and err == f"error: {path}: two characters are named 'twin'\n"


def test_show_a_real_character_in_full(db, tmp_path):
    source = tmp_path / "ada.json"
    shutil.copy(CHARACTERS / "ada.json", source)
    assert run("agents", "put", source)[0] == 0
    status, out, _ = run("agents", "show", "ada", "--json")
    character = json.loads(out)["character"]
    original = json.loads(source.read_text())
    assert status == 0 and character["bio"] == original["bio"] and character["plugins"] == original["plugins"]


def test_put_refuses_a_plugin_off_the_allow_list_before_any_database_work(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")  # never reached
    path, name = character_file(tmp_path, plugins=["os"])
    status, out, err = run("agents", "put", path)
    assert (status, out) == (1, "") and err.startswith(f"error: {path}: {name}: plugins: not on this deployment's")


def test_put_refuses_the_deployments_own_character(db):
    status, out, err = run("agents", "put", default_character_path())  # Eliza: CHARACTERS unset
    assert (status, out) == (1, "") and "comes from this deployment's CHARACTERS" in err


def test_delete_disables_then_purge_removes_with_the_memories(db, tmp_path):
    path, name = character_file(tmp_path)
    assert run("agents", "put", path)[0] == 0
    agent_id = string_to_uuid(name)
    status, out, err = run("agents", "delete", name)
    assert status == 0, err
    assert out.startswith(f"disabled agent {name} ({agent_id}); its 0 memories are kept")
    assert "enabled:    no" in run("agents", "show", name)[1]
    assert run("agents", "put", path)[0] == 0 and "enabled:    yes" in run("agents", "show", name)[1]
    status, out, _ = run("agents", "delete", name.lower(), "--purge")
    assert status == 0 and out == f"deleted agent {name} ({agent_id}) with its 0 memories\n"
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM agents WHERE id = %s", (agent_id,)).fetchone()[0] == 0
    status, _, err = run("agents", "delete", name)
    assert status == 1 and err == f"error: no agent {name!r} (see `agent agents list`)\n"
