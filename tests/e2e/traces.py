"""Helpers for end-to-end tests: produce spans with the OpenTelemetry SDK and
normalise both what was sent and what the server returns into comparable form."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    message_factory,
    timestamp_pb2,
)
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

KINDS = {
    SpanKind.INTERNAL: "SPAN_KIND_INTERNAL",
    SpanKind.SERVER: "SPAN_KIND_SERVER",
    SpanKind.CLIENT: "SPAN_KIND_CLIENT",
    SpanKind.PRODUCER: "SPAN_KIND_PRODUCER",
    SpanKind.CONSUMER: "SPAN_KIND_CONSUMER",
}
STATUS = {
    StatusCode.UNSET: None,
    StatusCode.OK: "STATUS_CODE_OK",
    StatusCode.ERROR: "STATUS_CODE_ERROR",
}


def emit_traces(
    exporter: SpanExporter, n_traces: int = 3, service: str = "checkout"
) -> list[ReadableSpan]:
    """Creates `n_traces` small traces covering every field kind, exports them through
    `exporter` (synchronously, one export per span) and returns what was sent."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": service,
                "service.namespace": "shop",
                "k8s.pod.name": "pod-1",
                "replicas": 3,
            }
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e.tests", "1.2.3")
    for i in range(n_traces):
        with tracer.start_as_current_span(
            f"GET /orders/{i}",
            kind=SpanKind.SERVER,
            attributes={
                "http.method": "GET",
                "http.status_code": 200 + i,
                "http.route": "/orders/{id}",
                "retry": i % 2 == 0,
                "ratio": 0.25 * i,
                "tags": ["a", "b"],
                "counts": [1, 2, 3],
            },
        ) as root:
            root.add_event("cache.miss", {"key": f"order-{i}", "size": 12})
            with tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT) as db:
                db.set_attribute("db.system", "postgresql")
                db.set_status(Status(StatusCode.ERROR, "connection reset"))
                time.sleep(0.001)
            link_ctx = root.get_span_context()
            with tracer.start_as_current_span(
                "publish", kind=SpanKind.PRODUCER, links=[Link(link_ctx, {"link.kind": "follows"})]
            ) as p:
                p.set_status(Status(StatusCode.OK))
    provider.shutdown()
    return list(memory.get_finished_spans())


def trace_ids(spans: Iterable[ReadableSpan]) -> list[str]:
    seen: dict[str, None] = {}
    for s in spans:
        seen[f"{s.context.trace_id:032x}"] = None
    return list(seen)


def _sdk_value(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_sdk_value(x) for x in v]
    return v


def normalise_sdk(spans: Iterable[ReadableSpan]) -> dict[str, dict[str, Any]]:
    """SDK spans keyed by span id hex, in the shape `normalise_otlp` produces."""
    out = {}
    for s in spans:
        out[f"{s.context.span_id:016x}"] = {
            "trace_id": f"{s.context.trace_id:032x}",
            "name": s.name,
            "kind": KINDS[s.kind],
            "parent": f"{s.parent.span_id:016x}" if s.parent else None,
            "start": s.start_time,
            "end": s.end_time,
            "attributes": {k: _sdk_value(v) for k, v in (s.attributes or {}).items()},
            "events": [
                (e.name, e.timestamp, {k: _sdk_value(v) for k, v in (e.attributes or {}).items()})
                for e in s.events
            ],
            "links": [
                (
                    f"{link.context.trace_id:032x}",
                    f"{link.context.span_id:016x}",
                    {k: _sdk_value(v) for k, v in (link.attributes or {}).items()},
                )
                for link in s.links
            ],
            "status": (STATUS[s.status.status_code], s.status.description or None),
            "resource": {k: _sdk_value(v) for k, v in s.resource.attributes.items()},
            "scope": (s.instrumentation_scope.name, s.instrumentation_scope.version),
        }
    return out


