//! Golden tests per format, the cross-format test, error paths and hostile inputs.

use std::sync::Arc;

use proptest::prelude::*;

use super::fixtures::{self, hex};
use super::*;
use crate::model::Request;
use crate::otlp::scan;
use crate::otlp::view::{attrs_of, repeated, AnyValue, EventView, ScopeHead, SpanView};

const T: u64 = 1_700_000_000_000_000;
const NS: u64 = 1000;

/// One span of a translated request, read back through the validator's views.
#[derive(Debug)]
struct Got<'a> {
    resource: Vec<(&'a str, AnyValue<'a>)>,
    scope: (&'a str, &'a str),
    span: SpanView<'a>,
    attrs: Vec<(&'a str, AnyValue<'a>)>,
    events: Vec<(u64, &'a str)>,
}

fn read(req: &Request) -> Vec<Got<'_>> {
    let buf = req.bytes();
    req.spans
        .iter()
        .map(|s| {
            let span = SpanView::parse(s.msg.get(buf)).unwrap();
            let scope = ScopeHead::parse(req.scope_of(s).scope.get(buf)).unwrap();
            Got {
                resource: attrs_of(req.resource_of(s).resource.get(buf), 1)
                    .map(|kv| (kv.key, kv.value))
                    .collect(),
                scope: (scope.name, scope.version),
                attrs: attrs_of(span.msg, 9).map(|kv| (kv.key, kv.value)).collect(),
                events: repeated(span.msg, 11)
                    .map(|e| EventView::parse(e.unwrap()).unwrap())
                    .map(|e| (e.time_unix_nano, e.name))
                    .collect(),
                span,
            }
        })
        .collect()
}

fn request(otlp: Vec<u8>) -> Request {
    scan(Arc::from(otlp)).expect("the translation is a valid request")
}

fn id(s: &str) -> Vec<u8> {
    hex(s)
}

use AnyValue::{Bool, Double, Int, Str as S};

const V2_JSON_TWIN: &str = r#"[
  {"traceId": "5af7183fb1d4cf5f1122334455667788", "id": "6b221d5bc9e6496c",
   "parentId": "7b221d5bc9e6496c", "kind": "SERVER", "name": "get /api",
   "timestamp": 1700000000000000, "duration": 2500,
   "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1", "port": 8080},
   "remoteEndpoint": {"serviceName": "browser", "ipv6": "2001:db8::1", "port": 443},
   "annotations": [{"timestamp": 1700000000001000, "value": "cache.miss"},
                   {"timestamp": 1700000000002000, "value": "retry|{\"n\":2,\"why\":\"x\"}|1"}],
   "tags": {"http.method": "GET", "host.name": "node-1", "otel.status_code": "ERROR",
            "error": "boom", "otel.scope.name": "lib", "otel.scope.version": "1.0"},
   "debug": true, "shared": true},
  {"traceId": "5af7183fb1d4cf5f", "id": "7b221d5bc9e6496c", "parentId": "6b221d5bc9e6496c",
   "kind": "CLIENT", "name": "db", "timestamp": 1700000000000100, "duration": 100,
   "localEndpoint": {"serviceName": "frontend"},
   "remoteEndpoint": {"serviceName": "postgres", "ipv4": "192.168.1.2", "port": 5432},
   "tags": {"otel.scope.name": "lib", "db.system": "postgresql"}},
  {"traceId": "5af7183fb1d4cf5f", "id": "010203", "name": "bad id",
   "localEndpoint": {"serviceName": "other"}},
  {"traceId": "5af7183fb1d4cf5f", "id": "9b221d5bc9e6496c", "parentId": "9b221d5bc9e6496c",
   "kind": "NINE", "name": "inner",
   "localEndpoint": {"serviceName": "frontend", "ipv6": "10.1.2.3", "port": 7000},
   "tags": {"span.kind": "internal"}}
]"#;

