#!/usr/bin/env python3
"""Generates the binary Zipkin fixtures of src/otlp/zipkin/fixtures.rs.

Independent encoders: v1 thrift with thriftpy2 (zipkincore.thrift's structs, from
the IDL text below), v2 protobuf with the official protobuf runtime (zipkin.proto
compiled by grpcio-tools). Run from the crate root:

    python3 -m venv .venv && .venv/bin/pip install thriftpy2 protobuf grpcio-tools
    .venv/bin/python tests/gen_fixtures.py > src/otlp/zipkin/fixtures.rs
"""

import importlib
import ipaddress
import os
import struct
import subprocess
import sys
import tempfile

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.utils import serialize

# zipkincore.thrift (openzipkin/zipkin-api thrift/zipkinCore.thrift) field ids and
# types, plus test-only structs: `SpanWithExtras` adds fields the reader must skip
# and `SpanList` wraps the list the endpoint receives.
ZIPKINCORE = """
struct Endpoint {
  1: i32 ipv4
  2: i16 port
  3: string service_name
  4: optional binary ipv6
}
struct Annotation {
  1: i64 timestamp
  2: string value
  3: optional Endpoint host
}
enum AnnotationType { BOOL, BYTES, I16, I32, I64, DOUBLE, STRING }
struct BinaryAnnotation {
  1: string key,
  2: binary value,
  3: AnnotationType annotation_type,
  4: optional Endpoint host
}
struct Span {
  1: i64 trace_id
  3: string name,
  4: i64 id,
  5: optional i64 parent_id,
  6: list<Annotation> annotations,
  8: list<BinaryAnnotation> binary_annotations
  9: optional bool debug
  10: optional i64 timestamp,
  11: optional i64 duration
  12: optional i64 trace_id_high
}
struct Extra {
  1: list<list<i64>> nested
  2: string s
  3: map<i32, Endpoint> by_id
}
struct SpanWithExtras {
  1: i64 trace_id
  2: double unknown_double
  3: string name,
  4: i64 id,
  5: optional i64 parent_id,
  6: list<Annotation> annotations,
  7: map<string, list<i32>> unknown_map
  8: list<BinaryAnnotation> binary_annotations
  9: optional bool debug
  10: optional i64 timestamp,
  11: optional i64 duration
  12: optional i64 trace_id_high
  20: Extra unknown_struct
  21: set<string> unknown_set
  22: byte unknown_byte
  23: string name_of_wrong_type_is_not_here
}
struct SpanList { 1: list<Span> spans }
struct SpanWithExtrasList { 1: list<SpanWithExtras> spans }
"""

ZIPKIN_PROTO = """
syntax = "proto3";
package zipkin2.proto3;
message Span {
  bytes trace_id = 1;
  bytes parent_id = 2;
  bytes id = 3;
  enum Kind { SPAN_KIND_UNSPECIFIED = 0; CLIENT = 1; SERVER = 2; PRODUCER = 3; CONSUMER = 4; }
  Kind kind = 4;
  string name = 5;
  fixed64 timestamp = 6;
  uint64 duration = 7;
  Endpoint local_endpoint = 8;
  Endpoint remote_endpoint = 9;
  repeated Annotation annotations = 10;
  map<string, string> tags = 11;
  bool debug = 12;
  bool shared = 13;
}
message Endpoint {
  string service_name = 1;
  bytes ipv4 = 2;
  bytes ipv6 = 3;
  int32 port = 4;
}
message Annotation {
  fixed64 timestamp = 1;
  string value = 2;
}
message ListOfSpans {
  repeated Span spans = 1;
}
// Test only: one `tags` map entry, so entries can be appended in a fixed order.
message TagEntry {
  string key = 1;
  string value = 2;
}
"""

T = 1_700_000_000_000_000  # µs


def load_proto():
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "zipkin.proto"), "w") as f:
        f.write(ZIPKIN_PROTO)
    from grpc_tools import protoc

    rc = protoc.main(["protoc", f"-I{d}", f"--python_out={d}", os.path.join(d, "zipkin.proto")])
    assert rc == 0, rc
    sys.path.insert(0, d)
    return importlib.import_module("zipkin_pb2")


pb = load_proto()
tmp = tempfile.NamedTemporaryFile("w", suffix="_thrift.thrift", delete=False)
tmp.write(ZIPKINCORE)
tmp.close()
zc = thriftpy2.load(tmp.name, module_name="zipkincore_thrift")
AT = zc.AnnotationType


