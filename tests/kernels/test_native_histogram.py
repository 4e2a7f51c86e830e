"""The native (exponential) histogram kernel against plain-Python references: client_golang's
bucketing (its float bound table, copied here) and exact rational arithmetic, with values on
and next to every bucket boundary."""

from __future__ import annotations

import bisect
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tempo_fast_kernels import native_index, observe_native

# client_golang's nativeHistogramBounds (prometheus/histogram.go), schemas 1..3
GO_BOUNDS = {
    1: [0.5, 0.7071067811865475],
    2: [0.5, 0.5946035575013605, 0.7071067811865475, 0.8408964152537144],
    3: [0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
        0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711],
}  # fmt: skip
SCHEMAS = range(-4, 4)


def go_key(v: float, schema: int) -> int:
    """client_golang's bucket key of ``v`` > 0 (histogram.go ``observe``)."""
    frac, exp = math.frexp(v)
    if schema > 0:
        bounds = GO_BOUNDS[schema]
        return bisect.bisect_left(bounds, frac) + (exp - 1) * len(bounds)
    key = exp - 1 if frac == 0.5 else exp
    return (key + (1 << -schema) - 1) >> -schema


def exact_key(v: float, schema: int) -> int:
    """The smallest k with v <= 2^(k·2^-schema), in exact arithmetic."""
    x = Fraction(v)
    if schema >= 0:
        n = 1 << schema
        k = math.ceil(math.log2(v) * n)
        while x**n > Fraction(2) ** k:
            k += 1
        while x**n <= Fraction(2) ** (k - 1):
            k -= 1
        return k
    m = 1 << -schema
    k = math.ceil(math.log2(v) / m)
    while x > Fraction(2) ** (k * m):
        k += 1
    while x <= Fraction(2) ** ((k - 1) * m):
        k -= 1
    return k


def boundary_values() -> st.SearchStrategy[float]:
    """Values exactly on a bucket boundary (every schema's bounds are among schema 3's) and
    one ulp either side."""
    frac = st.sampled_from(GO_BOUNDS[3] + [1.0])
    exp = st.integers(-60, 60)
    side = st.sampled_from([-1, 0, 1])
    return st.builds(
        lambda f, e, d: math.nextafter(math.ldexp(f, e), math.inf * d) if d else math.ldexp(f, e),
        frac, exp, side,
    )  # fmt: skip


positive = st.one_of(
    boundary_values(), st.floats(min_value=5e-324, max_value=1e300, allow_nan=False)
)


@settings(max_examples=1000)
@given(positive, st.sampled_from(list(SCHEMAS)))
def test_native_index_is_client_golangs(v: float, schema: int) -> None:
    assert native_index(v, schema) == go_key(v, schema)


@settings(max_examples=1000)
@given(positive, st.sampled_from(list(SCHEMAS)))
def test_native_index_is_exact_except_next_to_go_bounds(v: float, schema: int) -> None:
    """Go's table holds 2^(i/n)/2 rounded to a float64, so exactly on a float bound that was
    rounded up, or one ulp above one rounded down, a value is filed one bucket off the exact
    real boundary, as client_golang and Prometheus file it. Everywhere else the index is the
    exact one."""
    got, want = native_index(v, schema), exact_key(v, schema)
    if got != want:
        frac, _ = math.frexp(v)
        near = {frac, math.nextafter(frac, 0)}
        assert schema > 0 and near & set(GO_BOUNDS[schema]) and abs(got - want) == 1


def test_index_examples() -> None:
    assert native_index(1.0, 3) == 0  # (2^-1/8, 1]
    assert native_index(2.0, 3) == 8
    assert native_index(math.nextafter(1.0, 2), 3) == 1
    assert native_index(0.001, 3) == math.ceil(math.log2(0.001) * 8)  # -79
    assert native_index(1.0, 0) == 0 and native_index(1.5, 0) == 1 and native_index(4.0, -1) == 1
    with pytest.raises(ValueError, match="schema"):
        native_index(1.0, 4)
    with pytest.raises(ValueError, match="positive"):
        native_index(0.0, 3)


@st.composite
def batches(draw: st.DrawFn) -> dict:
    rows = draw(st.integers(1, 5))
    key_series = draw(st.lists(st.integers(-2, rows - 1), min_size=1, max_size=6))
    value = st.one_of(positive, st.floats(width=64), st.sampled_from([0.0, -0.0, 1e-40, -1.0]))
    values = draw(st.lists(value, max_size=200))
    index = draw(
        st.lists(st.integers(0, len(key_series) - 1), min_size=len(values), max_size=len(values))
    )
    return {
        "rows": rows,
        "key_series": np.array(key_series, dtype=np.int64),
        "values": np.array(values, dtype=np.float64),
        "index": np.array(index, dtype=np.uint32),
        "schema": draw(st.sampled_from(list(SCHEMAS))),
        "zero_threshold": draw(st.sampled_from([0.0, 2.0**-128, 1e-3])),
        "offset": draw(st.integers(-200, 50)),
        "width": draw(st.integers(1, 300)),
    }


