"""OTLP/HTTP receiver through the app's wiring; the Rust core is replaced by fakes.py."""

from __future__ import annotations

import gzip

import orjson

from tempo_fast.distributor.rpc_status import encode_status
from tests.unit.conftest import RunningApp
from tests.unit.http_client import request

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}


def post(app: RunningApp, body: bytes, headers: dict[str, str]) -> object:
    return request("POST", app.url("otlp_http", "/v1/traces"), body, headers)


def metric(app: RunningApp, line_start: str) -> float:
    for line in app.app.metrics.exposition().decode().splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_protobuf_push_accepted(running: RunningApp) -> None:
    reply = post(running, b"SSS", PB)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/x-protobuf"
    assert reply.body == b""
    assert running.fake.ingester.pushes == [("single-tenant", b"SSS", "protobuf", False, 1000)]
    assert metric(running, 'tempo_distributor_spans_received_total{tenant="single-tenant"}') == 3
    accepted = 'tempo_receiver_accepted_spans_total{receiver="otlp",transport="http"}'
    assert metric(running, accepted) == 3
    assert (
        metric(
            running, 'tempo_distributor_span_ingestion_lag_seconds_count{tenant="single-tenant"}'
        )
        == 3
    )


def test_overload_is_503_with_retry_after(running: RunningApp) -> None:
    reply = post(running, b"BUSY", PB)
    assert reply.status == 503
    assert reply.headers["Retry-After"] == "1"
    assert reply.body == encode_status(14, "ingester overloaded: retry later", 1.0)
    assert metric(running, 'tempo_distributor_requests_refused_total{reason="overloaded"}') == 1


def test_rate_limited_is_429_with_a_retry_hint_and_counts_discarded_spans(
    running: RunningApp,
) -> None:
    reply = post(running, b"LIMITEDSS", PB)
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "1"
    assert reply.body == encode_status(8, "RATE_LIMITED: ingestion rate limit", 1.0)
    discarded = 'tempo_discarded_spans_total{reason="rate_limited",tenant="single-tenant"}'
    assert metric(running, discarded) == 2
    assert metric(running, 'tempo_distributor_requests_refused_total{reason="rate_limited"}') == 1


def test_json_with_charset_and_partial_success(running: RunningApp) -> None:
    reply = post(running, b"SSTP", {"Content-Type": "application/json; charset=utf-8"})
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert orjson.loads(reply.body) == {
        "partialSuccess": {"rejectedSpans": "2", "errorMessage": "2 spans rejected"}
    }
    assert (
        metric(
            running, 'tempo_discarded_spans_total{reason="invalid_trace_id",tenant="single-tenant"}'
        )
        == 1
    )
    assert (
        metric(
            running, 'tempo_discarded_spans_total{reason="invalid_span_id",tenant="single-tenant"}'
        )
        == 1
    )


def test_json_fully_accepted_is_empty_object(running: RunningApp) -> None:
    reply = post(running, b"S", JS)
    assert (reply.status, orjson.loads(reply.body)) == (200, {})


def test_protobuf_partial_success_returns_core_response(running: RunningApp) -> None:
    reply = post(running, b"ST", PB)
    assert (reply.status, reply.body) == (200, b"partial:1")


def test_gzip_body_is_passed_raw_to_core(running: RunningApp) -> None:
    body = gzip.compress(b"SS")
    reply = post(running, body, {**PB, "Content-Encoding": "gzip"})
    assert reply.status == 200
    assert running.fake.ingester.pushes[-1][3] is True  # gzip flag set, decoded by the core


def test_invalid_gzip_is_400(running: RunningApp) -> None:
    reply = post(running, b"not gzip", {**JS, "Content-Encoding": "gzip"})
    assert reply.status == 400
    assert orjson.loads(reply.body)["code"] == 3
    assert metric(running, 'tempo_distributor_requests_refused_total{reason="invalid_gzip"}') == 1


