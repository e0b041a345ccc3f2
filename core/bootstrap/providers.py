"""Built-in providers: CHARACTER, RECENT_MESSAGES, ACTIONS (elizaOS ``plugin-bootstrap/src/providers``)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from core.bootstrap.shared import cached_room_entities
from core.messaging.prompt_data import clean_name, quote_block
from core.plugin import Action, Provider, ProviderResult
from core.settings.agents import CONVERSATION_LENGTH
from core.types import Memory, State

if TYPE_CHECKING:
    from core.character import MessageExample
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)

#: How many bio lines and message examples go into the prompt; elizaOS samples 10 / a few.
BIO_LINES = 10
EXAMPLE_CONVERSATIONS = 3


async def _character(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    character = runtime.character
    name = character.name
    parts = [f"# About {name}", *character.bio[:BIO_LINES]]
    if character.adjectives:
        parts.append(f"{name} is: {', '.join(character.adjectives[:8])}.")
    if character.topics:
        parts.append(f"{name} is interested in: {', '.join(character.topics[:10])}.")
    style = character.all_style("chat")
    if style:
        parts += [f"\n# Style of {name}'s messages", *(f"- {s}" for s in style)]
    examples = _format_examples(character.message_examples[:EXAMPLE_CONVERSATIONS], name)
    if examples:
        parts += [f"\n# Example conversations with {name}", examples]
    return ProviderResult(
        text="\n".join(parts),
        values={"agentName": name, "system": system_prompt(runtime)},
    )


def system_prompt(runtime: AgentRuntime) -> str:
    """The character's ``system`` prompt, else a short one made from the name and first bio line."""
    character = runtime.character
    if character.system:
        return character.system
    first_bio = character.bio[0] if character.bio else ""
    return f"You are {character.name}. {first_bio}".strip()


def _format_examples(conversations: list[list[MessageExample]], agent_name: str) -> str:
    lines: list[str] = []
    for conversation in conversations:
        for example in conversation:
            speaker = agent_name if example.name in {agent_name, "{{agentName}}"} else example.name
            lines.append(f"{speaker}: {example.content.get('text', '')}")
        lines.append("")
    return "\n".join(lines).strip()


async def _recent_messages(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    count = CONVERSATION_LENGTH.read(runtime)
    # The senders' names come from the room's participants, read beside the messages (one round
    # trip in the turn's pipeline) rather than after them; only a sender who left the room costs a read.
    messages, entities = await asyncio.gather(
        runtime.get_memories(message.room_id, "messages", count), cached_room_entities(runtime, message.room_id)
    )
    names = {e.id: e.names[0] for e in entities if e.names}
    names[runtime.agent_id] = runtime.character.name
    if missing := {m.entity_id for m in messages} - {e.id for e in entities} - {runtime.agent_id}:
        names.update(await runtime.get_entity_names(list(missing)))
    # One line per message: names and text are the senders' data, quoted so that neither a
    # newline nor a tag in them can forge a line or a section (core.messaging.prompt_data).
    lines = [f"{clean_name(names.get(m.entity_id))}: {quote_block(m.text)}" for m in messages if m.text]
    text = "# Conversation Messages\n" + "\n".join(lines) if lines else ""
    return ProviderResult(
        text=text,
        values={"recentMessages": "\n".join(lines)},
        data={"recentMessages": messages, "entityNames": names},
    )


async def _actions(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    candidates = list(runtime.actions.values())
    # Validations run concurrently: several read the database, and one failing hides only its action.
    valid = await asyncio.gather(*(_offered(a, runtime, message, state) for a in candidates))
    available = [a for a, ok in zip(candidates, valid, strict=True) if ok]
    lines = [f"- {a.name}: {a.description}" for a in available]
    return ProviderResult(
        text="# Available Actions\n" + "\n".join(lines),
        values={"actionNames": ", ".join(a.name for a in available)},
        data={"actions": [a.name for a in available]},
    )


async def _offered(action: Action, runtime: AgentRuntime, message: Memory, state: State) -> bool:
    try:
        return action.validate is None or bool(await action.validate(runtime, message, state))
    except Exception:
        logger.exception("validate of action %s failed; not offered", action.name)
        return False


CHARACTER = Provider(name="CHARACTER", get=_character, position=-10, description="Who the agent is.")
RECENT_MESSAGES = Provider(
    name="RECENT_MESSAGES", get=_recent_messages, position=100, description="The latest messages of the room."
)
ACTIONS = Provider(name="ACTIONS", get=_actions, position=-1, description="Actions the agent can take.")
