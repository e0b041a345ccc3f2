"""Retention announces what it deletes: one MESSAGE_DELETED per message, with source and callback."""

from __future__ import annotations

from core.events import EventType
from core.memory.retention import compress_messages
from tests.core.memory.conftest import irc_lines, seed_room


async def test_each_message_deleted_by_retention_is_announced_with_message_deleted(make_runtime):
    runtime = make_runtime({"MESSAGE_RETENTION_DAYS": "30", "MESSAGE_RETENTION_SUMMARIZE": "false"})
    room = await seed_room(runtime, irc_lines(1, 12))
    deleted = []

    async def record(payload):
        deleted.append((payload["message"].id, payload["roomId"], payload["source"], payload["callback"]))

    runtime.register_event(EventType.MESSAGE_DELETED, record)
    report = await compress_messages(runtime)

    assert report.deleted == len(room.messages) > 0
    assert deleted == [(m.id, room.room_id, "retention", None) for m in room.messages]
