"""Who is calling, and what they may touch: the caller comes from the verified token, never the body.

Each attack of the identity issue is replayed through the real handler, as the caller who
should not succeed, and the rows it could have written are counted before and after.
"""

from __future__ import annotations

import json
import uuid

import pytest

from core.types import ModelType
from functions.api.identity import Caller, Role
from tests.factories import ADMIN, TEST_ISSUER, FakeContext, connector, http_event, jwt_authorizer, user

REPLY = "<response><thought>hi</thought><actions>REPLY</actions><text>Hello there.</text></response>"


def call(fn, method, path, body=None, query=None, *, caller=ADMIN):
    response = fn.handler(http_event(method, path, body, query, caller=caller), FakeContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def rows(fn) -> dict[str, int]:
    async def count() -> dict[str, int]:
        async with fn.container.pool.connection() as conn:
            found = {}
            for table in ("memories", "entities", "rooms", "participants", "tasks"):
                row = await (await conn.execute(f"SELECT count(*) AS n FROM {table}")).fetchone()  # noqa: S608
                found[table] = row["n"]
            return found

    return fn.container.run(count())


@pytest.fixture
def alice_room(messages_fn, scripted):
    """Alice says hello in her DM room; returns the room id."""
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    status, body = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "my secret plan"}, caller=user("alice"))
    assert status == 200
    return body["roomId"]


def test_a_request_without_a_verified_caller_is_401_and_writes_nothing(messages_fn):
    before = rows(messages_fn)
    status, body = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "hi"}, caller=None)
    assert (status, body["error"]) == (401, "unauthorized")
    assert rows(messages_fn) == before


def test_a_token_without_sub_is_not_a_caller(messages_fn):
    authorizer = {"jwt": {"claims": {"iss": "https://issuer.test"}, "scopes": None}}
    assert call(messages_fn, "GET", "/agents", caller=authorizer)[0] == 401


def test_health_answers_without_a_caller(messages_fn):
    assert call(messages_fn, "GET", "/health", caller=None)[0] in (200, 503)


def test_a_user_cannot_read_another_users_history(messages_fn, alice_room):
    status, body = call(messages_fn, "GET", f"/agents/eliza/rooms/{alice_room}/messages", caller=user("mallory"))
    assert (status, body["error"]) == (404, "not_found")
    status, body = call(messages_fn, "GET", f"/agents/eliza/rooms/{alice_room}/messages", caller=user("alice"))
    assert status == 200 and "my secret plan" in [m["content"]["text"] for m in body["messages"]]


def test_a_user_cannot_post_into_another_users_room(messages_fn, alice_room, scripted):
    before = rows(messages_fn)
    status, _ = call(
        messages_fn, "POST", "/agents/eliza/messages", {"text": "hijack", "roomId": alice_room}, caller=user("mallory")
    )
    assert status == 404
    assert rows(messages_fn) == before


def test_a_user_cannot_speak_as_someone_else(messages_fn):
    before = rows(messages_fn)
    status, body = call(
        messages_fn, "POST", "/agents/eliza/messages", {"text": "hi", "entityId": str(uuid.uuid4())}, caller=user("eve")
    )
    assert (status, body["error"], body["field"]) == (403, "forbidden", "entityId")
    assert rows(messages_fn) == before


def test_a_user_cannot_claim_another_source(messages_fn):
    status, body = call(
        messages_fn, "POST", "/agents/eliza/messages", {"text": "hi", "source": "discord"}, caller=user("eve")
    )
    assert (status, body["field"]) == (403, "source")


def test_two_users_get_different_dm_rooms_that_do_not_follow_from_public_ids(messages_fn, scripted):
    from core.uuid import create_unique_uuid

    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, first = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "one"}, caller=user("bob"))
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, second = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "two"}, caller=user("carol"))
    assert first["roomId"] != second["roomId"]
    agent_id = messages_fn.orchestrator.get_agent("eliza").agent_id
    for name, body in (("bob", first), ("carol", second)):
        entity_key = Caller(subject=f"{TEST_ISSUER}|user-{name}", role=Role.USER).entity_key
        old_public_derivation = create_unique_uuid(agent_id, f"dm:{entity_key}")
        assert uuid.UUID(body["roomId"]) != old_public_derivation
        assert uuid.UUID(body["roomId"]) == messages_fn.orchestrator.dm_room_id(agent_id, entity_key)


def test_the_same_user_keeps_one_dm_room(messages_fn, scripted):
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, first = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "one"}, caller=user("dave"))
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, second = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "two"}, caller=user("dave"))
    assert first["roomId"] == second["roomId"]


def test_the_same_subject_from_another_issuer_is_another_user(messages_fn, scripted):
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, mine = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "a"}, caller=user("frank"))
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    other = jwt_authorizer("user-frank", iss="https://other-issuer.test")
    _, theirs = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "b"}, caller=other)
    assert mine["roomId"] != theirs["roomId"]


