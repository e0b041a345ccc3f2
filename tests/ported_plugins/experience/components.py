"""RECORD_EXPERIENCE, the EXPERIENCE provider and EXPERIENCE_EVALUATOR (elizaOS plugin-experience
``src/actions/record-experience.ts``, ``src/providers/experienceProvider.ts``,
``src/evaluators/experienceEvaluator.ts``).

Source: https://github.com/elizaOS/classified/tree/7f3e156b3182c1ff22058522ae927ee3286eac24/packages/plugin-experience/src
License: MIT, Copyright (c) 2025 Shaw Walters and elizaOS Contributors (ported to Python; the
extraction prompt is upstream's text).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

from core.plugin import Action, Evaluator, Provider, ProviderResult
from core.types import Content, Memory, ModelType, State

from .service import ExperienceService
from .types import EXPERIENCE_SERVICE_TYPE, EXPERIENCES_TABLE, ExperienceQuery, ExperienceType, OutcomeType

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)

#: The cache key of the evaluator's message counter (upstream's, verbatim).
EXTRACTION_COUNTER_KEY = "experience-extraction:last-message-count"

EXTRACTION_TEMPLATE = """Analyze this conversation for novel learning experiences that would be surprising or valuable to remember.

Conversation context:
{conversation}

Existing similar experiences:
{existing}

Extract ONLY experiences that are:
1. Genuinely novel (not in existing experiences)
2. Actionable learnings about how things work
3. Corrections of previous mistakes or assumptions
4. Discoveries of new capabilities or patterns
5. Surprising outcomes that contradict expectations

Focus on technical knowledge, patterns, and cause-effect relationships that transfer to other contexts.
Avoid personal details, user-specific information, or routine interactions.

Respond with JSON array of experiences (max 3):
[{{
  "type": "DISCOVERY|CORRECTION|SUCCESS|LEARNING",
  "learning": "What was learned (generic, transferable)",
  "context": "What situation triggered this (anonymized)",
  "confidence": 0.0-1.0,
  "reasoning": "Why this is novel and valuable"
}}]

Return empty array [] if no novel experiences found."""  # noqa: E501 (elizaOS's text)

_DOMAINS = {
    "shell": ("command", "terminal", "bash", "shell", "execute", "script", "cli"),
    "coding": ("code", "function", "variable", "syntax", "programming", "debug", "typescript", "javascript"),
    "system": ("file", "directory", "process", "memory", "cpu", "system", "install", "package"),
    "network": ("http", "api", "request", "response", "url", "network", "fetch", "curl"),
    "data": ("json", "csv", "database", "query", "data", "sql", "table"),
    "ai": ("model", "llm", "embedding", "prompt", "token", "inference"),
}
_SANITIZE = (
    (re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,}\b"), "[EMAIL]"),
    (re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b"), "[IP]"),
    (re.compile(r"/Users/[^/\s]+"), "/Users/[USER]"),
    (re.compile(r"/home/[^/\s]+"), "/home/[USER]"),
    (re.compile(r"\b[A-Z0-9]{20,}\b"), "[TOKEN]"),
    (re.compile(r"\b(user|person|someone|they)\s+(said|asked|told|mentioned)", re.IGNORECASE), "when asked"),
)


def _service(runtime: AgentRuntime) -> ExperienceService | None:
    service = runtime.get_service(EXPERIENCE_SERVICE_TYPE)
    return service if isinstance(service, ExperienceService) else None


# --- RECORD_EXPERIENCE ---------------------------------------------------------------------


async def _mentions_remember(runtime: AgentRuntime, message: Memory, state: State | None) -> bool:
    """Upstream's validate: the text contains "remember" or "record" (any case)."""
    text = (message.text or "").lower()
    return "remember" in text or "record" in text


async def _record_experience(runtime: AgentRuntime, message: Memory, state: State | None, *_: Any) -> None:
    """Store the message as an ``experiences`` memory with the turn's context (upstream's shape);
    its id is derived from the message's, so a retried turn stores it once."""
    context = None
    if state is not None:
        context = {k: state.values.get(k) for k in ("recentMessages", "entities", "facts")}
    note = Memory(
        id=uuid.uuid5(runtime.agent_id, f"experience-{message.id}"),
        entity_id=message.entity_id,
        agent_id=runtime.agent_id,
        room_id=message.room_id,
        content=Content(text=message.text, source=message.content.source, type="experience", context=context),
    )
    await runtime.create_memory(note, EXPERIENCES_TABLE)


RECORD_EXPERIENCE = Action(
    name="RECORD_EXPERIENCE",
    description="Manually record a learning experience",
    handler=_record_experience,
    validate=_mentions_remember,
    examples=(
        (
            {
                "name": "{{name1}}",
                "content": {"text": "Remember that installing dependencies is required for Python scripts"},
            },
            {
                "name": "{{agentName}}",
                "content": {
                    "text": (
                        "I'll record that experience. Learning: Need to install dependencies "
                        "before running Python scripts."
                    ),
                    "actions": ["RECORD_EXPERIENCE"],
                },
            },
        ),
    ),
)


# --- EXPERIENCE provider ----------------------------------------------------------------------


