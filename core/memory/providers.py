"""FACTS, RELATIONSHIPS and ENTITIES providers (elizaOS ``plugin-bootstrap/src/providers``).

All three are ``dynamic``, as in elizaOS: they run when a turn asks for them by name (the
model's ``<providers>``, or ``compose_state(include_list=[...])``), not on every turn, since
FACTS costs an embedding call and all three cost queries.

Differences from elizaOS, on purpose:

* RELATIONSHIPS lists, for each of the sender's relationships, the *other* entity (elizaOS
  lists the target, which is the sender itself for ties towards the sender), with its
  strength and interaction count from the relationship's own columns.
* ENTITIES lists at most ``MAX_ENTITIES`` people (the sender first): a busy group room has
  hundreds of participants, and each costs prompt tokens.
* FACTS degrades instead of failing: when the embedding call fails, the room's recent facts
  are still given.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any
from uuid import UUID

from core.bootstrap.shared import cached_room_entities
from core.embeddings.query import embed_query
from core.messaging.prompt_data import clean_name, quote_block, quote_data
from core.plugin import Provider, ProviderResult
from core.types import Entity, Memory, State
from core.types.fact import FACTS_TABLE, Fact

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)

#: Facts found by similarity to the message, and most recent facts of the room (elizaOS: 6 and 6).
RELEVANT_FACTS = 6
RECENT_FACTS = 6
#: Relationships listed (elizaOS: 30).
MAX_RELATIONSHIPS = 30
#: People listed by ENTITIES, and the longest ``Data:`` line of one person (characters).
MAX_ENTITIES = 30
MAX_ENTITY_DATA = 500


# -- FACTS -------------------------------------------------------------------------------------


async def _facts(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    adapter, agent_id = runtime.adapter, runtime.agent_id
    recent_page, relevant = await asyncio.gather(
        adapter.list_memories(agent_id, table=FACTS_TABLE, room_id=message.room_id, limit=RECENT_FACTS),
        _similar_facts(runtime, message),
    )
    memories = _first_of_each_id([*relevant, *recent_page.memories])
    if not memories:
        return ProviderResult(values={"facts": ""}, data={"facts": []})
    facts = [Fact.from_memory(m) for m in memories]
    listing = "\n".join(f"- {quote_block(f.text)}" for f in facts)  # facts quote what people said
    return ProviderResult(
        text=f"# Key facts that {runtime.character.name} knows\n{listing}",
        values={"facts": listing},
        data={"facts": facts},
    )


async def _similar_facts(runtime: AgentRuntime, message: Memory) -> list[Memory]:
    """The room's facts nearest to the message (vector + words); empty when that cannot be done."""
    text = message.text.strip()
    if not text:
        return []
    try:
        vector = await embed_query(runtime, text)  # KNOWLEDGE embeds the same text this turn
        return await runtime.adapter.search_memories(
            runtime.agent_id, vector, table=FACTS_TABLE, room_id=message.room_id, count=RELEVANT_FACTS, query_text=text
        )
    except Exception as exc:  # recent facts still help; the turn must not lose them too
        logger.warning("FACTS: similarity search failed (%s); recent facts only", exc)
        return []


# -- RELATIONSHIPS -----------------------------------------------------------------------------


def _first_of_each_id(memories: list[Memory]) -> list[Memory]:
    """``memories`` in order, each id kept at its first position (relevant facts come before recent ones)."""
    seen: set[UUID] = set()
    unique: list[Memory] = []
    for memory in memories:
        if memory.id not in seen:
            seen.add(memory.id)
            unique.append(memory)
    return unique


async def _relationships(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    adapter, agent_id = runtime.adapter, runtime.agent_id
    relationships = (await adapter.get_relationships(agent_id, message.entity_id))[:MAX_RELATIONSHIPS]
    if not relationships:
        return ProviderResult(
            text="No relationships found.",
            values={"relationships": "No relationships found."},
            data={"relationships": []},
        )
    ids = {message.entity_id} | {e for r in relationships for e in (r.source_entity_id, r.target_entity_id)}
    names = await adapter.get_entity_names(agent_id, list(ids))
    names[agent_id] = runtime.character.name
    rows = ["name,direction,interactions,strength,tags"]
    for r in relationships:
        outgoing = r.source_entity_id == message.entity_id
        other = r.target_entity_id if outgoing else r.source_entity_id
        rows.append(
            ",".join(
                [
                    _csv(clean_name(names.get(other), default="Unknown")),
                    "to" if outgoing else "from",
                    str(r.interaction_count),
                    f"{r.strength:.2f}",
                    _csv(";".join(r.tags)),
                ]
            )
        )
    csv = "\n".join(rows)
    sender = clean_name(names.get(message.entity_id), default="user")
    return ProviderResult(
        text=f"# Relationships ({len(relationships)}) - {sender}'s connections\n{csv}",
        values={"relationships": csv},
        data={"relationships": relationships},
    )


def _csv(value: str) -> str:
    if any(c in value for c in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


# -- ENTITIES ----------------------------------------------------------------------------------


async def _entities(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    entities = await cached_room_entities(runtime, message.room_id)  # shared with RECENT_MESSAGES
    by_id = {e.id: e for e in entities}
    sender = by_id.get(message.entity_id)
    sender_name = clean_name(sender.names[0], default="") if sender and sender.names else ""
    ordered = ([sender] if sender else []) + [e for e in entities if e.id != message.entity_id]
    shown = ordered[:MAX_ENTITIES]
    blocks = [_format_entity(e) for e in shown]
    if len(ordered) > len(shown):
        blocks.append(f"... and {len(ordered) - len(shown)} more people in the room")
    text = "# People in the Room\n" + "\n".join(blocks) if blocks else ""
    return ProviderResult(
        text=text,
        values={"entities": text, "senderName": sender_name},
        data={"entitiesData": shown, "senderName": sender_name},
    )


def _format_entity(entity: Entity) -> str:
    """``"name" aka "other"``, its id, and its metadata merged with its components' data (elizaOS format)."""
    data: dict[str, Any] = {}
    for component in getattr(entity, "components", None) or []:  # Component objects, oldest first
        data.update(component.data)
    data.update(entity.metadata)
    names = '" aka "'.join(clean_name(n).replace('"', "'") for n in entity.names) or "Unknown"
    block = f'"{names}"\nID: {entity.id}'
    if data:
        text = json.dumps(data, default=str, separators=(",", ":"))
        # JSON already escapes newlines; the quoting escapes tags and chat tokens in its strings.
        block += f"\nData: {quote_data(text[:MAX_ENTITY_DATA])}{'…' if len(text) > MAX_ENTITY_DATA else ''}"
    return block + "\n"


FACTS = Provider(
    name="FACTS",
    get=_facts,
    dynamic=True,
    position=50,
    description="Key facts that the agent knows, nearest to the message first.",
)
RELATIONSHIPS = Provider(
    name="RELATIONSHIPS",
    get=_relationships,
    dynamic=True,
    position=55,
    description="Relationships between the agent and other people, or between people it has seen interact.",
)
ENTITIES = Provider(
    name="ENTITIES", get=_entities, dynamic=True, position=45, description="People in the current conversation."
)
