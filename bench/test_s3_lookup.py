"""Trace by id against moto's S3 server with ``BENCH_S3_BLOCKS`` (100) blocks: the reference
data set cut into blocks by the Rust core, uploaded, opened from the tenant index, then
``BENCH_LOOKUPS`` (1,000) lookups of random ids. Reported: GETs and bytes per lookup, and
latency p50/p99 (moto on loopback: request overhead, not network)."""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

import pytest

from bench.harness import CORE_BENCH, env_int, loadgen_module, percentile, report
from tempo_fast import _core
from tempo_fast.backend import S3Backend
from tempo_fast.querier.querier import ObjectStoreBlocks
from tests.backend.conftest import s3_config
from tests.backend.motoserver import MotoServer

pytestmark = pytest.mark.loadgen


def test_trace_by_id_from_s3(benchmark, tmp_path: Path) -> None:
    n_blocks = env_int("BENCH_S3_BLOCKS", 100)
    gen = loadgen_module()
    ing = _core.Ingester(str(tmp_path / "wal"), {"blocks_path": str(tmp_path / "b"), **CORE_BENCH})
    ing.replay()
    ids: list[str] = []
    for b in range(n_blocks):
        batches, batch_ids = gen.make_batches(100 + b, 5, 1000, time.time_ns())
        ids += batch_ids
        for body, _ in batches:
            ing.push("bench", body)
        ing.flush()  # one block per round
    ing.close()
    blocks = sorted((tmp_path / "b" / "bench").iterdir())
    moto = MotoServer().start()
    try:
        moto.client().create_bucket(Bucket="tempo-traces")
        store = S3Backend(s3_config("tempo-traces", moto.endpoint))
        metas = [store.upload_block("bench", p.name, p) for p in blocks]
        store.write_blocklist("bench", metas)
        remote = ObjectStoreBlocks(store, _core.RemoteBlocks(), lambda t: set())
        t0 = time.perf_counter()
        remote.poll()
        open_s = time.perf_counter() - t0
        rng = random.Random(5)
        sample = [bytes.fromhex(rng.choice(ids)) for _ in range(env_int("BENCH_LOOKUPS", 1000))]
        latencies: list[float] = []
        gets: list[int] = []
        read: list[int] = []

        def lookups() -> None:
            for tid in sample:
                before = store.stats.get("requests")
                t = time.perf_counter()
                part, stats = remote.blocks.find_trace("bench", tid)
                latencies.append(time.perf_counter() - t)
                gets.append(store.stats.get("requests") - before)
                read.append(stats["bytes_read"])
                assert part is not None

        benchmark.pedantic(lookups, rounds=1, iterations=1)
        report(
            benchmark,
            "trace by id from S3 (moto)",
            {
                "blocks": len(blocks),
                "open_all_blocks_s": round(open_s, 2),
                "gets_per_lookup": {
                    "median": statistics.median(gets),
                    "p99": percentile(gets, 0.99),
                    "max": max(gets),
                },
                "bytes_per_lookup": {
                    "median": statistics.median(read),
                    "p99": percentile(read, 0.99),
                },
                "latency_ms": {
                    "p50": round(percentile(latencies, 0.5) * 1000, 2),
                    "p99": round(percentile(latencies, 0.99) * 1000, 2),
                },
            },
        )
        store.close()
    finally:
        moto.close()
