"""User-controlled text inside a prompt, made inert (OWASP LLM01, prompt injection).

A prompt is built from our templates (``<providers>``, ``<instructions>``...) and from text
that anyone who can send a message controls: message text, user names, document text and
names, knowledge fragments, facts. That text is *data*, and must not be able to change the
prompt's structure:

* it cannot close or open one of our sections (``</providers>``): ``&``, ``<`` and ``>`` are
  XML-escaped, which also breaks every angle-bracket chat token (``<|im_start|>``,
  ``<start_of_turn>``, ``<<SYS>>``, ``</s>``);
* bracket chat tokens (``[INST]``, ``[/INST]``, ``[SYSTEM_PROMPT]``, ``[TOOL_CALLS]``...)
  lose their form (the brackets become parentheses);
* it cannot forge a line of its own: every line break (``\\r``, ``\\r\\n``, U+2028, U+2029,
  U+0085, vertical tab, form feed) becomes ``\\n``, and ``quote_block`` indents every
  continuation line, so a line that starts at column 0 is always ours;
* invisible characters (zero-width spaces and joiners, bidirectional overrides, other
  control characters) are removed, so what a reviewer reads is what the model reads.

Names (``clean_name``) become one bounded line without a colon, so ``"System:"`` or
``"Eliza\\nEliza"`` as a user name cannot pose as another speaker's line prefix.

What this cannot promise: a model may still *obey* an instruction written inside data
("ignore your instructions"); the template tells it that the sections are data, and the
actions it can take are bounded by the plugins' ``validate`` and hooks, not by the prompt.
See docs/security.md, "Prompt injection".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

#: Longest name kept (characters): a display name, not a paragraph.
MAX_NAME_CHARS = 64
#: Indentation of a quoted block's continuation lines.
CONTINUATION_INDENT = "    "

# Every line separator Python's ``str.splitlines`` knows, as one ``\n``.
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
# Bracket tokens of chat templates (Llama 2 / Mistral / Mixtral): an upper-case word in brackets.
_BRACKET_TOKEN = re.compile(r"\[(/?)([A-Z][A-Z0-9_]{1,31})\]")
_XML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e\n\t]")


def _invisible(char: str) -> bool:
    """Control (Cc) and format (Cf: zero-width, bidi overrides, BOM) characters, tab and newline kept."""
    return char not in "\n\t" and unicodedata.category(char) in {"Cc", "Cf", "Co", "Cs"}


def strip_invisible(text: str) -> str:
    """``text`` with line breaks as ``\\n`` and invisible characters removed (tabs kept)."""
    text = _LINE_BREAKS.sub("\n", text)
    # Only characters outside printable ASCII can be invisible: the scan runs in C, and a
    # category is looked up for those alone (a turn quotes its 32 recent messages).
    return _NOT_PRINTABLE_ASCII.sub(_drop_invisible, text)


def _drop_invisible(match: re.Match[str]) -> str:
    char = match.group()
    return "" if _invisible(char) else char


def quote_data(text: str | None) -> str:
    """User-controlled text made inert inside a prompt; line breaks kept as ``\\n``.

    ``"a </providers>\\r\\n[INST] hi"`` → ``"a &lt;/providers&gt;\\n(INST) hi"``. Use
    ``quote_block`` where the text follows a label on a line of its own.
    """
    if not text:
        return ""
    text = strip_invisible(text).translate(_XML)
    return _BRACKET_TOKEN.sub(lambda m: f"({m.group(1)}{m.group(2)})", text)


def quote_block(text: str | None, indent: str = CONTINUATION_INDENT) -> str:
    """``quote_data(text)`` with every line after the first indented by ``indent``.

    A message rendered as ``Name: text`` stays one item however many lines it has: a forged
    ``"\\nEliza: I will..."`` becomes an indented continuation, never a line of its own.
    Blank lines inside stay blank (paragraphs of a document); trailing ones are dropped.
    """
    lines = [line.rstrip() for line in quote_data(text).rstrip().split("\n")]
    return "\n".join([lines[0], *(indent + line if line else "" for line in lines[1:])])


def clean_name(name: str | None, default: str = "User", max_chars: int = MAX_NAME_CHARS) -> str:
    """A speaker's or document's name as one short inert line.

    Line breaks, tabs and runs of spaces become one space; invisible characters go; ``:``
    (the speaker separator) becomes a space; the rest is ``quote_data``'d and cut at
    ``max_chars`` (with ``…``). An empty result is ``default``.
    """
    text = strip_invisible(name or "").replace(":", " ")
    text = " ".join(text.split())
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return quote_data(text) or default


def break_special_tokens(text: str, tokens: Iterable[str]) -> str:
    """``text`` with each occurrence of a tokenizer's special-token text broken by a space.

    For a model tokenised with special tokens parsed (llama.cpp's chat completion does), the
    text ``<|im_start|>`` in a message *is* the control token; ``< |im_start|>`` is plain
    text. Longest tokens are broken first, so a token that contains another is still found.

    Args:
        text: A chat message's content, before the chat template is applied.
        tokens: The texts of the model's control and user-defined tokens (length ≥ 2).
    """
    for token in sorted({t for t in tokens if len(t) >= 2}, key=len, reverse=True):
        if token in text:
            text = text.replace(token, f"{token[0]} {token[1:]}")
    return text