def test_search_without_a_room_stays_in_the_callers_own_room(messages_fn, alice_room):
    status, body = call(
        messages_fn, "POST", "/agents/eliza/memories/search", {"query": "my secret plan"}, caller=user("mallory")
    )
    assert status == 200
    assert "my secret plan" not in [m["content"].get("text") for m in body["memories"]]
    status, _ = call(
        messages_fn,
        "POST",
        "/agents/eliza/memories/search",
        {"query": "plan", "roomId": alice_room},
        caller=user("mallory"),
    )
    assert status == 404


def test_a_user_may_not_search_the_operators_tables(messages_fn):
    status, body = call(
        messages_fn, "POST", "/agents/eliza/memories/search", {"query": "x", "table": "documents"}, caller=user("eve")
    )
    assert (status, body["field"]) == (403, "table")


def test_a_user_cannot_add_facts_to_another_users_room(messages_fn, alice_room):
    before = rows(messages_fn)
    status, _ = call(
        messages_fn,
        "POST",
        "/agents/eliza/facts",
        {"roomId": alice_room, "text": "alice owes mallory money"},
        caller=user("mallory"),
    )
    assert status == 404
    assert rows(messages_fn) == before
    status, body = call(messages_fn, "GET", "/agents/eliza/facts", query={"roomId": alice_room}, caller=user("mallory"))
    assert status == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/agents/eliza/documents", None),
        ("POST", "/agents/eliza/documents", {"text": "doc", "name": "d.md"}),
        ("GET", "/agents/eliza/documents/status", None),
        ("GET", f"/agents/eliza/documents/{uuid.uuid4()}", None),
        ("DELETE", f"/agents/eliza/documents/{uuid.uuid4()}", None),
        ("GET", "/agents/eliza/tasks", None),
        ("POST", "/agents/eliza/tasks", {"name": "t"}),
    ],
)
def test_admin_surfaces_refuse_users_and_connectors(messages_fn, method, path, body):
    before = rows(messages_fn)
    for caller in (user("eve"), connector("discord")):
        status, answer = call(messages_fn, method, path, body, caller=caller)
        assert (status, answer["error"]) == (403, "forbidden")
    assert rows(messages_fn) == before


def test_users_see_an_agents_public_face_and_admins_its_character_without_secret_values(messages_fn):
    status, public = call(messages_fn, "GET", "/agents/eliza", caller=user("eve"))
    assert status == 200
    assert set(public) == {"id", "name", "username", "bio", "avatar"}
    status, full = call(messages_fn, "GET", "/agents/eliza")
    assert status == 200 and "character" in full and "secretNames" in full
    assert "secrets" not in full["character"]


def test_a_connector_speaks_for_its_platforms_users_in_rooms_of_its_source(messages_fn, scripted):
    discord_user = str(uuid.uuid4())
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    status, body = call(
        messages_fn,
        "POST",
        "/agents/eliza/messages",
        {"text": "from discord", "entityId": discord_user},
        caller=connector("discord"),
    )
    assert status == 200
    room = body["roomId"]
    assert call(messages_fn, "GET", f"/agents/eliza/rooms/{room}/messages", caller=connector("discord"))[0] == 200
    # Another platform's connector does not see it, nor may it speak for discord.
    assert call(messages_fn, "GET", f"/agents/eliza/rooms/{room}/messages", caller=connector("telegram"))[0] == 404
    status, answer = call(
        messages_fn, "POST", "/agents/eliza/messages", {"text": "x", "source": "discord"}, caller=connector("telegram")
    )
    assert (status, answer["field"]) == (403, "source")


def test_a_connectors_user_is_not_the_token_user_with_the_same_id(messages_fn, scripted):
    """Namespaced by source: a connector cannot reach a web user's room by naming their id."""
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, web = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "web"}, caller=user("gina"))
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    gina_key = str(uuid.UUID(int=0))
    _, bridged = call(
        messages_fn, "POST", "/agents/eliza/messages", {"text": "x", "entityId": gina_key}, caller=connector("slack")
    )
    assert web["roomId"] != bridged["roomId"]
    assert (
        call(messages_fn, "GET", f"/agents/eliza/rooms/{web['roomId']}/messages", caller=connector("slack"))[0] == 404
    )


def test_an_admin_reads_any_room(messages_fn, alice_room):
    assert call(messages_fn, "GET", f"/agents/eliza/rooms/{alice_room}/messages")[0] == 200


def test_cognito_groups_as_api_gateway_passes_them_grant_admin(messages_fn):
    admin_by_group = jwt_authorizer("ops-1", **{"cognito:groups": "[ops admin]"})
    assert call(messages_fn, "GET", "/agents/eliza/tasks", caller=admin_by_group)[0] == 200


def test_an_iam_signed_call_is_an_admin(messages_fn):
    iam = {"iam": {"userArn": "arn:aws:iam::123456789012:user/ops", "callerId": "AIDA123"}}
    assert call(messages_fn, "GET", "/agents/eliza/tasks", caller=iam)[0] == 200


# -- idempotent posting -----------------------------------------------------------------------


