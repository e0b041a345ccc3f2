"""``POST /agents/{agent}/messages``: a message in, the agent's reply out (elizaOS's message turn)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from core.orchestrator import IncomingMessage
from core.types.wire import MessageBody
from functions.api.context import current

router = APIGatewayHttpRouter()


@router.post("/agents/<agent>/messages")
def post_message(agent: str, body: MessageBody) -> dict[str, Any]:
    """Store the message, run the turn, answer ``{"messageId", "roomId", "didRespond", "mode", "responses"}``.

    Counted in ``MessagesHandled`` by ``Mode`` and ``DidRespond``.
    """
    api = current()
    incoming = IncomingMessage(
        text=body.text,
        entity_id=body.entity_id,
        room_id=body.room_id,
        world_id=body.world_id,
        source=body.source,
        user_name=body.user_name,
        channel_type=body.channel_type,
    )
    result = api.container.run(api.orchestrator.handle_message(agent, incoming))
    api.observability.count("MessagesHandled", Mode=result.mode, DidRespond=str(result.did_respond).lower())
    api.observability.logger.info(
        "message handled",
        extra={
            "agent": agent,
            "room_id": str(result.room_id),
            "message_id": str(result.message_id),
            "mode": result.mode,
            "did_respond": result.did_respond,
            "responses": len(result.responses),
        },
    )
    return {
        "messageId": str(result.message_id),
        "roomId": str(result.room_id),
        "didRespond": result.did_respond,
        "mode": result.mode,
        "responses": [
            {"id": str(r.id), "text": r.text, "actions": r.content.actions or [], "thought": r.content.thought}
            for r in result.responses
        ],
    }
