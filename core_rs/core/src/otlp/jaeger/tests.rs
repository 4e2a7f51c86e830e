//! Golden tests on independently encoded inputs (`fixtures.rs`), hand-built
//! edge cases, and property tests on hostile bytes.

use super::fixtures::*;
use super::*;
use crate::pb::{put_bytes_field, put_fixed64_field, put_message, put_varint_field, Reader};

// ------------------------------------------------------------ a tiny OTLP reader

#[derive(Debug, Clone, PartialEq)]
enum Any {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
}

type Attrs = Vec<(String, Any)>;

#[derive(Debug, Default, PartialEq)]
struct OSpan {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    trace_state: String,
    parent: Vec<u8>,
    name: String,
    kind: u64,
    start: u64,
    end: u64,
    attrs: Attrs,
    /// (time, name, attributes)
    events: Vec<(u64, String, Attrs)>,
    /// (trace id, span id, attributes)
    links: Vec<(Vec<u8>, Vec<u8>, Attrs)>,
    status: Option<(u64, String)>,
    flags: u32,
}

#[derive(Debug, Default, PartialEq)]
struct OScope {
    scope: Option<(String, String)>,
    spans: Vec<OSpan>,
}

#[derive(Debug, Default, PartialEq)]
struct OResource {
    attrs: Attrs,
    scopes: Vec<OScope>,
}

fn fields(b: &[u8]) -> Vec<crate::pb::Field<'_>> {
    let mut r = Reader::new(b);
    let mut v = Vec::new();
    while let Some(f) = r.next_field().unwrap() {
        v.push(f);
    }
    v
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn any_value(b: &[u8]) -> Any {
    let f = fields(b);
    assert_eq!(f.len(), 1, "AnyValue holds one value");
    let f = f[0];
    match f.number {
        1 => Any::Str(text(f.as_bytes().unwrap())),
        2 => Any::Bool(f.as_varint().unwrap() != 0),
        3 => Any::Int(f.as_varint().unwrap() as i64),
        4 => Any::Double(f64::from_bits(f.as_fixed64().unwrap())),
        7 => Any::Bytes(f.as_bytes().unwrap().to_vec()),
        n => panic!("AnyValue field {n}"),
    }
}

fn key_value(b: &[u8]) -> (String, Any) {
    let (mut k, mut v) = (String::new(), None);
    for f in fields(b) {
        match f.number {
            1 => k = text(f.as_bytes().unwrap()),
            2 => v = Some(any_value(f.as_bytes().unwrap())),
            n => panic!("KeyValue field {n}"),
        }
    }
    (k, v.expect("KeyValue.value"))
}

fn span(b: &[u8]) -> OSpan {
    let mut s = OSpan::default();
    for f in fields(b) {
        match f.number {
            1 => s.trace_id = f.as_bytes().unwrap().to_vec(),
            2 => s.span_id = f.as_bytes().unwrap().to_vec(),
            3 => s.trace_state = text(f.as_bytes().unwrap()),
            4 => s.parent = f.as_bytes().unwrap().to_vec(),
            5 => s.name = text(f.as_bytes().unwrap()),
            6 => s.kind = f.as_varint().unwrap(),
            7 => s.start = f.as_fixed64().unwrap(),
            8 => s.end = f.as_fixed64().unwrap(),
            9 => s.attrs.push(key_value(f.as_bytes().unwrap())),
            11 => {
                let mut e = (0, String::new(), Vec::new());
                for g in fields(f.as_bytes().unwrap()) {
                    match g.number {
                        1 => e.0 = g.as_fixed64().unwrap(),
                        2 => e.1 = text(g.as_bytes().unwrap()),
                        3 => e.2.push(key_value(g.as_bytes().unwrap())),
                        n => panic!("Event field {n}"),
                    }
                }
                s.events.push(e);
            }
            13 => {
                let mut l = (Vec::new(), Vec::new(), Vec::new());
                for g in fields(f.as_bytes().unwrap()) {
                    match g.number {
                        1 => l.0 = g.as_bytes().unwrap().to_vec(),
                        2 => l.1 = g.as_bytes().unwrap().to_vec(),
                        4 => l.2.push(key_value(g.as_bytes().unwrap())),
                        n => panic!("Link field {n}"),
                    }
                }
                s.links.push(l);
            }
            15 => {
                let mut st = (0, String::new());
                for g in fields(f.as_bytes().unwrap()) {
                    match g.number {
                        2 => st.1 = text(g.as_bytes().unwrap()),
                        3 => st.0 = g.as_varint().unwrap(),
                        n => panic!("Status field {n}"),
                    }
                }
                s.status = Some(st);
            }
            16 => s.flags = f.as_fixed32().unwrap(),
            n => panic!("Span field {n}"),
        }
    }
    s
}

/// Decodes an `ExportTraceServiceRequest`, panicking on anything unexpected.
fn decode(b: &[u8]) -> Vec<OResource> {
    let mut out = Vec::new();
    for rs in fields(b) {
        assert_eq!(rs.number, 1);
        let mut r = OResource::default();
        for f in fields(rs.as_bytes().unwrap()) {
            match f.number {
                1 => {
                    for a in fields(f.as_bytes().unwrap()) {
                        assert_eq!(a.number, 1);
                        r.attrs.push(key_value(a.as_bytes().unwrap()));
                    }
                }
                2 => {
                    let mut sc = OScope::default();
                    for g in fields(f.as_bytes().unwrap()) {
                        match g.number {
                            1 => {
                                let mut nv = (String::new(), String::new());
                                for h in fields(g.as_bytes().unwrap()) {
                                    match h.number {
                                        1 => nv.0 = text(h.as_bytes().unwrap()),
                                        2 => nv.1 = text(h.as_bytes().unwrap()),
                                        n => panic!("InstrumentationScope field {n}"),
                                    }
                                }
                                sc.scope = Some(nv);
                            }
                            2 => sc.spans.push(span(g.as_bytes().unwrap())),
                            n => panic!("ScopeSpans field {n}"),
                        }
                    }
                    r.scopes.push(sc);
                }
                n => panic!("ResourceSpans field {n}"),
            }
        }
        out.push(r);
    }
    out
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn s(v: &str) -> Any {
    Any::Str(v.to_string())
}

fn attrs(list: &[(&str, Any)]) -> Attrs {
    list.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

const T128: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18];
const T64: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0x5a, 0xf7, 0x18, 0x3f, 0xb1, 0xd4, 0xcf, 0x5f];
const START_NS: u64 = 1_700_000_000_000_000_000;

