"""A document added over HTTP is queued at low priority at once, and its status moves from queued to
embedded when the embeddings function runs on those very SQS messages (moto's server, real Postgres)."""

from __future__ import annotations

import json
import uuid

import pytest

from core.agent_refresh import RefreshSettings
from core.db.adapter import AgentRecord
from tests.factories import FakeContext, http_event, sqs_event

TEXT = " ".join(f"Fact number {i}: the greenhouse door sticks when it rains on day {i}." for i in range(12))


@pytest.fixture
def agent(messages_fn, monkeypatch):
    """A fresh agent stored in the table, served at once (no read has to wait for the miss interval)."""
    monkeypatch.setattr(
        messages_fn.orchestrator.refresher, "settings", RefreshSettings(interval_s=5.0, miss_interval_s=0.0)
    )
    name = f"Status-{uuid.uuid4().hex[:8]}"
    record = AgentRecord(
        uuid.uuid4(),
        name,
        {"name": name, "bio": ["keeps a greenhouse log"], "settings": {"KNOWLEDGE_CHUNK_CHARS": 200}},
    )
    messages_fn.container.run(messages_fn.container.adapter.upsert_agents([record]))
    return name


def call(fn, method, path, body=None):
    response = fn.handler(http_event(method, path, body), FakeContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def receive_all(client, url) -> list[dict]:
    messages = []
    while got := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        messages += got
        for message in got:
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def test_an_added_document_is_queued_low_then_embedded_by_the_embeddings_function(
    messages_fn, embeddings_fn, sqs_server, purge, scripted, agent
):
    client, urls, _ = sqs_server
    status, added = call(messages_fn, "POST", f"/agents/{agent}/documents", {"name": "log.md", "text": TEXT})
    assert status == 201 and added["fragmentCount"] > 3 and added["queued"] == added["fragmentCount"]
    fragments = added["fragmentCount"]

    status, before = call(messages_fn, "GET", f"/agents/{agent}/documents/status")
    assert status == 200 and before["private"] == {
        "fragments": fragments,
        "embedded": 0,
        "queued": fragments,
        "failed": 0,
    }
    assert before["failedAfterSeconds"] == 86_400.0

    low = receive_all(client, urls["low"])
    assert len(low) == fragments and receive_all(client, urls["high"]) == receive_all(client, urls["normal"]) == []
    response = embeddings_fn.handler(sqs_event([m["Body"] for m in low], queue="fn-test-embeddings-low"), FakeContext())
    assert response == {"batchItemFailures": []}

    status, after = call(messages_fn, "GET", f"/agents/{agent}/documents/status")
    assert status == 200 and after["private"] == {
        "fragments": fragments,
        "embedded": fragments,
        "queued": 0,
        "failed": 0,
    }
    assert after["embedded"] == after["fragments"] - after["shared"]["fragments"] + after["shared"]["embedded"]


def test_the_status_of_an_unknown_agent_is_404(messages_fn):
    status, body = call(messages_fn, "GET", "/agents/nobody-here-at-all/documents/status")
    assert status == 404 and body["error"] == "not_found"


def test_a_document_id_route_still_answers_beside_the_status_route(messages_fn, agent):
    status, added = call(messages_fn, "POST", f"/agents/{agent}/documents", {"name": "one.md", "text": "One line."})
    assert status == 201
    status, document = call(messages_fn, "GET", f"/agents/{agent}/documents/{added['id']}")
    assert status == 200 and document["name"] == "one.md"
    assert call(messages_fn, "GET", f"/agents/{agent}/documents/not-a-uuid")[0] == 422
