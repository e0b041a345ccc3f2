from __future__ import annotations

import pytest

from core.messaging.streaming import TextElementStream

ANSWER = (
    "<response><thought>do not show &lt;this&gt;</thought><actions>REPLY</actions>"
    "<text>\n  Tom &amp; Jerry say &quot;hi&quot; &lt;3</text></response>"
)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 1000])
async def test_only_the_text_element_is_forwarded_whatever_the_chunking(size):
    chunks: list[str] = []
    stream = TextElementStream(chunks.append)
    for i in range(0, len(ANSWER), size):
        await stream.feed(ANSWER[i : i + size])
    assert "".join(chunks) == 'Tom & Jerry say "hi" <3'
    assert stream.sent


async def test_an_answer_without_text_forwards_nothing():
    chunks: list[str] = []
    stream = TextElementStream(chunks.append)
    await stream.feed("<response><actions>IGNORE</actions></response>")
    assert chunks == [] and not stream.sent


async def test_async_callbacks_are_awaited():
    got: list[str] = []

    async def callback(chunk: str) -> None:
        got.append(chunk)

    stream = TextElementStream(callback)
    await stream.feed("<text>hello</text>")
    assert got == ["hello"]
