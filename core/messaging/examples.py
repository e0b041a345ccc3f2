"""Action ``examples`` as prompt text (elizaOS ``composeActionExamples``); evaluators'
examples are shown by the EVALUATORS provider (``core.bootstrap.context_providers``).

An example is a short conversation: a list of ``{"name": ..., "content": {"text", "actions"}}``
(elizaOS ``ActionExample``). ``{{name1}}``, ``{{name2}}``... are speakers, shown as ``User 1``,
``User 2`` (elizaOS picks random names per call; fixed names keep the prompt cacheable and
the tests exact); ``{{agentName}}`` is the agent's name. Example text is the
plugin author's, so it is not quoted; it is bounded in count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Example conversations shown per action / evaluator, and in all (elizaOS: 10 in all).
EXAMPLES_PER_ITEM = 2
MAX_EXAMPLES = 10

_SPEAKER = re.compile(r"\{\{\s*name(\d+)\s*\}\}")

#: One example conversation: messages with ``name`` and ``content``.
Example = Sequence[Mapping[str, Any]]


def format_examples(examples: Iterable[Example], agent_name: str) -> str:
    """Conversations as ``Speaker: text (actions: A, B)`` lines, one blank line between them."""
    blocks = []
    for conversation in examples:
        lines = [_line(message, agent_name) for message in conversation]
        blocks.append("\n".join(line for line in lines if line))
    return "\n\n".join(b for b in blocks if b)


def action_examples(
    actions: Iterable[Any], agent_name: str, per_action: int = EXAMPLES_PER_ITEM, limit: int = MAX_EXAMPLES
) -> str:
    """The ``# Action Examples`` section for ``actions`` (objects with ``examples``), or ``""``."""
    chosen = [c for a in actions for c in list(getattr(a, "examples", ()) or ())[:per_action]][:limit]
    text = format_examples(chosen, agent_name)
    return f"# Action Examples\n{text}" if text else ""


def _line(message: Mapping[str, Any], agent_name: str) -> str:
    content = message.get("content") or {}
    text = str(content.get("text") or "").strip()
    if not text:
        return ""
    speaker = _SPEAKER.sub(lambda m: f"User {m.group(1)}", str(message.get("name") or "User"))
    speaker = speaker.replace("{{agentName}}", agent_name)
    text = text.replace("{{agentName}}", agent_name)
    actions = content.get("actions") or ([content["action"]] if content.get("action") else [])
    suffix = f" (actions: {', '.join(actions)})" if actions else ""
    return f"{speaker}: {text}{suffix}"
