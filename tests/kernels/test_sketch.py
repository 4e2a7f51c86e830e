"""SketchSet: DDSketch-style quantiles against exact ranks (numpy.quantile method="lower")."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from tempo_fast_kernels import SketchSet

N = 200_000
QS = [0.5, 0.9, 0.95, 0.99]
GRID = [i / 200 for i in range(201)]


def columns(values: np.ndarray, groups: np.ndarray | None = None) -> tuple:
    """The batch layout: one key per group id, ``index`` naming each value's key."""
    groups = np.zeros(len(values), dtype=np.int64) if groups is None else groups
    key_group, index = np.unique(groups, return_inverse=True)
    as_bytes = [np.frombuffer(a.tobytes(), dtype=a.dtype) for a in (index, key_group, values)]
    as_bytes[0] = as_bytes[0].astype(np.uint32)
    return tuple(as_bytes)


def sketch_of(values: np.ndarray, groups: np.ndarray | None = None, **kw) -> SketchSet:
    s = SketchSet(**kw)
    s.add(*columns(np.asarray(values, dtype=np.float64), groups))
    return s


def rel_errors(s: SketchSet, group: int, values: np.ndarray, qs: list[float]) -> np.ndarray:
    exact = np.quantile(values, qs, method="lower")
    got = np.array(s.quantiles(group, qs))
    return np.abs(got - exact) / np.abs(exact)


DISTRIBUTIONS = {
    "lognormal": lambda rng, n: rng.lognormal(-3.0, 1.5, n),
    "exponential": lambda rng, n: rng.exponential(0.2, n),
    "uniform": lambda rng, n: rng.uniform(0.001, 10.0, n),
    "pareto": lambda rng, n: rng.pareto(1.5, n) + 1e-3,
}


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_relative_error_within_alpha(name: str) -> None:
    values = DISTRIBUTIONS[name](np.random.default_rng(11), N)
    s = sketch_of(values)
    assert s.count(0) == N
    assert rel_errors(s, 0, values, QS).max() <= 0.01
    # the whole range of ranks, at the sketch's own guarantee
    assert rel_errors(s, 0, values, GRID).max() <= s.alpha * (1 + 1e-9)


def test_groups_are_independent() -> None:
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 5, N).astype(np.int64) * 2  # ids 0, 2, ... 8; odd ids empty
    values = rng.lognormal(groups.astype(float) * 0.5 - 3.0, 1.0)
    s = sketch_of(values, groups)
    assert s.groups() == 9
    for g in range(0, 9, 2):
        mine = values[groups == g]
        assert s.count(g) == len(mine)
        assert rel_errors(s, g, mine, GRID).max() <= s.alpha * (1 + 1e-9)
    assert s.count(1) == 0 and math.isnan(s.quantile(1, 0.5))
    assert s.count(99) == 0 and math.isnan(s.quantile(99, 0.5))


def test_zero_negative_nan_inf_and_skipped_groups() -> None:
    values = np.array([-1.0, 0.0, 0.0, 5.0, 6.0, math.nan, 7.0, -math.inf])
    index = np.array([0, 0, 0, 0, 0, 0, 1, 0], dtype=np.uint32)
    s = SketchSet()
    s.add(index, np.array([0, -1], dtype=np.int64), values)
    assert s.count(0) == 6  # NaN and the skipped group's 7.0 not counted
    assert s.quantile(0, 0.0) == -math.inf  # the exact minimum
    assert s.quantile(0, 0.5) == 0.0  # the zero bin
    assert s.quantile(0, 1.0) == 6.0  # the exact maximum
    assert s.quantile(0, 0.8) == pytest.approx(5.0, rel=s.alpha)

    s.add(np.array([0], dtype=np.uint32), np.array([0], dtype=np.int64), np.array([math.inf]))
    assert s.quantile(0, 1.0) == math.inf


def test_empty_and_single_value() -> None:
    s = SketchSet()
    assert s.groups() == 0 and s.count(0) == 0 and math.isnan(s.quantile(0, 0.5))
    s.add(*columns(np.array([0.123])))
    assert s.quantiles(0, [0.0, 0.5, 1.0]) == [0.123, 0.123, 0.123]


