"""``PUT|PATCH|DELETE /agents/{agent}`` through the messages function with real API Gateway events and a real database.

Every refused request is checked to have written nothing (the agents row, counted and compared).
Staleness is measured on the real clock with short intervals (``AGENT_REFRESH_S`` 1 s,
``AGENT_REFRESH_ON_MISS_S`` 0.25 s) against a second orchestrator on its own pool: another warm container.
"""

from __future__ import annotations

import json
import time
import uuid

import psycopg
import pytest

from core.agent_refresh import AgentRefresher, RefreshSettings
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.orchestrator import Orchestrator
from core.settings import Settings
from core.types import ModelType
from core.uuid import string_to_uuid
from tests.data import CHARACTERS
from tests.factories import FakeContext, http_event, user

REPLY = "<response><thought>hi</thought><actions>REPLY</actions><text>Hello from the API.</text></response>"
INTERVAL_S, MISS_S = 1.0, 0.25


def call(fn, method, path, body=None, query=None, caller=None):
    kwargs = {} if caller is None else {"caller": caller}
    response = fn.handler(http_event(method, path, body, query, **kwargs), FakeContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def rows(database_url) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT id, name, character, enabled, updated_at FROM agents ORDER BY id").fetchall()


def stored(database_url, agent_id) -> dict | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT character, enabled FROM agents WHERE id = %s", (agent_id,)).fetchone()
    return None if row is None else {"character": row[0], "enabled": row[1]}


def fresh_name(prefix: str = "Api") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_an_admin_creates_an_agent_with_put_and_talks_to_it_at_once(messages_fn, scripted):
    name = fresh_name()
    status, body = call(messages_fn, "PUT", f"/agents/{name}", {"name": name, "bio": ["Made over HTTP."]})
    assert status == 201, body
    assert body["created"] is True and body["name"] == name and body["enabled"] is True
    assert body["id"] == str(string_to_uuid(name)) and body["character"]["bio"] == ["Made over HTTP."]
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    status, reply = call(messages_fn, "POST", f"/agents/{name}/messages", {"text": "hi"}, caller=user())
    assert status == 200 and reply["responses"][0]["text"] == "Hello from the API."


def test_put_again_replaces_the_whole_document_and_answers_200(messages_fn, database_url):
    name = fresh_name()
    call(messages_fn, "PUT", f"/agents/{name}", {"name": name, "bio": "one", "system": "first", "secrets": {"K": "v"}})
    status, body = call(messages_fn, "PUT", f"/agents/{name.upper()}", {"name": name, "bio": "two"})
    assert status == 200 and body["created"] is False and body["secretNames"] == []
    document = stored(database_url, string_to_uuid(name))["character"]
    assert document["bio"] == ["two"] and "system" not in document and not document.get("secrets")


def test_a_legacy_character_with_secrets_is_stored_and_its_secret_values_never_returned(messages_fn, database_url):
    raw = json.loads((CHARACTERS / "trader.character.json").read_text())
    name = fresh_name("Trader")
    raw["name"] = name
    values = [str(v) for v in raw["settings"]["secrets"].values() if v]
    status, body = call(messages_fn, "PUT", f"/agents/{name}", raw)
    assert status == 201, body
    assert body["secretNames"] == sorted(raw["settings"]["secrets"])
    assert not any(v in json.dumps(body) for v in values)
    status, shown = call(messages_fn, "GET", f"/agents/{name}")
    assert status == 200 and not any(v in json.dumps(shown) for v in values)
    assert set(stored(database_url, string_to_uuid(name))["character"]["secrets"]) == set(raw["settings"]["secrets"])


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ("{not json", 400, None),
        ("", 400, None),
        ("   ", 400, None),
        ({"bio": ["no name"]}, 422, "name"),
        ({"name": "x", "bio": 5}, 422, "bio"),
        ("[1, 2]", 422, "body"),
        ('"just a string"', 422, "body"),
        ({"name": "x", "plugins": ["os"]}, 422, "plugins"),
        ({"name": "x", "plugins": ["subprocess:run"]}, 422, "plugins"),
    ],
)
def test_a_document_that_is_not_one_acceptable_character_is_refused_and_nothing_is_written(
    messages_fn, database_url, body, status, field
):
    before = rows(database_url)
    if isinstance(body, dict) and "name" in body:
        body = {**body, "name": fresh_name()}
    answer_status, answer = call(messages_fn, "PUT", f"/agents/{fresh_name()}", body)
    assert answer_status == status, answer
    if field is not None:
        assert field in [f["field"] for f in answer["fields"]]
    assert rows(database_url) == before


