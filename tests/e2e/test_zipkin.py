"""Zipkin v2 JSON in through the OpenTelemetry Zipkin exporter, trace by id out.

Expectations follow the OpenTelemetry collector's zipkinv2 translation, applied here
independently to what the SDK recorded: tags are strings, resource-convention tags return
to the resource, scope and status come from the ``otel.*`` tags, times are microseconds.
"""

from __future__ import annotations

import json

import orjson
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.zipkin.json import Protocol, ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from thrift.protocol import TBinaryProtocol
from thrift.Thrift import TType
from thrift.transport import TTransport

from tests.e2e.traces import KINDS, STATUS, emit_traces, normalise_otlp, runtime_message, trace_ids
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
        ("/api/v1/spans", b'[{"binaryAnnotations": [{"key": 1}]}]', json_headers, 400),
        ("/api/v2/spans", b"\x0a\x05\x0a\x03", {"Content-Type": "application/x-protobuf"}, 400),
        ("/api/v1/spans", b"\x0c\x00\x00\x00\x09", {"Content-Type": "application/x-thrift"}, 400),
        ("/api/v2/spans", b"[]", {**json_headers, "Content-Encoding": "br"}, 415),
    ]:
        code, _, reply = server.post(path, body, headers, base=url)
        assert code == status, (path, body, reply)
        assert reply, "the refusal says why"
    assert server.get("/ready")[0] == 200


def test_zipkin_v1_json_exporter(server: TempoServer) -> None:
    """The exporter's v1 encoder: tags as string binary annotations on the local endpoint,
    no core annotations, so the collector's v1 rules leave the kind unspecified."""
    # (the v1 encoder needs an explicit tag length limit, or it fails comparing None)
    exporter = ZipkinExporter(
        endpoint=f"{server.zipkin}/api/v1/spans", version=Protocol.V1, max_tag_value_length=4096
    )
    sent = emit_traces(exporter, n_traces=2, service="zipkin-v1")
    for tid in trace_ids(sent):
        got = fetch(server, tid)
        mine = {f"{s.context.span_id:016x}": s for s in sent if f"{s.context.trace_id:032x}" == tid}
        assert got.keys() == mine.keys()
        for sid, span in mine.items():
            want, have = expected(span), got[sid]
            for field in ("name", "parent", "start", "end"):
                assert have[field] == want[field], (field, have[field], want[field])
            assert have["resource"]["service.name"] == "zipkin-v1"
            assert have["kind"] == "SPAN_KIND_UNSPECIFIED"
            for key, value in (span.attributes or {}).items():
                assert have["attributes"][key] == tag(value), key
            assert [e[0] for e in have["events"]] == want["events"]
            if span.status.status_code == StatusCode.ERROR:
                assert have["status"][0] == "STATUS_CODE_ERROR"


def zipkin_v1_thrift(trace_id: int, spans: list[tuple[int, int, str, str]], t0_us: int) -> bytes:
    """Zipkin v1 thrift as a v1 client posts it: a TBinaryProtocol list of zipkincore
    ``Span`` structs, built with the IDL-generated classes. Each span: (id, parent, name,
    kind) where kind "server" / "client" gives sr/ss or cs/cr core annotations."""
    from opentelemetry.exporter.jaeger.thrift.gen.zipkincore import ttypes as z

    host = z.Endpoint(ipv4=0x0A000001, port=8080, service_name="thrift-svc")
    core = {"server": ("sr", "ss"), "client": ("cs", "cr")}
    out = []
    for i, (span_id, parent, name, kind) in enumerate(spans):
        start, end = t0_us + i * 10, t0_us + i * 10 + 5
        out.append(
            z.Span(
                trace_id=trace_id & (1 << 63) - 1,
                trace_id_high=trace_id >> 64,
                id=span_id,
                parent_id=parent or None,
                name=name,
                timestamp=start,
                duration=end - start,
                annotations=[
                    z.Annotation(timestamp=start, value=core[kind][0], host=host),
                    z.Annotation(timestamp=end, value=core[kind][1], host=host),
                ],
                binary_annotations=[
                    z.BinaryAnnotation(
                        key="http.path",
                        value=b"/v1/" + name.encode(),
                        annotation_type=z.AnnotationType.STRING,
                        host=host,
                    ),
                    z.BinaryAnnotation(
                        key="retries",
                        value=(3).to_bytes(8, "big"),
                        annotation_type=z.AnnotationType.I64,
                        host=host,
                    ),
                ],
            )
        )
    buf = TTransport.TMemoryBuffer()
    proto = TBinaryProtocol.TBinaryProtocol(buf)
    proto.writeListBegin(TType.STRUCT, len(out))
    for span in out:
        span.write(proto)
    proto.writeListEnd()
    return buf.getvalue()


