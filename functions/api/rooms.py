"""The caller's rooms with an agent (``GET /agents/{agent}/rooms``) and a room's history, newest last
(``GET /agents/{agent}/rooms/{roomId}/messages``)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from core.types import Room
from core.types.wire import memory_json
from core.uuid import create_unique_uuid
from functions.api.access import check_room
from functions.api.context import caller, current

router = APIGatewayHttpRouter()


@router.get("/agents/<agent>/rooms")
def my_rooms(agent: str) -> dict[str, Any]:
    """The rooms the caller takes part in with this agent (its DM room once it has written), by name.

    Two round trips: the caller's room ids, then those rooms. A connector lists the rooms its own
    token's entity is in; it reads its users' rooms by id (their ids come from its own posts).
    """
    api, who = current(), caller()
    runtime = api.orchestrator.runtime(agent)
    entity_id = create_unique_uuid(runtime.agent_id, who.entity_key)

    async def rooms() -> list[Room]:
        ids = await runtime.adapter.get_rooms_for_participant(runtime.agent_id, entity_id)
        return await runtime.adapter.get_rooms_by_ids(runtime.agent_id, ids) if ids else []

    found = api.container.run(rooms())
    return {"rooms": [room_json(r) for r in sorted(found, key=lambda r: (r.name or "", str(r.id)))]}


def room_json(room: Room) -> dict[str, Any]:
    """A room in a listing: id, name, type, source, world."""
    return {
        "id": str(room.id),
        "name": room.name,
        "type": room.type.value,
        "source": room.source,
        "worldId": str(room.world_id) if room.world_id else None,
    }


@router.get("/agents/<agent>/rooms/<room_id>/messages")
def room_messages(agent: str, room_id: UUID, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """The room's last ``limit`` messages; 404 when the agent has no such room or the caller may not read it."""
    api, who = current(), caller()
    runtime = api.orchestrator.runtime(agent)
    api.container.run(check_room(runtime, who, who.entity_key, room_id, may_create=False))
    messages = api.container.run(runtime.get_memories(room_id, "messages", limit))
    return {"roomId": str(room_id), "messages": [memory_json(m) for m in messages]}
