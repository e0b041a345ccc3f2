"""The documents router in the API's own resolver (``functions.api.app.create_app``), with an orchestrator of its own.

Real API Gateway v2 events, real Postgres, moto's SQS server: the handlers run as the
Lambda runs them, synchronously, on a loop kept for the app (``Container.run``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import pytest

from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.embeddings.queue import EmbeddingQueue
from core.embeddings.request import EmbeddingRequest
from core.knowledge.provider import knowledge_plugin
from core.model_providers.scripted import ScriptedModels
from core.orchestrator import Orchestrator
from core.settings import Settings
from core.settings.identity import IdentitySettings
from functions.api.context import Api, serving
from functions.api.identity import caller_from_event
from tests.factories import FakeContext, http_event


class Harness:
    """The API's resolver, its loop (as ``Container``) and an orchestrator with two agents."""

    def __init__(self, database_url: str, sqs_client, queue_urls, app_module) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool = create_pool(Settings(database_url=database_url, pool_max_size=2))
        self.run(self.pool.open())
        self.sqs, self.queue_urls = sqs_client, queue_urls
        self.orchestrator = Orchestrator(
            PostgresAdapter(self.pool),
            embedding_queue=EmbeddingQueue(sqs_client, queue_urls),
            plugins=[bootstrap, ScriptedModels().plugin(), knowledge_plugin],
        )
        tag = uuid.uuid4().hex[:10]
        self.alice, self.bob = f"alice-{tag}", f"bob-{tag}"
        self.run(
            self.orchestrator.add_agents(
                [
                    load_character_dict(
                        {
                            "name": self.alice,
                            "settings": {
                                "KNOWLEDGE_MAX_DOCUMENT_BYTES": 200,
                                "KNOWLEDGE_CHUNK_CHARS": 60,
                                "KNOWLEDGE_CHUNK_OVERLAP_CHARS": 0,
                            },
                        }
                    ),
                    load_character_dict({"name": self.bob}),
                ]
            )
        )
        self.app = app_module.create_app(app_module.observability)
        self.context = Api(
            container=self,
            orchestrator=self.orchestrator,  # type: ignore[arg-type]
            observability=app_module.observability,
        )

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def call(self, method: str, path: str, body=None, query=None, *, context: bool = True):
        event = http_event(method, path, body, query)
        event["headers"] = {**event["headers"], "content-type": "application/json"}
        if context:  # what functions.api.app.handler does around every resolve
            with serving(self.context, caller_from_event(event, IdentitySettings())):
                response = self.app.resolve(event, FakeContext())
        else:
            response = self.app.resolve(event, FakeContext())
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    def queued(self, priority: str = "low") -> list[EmbeddingRequest]:
        found = []
        while got := self.sqs.receive_message(QueueUrl=self.queue_urls[priority], MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            found += [EmbeddingRequest.model_validate(json.loads(m["Body"])) for m in got]
            for m in got:
                self.sqs.delete_message(QueueUrl=self.queue_urls[priority], ReceiptHandle=m["ReceiptHandle"])
        return found

    def close(self) -> None:
        self.run(self.pool.close())
        self.loop.close()


@pytest.fixture
def api(database_url, sqs_server, messages_fn):
    # Fresh queues on the session's moto server. Not moto's in-process mock_aws: it shares its
    # state with that server (same process) and resets it, so the messages function's queues
    # would vanish under the tests that run after these.
    client = sqs_server[0]
    urls = {
        p: client.create_queue(QueueName=f"docs-{p}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        for p in ("high", "normal", "low")
    }
    harness = Harness(database_url, client, urls, messages_fn)
    try:
        yield harness
    finally:
        harness.close()


NOTES = "The kettle is in the kitchen.\n\nThe spare key hangs by the door.\n\nBins go out on Tuesday."


def test_post_text_adds_then_the_same_text_is_unchanged(api):
    status, body = api.call("POST", f"/agents/{api.alice}/documents", {"text": NOTES, "name": "house.md"})
    assert status == 201
    assert body["status"] == "added" and body["name"] == "house.md" and body["shared"] is False
    assert (body["fragmentCount"], body["queued"], body["size"]) == (2, 2, len(NOTES))
    requests = api.queued("low")
    assert len(requests) == 2 and {r.priority for r in requests} == {"low"}
    assert api.queued("high") == api.queued("normal") == []
    again_status, again = api.call("POST", f"/agents/{api.alice}/documents", {"text": NOTES, "name": "house.md"})
    assert (again_status, again["status"], again["id"]) == (200, "unchanged", body["id"])


def test_post_with_the_same_name_and_new_text_replaces(api):
    _, first = api.call("POST", f"/agents/{api.alice}/documents", {"text": NOTES, "name": "house.md"})
    status, body = api.call(
        "POST", f"/agents/{api.alice}/documents", {"text": "Bins go out on Friday now.", "name": "house.md"}
    )
    assert (status, body["status"], body["id"], body["fragmentCount"]) == (200, "replaced", first["id"], 1)
    _, document = api.call("GET", f"/agents/{api.alice}/documents/{first['id']}", query={"fragments": "true"})
    assert document["text"] == "Bins go out on Friday now."
    assert [f["text"] for f in document["fragments"]] == ["Bins go out on Friday now."]


def test_post_a_file_keeps_its_content_type_and_metadata(api):
    encoded = base64.b64encode("# Café menu\n\nCroissants at eight.".encode()).decode()
    status, body = api.call(
        "POST",
        f"/agents/{api.bob}/documents",
        {"file": encoded, "name": "menu.md", "contentType": "text/markdown", "metadata": {"tags": ["food"]}},
    )
    assert status == 201
    _, document = api.call("GET", f"/agents/{api.bob}/documents/{body['id']}")
    assert document["text"] == "# Café menu\n\nCroissants at eight."
    assert (document["contentType"], document["metadata"], document["origin"]) == (
        "text/markdown",
        {"tags": ["food"]},
        "api",
    )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"file": base64.b64encode(b"caf\xe9").decode()}, "file", "not UTF-8 text (byte 3)"),
        ({"file": "not base64!!"}, "file", "not base64"),
        ({"file": base64.b64encode(b"\x00\x01binary").decode()}, "file", "NUL"),
        ({"text": "   \n\n  "}, "text", "empty document"),
    ],
)
def test_documents_that_are_not_text_are_422_naming_the_field(api, body, field, message):
    status, answer = api.call("POST", f"/agents/{api.bob}/documents", body)
    assert status == 422 and answer["error"] == "validation_error"
    assert answer["fields"][0]["field"] == field and message in answer["fields"][0]["message"]
    assert api.queued() == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": ""},
        {"text": "a", "file": "YQ=="},
        {"text": "a", "unknown": 1},
        {"text": "a", "name": "  "},
        {"text": "a", "contentType": "not a type"},
    ],
)
def test_bad_bodies_are_422(api, body):
    status, answer = api.call("POST", f"/agents/{api.bob}/documents", body)
    assert status == 422 and answer["fields"]


