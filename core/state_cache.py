"""The state cache: provider results of recent messages, bounded in size and age.

elizaOS keeps every composed state in an unbounded ``Map`` keyed by message id, so a
long-lived process grows without limit. Here the cache lives per agent per process (a warm
Lambda container serves many turns) and holds at most ``max_size`` messages for at most
``ttl_s`` seconds each, least recently used out first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from core.types import State

if TYPE_CHECKING:
    from core.plugin import ProviderResult

#: Defaults of the ``STATE_CACHE_SIZE`` (messages) and ``STATE_CACHE_TTL_S`` (seconds) settings.
#: The cache serves later ``compose_state`` calls of the same turn (actions, evaluators), so a
#: few dozen recent messages are plenty; each entry holds its providers' data (e.g. the room's
#: recent messages), so a large bound would cost megabytes.
DEFAULT_SIZE = 64
DEFAULT_TTL_S = 120.0


class StateCache:
    """Provider results by message id.

    Args:
        max_size: Most messages kept (at least 1).
        ttl_s: Seconds an entry stays usable after it was written.
        clock: Monotonic clock in seconds (tests pass their own).

    Raises:
        ValueError: ``max_size`` < 1 or ``ttl_s`` <= 0.
    """

    def __init__(
        self, max_size: int = DEFAULT_SIZE, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_size < 1 or ttl_s <= 0:
            raise ValueError("the state cache needs max_size >= 1 and ttl_s > 0")
        self.max_size = max_size
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[UUID, tuple[float, dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, message_id: UUID) -> dict[str, Any]:
        """The provider results stored for a message (a copy; empty when absent or expired)."""
        entry = self._entries.get(message_id)
        if entry is None:
            return {}
        written, results = entry
        if self._clock() - written > self.ttl_s:
            del self._entries[message_id]
            return {}
        self._entries.move_to_end(message_id)
        return dict(results)

    def discard(self, message_id: UUID) -> None:
        """Forget a message's results (its turn is over: nothing reads them again)."""
        self._entries.pop(message_id, None)

    def put(self, message_id: UUID, results: dict[str, Any]) -> None:
        """Store a message's provider results, evicting the least recently used beyond ``max_size``."""
        self._entries[message_id] = (self._clock(), dict(results))
        self._entries.move_to_end(message_id)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)


def merge_provider_results(results: dict[str, ProviderResult], position: Callable[[str], int]) -> State:
    """One ``State`` from provider results (elizaOS ``composeState``'s merge).

    Args:
        results: Provider results by provider name.
        position: A provider's place in the prompt (lower first); values of a later provider
            overwrite an earlier one's.

    Returns:
        ``values`` merged (plus ``providers``, the joined texts), ``data["providers"][name]``
        per provider and ``text``, the non-empty texts joined by blank lines.
    """
    state = State()
    ordered = sorted(results.items(), key=lambda item: position(item[0]))
    for name, result in ordered:
        state.values.update(result.values)
        state.data.setdefault("providers", {})[name] = result
    state.text = "\n\n".join(r.text for _, r in ordered if r.text)
    state.values["providers"] = state.text
    return state
