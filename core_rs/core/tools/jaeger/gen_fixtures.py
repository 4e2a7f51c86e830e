#!/usr/bin/env python3
"""Writes src/otlp/jaeger/fixtures.rs: Jaeger test inputs made with independent
encoders, Apache Thrift's Python protocols (thrift==0.22.0) and Google's protobuf
runtime, from hand-written descriptions of jaeger.thrift / agent.thrift / model.proto,
and the OTLP that the OpenTelemetry collector's own translator makes of each
(tests/oracle, a Go program on pkg/translator/jaeger v0.165.1).

    python3 -m venv .venv && .venv/bin/pip install thrift==0.22.0 protobuf
    (cd tests/oracle && go build -o oracle .)
    .venv/bin/python tests/gen_fixtures.py
"""

import os
import struct
import subprocess

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf import duration_pb2, timestamp_pb2  # noqa: F401 (registers the types)
from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.Thrift import TMessageType, TType
from thrift.transport import TTransport

# ------------------------------------------------------------------ Thrift model
# jaeger.thrift: enum TagType { STRING, DOUBLE, BOOL, LONG, BINARY }
STRING, DOUBLE, BOOL, LONG, BINARY = range(5)
CHILD_OF, FOLLOWS_FROM = 0, 1


def i64(u):
    """An unsigned 64-bit id as Thrift's signed i64."""
    return struct.unpack(">q", struct.pack(">Q", u))[0]


def write_tag(p, key, vtype, value):
    p.writeStructBegin("Tag")
    p.writeFieldBegin("key", TType.STRING, 1)
    p.writeString(key)
    p.writeFieldEnd()
    p.writeFieldBegin("vType", TType.I32, 2)
    p.writeI32(vtype)
    p.writeFieldEnd()
    if vtype == STRING:
        p.writeFieldBegin("vStr", TType.STRING, 3)
        p.writeString(value)
    elif vtype == DOUBLE:
        p.writeFieldBegin("vDouble", TType.DOUBLE, 4)
        p.writeDouble(value)
    elif vtype == BOOL:
        p.writeFieldBegin("vBool", TType.BOOL, 5)
        p.writeBool(value)
    elif vtype == LONG:
        p.writeFieldBegin("vLong", TType.I64, 6)
        p.writeI64(value)
    elif vtype == BINARY:
        p.writeFieldBegin("vBinary", TType.STRING, 7)
        p.writeBinary(value)
    p.writeFieldEnd()
    p.writeFieldStop()
    p.writeStructEnd()


def write_tags(p, name, fid, tags):
    p.writeFieldBegin(name, TType.LIST, fid)
    p.writeListBegin(TType.STRUCT, len(tags))
    for t in tags:
        write_tag(p, *t)
    p.writeListEnd()
    p.writeFieldEnd()


def write_i64_field(p, name, fid, v):
    p.writeFieldBegin(name, TType.I64, fid)
    p.writeI64(v)
    p.writeFieldEnd()


def write_unknown_fields(p):
    """Fields jaeger.thrift does not define, of every container type."""
    p.writeFieldBegin("x_map", TType.MAP, 99)
    p.writeMapBegin(TType.STRING, TType.LIST, 2)
    for k in ("a", "b"):
        p.writeString(k)
        p.writeListBegin(TType.I32, 3)
        for v in (1, -2, 300000):
            p.writeI32(v)
        p.writeListEnd()
    p.writeMapEnd()
    p.writeFieldEnd()
    p.writeFieldBegin("x_set", TType.SET, 100)
    p.writeSetBegin(TType.BOOL, 2)
    p.writeBool(True)
    p.writeBool(False)
    p.writeSetEnd()
    p.writeFieldEnd()
    p.writeFieldBegin("x_struct", TType.STRUCT, 101)
    p.writeStructBegin("X")
    p.writeFieldBegin("d", TType.DOUBLE, 1)
    p.writeDouble(1.5)
    p.writeFieldEnd()
    p.writeFieldBegin("b", TType.BOOL, 2)
    p.writeBool(True)
    p.writeFieldEnd()
    p.writeFieldBegin("s", TType.I16, 3)
    p.writeI16(-7)
    p.writeFieldEnd()
    p.writeFieldBegin("y", TType.BYTE, 4)
    p.writeByte(-1)
    p.writeFieldEnd()
    p.writeFieldStop()
    p.writeStructEnd()
    p.writeFieldEnd()
    p.writeFieldBegin("x_empty_map", TType.MAP, 102)
    p.writeMapBegin(TType.I64, TType.STRING, 0)
    p.writeMapEnd()
    p.writeFieldEnd()


