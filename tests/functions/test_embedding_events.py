"""The embeddings function delivers EMBEDDING_GENERATION_COMPLETED / _FAILED to the memory's agent's handlers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core.embeddings.request import EmbeddingRequest
from core.events import EventType
from core.types import ModelType
from core.types.memory import content_hash
from tests.factories import FakeContext, http_event, sqs_event

REPLY = "<response><actions>REPLY</actions><text>ok</text></response>"
EMBEDDING_EVENTS = (EventType.EMBEDDING_GENERATION_COMPLETED, EventType.EMBEDDING_GENERATION_FAILED)


@pytest.fixture
def heard(embeddings_fn) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Eliza's handlers in the embeddings function for both events, removed after the test."""
    seen: list[tuple[str, dict[str, Any]]] = []
    events = embeddings_fn.orchestrator.get_agent("eliza").events
    handlers = {}
    for name in EMBEDDING_EVENTS:

        async def record(payload, name=name):
            seen.append((name, dict(payload)))

        handlers[name] = record
        events.register(name, record)
    try:
        yield seen
    finally:
        for name, handler in handlers.items():
            events._handlers[name].remove(handler)  # the bus is the process's: leave it as found


def _posted(messages_fn, scripted, text: str) -> str:
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    response = messages_fn.handler(http_event("POST", "/agents/eliza/messages", {"text": text}), FakeContext())
    return json.loads(response["body"])["messageId"]


def _request(messages_fn, message_id: str, text: str) -> str:
    agent = messages_fn.orchestrator.get_agent("eliza")
    request = EmbeddingRequest(
        memory_id=uuid.UUID(message_id), agent_id=agent.agent_id, content_hash=content_hash(text), priority="high"
    )
    return request.model_dump_json(by_alias=True)


def test_a_stored_vector_is_announced_to_the_agents_plugins_with_the_memory(
    messages_fn, embeddings_fn, scripted, heard, purge
):
    text = f"tell my plugins {uuid.uuid4().hex[:6]}"
    message_id = _posted(messages_fn, scripted, text)
    result = embeddings_fn.handler(sqs_event([_request(messages_fn, message_id, text)]), FakeContext())
    assert result == {"batchItemFailures": []}
    [(name, payload)] = heard
    assert name == EventType.EMBEDDING_GENERATION_COMPLETED
    assert payload["runtime"].agent_id == embeddings_fn.orchestrator.get_agent("eliza").agent_id
    assert (str(payload["memory"].id), payload["memory"].text) == (message_id, text)
    assert (payload["source"], payload["error"], payload["memoryId"]) == ("embeddings", None, message_id)


def test_a_refused_text_is_announced_as_failed_with_the_error(messages_fn, embeddings_fn, scripted, heard, purge):
    text = f"refuse me {uuid.uuid4().hex[:6]}"
    message_id = _posted(messages_fn, scripted, text)
    scripted.refuse(text)
    event = sqs_event([_request(messages_fn, message_id, text)])
    result = embeddings_fn.handler(event, FakeContext())
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [event["Records"][0]["messageId"]]
    [(name, payload)] = heard
    assert name == EventType.EMBEDDING_GENERATION_FAILED
    assert str(payload["memory"].id) == message_id and payload["error"]


def test_a_duplicate_request_announces_nothing(messages_fn, embeddings_fn, scripted, heard, purge):
    text = f"only once {uuid.uuid4().hex[:6]}"
    body = _request(messages_fn, _posted(messages_fn, scripted, text), text)
    embeddings_fn.handler(sqs_event([body]), FakeContext())
    heard.clear()
    embeddings_fn.handler(sqs_event([body]), FakeContext())
    assert heard == []
