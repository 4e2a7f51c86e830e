"""Multi-tenancy through real OTLP exporters: the tenant header on gRPC and HTTP, refusals
without it or with a hostile one, and queries that only ever see their own tenant."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.e2e.traces import emit_traces, trace_ids
from tests.server import TempoServer, free_port


@pytest.fixture
def mt_server(tmp_path: Path):
    s = TempoServer(tmp_path / "tempo", overrides={"multitenancy_enabled": True}).start()
    yield s
    s.stop()


def test_each_tenant_sees_only_its_own_traces(mt_server: TempoServer) -> None:
    a = emit_traces(
        GrpcExporter(endpoint=mt_server.otlp_grpc, insecure=True, headers={"x-scope-orgid": "a"}),
        n_traces=2,
    )
    b = emit_traces(
        HttpExporter(endpoint=f"{mt_server.otlp_http}/v1/traces", headers={"X-Scope-OrgID": "b"}),
        n_traces=2,
    )
    for tid in trace_ids(a):
        assert mt_server.get(f"/api/traces/{tid}", {"X-Scope-OrgID": "a"})[0] == 200
        assert mt_server.get(f"/api/traces/{tid}", {"X-Scope-OrgID": "b"})[0] == 404
    for tid in trace_ids(b):
        assert mt_server.get(f"/api/traces/{tid}", {"X-Scope-OrgID": "b"})[0] == 200
        assert mt_server.get(f"/api/traces/{tid}", {"X-Scope-OrgID": "a"})[0] == 404
        # both tenants at once, when the header lists them
        assert mt_server.get(f"/api/traces/{tid}", {"X-Scope-OrgID": "a|b"})[0] == 200
    assert mt_server.get(f"/api/traces/{trace_ids(a)[0]}")[0] == 401


def test_missing_or_hostile_tenant_is_refused(mt_server: TempoServer, tmp_path: Path) -> None:
    grpc_result = GrpcExporter(endpoint=mt_server.otlp_grpc, insecure=True).export(
        emit_traces(_Discard(), n_traces=1)
    )
    assert grpc_result == SpanExportResult.FAILURE
    body = encode_spans(emit_traces(_Discard(), n_traces=1)).SerializePartialToString()
    pb = {"Content-Type": "application/x-protobuf"}
    assert mt_server.post("/v1/traces", body, pb)[0] == 401
    for bad in ("../../etc", "..", "a/b", "x" * 151, "tab\there"):
        status, _, reply = mt_server.post("/v1/traces", body, {**pb, "X-Scope-OrgID": bad})
        assert status == 400, (bad, reply)
    refused = mt_server.metrics()
    assert 'tempo_distributor_requests_refused_total{reason="invalid_tenant"}' in refused
    # nothing was written outside the data directory
    assert not (tmp_path / "etc").exists()
    assert not (mt_server.data.parent / "etc").exists()
    assert mt_server.get("/ready")[0] == 200


class _Discard:
    """A span exporter that drops everything (to record spans without sending them)."""

    def export(self, spans):  # noqa: ANN001, ANN201
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


def test_zipkin_and_jaeger_receivers_take_the_tenant_header(tmp_path: Path) -> None:
    jaeger_port = free_port()
    server = TempoServer(
        tmp_path / "tempo",
        overrides={
            "multitenancy_enabled": True,
            "distributor": {
                "receivers": {
                    "jaeger": {
                        "protocols": {"thrift_http": {"endpoint": f"127.0.0.1:{jaeger_port}"}}
                    }
                }
            },
        },
    ).start()
    try:
        span = [{"traceId": "ab" * 16, "id": "cd" * 8, "name": "x", "timestamp": 1, "duration": 1}]
        body, json = orjson.dumps(span), {"Content-Type": "application/json"}
        zipkin = server.zipkin
        assert server.post("/api/v2/spans", body, json, base=zipkin)[0] == 401
        bad = {**json, "X-Scope-OrgID": "../../etc"}
        assert server.post("/api/v2/spans", body, bad, base=zipkin)[0] == 400
        good = {**json, "X-Scope-OrgID": "zipkin-team"}
        assert server.post("/api/v2/spans", body, good, base=zipkin)[0] == 202
        status, _, _ = server.get(f"/api/traces/{'ab' * 16}", {"X-Scope-OrgID": "zipkin-team"})
        assert status == 200
        assert server.get(f"/api/traces/{'ab' * 16}", {"X-Scope-OrgID": "other"})[0] == 404
        thrift = {"Content-Type": "application/x-thrift"}
        jaeger = f"http://127.0.0.1:{jaeger_port}"
        assert server.post("/api/traces", b"\x00", thrift, base=jaeger)[0] == 401
        assert not any(p.name == "etc" for p in tmp_path.rglob("*"))
    finally:
        server.stop()