def write_span(p, s):
    p.writeStructBegin("Span")
    write_i64_field(p, "traceIdLow", 1, i64(s["trace"] & (2**64 - 1)))
    write_i64_field(p, "traceIdHigh", 2, i64(s["trace"] >> 64))
    write_i64_field(p, "spanId", 3, i64(s["id"]))
    write_i64_field(p, "parentSpanId", 4, i64(s.get("parent", 0)))
    p.writeFieldBegin("operationName", TType.STRING, 5)
    p.writeString(s["name"])
    p.writeFieldEnd()
    if "refs" in s:
        p.writeFieldBegin("references", TType.LIST, 6)
        p.writeListBegin(TType.STRUCT, len(s["refs"]))
        for ref_type, trace, span_id in s["refs"]:
            p.writeStructBegin("SpanRef")
            p.writeFieldBegin("refType", TType.I32, 1)
            p.writeI32(ref_type)
            p.writeFieldEnd()
            write_i64_field(p, "traceIdLow", 2, i64(trace & (2**64 - 1)))
            write_i64_field(p, "traceIdHigh", 3, i64(trace >> 64))
            write_i64_field(p, "spanId", 4, i64(span_id))
            p.writeFieldStop()
            p.writeStructEnd()
        p.writeListEnd()
        p.writeFieldEnd()
    p.writeFieldBegin("flags", TType.I32, 7)
    p.writeI32(s.get("flags", 0))
    p.writeFieldEnd()
    write_i64_field(p, "startTime", 8, s.get("start", 0))
    write_i64_field(p, "duration", 9, s.get("duration", 0))
    if "tags" in s:
        write_tags(p, "tags", 10, s["tags"])
    if "logs" in s:
        p.writeFieldBegin("logs", TType.LIST, 11)
        p.writeListBegin(TType.STRUCT, len(s["logs"]))
        for ts, fields in s["logs"]:
            p.writeStructBegin("Log")
            write_i64_field(p, "timestamp", 1, ts)
            write_tags(p, "fields", 2, fields)
            p.writeFieldStop()
            p.writeStructEnd()
        p.writeListEnd()
        p.writeFieldEnd()
    if s.get("unknown"):
        p.writeFieldBegin("incomplete", TType.BOOL, 12)
        p.writeBool(True)
        p.writeFieldEnd()
        write_unknown_fields(p)
    p.writeFieldStop()
    p.writeStructEnd()


def write_batch(p, process, spans):
    p.writeStructBegin("Batch")
    p.writeFieldBegin("process", TType.STRUCT, 1)
    p.writeStructBegin("Process")
    p.writeFieldBegin("serviceName", TType.STRING, 1)
    p.writeString(process[0])
    p.writeFieldEnd()
    write_tags(p, "tags", 2, process[1])
    p.writeFieldStop()
    p.writeStructEnd()
    p.writeFieldEnd()
    p.writeFieldBegin("spans", TType.LIST, 2)
    p.writeListBegin(TType.STRUCT, len(spans))
    for s in spans:
        write_span(p, s)
    p.writeListEnd()
    p.writeFieldEnd()
    write_i64_field(p, "seqNo", 3, 7)  # newer jaeger.thrift fields, unknown here
    p.writeFieldStop()
    p.writeStructEnd()


T128 = 0x0102030405060708_1112131415161718
T64 = 0x5AF7183FB1D4CF5F
START = 1_700_000_000_000_000

PROCESS = (
    "frontend",
    [
        ("hostname", STRING, "node-1"),
        ("jaeger.version", STRING, "Go-2.30.0"),
        ("ip", STRING, "10.0.0.1"),
        ("pid", LONG, 42),
    ],
)

