"""TraceQL search over ``BENCH_SEARCH_SPANS`` (10,000,000) reference spans in blocks of
``BENCH_SEARCH_BLOCK_SPANS`` (500,000) on local disk.

The blocks are cut by the Rust ingester from the reference data set (``otlp_load.py``'s
``make_batches``, generated on every core) and cached under ``BENCH_SEARCH_DATA``
(``~/.cache/tempo-fast/bench-search``), one directory per span count and block size, reused
by later runs (``BENCH_SEARCH_REBUILD=1`` builds them again, e.g. after a block format
change).

A child process (``CHILD``) runs the searches, so its figures are its own:

- scans with no limit (``limit=0``: every span is read) of each query in :data:`SCANS`, one
  ``BlockStore.search`` call per block, the calls spread over a pool of one thread per core
  as the frontend's jobs are: spans scanned per CPU-second (user + system, ``getrusage``)
  and per wall-second, matched traces;
- ``{}`` with limit 20 through ``SearchFrontend`` (a stub querier over the block store,
  start / end covering the data, a fresh frontend per round so its job cache is empty):
  time to the first non-empty partial result and to the full result;
- the child's peak RSS (VmHWM).

Each is repeated ``BENCH_SEARCH_ROUNDS`` (3) times; the median and spread are reported.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.harness import CORE_BENCH, ROOT, env_int, loadgen_module, report, spread
from tempo_fast import _core

pytestmark = pytest.mark.loadgen

TENANT = "bench"
BATCH_SPANS = 1000
BATCHES_PER_TASK = 50  # one generator task: ~50,000 spans, ~15 MB of OTLP
DATA = Path(
    os.environ.get("BENCH_SEARCH_DATA", Path.home() / ".cache" / "tempo-fast" / "bench-search")
)

# Dedicated-column predicates, a full scan of the attribute lists (`.foo` matches nothing
# in the reference data) and a structural query. With no limit, a query matching ~40% of
# the traces (the first, second and last) also measures building and returning ~230,000
# results; `status_599` (a dedicated column, no match) measures the scan alone.
SCANS = {
    "status_500": "{ span.http.status_code = 500 }",
    "status_599": "{ span.http.status_code = 599 }",
    "cart_slow": '{ resource.service.name = "svc-cart" && duration > 100ms }',
    "foo_regex": '{ .foo =~ "ba.*" }',
    "structural": '{ resource.service.name = "svc-frontend" } >> { status = error }',
}

_gen = None


def _batches(task: tuple[int, int, int]) -> list[bytes]:
    """One generator task: ``n`` reference batches from ``seed`` (in a pool worker)."""
    global _gen
    seed, n, t0 = task
    if _gen is None:
        _gen = loadgen_module()
    batches, _ = _gen.make_batches(seed, n, BATCH_SPANS, t0)
    return [body for body, _ in batches]


def build_blocks(root: Path, spans: int, per_block: int) -> dict:
    """Cut ``spans`` reference spans into blocks of ``per_block`` under ``root``/TENANT."""
    tmp = root.with_name(root.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.time_ns() - 3600 * 10**9
    per_task = min(BATCHES_PER_TASK, max(1, per_block // BATCH_SPANS))
    tasks_per_block = max(1, per_block // (per_task * BATCH_SPANS))
    n_blocks = max(1, spans // (tasks_per_block * per_task * BATCH_SPANS))
    tasks = [(1000 + i, per_task, t0) for i in range(n_blocks * tasks_per_block)]
    started = time.perf_counter()
    # the pool forks before the ingester starts its threads
    with mp.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        ing = _core.Ingester(str(tmp / "wal"), {"blocks_path": str(tmp / "blocks"), **CORE_BENCH})
        ing.replay()
        for i, bodies in enumerate(pool.imap(_batches, tasks)):
            for body in bodies:
                ing.push(TENANT, body)
            if (i + 1) % tasks_per_block == 0:
                ing.flush()  # one block per `per_block` spans
        ing.close()
    shutil.rmtree(tmp / "wal")
    metas = [json.loads(p.read_text()) for p in (tmp / "blocks" / TENANT).glob("*/meta.json")]
    info = {
        "blocks": len(metas),
        "spans": sum(m["totalSpans"] for m in metas),
        "bytes": sum(m["size"] for m in metas),
        "build_s": round(time.perf_counter() - started, 1),
    }
    (tmp / "blocks" / "built.json").write_text(json.dumps(info))
    shutil.rmtree(root, ignore_errors=True)
    (tmp / "blocks").rename(root)
    tmp.rmdir()
    return info


def cached_blocks(spans: int, per_block: int) -> tuple[Path, dict]:
    root = DATA / f"{spans}-spans-{per_block}-per-block"
    marker = root / "built.json"
    if marker.is_file() and not os.environ.get("BENCH_SEARCH_REBUILD"):
        return root, {**json.loads(marker.read_text()), "cached": True}
    return root, {**build_blocks(root, spans, per_block), "cached": False}


CHILD = """
import asyncio, json, os, resource, sys, time
from concurrent.futures import ThreadPoolExecutor
import orjson
from tempo_fast import _core
from tempo_fast.frontend.search import SearchFrontend, SearchLimits, SearchParams
from tempo_fast.querier.querier import BlockRef

