"""The Rust core alone through the binding: decode + validate + WAL append (fsync never) +
live-trace index, on the reference data set. Bar: at least 1,000,000 spans/s on one core."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.harness import CORE_BENCH, env_int, loadgen_module, report, spread
from tempo_fast import _core

pytestmark = pytest.mark.loadgen


def test_core_push(benchmark, tmp_path: Path) -> None:
    gen = loadgen_module()
    batches, _ = gen.make_batches(1, env_int("BENCH_CORE_BATCHES", 200), 1000, time.time_ns())
    spans = sum(n for _, n in batches)
    cpu_rates, wall_rates = [], []

    def push_all() -> None:
        d = tmp_path / f"run{len(cpu_rates)}"
        ing = _core.Ingester(
            str(d / "wal"),
            {"blocks_path": str(d / "blocks"), **CORE_BENCH},
        )
        ing.replay()
        c0, w0 = time.process_time(), time.perf_counter()
        for body, _ in batches:
            ing.push("bench", body)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        ing.close()
        cpu_rates.append(spans / cpu)
        wall_rates.append(spans / wall)

    benchmark.pedantic(push_all, rounds=env_int("BENCH_ROUNDS", 5), iterations=1)
    report(
        benchmark,
        "core push",
        {
            "spans_per_round": spans,
            "spans_per_cpu_s": spread(cpu_rates),
            "spans_per_wall_s": spread(wall_rates),
        },
    )
