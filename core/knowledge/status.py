"""How far an agent's knowledge is searchable: its fragments embedded, queued and failed.

A fragment is searchable once the embedding worker has stored a vector of its current text.
Until then it is *queued*: its request is in an SQS queue (sent at low priority when the
document was added), being retried (``batchItemFailures``, then the DLQ), or waiting for the
scheduled sweep, which queues again every memory still without a vector up to
``EMBEDDING_PENDING_MAX_AGE_S`` (default 24 h) after it was created, at most
``EMBEDDING_MAX_REQUEUES`` times (3; ``embedding_requeues``, migration 0008). Older than that,
or once the sweep gave up on its text (the model refuses it), nothing retries it: it is
*failed*, and importing its document again queues it (an unchanged document's fragments
without a vector are queued again).

``agent documents status`` and ``GET /agents/{agent}/documents/status`` report it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from core.db.adapter import FragmentCounts
from core.knowledge import SHARED_KNOWLEDGE_ID
from core.settings.tasks import HousekeepingSettings

if TYPE_CHECKING:
    from uuid import UUID

    from core.db.adapter import DatabaseAdapter


class KnowledgeStatus(NamedTuple):
    """An agent's fragments (its own and the shared ones it sees) by embedding state.

    Attributes:
        private: The agent's own fragments.
        shared: The deployment's shared fragments.
        given_up_after_s: ``EMBEDDING_PENDING_MAX_AGE_S``: the age from which an unembedded
            fragment counts as failed, seconds.
    """

    private: FragmentCounts
    shared: FragmentCounts
    given_up_after_s: float

    def total(self, field: str) -> int:
        """``fragments``, ``embedded``, ``queued`` or ``failed``, private and shared together."""
        return int(getattr(self.private, field)) + int(getattr(self.shared, field))

    def as_json(self) -> dict[str, Any]:
        """The API's and the CLI's JSON: totals first, then ``private`` and ``shared``."""

        def counts(c: FragmentCounts) -> dict[str, int]:
            return {"fragments": c.fragments, "embedded": c.embedded, "queued": c.queued, "failed": c.failed}

        fields = ("fragments", "embedded", "queued", "failed")
        return {
            **{f: self.total(f) for f in fields},
            "searchable": self.searchable_ratio(),
            "private": counts(self.private),
            "shared": counts(self.shared),
            "failedAfterSeconds": self.given_up_after_s,
        }

    def searchable_ratio(self) -> float:
        """Embedded fragments over all fragments (1.0 when there are none)."""
        fragments = self.total("fragments")
        return round(self.total("embedded") / fragments, 4) if fragments else 1.0


def given_up_after_s(environ: Mapping[str, str] | None = None) -> float:
    """``EMBEDDING_PENDING_MAX_AGE_S`` as the scheduled sweep reads it (``environ``: ``os.environ`` by default).

    Raises:
        ConfigurationError: the housekeeping settings are invalid (names the variable).
    """
    return HousekeepingSettings.from_env(environ).embedding_pending_max_age_s


async def knowledge_status(
    adapter: DatabaseAdapter, agent_id: UUID, *, failed_after_s: float | None = None
) -> KnowledgeStatus:
    """Count an agent's fragments by embedding state, in one query.

    Args:
        adapter: The database adapter.
        agent_id: The agent.
        failed_after_s: Age from which an unembedded fragment is failed (``EMBEDDING_PENDING_MAX_AGE_S``
            by default).

    Raises:
        ConfigurationError: ``EMBEDDING_PENDING_*`` settings are invalid.
    """
    age = given_up_after_s() if failed_after_s is None else failed_after_s
    counts = await adapter.knowledge_embedding_counts([agent_id, SHARED_KNOWLEDGE_ID], given_up_after_s=age)
    if len(counts) == 1:  # the shared knowledge owner itself: everything it owns is shared
        return KnowledgeStatus(FragmentCounts(agent_id, 0, 0, 0, 0), counts[0], age)
    return KnowledgeStatus(counts[0], counts[1], age)
