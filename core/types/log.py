"""Logs (elizaOS ``Log``, ``ModelLogBody``, ``ActionLogBody`` in ``types/database.ts``).

A log is an audit record: ``type`` says what happened and ``body`` is open JSON. Two bodies
are typed here because the runtime writes them on every turn: model usage (``useModel``)
and action runs (``action``). Build them with ``model_usage_log`` and ``action_log``; read
them back with ``ModelUsageBody.model_validate(log.body)``.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import Field, model_validator

from core.types._base import ElizaModel
from core.types.memory import now_ms


class LogType(StrEnum):
    """Log types the runtime writes (any other string is allowed too)."""

    USE_MODEL = "useModel"
    ACTION = "action"
    EVALUATOR = "evaluator"
    EMBEDDING = "embedding"


class Log(ElizaModel):
    """One log entry.

    Attributes:
        id: Log id (random uuid4 when not given).
        agent_id: The agent that wrote it (every query is scoped by it).
        entity_id: Who it is about (the agent itself for model usage).
        room_id: Where it happened, if anywhere.
        type: What happened (``LogType`` or any non-empty string).
        body: JSON object; values that are not JSON (UUID, datetime...) are stored as strings.
        created_at: Milliseconds since the epoch.
    """

    id: UUID = Field(default_factory=uuid.uuid4)
    agent_id: UUID
    entity_id: UUID
    room_id: UUID | None = None
    type: str = Field(min_length=1, max_length=200)
    body: dict[str, Any] = {}
    created_at: int = Field(default_factory=now_ms)


class ModelUsageBody(ElizaModel):
    """Body of a ``useModel`` log: one model call.

    Attributes:
        model_type: ``ModelType`` value (``"TEXT_SMALL"``...).
        provider: Provider that served the call (``"openai"``, ``"local"``...).
        model: Model id, when known (``"gpt-4o-mini"``).
        duration_ms: Wall time of the call in milliseconds (elizaOS ``executionTime``).
        prompt_tokens: Tokens in, when the provider reports them.
        completion_tokens: Tokens out, when the provider reports them.
        total_tokens: Tokens in and out; computed when both parts are known and it is not given.
        run_id: The turn (run) the call belongs to (``AgentRuntime.get_current_run_id``,
            filled by ``record_usage``); ``None`` outside a run.
        error: Why the call failed, when it did.
    """

    model_type: str
    provider: str
    model: str | None = None
    duration_ms: float = Field(alias="executionTime", ge=0)
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    total_tokens: int | None = Field(default=None, ge=0)
    # Left to right: a stored id reads back as a UUID; any other string stays a string.
    run_id: UUID | str | None = Field(default=None, union_mode="left_to_right")
    error: str | None = None

    @model_validator(mode="after")
    def _fill_total(self) -> ModelUsageBody:
        if self.total_tokens is None and self.prompt_tokens is not None and self.completion_tokens is not None:
            self.total_tokens = self.prompt_tokens + self.completion_tokens
        return self


class ActionLogResult(ElizaModel):
    """What an action returned (elizaOS ``ActionLogResult``)."""

    success: bool | None = None
    text: str | None = None
    error: str | None = None


class ActionLogBody(ElizaModel):
    """Body of an ``action`` log: one action handler run.

    Attributes:
        action: Action name (``"REPLY"``...).
        run_id: The turn (run) the action belongs to.
        message_id: The message that triggered it.
        duration_ms: Wall time of the handler in milliseconds.
        result: What it returned.
    """

    action: str
    run_id: UUID | str | None = None
    message_id: UUID | None = None
    duration_ms: float | None = Field(default=None, alias="duration", ge=0)
    result: ActionLogResult | None = None


def model_usage_log(
    agent_id: UUID, body: ModelUsageBody, *, entity_id: UUID | None = None, room_id: UUID | None = None
) -> Log:
    """A ``useModel`` log for one model call.

    Args:
        agent_id: The calling agent.
        body: The call's details.
        entity_id: Who it is about; the agent itself by default (as elizaOS).
        room_id: The room of the turn, if any.

    Returns:
        The log, ready for ``log`` / ``log_many``.
    """
    return Log(
        agent_id=agent_id,
        entity_id=entity_id or agent_id,
        room_id=room_id,
        type=LogType.USE_MODEL,
        body=body.to_json_dict(),
    )


def action_log(agent_id: UUID, body: ActionLogBody, *, entity_id: UUID, room_id: UUID | None = None) -> Log:
    """An ``action`` log for one action run.

    Args:
        agent_id: The agent that ran the action.
        body: The run's details.
        entity_id: Who the action answered (the message's sender).
        room_id: The room of the turn.

    Returns:
        The log, ready for ``log`` / ``log_many``.
    """
    return Log(agent_id=agent_id, entity_id=entity_id, room_id=room_id, type=LogType.ACTION, body=body.to_json_dict())