#[test]
fn v2_proto_golden() {
    let otlp = zipkin_v2_proto_to_otlp(&hex(fixtures::V2_PROTO_GOLDEN)).unwrap();
    assert_eq!(otlp, zipkin_v2_json_to_otlp(V2_JSON_TWIN.as_bytes()).unwrap(), "same as JSON");
    let req = request(otlp);
    assert_eq!((req.rejected.invalid_trace_id, req.rejected.invalid_span_id), (0, 1));
    let got = read(&req);
    assert_eq!(got.len(), 3);
    assert_eq!(req.resources.len(), 2, "frontend, and the dropped span's `other`");

    let g = &got[0];
    assert_eq!(g.resource, [("service.name", S("frontend")), ("host.name", S("node-1"))]);
    assert_eq!(g.scope, ("lib", "1.0"));
    let s = &g.span;
    assert_eq!(s.trace_id, id("5af7183fb1d4cf5f1122334455667788"));
    assert_eq!(
        (s.span_id, s.parent_span_id),
        (&id("6b221d5bc9e6496c")[..], &id("7b221d5bc9e6496c")[..])
    );
    assert_eq!(
        (s.name, s.kind, s.start_unix_nano, s.end_unix_nano),
        ("get /api", 2, T * NS, (T + 2500) * NS)
    );
    assert_eq!((s.status_code, s.status_message), (2, "boom"));
    assert_eq!(
        g.attrs,
        [
            ("http.method", S("GET")),
            ("net.host.ip", S("10.0.0.1")),
            ("net.host.port", Int(8080)),
            ("peer.service", S("browser")),
            ("net.peer.ip", S("2001:db8::1")),
            ("net.peer.port", Int(443)),
        ]
    );
    assert_eq!(g.events, [((T + 1000) * NS, "cache.miss"), ((T + 2000) * NS, "retry")]);

    let g = &got[1];
    assert_eq!(g.span.trace_id, id("00000000000000005af7183fb1d4cf5f"), "left-padded");
    assert_eq!((g.span.kind, g.span.parent_span_id), (3, &id("6b221d5bc9e6496c")[..]));
    assert_eq!(g.scope, ("lib", ""));
    assert_eq!(
        g.attrs,
        [
            ("db.system", S("postgresql")),
            ("peer.service", S("postgres")),
            ("net.peer.ip", S("192.168.1.2")),
            ("net.peer.port", Int(5432)),
        ]
    );

    let g = &got[2];
    assert_eq!((g.span.name, g.span.kind), ("inner", 1), "unknown kind, span.kind=internal");
    assert!(g.span.parent_span_id.is_empty(), "a parent equal to the span id is left out");
    assert_eq!(g.attrs, [("net.host.ip", S("10.1.2.3")), ("net.host.port", Int(7000))]);
    assert_eq!(g.scope, ("", ""));
}

#[test]
fn v1_thrift_golden() {
    let req = request(zipkin_v1_thrift_to_otlp(&hex(fixtures::V1_THRIFT_GOLDEN)).unwrap());
    assert_eq!((req.rejected.invalid_trace_id, req.rejected.invalid_span_id), (1, 0));
    let got = read(&req);
    assert_eq!(got.len(), 4);

    // A client span: kind, local endpoint and times from cs/cr; remote from `sa`.
    let g = &got[0];
    assert_eq!(
        g.resource,
        [("service.name", S("frontend")), ("ipv4", S("10.0.0.1")), ("port", S("8080"))]
    );
    assert_eq!(g.scope, ("", ""));
    let s = &g.span;
    assert_eq!(s.trace_id, id("5af7183fb1d4cf5f1122334455667788"));
    assert_eq!((s.span_id, s.parent_span_id), (&id("6b221d5bc9e6496c")[..], &[][..]));
    assert_eq!((s.name, s.kind), ("get /backend", 3));
    assert_eq!((s.start_unix_nano, s.end_unix_nano), (T * NS, (T + 2500) * NS));
    assert_eq!((s.status_code, s.status_message), (2, ""), "error: ERROR, no message");
    assert_eq!(
        g.attrs,
        [
            ("bool.t", Bool(true)),
            ("bool.f", Bool(false)),
            ("bytes", S("AAH+")),
            ("i16", Int(65534)),
            ("i32", Int(70000)),
            ("i64", Int(-5)),
            ("double", Double(1.5)),
            ("short", S("<not enough bytes representing the number>")),
            ("weird", S("<unknown zipkin v1 binary annotation type (9)>")),
            ("http.path", S("/b")),
            ("component", S("gateway")),
            ("peer.service", S("backend")),
            ("net.peer.ip", S("10.0.0.2")),
            ("net.peer.port", Int(9000)),
        ]
    );
    assert_eq!(g.events, [((T + 10) * NS, "ws"), ((T + 20) * NS, "cache.miss")]);

    // A server span: its own timestamp and duration; remote from `ca`; http status.
    let g = &got[1];
    assert_eq!(
        g.resource,
        [("service.name", S("backend")), ("ipv4", S("10.0.0.2")), ("port", S("9000"))]
    );
    let s = &g.span;
    assert_eq!(s.trace_id, id("00000000000000005af7183fb1d4cf5f"));
    assert_eq!(s.parent_span_id, id("6b221d5bc9e6496c"));
    assert_eq!((s.kind, s.start_unix_nano, s.end_unix_nano), (2, (T + 100) * NS, (T + 2400) * NS));
    assert_eq!((s.status_code, s.status_message), (2, "Unavailable"));
    assert_eq!(
        g.attrs,
        [
            ("http.status_code", Int(503)),
            ("http.status_message", S("Unavailable")),
            ("peer.service", S("frontend")),
            ("net.peer.ip", S("2001:db8::1")),
            ("net.peer.port", Int(50000)),
        ]
    );
    assert!(g.events.is_empty());

    // A local span: named by `lc`; census status; a zero parent is left out.
    let g = &got[2];
    assert_eq!(g.resource, [("service.name", S("scheduler"))]);
    assert_eq!((g.span.kind, g.span.parent_span_id), (0, &[][..]));
    assert_eq!((g.span.status_code, g.span.status_message), (1, "fine"));
    assert_eq!(g.attrs, [("component", S("scheduler"))]);

    // A producer span: remote from `ma`; otel status; times from its one annotation.
    let g = &got[3];
    assert_eq!(g.resource, [("service.name", S("writer"))]);
    let s = &g.span;
    assert_eq!((s.kind, s.start_unix_nano, s.end_unix_nano), (4, (T + 300) * NS, (T + 300) * NS));
    assert_eq!((s.status_code, s.status_message), (2, "bad"));
    assert_eq!(
        g.attrs,
        [
            ("peer.service", S("kafka")),
            ("net.peer.ip", S("10.0.0.3")),
            ("net.peer.port", Int(9092))
        ]
    );
}

