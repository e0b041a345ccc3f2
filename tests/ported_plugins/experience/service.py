"""ExperienceService (elizaOS plugin-experience ``src/service.ts``, ``utils/confidenceDecay.ts``).

Source: https://github.com/elizaOS/classified/blob/7f3e156b3182c1ff22058522ae927ee3286eac24/packages/plugin-experience/src/service.ts
License: MIT, Copyright (c) 2025 Shaw Walters and elizaOS Contributors (ported to Python).

Upstream keeps experiences in a process-local ``Map``; a Lambda container lives minutes, so
here each experience is a memory of type ``experiences`` in the agent's own experiences room
(every memory has a room here), carrying its embedding; semantic queries are
``runtime.search_memories``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from core.services import Service
from core.types import ChannelType, Content, Memory, ModelType, Room
from core.types.memory import now_ms

from .types import EXPERIENCE_SERVICE_TYPE, EXPERIENCES_TABLE, Experience, ExperienceQuery, ExperienceType, OutcomeType

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

DAY_MS = 24 * 60 * 60 * 1000
#: ``DEFAULT_DECAY_CONFIG``: half-life 30 days, never below 0.1, no decay in the first 7 days.
HALF_LIFE_MS, MIN_CONFIDENCE, DECAY_START_DELAY_MS = 30 * DAY_MS, 0.1, 7 * DAY_MS


def experiences_room_id(agent_id: uuid.UUID) -> uuid.UUID:
    """The room holding an agent's experiences (upstream's experiences belong to no room)."""
    return uuid.uuid5(agent_id, "experience:room")


def decayed_confidence(experience: Experience, now: int | None = None) -> float:
    """``ConfidenceDecayManager.getDecayedConfidence`` with the default config (0..1)."""
    age = (now or now_ms()) - experience.created_at
    if age < DECAY_START_DELAY_MS:
        return experience.confidence
    factor = 0.5 ** ((age - DECAY_START_DELAY_MS) / HALF_LIFE_MS)
    return float(max(MIN_CONFIDENCE, experience.confidence * factor))


class ExperienceService(Service):
    """Records experiences and finds them again (service type ``EXPERIENCE``)."""

    service_type = EXPERIENCE_SERVICE_TYPE
    capability_description = (
        "Manages agent experiences, learning from successes and failures to improve future decisions"
    )

    @classmethod
    async def start(cls, runtime: AgentRuntime) -> ExperienceService:
        """``static start``; also ensures the agent's experiences room (a SELF room)."""
        room = Room(
            id=experiences_room_id(runtime.agent_id),
            agent_id=runtime.agent_id,
            name="Experiences",
            source="experience",
            type=ChannelType.SELF,
        )
        await runtime.ensure_room_exists(room)
        return cls(runtime)

    async def record_experience(self, runtime: AgentRuntime, **fields: Any) -> Experience:
        """``recordExperience(partial)``: store one experience with its embedding, emit
        ``EXPERIENCE_RECORDED`` ``{experienceId, eventType: "created", timestamp}``.

        Args:
            runtime: This invocation's runtime (the service's own is the init phase's).
            fields: ``Experience`` fields; missing ones take upstream's defaults.
        """
        created = now_ms()
        experience = Experience(
            id=uuid.uuid4(),
            agent_id=runtime.agent_id,
            type=ExperienceType(fields.get("type") or ExperienceType.LEARNING),
            outcome=OutcomeType(fields.get("outcome") or OutcomeType.NEUTRAL),
            context=fields.get("context") or "",
            action=fields.get("action") or "",
            result=fields.get("result") or "",
            learning=fields.get("learning") or "",
            domain=fields.get("domain") or "general",
            tags=list(fields.get("tags") or []),
            confidence=fields.get("confidence") or 0.5,
            importance=fields.get("importance") or 0.5,
            created_at=created,
            updated_at=created,
        )
        text = f"{experience.context} {experience.action} {experience.result} {experience.learning}"
        embedding = await runtime.use_model(ModelType.TEXT_EMBEDDING, {"text": text})
        await runtime.create_memory(_as_memory(experience, embedding), EXPERIENCES_TABLE)
        await runtime.emit_event(
            "EXPERIENCE_RECORDED",
            {"runtime": runtime, "experienceId": experience.id, "eventType": "created", "timestamp": created},
        )
        return experience

    async def query_experiences(self, runtime: AgentRuntime, query: ExperienceQuery) -> list[Experience]:
        """``queryExperiences``: by similarity to ``query.query`` when given (nearest first),
        else every experience ranked by decayed confidence × importance; then the filters."""
        if query.query:
            embedding = await runtime.use_model(ModelType.TEXT_EMBEDDING, {"text": query.query})
            found = await runtime.search_memories(embedding, table=EXPERIENCES_TABLE, count=query.limit)
            return [e for e in _experiences(found) if _matches(e, query)]
        stored = await runtime.get_memories(experiences_room_id(runtime.agent_id), EXPERIENCES_TABLE, count=10_000)
        kept = [e for e in _experiences(stored) if _matches(e, query)]
        kept.sort(key=lambda e: decayed_confidence(e) * e.importance, reverse=True)
        return kept[: query.limit]


def _matches(experience: Experience, query: ExperienceQuery) -> bool:
    """Upstream's filters of ``queryExperiences``."""
    return not (
        (query.type and experience.type not in query.type)
        or (query.outcome and experience.outcome != query.outcome)
        or (query.domain and experience.domain not in query.domain)
        or (query.tags and not set(query.tags) & set(experience.tags))
        or (query.min_confidence is not None and decayed_confidence(experience) < query.min_confidence)
        or (query.min_importance is not None and experience.importance < query.min_importance)
    )


def _as_memory(experience: Experience, embedding: list[float]) -> Memory:
    """The experience as a memory of the agent's experiences room, its fields under ``experience``."""
    fields = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in asdict(experience).items()}
    return Memory(
        id=experience.id,
        entity_id=experience.agent_id,
        agent_id=experience.agent_id,
        room_id=experiences_room_id(experience.agent_id),
        content=Content(text=experience.learning, source="experience", experience=fields),
        embedding=embedding,
    )


def _experiences(memories: list[Memory]) -> list[Experience]:
    """The experiences among ``memories`` (RECORD_EXPERIENCE's raw notes carry none)."""
    return [_from_memory(m) for m in memories if (m.content.model_extra or {}).get("experience")]


def _from_memory(memory: Memory) -> Experience:
    fields = dict((memory.content.model_extra or {})["experience"])
    fields.update(id=uuid.UUID(fields["id"]), agent_id=uuid.UUID(fields["agent_id"]))
    fields.update(type=ExperienceType(fields["type"]), outcome=OutcomeType(fields["outcome"]))
    return Experience(**fields)
