"""Settings of the end-of-turn embedding requests, read once in the init phase.

| variable | default | meaning |
|---|---|---|
| ``EMBEDDING_QUEUE_BUDGET_S`` | ``1`` | longest a turn waits for its ``SendMessageBatch`` calls (s, 0.05 to 30) |

The budget bounds the reply path when SQS is slow or unreachable: the SQS client connects and
reads with this timeout and makes one attempt (no retry), and the turn stops waiting once the
budget is spent. A request not sent is not lost: its memory has no vector, and the scheduled
sweep (``core.tasks.housekeeping``) queues it again.
"""

from __future__ import annotations

from pydantic import Field

from core.settings.groups import SettingsGroup


class EmbeddingQueueSettings(SettingsGroup):
    """How long a turn may spend queueing its embedding requests (see the module docstring).

    Attributes:
        send_budget_s: ``EMBEDDING_QUEUE_BUDGET_S``: seconds a turn may spend sending its requests.
    """

    send_budget_s: float = Field(default=1.0, ge=0.05, le=30, validation_alias="EMBEDDING_QUEUE_BUDGET_S")
