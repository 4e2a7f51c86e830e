"""Compaction of ``BENCH_COMPACT_BLOCKS`` (20) blocks of ``BENCH_COMPACT_SPANS`` (250,000)
spans each, cut from the reference data set by the Rust core, on the local backend.

The compactor runs in a child process, cycle after cycle until nothing is left to compact
(20 blocks -> 5 of level 1 -> 2 of level 2 -> ...); reported: input spans per CPU-second and
per wall-second over all jobs, and the child's peak RSS. Peak RSS is also measured for one job
of 2 blocks: the two are close because a job holds one row group per input, whatever the
number or size of the blocks (bounded by ``row_group_spans`` and the input count, not the
input).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.harness import CORE_BENCH, ROOT, env_int, loadgen_module, report
from tempo_fast import _core

pytestmark = pytest.mark.loadgen

TENANT = "bench"

CHILD = """
import dataclasses, json, resource, sys, time
from tempo_fast import _core
from tempo_fast.backend import LocalBackend
from tempo_fast.compactor import Compactor, CycleStats
from tempo_fast.config import load, default_yaml

root, work = sys.argv[1], sys.argv[2]
cfg = dataclasses.replace(load(default_yaml(), source="default").compactor, block_retention=0)
compactor = Compactor(LocalBackend(root), cfg, _core.compact_blocks, {}, work)
cycles = []
usage0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
while True:
    s = compactor.run_cycle()
    if not s.jobs:
        break
    cycles.append({"jobs": s.jobs, "blocks_in": s.blocks_in, "blocks_out": s.blocks_out,
                   "spans_in": s.spans_in, "spans_out": s.spans_out, "seconds": s.seconds})
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = (usage.ru_utime - usage0.ru_utime) + (usage.ru_stime - usage0.ru_stime)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(json.dumps({"cycles": cycles, "cpu_s": cpu, "wall_s": time.perf_counter() - t0,
                  "peak_rss_mb": int(hwm) / 1024}))
"""


def compact_in_child(root: Path, work: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(work)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=3600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_compaction_20_blocks(benchmark, tmp_path: Path) -> None:
    n_blocks = env_int("BENCH_COMPACT_BLOCKS", 20)
    spans_per_block = env_int("BENCH_COMPACT_SPANS", 250_000)
    gen = loadgen_module()
    root = tmp_path / "blocks"
    ing = _core.Ingester(str(tmp_path / "wal"), {"blocks_path": str(root), **CORE_BENCH})
    ing.replay()
    for b in range(n_blocks):
        batches, _ = gen.make_batches(500 + b, spans_per_block // 1000, 1000, time.time_ns())
        for body, _ in batches:
            ing.push(TENANT, body)
        ing.flush()  # one block per round
    ing.close()
    blocks = sorted(p for p in (root / TENANT).iterdir() if (p / "meta.json").is_file())
    stored = sum(json.loads((p / "meta.json").read_text())["totalSpans"] for p in blocks)
    # a copy of two blocks: one job, for the peak-RSS comparison
    pair = tmp_path / "pair"
    for p in blocks[:2]:
        shutil.copytree(p, pair / TENANT / p.name)
    result: dict = {}

    def run() -> None:
        result.update(compact_in_child(root, tmp_path / "work"))

    benchmark.pedantic(run, rounds=1, iterations=1)
    two = compact_in_child(pair, tmp_path / "work-pair")
    spans_in = sum(c["spans_in"] for c in result["cycles"])
    first = result["cycles"][0]
    report(
        benchmark,
        f"compaction of {len(blocks)} blocks x {spans_per_block} spans (local disk)",
        {
            "blocks": len(blocks),
            "spans_per_block": spans_per_block,
            "spans_in_all_jobs": spans_in,
            "spans_per_cpu_s": round(spans_in / result["cpu_s"]),
            "spans_per_wall_s": round(spans_in / result["wall_s"]),
            "first_cycle_spans_per_wall_s": round(first["spans_in"] / first["seconds"]),
            "peak_rss_mb": round(result["peak_rss_mb"], 1),
            "peak_rss_mb_one_job_of_2_blocks": round(two["peak_rss_mb"], 1),
            "cycles": result["cycles"],
        },
    )
    # the data set has no duplicate spans: compaction keeps every one
    assert all(c["spans_out"] == c["spans_in"] for c in result["cycles"])
    assert first["spans_in"] == stored