const V1_JSON_GOLDEN: &str = r#"[
  {"traceId": "5af7183fb1d4cf5f1122334455667788", "id": "6b221d5bc9e6496c",
   "name": "get \/backend", "debug": true,
   "annotations": [
     {"timestamp": 1700000000000000, "value": "cs",
      "endpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1", "port": 8080}},
     {"timestamp": 1700000000000010, "value": "ws", "endpoint": {"serviceName": "frontend"}},
     {"timestamp": 1700000000000020, "value": "cache.miss"},
     {"timestamp": 1700000000000030, "value": ""},
     null,
     {"timestamp": 1700000000002500, "value": "cr", "endpoint": {"serviceName": "frontend"}}],
   "binaryAnnotations": [
     {"key": "sa", "value": true,
      "endpoint": {"serviceName": "backend", "ipv4": "10.0.0.2", "port": 9000}},
     {"key": "bool.t", "value": true, "type": "BOOL"},
     {"key": "bool.f", "value": "false", "type": "BOOL"},
     {"key": "bytes", "value": "AAH+", "type": "BYTES"},
     {"key": "i16", "value": -2, "type": "I16"},
     {"key": "i32", "value": "70000", "type": "I32"},
     {"key": "i64", "value": -5, "type": "I64"},
     {"key": "double", "value": "1.5", "type": "DOUBLE"},
     {"key": "untyped.int", "value": 7},
     {"key": "untyped.double", "value": 2.5},
     {"key": "http.path", "value": "/a", "type": "STRING", "endpoint": {"serviceName": "frontend"}},
     {"key": "lc", "value": "gateway"},
     {"key": "http.path", "value": "/b"},
     {"key": "error", "value": "oops"}]},
  {"traceId": "5af7183fb1d4cf5f", "id": "7b221d5bc9e6496c", "parentId": "6b221d5bc9e6496c",
   "name": "serve", "timestamp": 1700000000000100, "duration": 2300,
   "annotations": [
     {"timestamp": 1700000000000100, "value": "sr",
      "endpoint": {"serviceName": "backend", "ipv4": "10.0.0.2", "port": 9000}},
     {"timestamp": 1700000000002400, "value": "ss",
      "endpoint": {"serviceName": "backend", "ipv4": "10.0.0.2", "port": 9000}}],
   "binaryAnnotations": [
     {"key": "ca", "value": true, "type": "BOOL",
      "endpoint": {"serviceName": "frontend", "ipv6": "2001:db8::1", "port": 50000}},
     {"key": "http.status_code", "value": "503"},
     {"key": "http.status_message", "value": "Unavailable"}]},
  {"traceId": "5af7183fb1d4cf5f", "id": "8b221d5bc9e6496c", "parentId": "0000000000000000",
   "name": "tick", "timestamp": 1700000000000200, "duration": 50,
   "binaryAnnotations": [
     {"key": "lc", "value": "scheduler"},
     {"key": "census.status_code", "value": "0"},
     {"key": "census.status_description", "value": "fine"}]},
  {"traceId": "5af7183fb1d4cf5f", "id": "9b221d5bc9e6496c", "name": "send",
   "annotations": [{"timestamp": 1700000000000300, "value": "ms",
                    "endpoint": {"serviceName": "writer"}}],
   "binaryAnnotations": [
     {"key": "ma", "value": true,
      "endpoint": {"serviceName": "kafka", "ipv4": "10.0.0.3", "port": 9092}},
     {"key": "otel.status_code", "value": "2"},
     {"key": "otel.status_description", "value": "bad"}]},
  {"traceId": "xyz", "id": "ab221d5bc9e6496c", "name": "bad trace id"},
  null,
  {"traceId": "5af7183fb1d4cf5f", "id": "bb221d5bc9e6496c", "name": "late",
   "binaryAnnotations": [{"key": "k", "value": "v", "endpoint": {"serviceName": "late-svc"}},
                         {"key": "k2", "value": "v2", "endpoint": {"serviceName": ""}}]}
]"#;