SPANS = [
    {  # 0: every tag type, 128-bit ids, server kind, error=true, two refs
        "trace": T128,
        "id": 0x2122232425262728,
        "name": "GET /api",
        "refs": [(CHILD_OF, T128, 0x3132333435363738), (FOLLOWS_FROM, 0xABCDEF, 0x4142434445464748)],
        "flags": 1,
        "start": START,
        "duration": 2500,
        "tags": [
            ("http.method", STRING, "GET"),
            ("ratio", DOUBLE, 0.25),
            ("cache.hit", BOOL, True),
            ("http.status_code", LONG, 503),
            ("blob", BINARY, b"\x00\xff\x10"),
            ("span.kind", STRING, "server"),
            ("error", BOOL, True),
            ("otel.status_description", STRING, "boom"),
            ("w3c.tracestate", STRING, "k=v"),
            ("otel.library.name", STRING, "lib"),
            ("otel.library.version", STRING, "1.0"),
            ("dup", STRING, "a"),
            ("neg", LONG, -5),
            ("dup", STRING, "b"),
        ],
        "logs": [
            (START + 1000, [("event", STRING, "cache.miss"), ("key", STRING, "user:1")]),
            (START + 2000, [("n", LONG, 2)]),
        ],
    },
    {  # 1: 64-bit trace id, high-bit span id, explicit parent, otel.status_code
        "trace": T64,
        "id": 0xF000000000000001,
        "parent": 0x2122232425262728,
        "name": "db",
        "refs": [(CHILD_OF, T64, 0x2122232425262728)],
        "start": START + 100,
        "duration": 100,
        "tags": [
            ("span.kind", STRING, "client"),
            ("otel.status_code", STRING, "error"),
            ("otel.status_description", STRING, "db down"),
            ("http.status_code", LONG, 200),
            ("otel.scope.name", STRING, "lib2"),
        ],
    },
    {  # 2: parent from a FOLLOWS_FROM ref; http.status_code 404 on a client span
        "trace": T64,
        "id": 0x0A0A0A0A0A0A0A0A,
        "name": "call",
        "refs": [(FOLLOWS_FROM, T64, 0xF000000000000001)],
        "start": START + 200,
        "duration": 5,
        "tags": [
            ("span.kind", STRING, "client"),
            ("http.status_code", STRING, "404"),
            ("http.status_message", STRING, "Not Found"),
            ("otel.library.name", STRING, "lib"),
            ("otel.library.version", STRING, "1.0"),
        ],
    },
    {"trace": 0, "id": 0, "name": ""},  # 3: blank, skipped
    {  # 4: unknown fields, 40 tags (5 repeated keys), error=false kept, status OK
        "trace": T64,
        "id": 0x0B0B0B0B0B0B0B0B,
        "name": "many",
        "start": START + 300,
        "duration": 1,
        "tags": [("k%d" % (i % 35), LONG, i) for i in range(40)]
        + [("error", BOOL, False), ("otel.status_code", STRING, "Ok")],
        "unknown": True,
    },
]


def thrift_bytes(make, fn):
    buf = TTransport.TMemoryBuffer()
    fn(make(buf))
    return buf.getvalue()


def agent(p):
    """Agent.emitBatch, with an unknown args field before the batch."""
    p.writeMessageBegin("emitBatch", TMessageType.ONEWAY, 1)
    p.writeStructBegin("emitBatch_args")
    p.writeFieldBegin("x", TType.STRING, 2)
    p.writeString("ignored")
    p.writeFieldEnd()
    p.writeFieldBegin("batch", TType.STRUCT, 1)
    write_batch(p, PROCESS, SPANS)
    p.writeFieldEnd()
    p.writeFieldStop()
    p.writeStructEnd()
    p.writeMessageEnd()


def agent_call(p):
    p.writeMessageBegin("emitBatch", TMessageType.CALL, 9)
    p.writeStructBegin("emitBatch_args")
    p.writeFieldBegin("batch", TType.STRUCT, 1)
    write_batch(p, PROCESS, SPANS)
    p.writeFieldEnd()
    p.writeFieldStop()
    p.writeStructEnd()
    p.writeMessageEnd()