def test_a_document_over_the_limit_is_413(api):
    status, answer = api.call("POST", f"/agents/{api.alice}/documents", {"text": "x" * 201})
    assert status == 413 and answer["error"] == "payload_too_large" and "limit is 200" in answer["message"]
    encoded = base64.b64encode(b"y" * 300).decode()
    assert api.call("POST", f"/agents/{api.alice}/documents", {"file": encoded})[0] == 413
    assert api.call("POST", f"/agents/{api.alice}/documents", {"text": "x" * 200})[0] == 201


def test_list_pages_without_text_and_refuses_a_bad_cursor(api):
    for i in range(3):
        api.call("POST", f"/agents/{api.bob}/documents", {"text": f"Fact number {i}.", "name": f"f{i}.txt"})
    seen, cursor = [], None
    while True:
        status, page = api.call(
            "GET", f"/agents/{api.bob}/documents", query={"limit": "1", **({"cursor": cursor} if cursor else {})}
        )
        assert status == 200
        seen += [d for d in page["documents"] if not d["shared"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert [d["name"] for d in seen] == ["f2.txt", "f1.txt", "f0.txt"]
    assert all("text" not in d and d["fragmentCount"] == 1 for d in seen)
    status, answer = api.call("GET", f"/agents/{api.bob}/documents", query={"cursor": "garbage"})
    assert status == 422 and answer["fields"][0]["field"] == "cursor"
    assert api.call("GET", f"/agents/{api.bob}/documents", query={"limit": "0"})[0] == 422


def test_private_documents_are_invisible_to_other_agents_shared_ones_are_not(api):
    _, private = api.call("POST", f"/agents/{api.alice}/documents", {"text": "Alice's secret.", "name": "s.txt"})
    _, shared = api.call(
        "POST",
        f"/agents/{api.alice}/documents",
        {"text": f"Shared memo {uuid.uuid4()}.", "name": "memo.txt", "shared": True},
    )
    assert shared["shared"] is True
    assert api.call("GET", f"/agents/{api.bob}/documents/{private['id']}")[0] == 404
    assert api.call("DELETE", f"/agents/{api.bob}/documents/{private['id']}")[0] == 404
    assert api.call("GET", f"/agents/{api.alice}/documents/{private['id']}")[0] == 200
    status, seen = api.call("GET", f"/agents/{api.bob}/documents/{shared['id']}")
    assert status == 200 and seen["shared"] is True
    names = {d["id"] for d in api.call("GET", f"/agents/{api.bob}/documents", query={"limit": "500"})[1]["documents"]}
    assert shared["id"] in names and private["id"] not in names
    assert api.call("DELETE", f"/agents/{api.bob}/documents/{shared['id']}")[0] == 204
    assert api.call("GET", f"/agents/{api.alice}/documents/{shared['id']}")[0] == 404


def test_delete_then_get_is_404(api):
    _, body = api.call("POST", f"/agents/{api.bob}/documents", {"text": "Short-lived."})
    status, answer = api.call("DELETE", f"/agents/{api.bob}/documents/{body['id']}")
    assert (status, answer) == (204, None)
    assert api.call("GET", f"/agents/{api.bob}/documents/{body['id']}")[0] == 404
    assert api.call("DELETE", f"/agents/{api.bob}/documents/{body['id']}")[0] == 404


def test_unknown_ids_and_agents(api):
    assert api.call("GET", f"/agents/{api.bob}/documents/{uuid.uuid4()}")[0] == 404
    status, answer = api.call("GET", f"/agents/{api.bob}/documents/not-a-uuid")
    assert status == 422 and answer["fields"][0]["field"] == "document_id"
    assert api.call("POST", "/agents/nobody-here/documents", {"text": "x"})[0] == 404
    assert api.call("GET", "/agents/nobody-here/documents")[0] == 404


def test_a_route_resolved_outside_the_handler_is_a_500_without_internals(api):
    status, body = api.call("GET", f"/agents/{api.bob}/documents", context=False)
    assert (status, body) == (500, {"error": "internal_error", "message": "internal server error"})
