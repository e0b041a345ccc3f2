"""The message pipeline (elizaOS ``DefaultMessageService.handleMessage``), for one turn.

store message → compose state → should respond → one TEXT_LARGE call → parse → actions
→ store reply → queue embeddings (sent in one batch per priority when the turn ends).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from core.bootstrap.providers import system_prompt
from core.errors import ModelError
from core.messaging.response_parser import MalformedResponseError, ParsedResponse, parse_response
from core.messaging.should_respond import Decision, should_respond
from core.messaging.templates import MESSAGE_HANDLER_TEMPLATE, compose_prompt
from core.runtime import AgentRuntime
from core.types import ChannelType, Content, Memory, ModelType, State

logger = logging.getLogger(__name__)

#: Extra attempts when a structured model's answer cannot be parsed.
MAX_PARSE_RETRIES = 2
#: Recent turns given to a plain-chat model: a small context window (SmolLM2: 2,048 tokens).
PLAIN_HISTORY_TURNS = 8
#: Actions that need no action handler: the response is sent as it is ("simple" mode).
SIMPLE_ACTIONS = {"REPLY", "NONE"}

Mode = Literal["simple", "actions", "none"]


@dataclass
class MessageResult:
    """What a turn produced.

    Attributes:
        message_id: The stored incoming message.
        room_id: Its room.
        did_respond: Whether the agent answered.
        mode: ``simple`` (reply sent as written), ``actions`` (action handlers ran) or ``none``.
        responses: The stored reply memories, in order.
    """

    message_id: UUID
    room_id: UUID
    did_respond: bool
    mode: Mode
    responses: list[Memory] = field(default_factory=list)


async def handle_message(runtime: AgentRuntime, message: Memory, channel_type: ChannelType) -> MessageResult:
    """Run one turn for ``message`` (already validated; its connection already ensured).

    The user's message is stored first, so it is kept whatever happens next; embedding
    requests are sent before returning, even on failure.

    Raises:
        ModelError: the model failed, or its answer stayed unreadable after retries.
    """
    await runtime.create_memory(message, "messages")
    runtime.queue_embedding_generation(message, "high")
    try:
        return await _respond(runtime, message, channel_type)
    finally:
        await runtime.flush_embeddings()


async def _respond(runtime: AgentRuntime, message: Memory, channel_type: ChannelType) -> MessageResult:
    state = await runtime.compose_state(message)
    decision = await should_respond(runtime, message, state, channel_type)
    if decision is not Decision.RESPOND:
        return MessageResult(message.id, message.room_id, did_respond=False, mode="none")
    parsed = await _generate(runtime, message, state)
    if not parsed.actions or "IGNORE" in parsed.actions:
        return MessageResult(message.id, message.room_id, did_respond=False, mode="none")
    replies: list[Memory] = []

    async def deliver(content: Content) -> list[Memory]:
        reply = await _store_reply(runtime, message, content)
        replies.append(reply)
        return [reply]

    if set(parsed.actions) <= SIMPLE_ACTIONS:
        if parsed.text:
            await deliver(_content(parsed, message))
        mode: Mode = "simple"
    else:
        plan = Memory(entity_id=runtime.agent_id, agent_id=runtime.agent_id, room_id=message.room_id,
                      content=_content(parsed, message))
        await runtime.process_actions(message, [plan], state, deliver)
        mode = "actions"
    return MessageResult(message.id, message.room_id, did_respond=bool(replies), mode=mode, responses=replies)


async def _generate(runtime: AgentRuntime, message: Memory, state: State) -> ParsedResponse:
    if "structured_output" in runtime.model_capabilities(ModelType.TEXT_LARGE):
        return await _generate_structured(runtime, state)
    return await _generate_plain(runtime, message, state)


async def _generate_structured(runtime: AgentRuntime, state: State) -> ParsedResponse:
    prompt = compose_prompt(MESSAGE_HANDLER_TEMPLATE, state.values)
    for attempt in range(MAX_PARSE_RETRIES + 1):
        raw = await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": prompt, "system": state.values.get("system")})
        try:
            return parse_response(str(raw))
        except MalformedResponseError:
            logger.warning("unreadable model answer (attempt %d of %d)", attempt + 1, MAX_PARSE_RETRIES + 1)
    raise ModelError("the model's answer could not be parsed", retryable=False)


async def _generate_plain(runtime: AgentRuntime, message: Memory, state: State) -> ParsedResponse:
    """For models that cannot be trusted with the action format (a tiny local model).

    Only called once the agent has decided to answer, so REPLY is the one sensible action:
    ask for a plain chat reply, with the history as chat turns and a repeat penalty.
    """
    history = state.data.get("providers", {}).get("RECENT_MESSAGES")
    recent: list[Memory] = list(history.data.get("recentMessages", [])) if history else []
    if not any(m.id == message.id for m in recent):
        recent.append(message)
    chat = [
        {"role": "assistant" if m.entity_id == runtime.agent_id else "user", "content": m.text}
        for m in recent[-(PLAIN_HISTORY_TURNS * 2) :]
        if m.text
    ]
    text = await runtime.use_model(
        ModelType.TEXT_LARGE,
        {"system": _plain_system_prompt(runtime), "messages": chat, "repeat_penalty": 1.3, "max_tokens": 120},
    )
    return ParsedResponse(actions=["REPLY"], text=str(text).strip())


def _plain_system_prompt(runtime: AgentRuntime) -> str:
    character = runtime.character
    style = " ".join(character.all_style("chat")[:4])
    return (
        f"{system_prompt(runtime)}\nYou are {character.name}. {' '.join(character.bio[:2])}\n"
        f"{style}\nAnswer in one or two short sentences, in character."
    ).strip()


def _content(parsed: ParsedResponse, message: Memory) -> Content:
    return Content(
        text=parsed.text, thought=parsed.thought or None, actions=parsed.actions,
        providers=parsed.providers or None, source=message.content.source,
    )


async def _store_reply(runtime: AgentRuntime, message: Memory, content: Content) -> Memory:
    content.in_reply_to = message.id
    content.channel_type = message.content.channel_type
    reply = Memory(
        entity_id=runtime.agent_id, agent_id=runtime.agent_id, room_id=message.room_id,
        world_id=message.world_id, content=content,
    )
    # A reply stored in the same millisecond as its message must still sort after it.
    reply.created_at = max(reply.created_at, message.created_at + 1)
    await runtime.create_memory(reply, "messages")
    runtime.queue_embedding_generation(reply, "normal")
    return reply
