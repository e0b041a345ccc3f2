from __future__ import annotations

import uuid

import pytest

from core.uuid import create_unique_uuid, string_to_uuid


def test_string_to_uuid_is_deterministic_and_shaped_as_elizaos():
    first = string_to_uuid("Eliza")
    assert first == string_to_uuid("Eliza")
    assert first != string_to_uuid("eliza")
    assert first.bytes[6] >> 4 == 0  # elizaOS clears the version nibble
    assert first.bytes[8] >> 6 == 0b10  # RFC 4122 variant


def test_string_to_uuid_encodes_like_encode_uri_component():
    # encodeURIComponent escapes spaces but not "-_.!~*'()": the same text must map alike.
    assert string_to_uuid("a b") != string_to_uuid("a+b")
    assert string_to_uuid("it's") == string_to_uuid("it's")


def test_uuid_strings_pass_through_and_ints_are_accepted():
    value = uuid.uuid4()
    assert string_to_uuid(str(value)) == value
    assert string_to_uuid(42) == string_to_uuid("42")
    with pytest.raises(TypeError):
        string_to_uuid(1.5)  # type: ignore[arg-type]


def test_create_unique_uuid_scopes_ids_per_agent():
    agent_a, agent_b = uuid.uuid4(), uuid.uuid4()
    assert create_unique_uuid(agent_a, "user-1") != create_unique_uuid(agent_b, "user-1")
    assert create_unique_uuid(agent_a, agent_a) == agent_a
