"""The facts routes through the HTTP function's handler, with real API Gateway events."""

from __future__ import annotations

import json
import uuid

import pytest

from core.embeddings.request import EmbeddingRequest
from core.embeddings.worker import EmbeddingWorker
from core.types import ChannelType
from core.types.memory import content_hash
from tests.factories import FakeContext, http_event


@pytest.fixture(scope="module")
def api(messages_fn):
    """``call(method, path, body=None, query=None) -> (status, json)`` through the function's handler."""

    def call(method, path, body=None, query=None):
        response = messages_fn.handler(http_event(method, path, body, query), FakeContext())
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    return call


@pytest.fixture
def room(messages_fn):
    """A fresh group room of Eliza's with two people in it: (room_id, {name: entity_id})."""
    runtime = messages_fn.orchestrator.runtime("eliza")
    room_id, people = uuid.uuid4(), {"billytwowilly": uuid.uuid4(), "bob2": uuid.uuid4()}
    for name, entity in people.items():
        messages_fn.container.run(
            runtime.ensure_connection(
                entity_id=entity, room_id=room_id, user_name=name, source="irc", channel_type=ChannelType.GROUP
            )
        )
    return room_id, people


def kernel(room_id, **changes):
    return {
        "roomId": str(room_id),
        "text": "billytwowilly runs kernel 2.6.8.1-3-686",
        "subject": "billytwowilly",
        "predicate": "runs kernel",
        "object": "2.6.8.1-3-686",
        "confidence": 0.6,
        **changes,
    }


def test_a_new_fact_is_created_and_queued_for_embedding(api, room, sqs_server, purge):
    room_id, people = room
    status, fact = api(
        "POST", "/agents/eliza/facts", kernel(room_id, entityId=str(people["billytwowilly"]), kind="status")
    )
    assert status == 201
    assert (fact["text"], fact["subject"], fact["predicate"], fact["object"]) == (
        "billytwowilly runs kernel 2.6.8.1-3-686",
        "billytwowilly",
        "runs kernel",
        "2.6.8.1-3-686",
    )
    assert (fact["confidence"], fact["mentions"], fact["kind"], fact["source"]) == (0.6, 1, "status", "api")
    assert fact["roomId"] == str(room_id) and fact["entityId"] == str(people["billytwowilly"])
    client, urls, _ = sqs_server
    low = [
        json.loads(m["Body"])
        for m in client.receive_message(QueueUrl=urls["low"], MaxNumberOfMessages=10).get("Messages", [])
    ]
    assert [r["memoryId"] for r in low] == [fact["id"]]


def test_the_same_fact_again_raises_its_confidence(api, room):
    room_id, _ = room
    status, first = api("POST", "/agents/Eliza/facts", kernel(room_id))
    assert status == 201
    status, again = api(
        "POST",
        "/agents/eliza/facts",
        kernel(room_id, text="BillyTwoWilly runs kernel 2.6.8.1-3-686.", subject="BillyTwoWilly"),
    )
    assert status == 200
    assert again["id"] == first["id"] and again["text"] == first["text"]
    assert again["confidence"] == pytest.approx(0.84) and again["mentions"] == 2


def test_a_triple_alone_makes_the_text_and_confidence_defaults_to_one(api, room):
    room_id, _ = room
    status, fact = api(
        "POST",
        "/agents/eliza/facts",
        {"roomId": str(room_id), "subject": "bob2", "predicate": "recommends", "object": "build-essential"},
    )
    assert status == 201 and fact["text"] == "bob2 recommends build-essential" and fact["confidence"] == 1.0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "a fact"}, "roomId"),
        ({"roomId": "{room}"}, "body"),
        ({"roomId": "{room}", "subject": "a", "predicate": "b"}, "body"),
        ({"roomId": "{room}", "text": "a fact", "confidence": 0}, "confidence"),
        ({"roomId": "{room}", "text": "a fact", "confidence": 1.5}, "confidence"),
        ({"roomId": "{room}", "text": "   "}, "text"),
        ({"roomId": "{room}", "text": "a\u0000b"}, "text"),
        ({"roomId": "{room}", "text": "a fact", "kind": "rumour"}, "kind"),
        ({"roomId": "{room}", "text": "a fact", "tags": ["x"]}, "tags"),
        ({"roomId": "not-a-uuid", "text": "a fact"}, "roomId"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(api, room, body, field):
    room_id, _ = room
    body = {k: (str(room_id) if v == "{room}" else v) for k, v in body.items()}
    status, error = api("POST", "/agents/eliza/facts", body)
    assert status == 422 and error["error"] == "validation_error"
    assert field in error["message"]


def test_unknown_agent_room_or_entity_is_404(api, room):
    room_id, _ = room
    assert api("POST", "/agents/nobody/facts", kernel(room_id))[0] == 404
    assert api("POST", "/agents/eliza/facts", kernel(uuid.uuid4()))[0] == 404
    status, error = api("POST", "/agents/eliza/facts", kernel(room_id, entityId=str(uuid.uuid4())))
    assert status == 404 and "entity" in error["message"]
    assert api("GET", "/agents/nobody/facts")[0] == 404


def test_a_rooms_facts_are_listed_newest_first_in_pages(api, room):
    room_id, _ = room
    texts = ["bob2 uses Debian", "billytwowilly uses Synaptic", "mdz maintains MythTV packages"]
    for text in texts:
        assert api("POST", "/agents/eliza/facts", {"roomId": str(room_id), "text": text})[0] == 201

    status, page = api("GET", "/agents/eliza/facts", query={"roomId": str(room_id), "limit": "2"})
    assert status == 200 and [f["text"] for f in page["facts"]] == texts[::-1][:2]
    status, rest = api("GET", "/agents/eliza/facts", query={"roomId": str(room_id), "cursor": page["nextCursor"]})
    assert [f["text"] for f in rest["facts"]] == texts[:1] and rest["nextCursor"] is None

    status, error = api("GET", "/agents/eliza/facts", query={"roomId": str(room_id), "cursor": "bogus"})
    assert status == 422 and error["fields"][0]["field"] == "cursor"
    assert api("GET", "/agents/eliza/facts", query={"limit": "0"})[0] == 422
    assert api("GET", "/agents/eliza/facts", query={"roomId": "nope"})[0] == 422


def test_a_query_returns_the_nearest_facts(api, room, messages_fn, scripted):
    room_id, people = room
    texts = [
        "billytwowilly installed linux-headers for his kernel",
        "bob2 likes bagels with cheese",
        "mdz says there are MythTV packages for Ubuntu",
    ]
    created = [api("POST", "/agents/eliza/facts", {"roomId": str(room_id), "text": t})[1] for t in texts]
    container = messages_fn.container

    async def embed(batch: list[str]) -> list[list[float]]:
        return [scripted.vector(t) for t in batch]

    requests = [
        EmbeddingRequest(memory_id=f["id"], agent_id=f["agentId"], content_hash=content_hash(f["text"]))
        for f in created
    ]
    container.run(EmbeddingWorker(container.adapter, embed, "test").process(requests))

    status, found = api(
        "GET", "/agents/eliza/facts", query={"roomId": str(room_id), "query": "linux kernel headers", "limit": "2"}
    )
    assert status == 200 and found["facts"][0]["text"] == texts[0]
    assert 0 < found["facts"][0]["similarity"] <= 1 and len(found["facts"]) <= 2
    status, error = api("GET", "/agents/eliza/facts", query={"query": "kernel", "cursor": "abc"})
    assert status == 422 and error["fields"][0]["field"] == "cursor"
