"""Round trips of a DM turn as deployed, counted on the wire (libpq's protocol trace).

As the messages function runs it: the built-in plugins (bootstrap, knowledge, memory), one
pooled connection, the embedding queue on. ``bench/message_turn.py`` counts the same through
a proxy and compares with elizaOS; these tests keep the count from creeping back up.
"""

from __future__ import annotations

import uuid

import pytest

from core.orchestrator import IncomingMessage
from core.settings import Settings
from core.types import ModelType
from tests.deployed import deployed_orchestrator
from tests.wire import traced

REPLY = "<response><thought>ok</thought><actions>REPLY</actions><text>Noted.</text></response>"


@pytest.fixture
async def deployed(database_url, sqs, scripted):
    """An orchestrator as the messages function builds it, and its pool's one connection."""
    settings = Settings(database_url=database_url, pool_check_after_s=3600)
    async with deployed_orchestrator(settings, sqs, scripted, "Wire") as (orchestrator, pool):
        async with pool.connection() as conn:
            pgconn = conn.pgconn
        yield orchestrator, pgconn


async def _turn_round_trips(deployed, scripted, room_id: uuid.UUID) -> list[list[str]]:
    orchestrator, pgconn = deployed
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    with traced(pgconn) as wire:
        result = await orchestrator.handle_message("Wire", IncomingMessage(text="Hello, who are you?", room_id=room_id))
    assert result.did_respond
    return wire.round_trips


async def test_a_turn_in_a_known_room_is_four_round_trips(deployed, scripted):
    room = uuid.uuid4()
    await _turn_round_trips(deployed, scripted, room)  # the room's first turn connects it
    message, reads, reads_end, reply = await _turn_round_trips(deployed, scripted, room)
    assert message.count("Execute") == 1  # the message, stored first whatever happens next
    assert reads.count("Execute") >= 8 and "Execute" not in reads_end  # every provider's read together
    assert reply.count("Execute") == 2  # the reply and the turn's logs, one transaction


async def test_the_first_turn_of_a_conversation_adds_one_round_trip(deployed, scripted):
    connect, *rest = await _turn_round_trips(deployed, scripted, uuid.uuid4())
    assert connect.count("Execute") == 5  # BEGIN, room, entity, participant, COMMIT
    assert len(rest) == 4
