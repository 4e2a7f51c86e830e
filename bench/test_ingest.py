"""The running binary over OTLP gRPC, measured with the reference sender.

- sustained: ``BENCH_SECONDS`` (60) at a paced ``BENCH_RATE`` (100,000 spans/s), 3 runs, a
  fresh server each: spans per server CPU-second (bar 400,000) and export p99 (bar 50 ms).
- peak RSS: 2,000,000 spans as fast as the sender goes, then the server's VmHWM (bar 400 MB).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.harness import env_int, load_fresh_server, report, spread

pytestmark = pytest.mark.loadgen


def test_grpc_sustained(benchmark, tmp_path: Path) -> None:
    seconds, rate = env_int("BENCH_SECONDS", 60), env_int("BENCH_RATE", 100_000)
    runs: list[dict] = []

    def one_run() -> None:
        args = ("--batches", str(seconds * rate // 1000), "--spans", "1000", "--rate", str(rate))
        runs.append(
            load_fresh_server(tmp_path / f"run{len(runs)}", *args, "--seed", str(len(runs)))
        )

    benchmark.pedantic(one_run, rounds=env_int("BENCH_ROUNDS", 3), iterations=1)
    report(
        benchmark,
        f"grpc sustained {seconds}s at {rate} spans/s",
        {
            "spans_per_cpu_s": spread([r["spans_per_cpu_s"] for r in runs]),
            "spans_per_wall_s": spread([r["spans_per_s"] for r in runs]),
            "p50_ms": spread([r["p50_ms"] for r in runs]),
            "p99_ms": spread([r["p99_ms"] for r in runs]),
            "peak_rss_mb": spread([r["vm_hwm_mb"] for r in runs]),
            "err_spans": sum(r["err_spans"] for r in runs),
            "runs": runs,
        },
    )


def test_peak_rss_2m_spans(benchmark, tmp_path: Path) -> None:
    spans = env_int("BENCH_RSS_SPANS", 2_000_000)
    runs: list[dict] = []

    def one_run() -> None:
        args = ("--batches", str(spans // 1000), "--spans", "1000", "--seed", str(len(runs) + 7))
        runs.append(load_fresh_server(tmp_path / f"rss{len(runs)}", *args))

    benchmark.pedantic(one_run, rounds=env_int("BENCH_ROUNDS", 3), iterations=1)
    report(
        benchmark,
        f"peak RSS after {spans} spans",
        {
            "peak_rss_mb": spread([r["vm_hwm_mb"] for r in runs]),
            "spans_per_cpu_s": spread([r["spans_per_cpu_s"] for r in runs]),
            "spans_per_wall_s": spread([r["spans_per_s"] for r in runs]),
            "runs": runs,
        },
    )