def test_a_list_of_characters_sent_as_one_is_a_422_naming_the_body(messages_fn, database_url):
    before = rows(database_url)
    status, body = call(messages_fn, "PUT", "/agents/Ada", (CHARACTERS / "multi-chars.json").read_text())
    assert status == 422 and body["fields"][0]["field"] == "body" and "one character" in body["fields"][0]["message"]
    assert rows(database_url) == before


def test_a_plugin_off_the_allow_list_is_never_imported(messages_fn, database_url):
    import sys

    module = "tests.functions.never_imported_plugin"
    name = fresh_name()
    status, body = call(messages_fn, "PUT", f"/agents/{name}", {"name": name, "plugins": [module]})
    assert status == 422 and body["fields"][0]["field"] == "plugins" and module in body["fields"][0]["message"]
    assert module not in sys.modules and stored(database_url, string_to_uuid(name)) is None


def test_npm_plugin_names_are_accepted_since_they_are_never_imported(messages_fn):
    name = fresh_name()
    document = {"name": name, "plugins": ["@elizaos/plugin-sql", "@elizaos/plugin-openai"]}
    assert call(messages_fn, "PUT", f"/agents/{name}", document)[0] == 201


def test_an_allow_listed_plugin_may_be_named(messages_fn, monkeypatch):
    name = fresh_name()
    monkeypatch.setattr(messages_fn.orchestrator.refresher, "_policy", None)
    monkeypatch.setenv("AGENT_PLUGIN_ALLOWLIST", "core.model_providers.scripted")
    try:
        document = {"name": name, "plugins": ["core.model_providers.scripted"]}
        assert call(messages_fn, "PUT", f"/agents/{name}", document)[0] == 201
        assert call(messages_fn, "GET", f"/agents/{name}")[0] == 200
    finally:
        messages_fn.orchestrator.refresher._policy = None


def test_only_an_admin_may_put_patch_or_delete(messages_fn, database_url):
    name = fresh_name()
    before = rows(database_url)
    for method, body in (("PUT", {"name": name}), ("PATCH", {"bio": "x"}), ("DELETE", None)):
        status, answer = call(messages_fn, method, f"/agents/{name}", body, caller=user())
        assert status == 403, (method, answer)
    assert rows(database_url) == before


def test_the_path_and_the_document_must_name_the_same_agent(messages_fn, database_url):
    before = rows(database_url)
    status, body = call(messages_fn, "PUT", f"/agents/{fresh_name()}", {"name": fresh_name()})
    assert status == 422 and body["fields"][0]["field"] == "name"
    agent_id = uuid.uuid4()
    status, body = call(messages_fn, "PUT", f"/agents/{agent_id}", {"name": fresh_name(), "id": str(uuid.uuid4())})
    assert status == 422 and body["fields"][0]["field"] == "id"
    assert rows(database_url) == before


def test_put_by_id_creates_under_that_id_and_may_rename(messages_fn, database_url):
    agent_id, first, second = uuid.uuid4(), fresh_name(), fresh_name()
    assert call(messages_fn, "PUT", f"/agents/{agent_id}", {"name": first})[0] == 201
    status, body = call(messages_fn, "PUT", f"/agents/{agent_id}", {"name": second})
    assert status == 200 and body["id"] == str(agent_id) and body["name"] == second
    assert call(messages_fn, "GET", f"/agents/{second}")[0] == 200
    assert call(messages_fn, "GET", f"/agents/{first}")[0] == 404


