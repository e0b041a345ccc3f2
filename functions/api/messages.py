"""``POST /agents/{agent}/messages``: a message in, the agent's reply out (elizaOS's message turn)."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from core.orchestrator import IncomingMessage
from core.runtime import AgentRuntime
from core.types import Memory
from core.types.media import Media
from core.types.wire import MessageBody
from core.uuid import string_to_uuid
from functions.api.access import check_room, speaker
from functions.api.context import caller, current
from functions.api.responses import json_response
from functions.api.streaming import chunk_callback

router = APIGatewayHttpRouter()


#: ``Idempotency-Key``: 1 to 255 visible ASCII characters (the IETF draft's key is an opaque string).
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@router.post("/agents/<agent>/messages")
def post_message(agent: str, body: MessageBody) -> Response[dict[str, Any]]:
    """Store the message, run the turn, answer ``{"messageId", "roomId", "didRespond", "mode", "responses"}``.

    The speaker is the caller (``functions.api.access.speaker``); a ``roomId`` must be one the
    caller may use, or a new one. With ``messageId`` or an ``Idempotency-Key`` header, a retry
    stores nothing twice: when the first attempt's reply is stored it is answered again
    (``mode: "replayed"``, header ``Idempotent-Replayed: true``) without a model call; when the
    first attempt stopped before its reply, the turn runs again on the stored message. The
    same key with another text is a 422. Counted in ``MessagesHandled`` by ``Mode`` and ``DidRespond``.
    """
    api, who = current(), caller()
    entity_key, source = speaker(who, body.entity_id, body.source)
    runtime = api.orchestrator.runtime(agent)
    message_id = _message_id(runtime, who.subject, body)
    if message_id is not None:
        replay = api.container.run(_stored_answer(runtime, message_id, body))
        if replay is not None:
            return replay
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
        message_id=message_id,
        attachments=[Media.model_validate(a.model_dump()) for a in body.attachments],
    )
    result = api.container.run(api.orchestrator.handle_message(runtime, incoming, on_stream_chunk=chunk_callback()))
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
    return json_response(200, _answer(result.message_id, result.room_id, result.mode, result.responses))


def _message_id(runtime: AgentRuntime, subject: str, body: MessageBody) -> UUID | None:
    """The message's id when the client makes the post idempotent, namespaced by caller and agent,
    so one caller's key can never name another's message.

    Raises:
        RequestValidationError: the header is malformed, or given together with ``messageId``.
    """
    header = router.current_event.headers.get("idempotency-key")
    if header is not None and body.message_id is not None:
        raise _invalid("messageId", "give messageId or the Idempotency-Key header, not both")
    if header is not None and not _IDEMPOTENCY_KEY.match(header):
        raise _invalid("Idempotency-Key", "1 to 255 visible ASCII characters", location="header")
    key = header if header is not None else body.message_id
    return None if key is None else string_to_uuid(f"message:{subject}|{runtime.agent_id}|{key}")


async def _stored_answer(runtime: AgentRuntime, message_id: UUID, body: MessageBody) -> Response[dict[str, Any]] | None:
    """The answer a retry gets: the stored reply, or ``None`` when the turn must (re-)run."""
    message, replies = await runtime.adapter.get_message_with_replies(runtime.agent_id, message_id)
    if message is None:
        return None
    if message.content.text != body.text:
        raise _invalid("messageId", "this idempotency key was used for another message")
    if not replies:
        return None
    response = json_response(200, _answer(message.id, message.room_id, "replayed", replies))
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _answer(message_id: UUID, room_id: UUID, mode: str, replies: list[Memory]) -> dict[str, Any]:
    return {
        "messageId": str(message_id),
        "roomId": str(room_id),
        "didRespond": bool(replies),
        "mode": mode,
        "responses": [
            {"id": str(r.id), "text": r.text, "actions": r.content.actions or [], "thought": r.content.thought}
            for r in replies
        ],
    }


def _invalid(field: str, message: str, *, location: str = "body") -> RequestValidationError:
    """A 422 naming ``field``, through the app's validation error handler."""
    return RequestValidationError([{"loc": (location, field), "msg": message, "type": "value_error"}])