def test_zipkin_v1_thrift(server: TempoServer) -> None:
    import tests.e2e.jaeger_client  # noqa: F401 - the zipkincore classes ship with it

    trace_id, t0 = 0x0AB << 64 | 0x0CD, 1_700_000_000_000_000
    body = zipkin_v1_thrift(trace_id, [(1, 0, "root", "server"), (2, 1, "call", "client")], t0)
    code, _, reply = server.post(
        "/api/v1/spans", body, {"Content-Type": "application/x-thrift"}, base=server.zipkin
    )
    assert code == 202, reply
    got = fetch(server, f"{trace_id:032x}")
    root, call = got[f"{1:016x}"], got[f"{2:016x}"]
    assert (root["kind"], call["kind"]) == ("SPAN_KIND_SERVER", "SPAN_KIND_CLIENT")
    assert call["parent"] == f"{1:016x}"
    assert root["resource"]["service.name"] == "thrift-svc"
    assert root["start"] == t0 * 1000 and root["end"] == (t0 + 5) * 1000
    assert root["attributes"]["http.path"] == "/v1/root"
    assert root["attributes"]["retries"] == 3


def zipkin_v2_proto_class():
    """``zipkin.proto``'s ``ListOfSpans`` with zipkin2's field numbers."""
    return runtime_message(
        "e2e.zipkin",
        {
            "Endpoint": [("service_name", 1, "string"), ("ipv4", 2, "bytes"), ("port", 4, "int32")],
            "Annotation": [("timestamp", 1, "fixed64"), ("value", 2, "string")],
            "TagsEntry": [("key", 1, "string"), ("value", 2, "string")],
            "Span": [
                ("trace_id", 1, "bytes"),
                ("parent_id", 2, "bytes"),
                ("id", 3, "bytes"),
                ("kind", 4, "int32"),
                ("name", 5, "string"),
                ("timestamp", 6, "fixed64"),
                ("duration", 7, "uint64"),
                ("local_endpoint", 8, "Endpoint"),
                ("annotations", 10, "*Annotation"),
                ("tags", 11, "*TagsEntry"),
            ],
            "ListOfSpans": [("spans", 1, "*Span")],
        },
        "ListOfSpans",
    )


def test_zipkin_v2_protobuf_and_parse_string_tags(tmp_path) -> None:
    server = TempoServer(
        tmp_path / "tempo",
        overrides={"distributor": {"receivers": {"zipkin": {"parse_string_tags": True}}}},
    ).start()
    try:
        spans = zipkin_v2_proto_class()()
        s = spans.spans.add(
            trace_id=bytes(range(1, 17)),
            id=bytes(range(1, 9)),
            kind=2,
            name="GET /",
            timestamp=1_700_000_000_000_000,
            duration=1500,
        )
        s.local_endpoint.service_name = "proto-svc"
        s.annotations.add(timestamp=1_700_000_000_000_100, value="cache.miss")
        for key, value in (
            ("http.status_code", "200"),
            ("ratio", "0.5"),
            ("ok", "true"),
            ("user", "alice"),
        ):
            s.tags.add(key=key, value=value)
        code, _, reply = server.post(
            "/api/v2/spans",
            spans.SerializeToString(),
            {"Content-Type": "application/x-protobuf"},
            base=server.zipkin,
        )
        assert code == 202, reply
        got = fetch(server, bytes(range(1, 17)).hex())[bytes(range(1, 9)).hex()]
        assert got["kind"] == "SPAN_KIND_SERVER"  # zipkin.proto: CLIENT=1, SERVER=2
        assert got["resource"]["service.name"] == "proto-svc"
        assert got["end"] - got["start"] == 1_500_000
        assert got["attributes"] == {
            "http.status_code": 200,
            "ratio": 0.5,
            "ok": True,
            "user": "alice",
        }
        assert got["events"][0][0] == "cache.miss"
    finally:
        server.stop()
