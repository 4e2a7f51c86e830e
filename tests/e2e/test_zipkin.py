"""Zipkin v2 JSON in through the OpenTelemetry Zipkin exporter, trace by id out.

Expectations follow the OpenTelemetry collector's zipkinv2 translation, applied here
independently to what the SDK recorded: tags are strings, resource-convention tags return
to the resource, scope and status come from the ``otel.*`` tags, times are microseconds.
"""

from __future__ import annotations

import json

import orjson
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tests.e2e.traces import KINDS, STATUS, emit_traces, normalise_otlp, trace_ids
from tests.server import TempoServer

RESOURCE_PREFIXES = ("service.", "telemetry.", "host.", "os.", "process.", "k8s.", "container.")


def tag(value: object) -> str:
    """How the exporter writes an attribute as a Zipkin tag."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return json.dumps([tag(v) for v in value], separators=(",", ":"))
    return str(value)


def expected(span) -> dict:
    tags = {k: tag(v) for k, v in (span.attributes or {}).items()}
    resource = {"service.name": span.resource.attributes["service.name"]}
    for k, v in span.resource.attributes.items():
        if k.startswith(RESOURCE_PREFIXES):
            resource[k] = tag(v)
        else:
            tags[k] = tag(v)
    start = (span.start_time + 500) // 1000 * 1000
    status, message = STATUS[span.status.status_code], span.status.description or None
    return {
        "name": span.name,
        # the exporter sends no kind for INTERNAL; the collector reads that as unspecified
        "kind": "SPAN_KIND_UNSPECIFIED" if span.kind == SpanKind.INTERNAL else KINDS[span.kind],
        "parent": f"{span.parent.span_id:016x}" if span.parent else None,
        "start": start,
        "end": start + (span.end_time - span.start_time + 500) // 1000 * 1000,
        "attributes": tags,
        "resource": resource,
        "scope": (span.instrumentation_scope.name, span.instrumentation_scope.version),
        "status": (status, message),
        "events": [json.dumps({e.name: dict(e.attributes)}, sort_keys=True) for e in span.events],
    }


def fetch(server: TempoServer, tid: str) -> dict:
    status, _, body = server.get(f"/api/traces/{tid}")
    assert status == 200, body
    return normalise_otlp(orjson.loads(body)["batches"])


def test_zipkin_exporter_round_trip(server: TempoServer) -> None:
    exporter = ZipkinExporter(endpoint=f"{server.zipkin}/api/v2/spans")
    sent = emit_traces(exporter, n_traces=3, service="zipkin-svc")
    for tid in trace_ids(sent):
        got = fetch(server, tid)
        mine = {f"{s.context.span_id:016x}": s for s in sent if f"{s.context.trace_id:032x}" == tid}
        assert got.keys() == mine.keys()
        for sid, span in mine.items():
            want, have = expected(span), got[sid]
            for field in ("name", "kind", "parent", "start", "end", "resource", "scope", "status"):
                assert have[field] == want[field], (field, have[field], want[field])
            assert have["attributes"] == want["attributes"]
            assert [e[0] for e in have["events"]] == want["events"]
    text = server.metrics()
    assert 'tempo_receiver_accepted_spans_total{receiver="zipkin",transport="http"}' in text


def test_one_trace_half_otlp_half_zipkin(server: TempoServer) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "mixed"}))
    provider.add_span_processor(
        SimpleSpanProcessor(GrpcExporter(endpoint=server.otlp_grpc, insecure=True))
    )
    zipkin = TracerProvider(resource=Resource.create({"service.name": "mixed-zipkin"}))
    zipkin.add_span_processor(
        SimpleSpanProcessor(ZipkinExporter(endpoint=f"{server.zipkin}/api/v2/spans"))
    )
    with (
        provider.get_tracer("a").start_as_current_span("root", kind=SpanKind.SERVER) as root,
        zipkin.get_tracer("b").start_as_current_span("child", kind=SpanKind.CLIENT) as child,
    ):
        pass
    provider.shutdown()
    zipkin.shutdown()
    got = fetch(server, f"{root.get_span_context().trace_id:032x}")
    assert set(got) == {
        f"{root.get_span_context().span_id:016x}",
        f"{child.get_span_context().span_id:016x}",
    }
    assert got[f"{child.get_span_context().span_id:016x}"]["parent"] == (
        f"{root.get_span_context().span_id:016x}"
    )


def test_zipkin_refusals(server: TempoServer) -> None:
    url = server.zipkin
    ok = [{"traceId": "a" * 32, "id": "b" * 16, "name": "x", "timestamp": 1, "duration": 1}]
    json_headers = {"Content-Type": "application/json"}
    assert server.post("/api/v2/spans", orjson.dumps(ok), json_headers, base=url)[0] == 202
    for path, body, headers, status in [
        ("/api/v2/spans", b"{not json", json_headers, 400),
        ("/api/v2/spans", b'[{"tags": {"a": 1}}]', json_headers, 400),
        ("/api/v1/spans", orjson.dumps(ok), json_headers, 415),
        ("/api/v2/spans", b"\x0a\x00", {"Content-Type": "application/x-protobuf"}, 415),
    ]:
        code, _, reply = server.post(path, body, headers, base=url)
        assert code == status, (path, body, reply)
        assert reply, "the refusal says why"
    assert server.get("/ready")[0] == 200
