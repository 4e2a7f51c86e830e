"""Trace by id over many blocks on local disk: ``BENCH_TBI_SPANS`` (5,000,000) spans, sent at
a paced ``BENCH_TBI_RATE`` (60,000 spans/s) and cut into 50+ blocks, the server restarted so
only blocks answer, then ``BENCH_LOOKUPS`` (2,000) lookups of random ids over one keep-alive
connection. Bars: p50 under 5 ms, p99 under 20 ms.
Also reported: bytes read per lookup (``metrics.inspectedBytes``) and bytes per span at rest.
"""

from __future__ import annotations

import http.client
import json
import random
import time
from pathlib import Path

import pytest

from bench.harness import bench_config, env_int, percentile, report, run_load
from tests.e2e.traces import wait_for
from tests.server import TempoServer

pytestmark = pytest.mark.loadgen

# Heads of at most 40 MiB of chunks (~780 bytes per span on the reference data set): each
# one-second cut of the paced load becomes a block, so 5M spans make 50+ blocks.
BLOCKS = {"ingester": {"max_block_bytes": "40MiB", "flush_all_on_shutdown": True}}


def test_trace_by_id(benchmark, tmp_path: Path) -> None:
    spans = env_int("BENCH_TBI_SPANS", 5_000_000)
    server = TempoServer(tmp_path / "tbi", overrides=bench_config(BLOCKS)).start()
    ids_file = tmp_path / "ids.json"
    try:
        load = run_load(
            server.proc.pid,
            server.otlp_grpc,
            "--batches",
            str(spans // 1000),
            "--spans",
            "1000",
            "--dump-ids",
            str(ids_file),
            "--rate",
            str(env_int("BENCH_TBI_RATE", 60_000)),
        )
        server.stop()  # flush_all_on_shutdown: every live trace and head becomes a block
        server.start(timeout=600)
    except BaseException:
        server.stop()
        raise
    blocks = list((server.data / "blocks" / "single-tenant").glob("*/meta.json"))
    ids = json.loads(ids_file.read_text())["trace_ids"]
    rng = random.Random(3)
    sample = [rng.choice(ids) for _ in range(env_int("BENCH_LOOKUPS", 2000))]
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    latencies: list[float] = []
    inspected: list[int] = []

    def lookups() -> None:
        for tid in sample:
            t = time.perf_counter()
            conn.request("GET", f"/api/v2/traces/{tid}")
            resp = conn.getresponse()
            body = resp.read()
            latencies.append(time.perf_counter() - t)
            assert resp.status == 200, body[:200]
            inspected.append(int(json.loads(body).get("metrics", {}).get("inspectedBytes", 0)))

    try:
        wait_for(lambda: server.get("/ready")[0] == 200, 60)
        benchmark.pedantic(lookups, rounds=1, iterations=1)
        metas = [json.loads(m.read_text()) for m in blocks]
        data = sum(m["size"] for m in metas)
        stored = sum(m["totalSpans"] for m in metas)
        report(
            benchmark,
            f"trace by id, {spans} spans",
            {
                "blocks": len(blocks),
                "spans_in_blocks": stored,
                "lookups": len(latencies),
                "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
                "inspected_bytes_p50": percentile(inspected, 0.5),
                "inspected_bytes_p99": percentile(inspected, 0.99),
                "bytes_per_span_at_rest": round(data / max(stored, 1), 1),
                "ingest": load,
            },
        )
    finally:
        conn.close()
        server.stop()