// ------------------------------------------------------------ Thrift golden tests

/// `decode`, with what differs only in encoding smoothed out: pdata writes empty
/// scopes and statuses, omits all-zero ids, and orders protobuf resources by a Go
/// map's iteration.
fn normalized(b: &[u8]) -> Vec<OResource> {
    let mut res = decode(b);
    for r in &mut res {
        r.scopes.retain(|sc| !sc.spans.is_empty());
        for sc in &mut r.scopes {
            if sc.scope == Some((String::new(), String::new())) {
                sc.scope = None;
            }
            for sp in &mut sc.spans {
                if sp.status == Some((0, String::new())) {
                    sp.status = None;
                }
                let zero = |id: &mut Vec<u8>| {
                    if id.iter().all(|&b| b == 0) {
                        id.clear();
                    }
                };
                zero(&mut sp.trace_id);
                zero(&mut sp.span_id);
                for l in &mut sp.links {
                    zero(&mut l.0);
                    zero(&mut l.1);
                }
            }
        }
    }
    res.sort_by_cached_key(|r| format!("{r:?}"));
    res
}

/// The batch of `fixtures.rs` as the collector translates it.
fn check_thrift_batch(out: &[u8]) {
    assert_eq!(normalized(out), normalized(&hex(COLLECTOR_THRIFT)), "same as the collector");
    let res = decode(out);
    assert_eq!(res.len(), 1, "one ResourceSpans per Thrift batch");
    let r = &res[0];
    // hostname is swap-removed by host.name, jaeger.version by the exporter version.
    assert_eq!(
        r.attrs,
        attrs(&[
            ("service.name", s("frontend")),
            ("host.name", s("node-1")),
            ("opencensus.exporterversion", s("Jaeger-Go-2.30.0")),
            ("ip", s("10.0.0.1")),
            ("pid", Any::Int(42)),
        ])
    );
    assert_eq!(r.scopes.len(), 1, "Thrift spans share one scope-less ScopeSpans");
    assert_eq!(r.scopes[0].scope, None);
    let spans = &r.scopes[0].spans;
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["GET /api", "db", "call", "many"], "the blank span is skipped");

    let s0 = &spans[0];
    assert_eq!(s0.trace_id, T128);
    assert_eq!(s0.span_id, hex("2122232425262728"));
    assert_eq!(s0.parent, hex("3132333435363738"), "first CHILD_OF ref in the trace");
    assert_eq!((s0.kind, s0.flags), (2, 1));
    assert_eq!((s0.start, s0.end), (START_NS, START_NS + 2_500_000));
    assert_eq!(s0.trace_state, "", "Thrift spans keep w3c.tracestate as a tag");
    assert_eq!(s0.status, Some((2, "boom".into())), "error=true wins over the HTTP code");
    assert_eq!(
        s0.attrs,
        attrs(&[
            ("http.method", s("GET")),
            ("ratio", Any::Double(0.25)),
            ("cache.hit", Any::Bool(true)),
            ("http.response.status_code", Any::Int(503)),
            ("blob", Any::Bytes(vec![0, 0xff, 0x10])),
            ("neg", Any::Int(-5)),
            ("dup", s("b")),
            ("otel.library.version", s("1.0")),
            ("w3c.tracestate", s("k=v")),
            ("otel.library.name", s("lib")),
        ]),
        "consumed tags swap-removed; a repeated key keeps its place and last value"
    );
    assert_eq!(
        s0.events,
        vec![
            (START_NS + 1_000_000, "cache.miss".into(), attrs(&[("key", s("user:1"))])),
            (START_NS + 2_000_000, String::new(), attrs(&[("n", Any::Int(2))])),
        ]
    );
    let mut other = [0u8; 16];
    other[13..].copy_from_slice(&[0xab, 0xcd, 0xef]);
    assert_eq!(
        s0.links,
        vec![(
            other.to_vec(),
            hex("4142434445464748"),
            attrs(&[("opentracing.ref_type", s("follows_from"))])
        )],
        "the parent's CHILD_OF ref is not a link"
    );

    let s1 = &spans[1];
    assert_eq!(s1.trace_id, T64, "64-bit trace ids are left-padded");
    assert_eq!(s1.span_id, hex("f000000000000001"));
    assert_eq!(s1.parent, hex("2122232425262728"));
    assert!(s1.links.is_empty(), "CHILD_OF ref to the explicit parent dropped");
    assert_eq!((s1.kind, s1.flags), (3, 0));
    assert_eq!(s1.status, Some((2, "db down".into())));
    assert_eq!(
        s1.attrs,
        attrs(&[("otel.scope.name", s("lib2")), ("http.response.status_code", Any::Int(200))])
    );

    let s2 = &spans[2];
    assert_eq!(s2.parent, hex("f000000000000001"), "a FOLLOWS_FROM ref is the parent too");
    assert_eq!(s2.links.len(), 1, "... and stays a link");
    assert_eq!(s2.links[0].2, attrs(&[("opentracing.ref_type", s("follows_from"))]));
    assert_eq!(s2.kind, 3);
    assert_eq!(s2.status, Some((2, "Not Found".into())), "4xx on a client span");
    assert_eq!(
        s2.attrs,
        attrs(&[
            ("otel.library.version", s("1.0")),
            ("http.response.status_code", s("404")),
            ("http.status_message", s("Not Found")),
            ("otel.library.name", s("lib")),
        ])
    );

    let s4 = &spans[3];
    assert_eq!(s4.status, Some((1, String::new())), "otel.status_code is case-insensitive");
    assert_eq!(s4.attrs.len(), 36, "35 distinct k* keys and error=false");
    assert_eq!(s4.attrs[0], ("k0".into(), Any::Int(35)), "last value, first position");
    assert_eq!(s4.attrs[4], ("k4".into(), Any::Int(39)));
    assert_eq!(s4.attrs[35], ("error".into(), Any::Bool(false)), "error=false is kept");
}

#[test]
fn agent_compact_matches_the_collector() {
    check_thrift_batch(&jaeger_agent_to_otlp(&hex(AGENT_COMPACT), true).unwrap());
}

#[test]
fn agent_binary_strict_and_old_headers() {
    check_thrift_batch(&jaeger_agent_to_otlp(&hex(AGENT_BINARY), false).unwrap());
    check_thrift_batch(&jaeger_agent_to_otlp(&hex(AGENT_BINARY_OLD), false).unwrap());
}

