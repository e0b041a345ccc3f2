"""``infra.cli.progress.Progress``: a redrawn bar on a terminal, periodic lines elsewhere."""

from __future__ import annotations

import io

import pytest

from infra.cli.progress import Progress, format_duration


class FakeStream(io.StringIO):
    """A stream that says whether it is a terminal, and counts flushes."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty
        self.flushes = 0

    def isatty(self) -> bool:
        return self.tty

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_terminal_bar_is_redrawn_in_place_with_rate_and_eta():
    stream, clock = FakeStream(tty=True), Clock()
    with Progress(40, "importing", unit="files", stream=stream, clock=clock, columns=120) as progress:
        clock.now += 2.0
        progress.advance(10)  # 10 files in 2 s: 5 files/s, 30 left: ETA 6 s
        assert progress.rate() == 5.0 and progress.eta_s() == 6.0
    frames = stream.getvalue().split("\r")
    assert frames[0] == ""  # every frame starts at the line's beginning
    assert frames[1].startswith("[------------------------]  importing  0/40  0%")
    assert "[######------------------]  importing  10/40  25%  5.0 files/s  ETA 0:06" in frames[2]
    final = stream.getvalue().splitlines()[-1]
    assert final.endswith("importing  10/40  25%  5.0 files/s  in 0:02  done")
    assert "\n" not in stream.getvalue()[:-1].split("\r")[-2]  # the bar never printed a newline until the end
    assert stream.flushes >= 3


def test_terminal_redraws_are_throttled():
    stream, clock = FakeStream(tty=True), Clock()
    progress = Progress(1000, "x", stream=stream, clock=clock, redraw_s=0.5, columns=120)
    for _ in range(100):  # 100 advances within 0.1 s: no redraw after the initial frame
        clock.now += 0.001
        progress.advance()
    assert stream.getvalue().count("\r") == 1
    clock.now += 0.5
    progress.advance()
    assert stream.getvalue().count("\r") == 2 and "101/1000" in stream.getvalue()


def test_terminal_line_never_wraps_and_shorter_frames_blank_the_rest():
    stream, clock = FakeStream(tty=True), Clock()
    progress = Progress(None, "a very long label " * 5, stream=stream, clock=clock, columns=40)
    clock.now += 1
    progress.advance(5)
    frames = stream.getvalue().split("\r")[1:]
    assert all(len(frame) <= 39 for frame in frames)
    progress.label = "short"
    clock.now += 1
    progress.advance()
    assert stream.getvalue().split("\r")[-1].startswith("short  6 items") and len(
        stream.getvalue().split("\r")[-1]
    ) == len(frames[-1])  # padded over the longer frame


def test_not_a_terminal_gives_periodic_plain_lines():
    stream, clock = FakeStream(tty=False), Clock()
    with Progress(100, "importing", unit="docs", stream=stream, clock=clock, line_every_s=10) as progress:
        assert stream.getvalue() == ""  # nothing before the first unit
        for _ in range(100):
            clock.now += 0.5  # 2 docs/s: 50 s in all
            progress.advance()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0] == "importing  1/100  1%  2.0 docs/s  ETA 0:50"
    assert lines[1] == "importing  21/100  21%  2.0 docs/s  ETA 0:40"  # 10 s later
    assert len(lines) == 6  # 5 periodic lines (t=0.5, 10.5, ... 40.5) and the final one
    assert lines[-1] == "importing  100/100  100%  2.0 docs/s  in 0:50  done"


def test_unknown_total_shows_count_rate_and_elapsed():
    stream, clock = FakeStream(tty=False), Clock()
    progress = Progress(None, "scanning", unit="files", stream=stream, clock=clock)
    clock.now += 4
    progress.advance(8)
    assert progress.eta_s() is None
    assert stream.getvalue() == "scanning  8 files  2.0 files/s  0:04 elapsed\n"


def test_notes_go_above_the_bar():
    stream, clock = FakeStream(tty=True), Clock()
    progress = Progress(3, "importing", stream=stream, clock=clock, columns=100)
    progress.advance()
    progress.note("skipped b.txt: empty")
    text = stream.getvalue()
    before, _, after = text.partition("skipped b.txt: empty\n")
    assert before.endswith("\r" + " " * len(before.split("\r")[-2]) + "\r")  # the bar was blanked first
    assert after.startswith("\r[") and "1/3" in after  # and redrawn under the note
    plain = FakeStream(tty=False)
    Progress(3, stream=plain, clock=clock).note("hello")
    assert plain.getvalue() == "hello\n"


@pytest.mark.parametrize(("error", "status"), [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")])
def test_an_escaping_exception_ends_the_line_with_its_status(error, status):
    stream, clock = FakeStream(tty=False), Clock()
    with pytest.raises(error), Progress(10, "importing", stream=stream, clock=clock) as progress:
        progress.advance(3)
        raise error()
    assert stream.getvalue().splitlines()[-1].endswith(f"3/10  30%  0.0 items/s  in 0:00  {status}")


def test_close_is_idempotent_and_zero_total_is_complete():
    stream, clock = FakeStream(tty=False), Clock()
    progress = Progress(0, "nothing", stream=stream, clock=clock)
    assert progress.eta_s() == 0.0
    progress.close()
    progress.close()
    assert stream.getvalue() == "nothing  0/0  0.0 items/s  in 0:00  done\n"


def test_refuses_negative_counts():
    with pytest.raises(ValueError, match="total"):
        Progress(-1, stream=FakeStream(tty=False))
    with pytest.raises(ValueError, match="at least 0"):
        Progress(1, stream=FakeStream(tty=False)).advance(-1)


def test_defaults_to_stderr_and_a_stream_without_isatty_is_not_a_terminal(capsys):
    Progress(1, "x", clock=Clock()).close()
    assert capsys.readouterr().err.startswith("x  0/1")

    class Bare:
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

    bare = Bare()
    progress = Progress(2, "y", stream=bare, clock=Clock())  # type: ignore[arg-type]
    assert progress.tty is False
    progress.close()
    assert bare.text.endswith("done\n")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00"),
        (59.6, "1:00"),
        (61, "1:01"),
        (3600, "1:00:00"),
        (86399, "23:59:59"),
        (-1, "?"),
        (float("inf"), "?"),
        (float("nan"), "?"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
