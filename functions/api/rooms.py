"""``GET /agents/{agent}/rooms/{roomId}/messages``: a conversation's history, newest last."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from core.errors import NotFoundError
from core.types.wire import memory_json
from functions.api.context import current

router = APIGatewayHttpRouter()


@router.get("/agents/<agent>/rooms/<room_id>/messages")
def room_messages(agent: str, room_id: UUID, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """The room's last ``limit`` messages; 404 when the agent has no such room."""
    api = current()
    runtime = api.orchestrator.runtime(agent)
    if api.container.run(runtime.get_room(room_id)) is None:
        raise NotFoundError(f"room {room_id} not found for agent {agent}")
    messages = api.container.run(runtime.get_memories(room_id, "messages", limit))
    return {"roomId": str(room_id), "messages": [memory_json(m) for m in messages]}