def reference(b: dict) -> tuple[np.ndarray, np.ndarray, list[float], np.ndarray]:
    rows, width = b["rows"], b["width"]
    buckets = np.zeros((rows, width), dtype=np.uint64)
    zeros = np.zeros(rows, dtype=np.uint64)
    sums = [0.0] * rows
    counts = np.zeros(rows, dtype=np.uint64)
    for i, v in zip(b["index"].tolist(), b["values"].tolist(), strict=True):
        s = int(b["key_series"][i])
        if s < 0 or v != v:
            continue
        if v <= b["zero_threshold"]:
            zeros[s] += 1
        else:
            k = width - 1 if v == math.inf else go_key(v, b["schema"]) - b["offset"]
            buckets[s, min(max(k, 0), width - 1)] += 1
        sums[s] += v
        counts[s] += 1
    return buckets, zeros, sums, counts


def ro(a: np.ndarray) -> np.ndarray:
    return np.frombuffer(a.tobytes(), dtype=a.dtype).reshape(a.shape)


@given(batches())
def test_observe_native_matches_reference(b: dict) -> None:
    buckets = np.zeros((b["rows"], b["width"]), dtype=np.uint64)
    zeros = np.zeros(b["rows"], dtype=np.uint64)
    sums = np.zeros(b["rows"])
    counts = np.zeros(b["rows"], dtype=np.uint64)
    observe_native(ro(b["index"]), ro(b["key_series"]), ro(b["values"]), b["schema"],
                   b["zero_threshold"], b["offset"], buckets, zeros, sums, counts)  # fmt: skip
    want_b, want_z, want_s, want_c = reference(b)
    assert (buckets == want_b).all() and (zeros == want_z).all() and (counts == want_c).all()
    assert [str(x) for x in sums.tolist()] == [str(x) for x in want_s]  # same order: same bits
    # without sums and counts: the buckets alone
    again = np.zeros_like(buckets)
    observe_native(b["index"], b["key_series"], b["values"], b["schema"], b["zero_threshold"],
                   b["offset"], again, np.zeros_like(zeros), None, None)  # fmt: skip
    assert (again == want_b).all()


def bad_args() -> dict:
    return {
        "index": np.array([0, 1], dtype=np.uint32),
        "key_series": np.array([0, 1], dtype=np.int64),
        "values": np.array([0.5, 2.0]),
        "schema": 3,
        "zero_threshold": 0.0,
        "offset": -10,
        "buckets": np.zeros((2, 20), dtype=np.uint64),
        "zero_counts": np.zeros(2, dtype=np.uint64),
        "sums": np.zeros(2),
        "counts": np.zeros(2, dtype=np.uint64),
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": 4}, "schema"),
        ({"schema": -5}, "schema"),
        ({"zero_threshold": -1.0}, "zero_threshold"),
        ({"zero_threshold": math.nan}, "zero_threshold"),
        ({"buckets": np.zeros((2, 0), dtype=np.uint64)}, "column"),
        ({"zero_counts": np.zeros(1, dtype=np.uint64)}, "zero_counts"),
        ({"sums": None}, "both"),
        ({"counts": np.zeros(3, dtype=np.uint64)}, "one entry per row"),
        ({"key_series": np.array([0, 2], dtype=np.int64)}, "series"),
        ({"index": np.array([0, 2], dtype=np.uint32)}, "key"),
        ({"index": np.array([0], dtype=np.uint32)}, "entries"),
    ],
)
def test_observe_native_rejects_bad_input_without_writing(change: dict, message: str) -> None:
    args = {**bad_args(), **change}
    with pytest.raises(ValueError, match=message):
        observe_native(**args)
    assert not args["buckets"].any() and not args["zero_counts"].any()


def test_window_edges_clamp() -> None:
    buckets = np.zeros((1, 4), dtype=np.uint64)  # indices 0..3 of schema 0: (0.5, 8]
    zeros = np.zeros(1, dtype=np.uint64)
    values = np.array([1e-9, 0.75, 1.0, 1.5, 8.0, 9.0, math.inf, 0.0, -2.0])
    observe_native(np.zeros(len(values), dtype=np.uint32), np.zeros(1, dtype=np.int64), values,
                   0, 0.0, 0, buckets, zeros, None, None)  # fmt: skip
    assert buckets.tolist() == [[3, 1, 0, 3]] and zeros.tolist() == [2]
