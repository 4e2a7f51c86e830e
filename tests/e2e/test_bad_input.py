"""Hostile input gets a clear 4xx / gRPC status with a reason, is counted, and
leaves the server serving."""

from __future__ import annotations

import gzip

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts

from tests.e2e.traces import read_fields
from tests.server import TempoServer

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def valid_request(n: int = 3) -> bytes:
    req = ts.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "bad-input"
    ss = rs.scope_spans.add()
    for i in range(n):
        s = ss.spans.add()
        s.trace_id = bytes([7] * 15 + [i + 1])
        s.span_id = bytes([9] * 7 + [i + 1])
        s.name = f"span-{i}"
        s.start_time_unix_nano, s.end_time_unix_nano = 1_000, 2_000
    return req.SerializeToString()


def grpc_export(server: TempoServer, body: bytes, metadata=None) -> bytes:
    with grpc.insecure_channel(server.otlp_grpc) as ch:
        call = ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        return call(body, timeout=10, metadata=metadata)


def assert_still_serving(server: TempoServer) -> None:
    assert server.get("/ready")[0] == 200
    assert grpc_export(server, valid_request()) == b""


PB = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (b"\xff\xff\xff\xff", PB, 400, "invalid_protobuf"),
        (valid_request()[:-5], PB, 400, "invalid_protobuf"),
        (b"not gzip at all", {**PB, "Content-Encoding": "gzip"}, 400, "invalid_gzip"),
        (b"{not json", JSON, 400, "invalid_json"),
        (b'{"resourceSpans": 5}', JSON, 400, "invalid_json"),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":{}}]}]}]}',
            JSON,
            400,
            "invalid_json",
        ),
        (b"[]", JSON, 400, "invalid_json"),
        (valid_request(), {"Content-Type": "text/plain"}, 415, "unsupported_content_type"),
        (valid_request(), {}, 415, "unsupported_content_type"),
    ],
)
def test_http_refusals(server: TempoServer, body, headers, status, reason) -> None:
    code, _, resp = server.post("/v1/traces", body, headers)
    assert code == status, resp
    assert resp, "the refusal carries a reason"
    assert f'tempo_distributor_requests_refused_total{{reason="{reason}"}}' in server.metrics()
    assert_still_serving(server)


def test_http_protobuf_error_body_is_a_status(server: TempoServer) -> None:
    code, headers, resp = server.post("/v1/traces", b"\x0a\xff", PB)
    assert code == 400
    assert headers["Content-Type"].startswith("application/x-protobuf")
    fields = read_fields(resp)
    assert fields[1] == [3]  # google.rpc.Code INVALID_ARGUMENT
    assert fields[2][0]


def test_oversized_bodies(server: TempoServer) -> None:
    huge = b"\x00" * (25 << 20)
    code, _, _ = server.post("/v1/traces", huge, PB)
    assert code == 413
    # A small gzip body that inflates past the limit (a zip bomb) is refused too.
    bomb = gzip.compress(b"\x00" * (64 << 20))
    code, _, _ = server.post("/v1/traces", bomb, {**PB, "Content-Encoding": "gzip"})
    assert code == 413
    assert 'tempo_distributor_requests_refused_total{reason="too_large"}' in server.metrics()
    assert_still_serving(server)


@pytest.mark.parametrize(
    "body", [b"\xff\xff\xff\xff", valid_request()[:-5], b"\x0a\x05\x12\x03\x0a"]
)
def test_grpc_invalid_argument(server: TempoServer, body: bytes) -> None:
    with pytest.raises(grpc.RpcError) as err:
        grpc_export(server, body)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details()
    assert_still_serving(server)


def test_grpc_partial_success(server: TempoServer) -> None:
    req = ts.ExportTraceServiceRequest.FromString(valid_request(4))
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[0].trace_id = b"\x00" * 16
    spans[1].span_id = b"\x01\x02"
    resp = ts.ExportTraceServiceResponse.FromString(grpc_export(server, req.SerializeToString()))
    assert resp.partial_success.rejected_spans == 2
    assert "invalid" in resp.partial_success.error_message


def test_grpc_oversized(server: TempoServer) -> None:
    with (
        pytest.raises(grpc.RpcError) as err,
        grpc.insecure_channel(
            server.otlp_grpc, options=[("grpc.max_send_message_length", 64 << 20)]
        ) as ch,
    ):
        call = ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        call(b"\x0a" + b"\x00" * (30 << 20), timeout=20)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_still_serving(server)
