"""Nothing acknowledged is lost: kill -9 and restart keeps every acked span; a torn
WAL tail keeps everything before the tear."""

from __future__ import annotations

import time

import grpc
import orjson
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts

from tests.e2e.test_bad_input import EXPORT
from tests.e2e.traces import normalise_otlp
from tests.server import TempoServer


def request(
    batch: int, n_traces: int = 20, spans_per_trace: int = 5, start_ns: int | None = None
) -> tuple[bytes, dict[str, set[str]]]:
    """``n_traces`` traces of ``spans_per_trace`` spans, ids from ``batch``; span ``s``
    starts ``s`` ns after ``start_ns`` (a minute ago by default: within any retention) and
    lasts 10 ns."""
    if start_ns is None:
        start_ns = time.time_ns() - 60 * 10**9
    req = ts.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "crash"
    ss = rs.scope_spans.add()
    expected: dict[str, set[str]] = {}
    for t in range(n_traces):
        tid = (batch * 1000 + t + 1).to_bytes(16, "big")
        for s in range(spans_per_trace):
            span = ss.spans.add()
            span.trace_id = tid
            span.span_id = (batch * 100_000 + t * 100 + s + 1).to_bytes(8, "big")
            span.name = f"b{batch}-t{t}-s{s}"
            span.start_time_unix_nano = start_ns + s
            span.end_time_unix_nano = start_ns + 10 + s
            expected.setdefault(tid.hex(), set()).add(span.span_id.hex())
    return req.SerializeToString(), expected


def send_acked(server: TempoServer, batches: range) -> dict[str, set[str]]:
    acked: dict[str, set[str]] = {}
    with grpc.insecure_channel(server.otlp_grpc) as ch:
        call = ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        for b in batches:
            body, expected = request(b)
            call(body, timeout=10)  # raises unless acknowledged
            for tid, sids in expected.items():
                acked.setdefault(tid, set()).update(sids)
    return acked


def span_ids(server: TempoServer, tid: str) -> set[str]:
    status, _, body = server.get(f"/api/traces/{tid}")
    if status == 404:
        return set()
    assert status == 200, body
    return set(normalise_otlp(orjson.loads(body)["batches"]))


def test_kill_9_keeps_every_acked_span(tmp_path) -> None:
    server = TempoServer(
        tmp_path / "tempo",
        overrides={"ingester": {"trace_idle_period": "1s", "flush_check_period": "1s"}},
    ).start()
    try:
        acked = send_acked(server, range(30))
        server.kill()
        server.start()
        for tid, sids in acked.items():
            assert span_ids(server, tid) == sids, tid
        # And again after the restarted server cut the replayed traces to disk.
        acked.update(send_acked(server, range(30, 40)))
        server.kill()
        server.start()
        for tid, sids in acked.items():
            assert span_ids(server, tid) == sids, tid
    finally:
        server.stop()


def test_torn_wal_tail_keeps_what_came_before(tmp_path) -> None:
    server = TempoServer(tmp_path / "tempo").start()
    try:
        acked = send_acked(server, range(10))
        server.kill()
        segments = sorted((server.data / "wal" / "single-tenant" / "wal").glob("*.wal"))
        newest = max(segments, key=lambda p: p.stat().st_size)
        size = newest.stat().st_size
        # Tear the last record (each record here is a few kB) in the middle.
        with open(newest, "r+b") as f:
            f.truncate(size - 700)
        server.start()
        last_batch = request(9)[1]
        for tid, sids in acked.items():
            if tid in last_batch:
                continue
            assert span_ids(server, tid) == sids, tid
        assert "tempo_ingester_wal_torn_bytes_total" in server.metrics()
        # The server accepts and keeps new data after the tear.
        more = send_acked(server, range(50, 52))
        for tid, sids in more.items():
            assert span_ids(server, tid) == sids
    finally:
        server.stop()
