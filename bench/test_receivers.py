"""Zipkin v2 JSON and Jaeger thrift next to OTLP protobuf on the same spans (the reference
data set, converted once, outside the timing): the Rust core's push through the binding, and
the running binary over HTTP (OTLP/HTTP protobuf vs the Zipkin and Jaeger thrift HTTP
receivers). Jaeger twice: one batch per resource of each loadgen request (~50 spans, the
requests mix 20 services), and per process (1,000 spans a batch, as a busy service's client
flushes). Bar: translation at most 2x OTLP's cost."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from thrift.protocol import TBinaryProtocol
from thrift.transport import TTransport

from bench.harness import CORE_BENCH, bench_config, env_int, loadgen_module, report, spread
from tempo_fast import _core
from tests.e2e.jaeger_client import JaegerExporter  # noqa: F401 - makes gen importable
from tests.server import TempoServer, free_port

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


def _tag(kv, ttypes):
    v, t = kv.value, ttypes.TagType
    kind = v.WhichOneof("value")
    if kind == "bool_value":
        return ttypes.Tag(key=kv.key, vType=t.BOOL, vBool=v.bool_value)
    if kind == "int_value":
        return ttypes.Tag(key=kv.key, vType=t.LONG, vLong=v.int_value)
    if kind == "double_value":
        return ttypes.Tag(key=kv.key, vType=t.DOUBLE, vDouble=v.double_value)
    return ttypes.Tag(key=kv.key, vType=t.STRING, vStr=str(getattr(v, kind)))


def _i64(b: bytes) -> int:
    return int.from_bytes(b, "big", signed=True)


def _jaeger_span(s, scope_name: str, ttypes):
    kinds = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
    tags = [_tag(kv, ttypes) for kv in s.attributes]
    tags.append(ttypes.Tag(key="span.kind", vType=0, vStr=kinds.get(s.kind, "internal")))
    tags.append(ttypes.Tag(key="otel.scope.name", vType=0, vStr=scope_name))
    if s.status.code == 2:
        tags.append(ttypes.Tag(key="error", vType=ttypes.TagType.BOOL, vBool=True))
        tags.append(ttypes.Tag(key="otel.status_description", vType=0, vStr=s.status.message))
    logs = [
        ttypes.Log(
            timestamp=e.time_unix_nano // 1000,
            fields=[ttypes.Tag(key="event", vType=0, vStr=e.name)]
            + [_tag(kv, ttypes) for kv in e.attributes],
        )
        for e in s.events
    ]
    return ttypes.Span(
        traceIdHigh=_i64(s.trace_id[:8]),
        traceIdLow=_i64(s.trace_id[8:]),
        spanId=_i64(s.span_id),
        parentSpanId=_i64(s.parent_span_id) if s.parent_span_id else 0,
        operationName=s.name,
        flags=1,
        startTime=s.start_time_unix_nano // 1000,
        duration=(s.end_time_unix_nano - s.start_time_unix_nano) // 1000,
        tags=tags,
        logs=logs or None,
    )


def to_jaeger(bodies: list[bytes], per_process: int = 0) -> list[bytes]:
    """OTLP requests as Jaeger thrift binary ``Batch`` bodies, the fields mapped as the
    collector maps them back. ``per_process`` 0: one batch per resource of each request (the
    loadgen's requests mix 20 services, so ~50 spans each); else every span of a process (a
    service's pod) gathered across the requests and sent ``per_process`` at a time, as a
    busy service's client flushes its buffer."""
    from opentelemetry.exporter.jaeger.thrift.gen.jaeger import ttypes

    groups: list[tuple[object, list]] = []
    by_process: dict[tuple, tuple[object, list]] = {}
    for body in bodies:
        for rs in ts.ExportTraceServiceRequest.FromString(body).resource_spans:
            res = {kv.key: kv for kv in rs.resource.attributes}
            service = res.pop("service.name").value.string_value
            process_tags = [_tag(kv, ttypes) for kv in res.values()]
            spans = [
                _jaeger_span(sp, ss.scope.name, ttypes) for ss in rs.scope_spans for sp in ss.spans
            ]
            if not per_process:
                groups.append((ttypes.Process(serviceName=service, tags=process_tags), spans))
                continue
            # a process is a pod (the loadgen draws host.name per batch: the pod keeps the
            # node of its first batch, as a real pod does)
            key = (service, res["k8s.pod.name"].value.string_value)
            if key not in by_process:
                by_process[key] = (ttypes.Process(serviceName=service, tags=process_tags), [])
            by_process[key][1].extend(spans)
    for process, spans in by_process.values():
        groups += [(process, spans[i : i + per_process]) for i in range(0, len(spans), per_process)]
    out = []
    for process, spans in groups:
        buf = TTransport.TMemoryBuffer()
        ttypes.Batch(process=process, spans=spans).write(TBinaryProtocol.TBinaryProtocol(buf))
        out.append(buf.getvalue())
    return out


@pytest.fixture(scope="module")
def data() -> dict:
    """Per format: (request bodies, encoding, receiver path, content type); spans per round."""
    gen = loadgen_module()
    batches, _ = gen.make_batches(3, env_int("BENCH_RECEIVER_BATCHES", 200), 1000, time.time_ns())
    otlp = [b for b, _ in batches]
    return {
        "spans": sum(n for _, n in batches),
        "otlp": (otlp, "protobuf", "/v1/traces", "application/x-protobuf"),
        "zipkin": (
            [to_zipkin(b) for b in otlp],
            "zipkin_json",
            "/api/v2/spans",
            "application/json",
        ),
        "jaeger": (to_jaeger(otlp), "jaeger_thrift_http", "/api/traces", "application/x-thrift"),
        "jaeger_per_process": (
            to_jaeger(otlp, per_process=1000),
            "jaeger_thrift_http",
            "/api/traces",
            "application/x-thrift",
        ),
    }


FORMATS = ("otlp", "zipkin", "jaeger", "jaeger_per_process")


def _ratio(rates: dict[str, list[float]], name: str) -> dict[str, float]:
    return spread([o / x for o, x in zip(rates["otlp"], rates[name], strict=True)])


def test_core_translation_vs_otlp(benchmark, tmp_path: Path, data) -> None:
    rates: dict[str, list[float]] = {n: [] for n in FORMATS}

    def one_round() -> None:
        for name in rates:
            bodies, encoding, _, _ = data[name]
            d = tmp_path / f"{name}{len(rates[name])}"
            config = {"blocks_path": str(d / "b"), **CORE_BENCH}
            ing = _core.Ingester(str(d / "wal"), config)
            ing.replay()
            c0 = time.process_time()
            accepted = sum(ing.push("bench", body, encoding).accepted for body in bodies)
            rates[name].append(data["spans"] / (time.process_time() - c0))
            ing.close()
            assert accepted == data["spans"], (name, accepted)

    benchmark.pedantic(one_round, rounds=env_int("BENCH_ROUNDS", 5), iterations=1)
    report(
        benchmark,
        "core push: Zipkin JSON and Jaeger thrift vs OTLP protobuf",
        {
            **{f"{n}_spans_per_cpu_s": spread(r) for n, r in rates.items()},
            **{f"{n}_cost_vs_otlp": _ratio(rates, n) for n in FORMATS[1:]},
            **{
                f"{n}_bytes_per_span": round(sum(map(len, data[n][0])) / data["spans"], 1)
                for n in rates
            },
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


def test_server_translation_vs_otlp(benchmark, tmp_path: Path, data) -> None:
    gen = loadgen_module()
    rates: dict[str, list[float]] = {n: [] for n in FORMATS}
    jaeger_port = free_port()
    receivers = {
        "distributor": {
            "receivers": {
                "jaeger": {"protocols": {"thrift_http": {"endpoint": f"127.0.0.1:{jaeger_port}"}}}
            }
        }
    }

    def one_round() -> None:
        for name in rates:
            bodies, _, path, ctype = data[name]
            server = TempoServer(
                tmp_path / f"{name}{len(rates[name])}", overrides=bench_config(receivers)
            ).start()
            port = {
                "otlp": server.otlp_http_port,
                "zipkin": server.zipkin_port,
                "jaeger": jaeger_port,
                "jaeger_per_process": jaeger_port,
            }[name]
            try:
                assert server.proc is not None
                c0 = gen.cpu_of(server.proc.pid)
                _post_all(port, path, bodies, ctype)
                rates[name].append(data["spans"] / (gen.cpu_of(server.proc.pid) - c0))
            finally:
                server.stop()

    benchmark.pedantic(one_round, rounds=env_int("BENCH_ROUNDS", 3), iterations=1)
    report(
        benchmark,
        "server over HTTP (receive + WAL + live; cuts follow later): Zipkin, Jaeger vs OTLP",
        {
            **{f"{n}_spans_per_cpu_s": spread(r) for n, r in rates.items()},
            **{f"{n}_cost_vs_otlp": _ratio(rates, n) for n in FORMATS[1:]},
        },
    )
