from __future__ import annotations

import pytest

from core.messaging.response_parser import MalformedResponseError, parse_response, parse_tag


def test_parses_the_elizaos_response_block():
    parsed = parse_response(
        "<response><thought>be nice</thought><actions>REPLY, send_token</actions>"
        "<providers>FACTS</providers><text>Hi &amp; welcome</text></response>"
    )
    assert parsed.thought == "be nice"
    assert parsed.actions == ["REPLY", "SEND_TOKEN"]
    assert parsed.providers == ["FACTS"]
    assert parsed.text == "Hi & welcome"


def test_accepts_code_fences_think_blocks_and_no_wrapper():
    raw = "<think>hmm <text>not this</text></think>\n```xml\n<actions>REPLY</actions>\n<text>Yes</text>\n```"
    parsed = parse_response(raw)
    assert parsed.text == "Yes"
    assert parsed.actions == ["REPLY"]


def test_multiline_text_is_kept():
    parsed = parse_response("<response><actions>REPLY</actions><text>line 1\nline 2</text></response>")
    assert parsed.text == "line 1\nline 2"


@pytest.mark.parametrize("raw", ["", "just words", "<response><thought>x</thought></response>"])
def test_answers_without_text_or_actions_are_malformed(raw):
    with pytest.raises(MalformedResponseError):
        parse_response(raw)


def test_parse_tag():
    assert parse_tag("<response><action> RESPOND </action></response>", "action") == "RESPOND"
    assert parse_tag("nothing", "action") is None