async def _relevant_experiences(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    """Up to 5 experiences like the message (confidence ≥ 0.6, importance ≥ 0.5); nothing for
    texts under 10 characters or without the service."""
    service = _service(runtime)
    text = message.text or ""
    if service is None or len(text) < 10:
        return ProviderResult()
    query = ExperienceQuery(query=text, limit=5, min_confidence=0.6, min_importance=0.5)
    found = await service.query_experiences(runtime, query)
    if not found:
        return ProviderResult()
    lines = "\n".join(
        f"Experience {i}: In {e.domain} context, when {e.context}, I learned: {e.learning}"
        for i, e in enumerate(found, start=1)
    )
    return ProviderResult(
        text=f"[RELEVANT EXPERIENCES]\n{lines}\n[/RELEVANT EXPERIENCES]",
        data={"experiences": found, "count": len(found)},
    )


EXPERIENCE_PROVIDER = Provider(
    name="EXPERIENCE",
    get=_relevant_experiences,
    description="Provides relevant past experiences and learnings for the current context",
)


# --- EXPERIENCE_EVALUATOR -------------------------------------------------------------------


async def _every_tenth_agent_message(runtime: AgentRuntime, message: Memory, state: State | None) -> bool:
    """Upstream's validate: only the agent's own messages, counted in the cache; true on every 10th."""
    if message.entity_id != runtime.agent_id:
        return False
    count = int(await runtime.get_cache(EXTRACTION_COUNTER_KEY) or "0") + 1
    await runtime.set_cache(EXTRACTION_COUNTER_KEY, str(count))
    return count % 10 == 0


async def _extract_experiences(runtime: AgentRuntime, message: Memory, state: State | None, *_: Any) -> None:
    """Ask TEXT_LARGE for up to 3 novel experiences in the last 10 messages and record those
    with confidence ≥ 0.6 (capped at 0.9, importance 0.8); fewer than 3 messages: nothing."""
    service = _service(runtime)
    recent = _recent_messages(state)[-10:]
    if service is None or len(recent) < 3:
        return
    conversation = " ".join(m.text for m in recent if m.text)
    existing = await service.query_experiences(
        runtime, ExperienceQuery(query=conversation, limit=10, min_confidence=0.7)
    )
    prompt = EXTRACTION_TEMPLATE.format(
        conversation=conversation, existing="\n".join(f"- {e.learning}" for e in existing) or "None"
    )
    answer = str(await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": prompt}))
    for found in _parse_experiences(answer)[:3]:
        if not found.get("learning") or not found.get("confidence") or found["confidence"] < 0.6:
            continue
        await _record_extracted(runtime, service, found)


async def _record_extracted(runtime: AgentRuntime, service: ExperienceService, found: dict[str, Any]) -> None:
    kind = {t.name: t for t in (ExperienceType.DISCOVERY, ExperienceType.CORRECTION, ExperienceType.SUCCESS)}.get(
        str(found.get("type")), ExperienceType.LEARNING
    )
    await service.record_experience(
        runtime,
        type=kind,
        outcome=OutcomeType.POSITIVE if kind is ExperienceType.CORRECTION else OutcomeType.NEUTRAL,
        context=sanitize_context(found.get("context") or "Conversation analysis"),
        action="pattern_recognition",
        result=found["learning"],
        learning=sanitize_context(found["learning"]),
        domain=detect_domain(found["learning"]),
        tags=["extracted", "novel", str(found.get("type", "learning")).lower()],
        confidence=min(float(found["confidence"]), 0.9),
        importance=0.8,
    )


def _recent_messages(state: State | None) -> list[Memory]:
    """The RECENT_MESSAGES provider's memories (upstream reads ``state.recentMessagesData``)."""
    result = (state.data.get("providers", {}) if state else {}).get("RECENT_MESSAGES")
    return list(result.data.get("recentMessages", [])) if result is not None else []


def _parse_experiences(answer: str) -> list[dict[str, Any]]:
    """The first ``[...]`` of the answer as JSON objects; nothing when it is not JSON."""
    match = re.search(r"\[[\s\S]*\]", answer)
    try:
        parsed = json.loads(match.group(0)) if match else []
    except json.JSONDecodeError:
        return []
    return [p for p in parsed if isinstance(p, dict)] if isinstance(parsed, list) else []


def sanitize_context(text: str) -> str:
    """Upstream's ``sanitizeContext``: emails, IPs, home directories, tokens masked; 200 characters."""
    if not text:
        return "Unknown context"
    for pattern, replacement in _SANITIZE:
        text = pattern.sub(replacement, text)
    return text[:200]


def detect_domain(text: str) -> str:
    """Upstream's ``detectDomain``: the first domain one of whose keywords the text contains."""
    lower = text.lower()
    return next((d for d, words in _DOMAINS.items() if any(w in lower for w in words)), "general")


EXPERIENCE_EVALUATOR = Evaluator(
    name="EXPERIENCE_EVALUATOR",
    description="Periodically analyzes conversation patterns to extract novel learning experiences",
    handler=_extract_experiences,
    validate=_every_tenth_agent_message,
    similes=("experience recorder", "learning evaluator", "self-reflection"),
    examples=(
        {
            "prompt": "The agent discovered a new system capability",
            "messages": [
                {
                    "name": "Autoliza",
                    "content": {
                        "text": "I found that the system has jq installed, which is perfect for parsing JSON data."
                    },
                }
            ],
            "outcome": "Record a DISCOVERY experience about the availability of jq for JSON processing",
        },
    ),
)