root, tenant, rounds, scans = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
store = _core.BlockStore(root)
store.poll()
blocks = store.list_blocks(tenant)
ids = [b[0] for b in blocks]
pool = ThreadPoolExecutor(os.cpu_count() or 1)

def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime

def scan(q):
    query = _core.SearchQuery(q, limit=0)
    c0, t0 = cpu(), time.perf_counter()
    outs = list(pool.map(lambda b: store.search(tenant, query, [b]), ids))
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    spans = sum(s["inspected_spans"] for _, s in outs)
    traces = sum(len(orjson.loads(body)) for body, _ in outs)
    return {"spans": spans, "traces": traces, "cpu_s": cpu_s, "wall_s": wall,
            "errors": sum(s["errors"] for _, s in outs)}

class Stub:
    def search_recent(self, tenant, query):
        return b"[]", {}
    def list_blocks(self, tenant):
        return [BlockRef(0, *b) for b in store.list_blocks(tenant)]
    def search_blocks(self, tenant, query, refs):
        return store.search(tenant, query, [b.block_id for b in refs])

NS = 10**9
params = SearchParams(q="{}", limit=20, spss=3, start=min(b[2] for b in blocks) // NS,
                      end=max(b[3] for b in blocks) // NS + 1)

async def first_and_full():
    fe = SearchFrontend(lambda: Stub(), SearchLimits(), _core.SearchQuery)
    t0, first, traces = time.perf_counter(), None, 0
    try:
        async for changed, metrics in fe.search_stream([tenant], params):
            traces += len(changed)
            if changed and first is None:
                first = time.perf_counter() - t0
        return {"first_s": first, "full_s": time.perf_counter() - t0, "traces": traces,
                "jobs": metrics["totalJobs"], "completed_jobs": metrics["completedJobs"]}
    finally:
        fe.close()

out = {"blocks": len(ids), "scans": {k: [] for k in scans}, "frontend": []}
for _ in range(rounds):
    for name, q in scans.items():
        out["scans"][name].append(scan(q))
    out["frontend"].append(asyncio.run(first_and_full()))
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
out["peak_rss_mb"] = int(hwm) / 1024
print(json.dumps(out))
"""


def search_in_child(root: Path, rounds: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), TENANT, str(rounds), json.dumps(SCANS)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=3600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rounded(s: dict[str, float], digits: int = 0) -> dict[str, float]:
    return {k: (round(v, digits) if k != "n" else v) for k, v in s.items()}


def test_search_10m_spans(benchmark) -> None:
    spans = env_int("BENCH_SEARCH_SPANS", 10_000_000)
    per_block = env_int("BENCH_SEARCH_BLOCK_SPANS", 500_000)
    rounds = env_int("BENCH_SEARCH_ROUNDS", 3)
    root, data = cached_blocks(spans, per_block)
    result: dict = {}

    def run() -> None:
        result.update(search_in_child(root, rounds))

    benchmark.pedantic(run, rounds=1, iterations=1)
    figures: dict = {"data": data, "block_groups": result["blocks"], "rounds": rounds}
    for name, runs in result["scans"].items():
        assert all(r["errors"] == 0 and r["spans"] == data["spans"] for r in runs), runs
        assert len({r["traces"] for r in runs}) == 1  # the same answer every round
        figures[name] = {
            "query": SCANS[name],
            "matched_traces": runs[0]["traces"],
            "spans_per_cpu_s": _rounded(spread([r["spans"] / r["cpu_s"] for r in runs])),
            "spans_per_wall_s": _rounded(spread([r["spans"] / r["wall_s"] for r in runs])),
            "cpu_s": _rounded(spread([r["cpu_s"] for r in runs]), 3),
        }
    fe = result["frontend"]
    figures["frontend_{}_limit_20"] = {
        "first_result_ms": _rounded(spread([r["first_s"] * 1000 for r in fe]), 1),
        "full_result_ms": _rounded(spread([r["full_s"] * 1000 for r in fe]), 1),
        "traces": fe[0]["traces"],
        "jobs": fe[0]["jobs"],
        "completed_jobs": fe[0]["completed_jobs"],
    }
    figures["peak_rss_mb"] = round(result["peak_rss_mb"], 1)
    report(benchmark, f"search over {data['spans']} spans in {data['blocks']} blocks", figures)
    assert figures["foo_regex"]["matched_traces"] == figures["status_599"]["matched_traces"] == 0
    assert all(r["traces"] >= 20 for r in fe)
