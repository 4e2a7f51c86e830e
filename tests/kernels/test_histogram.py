"""The per-series histogram kernels (observe, accumulate, cumulative) against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tempo_fast_kernels import accumulate, cumulative, observe


def ro(a: np.ndarray) -> np.ndarray:
    """A read-only copy, as the columns arrive (``numpy.frombuffer`` over ``bytes``)."""
    return np.frombuffer(a.tobytes(), dtype=a.dtype).reshape(a.shape)


@st.composite
def batches(draw: st.DrawFn) -> dict:
    bounds = sorted(
        draw(
            st.lists(
                st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
                min_size=0,
                max_size=16,
                unique=True,
            )
        )
    )
    rows = draw(st.integers(1, 6))
    key_series = draw(st.lists(st.integers(-2, rows - 1), min_size=1, max_size=8))
    value = st.one_of(
        st.floats(width=64),  # NaN and ±Inf included
        st.sampled_from(bounds or [0.0]),  # exactly on a bound: `le` puts it in that bucket
    )
    values = draw(st.lists(value, max_size=200))
    index = draw(
        st.lists(st.integers(0, len(key_series) - 1), min_size=len(values), max_size=len(values))
    )
    return {
        "bounds": np.array(bounds, dtype=np.float64),
        "rows": rows,
        "key_series": np.array(key_series, dtype=np.int64),
        "values": np.array(values, dtype=np.float64),
        "index": np.array(index, dtype=np.uint32),
    }


def reference(b: dict) -> tuple[np.ndarray, list[float], np.ndarray]:
    bounds, rows = b["bounds"], b["rows"]
    buckets = np.zeros((rows, len(bounds) + 1), dtype=np.uint64)
    sums = [0.0] * rows
    counts = np.zeros(rows, dtype=np.uint64)
    for i, v in zip(b["index"], b["values"], strict=True):
        s = b["key_series"][i]
        if s < 0 or math.isnan(v):
            continue
        buckets[s, np.searchsorted(bounds, v, side="left")] += 1  # first bound >= v
        sums[s] += float(v)
        counts[s] += 1
    return buckets, sums, counts


def same_floats(got: np.ndarray, want: list[float]) -> bool:
    return all((math.isnan(g) and math.isnan(w)) or g == w for g, w in zip(got, want, strict=True))


def run_observe(b: dict, buckets=None, sums=None, counts=None):
    rows, nb = b["rows"], len(b["bounds"])
    buckets = np.zeros((rows, nb + 1), dtype=np.uint64) if buckets is None else buckets
    sums = np.zeros(rows) if sums is None else sums
    counts = np.zeros(rows, dtype=np.uint64) if counts is None else counts
    observe(
        ro(b["index"]), ro(b["key_series"]), ro(b["values"]), ro(b["bounds"]), buckets, sums, counts
    )
    return buckets, sums, counts


@given(batches())
def test_observe_matches_reference(b: dict) -> None:
    buckets, sums, counts = run_observe(b)
    want_buckets, want_sums, want_counts = reference(b)
    np.testing.assert_array_equal(buckets, want_buckets)
    np.testing.assert_array_equal(counts, want_counts)
    assert same_floats(sums, want_sums)  # same order of additions: bit-identical


@given(batches())
def test_accumulate_matches_reference(b: dict) -> None:
    rows = b["rows"]
    acc = np.zeros(rows)
    accumulate(ro(b["index"]), ro(b["key_series"]), ro(b["values"]), acc)
    _, want_sums, _ = reference(b)
    assert same_floats(acc, want_sums)

    ones = np.zeros(rows)
    accumulate(ro(b["index"]), ro(b["key_series"]), None, ones)
    series = b["key_series"][b["index"]]
    want = np.bincount(series[series >= 0], minlength=rows).astype(np.float64)
    np.testing.assert_array_equal(ones, want)


def test_le_semantics_inf_nan_and_skipped_series() -> None:
    b = {
        "bounds": np.array([1.0, 5.0]),
        "rows": 2,
        "key_series": np.array([1, -1, 0], dtype=np.int64),
        "values": np.array([1.0, 1.0000001, 5.0, math.inf, -math.inf, math.nan, 7.0, 0.5]),
        "index": np.array([0, 0, 0, 0, 2, 0, 1, 2], dtype=np.uint32),
    }
    buckets, sums, counts = run_observe(b)
    assert buckets.tolist() == [[2, 0, 0], [1, 2, 1]]
    assert counts.tolist() == [2, 4]
    assert sums[0] == -math.inf and sums[1] == math.inf


def test_observe_accumulates_in_place_and_takes_no_bounds() -> None:
    b = {
        "bounds": np.array([], dtype=np.float64),
        "rows": 1,
        "key_series": np.array([0], dtype=np.int64),
        "values": np.array([3.0, -2.0]),
        "index": np.array([0, 0], dtype=np.uint32),
    }
    buckets, sums, counts = run_observe(b, buckets=np.array([[10]], dtype=np.uint64))
    assert buckets.tolist() == [[12]] and sums.tolist() == [1.0] and counts.tolist() == [2]


def test_cumulative() -> None:
    rng = np.random.default_rng(7)
    buckets = rng.integers(0, 1000, size=(5, 4)).astype(np.uint64)
    rows = np.array([3, 0, 3], dtype=np.int64)
    out = np.zeros((3, 4), dtype=np.uint64)
    cumulative(ro(buckets), ro(rows), out)
    np.testing.assert_array_equal(out, np.cumsum(buckets[rows], axis=1))
    empty = np.zeros((0, 4), dtype=np.uint64)
    cumulative(buckets, np.array([], dtype=np.int64), empty)


def bad_observe_args() -> dict:
    return {
        "index": np.array([0, 1], dtype=np.uint32),
        "key_series": np.array([0, 1], dtype=np.int64),
        "values": np.array([1.0, 2.0]),
        "bounds": np.array([1.0, 2.0]),
        "buckets": np.zeros((2, 3), dtype=np.uint64),
        "sums": np.zeros(2),
        "counts": np.zeros(2, dtype=np.uint64),
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"buckets": np.zeros((2, 2), dtype=np.uint64)}, "columns"),
        ({"sums": np.zeros(1)}, "one entry per row"),
        ({"counts": np.zeros(3, dtype=np.uint64)}, "one entry per row"),
        ({"values": np.array([1.0])}, "index has 2 entries"),
        ({"index": np.array([0, 2], dtype=np.uint32)}, "key 2"),
        ({"key_series": np.array([0, 2], dtype=np.int64)}, "series 2"),
        ({"bounds": np.array([2.0, 1.0])}, "increasing"),
        ({"bounds": np.array([1.0, math.nan])}, "increasing"),
    ],
)
def test_observe_rejects_bad_input_without_writing(change: dict, message: str) -> None:
    args = bad_observe_args() | change
    with pytest.raises(ValueError, match=message):
        observe(**args)
    assert not args["buckets"].any() and not args["sums"].any() and not args["counts"].any()


def test_observe_rejects_wrong_dtypes() -> None:
    args = bad_observe_args() | {"index": np.array([0, 1], dtype=np.int64)}
    with pytest.raises(ValueError, match="dtype"):
        observe(**args)


def test_accumulate_rejects_bad_input() -> None:
    index = np.array([0, 1], dtype=np.uint32)
    acc = np.zeros(2)
    with pytest.raises(ValueError, match="series 2"):
        accumulate(index, np.array([0, 2], dtype=np.int64), None, acc)
    with pytest.raises(ValueError, match="key 1"):
        accumulate(index, np.array([0], dtype=np.int64), np.array([1.0, 1.0]), acc)
    with pytest.raises(ValueError, match="index has 2 entries"):
        accumulate(index, np.array([0, 1], dtype=np.int64), np.array([1.0]), acc)
    assert not acc.any()


def test_cumulative_rejects_bad_input() -> None:
    buckets = np.zeros((2, 3), dtype=np.uint64)
    with pytest.raises(ValueError, match="shape"):
        cumulative(buckets, np.array([0], dtype=np.int64), np.zeros((1, 2), dtype=np.uint64))
    for row in (2, -1):
        with pytest.raises(ValueError, match="not a row"):
            cumulative(buckets, np.array([row], dtype=np.int64), np.zeros((1, 3), dtype=np.uint64))