#[test]
fn collector_http_batch() {
    let out = jaeger_thrift_batch_to_otlp(&hex(BATCH_BINARY)).unwrap();
    check_thrift_batch(&out);
    // The same spans, whatever the envelope and protocol.
    assert_eq!(out, jaeger_agent_to_otlp(&hex(AGENT_COMPACT), true).unwrap());
}

#[test]
fn wrong_protocol_or_message_is_an_error() {
    let compact = hex(AGENT_COMPACT);
    let e = jaeger_agent_to_otlp(&compact, false).unwrap_err();
    assert!(e.contains("binary protocol version"), "{e}");
    let e = jaeger_agent_to_otlp(&hex(AGENT_BINARY), true).unwrap_err();
    assert!(e.contains("not TCompactProtocol"), "{e}");
    let mut bad_type = compact.clone();
    bad_type[1] = 0x21 | (3 << 5); // EXCEPTION
    let e = jaeger_agent_to_otlp(&bad_type, true).unwrap_err();
    assert_eq!(e, "thrift message type 3 is neither CALL nor ONEWAY");
    let mut bad_name = compact.clone();
    bad_name[4] = b'E';
    let e = jaeger_agent_to_otlp(&bad_name, true).unwrap_err();
    assert_eq!(e, "thrift message \"EmitBatch\" is not emitBatch");
}

// ------------------------------------------------------------ hand-built Thrift

/// A minimal TBinaryProtocol writer for edge cases the fixtures do not cover.
#[derive(Default)]
struct Bin(Vec<u8>);

