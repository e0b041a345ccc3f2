from __future__ import annotations

import pytest

from core.errors import ConfigurationError
from core.knowledge import SHARED_KNOWLEDGE_ID, SHARED_KNOWLEDGE_NAME, KnowledgeSettings
from core.knowledge.documents import (
    DocumentError,
    DocumentStatus,
    DocumentTooLargeError,
    add_document,
    decode_document,
    delete_document,
    get_document,
    get_fragments,
    is_shared,
    list_documents,
)

NOTES = (
    "The launch code is stored in the blue safe.\n\n"
    "Lunch is served at noon in the garden room.\n\n"
    "The wifi password is printed under the router."
)
SMALL = {"KNOWLEDGE_CHUNK_CHARS": 60, "KNOWLEDGE_CHUNK_OVERLAP_CHARS": 0}


async def _private(runtime):
    """The agent's own documents (shared ones of other tests may exist in the session's database)."""
    return [d for d in (await list_documents(runtime, limit=1000)).memories if not is_shared(d)]


async def test_fragments_are_queued_at_low_priority_and_become_searchable(make_runtime, run_worker, adapter):
    runtime = await make_runtime(SMALL)
    result = await add_document(runtime, NOTES, name="notes.md")
    assert result.status is DocumentStatus.ADDED
    assert result.fragment_count == 3 and result.queued == 3 and not result.shared
    report = await run_worker()  # asserts the high and normal queues are empty
    assert len(report.outcomes) == 3
    document = await get_document(runtime, result.document_id)
    assert document.text == NOTES and document.metadata.type == "document"
    fragments = await get_fragments(runtime, document)
    assert [f.metadata.model_extra["documentId"] for f in fragments] == [str(document.id)] * 3
    targets = await adapter.get_embedding_targets([f.id for f in fragments])
    assert all(t.embedded_hash == t.content_hash for t in targets)


async def test_re_adding_the_same_document_does_nothing(make_runtime, run_worker, scripted):
    runtime = await make_runtime(SMALL)
    first = await add_document(runtime, NOTES, name="notes.md")
    await run_worker()
    calls = len(scripted.calls)
    again = await add_document(runtime, NOTES, name="notes.md")
    assert again.status is DocumentStatus.UNCHANGED and again.document_id == first.document_id
    assert again.queued == 0
    report = await run_worker()
    assert report.outcomes == {} and len(scripted.calls) == calls


async def test_an_unchanged_document_whose_embeddings_were_lost_queues_them_again(make_runtime, run_worker, sqs):
    runtime = await make_runtime(SMALL)
    await add_document(runtime, NOTES, name="notes.md")
    client, urls = sqs
    client.purge_queue(QueueUrl=urls["low"])  # the requests were lost
    again = await add_document(runtime, NOTES, name="notes.md")
    assert again.status is DocumentStatus.UNCHANGED and again.queued == 3
    assert len((await run_worker()).outcomes) == 3


async def test_changing_a_named_document_replaces_its_fragments(make_runtime, run_worker):
    runtime = await make_runtime(SMALL)
    first = await add_document(runtime, NOTES, name="notes.md")
    await run_worker()
    second = await add_document(runtime, "The launch code moved to the red safe.", name="notes.md")
    assert second.status is DocumentStatus.REPLACED and second.document_id == first.document_id
    assert second.queued == 1
    document = await get_document(runtime, first.document_id)
    assert [f.text for f in await get_fragments(runtime, document)] == ["The launch code moved to the red safe."]
    assert len(await _private(runtime)) == 1


async def test_unnamed_documents_are_identified_by_their_text(make_runtime):
    runtime = await make_runtime()
    a = await add_document(runtime, "Water boils at 100 degrees Celsius at sea level.")
    b = await add_document(runtime, "Water boils at 100 degrees Celsius at sea level.")
    c = await add_document(runtime, "Ice melts at 0 degrees Celsius.")
    assert (a.status, b.status, c.status) == ("added", "unchanged", "added")
    assert a.document_id == b.document_id != c.document_id


async def test_shared_documents_are_seen_by_every_agent_private_ones_by_their_agent(make_runtime, adapter):
    alice, bob = await make_runtime(), await make_runtime()
    private = await add_document(alice, "Alice's diary: I like tea.", name="diary.txt")
    shared = await add_document(alice, "Company holidays: 25 December.", name="holidays.txt", shared=True)
    assert shared.shared
    assert await get_document(bob, private.document_id) is None
    assert await get_fragments(bob, await get_document(alice, private.document_id)) != []
    seen_by_bob = await get_document(bob, shared.document_id)
    assert seen_by_bob is not None and is_shared(seen_by_bob)
    assert {d.id for d in (await list_documents(bob)).memories} >= {shared.document_id}
    assert private.document_id not in {d.id for d in (await list_documents(bob)).memories}
    assert await delete_document(bob, private.document_id) is False
    assert await get_document(alice, private.document_id) is not None
    owner = await adapter.get_agent(SHARED_KNOWLEDGE_ID)
    assert owner.name == SHARED_KNOWLEDGE_NAME and owner.enabled is False
    assert SHARED_KNOWLEDGE_ID not in {a.id for a in await adapter.get_agents()}
    # The same shared text added by another agent is the same document, stored once.
    again = await add_document(bob, "Company holidays: 25 December.", name="holidays.txt", shared=True)
    assert again.status is DocumentStatus.UNCHANGED and again.document_id == shared.document_id
    assert await delete_document(bob, shared.document_id) is True
    assert await get_document(alice, shared.document_id) is None


