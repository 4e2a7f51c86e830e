"""TraceQL metrics over ``BENCH_TQLM_SPANS`` (2,000,000) reference spans in blocks of
``BENCH_TQLM_BLOCK_SPANS`` (500,000) on local disk (the blocks of ``bench/test_search.py``,
cached under ``BENCH_SEARCH_DATA`` by span count and block size).

A child process runs each query of :data:`QUERIES` ``BENCH_TQLM_ROUNDS`` (3) times through
:class:`~tempo_fast.frontend.metrics.MetricsFrontend` (a stub querier over the block store,
one job per block in a pool of one thread per core, the range covering the data, the
default step): the Rust scan emitting span columns, the Cython kernels folding them per
(series, step), the merge and rendering. Reported: spans per CPU-second (user + system of
the whole process, ``getrusage``) and per wall-second, median and spread, the series count
and the child's peak RSS.
"""

from __future__ import annotations

import json

import pytest

from bench.harness import child_json, env_int, report, spread
from bench.test_search import TENANT, _rounded, cached_blocks

pytestmark = pytest.mark.loadgen

QUERIES = {
    "rate_by_service": "{} | rate() by (resource.service.name)",
    "quantiles_by_service": "{} | quantile_over_time(duration, .5, .99) by (resource.service.name)",
}

CHILD = """
import asyncio, json, os, resource, sys, time
from concurrent.futures import ThreadPoolExecutor
from tempo_fast import _core
from tempo_fast.frontend.metrics import MetricsFrontend, MetricsLimits, MetricsRequest
from tempo_fast.querier.querier import BlockRef

root, tenant, rounds, queries = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
store = _core.BlockStore(root)
store.poll()
blocks = store.list_blocks(tenant)
pool = ThreadPoolExecutor(os.cpu_count() or 1)
NS = 10**9

class Stub:
    def metrics_recent(self, tenant, query, exemplars):
        return [dict(keys=[], key_names=[], index=b"", ts=b"", values=b"", ex_index=b"",
                     ex_ts=b"", ex_value=b"", ex_trace=[], ex_span=[], spans=0)
                for _ in query.leaves]
    def list_blocks(self, tenant):
        return [BlockRef(0, *b) for b in store.list_blocks(tenant)]
    def metrics_blocks(self, tenant, query, refs, exemplars):
        return store.metrics(tenant, query, [b.block_id for b in refs], exemplars)

def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime

start = min(b[2] for b in blocks) // NS * NS - NS
end = max(b[3] for b in blocks) // NS * NS + 2 * NS
step = max(NS, (end - start) // 240 // NS * NS)

async def run(q):
    # target_bytes_per_job 1: one job per block
    limits = MetricsLimits(target_bytes_per_job=1)
    fe = MetricsFrontend(lambda: Stub(), pool, _core.MetricsQuery, limits)
    req = MetricsRequest(q, start, end, step, 0)
    c0, t0 = cpu(), time.perf_counter()
    got = await fe.query([tenant], req)
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    total = sum(sum(x.get("value", 0) for x in s.get("samples", [])) for s in got.get("series", []))
    return {"spans": int(got["metrics"]["inspectedSpans"]), "cpu_s": cpu_s, "wall_s": wall,
            "series": len(got.get("series", [])), "total": total,
            "jobs": got["metrics"]["totalJobs"]}

out = {"blocks": len(blocks), "queries": {k: [] for k in queries}}
for _ in range(rounds):
    for name, q in queries.items():
        out["queries"][name].append(asyncio.run(run(q)))
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
out["peak_rss_mb"] = int(hwm) / 1024
print(json.dumps(out))
"""


def test_traceql_metrics(benchmark) -> None:
    spans = env_int("BENCH_TQLM_SPANS", 2_000_000)
    per_block = env_int("BENCH_TQLM_BLOCK_SPANS", 500_000)
    rounds = env_int("BENCH_TQLM_ROUNDS", 3)
    root, data = cached_blocks(spans, per_block)
    result: dict = {}

    def run() -> None:
        result.update(child_json(CHILD, str(root), TENANT, str(rounds), json.dumps(QUERIES)))

    benchmark.pedantic(run, rounds=1, iterations=1)
    figures: dict = {"data": data, "blocks": result["blocks"], "rounds": rounds}
    for name, runs in result["queries"].items():
        assert all(r["spans"] >= data["spans"] for r in runs), runs
        assert len({r["series"] for r in runs}) == 1  # the same answer every round
        figures[name] = {
            "query": QUERIES[name],
            "series": runs[0]["series"],
            "jobs": runs[0]["jobs"],
            "spans_per_cpu_s": _rounded(spread([r["spans"] / r["cpu_s"] for r in runs])),
            "spans_per_wall_s": _rounded(spread([r["spans"] / r["wall_s"] for r in runs])),
            "cpu_s": _rounded(spread([r["cpu_s"] for r in runs]), 3),
        }
    figures["peak_rss_mb"] = round(result["peak_rss_mb"], 1)
    report(benchmark, f"TraceQL metrics over {data['spans']} spans", figures)