def test_unsupported_content_type_is_415(running: RunningApp) -> None:
    reply = post(running, b"SS", {"Content-Type": "text/plain"})
    assert reply.status == 415
    assert "text/plain" in orjson.loads(reply.body)["message"]
    assert (
        metric(
            running, 'tempo_distributor_requests_refused_total{reason="unsupported_content_type"}'
        )
        == 1
    )
    assert running.fake.ingester.pushes == []


def test_missing_content_type_is_415(running: RunningApp) -> None:
    assert post(running, b"SS", {}).status == 415


def test_unsupported_content_encoding_is_415(running: RunningApp) -> None:
    reply = post(running, b"SS", {**PB, "Content-Encoding": "br"})
    assert reply.status == 415
    assert reply.body == encode_status(3, "unsupported Content-Encoding 'br': use gzip or none")


def test_body_over_limit_is_413(running: RunningApp) -> None:
    reply = post(running, b"S" * 1001, PB)
    assert reply.status == 413
    assert reply.body.startswith(b"\x08\x08\x12")  # Status{code: 8, message: ...}
    assert b"max_request_body_size" in reply.body
    assert metric(running, 'tempo_distributor_requests_refused_total{reason="too_large"}') == 1


def test_gzip_bomb_is_413_from_core_limit(running: RunningApp) -> None:
    reply = post(running, gzip.compress(b"S" * 100_000), {**JS, "Content-Encoding": "gzip"})
    assert reply.status == 413
    assert orjson.loads(reply.body)["code"] == 8


def test_undecodable_body_is_400_with_reason(running: RunningApp) -> None:
    reply = post(running, b"BAD", PB)
    assert reply.status == 400
    assert reply.body == encode_status(3, "cannot decode protobuf body")
    reply = post(running, b"BAD", JS)
    assert (reply.status, orjson.loads(reply.body)) == (
        400,
        {"code": 3, "message": "cannot decode json body"},
    )
    assert metric(running, 'tempo_distributor_requests_refused_total{reason="invalid_json"}') == 1


def test_empty_body_is_valid_empty_request(running: RunningApp) -> None:
    assert post(running, b"", PB).status == 200
    assert post(running, b"", JS).body == b"{}"
    assert running.fake.ingester.pushes == []


def test_wrong_method_and_path(running: RunningApp) -> None:
    assert request("GET", running.url("otlp_http", "/v1/traces")).status == 405
    assert request("POST", running.url("otlp_http", "/v1/logs"), b"S", PB).status == 404


def test_tenant_ignored_without_multitenancy(running: RunningApp) -> None:
    assert post(running, b"S", {**PB, "X-Scope-OrgID": "../../etc"}).status == 200
    assert running.fake.ingester.pushes[-1][0] == "single-tenant"


def test_multitenancy_requires_valid_tenant(running_mt: RunningApp) -> None:
    reply = post(running_mt, b"S", JS)
    assert reply.status == 401
    assert orjson.loads(reply.body)["code"] == 16
    reply = post(running_mt, b"S", {**JS, "X-Scope-OrgID": "../../etc"})
    assert reply.status == 400
    refused = 'tempo_distributor_requests_refused_total{reason="invalid_tenant"}'
    assert metric(running_mt, refused) == 2
    assert post(running_mt, b"S", {**JS, "X-Scope-OrgID": "team-a"}).status == 200
    assert running_mt.fake.ingester.pushes[-1][0] == "team-a"


def test_encode_status_layout() -> None:
    assert encode_status(3, "x") == b"\x08\x03\x12\x01x"
    # details[0] = Any{type_url, value = RetryInfo{retry_delay = Duration{seconds: 2, nanos: 5e8}}}
    hinted = encode_status(8, "x", 2.5)
    retry = b"\x0a\x08\x08\x02\x10" + bytes([0x80, 0xCA, 0xB5, 0xEE, 0x01])
    any_ = b"\x0a\x28type.googleapis.com/google.rpc.RetryInfo\x12" + bytes([len(retry)]) + retry
    assert hinted == b"\x08\x08\x12\x01x\x1a" + bytes([len(any_)]) + any_
    long = encode_status(8, "é" * 100)
    assert long[:4] == b"\x08\x08\x12\xc8"  # 200 bytes -> varint c8 01
