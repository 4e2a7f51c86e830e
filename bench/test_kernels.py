"""The Cython kernels alone: values per second bucketed into per-series histograms, sketch
add rate, and the sketch's quantile error against an exact sort, on 10M values."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
from tempo_fast_kernels import SketchSet, accumulate, observe, observe_native

from bench.harness import env_int, report, spread

VALUES = env_int("BENCH_KERNEL_VALUES", 10_000_000)
SERIES = env_int("BENCH_KERNEL_SERIES", 1000)
ROUNDS = env_int("BENCH_ROUNDS", 5)
BOUNDS = 0.002 * 2.0 ** np.arange(14)  # 14 finite bounds, 2ms .. 16.4s (+Inf: 15 buckets)
QS = [0.5, 0.9, 0.95, 0.99]


def frozen(a: np.ndarray) -> np.ndarray:
    """Read-only, as the columns arrive from the core (``numpy.frombuffer`` over bytes)."""
    return np.frombuffer(a.tobytes(), dtype=a.dtype)


def batch(groups: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``index`` (u32 per value), ``key_series`` (i64 per key), latency-like ``values``."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, groups, VALUES, dtype=np.uint32)
    values = rng.lognormal(-3.0, 1.5, VALUES)
    return frozen(index), frozen(np.arange(groups, dtype=np.int64)), frozen(values)


def measure(benchmark, run: Callable[[], None]) -> dict[str, dict[str, float]]:
    """Values per CPU-second and per wall-second of ``run`` over the rounds."""
    cpu_rates, wall_rates = [], []

    def once() -> None:
        c0, w0 = time.process_time(), time.perf_counter()
        run()
        cpu_rates.append(VALUES / (time.process_time() - c0))
        wall_rates.append(VALUES / (time.perf_counter() - w0))

    benchmark.pedantic(once, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    return {"values_per_cpu_s": spread(cpu_rates), "values_per_wall_s": spread(wall_rates)}


def test_observe_rate(benchmark) -> None:
    index, key_series, values = batch(SERIES)
    buckets = np.zeros((SERIES, len(BOUNDS) + 1), dtype=np.uint64)
    sums = np.zeros(SERIES)
    counts = np.zeros(SERIES, dtype=np.uint64)
    bounds = frozen(BOUNDS)
    figures = measure(
        benchmark, lambda: observe(index, key_series, values, bounds, buckets, sums, counts)
    )
    assert int(counts.sum()) == VALUES * (ROUNDS + 1)
    report(benchmark, "kernel observe", {"values": VALUES, "series": SERIES, **figures})


def test_observe_native_rate(benchmark) -> None:
    """Native histograms as the generator keeps them: schema 3, the dense window of 272
    buckets (-159..112), sums and counts included; plus the bytes one series holds."""
    from tempo_fast.generator import registry

    index, key_series, values = batch(SERIES)
    buckets = np.zeros((SERIES, registry.NATIVE_WIDTH), dtype=np.uint64)
    zeros = np.zeros(SERIES, dtype=np.uint64)
    sums = np.zeros(SERIES)
    counts = np.zeros(SERIES, dtype=np.uint64)
    figures = measure(
        benchmark,
        lambda: observe_native(index, key_series, values, registry.NATIVE_SCHEMA,
                               registry.NATIVE_ZERO_THRESHOLD, registry.NATIVE_OFFSET, buckets,
                               zeros, sums, counts),
    )  # fmt: skip
    assert int(counts.sum()) == VALUES * (ROUNDS + 1)
    per_series = (buckets.nbytes + zeros.nbytes) // SERIES
    report(benchmark, "kernel observe_native",
           {"values": VALUES, "series": SERIES, "native_bytes_per_series": per_series,
            **figures})  # fmt: skip


def test_accumulate_rate(benchmark) -> None:
    index, key_series, values = batch(SERIES)
    acc = np.zeros(SERIES)
    figures = measure(benchmark, lambda: accumulate(index, key_series, values, acc))
    report(benchmark, "kernel accumulate", {"values": VALUES, "series": SERIES, **figures})


@pytest.mark.parametrize("groups", [1, SERIES])
def test_sketch_add_rate(benchmark, groups: int) -> None:
    index, key_group, values = batch(groups)
    sketches = SketchSet()
    figures = measure(benchmark, lambda: sketches.add(index, key_group, values))
    report(
        benchmark,
        "kernel sketch add",
        {
            "values": VALUES,
            "groups": groups,
            "nbytes": sketches.nbytes(),
            "bytes_per_group": sketches.nbytes() // groups,
            **figures,
        },
    )


DISTRIBUTIONS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "lognormal": lambda rng: rng.lognormal(-3.0, 1.5, VALUES),
    "exponential": lambda rng: rng.exponential(0.2, VALUES),
    "uniform": lambda rng: rng.uniform(0.001, 10.0, VALUES),
}


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_sketch_quantile_error(benchmark, name: str) -> None:
    """Relative error of P50/P90/P95/P99 against the exact ranks (numpy "lower"), over
    several seeds; the bar is 1% (the sketch's own bound is alpha = 0.5%)."""
    errors: dict[float, list[float]] = {q: [] for q in QS}
    seeds = iter(range(100))

    def once() -> None:
        values = DISTRIBUTIONS[name](np.random.default_rng(next(seeds)))
        s = SketchSet()
        s.add(np.zeros(VALUES, dtype=np.uint32), np.zeros(1, dtype=np.int64), values)
        exact = np.quantile(values, QS, method="lower")
        for q, got, want in zip(QS, s.quantiles(0, QS), exact, strict=True):
            errors[q].append(abs(got - want) / want)

    benchmark.pedantic(once, rounds=env_int("BENCH_ERROR_ROUNDS", 3), iterations=1)
    worst = max(max(e) for e in errors.values())
    report(
        benchmark,
        f"kernel sketch error {name}",
        {"values": VALUES, "max_rel_error": worst}
        | {f"p{round(q * 100)}_rel_error": spread(e) for q, e in errors.items()},
    )
    assert worst <= 0.01