def messages_in(fn, room_id) -> list[str]:
    async def texts() -> list[str]:
        async with fn.container.pool.connection() as conn:
            found = await (
                await conn.execute(
                    "SELECT content->>'text' AS t FROM memories WHERE room_id = %s AND type = 'messages'"
                    " ORDER BY created_at",
                    (uuid.UUID(room_id),),
                )
            ).fetchall()
            return [r["t"] for r in found]

    return fn.container.run(texts())


def post_with_key(fn, text, key, *, caller=None, header=True):
    event = http_event(
        "POST",
        "/agents/eliza/messages",
        {"text": text} if header else {"text": text, "messageId": key},
        caller=caller or user("ivy"),
    )
    if header:
        event["headers"]["idempotency-key"] = key
    response = fn.handler(event, FakeContext())
    return response, json.loads(response["body"])


def test_a_retry_with_the_same_idempotency_key_replays_the_stored_reply_without_a_model_call(messages_fn, scripted):
    key = str(uuid.uuid4())
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    first, body = post_with_key(messages_fn, "hello once", key)
    assert first["statusCode"] == 200
    # Nothing scripted: a second model call would fail the request.
    again, replay = post_with_key(messages_fn, "hello once", key)
    assert again["statusCode"] == 200
    assert again["headers"].get("Idempotent-Replayed") == "true"
    assert replay["mode"] == "replayed"
    assert (replay["messageId"], replay["responses"]) == (body["messageId"], body["responses"])
    assert messages_in(messages_fn, body["roomId"]).count("hello once") == 1


def test_a_client_message_id_works_like_the_header(messages_fn, scripted):
    key = str(uuid.uuid4())
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, body = post_with_key(messages_fn, "by body", key, header=False)
    _, replay = post_with_key(messages_fn, "by body", key, header=False)
    assert replay["mode"] == "replayed" and replay["messageId"] == body["messageId"]
    assert body["messageId"] != key  # namespaced by caller and agent, never the client's id itself


def test_a_retry_after_a_failed_model_call_runs_the_turn_once_more_on_the_stored_message(messages_fn, scripted):
    from core.errors import ModelError

    key = "retry-" + uuid.uuid4().hex
    scripted.script(ModelType.TEXT_LARGE, ModelError("down", provider="scripted", retryable=True))
    failed, _ = post_with_key(messages_fn, "are you there?", key)
    assert failed["statusCode"] == 502
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    ok, body = post_with_key(messages_fn, "are you there?", key)
    assert ok["statusCode"] == 200 and body["mode"] != "replayed" and body["didRespond"]
    assert messages_in(messages_fn, body["roomId"]).count("are you there?") == 1


def test_the_same_key_from_another_caller_is_another_message(messages_fn, scripted):
    key = str(uuid.uuid4())
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, mine = post_with_key(messages_fn, "same words", key, caller=user("jo"))
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, theirs = post_with_key(messages_fn, "same words", key, caller=user("kim"))
    assert theirs["mode"] != "replayed" and theirs["messageId"] != mine["messageId"]


def test_a_key_reused_for_another_text_is_a_422_and_stores_nothing(messages_fn, scripted):
    key = str(uuid.uuid4())
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    post_with_key(messages_fn, "first text", key)
    before = rows(messages_fn)
    response, body = post_with_key(messages_fn, "second text", key)
    assert response["statusCode"] == 422 and body["fields"][0]["field"] == "messageId"
    assert rows(messages_fn) == before


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\tkey", "ünïcode"])
def test_a_malformed_idempotency_key_is_a_422_naming_the_header(messages_fn, key):
    before = rows(messages_fn)
    response, body = post_with_key(messages_fn, "hi", key)
    assert response["statusCode"] == 422
    assert body["fields"][0]["field"] == "Idempotency-Key" and body["fields"][0]["location"] == "header"
    assert rows(messages_fn) == before


def test_both_a_message_id_and_the_header_is_a_422(messages_fn):
    event = http_event("POST", "/agents/eliza/messages", {"text": "x", "messageId": str(uuid.uuid4())}, caller=user())
    event["headers"]["idempotency-key"] = "k1"
    response = messages_fn.handler(event, FakeContext())
    assert response["statusCode"] == 422


def test_a_caller_lists_only_its_own_rooms(messages_fn, scripted):
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, mine = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "hello"}, caller=user("lena"))
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, theirs = call(messages_fn, "POST", "/agents/eliza/messages", {"text": "hello"}, caller=user("otto"))
    status, body = call(messages_fn, "GET", "/agents/eliza/rooms", caller=user("lena"))
    assert status == 200
    assert [r["id"] for r in body["rooms"]] == [mine["roomId"]]
    assert theirs["roomId"] not in {r["id"] for r in body["rooms"]}
    assert body["rooms"][0]["type"] == "DM" and body["rooms"][0]["source"] == "api"


def test_a_caller_with_no_conversation_has_no_rooms(messages_fn):
    assert call(messages_fn, "GET", "/agents/eliza/rooms", caller=user("newcomer")) == (200, {"rooms": []})
