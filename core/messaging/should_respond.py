"""Whether the agent answers a message (elizaOS ``shouldRespond``, with STOP that really stops)."""

from __future__ import annotations

import logging
import re
from enum import StrEnum
from typing import TYPE_CHECKING

from core.messaging.response_parser import parse_tag
from core.messaging.templates import SHOULD_RESPOND_TEMPLATE, compose_prompt
from core.types import ChannelType, Memory, ModelType, State

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)


class Decision(StrEnum):
    RESPOND = "RESPOND"
    IGNORE = "IGNORE"
    STOP = "STOP"


async def should_respond(runtime: AgentRuntime, message: Memory, state: State, channel_type: ChannelType) -> Decision:
    """Decide whether to answer.

    Direct channels (DM, API, self) and messages naming the agent always get an answer,
    without a model call. In group rooms a model that follows structured formats decides
    with TEXT_SMALL; without one, the agent stays quiet unless named.

    Returns:
        The decision; an unreadable model answer counts as IGNORE.
    """
    if channel_type.is_direct or _mentions(message.text, runtime.character.name):
        return Decision.RESPOND
    if "structured_output" not in runtime.model_capabilities(ModelType.TEXT_SMALL):
        return Decision.IGNORE
    raw = await runtime.use_model(
        ModelType.TEXT_SMALL, {"prompt": compose_prompt(SHOULD_RESPOND_TEMPLATE, state.values)}
    )
    answer = (parse_tag(str(raw), "action") or "").upper()
    try:
        return Decision(answer)
    except ValueError:
        logger.warning("should-respond answer %r not understood; ignoring the message", answer[:40])
        return Decision.IGNORE


def _mentions(text: str, name: str) -> bool:
    return bool(re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text, re.IGNORECASE))
