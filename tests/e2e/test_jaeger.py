"""Jaeger in through real clients, trace by id out.

The OpenTelemetry Jaeger thrift exporter sends to the agent UDP port (compact thrift) and to
the collector's HTTP endpoint (binary thrift); its IDL-generated ``Agent`` client also writes
a binary-protocol datagram; gRPC ``PostSpans`` gets a ``PostSpansRequest`` built from
model.proto's field numbers. Expectations follow the collector's Jaeger translation, applied
here independently to what the SDK recorded.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import grpc
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from thrift.protocol import TBinaryProtocol
from thrift.transport import TTransport

from tests.e2e.jaeger_client import JaegerExporter
from tests.e2e.traces import KINDS, normalise_otlp, runtime_message, wait_for
from tests.server import TempoServer, free_port

PB_KINDS = {SpanKind.INTERNAL: "SPAN_KIND_INTERNAL", **KINDS}


@pytest.fixture
def jaeger(tmp_path: Path):
    ports = {name: free_port() for name in ("compact", "binary", "http", "grpc")}
    protocols = {
        "thrift_compact": {"endpoint": f"127.0.0.1:{ports['compact']}"},
        "thrift_binary": {"endpoint": f"127.0.0.1:{ports['binary']}"},
        "thrift_http": {"endpoint": f"127.0.0.1:{ports['http']}"},
        "grpc": {"endpoint": f"127.0.0.1:{ports['grpc']}"},
    }
    server = TempoServer(
        tmp_path / "tempo",
        overrides={"distributor": {"receivers": {"jaeger": {"protocols": protocols}}}},
    ).start()
    yield server, ports
    server.stop()


def emit(exporter, service: str = "jaeger-svc") -> list:
    """A small trace through ``exporter``: a server root with an event and attributes, a
    failing client child, and a producer with a link."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    recorded = []
    tracer = provider.get_tracer("e2e.jaeger", "2.0")
    with tracer.start_as_current_span(
        "GET /orders", kind=SpanKind.SERVER, attributes={"http.method": "GET", "retries": 2}
    ) as root:
        root.add_event("cache.miss", {"key": "order-1"})
        with tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT) as db:
            db.set_attribute("db.system", "postgresql")
            db.set_status(Status(StatusCode.ERROR, "connection reset"))
        with tracer.start_as_current_span(
            "publish", kind=SpanKind.PRODUCER, links=[Link(db.get_span_context())]
        ) as pub:
            pass
        recorded = [root, db, pub]
    provider.shutdown()
    return recorded


def fetch(server: TempoServer, trace_id: int) -> dict:
    def found():
        status, _, body = server.get(f"/api/traces/{trace_id:032x}")
        spans = normalise_otlp(orjson.loads(body)["batches"]) if status == 200 else {}
        return spans if len(spans) >= 3 else None  # UDP datagrams land in any order

    spans = wait_for(found, timeout=10)
    assert spans, f"trace {trace_id:032x} not found"
    return spans


def check(got: dict, spans: list, service: str) -> None:
    assert set(got) == {f"{s.get_span_context().span_id:016x}" for s in spans}
    root, db, pub = spans
    for s in spans:
        have = got[f"{s.get_span_context().span_id:016x}"]
        assert have["name"] == s.name
        assert have["kind"] == PB_KINDS[s.kind]
        assert have["resource"]["service.name"] == service
        # thrift carries microseconds; the exporter rounds start and duration
        assert have["start"] == (s.start_time + 500) // 1000 * 1000
        assert have["end"] == have["start"] + (s.end_time - s.start_time + 500) // 1000 * 1000
    have_root = got[f"{root.get_span_context().span_id:016x}"]
    assert have_root["parent"] is None
    assert have_root["attributes"]["http.method"] == "GET"
    assert have_root["attributes"]["retries"] == 2
    # the exporter writes an event as a log with a "message" field; the collector keeps it
    assert have_root["events"][0][2] == {"key": "order-1", "message": "cache.miss"}
    have_db = got[f"{db.get_span_context().span_id:016x}"]
    assert have_db["parent"] == f"{root.get_span_context().span_id:016x}"
    assert have_db["status"] == ("STATUS_CODE_ERROR", "connection reset")
    assert have_db["attributes"]["db.system"] == "postgresql"
    have_pub = got[f"{pub.get_span_context().span_id:016x}"]
    assert have_pub["links"][0][:2] == (
        f"{db.get_span_context().trace_id:032x}",
        f"{db.get_span_context().span_id:016x}",
    )


