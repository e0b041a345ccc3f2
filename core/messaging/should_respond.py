"""Whether the agent answers a message (elizaOS ``DefaultMessageService.shouldRespond``).

Without a model call, in this order (elizaOS 1.7):

1. the room's type is a private one (DM, VOICE_DM, SELF, API) or is listed in
   ``ALWAYS_RESPOND_CHANNELS`` (``SHOULD_RESPOND_BYPASS_TYPES``): respond;
2. the message's source contains one listed in ``ALWAYS_RESPOND_SOURCES``
   (``SHOULD_RESPOND_BYPASS_SOURCES``), or is ``client_chat``: respond;
3. the platform says the message mentions the agent or replies to it
   (``content.mentionContext.isMention`` / ``isReply``): respond.

Before all of these, the agent's own state in the room (``runtime.get_participant_user_state``,
set by MUTE_ROOM / FOLLOW_ROOM): a MUTED room is ignored unless the message names the agent
(elizaOS 1.7's check, in any room: the name anywhere in the text, case-insensitive; here a
platform mention counts too, since a Discord ``<@id>`` carries no name); a FOLLOWED room is
answered without a model call (elizaOS 1.7 stores FOLLOWED but its message service never reads
it; FOLLOW_ROOM promises "chiming in without needing to be explicitly mentioned", which is this).

Then, unlike elizaOS, a message naming the agent (its character name as a word) is answered
without a model call too (elizaOS 1.x before the mention context did so, and a connector that
sets no mention context would otherwise need a model call for "Eliza, hi"). Else a model that
follows structured formats decides with TEXT_SMALL and the character's
``shouldRespondTemplate`` (or ours). STOP really stops (elizaOS answers any action but
IGNORE/NONE, STOP included). Without such a model the agent stays quiet unless named.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from core.db.adapter import ParticipantUserState
from core.messaging.response_parser import parse_tag
from core.messaging.templates import SHOULD_RESPOND_TEMPLATE, compose_prompt
from core.settings.messaging import (
    ALWAYS_RESPOND_CHANNELS,
    ALWAYS_RESPOND_SOURCES,
    SHOULD_RESPOND_BYPASS_SOURCES,
    SHOULD_RESPOND_BYPASS_TYPES,
    setting_list,
)
from core.types import ChannelType, Memory, ModelType, State

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)

#: Sources elizaOS always answers (its own web chat client).
ALWAYS_RESPOND_SOURCE_DEFAULTS = ("client_chat",)


class Decision(StrEnum):
    RESPOND = "RESPOND"
    IGNORE = "IGNORE"
    STOP = "STOP"


async def should_respond(
    runtime: AgentRuntime,
    message: Memory,
    state: State,
    channel_type: ChannelType,
    agent_state: ParticipantUserState | None = None,
) -> Decision:
    """Decide whether to answer.

    Args:
        runtime: The agent's runtime (settings, character, models).
        message: The stored incoming message.
        state: The turn's composed state (its values fill the template).
        channel_type: The room's type.
        agent_state: The agent's own state in the room (MUTED, FOLLOWED or ``None``), read by
            the caller together with the turn's other reads.

    Returns:
        The decision; an unreadable model answer counts as IGNORE.

    Raises:
        ConfigurationError: a setting above is malformed.
    """
    if agent_state is ParticipantUserState.MUTED and not _called_while_muted(runtime, message):
        logger.debug("ignoring a muted room: %s", message.room_id)
        return Decision.IGNORE
    if agent_state is ParticipantUserState.FOLLOWED:
        logger.debug("responding without a model call: followed room")
        return Decision.RESPOND
    reason = bypass_reason(runtime, message, channel_type)
    if reason is not None:
        logger.debug("responding without a model call: %s", reason)
        return Decision.RESPOND
    if "structured_output" not in runtime.model_capabilities(ModelType.TEXT_SMALL):
        return Decision.IGNORE
    template = runtime.character.templates.get("shouldRespondTemplate") or SHOULD_RESPOND_TEMPLATE
    raw = await runtime.use_model(ModelType.TEXT_SMALL, {"prompt": compose_prompt(template, state.values)})
    answer = (parse_tag(str(raw), "action") or "").upper()
    try:
        return Decision(answer)
    except ValueError:
        logger.warning("should-respond answer %r not understood; ignoring the message", answer[:40])
        return Decision.IGNORE


def bypass_reason(runtime: AgentRuntime, message: Memory, channel_type: ChannelType) -> str | None:
    """Why the message is answered without asking a model, or ``None`` (rules 1-3 and the name)."""
    channels = setting_list(ALWAYS_RESPOND_CHANNELS.read(runtime) or SHOULD_RESPOND_BYPASS_TYPES.read(runtime))
    if channel_type.is_direct or channel_type.value.lower() in channels:
        return f"private or listed channel: {channel_type.value}"
    sources = setting_list(ALWAYS_RESPOND_SOURCES.read(runtime) or SHOULD_RESPOND_BYPASS_SOURCES.read(runtime))
    source = (message.content.source or "").lower()
    if any(pattern in source for pattern in (*ALWAYS_RESPOND_SOURCE_DEFAULTS, *sources)):
        return f"listed source: {source}"
    mention = mention_context(message)
    if mention.get("isMention") or mention.get("isReply"):
        return "platform mention" if mention.get("isMention") else "platform reply"
    if _mentions(message.text, runtime.character.name):
        return "named in the text"
    return None


def _called_while_muted(runtime: AgentRuntime, message: Memory) -> bool:
    """elizaOS: the character's name anywhere in the text (case-insensitive); or a platform mention."""
    return runtime.character.name.lower() in message.text.lower() or bool(mention_context(message).get("isMention"))


def mention_context(message: Memory) -> Mapping[str, Any]:
    """elizaOS ``content.mentionContext`` (``isMention``, ``isReply``, ``isThread``...), or ``{}``."""
    extra = message.content.model_extra or {}
    value = extra.get("mentionContext", extra.get("mention_context"))
    return value if isinstance(value, Mapping) else {}


def _mentions(text: str, name: str) -> bool:
    return bool(re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text, re.IGNORECASE))
