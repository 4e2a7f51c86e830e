"""The time-window block selector: which blocks are compacted together."""

from __future__ import annotations

from datetime import UTC, datetime

from tempo_fast.backend.objects import _go_time
from tempo_fast.compactor.selector import parse_time, select

HOUR = 3600.0
NOW = 1_700_000_000.0


def meta(n: int, end: float, level: int = 0, objects: int = 10, size: int = 1000, **kw) -> dict:
    return {
        "blockID": f"00000000-0000-4000-8000-{n:012d}",
        "endTime": _go_time(datetime.fromtimestamp(end, UTC)),
        "compactionLevel": level,
        "totalObjects": objects,
        "size": size,
        "dedicatedColumns": kw.get("dedicated", []),
    }


def ids(job) -> list[int]:
    return [int(b["blockID"][-12:]) for b in job.blocks]


def test_parse_time_reads_go_times() -> None:
    assert parse_time("2023-11-14T22:13:20Z") == NOW
    assert parse_time("2023-11-14T22:13:20.123456789Z") == NOW + 0.123456789
    assert parse_time("2023-11-14T23:13:20+01:00") == NOW
    assert parse_time("yesterday") is None
    assert parse_time(None) is None


def test_same_window_and_level_in_jobs_of_two_to_four() -> None:
    blocks = [meta(i, NOW - 60 - i) for i in range(6)]
    jobs = select(blocks, NOW, HOUR, 10**9, 10**12)
    assert [len(j.blocks) for j in jobs] == [4, 2]
    assert all(j.level == 1 for j in jobs)
    assert sorted(sum((ids(j) for j in jobs), [])) == list(range(6))


def test_a_lone_block_is_not_compacted() -> None:
    assert select([meta(1, NOW - 60)], NOW, HOUR, 10**9, 10**12) == []


def test_levels_stay_apart_in_the_active_window_and_mix_in_older_ones() -> None:
    recent = [meta(1, NOW - 60, level=0), meta(2, NOW - 70, level=1)]
    assert select(recent, NOW, HOUR, 10**9, 10**12) == []
    old = [meta(1, NOW - 30 * HOUR - 60, level=0), meta(2, NOW - 30 * HOUR - 70, level=2)]
    (job,) = select(old, NOW, HOUR, 10**9, 10**12)
    assert job.level == 3  # one above the highest input


def test_windows_stay_apart() -> None:
    blocks = [meta(1, NOW - 60), meta(2, NOW - 2 * HOUR - 60)]
    assert select(blocks, NOW, HOUR, 10**9, 10**12) == []
    assert len(select(blocks, NOW, 24 * HOUR, 10**9, 10**12)) == 1


def test_limits_on_objects_and_bytes() -> None:
    blocks = [meta(i, NOW - 60 - i, objects=40, size=400) for i in range(4)]
    assert [len(j.blocks) for j in select(blocks, NOW, HOUR, 100, 10**12)] == [2, 2]
    assert [len(j.blocks) for j in select(blocks, NOW, HOUR, 10**9, 1200)] == [3]
    assert select(blocks, NOW, HOUR, 50, 10**12) == []


def test_skipped_and_unreadable_blocks_and_layouts() -> None:
    blocks = [meta(1, NOW - 60), meta(2, NOW - 61), meta(3, NOW - 62)]
    (job,) = select(blocks, NOW, HOUR, 10**9, 10**12, skip=frozenset({blocks[0]["blockID"]}))
    assert ids(job) == [3, 2]
    broken = [{**blocks[0], "endTime": "?"}, blocks[1]]
    assert select(broken, NOW, HOUR, 10**9, 10**12) == []
    other = [meta(1, NOW - 60), meta(2, NOW - 61, dedicated=[{"name": "x"}])]
    assert select(other, NOW, HOUR, 10**9, 10**12) == []
