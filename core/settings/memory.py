"""Memory settings of one agent: retention (``core.memory.retention``) and reflection
(``core.memory.reflection``), read with ``runtime.get_setting`` (character secrets, character
settings, runtime settings, environment):

| setting | default | meaning |
|---|---|---|
| ``MESSAGE_RETENTION_DAYS`` | unset (keep) | messages older than this many days are compressed / deleted |
| ``MESSAGE_RETENTION_SUMMARIZE`` | ``true`` | summarise messages before deleting them |
| ``RETENTION_MAX_ROWS`` | ``500`` | rows deleted (orphans: facts looked at) per task run, 1 to 1000 |
| ``RETENTION_MAX_SUMMARIES`` | ``5`` | summary model calls per run, 0 to 100 |
| ``FACTS_MAX_PER_ROOM`` | ``200`` | facts kept per room |
| ``FACT_HALF_LIFE_DAYS`` | ``30`` | age (since last confirmed) that halves a fact's score |
| ``RETENTION_INTERVAL_S`` | ``3600`` | time between runs of each task (s, at least 60), for new tasks |
| ``REFLECTION_INTERVAL`` | ``ceil(CONVERSATION_LENGTH / 4)`` | messages between reflections, 1 to 1000 |

A malformed or out-of-range value is a ``ConfigurationError`` naming the setting: a retention
run records it as its task's ``lastError``; the reflection evaluator's failure is logged and
skipped by the runtime, so the turn's reply is unaffected.
"""

from __future__ import annotations

from pydantic import Field

from core.settings.groups import AgentSetting, SettingsGroup


class RetentionSettings(SettingsGroup):
    """The retention settings of one agent (see the module docstring).

    Attributes:
        message_retention_days: Age (days) past which messages go; ``None`` keeps them.
        summarize: Summarise messages before deleting them.
        max_rows: Rows deleted (orphans: facts looked at) per task run.
        max_summaries: Summary model calls per run.
        facts_max_per_room: Facts kept per room.
        fact_half_life_days: Age that halves a fact's score (days).
        interval_s: Seconds between runs of each task.
    """

    message_retention_days: float | None = Field(default=None, gt=0, validation_alias="MESSAGE_RETENTION_DAYS")
    summarize: bool = Field(default=True, validation_alias="MESSAGE_RETENTION_SUMMARIZE")
    max_rows: int = Field(default=500, ge=1, le=1000, validation_alias="RETENTION_MAX_ROWS")
    max_summaries: int = Field(default=5, ge=0, le=100, validation_alias="RETENTION_MAX_SUMMARIES")
    facts_max_per_room: int = Field(default=200, ge=1, validation_alias="FACTS_MAX_PER_ROOM")
    fact_half_life_days: float = Field(default=30.0, gt=0, validation_alias="FACT_HALF_LIFE_DAYS")
    interval_s: float = Field(default=3600.0, ge=60, validation_alias="RETENTION_INTERVAL_S")


#: Messages in a room between two reflections; its default derives from ``CONVERSATION_LENGTH``.
REFLECTION_INTERVAL = AgentSetting("REFLECTION_INTERVAL", int, 8, minimum=1, maximum=1000)
