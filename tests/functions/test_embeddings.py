from __future__ import annotations

import json
import uuid

from core.embeddings.request import EmbeddingRequest
from core.types import ModelType
from tests.factories import FakeContext, http_event, sqs_event

REPLY = "<response><actions>REPLY</actions><text>ok</text></response>"


def _posted_message(messages_fn, scripted, text: str) -> tuple[str, dict]:
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    response = messages_fn.handler(http_event("POST", "/agents/eliza/messages", {"text": text}), FakeContext())
    return json.loads(response["body"])["messageId"], json.loads(response["body"])


def _request_body(messages_fn, message_id: str, text: str) -> str:
    agent = messages_fn.orchestrator.get_agent("eliza")
    from core.types.memory import content_hash

    return EmbeddingRequest(
        memory_id=uuid.UUID(message_id), agent_id=agent.agent_id, content_hash=content_hash(text), priority="high"
    ).model_dump_json(by_alias=True)


def _embedded_hash(fn, memory_id: str):
    targets = fn.container.run(fn.container.adapter.get_embedding_targets([uuid.UUID(memory_id)]))
    return targets[0].embedded_hash if targets else None


def test_a_bad_record_fails_alone(messages_fn, embeddings_fn, scripted, purge):
    message_id, _ = _posted_message(messages_fn, scripted, "embed me")
    event = sqs_event([_request_body(messages_fn, message_id, "embed me"), "not json", '{"memoryId": "x"}'])
    result = embeddings_fn.handler(event, FakeContext())
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed == {event["Records"][1]["messageId"], event["Records"][2]["messageId"]}
    assert _embedded_hash(embeddings_fn, message_id) is not None


def test_one_model_call_per_batch_and_duplicates_do_nothing(messages_fn, embeddings_fn, scripted, purge):
    ids = [_posted_message(messages_fn, scripted, f"batch text {i}")[0] for i in range(3)]
    bodies = [_request_body(messages_fn, m, f"batch text {i}") for i, m in enumerate(ids)]
    scripted.calls.clear()
    assert embeddings_fn.handler(sqs_event(bodies + bodies[:1]), FakeContext()) == {"batchItemFailures": []}
    embed_calls = [p for t, p in scripted.calls if t is ModelType.TEXT_EMBEDDING]
    assert len(embed_calls) == 1 and len(embed_calls[0]["texts"]) == 3

    scripted.calls.clear()
    assert embeddings_fn.handler(sqs_event(bodies), FakeContext()) == {"batchItemFailures": []}
    assert scripted.calls == []


def test_stale_request_is_acknowledged(messages_fn, embeddings_fn, scripted, purge):
    message_id, _ = _posted_message(messages_fn, scripted, "current text")
    stale = _request_body(messages_fn, message_id, "an older text")
    gone = _request_body(messages_fn, str(uuid.uuid4()), "deleted")
    assert embeddings_fn.handler(sqs_event([stale, gone]), FakeContext()) == {"batchItemFailures": []}
    assert _embedded_hash(embeddings_fn, message_id) is None


def test_powertools_sample_event_records_fail_as_not_requests(embeddings_fn):
    """The unmodified Powertools SQS sample carries bodies that are not embedding requests."""
    from tests.factories import _event

    event = _event("pt-py.sqsEvent.json")
    result = embeddings_fn.handler(event, FakeContext())
    assert {f["itemIdentifier"] for f in result["batchItemFailures"]} == {r["messageId"] for r in event["Records"]}
