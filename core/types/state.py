"""State: what providers gathered for one turn (elizaOS ``types/state.ts``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class State:
    """The composed context of a turn.

    Attributes:
        values: Template variables (``agentName``, ``recentMessages``...), merged from providers.
        data: Structured results; ``data["providers"][name]`` holds each provider's result.
        text: Provider texts joined in provider position order: the prompt's context block.
    """

    values: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    text: str = ""
