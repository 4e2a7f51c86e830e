"""Series tables: ids per distinct key, limits, staleness, and the kernels' updates."""

from __future__ import annotations

import numpy as np

from tempo_fast.generator.registry import OVERFLOW_VALUE, Family, Limits, SeriesTable

CALLS = Family("calls_total", "calls")
LATENCY = Family("latency", "latency", (0.1, 1.0))


def table(**limits: int) -> SeriesTable:
    return SeriesTable(("service", "span_name"), [CALLS, LATENCY], Limits(**limits))


def u32(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.uint32)


def test_keys_map_to_stable_ids_and_values_accumulate() -> None:
    t = table()
    with t.lock:
        ids = t.ids([("a", "x"), ("b", "y")], now=1.0)
        index = u32(0, 1, 1, 0, 1)
        t.count(CALLS.name, index, ids)
        t.add(LATENCY.name, index, ids, np.array([0.05, 0.5, 2.0, 0.1, np.nan]))
        again = t.ids([("b", "y"), ("c", "z")], now=2.0)
    assert list(ids) == [0, 1] and list(again) == [1, 2]
    calls = t.families[CALLS.name]
    assert list(calls.value[:3]) == [2.0, 3.0, 0.0]
    lat = t.families[LATENCY.name]
    assert lat.buckets[0].tolist() == [2, 0, 0]  # 0.05 and 0.1 (le semantics) in the first
    assert lat.buckets[1].tolist() == [0, 1, 1]  # NaN skipped
    assert list(lat.count[:2]) == [2, 2] and lat.value[1] == 2.5
    assert t.labels(0) == [("service", "a"), ("span_name", "x")]


def test_tables_grow_past_their_first_capacity() -> None:
    t = table()
    keys = [(str(i), "n") for i in range(1000)]
    with t.lock:
        ids = t.ids(keys, now=1.0)
        t.count(CALLS.name, np.arange(1000, dtype=np.uint32), ids)
    assert len(t) == 1000 and t.families[CALLS.name].value[:1000].sum() == 1000


def test_max_active_series_folds_new_series_into_overflow() -> None:
    limits = Limits(max_active_series=2)
    t = SeriesTable(("service",), [CALLS], limits)
    with t.lock:
        ids = t.ids([("a",), ("b",), ("c",), ("d",)], now=1.0)
        t.count(CALLS.name, u32(0, 1, 2, 3, 3), ids)
    assert ids[2] == ids[3] and ids[2] not in (ids[0], ids[1])
    assert t.labels(int(ids[2])) == [("metric_overflow", "true")]
    assert t.families[CALLS.name].value[ids[2]] == 3.0
    assert limits.limited == 2 and limits.active == 3


def test_label_cardinality_limit_replaces_new_values() -> None:
    limits = Limits(max_cardinality_per_label=2)
    t = SeriesTable(("service", "span_name"), [CALLS], limits)
    with t.lock:
        t.ids([("a", f"n{i}") for i in range(5)], now=1.0)
    names = sorted({k[1] for k in t.keys})
    assert names == [OVERFLOW_VALUE, "n0", "n1"]
    assert limits.label_overflow == 3 and len(t) == 3


def test_long_label_values_are_cut() -> None:
    t = SeriesTable(("service",), [CALLS], Limits(max_label_value_length=4))
    with t.lock:
        t.ids([("abcdefgh",)], now=1.0)
    assert t.keys == [("abcd",)]


def test_stale_series_are_removed_and_ids_stay_consistent() -> None:
    limits = Limits()
    t = SeriesTable(("service", "span_name"), [CALLS, LATENCY], limits)
    with t.lock:
        ids = t.ids([("a", "x"), ("b", "y"), ("c", "z")], now=1.0)
        t.count(CALLS.name, u32(0, 1, 1, 2, 2, 2), ids)
        t.ids([("c", "z")], now=10.0)
    assert t.drop_stale(before=5.0) == 2
    assert t.keys == [("c", "z")] and limits.active == 1
    assert t.families[CALLS.name].value[0] == 3.0
    with t.lock:
        assert list(t.ids([("c", "z"), ("a", "x")], now=11.0)) == [0, 1]
    assert t.families[CALLS.name].value[1] == 0.0  # a new series starts from zero