#[test]
fn v1_json_golden() {
    let req = request(zipkin_v1_json_to_otlp(V1_JSON_GOLDEN.as_bytes()).unwrap());
    assert_eq!((req.rejected.invalid_trace_id, req.rejected.invalid_span_id), (1, 0));
    let got = read(&req);
    assert_eq!(got.len(), 5);

    let g = &got[0];
    assert_eq!(
        g.resource,
        [("service.name", S("frontend")), ("ipv4", S("10.0.0.1")), ("port", S("8080"))]
    );
    let s = &g.span;
    assert_eq!(s.trace_id, id("5af7183fb1d4cf5f1122334455667788"));
    assert_eq!((s.name, s.kind), ("get /backend", 3));
    assert_eq!((s.start_unix_nano, s.end_unix_nano), (T * NS, (T + 2500) * NS));
    assert_eq!((s.status_code, s.status_message), (2, ""));
    assert_eq!(
        g.attrs,
        [
            ("bool.t", Bool(true)),
            ("bool.f", Bool(false)),
            ("bytes", S("AAH+")),
            ("i16", Int(-2)),
            ("i32", Int(70000)),
            ("i64", Int(-5)),
            ("double", Double(1.5)),
            ("untyped.int", Int(7)),
            ("untyped.double", Double(2.5)),
            ("http.path", S("/b")),
            ("component", S("gateway")),
            ("peer.service", S("backend")),
            ("net.peer.ip", S("10.0.0.2")),
            ("net.peer.port", Int(9000)),
        ]
    );
    assert_eq!(g.events, [((T + 10) * NS, "ws"), ((T + 20) * NS, "cache.miss")]);

    let g = &got[1];
    assert_eq!(
        g.resource,
        [("service.name", S("backend")), ("ipv4", S("10.0.0.2")), ("port", S("9000"))]
    );
    let s = &g.span;
    assert_eq!(s.trace_id, id("00000000000000005af7183fb1d4cf5f"));
    assert_eq!((s.kind, s.start_unix_nano, s.end_unix_nano), (2, (T + 100) * NS, (T + 2400) * NS));
    assert_eq!((s.status_code, s.status_message), (2, "Unavailable"));
    assert_eq!(
        g.attrs,
        [
            ("http.status_code", S("503")),
            ("http.status_message", S("Unavailable")),
            ("peer.service", S("frontend")),
            ("net.peer.ip", S("2001:db8::1")),
            ("net.peer.port", Int(50000)),
        ]
    );

    let g = &got[2];
    assert_eq!(g.resource, [("service.name", S("scheduler"))]);
    assert!(g.span.parent_span_id.is_empty(), "an all-zero parent is left out");
    assert_eq!((g.span.status_code, g.span.status_message), (1, "fine"));

    let g = &got[3];
    assert_eq!(g.resource, [("service.name", S("writer"))]);
    assert_eq!((g.span.kind, g.span.status_code, g.span.status_message), (4, 2, "bad"));
    assert_eq!(g.attrs[0], ("peer.service", S("kafka")));

    // No core annotation: the last named binary annotation host names the service.
    let g = &got[4];
    assert_eq!(g.resource, [("service.name", S("late-svc"))]);
    assert_eq!((g.span.kind, g.span.start_unix_nano, g.span.end_unix_nano), (0, 0, 0));
    assert_eq!(g.attrs, [("k", S("v")), ("k2", S("v2"))]);
}

#[test]
fn v1_status_precedence() {
    let status = |tags: &str| {
        let body = format!(
            r#"[{{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","binaryAnnotations":[{tags}]}}]"#
        );
        let req = request(zipkin_v1_json_to_otlp(body.as_bytes()).unwrap());
        let g = read(&req);
        let keys: Vec<String> = g[0].attrs.iter().map(|(k, _)| k.to_string()).collect();
        (g[0].span.status_code, g[0].span.status_message.to_string(), keys)
    };
    let kv = |k: &str, v: &str| format!(r#"{{"key":"{k}","value":"{v}"}}"#);
    let http = [kv("http.status_code", "404"), kv("http.status_message", "NotFound")].join(",");
    let http_keys = vec!["http.status_code".to_string(), "http.status_message".to_string()];
    assert_eq!(status(&http), (2, "NotFound".into(), http_keys.clone()));
    assert_eq!(status(&kv("http.status_code", "200")).0, 0);
    let otel = [kv("otel.status_code", "2"), kv("otel.status_description", "Forbidden")].join(",");
    assert_eq!(status(&format!("{http},{otel}")), (2, "Forbidden".into(), http_keys.clone()));
    let census = [kv("census.status_code", "10"), kv("census.status_description", "RPC")].join(",");
    assert_eq!(status(&format!("{census},{http},{otel}")), (2, "RPC".into(), http_keys));
    assert_eq!(status(&kv("otel.status_description", "x")), (0, String::new(), vec![]));
    assert_eq!(status(&kv("otel.status_code", "99999999999")).0, 0, "out of int32: no status");
    let error_msg = [kv("error", "x"), kv("otel.status_description", "why")].join(",");
    assert_eq!(status(&error_msg), (2, "why".into(), vec![]));
}

#[test]
fn v1_shared_span_takes_the_first_core_annotation() {
    // Client and server annotations in one span (v1's shared spans): the first core
    // annotation decides kind and local endpoint, times span all annotations.
    let body = r#"[{"traceId": "5af7183fb1d4cf5f", "id": "6b221d5bc9e6496c", "name": "rpc",
      "annotations": [
        {"timestamp": 1700000000000000, "value": "cs", "endpoint": {"serviceName": "frontend"}},
        {"timestamp": 1700000000000100, "value": "sr", "endpoint": {"serviceName": "backend"}},
        {"timestamp": 1700000000000900, "value": "ss", "endpoint": {"serviceName": "backend"}},
        {"timestamp": 1700000000000950, "value": "wr", "endpoint": {"serviceName": "frontend"}},
        {"timestamp": 1700000000001000, "value": "cr", "endpoint": {"serviceName": "frontend"}}],
      "binaryAnnotations": [
        {"key": "ca", "value": true, "endpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1"}},
        {"key": "sa", "value": true, "endpoint": {"serviceName": "backend", "ipv4": "10.0.0.2"}}]}]"#;
    let req = request(zipkin_v1_json_to_otlp(body.as_bytes()).unwrap());
    let g = &read(&req)[0];
    assert_eq!(g.resource, [("service.name", S("frontend"))]);
    assert_eq!(g.span.kind, 3);
    assert_eq!((g.span.start_unix_nano, g.span.end_unix_nano), (T * NS, (T + 1000) * NS));
    assert_eq!(g.attrs, [("peer.service", S("backend")), ("net.peer.ip", S("10.0.0.2"))]);
    assert_eq!(g.events, [((T + 950) * NS, "wr")]);
}

