"""``GET /agents/{agent}/rooms/{roomId}/messages``: a conversation's history, newest last."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from core.types.wire import memory_json
from functions.api.access import check_room
from functions.api.context import caller, current

router = APIGatewayHttpRouter()


@router.get("/agents/<agent>/rooms/<room_id>/messages")
def room_messages(agent: str, room_id: UUID, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """The room's last ``limit`` messages; 404 when the agent has no such room or the caller may not read it."""
    api, who = current(), caller()
    runtime = api.orchestrator.runtime(agent)
    api.container.run(check_room(runtime, who, who.entity_key, room_id, may_create=False))
    messages = api.container.run(runtime.get_memories(room_id, "messages", limit))
    return {"roomId": str(room_id), "messages": [memory_json(m) for m in messages]}
