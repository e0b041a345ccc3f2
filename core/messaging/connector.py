"""Connectors: a ``MESSAGE_RECEIVED`` event is answered through its callback (elizaOS
``plugin-bootstrap``'s ``messageReceivedHandler``).

An elizaOS connector (Discord, Telegram...) ensures the connection, builds a ``Memory`` and
emits ``MESSAGE_RECEIVED`` with ``{"runtime", "message", "callback", "source"}``; the
bootstrap plugin's handler runs the turn and each reply reaches ``callback(content)``. A
plugin ported from elizaOS does exactly that here::

    await runtime.emit_event(EventType.MESSAGE_RECEIVED, {"message": memory, "callback": send, "source": "discord"})

A turn started otherwise (the HTTP API, ``Orchestrator.handle_message``) emits
``MESSAGE_RECEIVED`` itself once the message is stored, so plugins observe every message
once; that payload carries the turn's ``runId`` and is not answered again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.events import EventHandler, EventType
from core.types import ChannelType, Memory

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)


async def on_message_received(payload: Mapping[str, Any]) -> None:
    """Answer a connector's message: ``payload`` has ``runtime``, ``message`` (a ``Memory``),
    optional ``callback(content)`` and ``source``. A payload with a ``runId`` came from a
    turn already under way and is left alone.

    Raises:
        ModelError, RunTimeoutError: from the turn (the event bus logs them; the message stays stored).
    """
    if payload.get("runId") is not None:
        return
    runtime: AgentRuntime = payload["runtime"]
    message = payload.get("message")
    if not isinstance(message, Memory):
        logger.warning("MESSAGE_RECEIVED without a Memory in 'message'; nothing to answer")
        return
    if payload.get("source") and not message.content.source:
        message.content.source = str(payload["source"])
    channel_type = await _channel_type(runtime, message)
    if channel_type is None:
        logger.info("MESSAGE_RECEIVED for room %s, which the agent has no record of: not answered", message.room_id)
        return
    from core.messaging.service import handle_message  # the service imports the runtime: not at import time

    await handle_message(runtime, message, channel_type, on_response=payload.get("callback"), announce=False)


async def _channel_type(runtime: AgentRuntime, message: Memory) -> ChannelType | None:
    """The room's type; ``None`` without a room (elizaOS: no room context, no answer)."""
    room = await runtime.get_room(message.room_id)
    return ChannelType(room.type) if room is not None else None


#: ``Plugin.events`` of the bootstrap plugin.
MESSAGE_EVENTS: dict[str, tuple[EventHandler, ...]] = {EventType.MESSAGE_RECEIVED: (on_message_received,)}