const CROSS_V2_JSON: &str = r#"[{"traceId": "5af7183fb1d4cf5f", "id": "6b221d5bc9e6496c",
  "parentId": "7b221d5bc9e6496c", "kind": "CLIENT", "name": "get /x",
  "timestamp": 1700000000000000, "duration": 1500,
  "localEndpoint": {"serviceName": "frontend"},
  "remoteEndpoint": {"serviceName": "backend", "ipv4": "10.0.0.2", "port": 9000},
  "annotations": [{"timestamp": 1700000000000500, "value": "cache.miss"}],
  "tags": {"http.method": "GET", "error": "true"}}]"#;

const CROSS_V1_JSON: &str = r#"[{"traceId": "5af7183fb1d4cf5f", "id": "6b221d5bc9e6496c",
  "parentId": "7b221d5bc9e6496c", "name": "get /x",
  "timestamp": 1700000000000000, "duration": 1500,
  "annotations": [
    {"timestamp": 1700000000000000, "value": "cs", "endpoint": {"serviceName": "frontend"}},
    {"timestamp": 1700000000000500, "value": "cache.miss", "endpoint": {"serviceName": "frontend"}},
    {"timestamp": 1700000000001500, "value": "cr", "endpoint": {"serviceName": "frontend"}}],
  "binaryAnnotations": [
    {"key": "http.method", "value": "GET", "endpoint": {"serviceName": "frontend"}},
    {"key": "error", "value": "true", "endpoint": {"serviceName": "frontend"}},
    {"key": "sa", "value": true,
     "endpoint": {"serviceName": "backend", "ipv4": "10.0.0.2", "port": 9000}}]}]"#;

#[test]
fn one_span_in_four_formats_translates_identically() {
    let v2_json = zipkin_v2_json_to_otlp(CROSS_V2_JSON.as_bytes()).unwrap();
    let v2_proto = zipkin_v2_proto_to_otlp(&hex(fixtures::CROSS_V2_PROTO)).unwrap();
    let v1_json = zipkin_v1_json_to_otlp(CROSS_V1_JSON.as_bytes()).unwrap();
    let v1_thrift = zipkin_v1_thrift_to_otlp(&hex(fixtures::CROSS_V1_THRIFT)).unwrap();
    assert_eq!(v2_json, v2_proto, "v2 protobuf");
    assert_eq!(v2_json, v1_json, "v1 JSON");
    assert_eq!(v2_json, v1_thrift, "v1 thrift");
    let req = request(v2_json);
    let g = &read(&req)[0];
    assert_eq!(g.resource, [("service.name", S("frontend"))]);
    assert_eq!((g.span.kind, g.span.status_code), (3, 2));
    assert_eq!((g.span.start_unix_nano, g.span.end_unix_nano), (T * NS, (T + 1500) * NS));
    assert_eq!(
        g.attrs,
        [
            ("http.method", S("GET")),
            ("peer.service", S("backend")),
            ("net.peer.ip", S("10.0.0.2")),
            ("net.peer.port", Int(9000)),
        ]
    );
    assert_eq!(g.events, [((T + 500) * NS, "cache.miss")]);
}

#[test]
fn typical_span_is_the_same_in_both_v1_formats() {
    let (thrift, json) = (typical_v1_thrift(3), typical_v1_json(3));
    assert_eq!(zipkin_v1_thrift_to_otlp(&thrift), zipkin_v1_json_to_otlp(json.as_bytes()));
    let req = request(zipkin_v1_json_to_otlp(json.as_bytes()).unwrap());
    assert_eq!((req.spans.len(), req.resources.len()), (3, 1));
}

