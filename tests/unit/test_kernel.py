"""The Cython histogram kernel against a pure-Python reference."""

from __future__ import annotations

import array
import bisect
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tempo_fast_kernels import bucket_counts

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
bounds_strategy = st.lists(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    min_size=1,
    max_size=20,
    unique=True,
).map(sorted)


def reference(values: list[float], bounds: list[float]) -> tuple[list[int], float]:
    counts = [0] * (len(bounds) + 1)
    total = 0.0
    for v in values:
        if math.isnan(v):
            continue
        total += v
        counts[bisect.bisect_left(bounds, v)] += 1  # first bound >= v (le semantics)
    return counts, total


def run(values: list[float], bounds: list[float], counts: list[int] | None = None):
    c = array.array("Q", counts or [0] * (len(bounds) + 1))
    view = memoryview(array.array("d", values).tobytes()).cast("d")
    total = bucket_counts(view, array.array("d", bounds), c)
    return list(c), total


@given(st.lists(floats, max_size=200), bounds_strategy)
def test_matches_reference(values: list[float], bounds: list[float]) -> None:
    counts, total = run(values, bounds)
    want_counts, want_total = reference(values, bounds)
    assert counts == want_counts
    if math.isnan(want_total):
        assert math.isnan(total)
    else:
        assert total == pytest.approx(want_total, rel=1e-9, abs=1e-9)


def test_le_semantics_and_inf() -> None:
    counts, total = run([1.0, 1.0000001, 5.0, float("inf"), -3.0, float("nan")], [1.0, 5.0])
    assert counts == [2, 2, 1]
    assert total == float("inf")


def test_accumulates_in_place() -> None:
    counts, _ = run([0.5], [1.0], counts=[10, 20])
    assert counts == [11, 20]


def test_empty_buffer() -> None:
    assert run([], [1.0]) == ([0, 0], 0.0)


def test_rejects_bad_shapes() -> None:
    view = memoryview(array.array("d", [1.0]).tobytes()).cast("d")
    with pytest.raises(ValueError, match="slots"):
        bucket_counts(view, array.array("d", [1.0]), array.array("Q", [0]))
    with pytest.raises(ValueError, match="increasing"):
        bucket_counts(view, array.array("d", [2.0, 1.0]), array.array("Q", [0, 0, 0]))
    with pytest.raises(ValueError, match="increasing"):
        bucket_counts(view, array.array("d", [float("nan")]), array.array("Q", [0, 0]))
