"""Splitting a document into fragments: paragraphs first, then sentences, then words.

Units are **characters** (Python ``str`` length), never tokens; see ``core.knowledge``.

Every fragment is an exact slice ``text[start:end]`` of the (normalised) document, so its
place in the document is known and nothing is rewritten. The split is deterministic: the
same text and settings always give the same fragments (re-adding a document is then a no-op).

How:

1. The text is cut into *pieces*, each no longer than ``chunk_chars``: sentences (ending at
   ``.``, ``!``, ``?``, ``…`` or their CJK forms followed by space, or at a line break), each
   knowing its paragraph (text between blank lines); a sentence that is still too long is cut
   into words; a single word longer than ``chunk_chars``, hard.
2. Pieces are packed greedily, in order, into fragments of at most ``chunk_chars``
   (separators between pieces count). A fragment that would end inside a paragraph ends at the
   last paragraph boundary instead, when that leaves it at least half full: paragraphs stay
   whole when they can, and a heading is never left alone when the paragraph under it is long.
3. Each fragment after the first starts up to ``overlap_chars`` before the previous one's end:
   at the earliest piece start in that window when one exists (whole sentences are
   repeated), else at the earliest word start in it. A fragment always adds new text.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from typing import NamedTuple

from core.settings.knowledge import DEFAULT_CHUNK_CHARS, DEFAULT_OVERLAP_CHARS

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# A sentence ends after terminal punctuation (and closing quotes/brackets) followed by white
# space, or at a line break inside a paragraph (lists, headings, verse).
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|(?<=[。！？])[」』”’）]*\s*|\n\s*")
_WORD = re.compile(r"\S+")


class Chunk(NamedTuple):
    """One fragment of a document.

    Attributes:
        text: ``document[start:end]``.
        start: Offset of its first character in the normalised document.
        end: Offset just past its last character.
        position: 0 for the first fragment, 1 for the next...
    """

    text: str
    start: int
    end: int
    position: int


def normalise(text: str) -> str:
    """The text as it is stored and split: no byte-order mark, ``\\n`` line ends."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def split_text(
    text: str, chunk_chars: int = DEFAULT_CHUNK_CHARS, overlap_chars: int = DEFAULT_OVERLAP_CHARS
) -> list[Chunk]:
    """Split ``text`` into fragments of at most ``chunk_chars`` characters.

    Args:
        text: The document, already ``normalise``d (offsets refer to it).
        chunk_chars: Longest fragment, characters (at least 1).
        overlap_chars: Most characters a fragment repeats from the previous one
            (0 to ``chunk_chars - 1``).

    Returns:
        The fragments in document order; none for blank text.

    Raises:
        ValueError: ``chunk_chars`` below 1, or ``overlap_chars`` out of range.
    """
    if chunk_chars < 1:
        raise ValueError(f"chunk_chars must be at least 1, got {chunk_chars}")
    if not 0 <= overlap_chars < chunk_chars:
        raise ValueError(f"overlap_chars must be from 0 to {chunk_chars - 1}, got {overlap_chars}")
    pieces = _pieces(text, chunk_chars)
    if not pieces:
        return []
    starts = [p[0] for p in pieces]
    words = [m.start() for m in _WORD.finditer(text)]
    chunks: list[Chunk] = []
    begin, index = pieces[0][0], 0  # fragment start offset, next piece to take
    while index < len(pieces):
        stop = _fragment_stop(pieces, index, begin, chunk_chars)
        end = pieces[stop - 1][1]
        chunks.append(Chunk(text[begin:end], begin, end, len(chunks)))
        index = stop
        if index < len(pieces):
            begin = _overlap_start(starts, words, end, pieces[index], overlap_chars, chunk_chars)
    return chunks


def _fragment_stop(pieces: list[tuple[int, int, int]], first: int, begin: int, limit: int) -> int:
    """Index just past the last piece of the fragment starting at ``begin`` with ``pieces[first]``."""
    stop = first + 1  # the first piece always fits: the overlap start leaves room for it
    while stop < len(pieces) and pieces[stop][1] - begin <= limit:
        stop += 1
    if stop == len(pieces) or pieces[stop][2] != pieces[stop - 1][2]:
        return stop  # ends at a paragraph boundary already
    for cut in range(stop - 1, first, -1):  # the last paragraph start inside the fragment
        if pieces[cut][2] != pieces[cut - 1][2]:
            return cut if pieces[cut - 1][1] - begin >= limit // 2 else stop
    return stop


def _overlap_start(
    starts: list[int], words: list[int], end: int, following: tuple[int, int, int], overlap: int, limit: int
) -> int:
    """Where the next fragment begins: within ``overlap`` before ``end``, leaving room for
    the ``following`` piece (the fragment must take it whole to make progress)."""
    earliest = max(end - overlap, following[1] - limit)
    if overlap == 0 or earliest >= end:
        return following[0]
    for offsets in (starts, words):  # whole pieces first, else whole words
        i = bisect_left(offsets, earliest)
        if i < len(offsets) and offsets[i] < end:
            return offsets[i]
    return following[0]


def _pieces(text: str, limit: int) -> list[tuple[int, int, int]]:
    """``(start, end, paragraph)`` of sentences, words or hard cuts, each ≤ ``limit`` long."""
    spans: list[tuple[int, int, int]] = []
    for paragraph, (start, end) in enumerate(_split(text, 0, len(text), _PARAGRAPH_BREAK)):
        for s_start, s_end in _split(text, start, end, _SENTENCE_END):
            if s_end - s_start <= limit:
                spans.append((s_start, s_end, paragraph))
            else:
                spans.extend((w_start, w_end, paragraph) for w_start, w_end in _words(text, s_start, s_end, limit))
    return spans


def _split(text: str, start: int, end: int, boundary: re.Pattern[str]) -> list[tuple[int, int]]:
    """Non-blank spans of ``text[start:end]`` between matches of ``boundary``, trimmed."""
    spans, cursor = [], start
    for match in boundary.finditer(text, start, end):
        spans.append((cursor, match.start()))
        cursor = match.end()
    spans.append((cursor, end))
    return [t for t in (_trim(text, s, e) for s, e in spans) if t is not None]


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _words(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Words of ``text[start:end]``, each its own piece; a word longer than ``limit`` is cut."""
    spans: list[tuple[int, int]] = []
    for match in _WORD.finditer(text, start, end):
        w_start, w_end = match.span()
        while w_end - w_start > limit:  # one "word" longer than a fragment (a URL, base64...)
            spans.append((w_start, w_start + limit))
            w_start += limit
        spans.append((w_start, w_end))
    return spans