#[test]
fn v1_json_errors_say_where() {
    for (body, want) in [
        (r#"{"a": 1}"#, "invalid type: map, expected a sequence"),
        ("[5]", "span 0: invalid type: integer `5`, expected a Zipkin v1 span object"),
        (
            r#"[{}, {"binaryAnnotations": [{"key": "a", "value": "1"},
                {"key": "b", "value": "x", "type": "FOO"}]}]"#,
            r#"span 1: binaryAnnotations[1].type: unknown annotation type "FOO""#,
        ),
        (
            r#"[{"binaryAnnotations": [{"key": "a", "value": "x", "type": "I64"}]}]"#,
            r#"span 0: binaryAnnotations[0].value: "x" is not a valid I64 value"#,
        ),
        (
            r#"[{"binaryAnnotations": [{"key": "a", "value": 70000, "type": "I16"}]}]"#,
            "span 0: binaryAnnotations[0].value: 70000 is not a valid I16 value",
        ),
        (
            r#"[{"binaryAnnotations": [{"key": "a", "value": 1, "type": "STRING"}]}]"#,
            "span 0: binaryAnnotations[0].value: 1 is not a valid STRING value",
        ),
        (
            r#"[{"binaryAnnotations": [{"key": "a", "value": [1]}]}]"#,
            "span 0: binaryAnnotations[0].value: invalid type: sequence, expected a string, number or boolean",
        ),
        (r#"[{"timestamp": "x"}]"#, "span 0: timestamp: invalid type: string"),
        (r#"[{"timestamp": 1.5}]"#, "span 0: timestamp: invalid type: floating point"),
        (
            r#"[{"annotations": [{"value": 5}]}]"#,
            "span 0: annotations[0].value: invalid type: integer `5`, expected a string",
        ),
        (r#"[{"annotations": [{"endpoint": {"port": 70000}}]}]"#, "span 0: annotations[0].endpoint.port"),
        ("[{", "EOF"),
        ("[] x", "trailing characters"),
        (
            &format!(r#"[{{"annotations": [{}{}]}}]"#, "[".repeat(5000), "]".repeat(5000)),
            "span 0: annotations[0][0]: invalid type: sequence, expected i64",
        ),
        ("[\"\u{fffd}\"]", "span 0: invalid type: string"),
    ] {
        let e = zipkin_v1_json_to_otlp(body.as_bytes()).unwrap_err();
        assert!(e.contains(want), "{body}: {e}");
    }
    assert!(zipkin_v1_json_to_otlp(b"[\"\xff\"]").unwrap_err().contains("invalid unicode"));
    // Unknown fields are skipped without recursion, however deep.
    let deep = format!(r#"[{{"x": {}{}}}]"#, "[".repeat(100_000), "]".repeat(100_000));
    assert!(zipkin_v1_json_to_otlp(deep.as_bytes()).is_ok());
    assert!(zipkin_v1_json_to_otlp(b"[]").unwrap().is_empty());
}

/// A TBinaryProtocol writer for hand-made hostile inputs.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn list(mut self, elem: u8, n: i32) -> W {
        self.0.push(elem);
        self.0.extend(n.to_be_bytes());
        self
    }
    fn field(mut self, ty: u8, id: i16) -> W {
        self.0.push(ty);
        self.0.extend(id.to_be_bytes());
        self
    }
    fn i64(mut self, v: i64) -> W {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i32(mut self, v: i32) -> W {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn bytes(mut self, b: &[u8]) -> W {
        self.0.extend((b.len() as i32).to_be_bytes());
        self.0.extend(b);
        self
    }
    fn raw(mut self, b: &[u8]) -> W {
        self.0.extend(b);
        self
    }
    fn stop(self) -> W {
        self.raw(&[0])
    }
}

#[test]
fn v1_thrift_errors_say_where() {
    let span = || W::default().list(12, 1).field(10, 1).i64(1).field(10, 4).i64(2);
    let deep = (0..100).fold(span().field(15, 7), |w, _| w.list(15, 1)).list(8, 0);
    let ok = span().field(11, 3).bytes(b"name").stop();
    assert_eq!(zipkin_v1_thrift_to_otlp(&ok.0).map(|o| o.is_empty()), Ok(false));
    for (body, want) in [
        (W::default(), "unexpected end of input at byte 0"),
        (W::default().list(8, 1), "list of thrift type 8, not of structs at byte 1"),
        (W::default().list(12, i32::MAX), "2147483647 elements declared, 0 bytes left at byte 5"),
        (W::default().list(12, -1), "negative size -1 at byte 5"),
        (span().field(11, 3).bytes(&[0xff]), "span 0: name: not valid UTF-8 at byte 30"),
        (span().field(11, 3).i32(1000).raw(b"ab"), "span 0: name: 1000 elements declared"),
        (span().field(11, 3).bytes(b"x"), "span 0: unexpected end of input at byte 35"),
        (deep, "span 0: field 7: values nested deeper than 64"),
        (span().field(99, 20), "span 0: field 20: invalid thrift type 99"),
        (
            span()
                .field(15, 8)
                .list(12, 2)
                .stop()
                .field(11, 2)
                .bytes(&[0xc3])
                .field(8, 3)
                .i32(6)
                .stop(),
            "span 0: binary_annotations[1].value: not valid UTF-8 at byte 39",
        ),
        (
            span().field(15, 6).list(12, 1).field(12, 3).field(11, 3).bytes(b"s"),
            "span 0: annotations[0].host: unexpected end of input",
        ),
    ] {
        let e = zipkin_v1_thrift_to_otlp(&body.0).unwrap_err();
        assert!(e.contains(want), "{e}");
    }
    // Bytes after the declared spans are ignored, as the collector ignores them.
    let trailing = W::default().list(12, 0).raw(b"junk");
    assert_eq!(zipkin_v1_thrift_to_otlp(&trailing.0), Ok(Vec::new()));
}

#[test]
fn v2_proto_errors_say_where() {
    use crate::pb::{put_bytes_field, put_message, put_varint_field};
    let body = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut out = Vec::new();
        put_message(&mut out, 1, |s| put_bytes_field(s, 5, b"ok"));
        put_message(&mut out, 1, f);
        out
    };
    let mut truncated = body(&|s| put_bytes_field(s, 5, b"name"));
    truncated.pop();
    for (input, want) in [
        (truncated, "unexpected end of message"),
        (body(&|s| put_bytes_field(s, 5, &[0xff])), "span 1: name: not valid UTF-8"),
        (
            body(&|s| put_message(s, 11, |e| put_bytes_field(e, 1, &[0xc0]))),
            "span 1: tags[0].key: not valid UTF-8",
        ),
        (
            body(&|s| put_message(s, 9, |e| put_bytes_field(e, 1, &[0xc0]))),
            "span 1: remote_endpoint.service_name: not valid UTF-8",
        ),
        (
            body(&|s| put_message(s, 10, |a| a.extend([0x0a, 0x05, 1]))),
            "span 1: annotations[0]: unexpected end of message",
        ),
        (body(&|s| s.push(0x0f)), "span 1: invalid wire type 7"),
        (vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], "unexpected end of message"),
    ] {
        let e = zipkin_v2_proto_to_otlp(&input).unwrap_err();
        assert!(e.contains(want), "{e}");
    }
    // Unknown fields, and known ones of another wire type, are skipped.
    let odd = body(&|s| {
        put_varint_field(s, 5, 7);
        put_varint_field(s, 1000, 1);
        put_bytes_field(s, 3, &[1; 8]);
        put_bytes_field(s, 1, &[2; 16]);
    });
    let req = request(zipkin_v2_proto_to_otlp(&odd).unwrap());
    assert_eq!(req.spans.len(), 1, "the span without ids is dropped");
    assert_eq!(req.rejected.invalid_trace_id, 1);
    assert!(zipkin_v2_proto_to_otlp(&[]).unwrap().is_empty());
}

#[test]
fn ip_strings_match_go() {
    let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    assert_eq!(ip_string(&[]), None);
    assert_eq!(ip_string(&[10, 0, 0, 1]).unwrap(), "10.0.0.1");
    assert_eq!(ip_string(&[1, 2, 3]).unwrap(), "?010203");
    assert_eq!(ip_string(&v6("::ffff:1.2.3.4")).unwrap(), "1.2.3.4");
    for (addr, want) in [
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:db8::1", "2001:db8::1"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
        ("0:0:1:0:0:1:0:0", "::1:0:0:1:0:0"),
        ("fe80::ab:cd00:0:1", "fe80::ab:cd00:0:1"),
    ] {
        assert_eq!(ip_string(&v6(addr)).unwrap(), want);
    }
}

#[test]
fn many_groups_keep_first_seen_order() {
    let spans: Vec<String> = (0..100)
        .map(|i| {
            format!(
                r#"{{"traceId":"5af7183fb1d4cf5f","id":"{:016x}","localEndpoint":{{"serviceName":"s{}"}},
                   "tags":{{"otel.scope.name":"lib{}","host.name":"h{}"}}}}"#,
                i + 1,
                i % 40,
                i % 25,
                i % 30
            )
        })
        .collect();
    let req = request(zipkin_v2_json_to_otlp(format!("[{}]", spans.join(",")).as_bytes()).unwrap());
    assert_eq!((req.spans.len(), req.resources.len()), (100, 40));
    // Resources in first-seen order; each with its members in order, one scope apiece.
    let want: Vec<(String, String, String)> = (0..40)
        .flat_map(|k| (k..100).step_by(40))
        .map(|i| (format!("s{}", i % 40), format!("h{}", i % 40 % 30), format!("lib{}", i % 25)))
        .collect();
    let got: Vec<(String, String, String)> = read(&req)
        .iter()
        .map(|g| match g.resource[..] {
            [("service.name", S(svc)), ("host.name", S(host))] => {
                (svc.to_string(), host.to_string(), g.scope.0.to_string())
            }
            _ => panic!("{:?}", g.resource),
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(req.scopes.len(), 100);
}

/// `n` copies of the typical span as v1 thrift.
fn typical_v1_thrift(n: usize) -> Vec<u8> {
    let one = &hex(fixtures::TYPICAL_V1_THRIFT)[5..];
    let mut body = W::default().list(12, n as i32).0;
    for _ in 0..n {
        body.extend_from_slice(one);
    }
    body
}

/// `n` copies of the typical span as v1 JSON.
fn typical_v1_json(n: usize) -> String {
    let ep = r#"{"serviceName":"svc-frontend","ipv4":"10.0.0.1","port":8080}"#;
    let tags = [
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
    ];
    let binary: Vec<String> = tags
        .iter()
        .map(|(k, v)| format!(r#"{{"key":"{k}","value":"{v}","endpoint":{ep}}}"#))
        .collect();
    let one = format!(
        r#"{{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","parentId":"7b221d5bc9e6496c","name":"GET /api/v1/orders/{{id}}","timestamp":1700000000000000,"duration":2500,"annotations":[{{"timestamp":1700000000000000,"value":"sr","endpoint":{ep}}},{{"timestamp":1700000000002500,"value":"ss","endpoint":{ep}}}],"binaryAnnotations":[{}]}}"#,
        binary.join(",")
    );
    format!("[{}]", vec![one; n].join(","))
}

/// `n` copies of the typical span as v2 protobuf.
fn typical_v2_proto(n: usize) -> Vec<u8> {
    hex(fixtures::TYPICAL_V2_PROTO).repeat(n)
}

type Translator = fn(&[u8]) -> Result<Vec<u8>, String>;

const TRANSLATORS: [(&str, Translator); 4] = [
    ("v2 JSON", zipkin_v2_json_to_otlp),
    ("v2 protobuf", zipkin_v2_proto_to_otlp),
    ("v1 JSON", zipkin_v1_json_to_otlp),
    ("v1 thrift", zipkin_v1_thrift_to_otlp),
];

/// Valid inputs of each format (index as in [`TRANSLATORS`]).
fn valid_inputs() -> [Vec<Vec<u8>>; 4] {
    [
        vec![V2_JSON_TWIN.into(), CROSS_V2_JSON.into()],
        vec![hex(fixtures::V2_PROTO_GOLDEN), hex(fixtures::CROSS_V2_PROTO), typical_v2_proto(2)],
        vec![V1_JSON_GOLDEN.into(), CROSS_V1_JSON.into(), typical_v1_json(2).into_bytes()],
        vec![hex(fixtures::V1_THRIFT_GOLDEN), hex(fixtures::CROSS_V1_THRIFT), typical_v1_thrift(2)],
    ]
}

/// No panic; any translation the function accepts is a request the validator accepts.
fn check(format: usize, input: &[u8]) {
    if let Ok(otlp) = TRANSLATORS[format].1(input) {
        if let Err(e) = scan(Arc::from(otlp)) {
            panic!("{}: output refused: {e}", TRANSLATORS[format].0);
        }
    }
}

#[test]
fn every_truncation_is_handled() {
    for (format, inputs) in valid_inputs().iter().enumerate() {
        for input in inputs {
            assert!(TRANSLATORS[format].1(input).is_ok(), "{}", TRANSLATORS[format].0);
            for cut in 0..input.len() {
                check(format, &input[..cut]);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for format in 0..4 {
            check(format, &bytes);
        }
    }

    #[test]
    fn bit_flips_never_panic(
        format in 0..4usize,
        pick in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0..8u8), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let inputs = valid_inputs();
        let mut input = pick.get(&inputs[format]).clone();
        for (at, bit) in flips {
            let i = at.index(input.len());
            input[i] ^= 1 << bit;
        }
        if truncate {
            input.truncate(cut.index(input.len() + 1));
        }
        check(format, &input);
    }

    #[test]
    fn ip_strings_match_std_for_unmapped_v6(b in any::<[u8; 16]>()) {
        prop_assume!(!(b[..10] == [0; 10] && b[10..12] == [0xff, 0xff]));
        prop_assert_eq!(ip_string(&b).unwrap(), std::net::Ipv6Addr::from(b).to_string());
    }
}

/// `cargo test --release zipkin_speed -- --ignored --nocapture`: ns per span of each
/// format on 1,000 typical spans.
#[test]
#[ignore]
fn zipkin_speed_all_formats() {
    let one = r#"{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","parentId":"7b221d5bc9e6496c","name":"GET /api/v1/orders/{id}","kind":"SERVER","timestamp":1700000000000000,"duration":2500,"localEndpoint":{"serviceName":"svc-frontend"},"tags":{"http.method":"GET","http.route":"/api/v1/orders/{id}","http.status_code":"200","net.peer.name":"svc-cart","user.id":"user-123","db.system":"redis","retry":"false","payload.bytes":"12345","service.name":"svc-frontend","service.namespace":"shop","k8s.pod.name":"svc-frontend-7d9f1","host.name":"node-1","telemetry.sdk.language":"python","deployment.environment":"prod","otel.scope.name":"bench"}}"#;
    let bodies = [
        format!("[{}]", vec![one; 1000].join(",")).into_bytes(),
        typical_v2_proto(1000),
        typical_v1_json(1000).into_bytes(),
        typical_v1_thrift(1000),
    ];
    assert_eq!(TRANSLATORS[0].1(&bodies[0]), TRANSLATORS[1].1(&bodies[1]));
    for ((name, f), body) in TRANSLATORS.iter().zip(&bodies) {
        let mut runs: Vec<_> = (0..7)
            .map(|_| {
                let t = std::time::Instant::now();
                for _ in 0..100 {
                    std::hint::black_box(f(body).unwrap());
                }
                t.elapsed() / 100_000
            })
            .collect();
        runs.sort();
        println!("{name}: {:?}/span (median of 7), {} bytes/span", runs[3], body.len() / 1000);
    }
}
