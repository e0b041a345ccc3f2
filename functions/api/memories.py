"""``POST /agents/{agent}/memories/search``: memories nearest to a query, with their similarity."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from core.types import Memory, ModelType
from core.types.wire import SearchBody, memory_json
from functions.api.context import current

router = APIGatewayHttpRouter()


@router.post("/agents/<agent>/memories/search")
def search_memories(agent: str, body: SearchBody) -> dict[str, Any]:
    """Embed the query, then search the agent's ``table`` (a room's, with ``roomId``); ``similarity`` is
    1 - cosine distance."""
    api = current()
    runtime = api.orchestrator.runtime(agent)

    async def search() -> list[Memory]:
        vector = await runtime.use_model(ModelType.TEXT_EMBEDDING, {"text": body.query})
        return await runtime.search_memories(
            vector, table=body.table, room_id=body.room_id, count=body.count, match_threshold=body.threshold
        )

    return {"memories": [memory_json(m) for m in api.container.run(search())]}
