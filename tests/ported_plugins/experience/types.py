"""Experience types (elizaOS plugin-experience ``src/types.ts``).

Source: https://github.com/elizaOS/classified/blob/7f3e156b3182c1ff22058522ae927ee3286eac24/packages/plugin-experience/src/types.ts
License: MIT, Copyright (c) 2025 Shaw Walters and elizaOS Contributors (ported to Python).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

#: ``ExperienceServiceType.EXPERIENCE``.
EXPERIENCE_SERVICE_TYPE = "EXPERIENCE"
#: The memory type experiences are stored under (upstream keeps them in a process-local Map).
EXPERIENCES_TABLE = "experiences"


class ExperienceType(StrEnum):
    """What kind of learning an experience is."""

    SUCCESS = "success"
    FAILURE = "failure"
    DISCOVERY = "discovery"
    CORRECTION = "correction"
    LEARNING = "learning"
    HYPOTHESIS = "hypothesis"
    VALIDATION = "validation"
    WARNING = "warning"


class OutcomeType(StrEnum):
    """How the experience turned out."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    MIXED = "mixed"


@dataclass
class Experience:
    """One learning (``Experience``); times in milliseconds since the epoch, scores in 0..1."""

    id: UUID
    agent_id: UUID
    type: ExperienceType
    outcome: OutcomeType
    context: str
    action: str
    result: str
    learning: str
    domain: str = "general"
    tags: list[str] = field(default_factory=list)
    confidence: float = 0.5
    importance: float = 0.5
    created_at: int = 0
    updated_at: int = 0
    access_count: int = 0


@dataclass(frozen=True)
class ExperienceQuery:
    """``ExperienceQuery``: ``query`` is matched by embedding similarity, the rest filter."""

    query: str | None = None
    type: tuple[ExperienceType, ...] = ()
    outcome: OutcomeType | None = None
    domain: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    min_importance: float | None = None
    min_confidence: float | None = None
    limit: int = 10
