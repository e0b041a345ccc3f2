"""bench/_turn_floor.py: a recorded turn of ours, replayed bare, is the turn's database floor.

The floor is only worth its figure if the replay sends what the turn sent, in two round trips,
and writes new rows in its own room: these tests hold it to that.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from _turn_floor import RecordedTurn, floor_turns, recording, round_trips, stable_ids

from core.orchestrator import IncomingMessage
from core.settings import Settings
from core.types import ChannelType, ModelType
from tests.deployed import deployed_orchestrator

REPLY = "<response><thought>ok</thought><actions>REPLY</actions><text>Noted.</text></response>"


def test_a_turn_splits_at_the_first_write_after_its_reads():
    turn = [
        ("INSERT INTO memories ...", (1,), True),
        ("SELECT 1", None, False),
        ("BEGIN", None, False),
        ("WITH c AS (SELECT 1) SELECT * FROM c", None, False),
        ("COMMIT", None, False),
        ("INSERT INTO memories ... reply", (2,), False),
        ("INSERT INTO logs ...", (3,), False),
    ]
    before_model, after_model = round_trips(turn)
    assert before_model == turn[:5]
    assert after_model == turn[5:]


def test_a_turn_that_stored_no_reply_cannot_be_split():
    with pytest.raises(ValueError, match="no write after its reads"):
        round_trips([("INSERT INTO memories ...", (1,), True), ("SELECT 1", None, False)])


def test_a_replay_moves_the_room_mints_new_ids_and_keeps_the_stable_ones():
    room, target, agent, minted = (uuid.uuid4() for _ in range(4))
    turn = RecordedTurn(
        [("SELECT %s, %s", (room, agent), False), ("INSERT %s", ([minted, room],), False)],
        room,
        frozenset({agent}),
    )
    (read,), (write,) = turn.into(target)
    assert read[1] == (target, agent)
    new_id, moved_room = write[1][0]
    assert moved_room == target and new_id not in {minted, room, target, agent}
    assert turn.into(target)[1][0][1][0][0] != new_id  # each replay mints its own


@pytest.fixture
async def orchestrator(database_url, sqs, scripted):
    async with deployed_orchestrator(Settings(database_url=database_url), sqs, scripted, "Floor") as (orchestrator, _):
        scripted.script(ModelType.TEXT_LARGE, REPLY)
        yield orchestrator


async def _connected_room(orchestrator) -> uuid.UUID:
    runtime = orchestrator.runtime("Floor")
    room = uuid.uuid4()
    await runtime.ensure_connection(entity_id=uuid.uuid4(), room_id=room, source="api", channel_type=ChannelType.DM)
    return room


async def _messages(database_url, room: uuid.UUID) -> list[str]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (
            await conn.execute(
                "SELECT content->>'text' FROM memories WHERE room_id = %s AND type = 'messages'"
                " ORDER BY created_at, id",
                (room,),
            )
        ).fetchall()
    return [text for (text,) in rows]


async def test_a_recorded_turn_replayed_in_another_room_writes_its_message_and_reply_there(orchestrator, database_url):
    recorded_room, target = await _connected_room(orchestrator), await _connected_room(orchestrator)
    stable = await stable_ids(database_url)
    with recording() as statements:
        await orchestrator.handle_message("Floor", IncomingMessage(text="Hello there", room_id=recorded_room))
    turn = RecordedTurn(statements, recorded_room, stable)

    times, _ = await floor_turns(database_url, [turn.into(target), turn.into(target)])

    assert len(times) == 2 and all(t > 0 for t in times)
    assert await _messages(database_url, recorded_room) == ["Hello there", "Noted."]
    # The replays keep the recorded times: two new messages and two new replies, in any order.
    assert sorted(await _messages(database_url, target)) == ["Hello there", "Hello there", "Noted.", "Noted."]
