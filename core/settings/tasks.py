"""Settings of the scheduled run, read once in the init phase from the environment.

| variable | default | meaning |
|---|---|---|
| ``TASK_CONCURRENCY`` | ``4`` | tasks run at the same time by one invocation (1 to 100) |
| ``TASK_TIMEOUT_S`` | ``60`` | longest run of one task (s, up to 900); below the function timeout minus the reserve |
| ``TASK_TIME_RESERVE_S`` | ``10`` | no claim once less than ``TASK_TIMEOUT_S`` + this remains (s) |
| ``TASK_LEASE_MARGIN_S`` | ``30`` | a lease outlives the invocation's deadline by this much (s) |
| ``TASK_MAX_ATTEMPTS`` | ``5`` | runs of a task before it is marked ``failed`` (a success resets the count; 1 to 100) |
| ``TASK_RETRY_BASE_DELAY_S`` | ``30`` | wait before the first retry (s), doubled for each next one |
| ``TASK_RETRY_MAX_DELAY_S`` | ``3600`` | longest wait between retries (s), at least the base delay |
| ``TASK_MAX_PER_RUN`` | ``500`` | most tasks one invocation claims (1 to 10 000) |
| ``EMBEDDING_PENDING_AFTER_S`` | ``300`` | a memory still without a current vector this long is queued again (s) |
| ``EMBEDDING_VISIBILITY_TIMEOUT_S`` | ``360`` | queues' visibility timeout (s, 1-43200): none queued again sooner |
| ``EMBEDDING_MAX_REQUEUES`` | ``3`` | times the sweep queues one text again before marking it failed (1 to 100) |
| ``EMBEDDING_PENDING_MAX_AGE_S`` | ``86400`` | older memories are not looked at (s): bounds the scan; over both above |
| ``EMBEDDING_REQUEUE_LIMIT`` | ``500`` | most memories re-queued per run (1 to 1000) |
| ``CACHE_SWEEP_LIMIT`` | ``1000`` | most expired cache rows deleted per run (1 to 1000) |

Both groups are read by ``core.settings.load_settings`` (``TaskRunnerSettings.from_env()``):
a malformed or out-of-range value is a ``ConfigurationError`` naming the variable, in the
init phase, so a bad deploy fails before it runs a task.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from core.settings.groups import SettingsGroup

#: Backoff doubling stops here (2**30 x the base is past any sane maximum; avoids overflow).
_MAX_DOUBLINGS = 30


class TaskRunnerSettings(SettingsGroup):
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

    concurrency: int = Field(default=4, ge=1, le=100, validation_alias="TASK_CONCURRENCY")
    task_timeout_s: float = Field(default=60.0, gt=0, le=900, validation_alias="TASK_TIMEOUT_S")
    time_reserve_s: float = Field(default=10.0, ge=0, validation_alias="TASK_TIME_RESERVE_S")
    lease_margin_s: float = Field(default=30.0, ge=0, validation_alias="TASK_LEASE_MARGIN_S")
    max_attempts: int = Field(default=5, ge=1, le=100, validation_alias="TASK_MAX_ATTEMPTS")
    retry_base_delay_s: float = Field(default=30.0, ge=0, validation_alias="TASK_RETRY_BASE_DELAY_S")
    retry_max_delay_s: float = Field(default=3600.0, ge=0, validation_alias="TASK_RETRY_MAX_DELAY_S")
    max_per_run: int = Field(default=500, ge=1, le=10_000, validation_alias="TASK_MAX_PER_RUN")

    @model_validator(mode="after")
    def _delays_ordered(self) -> TaskRunnerSettings:
        if self.retry_max_delay_s < self.retry_base_delay_s:
            raise ValueError(
                f"TASK_RETRY_MAX_DELAY_S: must be at least TASK_RETRY_BASE_DELAY_S "
                f"({self.retry_base_delay_s:g}), got {self.retry_max_delay_s:g}"
            )
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


class HousekeepingSettings(SettingsGroup):
    """Bounds of the housekeeping done by each scheduled run (see the module docstring).

    Attributes:
        embedding_pending_after_s: Age after which a memory without a current vector is
            queued again, seconds (``EMBEDDING_PENDING_AFTER_S``).
        embedding_visibility_timeout_s: The queues' visibility timeout, seconds
            (``EMBEDDING_VISIBILITY_TIMEOUT_S``): a request younger than that may still be in flight.
        embedding_max_requeues: Re-queues of one text before the sweep marks it failed
            (``EMBEDDING_MAX_REQUEUES``).
        embedding_pending_max_age_s: Oldest memory looked at, seconds (``EMBEDDING_PENDING_MAX_AGE_S``);
            also the age from which the documents status counts an unembedded fragment as failed.
        embedding_requeue_limit: Most memories queued per run (``EMBEDDING_REQUEUE_LIMIT``).
        cache_sweep_limit: Most expired cache rows deleted per run (``CACHE_SWEEP_LIMIT``).
    """

    embedding_pending_after_s: float = Field(default=300.0, ge=0, validation_alias="EMBEDDING_PENDING_AFTER_S")
    embedding_visibility_timeout_s: float = Field(
        default=360.0, ge=1, le=43_200, validation_alias="EMBEDDING_VISIBILITY_TIMEOUT_S"
    )
    embedding_max_requeues: int = Field(default=3, ge=1, le=100, validation_alias="EMBEDDING_MAX_REQUEUES")
    embedding_pending_max_age_s: float = Field(default=86_400.0, gt=0, validation_alias="EMBEDDING_PENDING_MAX_AGE_S")
    embedding_requeue_limit: int = Field(default=500, ge=1, le=1000, validation_alias="EMBEDDING_REQUEUE_LIMIT")
    cache_sweep_limit: int = Field(default=1000, ge=1, le=1000, validation_alias="CACHE_SWEEP_LIMIT")

    @model_validator(mode="after")
    def _window(self) -> HousekeepingSettings:
        if self.embedding_pending_max_age_s <= self.requeue_after_s:
            raise ValueError(
                f"EMBEDDING_PENDING_MAX_AGE_S: must be more than EMBEDDING_PENDING_AFTER_S and "
                f"EMBEDDING_VISIBILITY_TIMEOUT_S ({self.requeue_after_s:g}), got {self.embedding_pending_max_age_s:g}"
            )
        return self

    @property
    def requeue_after_s(self) -> float:
        """Least seconds between two queueings of one memory: the pending age, at least a visibility timeout.

        Sooner, the first request may still be waiting in the queue or be received by a worker,
        and a second one would only pile up behind it.
        """
        return max(self.embedding_pending_after_s, self.embedding_visibility_timeout_s)
