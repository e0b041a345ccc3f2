from __future__ import annotations

import pytest

from core.knowledge.chunking import normalise, split_text
from tests.data import ARCHITECTURE_DOC


def _check_slices(text: str, chunks, limit: int) -> None:
    for i, chunk in enumerate(chunks):
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.position == i
        assert 0 < len(chunk.text) <= limit
        assert chunk.text == chunk.text.strip()
    ends = [c.end for c in chunks]
    assert ends == sorted(ends) and len(set(ends)) == len(ends)  # every fragment adds new text


def test_short_text_is_one_fragment():
    chunks = split_text("Hello there. How are you?", 100, 10)
    assert [c.text for c in chunks] == ["Hello there. How are you?"]


def test_blank_text_has_no_fragment():
    assert split_text("", 100, 10) == []
    assert split_text(" \n\n\t ", 100, 10) == []


def test_paragraphs_are_packed_and_never_cut_when_they_fit():
    paragraphs = [f"Paragraph {i} " + "word " * 10 for i in range(6)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = split_text(text, 130, 0)  # two paragraphs of 61 characters and a blank line fit
    _check_slices(text, chunks, 130)
    for chunk in chunks:  # each fragment is whole paragraphs
        assert all(part.startswith("Paragraph") and part.endswith("word") for part in chunk.text.split("\n\n"))
    assert len(chunks) == 3


def test_a_long_paragraph_splits_on_sentences_with_whole_sentence_overlap():
    sentences = [f"Sentence number {i} says something short." for i in range(20)]
    text = " ".join(sentences)
    chunks = split_text(text, 200, 90)
    _check_slices(text, chunks, 200)
    for chunk in chunks:
        assert chunk.text.startswith("Sentence number") and chunk.text.endswith("short.")
    for before, after in zip(chunks, chunks[1:], strict=False):
        repeated = before.end - after.start
        assert 0 < repeated <= 90  # the next fragment repeats whole sentences of the last one


def test_a_sentence_longer_than_a_fragment_splits_between_words_with_overlap():
    text = " ".join(f"w{i:03d}" for i in range(200))  # no sentence end at all
    chunks = split_text(text, 50, 12)
    _check_slices(text, chunks, 50)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert 0 < before.end - after.start <= 12
        assert after.text.split()[0].startswith("w")  # starts on a word, never inside one


def test_a_word_longer_than_a_fragment_is_cut_hard():
    text = "x" * 25 + " end"
    chunks = split_text(text, 10, 3)
    _check_slices(text, chunks, 10)
    assert [c.text for c in chunks] == ["x" * 10, "x" * 10, "xxxxx end"]


def test_cjk_sentences_split_without_spaces():
    text = "日本語の文です。次の文です。三番目の文。"
    assert [c.text for c in split_text(text, 10, 0)] == ["日本語の文です。", "次の文です。", "三番目の文。"]


def test_the_split_is_deterministic_and_covers_every_word_of_a_real_document():
    text = normalise(ARCHITECTURE_DOC.read_text())
    first, second = split_text(text, 800, 100), split_text(text, 800, 100)
    assert first == second
    _check_slices(text, first, 800)
    covered = set()
    for chunk in first:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
    assert first[0].start == 0 and first[-1].end == len(text.rstrip())


def test_normalise_drops_bom_and_carriage_returns():
    assert normalise("\ufeffa\r\nb\rc") == "a\nb\nc"


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_sizes_are_refused(size, overlap):
    with pytest.raises(ValueError):
        split_text("text", size, overlap)


def test_a_heading_is_not_left_alone_above_a_long_paragraph():
    body = " ".join(f"Sentence {i} of the section body." for i in range(12))
    text = f"# Title\n\n{body}"
    chunks = split_text(text, 120, 0)
    _check_slices(text, chunks, 120)
    assert chunks[0].text.startswith("# Title\n\nSentence 0") and len(chunks[0].text) > 60


def test_a_fragment_ends_at_a_paragraph_boundary_when_it_is_half_full():
    first = "Short opening paragraph that fills more than half."  # 51 characters
    second = " ".join(f"Next {i} words here." for i in range(10))
    text = f"{first}\n\n{second}"
    chunks = split_text(text, 90, 0)
    assert chunks[0].text == first  # not "first + a sentence of the next paragraph"
    assert chunks[1].text.startswith("Next 0")
