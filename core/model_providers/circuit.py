"""A circuit breaker per model provider, per process.

After ``failure_threshold`` consecutive retryable failures (each one a whole call, retries
included) the provider's circuit opens: calls fail at once with a retryable ``ModelError``,
so the model registry falls back to the next provider instead of waiting on timeouts. After
``cool_down_s`` one call is let through as a probe (half-open): its success closes the
circuit, its failure opens it for another cool-down. Non-retryable failures (a bad request)
say nothing about the provider's health and are not counted.

State lives in the process (a warm Lambda container), never in the database: each container
learns on its own, which is what a breaker wants. The breakers are held by a ``CircuitBreakers``
owned by the process's ``core.model_providers.resources.ProviderResources``; ``provider_health()``
shows that process's circuits.

Thresholds: ``MODEL_CIRCUIT_FAILURES`` (default 3) and ``MODEL_CIRCUIT_COOLDOWN_S`` (default 30),
read once in ``core.settings.providers.ProviderSettings``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from core.errors import ModelError


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(ModelError):
    """The provider is being skipped for a cool-down (retryable: the registry falls back)."""

    def __init__(self, provider: str, retry_in_s: float) -> None:
        super().__init__(
            f"{provider}: circuit open after repeated failures; skipped for {retry_in_s:.1f} s",
            provider=provider,
            retryable=True,
        )
        self.retry_in_s = retry_in_s


class CircuitBreaker:
    """One provider's breaker.

    Args:
        provider: Provider name.
        failure_threshold: Consecutive retryable failures that open the circuit.
        cool_down_s: Seconds the circuit stays open before a probe.
        clock: Monotonic clock in seconds (tests pass a fake).
    """

    def __init__(
        self,
        provider: str,
        failure_threshold: int = 3,
        cool_down_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cool_down_s < 0:
            raise ValueError("failure_threshold must be >= 1 and cool_down_s >= 0")
        self.provider = provider
        self.failure_threshold = failure_threshold
        self.cool_down_s = cool_down_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self.opened_count = 0

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._probing or self._clock() - self._opened_at >= self.cool_down_s:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def before_call(self) -> None:
        """Ask to call the provider now.

        Raises:
            CircuitOpenError: the circuit is open, or half-open with a probe already running.
        """
        if self._opened_at is None:
            return
        remaining = self.cool_down_s - (self._clock() - self._opened_at)
        if remaining > 0 or self._probing:
            raise CircuitOpenError(self.provider, max(remaining, 0.0))
        self._probing = True  # this call is the probe; others wait for its outcome

    def record_success(self) -> None:
        """The call succeeded: close the circuit."""
        self._failures, self._opened_at, self._probing = 0, None, False

    def record_failure(self) -> None:
        """The call failed in a retryable way: count it, open the circuit at the threshold."""
        self._failures += 1
        if self._probing or self._failures >= self.failure_threshold:
            if self._opened_at is None or self._probing:
                self.opened_count += 1
            self._opened_at = self._clock()
        self._probing = False

    def record_neutral(self) -> None:
        """The call ended in a way that says nothing of the provider's health (a 400)."""
        self._probing = False

    def snapshot(self) -> dict[str, Any]:
        """State for a health check: ``state``, ``consecutive_failures``, ``retry_in_s``."""
        state = self.state
        retry_in = 0.0
        if state is CircuitState.OPEN and self._opened_at is not None:
            retry_in = round(self.cool_down_s - (self._clock() - self._opened_at), 3)
        return {
            "state": state.value,
            "consecutive_failures": self._failures,
            "retry_in_s": retry_in,
            "times_opened": self.opened_count,
        }


class CircuitBreakers:
    """A process's breakers, one per provider, made on first use with the same thresholds.

    Args:
        failure_threshold: Consecutive retryable failures that open a circuit.
        cool_down_s: Seconds a circuit stays open before a probe.
        clock: Monotonic clock in seconds (tests pass a fake).
    """

    def __init__(
        self, failure_threshold: int = 3, cool_down_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cool_down_s = cool_down_s
        self._clock = clock
        self._by_provider: dict[str, CircuitBreaker] = {}

    def get(self, provider: str) -> CircuitBreaker:
        """The breaker of ``provider`` (every handler of one provider shares it)."""
        found = self._by_provider.get(provider)
        if found is None:
            found = self._by_provider[provider] = CircuitBreaker(
                provider, self.failure_threshold, self.cool_down_s, self._clock
            )
        return found

    def health(self) -> dict[str, dict[str, Any]]:
        """Every provider's circuit, for ``/health``.

        Returns:
            ``{provider: {"state": "closed"|"open"|"half_open", "consecutive_failures": int,
            "retry_in_s": float, "times_opened": int}}`` sorted by provider; providers not
            called yet are absent.
        """
        return {name: b.snapshot() for name, b in sorted(self._by_provider.items())}