def test_a_name_taken_by_another_agent_is_a_409_and_nothing_changes(messages_fn, database_url):
    taken = fresh_name()
    call(messages_fn, "PUT", f"/agents/{taken}", {"name": taken})
    before = rows(database_url)
    status, body = call(messages_fn, "PUT", f"/agents/{uuid.uuid4()}", {"name": taken.lower()})
    assert status == 409 and body["error"] == "name_taken"
    other = fresh_name()
    call(messages_fn, "PUT", f"/agents/{other}", {"name": other})
    before = rows(database_url)
    status, body = call(messages_fn, "PATCH", f"/agents/{other}", {"name": taken})
    assert status == 409 and rows(database_url) == before


def test_the_deployments_own_agent_is_left_to_its_file(messages_fn, database_url):
    before = rows(database_url)
    assert call(messages_fn, "PUT", "/agents/eliza", {"name": "Eliza"})[1]["error"] == "configured_agent"
    assert call(messages_fn, "PATCH", "/agents/eliza", {"bio": "x"})[0] == 409
    assert call(messages_fn, "PATCH", "/agents/eliza", {"enabled": False})[0] == 409
    assert call(messages_fn, "DELETE", "/agents/eliza")[0] == 409
    assert call(messages_fn, "DELETE", "/agents/eliza", query={"purge": "true"})[0] == 409
    assert rows(database_url) == before


def test_patch_deep_merges_settings_and_secrets_and_null_removes_a_key(messages_fn, database_url):
    name = fresh_name()
    call(
        messages_fn,
        "PUT",
        f"/agents/{name}",
        {"name": name, "system": "s", "settings": {"a": 1, "b": {"c": 2}}, "secrets": {"X": "1", "Y": "2"}},
    )
    status, body = call(
        messages_fn, "PATCH", f"/agents/{name}", {"settings": {"b": {"d": 3}}, "secrets": {"Y": None, "Z": "3"}}
    )
    assert status == 200, body
    assert body["character"]["settings"] == {"a": 1, "b": {"c": 2, "d": 3}} and body["character"]["system"] == "s"
    assert body["secretNames"] == ["X", "Z"] and "secrets" not in body["character"]
    opened = messages_fn.container.run(messages_fn.container.adapter.get_agent(string_to_uuid(name)))
    assert opened.character["secrets"] == {"X": "1", "Z": "3"}  # sealed at rest, opened by the adapter
    assert stored(database_url, string_to_uuid(name))["character"]["secrets"]["X"] != "1"


@pytest.mark.parametrize(
    ("changes", "status", "field"),
    [
        ({"bio": 5}, 422, "bio"),
        ({"enabled": "yes"}, 422, "enabled"),
        ({"id": str(uuid.uuid4())}, 422, "id"),
        ({"plugins": ["os"]}, 422, "plugins"),
        ('[{"bio": "x"}]', 422, "body"),
        ("{oops", 400, None),
    ],
)
def test_a_bad_patch_is_refused_and_nothing_is_written(messages_fn, database_url, changes, status, field):
    name = fresh_name()
    call(messages_fn, "PUT", f"/agents/{name}", {"name": name, "bio": "kept"})
    before = rows(database_url)
    answer_status, answer = call(messages_fn, "PATCH", f"/agents/{name}", changes)
    assert answer_status == status, answer
    if field is not None:
        assert field in [f["field"] for f in answer["fields"]]
    assert rows(database_url) == before


def test_unknown_agents_are_404(messages_fn):
    assert call(messages_fn, "PATCH", f"/agents/{fresh_name()}", {"bio": "x"})[0] == 404
    assert call(messages_fn, "DELETE", f"/agents/{fresh_name()}")[0] == 404