impl Bin {
    fn field(&mut self, ty: u8, id: i16) -> &mut Self {
        self.0.push(ty);
        self.0.extend_from_slice(&id.to_be_bytes());
        self
    }
    fn i32(&mut self, id: i16, v: i32) -> &mut Self {
        self.field(8, id).0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(&mut self, id: i16, v: i64) -> &mut Self {
        self.field(10, id).0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn str(&mut self, id: i16, v: &[u8]) -> &mut Self {
        self.field(11, id).0.extend_from_slice(&(v.len() as i32).to_be_bytes());
        self.0.extend_from_slice(v);
        self
    }
    fn list(&mut self, id: i16, elem: u8, n: i32) -> &mut Self {
        self.field(15, id).0.push(elem);
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }
    fn stop(&mut self) -> &mut Self {
        self.0.push(0);
        self
    }
    /// A span's required fields.
    fn span_head(&mut self, name: &[u8]) -> &mut Self {
        self.i64(1, 7).i64(2, 0).i64(3, 9).i64(4, 0).str(5, name).i32(7, 0).i64(8, 1).i64(9, 2)
    }
    /// A batch header (process "svc") opening a list of `n` spans.
    fn batch(n: i32) -> Bin {
        let mut b = Bin::default();
        b.field(12, 1).str(1, b"svc").stop().list(2, 12, n);
        b
    }
}

fn tag_span(tag: impl FnOnce(&mut Bin)) -> Vec<u8> {
    let mut b = Bin::batch(1);
    b.span_head(b"op").list(10, 12, 1);
    tag(&mut b);
    b.stop().stop().stop();
    b.0
}

#[test]
fn thrift_errors_say_where() {
    let e = jaeger_thrift_batch_to_otlp(&tag_span(|b| {
        b.str(1, b"k").i32(2, 9).stop();
    }))
    .unwrap_err();
    assert_eq!(e, "span 0: tag 0: vType 9 is not a Jaeger tag type");
    let e = jaeger_thrift_batch_to_otlp(&tag_span(|b| {
        b.str(1, b"k\xff").i32(2, 0).stop();
    }))
    .unwrap_err();
    assert_eq!(e, "span 0: tag 0: key is not valid UTF-8");
    let e = jaeger_thrift_batch_to_otlp(&tag_span(|b| {
        b.str(1, b"k").i32(2, 0).str(3, b"\xc0").stop();
    }))
    .unwrap_err();
    assert_eq!(e, "span 0: tag 0: vStr is not valid UTF-8");
    let e = jaeger_thrift_batch_to_otlp(&tag_span(|b| {
        b.str(1, b"k").stop();
    }))
    .unwrap_err();
    assert_eq!(e, "span 0: tag 0: required field vType is missing");

    let mut b = Bin::batch(1);
    b.span_head(b"\xff").stop().stop().stop();
    let e = jaeger_thrift_batch_to_otlp(&b.0).unwrap_err();
    assert_eq!(e, "span 0: operationName is not valid UTF-8");

    let mut b = Bin::batch(1);
    b.i64(1, 7).stop().stop().stop();
    let e = jaeger_thrift_batch_to_otlp(&b.0).unwrap_err();
    assert_eq!(e, "span 0: required field traceIdHigh is missing");

    let full = hex(BATCH_BINARY);
    let e = jaeger_thrift_batch_to_otlp(&full[..117]).unwrap_err();
    assert!(e.ends_with("truncated thrift at byte 117") || e.contains("at byte"), "{e}");
    let e = jaeger_thrift_batch_to_otlp(&full[..full.len() - 1]).unwrap_err();
    assert_eq!(e, format!("truncated thrift at byte {}", full.len() - 1));

    let mut b = Bin::default();
    b.field(12, 1).str(1, b"svc").stop().stop();
    let e = jaeger_thrift_batch_to_otlp(&b.0).unwrap_err();
    assert_eq!(e, "batch: required field spans is missing");
}

#[test]
fn absurd_sizes_are_refused_before_looping() {
    let b = Bin::batch(i32::MAX);
    let e = jaeger_thrift_batch_to_otlp(&b.0).unwrap_err();
    assert_eq!(e, "spans: 2147483647 elements at byte 17 exceed the 0 bytes left");
    let b = Bin::batch(-1);
    let e = jaeger_thrift_batch_to_otlp(&b.0).unwrap_err();
    assert_eq!(e, "spans: negative size -1 at byte 18");
    let mut b = Bin::batch(1);
    b.span_head(b"op").field(11, 50).0.extend_from_slice(&0x7fff_fff0i32.to_be_bytes());
    let e = jaeger_thrift_batch_to_otlp(&b.0).unwrap_err();
    assert!(e.starts_with("span 0: truncated thrift at byte"), "{e}");
    // A map declaring 2^31-1 entries.
    let mut b = Bin::batch(1);
    b.span_head(b"op").field(13, 50).0.extend_from_slice(&[11, 11, 0x7f, 0xff, 0xff, 0xff]);
    let e = jaeger_thrift_batch_to_otlp(&b.0).unwrap_err();
    assert!(e.contains("2147483647 elements"), "{e}");
}

#[test]
fn deep_nesting_is_refused() {
    let mut nested = Bin::batch(1);
    nested.span_head(b"op").field(15, 50);
    for _ in 0..100 {
        nested.0.extend_from_slice(&[15, 0, 0, 0, 1]);
    }
    nested.0.extend_from_slice(&[8, 0, 0, 0, 0]);
    let e = jaeger_thrift_batch_to_otlp(&nested.0).unwrap_err();
    assert!(e.starts_with("span 0: thrift nested deeper than 64"), "{e}");
    // Structs inside structs too.
    let mut deep = Bin::batch(1);
    deep.span_head(b"op");
    for _ in 0..100 {
        deep.field(12, 50);
    }
    let e = jaeger_thrift_batch_to_otlp(&deep.0).unwrap_err();
    assert!(e.contains("nested deeper than 64"), "{e}");
}

#[test]
fn wrong_field_types_are_skipped_and_repeats_replace() {
    let mut b = Bin::batch(1);
    b.span_head(b"first").str(3, b"not an i64").str(5, b"second");
    b.list(10, 12, 1).str(1, b"a").i32(2, 0).str(3, b"1").stop();
    b.list(10, 12, 1).str(1, b"b").i32(2, 0).str(3, b"2").stop();
    b.stop().stop().stop();
    let res = decode(&jaeger_thrift_batch_to_otlp(&b.0).unwrap());
    let sp = &res[0].scopes[0].spans[0];
    assert_eq!(sp.name, "second");
    assert_eq!(sp.span_id, 9u64.to_be_bytes());
    assert_eq!(sp.attrs, attrs(&[("b", s("2"))]));
    assert_eq!(res[0].attrs, attrs(&[("service.name", s("svc"))]));
}

#[test]
fn thrift_status_and_kind_rules() {
    use translate::Val;
    /// Tags, then the kind, status and attribute keys they give.
    type Case<'a> = (&'a [(&'a str, Val<'a>)], u64, Option<(u64, &'a str)>, &'a [&'a str]);
    const H: &str = "http.response.status_code";
    let cases: &[Case] = &[
        (&[("error", Val::Str("true"))], 0, None, &["error"]),
        (
            &[("error", Val::Bool(false)), ("otel.status_code", Val::Str("ERROR"))],
            0,
            Some((2, "")),
            &["error"],
        ),
        (&[("otel.status_description", Val::Str("d"))], 0, None, &["otel.status_description"]),
        (
            &[("otel.status_code", Val::Str("weird")), ("otel.status_description", Val::Str("d"))],
            0,
            Some((0, "d")),
            &[],
        ),
        (
            &[("error", Val::Bool(true)), ("otel.status_code", Val::Str("OK"))],
            0,
            Some((2, "")),
            &[],
        ),
        (
            &[("error", Val::Bool(true)), ("http.status_message", Val::Str("m"))],
            0,
            Some((2, "m")),
            &["http.status_message"],
        ),
        (&[("http.status_code", Val::Int(404)), ("span.kind", Val::Str("server"))], 2, None, &[H]),
        (
            &[("http.status_code", Val::Int(404)), ("span.kind", Val::Str("producer"))],
            4,
            Some((2, "")),
            &[H],
        ),
        (&[("http.status_code", Val::Int(399))], 0, Some((2, "")), &[H]),
        (
            &[("http.status_code", Val::Int(398)), ("http.status_message", Val::Str("m"))],
            0,
            None,
            &[H, "http.status_message"],
        ),
        (&[("http.status_code", Val::Str("5x"))], 0, None, &[H]),
        (&[("http.status_code", Val::Double(500.0))], 0, None, &[H]),
        (&[("span.kind", Val::Int(1))], 0, None, &[]),
        (&[("span.kind", Val::Str("internal"))], 1, None, &[]),
        (&[("span.kind", Val::Str("consumer"))], 5, None, &[]),
        (&[("w3c.tracestate", Val::Bool(true))], 0, None, &["w3c.tracestate"]),
        (
            &[("http.response.status_code", Val::Int(500)), ("http.status_code", Val::Int(200))],
            0,
            None,
            &[H],
        ),
    ];
    for (tags, kind, status, rest) in cases {
        let body = tag_span_list(tags);
        let res = decode(&jaeger_thrift_batch_to_otlp(&body).unwrap());
        let sp = &res[0].scopes[0].spans[0];
        let keys: Vec<&str> = sp.attrs.iter().map(|(k, _)| k.as_str()).collect();
        let status =
            status.map(|(c, m)| (c, m.to_string())).filter(|(c, m)| *c != 0 || !m.is_empty());
        assert_eq!((sp.kind, &sp.status, &keys[..]), (*kind, &status, *rest), "{tags:?}");
    }
}

/// A binary batch with one span carrying `tags`.
fn tag_span_list(tags: &[(&str, translate::Val<'_>)]) -> Vec<u8> {
    use translate::Val;
    let mut b = Bin::batch(1);
    b.span_head(b"op").list(10, 12, tags.len() as i32);
    for (k, v) in tags {
        b.str(1, k.as_bytes());
        match v {
            Val::Str(x) => b.i32(2, 0).str(3, x.as_bytes()),
            Val::Double(x) => {
                b.i32(2, 1).field(4, 4).0.extend_from_slice(&x.to_bits().to_be_bytes());
                &mut b
            }
            Val::Bool(x) => {
                b.i32(2, 2).field(2, 5).0.push(*x as u8);
                &mut b
            }
            Val::Int(x) => b.i32(2, 3).i64(6, *x),
            Val::Bytes(x) => b.i32(2, 4).str(7, x),
            Val::JaegerVersion(_) => unreachable!(),
        };
        b.stop();
    }
    b.stop().stop().stop();
    b.0
}

#[test]
fn empty_inputs() {
    // A datagram without a batch has no spans; an empty batch is one bare resource.
    let mut msg = vec![0x82, 0x81, 0x00, 9];
    msg.extend_from_slice(b"emitBatch");
    msg.push(0);
    assert!(jaeger_agent_to_otlp(&msg, true).unwrap().is_empty());
    let mut b = Bin::default();
    b.field(12, 1).str(1, b"").stop().list(2, 12, 0).stop();
    let res = decode(&jaeger_thrift_batch_to_otlp(&b.0).unwrap());
    assert_eq!(res.len(), 1);
    assert!(res[0].attrs.is_empty() && res[0].scopes.is_empty());
    assert_eq!(jaeger_thrift_batch_to_otlp(&[]).unwrap_err(), "truncated thrift at byte 0");
    assert!(jaeger_proto_to_otlp(&[]).unwrap().is_empty());
}

// ------------------------------------------------------------ protobuf

#[test]
fn proto_matches_the_collector() {
    let out = jaeger_proto_to_otlp(&hex(POST_SPANS)).unwrap();
    assert_eq!(normalized(&out), normalized(&hex(COLLECTOR_PROTO)), "same as the collector");
    let res = decode(&out);
    assert_eq!(res.len(), 3, "the batch's process, backend, and the no-service process");
    let batch = &res[0];
    assert_eq!(
        batch.attrs,
        attrs(&[
            ("service.name", s("frontend")),
            ("host.name", s("node-1")),
            ("pid", Any::Int(42))
        ])
    );
    assert_eq!(batch.scopes.len(), 2);
    assert_eq!(batch.scopes[0].scope, Some(("lib".into(), "2.0".into())));
    let a = &batch.scopes[0].spans[0];
    assert_eq!(a.trace_id, T128);
    assert_eq!(a.span_id, hex("2122232425262728"));
    assert_eq!(a.parent, hex("3132333435363738"));
    assert_eq!((a.kind, a.flags), (2, 1), "only the sampled bit of flags 3");
    assert_eq!((a.start, a.end), (START_NS, START_NS + 2_500_000));
    assert_eq!(a.status, Some((2, "Bad Gateway".into())));
    assert_eq!(
        a.attrs,
        attrs(&[
            ("http.status_message", s("Bad Gateway")),
            ("ratio", Any::Double(0.5)),
            ("ok", Any::Bool(true)),
            ("blob", Any::Bytes(vec![1, 2])),
            ("n", Any::Int(-3)),
        ])
    );
    assert_eq!(
        a.events,
        vec![(START_NS + 7000, "retry".into(), attrs(&[("attempt", Any::Int(2))]))]
    );
    assert_eq!(
        a.links,
        vec![(
            T128.to_vec(),
            hex("4142434445464748"),
            attrs(&[("opentracing.ref_type", s("follows_from"))])
        )]
    );
    assert_eq!(batch.scopes[1].scope, None);
    let same: Vec<&str> = batch.scopes[1].spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(same, ["same as batch"], "an identical span process joins the batch's group");

    let backend = &res[1];
    assert_eq!(
        backend.attrs,
        attrs(&[
            ("service.name", s("backend")),
            ("opencensus.exporterversion", s("Jaeger-Java-1.8")),
            ("host.name", s("h")),
        ])
    );
    let names: Vec<&str> = backend.scopes[0].spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["backend op", "backend again"]);
    let b = &backend.scopes[0].spans[0];
    assert_eq!(b.trace_id, T64, "an 8-byte trace id is the low half");
    assert_eq!(b.parent, hex("6162636465666768"), "FOLLOWS_FROM in the same trace");
    assert_eq!(b.links.len(), 1);
    assert_eq!(b.end - b.start, 1_500_000_000);
    assert_eq!((b.kind, b.flags, &b.status), (0, 0, &None));

    assert!(res[2].attrs.is_empty(), "OTLPResourceNoServiceName drops the resource");
    assert_eq!(res[2].scopes[0].spans[0].name, "no service");
}

/// Protobuf builders for edge cases.
fn pb_kv(out: &mut Vec<u8>, field: u32, key: &str, vtype: u64, v: &[u8]) {
    put_message(out, field, |m| {
        put_bytes_field(m, 1, key.as_bytes());
        put_varint_field(m, 2, vtype);
        put_bytes_field(m, 3, v);
    });
}

fn pb_span(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    put_message(out, 1, body);
}

fn pb_request(spans: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    put_message(&mut out, 1, spans);
    out
}

fn proto_err(span: impl FnOnce(&mut Vec<u8>)) -> String {
    jaeger_proto_to_otlp(&pb_request(|b| put_message(b, 1, span))).unwrap_err()
}

#[test]
fn proto_errors_say_where() {
    let e = proto_err(|s| put_bytes_field(s, 1, &[1; 5]));
    assert_eq!(e, "span 0: trace_id has 5 bytes, not 16 or 8");
    let e = proto_err(|s| put_bytes_field(s, 2, &[1; 16]));
    assert_eq!(e, "span 0: span_id has 16 bytes, not 8");
    let e = proto_err(|s| put_varint_field(s, 2, 1));
    assert_eq!(e, "span 0: span_id (field 2) has wire type 0");
    let e = proto_err(|s| {
        pb_kv(s, 8, "a", 0, b"x");
        pb_kv(s, 8, "b", 7, b"x");
    });
    assert_eq!(e, "span 0: tag 1: v_type 7 is not a Jaeger value type");
    let e = proto_err(|s| pb_kv(s, 8, "a", 0, b"\xff"));
    assert_eq!(e, "span 0: tag 0: v_str is not valid UTF-8");
    let e = proto_err(|s| put_bytes_field(s, 3, b"\xff"));
    assert_eq!(e, "span 0: operation_name is not valid UTF-8");
    let e = proto_err(|s| put_message(s, 6, |t| put_varint_field(t, 2, 1_000_000_000)));
    assert_eq!(e, "span 0: start_time: 1000000000 nanos is outside [0, 1e9)");
    let e =
        proto_err(|s| put_message(s, 6, |t| put_varint_field(t, 1, (-62_135_596_801i64) as u64)));
    assert!(e.starts_with("span 0: start_time: -62135596801 seconds is outside"), "{e}");
    let e = proto_err(|s| {
        put_message(s, 7, |t| {
            put_varint_field(t, 1, 1);
            put_varint_field(t, 2, (-1i64) as u64);
        })
    });
    assert_eq!(e, "span 0: duration: duration of 1 s -1 ns is out of range");
    let e = proto_err(|s| {
        put_message(s, 9, |l| put_message(l, 2, |f| put_varint_field(f, 2, 9)));
    });
    assert_eq!(e, "span 0: log 0: field 0: v_type 9 is not a Jaeger value type");
    let e = proto_err(|s| put_message(s, 4, |r| put_bytes_field(r, 2, &[0; 4])));
    assert_eq!(e, "span 0: reference 0: span_id has 4 bytes, not 8");
    let e = jaeger_proto_to_otlp(&[0x0a, 0x05, 0x0a]).unwrap_err();
    assert_eq!(e, "unexpected end of message");
    let e = jaeger_proto_to_otlp(&pb_request(|b| put_varint_field(b, 2, 1))).unwrap_err();
    assert_eq!(e, "batch: process (field 2) has wire type 0");
}

#[test]
fn proto_repeated_batches_merge() {
    let one = |service: &str, tag: &str, name: &str| {
        pb_request(|b| {
            put_message(b, 1, |s| {
                put_bytes_field(s, 2, &[7; 8]);
                put_bytes_field(s, 3, name.as_bytes());
                put_message(s, 6, |t| put_varint_field(t, 1, 10));
                put_message(s, 7, |t| put_varint_field(t, 2, 5));
            });
            put_message(b, 2, |p| {
                put_bytes_field(p, 1, service.as_bytes());
                pb_kv(p, 2, tag, 0, b"v");
            });
        })
    };
    let mut body = one("first", "a", "s1");
    body.extend(one("second", "b", "s2"));
    let res = decode(&jaeger_proto_to_otlp(&body).unwrap());
    assert_eq!(res.len(), 1);
    assert_eq!(res[0].attrs, attrs(&[("service.name", s("second")), ("a", s("v")), ("b", s("v"))]));
    let spans = &res[0].scopes[0].spans;
    assert_eq!(spans.len(), 2);
    assert_eq!((spans[1].start, spans[1].end), (10_000_000_000, 10_000_000_005));
    assert_eq!(spans[0].trace_id, [0; 16], "an absent trace id is zero (the validator drops it)");
}

#[test]
fn proto_missing_times_are_go_zero_time() {
    let body = pb_request(|b| pb_span(b, |s| put_bytes_field(s, 3, b"x")));
    let res = decode(&jaeger_proto_to_otlp(&body).unwrap());
    let sp = &res[0].scopes[0].spans[0];
    let zero = (-62_135_596_800i128 * 1_000_000_000) as u64;
    assert_eq!((sp.start, sp.end), (zero, zero), "time.Time{{}}.UnixNano(), wrapped");
}

#[test]
fn unknown_proto_fields_are_skipped() {
    let body = pb_request(|b| {
        put_fixed64_field(b, 9, 1);
        pb_span(b, |s| {
            put_bytes_field(s, 3, b"x");
            put_bytes_field(s, 99, b"whatever");
            put_varint_field(s, 100, 5);
        });
    });
    let res = decode(&jaeger_proto_to_otlp(&body).unwrap());
    assert_eq!(res[0].scopes[0].spans[0].name, "x");
}

// ------------------------------------------------------------ hostile input

mod hostile {
    use proptest::prelude::*;

    use super::*;

    fn all(b: &[u8]) {
        let _ = jaeger_agent_to_otlp(b, true);
        let _ = jaeger_agent_to_otlp(b, false);
        let _ = jaeger_thrift_batch_to_otlp(b);
        let _ = jaeger_proto_to_otlp(b);
    }

    fn fixtures() -> Vec<Vec<u8>> {
        [AGENT_COMPACT, AGENT_BINARY, AGENT_BINARY_OLD, BATCH_BINARY, POST_SPANS]
            .iter()
            .map(|h| hex(h))
            .collect()
    }

    #[test]
    fn every_truncation_of_every_fixture() {
        for f in fixtures() {
            for n in 0..f.len() {
                all(&f[..n]);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            all(&b);
        }

        #[test]
        fn bit_flips_never_panic(which in 0usize..5, flips in proptest::collection::vec((any::<usize>(), 0u8..8), 1..6)) {
            let mut f = fixtures().swap_remove(which);
            for (at, bit) in flips {
                let i = at % f.len();
                f[i] ^= 1 << bit;
            }
            all(&f);
        }

        #[test]
        fn byte_overwrites_never_panic(which in 0usize..5, edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
            let mut f = fixtures().swap_remove(which);
            for (at, v) in edits {
                let i = at % f.len();
                f[i] = v;
            }
            f.truncate(cut % (f.len() + 1));
            all(&f);
        }
    }
}

/// Cases from `core_rs/core/tools/jaeger/gen_differential.py` (random batches and the collector's own
/// translation of each): `JAEGER_CASES=file cargo test differential -- --ignored`.
#[test]
#[ignore]
fn differential_against_the_collector() {
    let path = std::env::var("JAEGER_CASES").expect("JAEGER_CASES");
    let cases = std::fs::read_to_string(path).unwrap();
    let lenient = std::env::var("JAEGER_CASES_LENIENT").is_ok();
    let (mut same, mut both_err, mut only_ours, mut only_theirs) = (0, 0, 0, 0);
    for (n, line) in cases.lines().enumerate() {
        let mut parts = line.split(' ');
        let (mode, input) = (parts.next().unwrap(), hex(parts.next().unwrap_or("")));
        let want = parts.next().unwrap_or("");
        let got = match mode {
            "agent-compact" => jaeger_agent_to_otlp(&input, true),
            "agent-binary" => jaeger_agent_to_otlp(&input, false),
            "thrift-batch" => jaeger_thrift_batch_to_otlp(&input),
            _ => jaeger_proto_to_otlp(&input),
        };
        match (got, want.starts_with("error")) {
            (Err(_), true) => both_err += 1,
            (Ok(out), false) => {
                assert_eq!(normalized(&out), normalized(&hex(want)), "case {n}: {mode} {line}");
                same += 1;
            }
            (Err(e), false) if lenient => {
                only_ours += 1;
                println!("refused only here, case {n} {mode}: {e}");
            }
            (Ok(_), true) if lenient => {
                only_theirs += 1;
                println!("refused only by the collector, case {n} {mode}: {want}");
            }
            (got, _) => panic!("case {n}: {mode}: ours {got:?}, collector {want}"),
        }
    }
    println!(
        "{same} cases translated alike, {both_err} refused by both, {only_ours} refused only \
         here, {only_theirs} only by the collector"
    );
}

/// `cargo test --release jaeger_speed -- --ignored --nocapture`
mod speed_probe {
    use super::*;

    /// A minimal TCompactProtocol writer for the probe's input.
    #[derive(Default)]
    struct Compact {
        out: Vec<u8>,
        last: Vec<i16>,
    }

    impl Compact {
        fn varint(&mut self, mut v: u64) {
            while v >= 0x80 {
                self.out.push(v as u8 | 0x80);
                v >>= 7;
            }
            self.out.push(v as u8);
        }
        fn field(&mut self, ty: u8, id: i16) {
            let last = self.last.last_mut().unwrap();
            let delta = id - *last;
            *last = id;
            if (1..=15).contains(&delta) {
                self.out.push((delta as u8) << 4 | ty);
            } else {
                self.out.push(ty);
                self.varint(((id << 1) ^ (id >> 15)) as u16 as u64);
            }
        }
        fn begin(&mut self) {
            self.last.push(0);
        }
        fn end(&mut self) {
            self.out.push(0);
            self.last.pop();
        }
        fn i64(&mut self, id: i16, v: i64) {
            self.field(6, id);
            self.varint(((v << 1) ^ (v >> 63)) as u64);
        }
        fn i32(&mut self, id: i16, v: i32) {
            self.field(5, id);
            self.varint(((v << 1) ^ (v >> 31)) as u32 as u64);
        }
        fn str(&mut self, id: i16, v: &str) {
            self.field(8, id);
            self.varint(v.len() as u64);
            self.out.extend_from_slice(v.as_bytes());
        }
        fn list(&mut self, id: i16, n: usize) {
            self.field(9, id);
            if n < 15 {
                self.out.push((n as u8) << 4 | 12);
            } else {
                self.out.push(0xf0 | 12);
                self.varint(n as u64);
            }
        }
        fn tag(&mut self, key: &str, v: Result<&str, i64>) {
            self.begin();
            self.str(1, key);
            match v {
                Ok(s) => {
                    self.i32(2, 0);
                    self.str(3, s);
                }
                Err(i) => {
                    self.i32(2, 3);
                    self.i64(6, i);
                }
            }
            self.end();
        }
    }

    const TAGS: [(&str, Result<&str, i64>); 10] = [
        ("span.kind", Ok("server")),
        ("http.method", Ok("GET")),
        ("http.route", Ok("/api/v1/orders/{id}")),
        ("http.status_code", Err(200)),
        ("net.peer.name", Ok("svc-cart")),
        ("user.id", Ok("user-123")),
        ("db.system", Ok("redis")),
        ("payload.bytes", Err(12345)),
        ("component", Ok("net/http")),
        ("peer.service", Ok("cart")),
    ];

    fn agent_datagram(spans: usize) -> Vec<u8> {
        let mut c = Compact::default();
        c.out.extend_from_slice(&[0x82, 0x81, 0x01, 9]);
        c.out.extend_from_slice(b"emitBatch");
        c.begin();
        c.field(12, 1);
        c.begin();
        c.field(12, 1);
        c.begin();
        c.str(1, "svc-frontend");
        c.list(2, 3);
        c.tag("hostname", Ok("node-1"));
        c.tag("ip", Ok("10.0.0.1"));
        c.tag("jaeger.version", Ok("Go-2.30.0"));
        c.end();
        c.list(2, spans);
        for i in 0..spans as i64 {
            c.begin();
            c.i64(1, 0x5af7183fb1d4cf5f + i);
            c.i64(2, 0x1234_5678_9abc_def0);
            c.i64(3, 0x6b221d5bc9e6496c ^ i);
            c.i64(4, 0x7b221d5bc9e6496c);
            c.str(5, "GET /api/v1/orders/{id}");
            c.i32(7, 1);
            c.i64(8, 1_700_000_000_000_000 + i);
            c.i64(9, 2500);
            c.list(10, TAGS.len());
            for (k, v) in TAGS {
                c.tag(k, v);
            }
            c.end();
        }
        c.end();
        c.end();
        c.out
    }

    fn post_spans(spans: usize) -> Vec<u8> {
        pb_request(|b| {
            for i in 0..spans as u64 {
                pb_span(b, |s| {
                    put_bytes_field(s, 1, &(0x5af7183fb1d4cf5f_u128 + i as u128).to_be_bytes());
                    put_bytes_field(s, 2, &(0x6b221d5bc9e6496c ^ i).to_be_bytes());
                    put_bytes_field(s, 3, b"GET /api/v1/orders/{id}");
                    put_message(s, 4, |r| {
                        put_bytes_field(r, 1, &(0x5af7183fb1d4cf5f_u128 + i as u128).to_be_bytes());
                        put_bytes_field(r, 2, &0x7b221d5bc9e6496c_u64.to_be_bytes());
                    });
                    put_varint_field(s, 5, 1);
                    put_message(s, 6, |t| put_varint_field(t, 1, 1_700_000_000 + i));
                    put_message(s, 7, |t| put_varint_field(t, 2, 2_500_000));
                    for (k, v) in TAGS {
                        put_message(s, 8, |m| {
                            put_bytes_field(m, 1, k.as_bytes());
                            match v {
                                Ok(x) => put_bytes_field(m, 3, x.as_bytes()),
                                Err(n) => {
                                    put_varint_field(m, 2, 2);
                                    put_varint_field(m, 5, n as u64);
                                }
                            }
                        });
                    }
                });
            }
            put_message(b, 2, |p| {
                put_bytes_field(p, 1, b"svc-frontend");
                pb_kv(p, 2, "hostname", 0, b"node-1");
                pb_kv(p, 2, "ip", 0, b"10.0.0.1");
            });
        })
    }

    /// This thread's CPU time in ns (Linux), so a busy machine does not inflate it.
    fn cpu_ns() -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        stat.split_whitespace().next()?.parse().ok()
    }

    fn per_span(label: &str, spans: usize, input: &[u8], f: impl Fn(&[u8]) -> Vec<u8>) {
        per_span_batches(label, &[(input.to_vec(), spans)], f);
    }

    /// Translates every batch in turn, `JAEGER_SPEED_ROUNDS` (300) times over.
    fn per_span_batches(label: &str, batches: &[(Vec<u8>, usize)], f: impl Fn(&[u8]) -> Vec<u8>) {
        let spans: usize = batches.iter().map(|b| b.1).sum();
        let input: usize = batches.iter().map(|b| b.0.len()).sum();
        let mut output = 0;
        for (b, n) in batches {
            let out = f(b);
            assert_eq!(normalized(&out)[0].scopes[0].spans.len(), *n);
            output += out.len();
        }
        let rounds = std::env::var("JAEGER_SPEED_ROUNDS").ok().and_then(|r| r.parse().ok());
        let rounds: usize = rounds.unwrap_or(300) * 1000 / spans.max(1);
        let (t, cpu) = (std::time::Instant::now(), cpu_ns());
        for _ in 0..rounds.max(1) {
            for (b, _) in batches {
                std::hint::black_box(f(std::hint::black_box(b)));
            }
        }
        let per = |ns: f64| ns / (rounds.max(1) * spans) as f64;
        let wall = per(t.elapsed().as_nanos() as f64);
        let cpu = cpu.zip(cpu_ns()).map(|(a, b)| per((b - a) as f64));
        println!(
            "{label}: {:.0} ns/span of CPU time ({wall:.0} wall; {} input, {} output bytes/span, \
             {} batches)",
            cpu.unwrap_or(wall),
            input / spans,
            output / spans,
            batches.len()
        );
    }

    #[test]
    #[ignore]
    fn jaeger_speed() {
        let n = 1000;
        let compact = agent_datagram(n);
        per_span("agent compact", n, &compact, |b| jaeger_agent_to_otlp(b, true).unwrap());
        let proto = post_spans(n);
        per_span("proto", n, &proto, |b| jaeger_proto_to_otlp(b).unwrap());
        // The reference load generator's spans as bench/test_receivers.py sends them:
        // a batch per service of each 1000-span request, and 1000 spans per process.
        let realistic = super::super::realistic::realistic_batches(1, 1000, 1000);
        per_span_batches("thrift http ~50/batch", &realistic, |b| {
            jaeger_thrift_batch_to_otlp(b).unwrap()
        });
        let realistic = super::super::realistic::realistic_batches(1, 20_000, 1000);
        per_span_batches("thrift http 1000/batch", &realistic, |b| {
            jaeger_thrift_batch_to_otlp(b).unwrap()
        });
    }
}

#[test]
fn output_stays_linear_in_the_input() {
    // Protobuf's smallest items: empty references (2 bytes each become a link).
    let refs = pb_request(|b| {
        pb_span(b, |s| {
            for _ in 0..10_000 {
                put_message(s, 4, |_| {});
            }
        })
    });
    let out = jaeger_proto_to_otlp(&refs).unwrap();
    assert!(out.len() < refs.len() * 40, "{} -> {}", refs.len(), out.len());
    // Minimal spans.
    let spans = pb_request(|b| {
        for _ in 0..10_000 {
            pb_span(b, |s| put_varint_field(s, 5, 1));
        }
    });
    let out = jaeger_proto_to_otlp(&spans).unwrap();
    assert!(out.len() < spans.len() * 40, "{} -> {}", spans.len(), out.len());
}

#[test]
fn many_scopes_and_processes_group_in_first_seen_order() {
    let body = pb_request(|b| {
        for i in 0..120u64 {
            pb_span(b, |s| {
                put_bytes_field(s, 2, &(i + 1).to_be_bytes());
                pb_kv(s, 8, "otel.scope.name", 0, format!("scope{}", i % 20).as_bytes());
                put_message(s, 10, |p| put_bytes_field(p, 1, format!("svc{}", i % 3).as_bytes()));
            });
        }
    });
    let res = decode(&jaeger_proto_to_otlp(&body).unwrap());
    assert_eq!(res.len(), 3, "the batch's own (absent) process has no spans: no resource");
    for (r, res) in res.iter().enumerate() {
        assert_eq!(res.attrs, attrs(&[("service.name", s(&format!("svc{r}")))]));
        let scopes: Vec<String> = res.scopes.iter().map(|sc| sc.scope.clone().unwrap().0).collect();
        let want: Vec<String> = (0..20).map(|k| format!("scope{}", (r + 3 * k) % 20)).collect();
        assert_eq!(scopes, want);
        assert!(res.scopes.iter().all(|sc| sc.spans.len() == 2), "found again by the index");
    }
}

/// Digests of the exact output (or error) for many inputs, to prove a change keeps every
/// byte: `JAEGER_SNAPSHOT=file [JAEGER_CASES=cases.txt] cargo test --release -p tempo_core
/// jaeger_snapshot -- --ignored` writes `file` when absent, else compares with it.
#[test]
#[ignore]
fn jaeger_snapshot() {
    use std::hash::{Hash, Hasher};
    let path = std::env::var("JAEGER_SNAPSHOT").expect("JAEGER_SNAPSHOT");
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, f) in [
        ("agent-compact", AGENT_COMPACT),
        ("agent-binary", AGENT_BINARY),
        ("agent-binary", AGENT_BINARY_OLD),
        ("thrift-batch", BATCH_BINARY),
        ("proto", POST_SPANS),
    ] {
        inputs.push((name.into(), hex(f)));
    }
    for seed in 1..20 {
        for per in [1, 7, 50, 1000] {
            for (b, _) in super::realistic::realistic_batches(seed, 300, per) {
                inputs.push(("thrift-batch".into(), b));
            }
        }
    }
    if let Ok(cases) = std::env::var("JAEGER_CASES") {
        for line in std::fs::read_to_string(cases).unwrap().lines() {
            let mut parts = line.split(' ');
            let mode = parts.next().unwrap().to_string();
            inputs.push((mode, hex(parts.next().unwrap_or(""))));
        }
    }
    let mut lines = String::new();
    for (i, (mode, input)) in inputs.iter().enumerate() {
        let got = match mode.as_str() {
            "agent-compact" => jaeger_agent_to_otlp(input, true),
            "agent-binary" => jaeger_agent_to_otlp(input, false),
            "thrift-batch" => jaeger_thrift_batch_to_otlp(input),
            _ => jaeger_proto_to_otlp(input),
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        got.hash(&mut h);
        let len = got.as_ref().map_or(0, |o| o.len());
        lines.push_str(&format!("{i} {mode} {len} {:016x}\n", h.finish()));
    }
    match std::fs::read_to_string(&path) {
        Ok(want) => {
            let bad: Vec<_> = want.lines().zip(lines.lines()).filter(|(a, b)| a != b).collect();
            assert!(bad.is_empty() && want.lines().count() == lines.lines().count(), "{bad:?}");
            println!("{} outputs identical", inputs.len());
        }
        Err(_) => std::fs::write(&path, lines).unwrap(),
    }
}
