"""The REFLECTION evaluator: facts and relationships from the conversation (elizaOS ``reflection.ts``).

Every ``REFLECTION_INTERVAL`` messages in a room (default ``ceil(CONVERSATION_LENGTH / 4)``,
elizaOS's rule: 8 for the default 32), after a reply, the evaluator shows TEXT_SMALL the
room's recent messages, its participants, the sender's relationships and the room's known
facts, and asks for an elizaOS-style XML answer: a thought, new facts (claim, subject,
predicate, object, type, in_bio, already_known) and relationships (source, target, tags).

* Facts that are neither in the bio nor already known are stored with de-duplication
  (``core.memory.facts``) at confidence ``REFLECTION_FACT_CONFIDENCE``; new ones are queued
  for embedding at low priority. A subject or object naming a participant is resolved to it.
* Each relationship whose two ends resolve to participants (or the agent) is created or
  extended with its tags (``create_relationship``) and counted as one interaction, which
  raises its strength (``record_interaction``).

Where this differs from elizaOS, on purpose:

* Entities resolve only to the room's participants and the agent, by id or exact
  (case-insensitive) name. elizaOS takes any uuid-shaped string as is (a made-up id becomes
  a relationship to nobody) and matches names by substring (``"al"`` finds ``"Sal"``).
* The reflection marker (cache ``{roomId}-reflection-last-processed``) is set when a
  reflection starts, not after it succeeds: a model that keeps failing would otherwise make
  every later turn reflect (and pay for a call) again. Nothing is lost: the window reflected
  on (``CONVERSATION_LENGTH`` messages) is four intervals long, so the next reflection sees
  the messages again.
* Both ``<facts>`` and ``<relationships>`` must be present (either may be empty); an answer
  without them is taken as malformed or cut short and nothing of it is stored. Missing
  ``in_bio``/``already_known`` flags read as false (elizaOS drops the fact).

The handler never raises: a failure is logged and the turn goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from pydantic import ValidationError

from core.bootstrap.shared import cached_room, cached_room_entities
from core.db.pipelined import pipelined
from core.memory.facts import store_facts
from core.messaging.prompt_data import clean_name, quote_block, quote_data
from core.messaging.response_parser import parse_tag
from core.messaging.templates import compose_prompt
from core.plugin import Evaluator
from core.settings.agents import CONVERSATION_LENGTH
from core.settings.memory import REFLECTION_INTERVAL
from core.types import Entity, Memory, ModelType, Relationship, Room, State
from core.types.fact import FACTS_TABLE, MAX_FACT_TERM, MAX_FACT_TEXT, Fact, fact_kind

if TYPE_CHECKING:
    from core.db.adapter import MemoryPage
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)

#: Confidence of a fact read by one reflection: one model's reading of one conversation is
#: weak evidence; each independent confirmation raises it (0.5 → 0.75 → 0.875).
REFLECTION_FACT_CONFIDENCE = 0.5
#: Known facts shown to the model (elizaOS: 30).
KNOWN_FACTS = 30
#: Most facts and relationships taken from one answer (a runaway answer cannot flood the tables).
MAX_FACTS_PER_REFLECTION = 20
MAX_RELATIONSHIPS_PER_REFLECTION = 20
#: Most tags kept per relationship, and their longest length (characters).
MAX_TAGS = 10
MAX_TAG_LENGTH = 64
#: Most participants listed in the prompt (the sender and recent speakers come first).
MAX_LISTED_ENTITIES = 50
#: Longest message text shown in the prompt (characters).
MAX_MESSAGE_CHARS = 1000

REFLECTION_TEMPLATE = """# Task: Reflect on the conversation as {{agentName}}; extract facts and relationships

# People in the room
{{entitiesInRoom}}

# Relationships already known
{{existingRelationships}}

# Context
Agent name: {{agentName}}
Room type: {{roomType}}
Last message from: {{senderName}} (ID: {{senderId}})

