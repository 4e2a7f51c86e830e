"""OTLP in through the SDK's own exporters, trace by id out, compared span by span."""

from __future__ import annotations

import gzip
import json

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.e2e.traces import (
    emit_traces,
    normalise_otlp,
    normalise_sdk,
    proto_to_json_batches,
    read_fields,
    trace_ids,
    wait_for,
)
from tests.server import TempoServer


def fetch_v1_json(server: TempoServer, tid: str) -> dict:
    status, headers, body = server.get(f"/api/traces/{tid}")
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    return orjson.loads(body)


def assert_same_spans(sent, resource_spans) -> None:
    got = normalise_otlp(resource_spans)
    want = normalise_sdk(sent)
    assert got.keys() == want.keys()
    for span_id, w in want.items():
        assert got[span_id] == w, span_id


@pytest.mark.parametrize("transport", ["grpc", "grpc-gzip", "http", "http-gzip"])
def test_sdk_exporters_round_trip(server: TempoServer, transport: str) -> None:
    if transport.startswith("grpc"):
        from grpc import Compression

        exporter = GrpcExporter(
            endpoint=server.otlp_grpc,
            insecure=True,
            compression=Compression.Gzip if transport.endswith("gzip") else None,
        )
    else:
        exporter = HttpExporter(
            endpoint=f"{server.otlp_http}/v1/traces",
            compression=HttpCompression.Gzip
            if transport.endswith("gzip")
            else HttpCompression.NoCompression,
        )
    sent = emit_traces(exporter, n_traces=3, service=f"svc-{transport}")
    for tid in trace_ids(sent):
        mine = [s for s in sent if f"{s.context.trace_id:032x}" == tid]
        assert_same_spans(mine, fetch_v1_json(server, tid)["batches"])


def test_v2_protobuf_and_json(server: TempoServer) -> None:
    sent = emit_traces(GrpcExporter(endpoint=server.otlp_grpc, insecure=True), n_traces=1)
    tid = trace_ids(sent)[0]

    status, headers, body = server.get(f"/api/v2/traces/{tid}", {"Accept": "application/protobuf"})
    assert status == 200
    assert headers["Content-Type"].startswith("application/protobuf")
    fields = read_fields(body)
    assert_same_spans(sent, proto_to_json_batches(fields[1][0]))
    assert fields.get(3, [0]) == [0]  # PartialStatus COMPLETE is the default

    status, _, body = server.get(f"/api/traces/{tid}", {"Accept": "application/protobuf"})
    assert status == 200
    assert_same_spans(sent, proto_to_json_batches(body))

    status, _, body = server.get(f"/api/v2/traces/{tid}")
    doc = orjson.loads(body)
    assert_same_spans(sent, doc["trace"]["resourceSpans"])


def test_trace_id_forms(server: TempoServer) -> None:
    sent = emit_traces(GrpcExporter(endpoint=server.otlp_grpc, insecure=True), n_traces=1)
    tid = trace_ids(sent)[0]
    assert server.get(f"/api/traces/{tid.upper()}")[0] == 200
    # Leading zeros trimmed (as search results print ids) still resolve.
    short = tid.lstrip("0") or "0"
    assert server.get(f"/api/traces/{short}")[0] == 200
    for bad in ["xyz", "0" * 33, "0" * 32, "12-34"]:
        status, _, body = server.get(f"/api/traces/{bad}")
        assert status == 400, (bad, body)
        assert body
    missing = "1" * 32
    assert server.get(f"/api/traces/{missing}")[0] == 404
    assert server.get(f"/api/v2/traces/{missing}")[0] == 404


def test_otlp_json_and_partial_success(server: TempoServer) -> None:
    good_tid = "5b8efff798038103d269b633813fc60c"
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": good_tid,
                                "spanId": "eee19b7ec3c1b174",
                                "name": "ok",
                                "kind": 2,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": 1544712661000000000,
                                "attributes": [{"key": "n", "value": {"intValue": "42"}}],
                                "unknownField": {"ignored": True},
                            },
                            {"traceId": "00" * 16, "spanId": "eee19b7ec3c1b175", "name": "zero"},
                            {"traceId": good_tid, "spanId": "abc", "name": "short"},
                        ],
                    }
                ],
            }
        ]
    }
    status, headers, resp = server.post(
        "/v1/traces", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200, resp
    assert headers["Content-Type"].startswith("application/json")
    partial = orjson.loads(resp)["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert partial["errorMessage"]

    doc = fetch_v1_json(server, good_tid)
    spans = normalise_otlp(doc["batches"])
    assert list(spans) == ["eee19b7ec3c1b174"]
    span = spans["eee19b7ec3c1b174"]
    assert span["attributes"] == {"n": 42}
    assert span["kind"] == "SPAN_KIND_SERVER"
    assert span["resource"] == {"service.name": "json-svc"}

    metrics = server.metrics()
    assert (
        'tempo_discarded_spans_total{reason="invalid_trace_id",tenant="single-tenant"} 1.0'
        in metrics
    )
    assert (
        'tempo_discarded_spans_total{reason="invalid_span_id",tenant="single-tenant"} 1.0'
        in metrics
    )


def test_gzip_json_and_empty_bodies(server: TempoServer) -> None:
    assert server.post("/v1/traces", b"", {"Content-Type": "application/x-protobuf"})[0] == 200
    assert server.post("/v1/traces", b"", {"Content-Type": "application/json"})[0] == 200
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "name": "gz",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                            }
                        ]
                    }
                ]
            }
        ]
    }
    status, _, _ = server.post(
        "/v1/traces",
        gzip.compress(json.dumps(body).encode()),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 200
    doc = fetch_v1_json(server, "0af7651916cd43dd8448eb211c80319c")
    assert normalise_otlp(doc["batches"])["b7ad6b7169203331"]["name"] == "gz"


def test_spans_survive_block_cut(fast_server: TempoServer) -> None:
    """Traces read back the same from live data, head chunks and complete blocks."""
    sent = emit_traces(GrpcExporter(endpoint=fast_server.otlp_grpc, insecure=True), n_traces=5)
    tids = trace_ids(sent)
    blocks = fast_server.data / "blocks" / "single-tenant"
    assert wait_for(lambda: blocks.is_dir() and any(blocks.glob("*/meta.json")), timeout=30)
    for tid in tids:
        mine = [s for s in sent if f"{s.context.trace_id:032x}" == tid]
        assert_same_spans(mine, fetch_v1_json(fast_server, tid)["batches"])
    # Also after a restart, when only the blocks on disk can answer.
    fast_server.stop()
    fast_server.start()
    for tid in tids:
        mine = [s for s in sent if f"{s.context.trace_id:032x}" == tid]
        assert_same_spans(mine, fetch_v1_json(fast_server, tid)["batches"])


def test_exporter_reports_success(server: TempoServer) -> None:
    sent = emit_traces(GrpcExporter(endpoint=server.otlp_grpc, insecure=True), n_traces=1)
    # emit_traces shut its exporter down with the provider; a fresh one re-sends the spans.
    exporter = GrpcExporter(endpoint=server.otlp_grpc, insecure=True)
    assert exporter.export(sent) == SpanExportResult.SUCCESS
    exporter.shutdown()
