"""``POST /agents/{agent}/memories/search``: memories nearest to a query, with their similarity."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from core.types import Memory, ModelType
from core.types.fact import FACTS_TABLE
from core.types.wire import SearchBody, memory_json
from functions.api.access import Forbidden, readable_room
from functions.api.context import caller, current

router = APIGatewayHttpRouter()

#: Tables a caller who is not an admin may search (in rooms it may read): conversations and
#: their facts; documents, reflections and the rest are the operator's.
ROOM_TABLES = frozenset({"messages", FACTS_TABLE})


@router.post("/agents/<agent>/memories/search")
def search_memories(agent: str, body: SearchBody) -> dict[str, Any]:
    """Embed the query, then search the agent's ``table`` in one room; ``similarity`` is 1 - cosine distance.

    The room is ``roomId`` (one the caller may read) or the caller's DM room; an admin without
    ``roomId`` searches every room, and only an admin may search tables other than ``ROOM_TABLES``.
    """
    api, who = current(), caller()
    runtime = api.orchestrator.runtime(agent)
    if not who.is_admin and body.table not in ROOM_TABLES:
        raise Forbidden(f"only admins may search {body.table!r}", field="table")

    async def search() -> list[Memory]:
        room_id = await readable_room(runtime, who, body.room_id)
        vector = await runtime.use_model(ModelType.TEXT_EMBEDDING, {"text": body.query})
        return await runtime.search_memories(
            vector, table=body.table, room_id=room_id, count=body.count, match_threshold=body.threshold
        )

    return {"memories": [memory_json(m) for m in api.container.run(search())]}
