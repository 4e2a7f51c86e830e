"""Benchmark plumbing: the reference load generator, server processes and figures.

Every figure is measured the way DESIGN.md "Measuring" says: the reference data set and
sender (``shared/bench/otlp_load.py``, found next to the checkout or at
``$TEMPO_FAST_LOADGEN``), server CPU from /proc (children included), repeated for a spread.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOADGEN = Path(os.environ.get("TEMPO_FAST_LOADGEN", ROOT.parent / "shared/bench/otlp_load.py"))


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def loadgen_module() -> ModuleType:
    """The reference generator as a module (for its data set and /proc readers)."""
    if not LOADGEN.is_file():
        raise FileNotFoundError(
            f"reference load generator not found at {LOADGEN}: set TEMPO_FAST_LOADGEN"
        )
    spec = importlib.util.spec_from_file_location("otlp_load", LOADGEN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_load(pid: int, grpc: str, *args: str, timeout: float = 3600) -> dict[str, Any]:
    """Run the reference sender against a server process; its one JSON line."""
    cmd = [sys.executable, str(LOADGEN), "--pid", str(pid), "--grpc", grpc, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_json(code: str, *args: str, timeout: float = 3600) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (its figures its own) with ``args``; the JSON
    object on its last line of output."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set (VmHWM) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and spread of repeated measurements."""
    vals = sorted(values)
    return {
        "median": statistics.median(vals),
        "min": vals[0],
        "max": vals[-1],
        "stdev": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "n": len(vals),
    }


def percentile(values: Sequence[float], q: float) -> float:
    vals = sorted(values)
    return vals[min(len(vals) - 1, int(len(vals) * q))]


def report(benchmark: Any, name: str, figures: dict[str, Any]) -> None:
    """Attach figures to the pytest-benchmark record and print them on one line."""
    benchmark.extra_info.update(figures)
    print(f"\n[{name}] " + json.dumps(figures, sort_keys=True, default=str))


# Limits high enough that a benchmark measures throughput, not the rate limiter; the
# per-trace size and attribute limits keep Tempo's defaults, so their checks are measured.
BENCH_LIMITS = {
    "rate_limit_bytes": 10**12,
    "burst_size_bytes": 10**12,
    "max_traces_per_user": 10**8,
}
# The core benchmarks push without the background cut: room for every span they push.
CORE_BENCH = {"fsync": "never", "limits": BENCH_LIMITS, "max_live_bytes": 4 << 30}
BENCH_OVERRIDES = {"overrides": {"defaults": {"ingestion": BENCH_LIMITS}}}


def bench_config(extra: dict | None = None) -> dict:
    """Server config overrides for a benchmark: :data:`BENCH_OVERRIDES` plus ``extra``."""
    from tests.server import deep_merge

    return deep_merge(BENCH_OVERRIDES, extra or {})


def load_fresh_server(data: Path, *load_args: str, overrides: dict | None = None) -> dict:
    """Start a server in ``data``, run the reference sender against it with ``load_args``,
    stop it; the sender's figures plus the server's peak RSS (``vm_hwm_mb``)."""
    from tests.server import TempoServer

    server = TempoServer(data, overrides=bench_config(overrides)).start()
    try:
        assert server.proc is not None
        out = run_load(server.proc.pid, server.otlp_grpc, *load_args)
        out["vm_hwm_mb"] = vm_hwm_mb(server.proc.pid)
        return out
    finally:
        server.stop()
