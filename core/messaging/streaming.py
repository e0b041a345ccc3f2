"""Streaming a reply to the user while the model still writes its structured answer.

A structured answer is XML (``<response><thought>…</thought><actions>…</actions><text>…</text>``);
only the ``<text>`` element is for the user. ``TextElementStream`` takes the raw chunks as
they come and passes on only the text element's content, holding back just enough characters
to never leak part of the closing tag.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Awaitable, Callable
from typing import Any

from core.callbacks import emit_chunk

#: ``on_stream_chunk(text)``: sync or async; receives the reply as it is generated.
StreamCallback = Callable[[str], Any]

_OPEN, _CLOSE = "<text>", "</text>"


class TextElementStream:
    """Forwards the content of the first ``<text>`` element of a streamed XML answer.

    Args:
        callback: Receives the user-visible text, in pieces (entities unescaped per piece).

    Call ``feed`` with each raw chunk; ``sent`` tells whether anything was forwarded.
    """

    def __init__(self, callback: StreamCallback) -> None:
        self._callback = callback
        self._buffer = ""
        self._inside = False
        self._done = False
        self._forwarded = 0
        self.sent = False

    async def feed(self, chunk: str) -> None:
        """Take one raw chunk of the model's answer."""
        if self._done:
            return
        self._buffer += chunk
        if not self._inside:
            start = self._buffer.find(_OPEN)
            if start < 0:
                return
            self._inside = True
            self._forwarded = start + len(_OPEN)
        end = self._buffer.find(_CLOSE, self._forwarded)
        if end >= 0:
            self._done = True
            await self._send(self._buffer[self._forwarded : end])
            return
        # Hold back what could be the start of "</text>" or of an entity ("&amp;").
        safe = len(self._buffer) - len(_CLOSE)
        amp = self._buffer.rfind("&", self._forwarded, max(safe, self._forwarded))
        if amp >= 0 and self._buffer.find(";", amp) not in range(amp, safe):
            safe = amp  # an entity cut in two would be unescaped wrongly
        if safe > self._forwarded:
            piece, self._forwarded = self._buffer[self._forwarded : safe], safe
            await self._send(piece)

    async def _send(self, raw: str) -> None:
        text = html.unescape(raw.lstrip() if not self.sent else raw)
        if text:
            self.sent = True
            await emit_chunk(self._callback, text)


def plain_stream(callback: StreamCallback) -> Callable[[str], Awaitable[None]]:
    """A chunk handler for plain (non-XML) answers: every chunk goes to the user as is."""
    return functools.partial(emit_chunk, callback)
