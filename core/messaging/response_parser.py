"""Parsing the model's XML answer (elizaOS ``parseKeyValueXml``), tolerant of what models really write."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

_FENCE = re.compile(r"```(?:xml)?\s*(.*?)```", re.DOTALL)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


class MalformedResponseError(ValueError):
    """The model's answer has neither a ``<text>`` nor an ``<actions>`` element."""


@dataclass(frozen=True)
class ParsedResponse:
    """A parsed answer: ``thought``, ``actions`` (upper-case names), ``providers`` and ``text``."""

    thought: str = ""
    actions: list[str] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)
    text: str = ""


def parse_response(raw: str) -> ParsedResponse:
    """Read ``<thought>``, ``<actions>``, ``<providers>`` and ``<text>`` from a model answer.

    Accepts the block inside code fences, with or without the ``<response>`` wrapper, with
    ``<think>`` sections before it, and with XML entities in the text.

    Raises:
        MalformedResponseError: neither ``<text>`` nor ``<actions>`` is present.
    """
    body = _THINK.sub("", raw)
    fenced = _FENCE.search(body)
    if fenced and "<" in fenced.group(1):
        body = fenced.group(1)
    text, actions = _tag(body, "text"), _tag(body, "actions")
    if text is None and actions is None:
        raise MalformedResponseError("no <text> or <actions> element in the model's answer")
    return ParsedResponse(
        thought=_tag(body, "thought") or "",
        actions=_names(actions),
        providers=_names(_tag(body, "providers")),
        text=text or "",
    )


def parse_tag(raw: str, tag: str) -> str | None:
    """The unescaped, stripped content of the first ``<tag>`` element, or ``None``."""
    return _tag(_THINK.sub("", raw), tag)


def _tag(body: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", body, re.DOTALL | re.IGNORECASE)
    return html.unescape(match.group(1).strip()) if match else None


def _names(value: str | None) -> list[str]:
    return [n.strip().upper() for n in (value or "").split(",") if n.strip()]
