"""The generator's Rust core through the binding: span-metrics keys and columns, and
service-graph pairing across two batches, on requests built with opentelemetry.proto."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tempo_fast import _core

SEC = 1_000_000_000
SERVER = trace_pb2.Span.SPAN_KIND_SERVER
CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT


def kv(key: str, value: str | int) -> common_pb2.KeyValue:
    if isinstance(value, int):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(int_value=value))
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def span(
    trace: int,
    sid: int,
    parent: int,
    kind: int,
    name: str,
    start: int,
    end: int,
    error: bool = False,
    **attrs: str | int,
) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=sid.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=[kv(k.replace("_", "."), v) for k, v in attrs.items()],
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR) if error else None,
    )


def body(*resources: tuple[dict[str, str], list[trace_pb2.Span]]) -> bytes:
    req = ts.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource_pb2.Resource(attributes=[kv(k, v) for k, v in attrs.items()]),
                scope_spans=[trace_pb2.ScopeSpans(spans=spans)],
            )
            for attrs, spans in resources
        ]
    )
    return req.SerializeToString()


def test_span_metrics_keys_and_columns() -> None:
    now = time.time_ns()
    spans = [
        span(1, 1, 0, SERVER, "GET /", now - 3 * SEC, now - SEC, http_method="GET"),
        span(1, 2, 1, CLIENT, "SELECT", now - 2 * SEC, now - SEC, error=True),
        span(2, 3, 0, SERVER, "GET /", now - 2 * SEC, now - SEC // 2, http_method="GET"),
        span(2, 4, 3, SERVER, "late", now - 120 * SEC, now - 100 * SEC),  # outside slack
        span(2, 5, 3, SERVER, "neg", now - SEC, now - 2 * SEC, http_method=7),
    ]
    batch = _core.span_batch_from_otlp(body(({"service.name": "api", "env": "prod"}, spans)))
    assert batch.spans == 5
    p = _core.SpanMetricsProcessor(
        ["service", "span_name", "span_kind", "status_code"], ["http.method", "env", "service"]
    )
    assert p.label_names == [
        "service",
        "span_name",
        "span_kind",
        "status_code",
        "http_method",
        "env",
        "__service",
    ]
    out = p.process(batch, now)
    assert out.new_keys == [
        (0, ("api", "GET /", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET", "GET", "prod", "")),
        (1, ("api", "SELECT", "SPAN_KIND_CLIENT", "STATUS_CODE_ERROR", "", "prod", "")),
        (2, ("api", "neg", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET", "7", "prod", "")),
    ]
    assert np.frombuffer(out.key_ids, dtype="<u4").tolist() == [0, 1, 2]
    assert (out.outside_slack, out.negative_duration) == (1, 1)
    index = np.frombuffer(out.index, dtype="<u4")
    latency = np.frombuffer(out.latency, dtype="<f8")
    size = np.frombuffer(out.size, dtype="<f8")
    assert index.tolist() == [0, 1, 0, 2]
    assert latency.tolist() == [2.0, 1.0, 1.5, 0.0]
    assert size[0] == len(spans[0].SerializeToString())
    assert out.exemplar_trace_ids[:16] == (2).to_bytes(16, "big")
    assert np.frombuffer(out.exemplar_latency, dtype="<f8").tolist() == [1.5, 1.0, 0.0]
    times = np.frombuffer(out.exemplar_time_ms, dtype="<i8")
    assert times[0] == (now - SEC // 2) // 1_000_000
    # keys keep their ids across batches: only new keys come with labels
    fresh = span(9, 9, 0, SERVER, "new", now - SEC, now)
    again = _core.span_batch_from_otlp(
        body(({"service.name": "api", "env": "prod"}, [spans[1], fresh]))
    )
    out = p.process(again, now)
    assert [k for k, _ in out.new_keys] == [3] and out.generation == 0
    assert np.frombuffer(out.index, dtype="<u4").tolist() == [1, 3]
    with pytest.raises(ValueError):
        _core.SpanMetricsProcessor(["nope"], [])


def test_service_graph_pairs_across_two_batches_and_expires() -> None:
    now = time.time_ns()
    store = _core.ServiceGraphStore(dimensions=["deployment.environment"])
    assert store.label_names == ["client", "server", "connection_type", "deployment_environment"]
    first = body(
        (
            {"service.name": "frontend", "deployment.environment": "prod"},
            [
                span(1, 1, 0, CLIENT, "call", now - 3 * SEC, now - SEC),
                span(2, 9, 0, CLIENT, "pay", now - 3 * SEC, now - SEC, peer_service="stripe"),
            ],
        )
    )
    out = store.push(_core.span_batch_from_otlp(first), now)
    assert out.keys == [] and len(store) == 2
    second = body(
        (
            {"service.name": "cart"},
            [span(1, 2, 1, SERVER, "h", now - 2 * SEC, now - SEC, error=True)],
        )
    )
    out = store.push(_core.span_batch_from_otlp(second), now + SEC)
    assert out.keys == [("frontend", "cart", "", "prod")]
    assert np.frombuffer(out.index, dtype="<u4").tolist() == [0]
    assert np.frombuffer(out.client_seconds, dtype="<f8").tolist() == [2.0]
    assert np.frombuffer(out.server_seconds, dtype="<f8").tolist() == [1.0]
    assert np.frombuffer(out.failed, dtype="u1").tolist() == [1]
    assert math.isnan(np.frombuffer(out.messaging_seconds, dtype="<f8")[0])
    assert out.exemplar_trace_ids == [(1).to_bytes(16, "big").hex()]
    assert len(store) == 1
    # the unpaired client span with peer.service becomes a virtual-node edge
    assert store.expire(now + 5 * SEC).keys == []
    out = store.expire(now + 10 * SEC)
    assert out.keys == [("frontend", "stripe", "virtual_node", "prod")]
    assert (out.expired_edges, len(store)) == (1, 0)


def test_ingester_push_result_carries_the_accepted_batch(tmp_path) -> None:
    now = time.time_ns()
    ing = _core.Ingester(str(tmp_path / "wal"), {"fsync": "never"})
    try:
        req = body(({"service.name": "a"}, [span(1, 1, 0, SERVER, "op", now - SEC, now)]))
        res = ing.push("t", req)
        assert res.batch is not None and res.batch.spans == 1
        p = _core.SpanMetricsProcessor(["service", "span_name"], [])
        assert p.process(res.batch, now).new_keys == [(0, ("a", "op"))]
    finally:
        ing.close()
