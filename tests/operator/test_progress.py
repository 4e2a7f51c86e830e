"""The progress reporter: a redrawn bar on a terminal, occasional plain lines elsewhere."""

from __future__ import annotations

import io

from tempo_fast.operator.progress import Progress
from tempo_fast.operator.table import format_table, human_bytes, human_duration, short_time


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_terminal_redraws_one_line_with_count_and_rate() -> None:
    stream, clock = Stream(tty=True), Clock()
    with Progress("blocks", 4, stream, redraw=0.1, clock=clock) as p:
        clock.now += 1.0
        p.advance()
        clock.now += 0.05
        p.advance()  # too soon to redraw
        clock.now += 0.95
        p.advance(note="1 hit")
    out = stream.getvalue()
    draws = out.split("\r\x1b[K")[1:]
    assert draws[0] == "blocks [######..................] 1/4 1.0/s"
    assert draws[1] == "blocks [##################......] 3/4 1.5/s 1 hit"
    assert draws[2] == "blocks [##################......] 3/4 1.5/s 1 hit in 2.0s\n"
    assert "\n" not in "".join(draws[:2])


def test_plain_lines_only_for_long_runs() -> None:
    stream, clock = Stream(tty=False), Clock()
    with Progress("rows", None, stream, every=10, clock=clock) as p:
        for _ in range(5):
            clock.now += 1
            p.advance()
    assert stream.getvalue() == "", "a short run prints nothing off a terminal"

    with Progress("rows", 30, stream, every=10, clock=clock) as p:
        for _ in range(30):
            clock.now += 1
            p.advance()
    assert stream.getvalue().splitlines() == [
        "rows 10/30 1.0/s",
        "rows 20/30 1.0/s",
        "rows 30/30 1.0/s",
        "rows 30/30 1.0/s in 30.0s",
    ]


def test_update_sets_total_late() -> None:
    stream, clock = Stream(tty=False), Clock()
    p = Progress("row groups", None, stream, every=1, clock=clock)
    clock.now += 2
    p.update(1, 8, note="100 spans")
    p.close()
    p.close()
    assert stream.getvalue().splitlines() == [
        "row groups 1/8 0.5/s 100 spans",
        "row groups 1/8 0.5/s 100 spans in 2.0s",
    ]


def test_figures_and_tables() -> None:
    assert [human_bytes(n) for n in (None, 12, 1536, 5 << 30)] == [
        "-",
        "12 B",
        "1.5 KiB",
        "5.0 GiB",
    ]
    assert [human_duration(n) for n in (850, 12_300_000, 4_200_000_000, 185 * 10**9)] == [
        "850ns",
        "12.3ms",
        "4.20s",
        "3m05s",
    ]
    assert short_time("2024-05-01T10:00:00.5Z") == "2024-05-01 10:00:00"
    assert short_time(None) == "-"
    assert format_table(["A", "N"], [["x", "1"], ["yyy", "100"]], right={1}) == (
        "A      N\nx      1\nyyy  100\n"
    )
