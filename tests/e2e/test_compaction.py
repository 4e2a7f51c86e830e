"""Compaction in the running server: blocks cut from several rounds of traces (one round
sent twice) are merged, the replaced blocks deleted after compacted_block_retention, and
lookups made all the while return every trace with each span exactly once."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import grpc
import orjson

from tests.conftest import FAST_CUT
from tests.e2e.test_bad_input import EXPORT
from tests.e2e.test_crash_safety import request
from tests.e2e.traces import wait_for
from tests.server import TempoServer, deep_merge

COMPACTING = deep_merge(
    FAST_CUT,
    {"compactor": {"compaction": {"compaction_cycle": "1s", "compacted_block_retention": "2s"}}},
)


def span_list(server: TempoServer, tid: str) -> list[str]:
    """Span ids of the trace as returned, duplicates included."""
    status, _, body = server.get(f"/api/traces/{tid}")
    if status == 404:
        return []
    assert status == 200, body
    out = []
    for batch in orjson.loads(body)["batches"]:
        for scope in batch.get("scopeSpans", []):
            out += [s["spanId"] for s in scope["spans"]]
    return out


def blocks_flushed(server: TempoServer) -> float:
    for line in server.metrics().splitlines():
        if line.startswith("tempo_ingester_blocks_flushed_total "):
            return float(line.split()[1])
    return 0.0


def metas(blocks: Path) -> list[dict]:
    out = []
    for path in blocks.glob("*/meta.json"):
        with contextlib.suppress(OSError, ValueError):  # being marked compacted
            out.append(json.loads(path.read_text()))
    return out


def test_compaction_while_querying(tmp_path: Path) -> None:
    server = TempoServer(tmp_path / "tempo", overrides=COMPACTING).start()
    blocks = server.data / "blocks" / "single-tenant"
    expected: dict[str, int] = {}
    try:
        with grpc.insecure_channel(server.otlp_grpc) as ch:
            call = ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            for rnd in (0, 1, 2, 0):  # round 0 twice: its spans arrive twice
                before = blocks_flushed(server)
                body, spans = request(rnd, n_traces=15)
                call(body, timeout=10)
                expected.update({tid: len(ids) for tid, ids in spans.items()})
                # each round in its own block
                assert wait_for(lambda n=before: blocks_flushed(server) > n, timeout=30)
        wrong: list[tuple[str, int, int]] = []
        stop = threading.Event()

        def query() -> None:
            while not stop.is_set():
                for tid, n in expected.items():
                    got = span_list(server, tid)
                    if len(got) != n or len(set(got)) != n:
                        wrong.append((tid, len(got), n))

        reader = threading.Thread(target=query)
        reader.start()
        try:
            # compacted into one block of a higher level; the inputs deleted after 2s
            assert wait_for(
                lambda: (
                    [m for m in metas(blocks) if m["compactionLevel"] >= 1]
                    and len(list(blocks.glob("*/meta.compacted.json"))) == 0
                    and len(metas(blocks)) == 1
                ),
                timeout=60,
            )
            time.sleep(1.5)  # a few more lookups against the compacted block alone
        finally:
            stop.set()
            reader.join()
        assert wrong == [], wrong[:5]
        (meta,) = metas(blocks)
        assert meta["totalSpans"] == sum(expected.values())
        metrics = server.metrics()
        assert "tempodb_compaction_blocks_total" in metrics
        assert "tempodb_retention_deleted_total" in metrics
    finally:
        server.stop()
