"""Progress bars: drawn on a terminal, silent in a log."""

from __future__ import annotations

import io

import pytest

from recllm.progress import is_terminal, progress_bar


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class ClosedStream(io.StringIO):
    def isatty(self) -> bool:
        raise ValueError("I/O operation on closed file")


@pytest.mark.parametrize(
    ("stream", "terminal"),
    [(FakeTerminal(), True), (io.StringIO(), False), (ClosedStream(), False), (object(), False)],
)
def test_is_terminal(stream: object, terminal: bool) -> None:
    assert is_terminal(stream) is terminal  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stream", "enabled", "drawn"),
    [
        (FakeTerminal(), True, True),
        (FakeTerminal(), False, False),
        (io.StringIO(), True, False),  # a log file, CI, nohup
    ],
)
def test_bar_is_drawn_only_on_a_terminal(stream: io.StringIO, enabled: bool, drawn: bool) -> None:
    items = list(progress_bar(range(50), enabled=enabled, file=stream, mininterval=0))
    assert items == list(range(50))  # iterates the same either way
    manual = progress_bar(total=3, enabled=enabled, file=stream, mininterval=0)
    manual.update(3)
    manual.set_postfix(loss="1.0")
    manual.close()
    assert bool(stream.getvalue()) is drawn
    if drawn:
        assert "\r" in stream.getvalue()


def test_default_stream_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    for _ in progress_bar(range(100), mininterval=0):  # captured stderr is not a terminal
        pass
    assert capsys.readouterr().err == ""
