"""Zipkin v2 JSON next to OTLP protobuf on the same spans (the reference data set, converted
once, outside the timing): the Rust core's push through the binding, and the running binary
over HTTP (OTLP/HTTP protobuf vs the Zipkin receiver). Bar: translation at most 2x OTLP."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts

from bench.harness import bench_config, env_int, loadgen_module, report, spread
from tempo_fast import _core
from tests.server import TempoServer

pytestmark = pytest.mark.loadgen

KINDS = {2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def _value(v) -> str:
    kind = v.WhichOneof("value")
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    return str(getattr(v, kind))


def to_zipkin(body: bytes) -> bytes:
    """One OTLP request as Zipkin v2 JSON, the way the OpenTelemetry Zipkin exporter writes it."""
    req = ts.ExportTraceServiceRequest.FromString(body)
    out = []
    for rs in req.resource_spans:
        res = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
        service = res.get("service.name", "")
        for ss in rs.scope_spans:
            for s in ss.spans:
                tags = {kv.key: _value(kv.value) for kv in s.attributes}
                tags.update(res)
                tags["otel.scope.name"] = ss.scope.name
                if s.status.code == 2:
                    tags["otel.status_code"] = "ERROR"
                    tags["error"] = s.status.message
                span = {
                    "traceId": s.trace_id.hex(),
                    "id": s.span_id.hex(),
                    "name": s.name,
                    "timestamp": s.start_time_unix_nano // 1000,
                    "duration": (s.end_time_unix_nano - s.start_time_unix_nano) // 1000,
                    "localEndpoint": {"serviceName": service},
                    "tags": tags,
                }
                if s.kind in KINDS:
                    span["kind"] = KINDS[s.kind]
                if s.parent_span_id:
                    span["parentId"] = s.parent_span_id.hex()
                if s.events:
                    span["annotations"] = [
                        {"timestamp": e.time_unix_nano // 1000, "value": e.name} for e in s.events
                    ]
                out.append(span)
    return json.dumps(out).encode()


@pytest.fixture(scope="module")
def data() -> tuple[list[bytes], list[bytes], int]:
    gen = loadgen_module()
    batches, _ = gen.make_batches(3, env_int("BENCH_ZIPKIN_BATCHES", 200), 1000, time.time_ns())
    spans = sum(n for _, n in batches)
    return [b for b, _ in batches], [to_zipkin(b) for b, _ in batches], spans


def test_core_zipkin_vs_otlp(benchmark, tmp_path: Path, data) -> None:
    otlp, zipkin, spans = data
    rates: dict[str, list[float]] = {"protobuf": [], "zipkin_json": []}

    def one_round() -> None:
        for encoding, bodies in (("protobuf", otlp), ("zipkin_json", zipkin)):
            d = tmp_path / f"{encoding}{len(rates[encoding])}"
            ing = _core.Ingester(str(d / "wal"), {"blocks_path": str(d / "b"), "fsync": "never"})
            ing.replay()
            c0 = time.process_time()
            for body in bodies:
                ing.push("bench", body, encoding)
            rates[encoding].append(spans / (time.process_time() - c0))
            ing.close()

    benchmark.pedantic(one_round, rounds=env_int("BENCH_ROUNDS", 5), iterations=1)
    ratio = [p / z for p, z in zip(rates["protobuf"], rates["zipkin_json"], strict=True)]
    report(
        benchmark,
        "core push: Zipkin JSON vs OTLP protobuf",
        {
            "otlp_spans_per_cpu_s": spread(rates["protobuf"]),
            "zipkin_spans_per_cpu_s": spread(rates["zipkin_json"]),
            "zipkin_cost_vs_otlp": spread(ratio),
            "zipkin_bytes_per_span": round(sum(map(len, zipkin)) / spans, 1),
        },
    )


def _post_all(port: int, path: str, bodies: list[bytes], content_type: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for body in bodies:
        conn.request("POST", path, body, {"Content-Type": content_type})
        resp = conn.getresponse()
        resp.read()
        assert resp.status in (200, 202), resp.status
    conn.close()


def test_server_zipkin_vs_otlp(benchmark, tmp_path: Path, data) -> None:
    gen = loadgen_module()
    otlp, zipkin, spans = data
    rates: dict[str, list[float]] = {"otlp": [], "zipkin": []}

    def one_round() -> None:
        for name, port_attr, path, ctype, bodies in (
            ("otlp", "otlp_http_port", "/v1/traces", "application/x-protobuf", otlp),
            ("zipkin", "zipkin_port", "/api/v2/spans", "application/json", zipkin),
        ):
            server = TempoServer(
                tmp_path / f"{name}{len(rates[name])}", overrides=bench_config()
            ).start()
            try:
                assert server.proc is not None
                c0 = gen.cpu_of(server.proc.pid)
                _post_all(getattr(server, port_attr), path, bodies, ctype)
                rates[name].append(spans / (gen.cpu_of(server.proc.pid) - c0))
            finally:
                server.stop()

    benchmark.pedantic(one_round, rounds=env_int("BENCH_ROUNDS", 3), iterations=1)
    report(
        benchmark,
        "server over HTTP (receive + WAL + live; cuts follow later): Zipkin JSON vs OTLP",
        {
            "otlp_spans_per_cpu_s": spread(rates["otlp"]),
            "zipkin_spans_per_cpu_s": spread(rates["zipkin"]),
            "zipkin_cost_vs_otlp": spread(
                [o / z for o, z in zip(rates["otlp"], rates["zipkin"], strict=True)]
            ),
        },
    )