def test_agent_compact_udp(jaeger) -> None:
    server, ports = jaeger
    spans = emit(JaegerExporter(agent_host_name="127.0.0.1", agent_port=ports["compact"]))
    check(fetch(server, spans[0].get_span_context().trace_id), spans, "jaeger-svc")
    assert 'transport="udp_thrift_compact"' in server.metrics()


def test_collector_thrift_http(jaeger) -> None:
    server, ports = jaeger
    url = f"http://127.0.0.1:{ports['http']}/api/traces"
    spans = emit(JaegerExporter(collector_endpoint=url), service="via-http")
    check(fetch(server, spans[0].get_span_context().trace_id), spans, "via-http")


class _BinaryAgent(JaegerExporter):
    """The exporter's own batch, sent as the IDL-generated ``Agent`` client writes it over
    TBinaryProtocol (what a binary agent client sends to port 6832)."""

    def __init__(self, port: int) -> None:
        super().__init__(agent_host_name="127.0.0.1", agent_port=port)
        self._port = port
        from opentelemetry.exporter.jaeger.thrift.gen.agent import Agent

        self._agent_cls = Agent

    def export(self, spans):  # noqa: ANN001, ANN201
        from opentelemetry.exporter.jaeger.thrift.gen.jaeger import ttypes
        from opentelemetry.exporter.jaeger.thrift.translate import ThriftTranslator, Translate

        jspans = Translate(spans)._translate(ThriftTranslator(self._max_tag_value_length))
        process = ttypes.Process(serviceName=spans[0].resource.attributes["service.name"])
        buffer = TTransport.TMemoryBuffer()
        client = self._agent_cls.Client(TBinaryProtocol.TBinaryProtocol(buffer))
        client.emitBatch(ttypes.Batch(process=process, spans=jspans))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(buffer.getvalue(), ("127.0.0.1", self._port))
        return SpanExportResult.SUCCESS


def test_agent_binary_udp(jaeger) -> None:
    server, ports = jaeger
    spans = emit(_BinaryAgent(ports["binary"]), service="binary-agent")
    check(fetch(server, spans[0].get_span_context().trace_id), spans, "binary-agent")


def post_spans_class():
    """``jaeger.api_v2.PostSpansRequest`` with model.proto's field numbers."""
    return runtime_message(
        "e2e.jaeger",
        {
            "KeyValue": [
                ("key", 1, "string"),
                ("v_type", 2, "int32"),
                ("v_str", 3, "string"),
                ("v_int64", 5, "int64"),
            ],
            "SpanRef": [
                ("trace_id", 1, "bytes"),
                ("span_id", 2, "bytes"),
                ("ref_type", 3, "int32"),
            ],
            "Process": [("service_name", 1, "string"), ("tags", 2, "*KeyValue")],
            "Span": [
                ("trace_id", 1, "bytes"),
                ("span_id", 2, "bytes"),
                ("operation_name", 3, "string"),
                ("references", 4, "*SpanRef"),
                ("start_time", 6, ".google.protobuf.Timestamp"),
                ("duration", 7, ".google.protobuf.Duration"),
                ("tags", 8, "*KeyValue"),
            ],
            "Batch": [("spans", 1, "*Span"), ("process", 2, "Process")],
            "PostSpansRequest": [("batch", 1, "Batch")],
        },
        "PostSpansRequest",
    )