# ------------------------------------------------------------------ protobuf model
def proto_classes():
    f = descriptor_pb2.FileDescriptorProto()
    f.name = "jaeger_model_fixture.proto"
    f.package = "jaeger.api_v2"
    f.syntax = "proto3"
    f.dependency.extend(["google/protobuf/timestamp.proto", "google/protobuf/duration.proto"])
    T = descriptor_pb2.FieldDescriptorProto

    def msg(name, fields):
        m = f.message_type.add()
        m.name = name
        for fname, num, ftype, label, tname in fields:
            fd = m.field.add()
            fd.name, fd.number, fd.type, fd.label = fname, num, ftype, label
            if tname:
                fd.type_name = tname

    opt, rep = T.LABEL_OPTIONAL, T.LABEL_REPEATED
    msg("KeyValue", [
        ("key", 1, T.TYPE_STRING, opt, None),
        ("v_type", 2, T.TYPE_INT32, opt, None),  # enum ValueType, same wire form
        ("v_str", 3, T.TYPE_STRING, opt, None),
        ("v_bool", 4, T.TYPE_BOOL, opt, None),
        ("v_int64", 5, T.TYPE_INT64, opt, None),
        ("v_float64", 6, T.TYPE_DOUBLE, opt, None),
        ("v_binary", 7, T.TYPE_BYTES, opt, None),
    ])
    msg("Log", [
        ("timestamp", 1, T.TYPE_MESSAGE, opt, ".google.protobuf.Timestamp"),
        ("fields", 2, T.TYPE_MESSAGE, rep, ".jaeger.api_v2.KeyValue"),
    ])
    msg("SpanRef", [
        ("trace_id", 1, T.TYPE_BYTES, opt, None),
        ("span_id", 2, T.TYPE_BYTES, opt, None),
        ("ref_type", 3, T.TYPE_INT32, opt, None),
    ])
    msg("Process", [
        ("service_name", 1, T.TYPE_STRING, opt, None),
        ("tags", 2, T.TYPE_MESSAGE, rep, ".jaeger.api_v2.KeyValue"),
    ])
    msg("Span", [
        ("trace_id", 1, T.TYPE_BYTES, opt, None),
        ("span_id", 2, T.TYPE_BYTES, opt, None),
        ("operation_name", 3, T.TYPE_STRING, opt, None),
        ("references", 4, T.TYPE_MESSAGE, rep, ".jaeger.api_v2.SpanRef"),
        ("flags", 5, T.TYPE_UINT32, opt, None),
        ("start_time", 6, T.TYPE_MESSAGE, opt, ".google.protobuf.Timestamp"),
        ("duration", 7, T.TYPE_MESSAGE, opt, ".google.protobuf.Duration"),
        ("tags", 8, T.TYPE_MESSAGE, rep, ".jaeger.api_v2.KeyValue"),
        ("logs", 9, T.TYPE_MESSAGE, rep, ".jaeger.api_v2.Log"),
        ("process", 10, T.TYPE_MESSAGE, opt, ".jaeger.api_v2.Process"),
        ("process_id", 11, T.TYPE_STRING, opt, None),
        ("warnings", 12, T.TYPE_STRING, rep, None),
    ])
    msg("Batch", [
        ("spans", 1, T.TYPE_MESSAGE, rep, ".jaeger.api_v2.Span"),
        ("process", 2, T.TYPE_MESSAGE, opt, ".jaeger.api_v2.Process"),
    ])
    msg("PostSpansRequest", [("batch", 1, T.TYPE_MESSAGE, opt, ".jaeger.api_v2.Batch")])
    pool = descriptor_pool.Default()
    pool.Add(f)
    return {
        n: message_factory.GetMessageClass(pool.FindMessageTypeByName("jaeger.api_v2." + n))
        for n in ("PostSpansRequest", "Process", "KeyValue")
    }


def kv(cls, key, vtype, value):
    k = cls["KeyValue"](key=key, v_type=vtype)
    # model.proto ValueType: STRING=0, BOOL=1, INT64=2, FLOAT64=3, BINARY=4
    field = {0: "v_str", 1: "v_bool", 2: "v_int64", 3: "v_float64", 4: "v_binary"}[vtype]
    setattr(k, field, value)
    return k


def set_time(ts, micros):
    ts.seconds, ts.nanos = divmod(micros, 1_000_000)
    ts.nanos *= 1000


