"""Per-tenant overrides through the real server: defaults, the runtime file reloaded while
running, rate limits, trace size and live trace limits, attribute truncation."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import grpc
import orjson
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.e2e.traces import wait_for
from tests.server import TempoServer

PB = {"Content-Type": "application/x-protobuf"}


def request(traces: dict[int, int], attr: str = "v", service: str = "svc") -> bytes:
    """An OTLP request with ``traces[t]`` spans for each trace number ``t``."""
    spans = []
    for t, n in traces.items():
        for i in range(n):
            spans.append(
                trace_pb2.Span(
                    trace_id=t.to_bytes(16, "big"),
                    span_id=(t * 1000 + i + 1).to_bytes(8, "big"),
                    name="op",
                    start_time_unix_nano=time.time_ns(),
                    end_time_unix_nano=time.time_ns() + 1000,
                    attributes=[
                        common_pb2.KeyValue(key="a", value=common_pb2.AnyValue(string_value=attr))
                    ],
                )
            )
    res = trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=spans)])
    res.resource.attributes.add(key="service.name", value=common_pb2.AnyValue(string_value=service))
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[res]).SerializeToString()


def push(server: TempoServer, body: bytes, tenant: str) -> tuple[int, dict[str, str], bytes]:
    return server.post("/v1/traces", body, {**PB, "X-Scope-OrgID": tenant})


def metric(server: TempoServer, series: str) -> float:
    m = re.search(rf"^{re.escape(series)} (\S+)$", server.metrics(), re.M)
    return float(m.group(1)) if m else 0.0


def write_overrides(path: Path, tenants: dict[str, dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"overrides": tenants}))
    os.replace(tmp, path)


@pytest.fixture
def limited(tmp_path: Path):
    runtime = tmp_path / "overrides.yaml"
    write_overrides(
        runtime,
        {
            "small": {
                "ingestion": {"max_traces_per_user": 2, "max_attribute_bytes": 8},
                "global": {"max_bytes_per_trace": 2000},
            },
            "*": {"ingestion": {"burst_size_bytes": 1_000_000}},
        },
    )
    s = TempoServer(
        tmp_path / "tempo",
        overrides={
            "multitenancy_enabled": True,
            "overrides": {
                "defaults": {"ingestion": {"rate_limit_bytes": 5_000_000}},
                "per_tenant_override_config": str(runtime),
                "per_tenant_override_period": "1s",
            },
        },
    ).start()
    yield s, runtime
    s.stop()


def test_trace_limits_and_truncation_per_tenant(limited) -> None:
    server, _ = limited
    status, _, body = push(server, request({1: 2, 2: 1, 3: 1}, attr="x" * 20), "small")
    assert status == 200
    reply = trace_service_pb2.ExportTraceServiceResponse.FromString(body)
    # trace 3 is one live trace too many
    assert reply.partial_success.rejected_spans == 1
    assert reply.partial_success.error_message.startswith("LIVE_TRACES_EXCEEDED: ")
    # trace 1 grows past 2000 bytes
    status, _, body = push(server, request({1: 60}), "small")
    reply = trace_service_pb2.ExportTraceServiceResponse.FromString(body)
    assert reply.partial_success.rejected_spans == 60
    assert "TRACE_TOO_LARGE: max size of trace (2000)" in reply.partial_success.error_message
    # what was kept reads back, with the attribute cut to 8 bytes
    status, _, got = server.get(
        "/api/traces/00000000000000000000000000000001", {"X-Scope-OrgID": "small"}
    )
    assert status == 200
    spans = [s for b in orjson.loads(got)["batches"] for ss in b["scopeSpans"] for s in ss["spans"]]
    assert len(spans) == 2
    assert spans[0]["attributes"] == [{"key": "a", "value": {"stringValue": "x" * 8}}]
    # another tenant keeps the defaults: no truncation, no live-trace limit
    assert push(server, request({1: 1, 2: 1, 3: 1}, attr="x" * 20), "big")[0] == 200
    status, _, got = server.get(
        "/api/traces/00000000000000000000000000000003", {"X-Scope-OrgID": "big"}
    )
    assert status == 200 and b"x" * 20 in got
    for series, value in [
        ('tempo_discarded_spans_total{reason="live_traces_exceeded",tenant="small"}', 1),
        ('tempo_discarded_spans_total{reason="trace_too_large",tenant="small"}', 60),
        ('tempo_distributor_attributes_truncated_total{scope="span",tenant="small"}', 3),
        ('tempo_limits_overrides{limit_name="max_traces_per_user",user="small"}', 2),
    ]:
        assert metric(server, series) == value, series


def test_rate_limit_and_runtime_reload(limited) -> None:
    server, runtime = limited
    body = request({7: 5})
    assert push(server, body, "fast")[0] == 200
    write_overrides(
        runtime, {"fast": {"ingestion": {"rate_limit_bytes": 1, "burst_size_bytes": len(body)}}}
    )

    # reloaded within a period or two: the bucket allows one more request, then 429
    def refused() -> bool:
        return push(server, body, "fast")[0] == 429

    wait_for(refused, timeout=10)
    status, headers, text = push(server, body, "fast")
    assert status == 429
    assert headers["Retry-After"] == "1"
    reply = text.decode("utf-8", "replace")
    assert "RATE_LIMITED: ingestion rate limit (local: 1 bytes" in reply
    assert metric(server, 'tempo_discarded_spans_total{reason="rate_limited",tenant="fast"}') >= 10
    # gRPC: RESOURCE_EXHAUSTED with a RetryInfo detail
    channel = grpc.insecure_channel(server.otlp_grpc)
    export = channel.unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.RpcError) as info:
        export(body, metadata=(("x-scope-orgid", "fast"),), timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = dict(info.value.trailing_metadata())["grpc-status-details-bin"]
    assert b"type.googleapis.com/google.rpc.RetryInfo" in details
    channel.close()
    # other tenants are not limited
    assert push(server, body, "other")[0] == 200
    # a broken runtime file keeps the last good overrides
    runtime.write_text("overrides: {fast: {ingestion: {rate_limit_bytes: lots}}}")
    wait_for(lambda: metric(server, "tempo_runtime_config_last_reload_successful") == 0, 10)
    assert push(server, body, "fast")[0] == 429
    assert "reloading the runtime overrides failed" in server.log()


def test_read_limits_per_tenant(limited) -> None:
    """``read.max_search_duration`` / ``max_metrics_duration`` per tenant (0 falls back to the
    frontend's 168h / 24h; ``a|b`` gets the strictest), ``max_bytes_per_tag_values_query``."""
    server, runtime = limited
    for tenant in ("narrow", "wide"):
        for i, svc in enumerate(("checkout-service", "payment-service", "shipping-service")):
            assert push(server, request({i + 1: 2}, service=svc), tenant)[0] == 200
    write_overrides(
        runtime,
        {
            "narrow": {"read": {"max_search_duration": "1h", "max_metrics_duration": "30m",
                                "max_bytes_per_tag_values_query": 10}},
            "wide": {"read": {"max_search_duration": "0s"}},
        },
    )  # fmt: skip
    now = int(time.time())
    two_hours = f"start={now - 7200}&end={now}"

    def search(tenant: str, path: str) -> tuple[int, bytes]:
        status, _, body = server.get(path, {"X-Scope-OrgID": tenant})
        return status, body

    wait_for(lambda: search("narrow", f"/api/search?q={{}}&{two_hours}")[0] == 400, timeout=10)
    status, body = search("narrow", f"/api/search?q={{}}&{two_hours}")
    assert b"range specified by start and end exceeds 1h0m0s" in body
    assert search("narrow", f"/api/search?q={{}}&start={now - 1800}&end={now}")[0] == 200
    assert search("wide", f"/api/search?q={{}}&{two_hours}")[0] == 200  # 0: the frontend's
    assert search("wide", f"/api/search?q={{}}&start={now - 200 * 3600}&end={now}")[0] == 400
    assert search("wide|narrow", f"/api/search?q={{}}&{two_hours}")[0] == 400  # strictest
    status, body = search("narrow", f"/api/metrics/query_range?q={{}}|rate()&{two_hours}")
    assert status == 400 and b"maximum allowed duration of 30m0s" in body
    status, body = search("wide", f"/api/metrics/query_range?q={{}}|rate()&{two_hours}")
    assert status == 200
    # 10 bytes of tag values: one service name at most, where the default allows every one
    path = "/api/v2/search/tag/resource.service.name/values"
    status, body = search("wide", path)
    assert status == 200 and len(orjson.loads(body)["tagValues"]) == 3
    status, body = search("narrow", path)
    assert status == 200 and len(orjson.loads(body)["tagValues"]) <= 1
