"""A runtime with the built-in plugin and scripted models over real Postgres, and a room to talk in."""

from __future__ import annotations

import uuid

import pytest

from core.blueprint import AgentBlueprint
from core.bootstrap import plugin as bootstrap
from core.character import load_character_dict
from core.runtime import AgentRuntime
from core.types import ChannelType, Content, Memory


@pytest.fixture
def runtime(adapter, agent_id, scripted):
    character = load_character_dict({"id": str(agent_id), "name": "Ada", "bio": ["A test agent."]})
    return AgentRuntime(AgentBlueprint.build(character, [bootstrap, scripted.plugin()]), adapter)


@pytest.fixture
def say(runtime):
    """``await say(text, channel_type=..., server_id=..., **content)`` → a stored message from a fresh person."""

    async def _say(text, *, channel_type=ChannelType.DM, server_id=None, entity_id=None, room_id=None, **content):
        message = Memory(
            entity_id=entity_id or uuid.uuid4(),
            agent_id=runtime.agent_id,
            room_id=room_id or uuid.uuid4(),
            content=Content(text=text, channel_type=channel_type, source="test", **content),
        )
        await runtime.ensure_connection(
            entity_id=message.entity_id,
            room_id=message.room_id,
            user_name="bob",
            name="Bob",
            channel_type=channel_type,
            server_id=server_id,
            room_name="general",
            world_name="Server" if server_id else None,
            source="test",
        )
        await runtime.create_memory(message)
        return message

    return _say