def test_delete_disables_and_keeps_the_memories_then_patch_serves_it_again(messages_fn, scripted, database_url):
    name = fresh_name()
    call(messages_fn, "PUT", f"/agents/{name}", {"name": name})
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    status, posted = call(messages_fn, "POST", f"/agents/{name}/messages", {"text": "remember me"}, caller=user())
    assert status == 200
    status, body = call(messages_fn, "DELETE", f"/agents/{name}")
    assert status == 200 and (body["action"], body["memories"]) == ("disabled", "kept") and body["memoryCount"] >= 2
    assert "kept" in body["message"]
    assert call(messages_fn, "POST", f"/agents/{name}/messages", {"text": "hi"}, caller=user())[0] == 404
    assert stored(database_url, string_to_uuid(name))["enabled"] is False
    status, body = call(messages_fn, "PATCH", f"/agents/{name}", {"enabled": True})
    assert status == 200 and body["enabled"] is True
    room = posted["roomId"]
    status, history = call(messages_fn, "GET", f"/agents/{name}/rooms/{room}/messages", caller=user())
    assert status == 200 and "remember me" in [m["content"]["text"] for m in history["messages"]]


def test_delete_with_purge_removes_the_agent_and_its_memories(messages_fn, scripted, database_url):
    name = fresh_name()
    call(messages_fn, "PUT", f"/agents/{name}", {"name": name})
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    call(messages_fn, "POST", f"/agents/{name}/messages", {"text": "forget me"}, caller=user())
    status, body = call(messages_fn, "DELETE", f"/agents/{name}", query={"purge": "true"})
    assert status == 200 and (body["action"], body["memories"]) == ("deleted", "deleted") and body["memoryCount"] >= 2
    agent_id = string_to_uuid(name)
    with psycopg.connect(database_url) as conn:
        left = conn.execute("SELECT count(*) FROM memories WHERE agent_id = %s", (agent_id,)).fetchone()[0]
    assert stored(database_url, agent_id) is None and left == 0
    assert call(messages_fn, "GET", f"/agents/{name}")[0] == 404


@pytest.fixture
def other_container(database_url, messages_fn):
    """A second warm container: its own pool and orchestrator, refreshing with short intervals."""
    container = messages_fn.container
    pool = create_pool(Settings(database_url=database_url))
    container.run(pool.open())
    orchestrator = Orchestrator(PostgresAdapter(pool), plugins=list(messages_fn.orchestrator.plugins))
    orchestrator.refresher = AgentRefresher(
        orchestrator, RefreshSettings(interval_s=INTERVAL_S, miss_interval_s=MISS_S)
    )
    container.run(orchestrator.refresher.refresh())
    yield orchestrator
    container.run(pool.close())


def _until(check, limit_s: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit_s, f"not within {limit_s} s"
        time.sleep(0.02)
    return time.monotonic() - started


def test_another_warm_container_serves_a_put_agent_within_the_staleness_bound(messages_fn, other_container):
    run, name = messages_fn.container.run, fresh_name("Stale")

    def served(check) -> bool:
        run(other_container.before_request(name))
        return check()

    assert call(messages_fn, "PUT", f"/agents/{name}", {"name": name, "bio": "first"})[0] == 201
    waited_new = _until(lambda: served(lambda: other_container.has_agent(name)), MISS_S + 2)
    assert call(messages_fn, "PATCH", f"/agents/{name}", {"bio": "second"})[0] == 200
    waited_changed = _until(
        lambda: served(lambda: other_container.get_agent(name).character.bio == ["second"]), INTERVAL_S + 2
    )
    assert call(messages_fn, "DELETE", f"/agents/{name}")[0] == 200
    waited_gone = _until(lambda: served(lambda: not other_container.has_agent(name)), INTERVAL_S + 2)
    print(f"staleness: new {waited_new:.3f} s, changed {waited_changed:.3f} s, disabled {waited_gone:.3f} s")
    assert waited_new <= MISS_S + 0.5 and waited_changed <= INTERVAL_S + 0.5 and waited_gone <= INTERVAL_S + 0.5