def post_spans():
    cls = proto_classes()
    req = cls["PostSpansRequest"]()
    b = req.batch
    b.process.service_name = "frontend"
    b.process.tags.extend([kv(cls, "hostname", 0, "node-1"), kv(cls, "pid", 2, 42)])

    def proc(service, tags):
        return cls["Process"](service_name=service, tags=[kv(cls, *t) for t in tags])

    def add(tid, sid, name, start, dur_us, tags=(), refs=(), logs=(), process=None, flags=0):
        s = b.spans.add(trace_id=tid, span_id=sid, operation_name=name, flags=flags)
        set_time(s.start_time, start)
        s.duration.seconds, rem = divmod(dur_us, 1_000_000)
        s.duration.nanos = rem * 1000
        s.tags.extend([kv(cls, *t) for t in tags])
        for rt, rtid, rsid in refs:
            s.references.add(trace_id=rtid, span_id=rsid, ref_type=rt)
        for ts, fields in logs:
            lg = s.logs.add()
            set_time(lg.timestamp, ts)
            lg.fields.extend([kv(cls, *t) for t in fields])
        if process is not None:
            s.process.CopyFrom(process)

    t128 = T128.to_bytes(16, "big")
    t64 = T64.to_bytes(8, "big")
    add(t128, bytes.fromhex("2122232425262728"), "GET /api", START, 2500,
        tags=[("span.kind", 0, "server"), ("otel.scope.name", 0, "lib"),
              ("otel.scope.version", 0, "2.0"), ("ratio", 3, 0.5), ("ok", 1, True),
              ("blob", 4, b"\x01\x02"), ("n", 2, -3), ("error", 1, True),
              ("http.status_message", 0, "Bad Gateway")],
        refs=[(0, t128, bytes.fromhex("3132333435363738")),
              (1, t128, bytes.fromhex("4142434445464748"))],
        logs=[(START + 7, [("event", 0, "retry"), ("attempt", 2, 2)])],
        flags=3)
    add(t64, bytes.fromhex("5152535455565758"), "backend op", START + 10, 1_500_000,
        refs=[(1, t64, bytes.fromhex("6162636465666768"))],
        process=proc("backend", [("jaeger.version", 0, "Java-1.8"), ("host.name", 0, "h")]))
    add(t128, bytes.fromhex("7172737475767778"), "same as batch", START + 20, 1,
        process=proc("frontend", [("hostname", 0, "node-1"), ("pid", 2, 42)]))
    add(t64, bytes.fromhex("8182838485868788"), "backend again", START + 30, 1,
        process=proc("backend", [("jaeger.version", 0, "Java-1.8"), ("host.name", 0, "h")]))
    add(t64, bytes.fromhex("9192939495969798"), "no service", START + 40, 1,
        process=proc("OTLPResourceNoServiceName", [("x", 0, "y")]))
    b.spans.add()  # blank: skipped
    return req.SerializeToString()


# ------------------------------------------------------------------ output
def rust_const(name, doc, data):
    hexs = data.hex()
    lines = [hexs[i:i + 96] for i in range(0, len(hexs), 96)]
    body = "\n".join('    "%s",' % line for line in lines)
    return "/// %s\npub(super) const %s: &str = concat!(\n%s\n);\n" % (doc, name, body)


def oracle(here, mode, data):
    """The collector's OTLP for `data`."""
    exe = os.path.join(here, "oracle", "oracle")
    out = subprocess.run([exe, mode], input=data.hex(), capture_output=True, text=True,
                         check=True).stdout.strip()
    if out.startswith("error"):
        raise SystemExit("oracle %s: %s" % (mode, out))
    return bytes.fromhex(out)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "src", "otlp", "jaeger", "fixtures.rs")
    binary = lambda t: TBinaryProtocol.TBinaryProtocol(t)  # noqa: E731
    old_binary = lambda t: TBinaryProtocol.TBinaryProtocol(t, strictWrite=False)  # noqa: E731
    compact = TCompactProtocol.TCompactProtocol
    inputs = [
        ("AGENT_COMPACT", "`emitBatch` ONEWAY, TCompactProtocol.", "agent-compact",
         thrift_bytes(compact, agent)),
        ("AGENT_BINARY", "`emitBatch` CALL, strict TBinaryProtocol.", "agent-binary",
         thrift_bytes(binary, agent_call)),
        ("AGENT_BINARY_OLD", "`emitBatch` ONEWAY, non-strict TBinaryProtocol.", "agent-binary",
         thrift_bytes(old_binary, agent)),
        ("BATCH_BINARY", "A bare `Batch`, TBinaryProtocol (collector HTTP).", "thrift-batch",
         thrift_bytes(binary, lambda p: write_batch(p, PROCESS, SPANS))),
        ("POST_SPANS", "A `PostSpansRequest`.", "proto", post_spans()),
    ]
    parts = [
        "//! Test inputs written by `gen_fixtures.py` with Apache Thrift's Python protocols\n"
        "//! and Google's protobuf runtime, and the OTLP that the collector's own translator\n"
        "//! (pkg/translator/jaeger v0.165.1, run by the Go `oracle` beside the script)\n"
        "//! makes of them. Do not edit: regenerate.\n"
    ]
    for name, doc, mode, data in inputs:
        parts.append(rust_const(name, doc, data))
    for name, mode in (("THRIFT", "thrift-batch"), ("PROTO", "proto")):
        data = next(d for n, _, m, d in inputs if m == mode)
        parts.append(rust_const("COLLECTOR_" + name, "The collector's OTLP for the %s input."
                                % name.lower(), oracle(here, mode, data)))
    for name, _, mode, data in inputs:  # every envelope gives the same batch
        if mode.startswith("agent"):
            assert oracle(here, mode, data) == oracle(here, "thrift-batch", inputs[3][3])
    with open(out, "w") as fh:
        fh.write("\n".join(parts))
    print("wrote", out)


if __name__ == "__main__":
    main()
