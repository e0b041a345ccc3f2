"""``POST /agents/{agent}/messages``: a message in, the agent's reply out (elizaOS's message turn)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from core.orchestrator import IncomingMessage
from core.types.wire import MessageBody
from functions.api.access import check_room, speaker
from functions.api.context import caller, current

router = APIGatewayHttpRouter()


@router.post("/agents/<agent>/messages")
def post_message(agent: str, body: MessageBody) -> dict[str, Any]:
    """Store the message, run the turn, answer ``{"messageId", "roomId", "didRespond", "mode", "responses"}``.

    The speaker is the caller (``functions.api.access.speaker``); a ``roomId`` must be one the
    caller may use, or a new one. Counted in ``MessagesHandled`` by ``Mode`` and ``DidRespond``.
    """
    api, who = current(), caller()
    entity_key, source = speaker(who, body.entity_id, body.source)
    runtime = api.orchestrator.runtime(agent)
    if body.room_id is not None:
        api.container.run(check_room(runtime, who, entity_key, body.room_id, may_create=True))
    incoming = IncomingMessage(
        text=body.text,
        entity_id=entity_key,
        room_id=body.room_id,
        world_id=body.world_id,
        source=source,
        user_name=body.user_name or who.name,
        channel_type=body.channel_type,
    )
    result = api.container.run(api.orchestrator.handle_message(runtime, incoming))
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