def test_grpc_post_spans(jaeger) -> None:
    server, ports = jaeger
    req = post_spans_class()()
    req.batch.process.service_name = "grpc-svc"
    now = time.time_ns()
    trace_id = 0x1234 << 64 | 0x5678
    root_id, child_id = (1).to_bytes(8, "big"), (2).to_bytes(8, "big")
    for span_id, name, refs in ((root_id, "root", []), (child_id, "child", [root_id])):
        s = req.batch.spans.add(
            trace_id=trace_id.to_bytes(16, "big"), span_id=span_id, operation_name=name
        )
        s.start_time.FromNanoseconds(now)
        s.duration.FromNanoseconds(2_000_000)
        s.tags.add(key="span.kind", v_type=0, v_str="server" if not refs else "client")
        s.tags.add(key="attempt", v_type=2, v_int64=3)
        for ref in refs:
            s.references.add(trace_id=trace_id.to_bytes(16, "big"), span_id=ref, ref_type=0)
    with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:
        call = channel.unary_unary("/jaeger.api_v2.CollectorService/PostSpans")
        assert call(req.SerializeToString(), timeout=10) == b""
    status, _, body = server.get(f"/api/traces/{trace_id:032x}")
    assert status == 200
    got = normalise_otlp(orjson.loads(body)["batches"])
    root, child = got[root_id.hex()], got[child_id.hex()]
    assert root["kind"] == "SPAN_KIND_SERVER" and child["kind"] == "SPAN_KIND_CLIENT"
    assert child["parent"] == root_id.hex()
    assert child["attributes"] == {"attempt": 3}
    assert root["resource"] == {"service.name": "grpc-svc"}
    assert root["start"] == now and root["end"] == now + 2_000_000  # Timestamp: nanoseconds


def test_one_trace_half_otlp_half_jaeger(jaeger) -> None:
    server, ports = jaeger
    otlp = TracerProvider(resource=Resource.create({"service.name": "otlp-half"}))
    otlp.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=server.otlp_grpc, insecure=True))
    )
    jg = TracerProvider(resource=Resource.create({"service.name": "jaeger-half"}))
    url = f"http://127.0.0.1:{ports['http']}/api/traces"
    jg.add_span_processor(SimpleSpanProcessor(JaegerExporter(collector_endpoint=url)))
    with (
        otlp.get_tracer("a").start_as_current_span("root", kind=SpanKind.SERVER) as root,
        jg.get_tracer("b").start_as_current_span("child", kind=SpanKind.CLIENT) as child,
    ):
        pass
    otlp.shutdown()
    jg.shutdown()
    status, _, body = server.get(f"/api/traces/{root.get_span_context().trace_id:032x}")
    got = normalise_otlp(orjson.loads(body)["batches"])
    child_id = f"{child.get_span_context().span_id:016x}"
    assert set(got) == {f"{root.get_span_context().span_id:016x}", child_id}
    assert got[child_id]["parent"] == f"{root.get_span_context().span_id:016x}"
    assert got[child_id]["resource"]["service.name"] == "jaeger-half"


def test_bad_jaeger_input_is_refused_and_counted(jaeger) -> None:
    server, ports = jaeger
    base = f"http://127.0.0.1:{ports['http']}"
    thrift = {"Content-Type": "application/x-thrift"}
    for body, headers, status, reason in [
        (b"\x0c\x00\x01\x0b\x00\x01\xff\xff\xff\xf0", thrift, 400, "invalid_thrift"),
        (b"\x0c", thrift, 400, "invalid_thrift"),
        (b"{}", {"Content-Type": "application/json"}, 400, "unsupported_content_type"),
    ]:
        code, _, reply = server.post("/api/traces", body, headers, base=base)
        assert code == status, reply
        assert reason in server.metrics()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x82\x21\x01\x09emitBatch\x1c\x1c", ("127.0.0.1", ports["compact"]))
        s.sendto(b"\x00" * 65_001, ("127.0.0.1", ports["compact"]))
        s.sendto(b"garbage", ("127.0.0.1", ports["binary"]))
    wait_for(lambda: server.metrics().count("invalid_thrift") and "too_large" in server.metrics())
    refused = [line for line in server.metrics().splitlines() if "requests_refused_total{" in line]
    assert any('reason="too_large"' in line for line in refused), refused
    with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:
        call = channel.unary_unary("/jaeger.api_v2.CollectorService/PostSpans")
        with pytest.raises(grpc.RpcError) as info:
            call(b"\x0a\x05\x0a\x03\x0a\x01", timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert server.get("/ready")[0] == 200