def test_merge_equals_adding_all() -> None:
    rng = np.random.default_rng(5)
    values = rng.lognormal(-2.0, 2.0, N)
    groups = rng.integers(0, 4, N).astype(np.int64)
    half = N // 2
    a = sketch_of(values[:half], groups[:half])
    b = sketch_of(values[half:], groups[half:] + 3)  # b has ids a lacks
    whole = sketch_of(
        np.concatenate([values[:half], values[half:]]),
        np.concatenate([groups[:half], groups[half:] + 3]),
    )
    a.merge(b)
    assert a.groups() == whole.groups() == 7
    for g in range(7):
        assert a.count(g) == whole.count(g)
        assert a.quantiles(g, GRID) == whole.quantiles(g, GRID)


def test_merge_into_itself_and_into_empty() -> None:
    values = np.random.default_rng(2).exponential(1.0, 10_000)
    s = sketch_of(values)
    before = s.quantiles(0, GRID)
    empty = SketchSet()
    empty.merge(s)
    assert empty.quantiles(0, GRID) == before
    s.merge(s)
    assert s.count(0) == 20_000
    doubled = np.repeat(values, 2)
    assert rel_errors(s, 0, doubled, GRID).max() <= s.alpha * (1 + 1e-9)


def test_merge_rejects_other_accuracy() -> None:
    with pytest.raises(ValueError, match="accuracy"):
        SketchSet(alpha=0.01).merge(SketchSet(alpha=0.005))


def test_collapse_keeps_high_quantiles_and_bounds_memory() -> None:
    # ten decades at alpha 0.005 need ~2300 bins; 512 keep only the top ~2.2 decades
    values = 10.0 ** np.random.default_rng(9).uniform(-6.0, 4.0, N)
    s = sketch_of(values, max_bins=512)
    errors = rel_errors(s, 0, values, [0.8, 0.9, 0.95, 0.99, 0.999])
    assert errors.max() <= s.alpha * (1 + 1e-9)
    assert rel_errors(s, 0, values, [0.1])[0] > 0.5  # collapsed: the low end is coarse
    assert s.nbytes() <= SketchSet.__basicsize__ + 512 * 8 + 4096
    unbounded = sketch_of(values)
    assert unbounded.nbytes() > 3 * s.nbytes()

    # merging a wider sketch into a collapsed one collapses it too, still accurate at the top
    s.merge(unbounded)
    assert rel_errors(s, 0, np.repeat(values, 2), [0.9, 0.99]).max() <= s.alpha * (1 + 1e-9)


def test_values_arriving_in_decreasing_order_collapse() -> None:
    s = SketchSet(max_bins=64)
    for v in 10.0 ** np.arange(5.0, -5.0, -0.01):
        s.add(*columns(np.array([v])))
    assert s.count(0) == 1000
    assert s.quantile(0, 1.0) == pytest.approx(10.0**5)
    # rank floor(0.99 * 999) = 989 from the bottom: the 11th largest
    assert s.quantile(0, 0.99) == pytest.approx(10.0 ** (5 - 0.01 * 10), rel=s.alpha)


def test_clear_and_nbytes() -> None:
    s = sketch_of(np.random.default_rng(1).lognormal(0, 1, 1000), np.arange(1000) % 3)
    grown = s.nbytes()
    assert grown > SketchSet().nbytes()
    s.clear(1)
    assert s.count(1) == 0 and s.count(0) > 0 and s.groups() == 3
    assert s.nbytes() < grown
    s.clear(7)  # unknown: nothing to do


def test_concurrent_adds_count_everything() -> None:
    s = SketchSet()
    cols = columns(np.random.default_rng(4).lognormal(0, 1, 100_000), np.arange(100_000) % 8)
    threads = [threading.Thread(target=s.add, args=cols) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(s.count(g) for g in range(8)) == 400_000


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="alpha"):
        SketchSet(alpha=0.0)
    with pytest.raises(ValueError, match="max_bins"):
        SketchSet(max_bins=0)
    s = SketchSet()
    with pytest.raises(ValueError, match="index has 1 entries"):
        s.add(np.zeros(1, np.uint32), np.zeros(1, np.int64), np.zeros(2))
    with pytest.raises(ValueError, match="key 1"):
        s.add(np.array([1], np.uint32), np.zeros(1, np.int64), np.zeros(1))
    with pytest.raises(ValueError, match="group id 1099511627776"):
        s.add(np.zeros(1, np.uint32), np.array([1 << 40], np.int64), np.zeros(1))
    assert s.groups() == 0
    with pytest.raises(ValueError, match="quantile"):
        s.quantile(0, 1.5)
    with pytest.raises(ValueError, match="quantile"):
        s.quantiles(0, [0.5, math.nan])
