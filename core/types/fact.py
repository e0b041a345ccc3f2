"""Fact: what an agent has learnt, as memories of table ``"facts"`` with a triple and a confidence.

A fact is a claim (``text``) split into ``subject``, ``predicate`` and ``object``, with a
``confidence`` in (0, 1] and the message it came from. It is stored as a memory of table
``"facts"`` (so the embedding worker, vector search and room deletion treat it like any
memory); the triple, the confidence and the bookkeeping live in the memory's metadata
(camelCase keys, elizaOS style).

**Scope of de-duplication: (agent, room, triple).** Facts are scoped by room, as elizaOS
scopes them (its FACTS provider and reflection read the room's facts): what was said in a
DM is not surfaced in a group, a room's deletion takes its facts with it, and fact
consolidation caps facts per room. The same claim learnt in two rooms is two facts, each
with its own confidence. Within a room, two facts are the same when their normalised
triples are (``fact_key``); without a full triple, their normalised texts.

**Confidence.** Stating a fact that exists combines the two confidences as independent
evidence (noisy-OR): ``c' = c + c_new × (1 − c)``, at most 1.0. Two readings at 0.5 give
0.75, a third 0.875. Each piece of evidence counts once: the evidence id (the source
message, else the fact's own id, i.e. one call) is remembered (the last ``MAX_EVIDENCE``),
so a retried write or a second reflection on the same message raises nothing.

**Who a fact is about.** The memory's ``entity_id`` is the entity the fact is about when
known (its subject resolved to a participant), else the agent (elizaOS stores every fact
under the agent). So "facts about this person" uses the entity indexes; and when that
entity is deleted, its facts become orphans that the orphan clean-up removes.

The record and its rules live here, with the other shared records, because the storage layer
(``core.db``) and the memory features (``core.memory``) both use them; storing facts with
de-duplication and embedding is ``core.memory.facts.store_facts``.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Literal, NamedTuple, cast, get_args
from uuid import UUID

from pydantic import ConfigDict, Field, field_validator

from core.types._base import ElizaModel
from core.types.memory import Content, Memory, MemoryMetadata, MemoryType, now_ms

#: elizaOS table name of facts (``memories.type``).
FACTS_TABLE = "facts"
#: Longest fact text and longest subject, predicate or object (characters).
MAX_FACT_TEXT = 2000
MAX_FACT_TERM = 500
#: Evidence ids remembered per fact (older ones may count again; see the module docstring).
MAX_EVIDENCE = 32
#: What a fact's kind may be (elizaOS reflection's ``type``).
FactKind = Literal["fact", "opinion", "status"]

_STRIP = " \t\r\n.!?;:,\"'`"


def fact_kind(value: object) -> FactKind | None:
    """``value`` as a ``FactKind`` when it is one (``"fact"``, ``"opinion"``, ``"status"``), else ``None``."""
    for kind in get_args(FactKind):
        if value == kind:
            return cast(FactKind, kind)
    return None


def normalise_term(text: str) -> str:
    """Casefolded, whitespace collapsed, outer punctuation and quotes stripped: how facts compare."""
    return " ".join(text.casefold().split()).strip(_STRIP)


def fact_key(text: str, subject: str | None = None, predicate: str | None = None, object: str | None = None) -> str:
    """The de-duplication key of a fact (SHA-256 hex).

    Args:
        text: The claim.
        subject, predicate, object: The triple; used when all three are non-blank.

    Returns:
        The hash of the normalised triple, or of the normalised text when the triple is
        incomplete (prefixed differently, so a text never collides with a triple).
    """
    terms = [normalise_term(t or "") for t in (subject, predicate, object)]
    basis = "triple\x1f" + "\x1f".join(terms) if all(terms) else "text\x1f" + normalise_term(text)
    return hashlib.sha256(basis.encode()).hexdigest()


def combine_confidence(stored: float, new: float) -> float:
    """Confidence after independent evidence ``new`` confirms a fact held at ``stored`` (noisy-OR).

    Returns:
        ``stored + new × (1 − stored)``, clamped to [0, 1].
    """
    return min(1.0, max(0.0, stored + new * (1.0 - stored)))


def _check_text(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class Fact(ElizaModel):
    """One fact of one agent in one room.

    Attributes:
        id: Memory id (random uuid4 when not given).
        agent_id: The agent that holds it.
        room_id: The room it was learnt in (facts are scoped by room).
        world_id: The room's world (filled from the room when stored without one).
        entity_id: Who the fact is about, when known; ``None`` means the agent (stored as
            the agent's id).
        text: The claim, one sentence.
        subject, predicate, object: The claim as a triple, when known.
        confidence: Belief in the fact, in (0, 1].
        kind: ``fact`` (stable), ``status`` (true for now) or ``opinion``.
        source: What wrote it (``"reflection"``, ``"api"``...).
        source_message_id: The message it was learnt from.
        object_entity_id: The entity the object names, when it names one.
        mentions: Distinct pieces of evidence so far.
        created_at: First stored, ms since the epoch.
        last_seen_at: Last confirmed, ms since the epoch (``created_at`` until then).
        similarity: Set by vector search.
    """

    model_config = ConfigDict(extra="forbid")

    id: UUID = Field(default_factory=uuid.uuid4)
    agent_id: UUID
    room_id: UUID
    world_id: UUID | None = None
    entity_id: UUID | None = None
    text: str = Field(min_length=1, max_length=MAX_FACT_TEXT)
    subject: str | None = Field(default=None, max_length=MAX_FACT_TERM)
    predicate: str | None = Field(default=None, max_length=MAX_FACT_TERM)
    object: str | None = Field(default=None, max_length=MAX_FACT_TERM)
    confidence: float = Field(default=0.5, gt=0.0, le=1.0)
    kind: FactKind | None = None
    source: str | None = Field(default=None, max_length=64)
    source_message_id: UUID | None = None
    object_entity_id: UUID | None = None
    mentions: int = Field(default=1, ge=1)
    created_at: int = Field(default_factory=now_ms)
    last_seen_at: int | None = None
    similarity: float | None = None

    _text = field_validator("text", "subject", "predicate", "object", "source")(_check_text)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be blank")
        return value.strip()

    @property
    def key(self) -> str:
        """The de-duplication key (``fact_key`` of the text and triple)."""
        return fact_key(self.text, self.subject, self.predicate, self.object)

    @property
    def evidence_id(self) -> str:
        """What counts as one piece of evidence: the source message, else this write."""
        return str(self.source_message_id or self.id)

    def to_memory(self) -> Memory:
        """The fact as the memory that stores it (metadata: triple, confidence, key, evidence)."""
        seen = self.last_seen_at or self.created_at
        extra: dict[str, Any] = {
            "factKey": self.key,
            "confidence": self.confidence,
            "mentions": self.mentions,
            "lastSeenAt": seen,
            "evidence": [self.evidence_id],
        }
        for name, value in (
            ("subject", self.subject),
            ("predicate", self.predicate),
            ("object", self.object),
            ("kind", self.kind),
            ("sourceMessageId", self.source_message_id),
            ("objectEntityId", self.object_entity_id),
        ):
            if value is not None:
                extra[name] = str(value)
        metadata = MemoryMetadata.model_validate(
            {
                "type": MemoryType.CUSTOM,
                "source": self.source,
                "scope": "room",
                "timestamp": self.created_at,
                **extra,
            }
        )
        return Memory(
            id=self.id,
            agent_id=self.agent_id,
            room_id=self.room_id,
            world_id=self.world_id,
            entity_id=self.entity_id or self.agent_id,
            content=Content(text=self.text, source=self.source),
            created_at=self.created_at,
            metadata=metadata,
            similarity=self.similarity,
        )

    @classmethod
    def from_memory(cls, memory: Memory) -> Fact:
        """Read a fact back from its memory.

        Memories of table ``"facts"`` written by other code (elizaOS-style, text only) read
        as facts without a triple, at confidence 0.5.
        """
        meta = memory.metadata.model_extra or {}
        text = (memory.text or "").strip()[:MAX_FACT_TEXT] or "(empty)"
        kind = fact_kind(meta.get("kind"))
        confidence = meta.get("confidence")
        if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence <= 1:
            confidence = 0.5
        return cls(
            id=memory.id,
            agent_id=memory.agent_id,
            room_id=memory.room_id,
            world_id=memory.world_id,
            entity_id=memory.entity_id,
            text=text,
            subject=_term(meta.get("subject")),
            predicate=_term(meta.get("predicate")),
            object=_term(meta.get("object")),
            confidence=float(confidence),
            kind=kind,
            source=memory.metadata.source,
            source_message_id=_uuid(meta.get("sourceMessageId")),
            object_entity_id=_uuid(meta.get("objectEntityId")),
            mentions=_positive(meta.get("mentions")),
            created_at=memory.created_at,
            last_seen_at=_int(meta.get("lastSeenAt")),
            similarity=memory.similarity,
        )


def _term(value: Any) -> str | None:
    return value[:MAX_FACT_TERM] if isinstance(value, str) and value.strip() else None


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _positive(value: Any) -> int:
    number = _int(value)
    return number if number is not None and number >= 1 else 1


class FactWrite(NamedTuple):
    """The outcome of storing one fact.

    Attributes:
        fact: The fact as stored now (the existing one, with its raised confidence, when the
            write confirmed a fact already known).
        created: True when a new fact was stored; False when an existing one was confirmed.
    """

    fact: Fact
    created: bool


class OrphanSweep(NamedTuple):
    """What one window of the orphan sweep (``delete_orphan_facts``) did.

    Attributes:
        scanned: Facts looked at.
        deleted: Orphan facts deleted among them.
        next_cursor: Where the next window starts; ``None`` when this one reached the end
            (the next sweep starts again from the oldest fact).
    """

    scanned: int
    deleted: int
    next_cursor: str | None