def _any_value(v: dict[str, Any]) -> Any:
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return v["boolValue"]
    if "arrayValue" in v:
        return [_any_value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {
            kv["key"]: _any_value(kv.get("value", {})) for kv in v["kvlistValue"].get("values", [])
        }
    if "bytesValue" in v:
        return base64.b64decode(v["bytesValue"])
    return None


def _attrs(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {kv["key"]: _any_value(kv.get("value", {})) for kv in items or []}


def _hex(b64: str | None) -> str | None:
    return base64.b64decode(b64).hex() if b64 else None


def normalise_otlp(resource_spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """OTLP/Tempo JSON resource spans (ids base64) keyed by span id hex."""
    out = {}
    for rs in resource_spans:
        resource = _attrs(rs.get("resource", {}).get("attributes"))
        for ss in rs.get("scopeSpans", []):
            scope = ss.get("scope", {})
            for s in ss.get("spans", []):
                status = s.get("status", {})
                out[_hex(s["spanId"])] = {
                    "trace_id": _hex(s["traceId"]),
                    "name": s["name"],
                    "kind": s.get("kind", "SPAN_KIND_UNSPECIFIED"),
                    "parent": _hex(s.get("parentSpanId")),
                    "start": int(s["startTimeUnixNano"]),
                    "end": int(s["endTimeUnixNano"]),
                    "attributes": _attrs(s.get("attributes")),
                    "events": [
                        (e.get("name", ""), int(e["timeUnixNano"]), _attrs(e.get("attributes")))
                        for e in s.get("events", [])
                    ],
                    "links": [
                        (_hex(lk["traceId"]), _hex(lk["spanId"]), _attrs(lk.get("attributes")))
                        for lk in s.get("links", [])
                    ],
                    "status": (
                        status.get("code") if status.get("code") != "STATUS_CODE_UNSET" else None,
                        status.get("message") or None,
                    ),
                    "resource": resource,
                    "scope": (scope.get("name"), scope.get("version")),
                }
    return out


def proto_to_json_batches(trace_bytes: bytes) -> list[dict[str, Any]]:
    """A `tempopb.Trace` (wire-identical to OTLP TracesData) as JSON resource spans."""
    data = trace_pb2.TracesData.FromString(trace_bytes)
    return MessageToDict(data)["resourceSpans"] if data.resource_spans else []


def read_fields(buf: bytes) -> dict[int, list[Any]]:
    """Top-level fields of a protobuf message (varints and length-delimited only)."""
    fields: dict[int, list[Any]] = {}
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    while pos < len(buf):
        key = varint()
        num, wire = key >> 3, key & 7
        if wire == 0:
            fields.setdefault(num, []).append(varint())
        elif wire == 2:
            n = varint()
            fields.setdefault(num, []).append(buf[pos : pos + n])
            pos += n
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return fields


def wait_for(pred: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def runtime_message(package: str, layout: dict[str, list[tuple[str, int, str]]], root: str) -> Any:
    """A protobuf message class built at runtime (for wire formats whose generated Python
    would not install here). ``layout`` maps each message to its fields ``(name, number,
    type)``: a scalar type name (``string``, ``bytes``, ``int32``, ``fixed64``, …) or a message
    name (``.google.protobuf.Timestamp`` / ``Duration`` are known); ``*`` in front repeats it."""
    t = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(name=f"{package}.proto", package=package)
    f.dependency.extend(["google/protobuf/timestamp.proto", "google/protobuf/duration.proto"])
    for name, fields in layout.items():
        m = f.message_type.add(name=name)
        for fname, number, ftype in fields:
            repeated, ftype = ftype.startswith("*"), ftype.lstrip("*")
            label = t.LABEL_REPEATED if repeated else t.LABEL_OPTIONAL
            fd = m.field.add(name=fname, number=number, label=label)
            if ftype[0].isupper() or ftype.startswith("."):
                fd.type = t.TYPE_MESSAGE
                fd.type_name = ftype if ftype.startswith(".") else f".{package}.{ftype}"
            else:
                fd.type = getattr(t, f"TYPE_{ftype.upper()}")
    pool = descriptor_pool.DescriptorPool()
    for dep in (timestamp_pb2, duration_pb2):
        pool.AddSerializedFile(dep.DESCRIPTOR.serialized_pb)
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{root}"))