# Conversation
{{recentMessages}}

# Facts already known
{{knownFacts}}

# Instructions
1. Write one self-reflective thought about how {{agentName}} is doing in this conversation.
2. List facts worth remembering that the conversation states: about the people (what they
   use, do, own, want, know), about each other, or about the world. For each fact:
   - claim: one sentence that stands on its own (use people's names, not pronouns);
   - subject, predicate, object: the claim split in three (subject is who or what the fact
     is about, written exactly as the person's name above when it is a person);
   - type: fact (lasting), status (true for now) or opinion (someone's view);
   - in_bio: true when it is already in {{agentName}}'s own description;
   - already_known: true when it is already among the facts already known.
3. List relationships: one per direction of interaction between two people (or {{agentName}})
   seen in the conversation. sourceEntityId is who initiated, targetEntityId who was
   addressed, both as an ID or exact name from the people above. tags are comma-separated,
   starting with group_interaction, dm_interaction or voice_interaction, then any others
   that describe the tie (helping, asking_for_help, friends, colleagues...).

Answer with this XML block only, with no text, reasoning or <think> section before or after it:
<response>
  <thought>one self-reflective thought</thought>
  <facts>
    <fact>
      <claim>the fact as one sentence</claim>
      <subject>who or what it is about</subject>
      <predicate>short verb phrase</predicate>
      <object>the rest of the claim</object>
      <type>fact|status|opinion</type>
      <in_bio>false</in_bio>
      <already_known>false</already_known>
    </fact>
  </facts>
  <relationships>
    <relationship>
      <sourceEntityId>ID or name of who initiated</sourceEntityId>
      <targetEntityId>ID or name of who was addressed</targetEntityId>
      <tags>group_interaction,helping</tags>
    </relationship>
  </relationships>
</response>"""

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:xml|json)?\s*(.*?)```", re.DOTALL)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


# -- parsing ---------------------------------------------------------------------------------


class ExtractedFact(NamedTuple):
    """One ``<fact>`` of the model's answer."""

    claim: str
    subject: str | None = None
    predicate: str | None = None
    object: str | None = None
    kind: str | None = None
    in_bio: bool = False
    already_known: bool = False


class ExtractedRelationship(NamedTuple):
    """One ``<relationship>``: its ends as the model wrote them (id or name), and its tags."""

    source: str
    target: str
    tags: tuple[str, ...] = ()


class ReflectionAnswer(NamedTuple):
    """The model's answer, parsed."""

    thought: str = ""
    facts: tuple[ExtractedFact, ...] = ()
    relationships: tuple[ExtractedRelationship, ...] = ()


def parse_reflection(raw: str) -> ReflectionAnswer | None:
    """Read the model's answer: the XML block (fenced, wrapped or bare), else a JSON object.

    Args:
        raw: The model's text.

    Returns:
        The parsed answer; ``None`` when it is malformed: neither an XML answer with both
        ``<facts>`` and ``<relationships>`` nor a JSON object with both keys. Items missing
        their required parts (a fact without claim, a relationship without both ends) are
        dropped; the rest of the answer stands.
    """
    body = _THINK.sub("", raw or "")
    fenced = _FENCE.search(body)
    if fenced and ("<" in fenced.group(1) or "{" in fenced.group(1)):
        body = fenced.group(1)
    facts_xml, relationships_xml = _section(body, "facts"), _section(body, "relationships")
    if facts_xml is not None and relationships_xml is not None:
        return ReflectionAnswer(
            thought=parse_tag(body, "thought") or "",
            facts=tuple(f for f in (_fact_from_xml(x) for x in _items(facts_xml, "fact")) if f),
            relationships=tuple(
                r
                for r in (
                    _relationship(parse_tag(x, "sourceEntityId"), parse_tag(x, "targetEntityId"), parse_tag(x, "tags"))
                    for x in _items(relationships_xml, "relationship")
                )
                if r
            ),
        )
    return _parse_json(body)


def _section(body: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", body, re.DOTALL | re.IGNORECASE)
    if match:
        return match.group(1)
    return "" if re.search(rf"<{tag}\s*/>", body, re.IGNORECASE) else None


def _items(section: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}>(.*?)</{tag}>", section, re.DOTALL | re.IGNORECASE)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in {"true", "yes", "1"}


def _clean(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.replace("\x00", "").split())
    return text[:limit] or None


def _fact(
    claim: Any, subject: Any, predicate: Any, object: Any, kind: Any, in_bio: Any, already_known: Any
) -> ExtractedFact | None:
    text = _clean(claim, MAX_FACT_TEXT)
    if text is None:
        return None
    kind_text = _clean(kind, 32)
    return ExtractedFact(
        claim=text,
        subject=_clean(subject, MAX_FACT_TERM),
        predicate=_clean(predicate, MAX_FACT_TERM),
        object=_clean(object, MAX_FACT_TERM),
        kind=kind_text.lower() if kind_text else None,
        in_bio=_flag(in_bio),
        already_known=_flag(already_known),
    )


def _fact_from_xml(xml: str) -> ExtractedFact | None:
    return _fact(
        *(parse_tag(xml, t) for t in ("claim", "subject", "predicate", "object", "type", "in_bio", "already_known"))
    )


def _relationship(source: Any, target: Any, tags: Any) -> ExtractedRelationship | None:
    source_text, target_text = _clean(source, 200), _clean(target, 200)
    if source_text is None or target_text is None:
        return None
    raw_tags = tags.split(",") if isinstance(tags, str) else tags if isinstance(tags, list) else []
    cleaned = (_clean(t, MAX_TAG_LENGTH) for t in raw_tags)
    return ExtractedRelationship(source_text, target_text, tuple(dict.fromkeys(t for t in cleaned if t))[:MAX_TAGS])


def _parse_json(body: str) -> ReflectionAnswer | None:
    match = _JSON_OBJECT.search(body)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
    except ValueError:
        return None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("facts"), list)
        or not isinstance(data.get("relationships"), list)
    ):
        return None
    facts = [
        _fact(
            f.get("claim"),
            f.get("subject"),
            f.get("predicate"),
            f.get("object"),
            f.get("type"),
            f.get("in_bio"),
            f.get("already_known"),
        )
        for f in data["facts"]
        if isinstance(f, dict)
    ]
    relationships = [
        _relationship(r.get("sourceEntityId"), r.get("targetEntityId"), r.get("tags"))
        for r in data["relationships"]
        if isinstance(r, dict)
    ]
    thought = data.get("thought")
    return ReflectionAnswer(
        thought=thought if isinstance(thought, str) else "",
        facts=tuple(f for f in facts if f),
        relationships=tuple(r for r in relationships if r),
    )


# -- settings and marker ---------------------------------------------------------------------


def conversation_length(runtime: AgentRuntime) -> int:
    """``CONVERSATION_LENGTH`` (messages, 32 when unset).

    Raises:
        ConfigurationError: the setting is not an integer from 1 to 1000 (the message names it).
    """
    return CONVERSATION_LENGTH.read(runtime)


def reflection_interval(runtime: AgentRuntime) -> int:
    """Messages between reflections: ``REFLECTION_INTERVAL``, else ``ceil(CONVERSATION_LENGTH / 4)``.

    Raises:
        ConfigurationError: either setting is malformed or out of range (the message names it);
            the runtime logs it as the evaluator's failure and the turn goes on.
    """
    return REFLECTION_INTERVAL.read(runtime, default=math.ceil(conversation_length(runtime) / 4))


def marker_key(room_id: UUID) -> str:
    """Cache key of a room's reflection marker (elizaOS's key)."""
    return f"{room_id}-reflection-last-processed"


#: Reflection markers this process has read or written: (agent, room) → newest reflected ms.
#: Bounded (least recently used out first). Another container's newer marker is only missed
#: until this one reflects again, and re-reading a window cannot double-count evidence.
_markers: OrderedDict[tuple[UUID, UUID], int | None] = OrderedDict()
_MARKERS_MAX = 10_000


def _remember_marker(agent_id: UUID, room_id: UUID, created_at: int | None) -> None:
    _markers[(agent_id, room_id)] = created_at
    _markers.move_to_end((agent_id, room_id))
    while len(_markers) > _MARKERS_MAX:
        _markers.popitem(last=False)


async def _marker(runtime: AgentRuntime, room_id: UUID) -> int | None:
    key = (runtime.agent_id, room_id)
    if key in _markers:
        _markers.move_to_end(key)
        return _markers[key]
    stored = await runtime.adapter.get_cache(runtime.agent_id, marker_key(room_id))
    since = stored.get("createdAt") if isinstance(stored, dict) else None
    since = since if isinstance(since, int) and not isinstance(since, bool) else None
    _remember_marker(runtime.agent_id, room_id, since)
    return since


async def validate(runtime: AgentRuntime, message: Memory, state: State | None = None) -> bool:
    """True when ``reflection_interval`` messages or more arrived in the room since the last reflection.

    Cheap on the reply path: a room whose every message is in the turn's RECENT_MESSAGES, fewer
    than ``interval``, is not due and costs no read (a new conversation); otherwise the marker is
    read once per room per process (then kept in memory), and the messages since it are counted
    in RECENT_MESSAGES when the state has them, else in one indexed read of at most ``interval`` ids.
    """
    interval = reflection_interval(runtime)
    recent = _recent_messages(state)
    if recent is not None and len(recent) < min(interval, conversation_length(runtime)):
        return False  # RECENT_MESSAGES read up to CONVERSATION_LENGTH and found fewer: the whole room
    since = await _marker(runtime, message.room_id)
    if recent is not None and len(recent) >= interval:
        return sum(1 for m in recent if since is None or m.created_at > since) >= interval
    page = await runtime.adapter.list_memories(
        runtime.agent_id,
        table="messages",
        room_id=message.room_id,
        start_ms=since + 1 if since is not None else None,
        limit=interval,
    )
    return len(page.memories) >= interval


def _recent_messages(state: State | None) -> list[Memory] | None:
    result = (state.data.get("providers") or {}).get("RECENT_MESSAGES") if state is not None else None
    recent = getattr(result, "data", {}).get("recentMessages") if result is not None else None
    return list(recent) if isinstance(recent, list) else None


# -- the handler -----------------------------------------------------------------------------


@dataclass
class ReflectionReport:
    """What one reflection did.

    Attributes:
        malformed: The answer could not be read (nothing stored).
        model_failed: The model call failed (nothing stored).
        facts_created: New facts stored.
        facts_confirmed: Known facts whose confidence was raised (or already counted).
        facts_skipped: Facts the model marked in_bio or already_known, or that were invalid.
        relationships: Relationships created or strengthened.
        relationships_skipped: Relationships whose ends did not resolve, or self-ties.
        thought: The model's reflective thought.
        stored: The facts as stored (new ones, and confirmed ones with their raised confidence).
        ties: The relationships as stored after this reflection's interaction.
    """

    malformed: bool = False
    model_failed: bool = False
    facts_created: int = 0
    facts_confirmed: int = 0
    facts_skipped: int = 0
    relationships: int = 0
    relationships_skipped: int = 0
    thought: str = ""
    stored: list[Fact] = field(default_factory=list)
    ties: list[Relationship] = field(default_factory=list)


async def handler(
    runtime: AgentRuntime,
    message: Memory,
    state: State | None = None,
    options: Mapping[str, Any] | None = None,
    callback: Any = None,
    responses: Sequence[Memory] | None = None,
) -> None:
    """The evaluator's handler (elizaOS signature). Never raises; logs one line per reflection."""
    try:
        report = await reflect(runtime, message)
    except Exception:
        logger.exception("reflection in room %s of agent %s failed", message.room_id, runtime.agent_id)
        return
    logger.info(
        "reflection in room %s of agent %s: %d new fact(s), %d confirmed, %d skipped; %d relationship(s), %d skipped%s",
        message.room_id,
        runtime.agent_id,
        report.facts_created,
        report.facts_confirmed,
        report.facts_skipped,
        report.relationships,
        report.relationships_skipped,
        "; answer malformed" if report.malformed else "; model failed" if report.model_failed else "",
    )


async def reflect(runtime: AgentRuntime, message: Memory) -> ReflectionReport:
    """Reflect on ``message``'s room now: ask TEXT_SMALL, store facts and relationships.

    Args:
        runtime: The agent's runtime.
        message: The message that triggered the reflection (its room is reflected on; it is
            the facts' source message).

    Returns:
        What was stored. A failed model call or a malformed answer stores nothing and is
        reported, not raised.

    Raises:
        DatabaseError: reading the context or storing failed (``handler`` logs it).
    """
    agent_id = runtime.agent_id
    messages, entities, relationships, known, room = await _read_context(runtime, message)
    people = _People(runtime, entities)
    prompt = compose_prompt(
        runtime.character.templates.get("reflectionTemplate") or REFLECTION_TEMPLATE,
        {
            "agentName": runtime.character.name,
            "roomType": (room.type.value if room else message.content.channel_type) or "unknown",
            "senderName": clean_name(people.name(message.entity_id)),
            "senderId": str(message.entity_id),
            "entitiesInRoom": people.listing(message.entity_id, messages),
            "existingRelationships": people.format_relationships(relationships) or "None yet.",
            "recentMessages": people.transcript(messages) or "(no messages)",
            "knownFacts": "\n".join(f"- {quote_block(m.text)}" for m in reversed(known.memories)) or "None yet.",
        },
    )
    report = ReflectionReport()
    try:
        raw = await runtime.use_model(ModelType.TEXT_SMALL, {"prompt": prompt})
    except Exception as exc:
        logger.warning("reflection model call failed for agent %s: %s", agent_id, exc)
        report.model_failed = True
        return report
    answer = parse_reflection(raw if isinstance(raw, str) else "")
    if answer is None:
        logger.warning(
            "reflection answer of agent %s is malformed (no <facts> and <relationships>); nothing stored: %.200r",
            agent_id,
            raw,
        )
        report.malformed = True
        return report
    report.thought = answer.thought
    await _store_facts(runtime, message, answer.facts, people, report)
    await _store_relationships(runtime, answer.relationships, people, room.type.value if room else None, report)
    return report


async def _read_context(
    runtime: AgentRuntime, message: Memory
) -> tuple[list[Memory], list[Entity], list[Relationship], MemoryPage, Room | None]:
    """What the prompt shows, read together, and the room's marker moved to the newest message.

    elizaOS reads the relationships, the room with its entities and the known facts in one
    ``Promise.all``. Here the five reads go out together in one pipelined block
    (``core.db.pipelined``: one round trip on a pinning pool). The participants and the room
    come from the turn's shared reads (``core.bootstrap.shared``, with components as elizaOS's
    ``getEntityDetails``): RECENT_MESSAGES and ENTITIES read the participants before the reply,
    so in a turn they cost no statement here. The marker write needs the newest message, so it
    is sent after the reads, still in the block: it goes out with the block's final Sync
    instead of a round trip of its own, and commits there. A failed read fails the block before
    the write is sent. A lost connection fails the block; any other write error is seen only
    at the Sync, where the block logs it instead of raising (the key and value are checked
    before sending, so only a database fault gets there): the marker is then kept in this
    process only, and the window is reflected on again later, as the module's docstring says.

    Returns:
        The room's newest ``CONVERSATION_LENGTH`` messages (oldest first), its participants,
        the sender's relationships, up to ``KNOWN_FACTS`` of the room's facts (newest first),
        and the room (``None`` when the agent has none of that id).

    Raises:
        DatabaseError: a read failed, or the connection was lost
            (``TransientDatabaseError``), or (outside a pinning pool) the marker write failed.
    """
    agent_id, adapter, room_id = runtime.agent_id, runtime.adapter, message.room_id
    async with pipelined(getattr(adapter, "pool", None)):
        # The messages (the largest answer) are sent last: an answer over the server's 8 KB
        # output buffer goes out before the Flush, and sent first it would arrive while the
        # other reads are still being sent. The client waits for it either way only at the
        # Flush, but the wire counter (bench/_pg_wire.py) would count one more round trip.
        entities, relationships, known, room, messages = await asyncio.gather(
            cached_room_entities(runtime, room_id),
            adapter.get_relationships(agent_id, message.entity_id),
            adapter.list_memories(agent_id, table=FACTS_TABLE, room_id=room_id, limit=KNOWN_FACTS),
            cached_room(runtime, room_id),
            runtime.get_memories(room_id, "messages", conversation_length(runtime)),
        )
        newest = max([m.created_at for m in messages] + [message.created_at])
        await adapter.set_cache(agent_id, marker_key(room_id), {"messageId": str(message.id), "createdAt": newest})
    _remember_marker(agent_id, room_id, newest)
    return messages, entities, relationships, known, room


async def _store_facts(
    runtime: AgentRuntime,
    message: Memory,
    extracted: Iterable[ExtractedFact],
    people: _People,
    report: ReflectionReport,
) -> None:
    facts: list[Fact] = []
    for item in list(extracted)[:MAX_FACTS_PER_REFLECTION]:
        if item.in_bio or item.already_known:
            report.facts_skipped += 1
            continue
        try:
            facts.append(
                Fact(
                    agent_id=runtime.agent_id,
                    room_id=message.room_id,
                    world_id=message.world_id,
                    entity_id=people.resolve(item.subject),
                    object_entity_id=people.resolve(item.object),
                    text=item.claim,
                    subject=item.subject,
                    predicate=item.predicate,
                    object=item.object,
                    confidence=REFLECTION_FACT_CONFIDENCE,
                    kind=fact_kind(item.kind),
                    source="reflection",
                    source_message_id=message.id,
                )
            )
        except ValidationError as exc:
            logger.warning("reflection fact skipped (%s): %.200r", exc.errors()[0].get("msg"), item.claim)
            report.facts_skipped += 1
    if not facts:
        return
    for write in await store_facts(runtime, facts, priority="low"):
        report.stored.append(write.fact)
        if write.created:
            report.facts_created += 1
        else:
            report.facts_confirmed += 1


async def _store_relationships(
    runtime: AgentRuntime,
    extracted: Iterable[ExtractedRelationship],
    people: _People,
    room_type: str | None,
    report: ReflectionReport,
) -> None:
    adapter, agent_id = runtime.adapter, runtime.agent_id
    agent_entity_ready = False
    for item in list(extracted)[:MAX_RELATIONSHIPS_PER_REFLECTION]:
        source, target = people.resolve(item.source), people.resolve(item.target)
        if source is None or target is None or source == target:
            logger.info(
                "reflection relationship skipped: %r -> %r does not resolve to two participants",
                item.source,
                item.target,
            )
            report.relationships_skipped += 1
            continue
        if agent_id in (source, target) and not agent_entity_ready:
            # The agent has no entities row until it takes part in a relationship (elizaOS
            # creates one at start-up); relationships need one at each end.
            await adapter.create_entities([Entity(id=agent_id, agent_id=agent_id, names=people.agent_names)])
            agent_entity_ready = True
        tags = list(item.tags) or ([f"{room_type.lower()}_interaction"] if room_type else [])
        created = await adapter.create_relationship(agent_id, source, target, tags=tags)
        tie = await adapter.record_interaction(agent_id, source, target) if created else None
        if tie is None:
            report.relationships_skipped += 1
            continue
        report.relationships += 1
        report.ties.append(tie)


class _People:
    """The room's participants and the agent: names for the prompt, ids for what the model names."""

    def __init__(self, runtime: AgentRuntime, entities: Sequence[Entity]) -> None:
        self.agent_id = runtime.agent_id
        character = runtime.character
        self.agent_names = [n for n in (character.name, character.username) if n]
        self.entities = {e.id: e for e in entities}
        self.names = {e.id: (e.names[0] if e.names else "User") for e in entities}
        self.names[self.agent_id] = character.name
        self._by_name: dict[str, UUID | None] = {}
        for entity_id, names in [(self.agent_id, self.agent_names), *((e.id, e.names) for e in entities)]:
            for name in names:
                key = name.strip().casefold()
                # A name two entities share resolves to neither: a guess would be a wrong tie.
                self._by_name[key] = entity_id if self._by_name.get(key, entity_id) == entity_id else None

    def name(self, entity_id: UUID) -> str:
        """The display name for the prompt (quoted: names are the senders' data)."""
        return clean_name(self.names.get(entity_id))

    def resolve(self, ref: str | None) -> UUID | None:
        """An id or exact name (any case) of a participant or the agent; ``None`` otherwise."""
        if not ref:
            return None
        text = ref.strip()
        try:
            candidate = UUID(text)
        except ValueError:
            return self._by_name.get(text.casefold())
        return candidate if candidate in self.entities or candidate == self.agent_id else None

    def listing(self, sender: UUID, messages: Sequence[Memory]) -> str:
        """Participants for the prompt: the sender, then recent speakers, then the others (bounded)."""
        order = list(dict.fromkeys([sender, *(m.entity_id for m in reversed(messages)), *self.entities]))
        people = [e for e in order if e in self.entities and e != self.agent_id]
        shown = people[:MAX_LISTED_ENTITIES]
        lines = [f"- {self.name(e)} (ID: {e})" for e in shown]
        if len(people) > len(shown):
            lines.append(f"- ... and {len(people) - len(shown)} more who did not speak recently")
        lines.append(f"- {self.name(self.agent_id)} (ID: {self.agent_id}) [you, the agent]")
        return "\n".join(lines)

    def transcript(self, messages: Sequence[Memory]) -> str:
        lines = []
        for m in messages:
            if not m.text:
                continue
            at = datetime.fromtimestamp(m.created_at / 1000, UTC).strftime("%Y-%m-%d %H:%M")
            lines.append(f"[{at}] {self.name(m.entity_id)}: {quote_block(m.text[:MAX_MESSAGE_CHARS])}")
        return "\n".join(lines)

    def format_relationships(self, relationships: Sequence[Relationship]) -> str:
        return "\n".join(
            f"- {clean_name(self.names.get(r.source_entity_id), str(r.source_entity_id))} -> "
            f"{clean_name(self.names.get(r.target_entity_id), str(r.target_entity_id))}: "
            f"{quote_data(', '.join(r.tags)) or 'no tags'}"
            f" ({r.interaction_count} interactions, strength {r.strength:.2f})"
            for r in relationships[:30]
        )


reflection = Evaluator(
    name="REFLECTION",
    description="Generate a self-reflective thought on the conversation, then extract facts and relationships"
    " between the people in it.",
    handler=handler,
    validate=validate,
    # Learn from group conversations where the agent stays quiet too; ``validate`` keeps it
    # to one reflection every REFLECTION_INTERVAL messages.
    always_run=True,
)