# ---------------------------------------------------------------- helpers


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field_bytes(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def with_tags(span_msg, tags):
    """The span's bytes followed by `tags` entries in the given order."""
    out = span_msg.SerializeToString()
    for k, v in tags:
        out += pb_field_bytes(11, pb.TagEntry(key=k, value=v).SerializeToString())
    return out


def list_of_spans(span_bytes):
    return b"".join(pb_field_bytes(1, s) for s in span_bytes)


def ip4(s):
    return ipaddress.IPv4Address(s).packed


def ip6(s):
    return ipaddress.IPv6Address(s).packed


def ip4_int(s):
    return struct.unpack(">i", ip4(s))[0]


def ep(service, ipv4=None, port=0, ipv6=None):
    return zc.Endpoint(
        service_name=service,
        ipv4=ip4_int(ipv4) if ipv4 else 0,
        port=struct.unpack(">h", struct.pack(">H", port))[0],
        ipv6=ip6(ipv6) if ipv6 else None,
    )


def s64(v):
    """An unsigned 64-bit id as thrift's signed i64."""
    return struct.unpack(">q", struct.pack(">Q", v))[0]


def ann(ts, value, host=None):
    return zc.Annotation(timestamp=ts, value=value, host=host)


def bann(key, value, kind, host=None):
    return zc.BinaryAnnotation(key=key, value=value, annotation_type=kind, host=host)


def thrift_list(spans, extras=False):
    wrapper = zc.SpanWithExtrasList if extras else zc.SpanList
    b = serialize(wrapper(spans=spans), TBinaryProtocolFactory())
    # Strip the wrapper's field header (type, id) and its STOP byte.
    assert b[0] == 15 and b[1:3] == b"\x00\x01" and b[-1] == 0
    return b[3:-1]


# ---------------------------------------------------------------- v2 protobuf golden

proto_golden = list_of_spans(
    [
        with_tags(
            pb.Span(
                trace_id=bytes.fromhex("5af7183fb1d4cf5f1122334455667788"),
                id=bytes.fromhex("6b221d5bc9e6496c"),
                parent_id=bytes.fromhex("7b221d5bc9e6496c"),
                kind=pb.Span.SERVER,
                name="get /api",
                timestamp=T,
                duration=2500,
                local_endpoint=pb.Endpoint(service_name="frontend", ipv4=ip4("10.0.0.1"), port=8080),
                remote_endpoint=pb.Endpoint(service_name="browser", ipv6=ip6("2001:db8::1"), port=443),
                annotations=[
                    pb.Annotation(timestamp=T + 1000, value="cache.miss"),
                    pb.Annotation(timestamp=T + 2000, value='retry|{"n":2,"why":"x"}|1'),
                ],
                debug=True,
                shared=True,
            ),
            [
                ("http.method", "GET"),
                ("host.name", "node-1"),
                ("otel.status_code", "ERROR"),
                ("error", "boom"),
                ("otel.scope.name", "lib"),
                ("otel.scope.version", "1.0"),
            ],
        )
        # An unknown varint field and an unknown length-delimited one.
        + varint(99 << 3 | 0) + varint(12345) + pb_field_bytes(100, b"\x01\x02\x03"),
        with_tags(
            pb.Span(
                trace_id=bytes.fromhex("5af7183fb1d4cf5f"),
                id=bytes.fromhex("7b221d5bc9e6496c"),
                parent_id=bytes.fromhex("6b221d5bc9e6496c"),
                kind=pb.Span.CLIENT,
                name="db",
                timestamp=T + 100,
                duration=100,
                local_endpoint=pb.Endpoint(service_name="frontend"),
                remote_endpoint=pb.Endpoint(service_name="postgres", ipv4=ip4("192.168.1.2"), port=5432),
            ),
            [("otel.scope.name", "lib"), ("db.system", "postgresql")],
        ),
        # A 3-byte span id: dropped by the validator, counted.
        pb.Span(
            trace_id=bytes.fromhex("5af7183fb1d4cf5f"),
            id=b"\x01\x02\x03",
            name="bad id",
            local_endpoint=pb.Endpoint(service_name="other"),
        ).SerializeToString(),
        # An unknown kind (9) with span.kind=internal; the parent equals the id; the
        # local endpoint comes in two parts that merge.
        with_tags(
            pb.Span(
                trace_id=bytes.fromhex("5af7183fb1d4cf5f"),
                id=bytes.fromhex("9b221d5bc9e6496c"),
                parent_id=bytes.fromhex("9b221d5bc9e6496c"),
                name="inner",
                local_endpoint=pb.Endpoint(service_name="frontend"),
            ),
            [("span.kind", "internal")],
        )
        + varint(4 << 3 | 0) + varint(9)
        + pb_field_bytes(8, pb.Endpoint(ipv6=ip6("::ffff:10.1.2.3"), port=7000).SerializeToString()),
    ]
)

# ---------------------------------------------------------------- v1 thrift golden

thrift_golden = thrift_list(
    [
        # A client span with a 128-bit trace id, times from its annotations.
        zc.SpanWithExtras(
            trace_id_high=s64(0x5AF7183FB1D4CF5F),
            trace_id=s64(0x1122334455667788),
            id=s64(0x6B221D5BC9E6496C),
            name="get /backend",
            unknown_double=2.5,
            annotations=[
                ann(T, "cs", ep("frontend", "10.0.0.1", 8080)),
                ann(T + 10, "ws", ep("frontend", "10.0.0.1", 8080)),
                ann(T + 20, "cache.miss", ep("frontend", "10.0.0.1", 8080)),
                ann(T + 30, ""),
                ann(T + 2500, "cr", ep("frontend", "10.0.0.1", 8080)),
            ],
            unknown_map={"a": [1, 2, 3], "b": []},
            binary_annotations=[
                bann("sa", b"\x01", AT.BOOL, ep("backend", "10.0.0.2", 9000)),
                bann("bool.t", b"\x01", AT.BOOL),
                bann("bool.f", b"\x00", AT.BOOL),
                bann("bytes", b"\x00\x01\xfe", AT.BYTES),
                bann("i16", struct.pack(">h", -2), AT.I16),
                bann("i32", struct.pack(">i", 70000), AT.I32),
                bann("i64", struct.pack(">q", -5), AT.I64),
                bann("double", struct.pack(">d", 1.5), AT.DOUBLE),
                bann("short", b"\x00\x01", AT.I32),
                bann("weird", b"x", 9),
                bann("http.path", b"/a", AT.STRING, ep("frontend")),
                bann("lc", b"gateway", AT.STRING),
                bann("http.path", b"/b", AT.STRING),
                bann("error", b"oops", AT.STRING),
            ],
            unknown_struct=zc.Extra(nested=[[1, 2], [3]], s="skip me", by_id={1: ep("x")}),
            unknown_set={"q"},
            unknown_byte=7,
        ),
        # A server span with a 64-bit trace id, its own timestamp and duration.
        zc.SpanWithExtras(
            trace_id=s64(0x5AF7183FB1D4CF5F),
            id=s64(0x7B221D5BC9E6496C),
            parent_id=s64(0x6B221D5BC9E6496C),
            name="serve",
            timestamp=T + 100,
            duration=2300,
            annotations=[
                ann(T + 100, "sr", ep("backend", "10.0.0.2", 9000)),
                ann(T + 2400, "ss", ep("backend", "10.0.0.2", 9000)),
            ],
            binary_annotations=[
                bann("ca", b"\x01", AT.BOOL, ep("frontend", ipv6="2001:db8::1", port=50000)),
                bann("http.status_code", struct.pack(">i", 503), AT.I32),
                bann("http.status_message", b"Unavailable", AT.STRING),
            ],
        ),
        # A local span named by its local component; census status.
        zc.SpanWithExtras(
            trace_id=s64(0x5AF7183FB1D4CF5F),
            id=s64(0x8B221D5BC9E6496C),
            parent_id=0,
            name="tick",
            timestamp=T + 200,
            duration=50,
            binary_annotations=[
                bann("lc", b"scheduler", AT.STRING),
                bann("census.status_code", struct.pack(">i", 0), AT.I32),
                bann("census.status_description", b"fine", AT.STRING),
            ],
        ),
        # A producer span: remote endpoint from `ma`, otel status.
        zc.SpanWithExtras(
            trace_id=s64(0x5AF7183FB1D4CF5F),
            id=s64(0x9B221D5BC9E6496C),
            name="send",
            annotations=[ann(T + 300, "ms", ep("writer"))],
            binary_annotations=[
                bann("ma", b"\x01", AT.BOOL, ep("kafka", "10.0.0.3", 9092)),
                bann("otel.status_code", struct.pack(">q", 2), AT.I64),
                bann("otel.status_description", b"bad", AT.STRING),
            ],
        ),
        # No trace id: dropped by the validator, counted.
        zc.SpanWithExtras(id=s64(0xAB221D5BC9E6496C), name="no trace"),
    ],
    extras=True,
)

# ---------------------------------------------------------------- cross-format span

cross_proto = list_of_spans(
    [
        with_tags(
            pb.Span(
                trace_id=bytes.fromhex("5af7183fb1d4cf5f"),
                id=bytes.fromhex("6b221d5bc9e6496c"),
                parent_id=bytes.fromhex("7b221d5bc9e6496c"),
                kind=pb.Span.CLIENT,
                name="get /x",
                timestamp=T,
                duration=1500,
                local_endpoint=pb.Endpoint(service_name="frontend"),
                remote_endpoint=pb.Endpoint(service_name="backend", ipv4=ip4("10.0.0.2"), port=9000),
                annotations=[pb.Annotation(timestamp=T + 500, value="cache.miss")],
            ),
            [("http.method", "GET"), ("error", "true")],
        )
    ]
)
cross_thrift = thrift_list(
    [
        zc.Span(
            trace_id=s64(0x5AF7183FB1D4CF5F),
            id=s64(0x6B221D5BC9E6496C),
            parent_id=s64(0x7B221D5BC9E6496C),
            name="get /x",
            timestamp=T,
            duration=1500,
            annotations=[
                ann(T, "cs", ep("frontend")),
                ann(T + 500, "cache.miss", ep("frontend")),
                ann(T + 1500, "cr", ep("frontend")),
            ],
            binary_annotations=[
                bann("http.method", b"GET", AT.STRING, ep("frontend")),
                bann("error", b"true", AT.STRING, ep("frontend")),
                bann("sa", b"\x01", AT.BOOL, ep("backend", "10.0.0.2", 9000)),
            ],
        )
    ]
)

# ---------------------------------------------------------------- typical span (timing)

TYPICAL_TAGS = [
    ("http.method", "GET"),
    ("http.route", "/api/v1/orders/{id}"),
    ("http.status_code", "200"),
    ("net.peer.name", "svc-cart"),
    ("user.id", "user-123"),
    ("db.system", "redis"),
    ("retry", "false"),
    ("payload.bytes", "12345"),
    ("service.name", "svc-frontend"),
    ("service.namespace", "shop"),
    ("k8s.pod.name", "svc-frontend-7d9f1"),
    ("host.name", "node-1"),
    ("telemetry.sdk.language", "python"),
    ("deployment.environment", "prod"),
    ("otel.scope.name", "bench"),
]
typical_proto = list_of_spans(
    [
        with_tags(
            pb.Span(
                trace_id=bytes.fromhex("5af7183fb1d4cf5f5af7183fb1d4cf5f"),
                id=bytes.fromhex("6b221d5bc9e6496c"),
                parent_id=bytes.fromhex("7b221d5bc9e6496c"),
                kind=pb.Span.SERVER,
                name="GET /api/v1/orders/{id}",
                timestamp=T,
                duration=2500,
                local_endpoint=pb.Endpoint(service_name="svc-frontend"),
            ),
            TYPICAL_TAGS,
        )
    ]
)
typical_thrift = thrift_list(
    [
        zc.Span(
            trace_id_high=s64(0x5AF7183FB1D4CF5F),
            trace_id=s64(0x5AF7183FB1D4CF5F),
            id=s64(0x6B221D5BC9E6496C),
            parent_id=s64(0x7B221D5BC9E6496C),
            name="GET /api/v1/orders/{id}",
            timestamp=T,
            duration=2500,
            annotations=[
                ann(T, "sr", ep("svc-frontend", "10.0.0.1", 8080)),
                ann(T + 2500, "ss", ep("svc-frontend", "10.0.0.1", 8080)),
            ],
            binary_annotations=[
                bann(k, v.encode(), AT.STRING, ep("svc-frontend", "10.0.0.1", 8080))
                for k, v in TYPICAL_TAGS
            ],
        )
    ]
)


def emit(name, doc, data):
    print(f"/// {doc}")
    print(f"pub(super) const {name}: &str = concat!(")
    h = data.hex()
    for i in range(0, len(h), 88):
        print(f'    "{h[i:i + 88]}",')
    print(");")
    print()


print("//! Binary fixtures generated by `tests/gen_fixtures.py` (thriftpy2 and the protobuf")
print("//! runtime as independent encoders); hex, decoded by [`hex`].")
print()
emit("V2_PROTO_GOLDEN", "v2 `ListOfSpans`: the golden spans of `v2_proto_golden`.", proto_golden)
emit("V1_THRIFT_GOLDEN", "v1 thrift span list: the golden spans of `v1_thrift_golden`.", thrift_golden)
emit("CROSS_V2_PROTO", "The cross-format span as v2 protobuf.", cross_proto)
emit("CROSS_V1_THRIFT", "The cross-format span as v1 thrift.", cross_thrift)
emit("TYPICAL_V2_PROTO", "One typical span (the timing probe's) as v2 protobuf.", typical_proto)
emit("TYPICAL_V1_THRIFT", "One typical span (the timing probe's) as v1 thrift.", typical_thrift)
print("/// A fixture's bytes.")
print("pub(super) fn hex(s: &str) -> Vec<u8> {")
print("    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()")
print("}")
