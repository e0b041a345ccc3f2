"""Settings of the scheduled run, read once in the init phase from the environment.

| variable | default | meaning |
|---|---|---|
| ``TASK_CONCURRENCY`` | ``4`` | tasks run at the same time by one invocation |
| ``TASK_TIMEOUT_S`` | ``60`` | longest run of one task (s); below the function timeout minus the reserve |
| ``TASK_TIME_RESERVE_S`` | ``10`` | no claim once less than ``TASK_TIMEOUT_S`` + this remains (s) |
| ``TASK_LEASE_MARGIN_S`` | ``30`` | a lease outlives the invocation's deadline by this much (s) |
| ``TASK_MAX_ATTEMPTS`` | ``5`` | runs of a task before it is marked ``failed`` (a success resets the count) |
| ``TASK_RETRY_BASE_DELAY_S`` | ``30`` | wait before the first retry (s), doubled for each next one |
| ``TASK_RETRY_MAX_DELAY_S`` | ``3600`` | longest wait between retries (s) |
| ``TASK_MAX_PER_RUN`` | ``500`` | most tasks one invocation claims |
| ``EMBEDDING_PENDING_AFTER_S`` | ``300`` | a memory still without a current vector this long is queued again (s) |
| ``EMBEDDING_PENDING_MAX_AGE_S`` | ``86400`` | older memories are not looked at (s): bounds the scan |
| ``EMBEDDING_REQUEUE_LIMIT`` | ``500`` | most memories re-queued per run |
| ``CACHE_SWEEP_LIMIT`` | ``1000`` | most expired cache rows deleted per run |
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import ConfigurationError

#: Backoff doubling stops here (2**30 x the base is past any sane maximum; avoids overflow).
_MAX_DOUBLINGS = 30


def _from_env(cls: type[BaseModel], variables: Mapping[str, str], environ: Mapping[str, str] | None) -> BaseModel:
    env = os.environ if environ is None else environ
    raw = {field: env[var] for field, var in variables.items() if env.get(var)}
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        parts = [f"{variables.get(str(e['loc'][0]), e['loc'][0]) if e['loc'] else 'settings'}: {e['msg']}"
                 for e in exc.errors()]
        raise ConfigurationError("invalid settings: " + "; ".join(parts)) from None


class TaskRunnerSettings(BaseModel):
    """How the runner claims and runs tasks (see the module docstring for the variables).

    Attributes:
        concurrency: Tasks run at once (``TASK_CONCURRENCY``).
        task_timeout_s: Longest run of one task, seconds (``TASK_TIMEOUT_S``).
        time_reserve_s: Seconds kept free at the end of an invocation (``TASK_TIME_RESERVE_S``).
        lease_margin_s: Seconds a lease outlives the invocation's deadline (``TASK_LEASE_MARGIN_S``).
        max_attempts: Runs before a task is marked failed (``TASK_MAX_ATTEMPTS``).
        retry_base_delay_s: First retry delay, seconds (``TASK_RETRY_BASE_DELAY_S``).
        retry_max_delay_s: Largest retry delay, seconds (``TASK_RETRY_MAX_DELAY_S``).
        max_per_run: Most tasks claimed by one invocation (``TASK_MAX_PER_RUN``).
    """

    model_config = ConfigDict(frozen=True)

    concurrency: int = Field(default=4, ge=1, le=100)
    task_timeout_s: float = Field(default=60.0, gt=0, le=900)
    time_reserve_s: float = Field(default=10.0, ge=0)
    lease_margin_s: float = Field(default=30.0, ge=0)
    max_attempts: int = Field(default=5, ge=1, le=100)
    retry_base_delay_s: float = Field(default=30.0, ge=0)
    retry_max_delay_s: float = Field(default=3600.0, ge=0)
    max_per_run: int = Field(default=500, ge=1, le=10_000)

    @model_validator(mode="after")
    def _delays_ordered(self) -> TaskRunnerSettings:
        if self.retry_max_delay_s < self.retry_base_delay_s:
            raise ValueError("TASK_RETRY_MAX_DELAY_S must be >= TASK_RETRY_BASE_DELAY_S")
        return self

    @property
    def claim_needs_ms(self) -> int:
        """Invocation time that must remain to claim a task: its timeout plus the reserve (ms)."""
        return int((self.task_timeout_s + self.time_reserve_s) * 1000)

    def retry_delay_ms(self, attempts: int) -> int:
        """Wait before the next run after ``attempts`` failed runs (1-based), in ms.

        ``retry_base_delay_s`` × 2^(attempts-1), at most ``retry_max_delay_s``. No jitter:
        tasks are few and each has its own due time, so retries do not arrive in a herd.
        """
        doublings = min(max(attempts - 1, 0), _MAX_DOUBLINGS)
        return int(min(self.retry_max_delay_s, self.retry_base_delay_s * 2**doublings) * 1000)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TaskRunnerSettings:
        """Read the ``TASK_*`` variables.

        Raises:
            ConfigurationError: a value is malformed or out of range; the message names it.
        """
        return _from_env(cls, {  # type: ignore[return-value]
            "concurrency": "TASK_CONCURRENCY", "task_timeout_s": "TASK_TIMEOUT_S",
            "time_reserve_s": "TASK_TIME_RESERVE_S", "lease_margin_s": "TASK_LEASE_MARGIN_S",
            "max_attempts": "TASK_MAX_ATTEMPTS", "retry_base_delay_s": "TASK_RETRY_BASE_DELAY_S",
            "retry_max_delay_s": "TASK_RETRY_MAX_DELAY_S", "max_per_run": "TASK_MAX_PER_RUN",
        }, environ)


class HousekeepingSettings(BaseModel):
    """Bounds of the housekeeping done by each scheduled run (see the module docstring).

    Attributes:
        embedding_pending_after_s: Age after which a memory without a current vector is
            queued again, seconds (``EMBEDDING_PENDING_AFTER_S``).
        embedding_pending_max_age_s: Oldest memory looked at, seconds (``EMBEDDING_PENDING_MAX_AGE_S``).
        embedding_requeue_limit: Most memories queued per run (``EMBEDDING_REQUEUE_LIMIT``).
        cache_sweep_limit: Most expired cache rows deleted per run (``CACHE_SWEEP_LIMIT``).
    """

    model_config = ConfigDict(frozen=True)

    embedding_pending_after_s: float = Field(default=300.0, ge=0)
    embedding_pending_max_age_s: float = Field(default=86_400.0, gt=0)
    embedding_requeue_limit: int = Field(default=500, ge=1, le=1000)
    cache_sweep_limit: int = Field(default=1000, ge=1, le=1000)

    @model_validator(mode="after")
    def _window(self) -> HousekeepingSettings:
        if self.embedding_pending_max_age_s <= self.embedding_pending_after_s:
            raise ValueError("EMBEDDING_PENDING_MAX_AGE_S must be > EMBEDDING_PENDING_AFTER_S")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HousekeepingSettings:
        """Read ``EMBEDDING_PENDING_*``, ``EMBEDDING_REQUEUE_LIMIT`` and ``CACHE_SWEEP_LIMIT``.

        Raises:
            ConfigurationError: a value is malformed or out of range; the message names it.
        """
        return _from_env(cls, {  # type: ignore[return-value]
            "embedding_pending_after_s": "EMBEDDING_PENDING_AFTER_S",
            "embedding_pending_max_age_s": "EMBEDDING_PENDING_MAX_AGE_S",
            "embedding_requeue_limit": "EMBEDDING_REQUEUE_LIMIT", "cache_sweep_limit": "CACHE_SWEEP_LIMIT",
        }, environ)