async def test_a_private_and_a_shared_document_may_share_a_name(make_runtime):
    runtime = await make_runtime()
    private = await add_document(runtime, "Private words.", name="readme.md")
    shared = await add_document(runtime, "Shared words.", name="readme.md", shared=True)
    assert private.document_id != shared.document_id
    assert (await get_document(runtime, private.document_id)).text == "Private words."
    await delete_document(runtime, shared.document_id)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("  \n\n\t", "empty"),
        ("bad\x00byte", "NUL"),
        ("half \ud800 pair", "surrogate"),
    ],
)
async def test_documents_that_cannot_be_stored_are_refused(make_runtime, text, reason, adapter):
    runtime = await make_runtime()
    with pytest.raises(DocumentError, match=reason):
        await add_document(runtime, text)
    assert await adapter.count_memories(runtime.agent_id) == 0


async def test_a_document_over_the_size_limit_is_refused(make_runtime, adapter):
    runtime = await make_runtime({"KNOWLEDGE_MAX_DOCUMENT_BYTES": 100})
    await add_document(runtime, "é" * 50)  # exactly 100 bytes of UTF-8
    with pytest.raises(DocumentTooLargeError) as caught:
        await add_document(runtime, "é" * 50 + "x")
    assert (caught.value.size, caught.value.limit) == (101, 100)
    assert len(await _private(runtime)) == 1


@pytest.mark.parametrize("name", ["", "   ", "a\x00b", "n" * 513])
async def test_bad_names_are_refused(make_runtime, name):
    with pytest.raises(DocumentError, match="name"):
        await add_document(await make_runtime(), "Some text.", name=name)


def test_decode_document_checks_size_and_encoding():
    assert decode_document("\ufeffhé\r\nllo".encode(), max_bytes=100) == "hé\nllo"
    with pytest.raises(DocumentError, match=r"not UTF-8 text \(byte 2\)"):
        decode_document(b"ok\xff\xfe", max_bytes=100)
    with pytest.raises(DocumentTooLargeError):
        decode_document(b"x" * 101, max_bytes=100)
    with pytest.raises(DocumentError, match="NUL"):
        decode_document(b"PK\x03\x04\x00\x00", max_bytes=100)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"KNOWLEDGE_CHUNK_CHARS": "lots"}, "KNOWLEDGE_CHUNK_CHARS: must be an integer"),
        ({"KNOWLEDGE_CHUNK_CHARS": 10}, "KNOWLEDGE_CHUNK_CHARS: must be at least 50"),
        ({"KNOWLEDGE_CHUNK_CHARS": 100, "KNOWLEDGE_CHUNK_OVERLAP_CHARS": 60}, "KNOWLEDGE_CHUNK_OVERLAP_CHARS: .* half"),
        ({"KNOWLEDGE_MATCH_THRESHOLD": 2}, "KNOWLEDGE_MATCH_THRESHOLD: must be at most 1"),
        ({"KNOWLEDGE_MATCH_COUNT": 0}, "KNOWLEDGE_MATCH_COUNT: must be at least 1"),
        ({"KNOWLEDGE_MATCH_COUNT": 51}, "KNOWLEDGE_MATCH_COUNT: must be at most 50"),
        ({"KNOWLEDGE_MATCH_THRESHOLD": "nan"}, "KNOWLEDGE_MATCH_THRESHOLD: must be a finite number"),
        ({"KNOWLEDGE_MATCH_COUNT": 2.5}, "KNOWLEDGE_MATCH_COUNT: must be an integer"),
        ({"KNOWLEDGE_MAX_DOCUMENT_BYTES": 0}, "KNOWLEDGE_MAX_DOCUMENT_BYTES: must be at least 1"),
        ({"KNOWLEDGE_MATCH_COUNT": True}, "KNOWLEDGE_MATCH_COUNT: must be an integer"),
    ],
)
async def test_invalid_settings_are_configuration_errors(make_runtime, settings, message):
    runtime = await make_runtime(settings)
    with pytest.raises(ConfigurationError, match=message):
        KnowledgeSettings.from_runtime(runtime)


async def test_settings_come_from_the_character_with_defaults(make_runtime):
    runtime = await make_runtime({"KNOWLEDGE_MATCH_COUNT": "7", "KNOWLEDGE_MATCH_THRESHOLD": "0.5"})
    settings = KnowledgeSettings.from_runtime(runtime)
    assert (settings.match_count, settings.match_threshold) == (7, 0.5)
    assert (settings.chunk_chars, settings.overlap_chars) == (400, 80)
