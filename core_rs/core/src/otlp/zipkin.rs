//! Zipkin v2 JSON spans to an OTLP `ExportTraceServiceRequest`, following the
//! OpenTelemetry collector's `zipkinv2` translation:
//!
//! - `localEndpoint.serviceName` becomes the resource's `service.name`; tags that
//!   are resource semantic conventions (`host.*`, `k8s.*`, …) go to the resource.
//! - `otel.library.name|version` (or `otel.scope.name|version`) name the scope.
//! - `kind` maps to the span kind (`span.kind=internal` when absent);
//!   `otel.status_code` / `otel.status_description` and `error` set the status.
//! - `timestamp` / `duration` are microseconds; annotations become events
//!   (`name|{json attributes}|dropped` is unpacked as the collector writes it);
//!   `otlp.link.N` tags become links; `w3c.tracestate` the trace state.
//! - Endpoint addresses become `net.host.*` / `net.peer.*` and `peer.service`.
//! - 64-bit trace ids are left-padded to 128 bits. An id that is not hex of the
//!   right length is written with a wrong length, so the validator drops (and
//!   counts) just that span.

use std::borrow::Cow;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::pb::{put_bytes_field, put_fixed64_field, put_message, put_varint_field, varint_len};

/// Tag prefixes of resource semantic conventions: such tags describe the process
/// that produced the span, and go back to the resource.
const RESOURCE_PREFIXES: &[&str] = &[
    "service.",
    "telemetry.",
    "host.",
    "os.",
    "process.",
    "container.",
    "k8s.",
    "cloud.",
    "faas.",
    "deployment.",
    "device.",
    "aws.ecs.",
    "aws.eks.",
    "aws.log.",
    "gcp.",
    "heroku.",
    "webengine.",
];

const TAG_STATUS_CODE: &str = "otel.status_code";
const TAG_STATUS_DESCRIPTION: &str = "otel.status_description";
const TAG_ERROR: &str = "error";
const TAG_TRACE_STATE: &str = "w3c.tracestate";
const TAG_SPAN_KIND: &str = "span.kind";

fn is_resource_tag(key: &str) -> bool {
    RESOURCE_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// An id decoded on the stack; `len` 1 marks an id that is not valid hex.
struct Id {
    bytes: [u8; 16],
    len: usize,
}

impl std::ops::Deref for Id {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Hex id of `bytes` bytes; a 16-character trace id is left-padded to 32.
fn hex_id(s: &str, bytes: usize) -> Id {
    let bad = Id { bytes: [0; 16], len: 1 }; // wrong length: the validator rejects the span
    let pad = if bytes == 16 && s.len() == 16 { 8 } else { 0 };
    if s.len() + pad * 2 != bytes * 2 {
        return bad;
    }
    let mut id = Id { bytes: [0; 16], len: bytes };
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        match ((pair[0] as char).to_digit(16), (pair[1] as char).to_digit(16)) {
            (Some(h), Some(l)) => id.bytes[pad + i] = (h * 16 + l) as u8,
            _ => return bad,
        }
    }
    id
}

/// Microseconds: a non-negative JSON number (fractions are floored) or null.
fn micros<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Option::<f64>::deserialize(d)? {
        None => Ok(0),
        Some(f) if f >= 0.0 && f.is_finite() => Ok(f as u64),
        Some(f) => Err(de::Error::custom(format!("{f} is not a time in microseconds"))),
    }
}

/// A Zipkin endpoint.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "a Zipkin endpoint object")]
struct Endpoint<'a> {
    #[serde(borrow)]
    service_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ipv4: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ipv6: Option<Cow<'a, str>>,
    port: Option<u16>,
}

impl Endpoint<'_> {
    fn ip(&self) -> Option<&str> {
        self.ipv6.as_deref().filter(|s| !s.is_empty()).or(self.ipv4.as_deref())
    }
}

#[derive(Deserialize)]
#[serde(expecting = "a Zipkin annotation object")]
struct Annotation<'a> {
    #[serde(default, deserialize_with = "micros")]
    timestamp: u64,
    #[serde(borrow, default)]
    value: Cow<'a, str>,
}

/// A Zipkin v2 span; fields Zipkin defines that OTLP has no place for are skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a Zipkin v2 span object")]
struct ZSpan<'a> {
    #[serde(borrow, default)]
    trace_id: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    parent_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "micros")]
    timestamp: u64,
    #[serde(default, deserialize_with = "micros")]
    duration: u64,
    #[serde(borrow, default)]
    local_endpoint: Option<Endpoint<'a>>,
    #[serde(borrow, default)]
    remote_endpoint: Option<Endpoint<'a>>,
    #[serde(borrow, default, deserialize_with = "tags")]
    tags: Tags<'a>,
    #[serde(borrow, default)]
    annotations: Option<Vec<Annotation<'a>>>,
}

/// A span's tags in the order sent.
type Tags<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Tags in the order sent; values must be strings (as Zipkin defines them).
fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<Tags<'de>, D::Error> {
    struct TagsVisitor;
    impl<'de> Visitor<'de> for TagsVisitor {
        type Value = Tags<'de>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of string tags")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
            while let Some((k, v)) = map.next_entry::<Borrowed<'de>, Borrowed<'de>>()? {
                out.push((k.0, v.0));
            }
            Ok(out)
        }
    }
    d.deserialize_any(TagsVisitor)
}

/// A string, borrowed from the body when it has no escapes.
struct Borrowed<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Borrowed<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Borrowed<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Borrowed(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Borrowed(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// One attribute value as OTLP `AnyValue` bytes.
enum Attr<'a> {
    Str(&'a str),
    Int(i64),
    Double(f64),
    Bool(bool),
}

fn put_kv(out: &mut Vec<u8>, field: u32, key: &str, v: &Attr<'_>) {
    put_message(out, field, |kv| {
        put_bytes_field(kv, 1, key.as_bytes());
        put_message(kv, 2, |a| match v {
            Attr::Str(s) => put_bytes_field(a, 1, s.as_bytes()),
            Attr::Bool(b) => put_varint_field(a, 2, *b as u64),
            Attr::Int(i) => put_varint_field(a, 3, *i as u64),
            Attr::Double(d) => put_fixed64_field(a, 4, d.to_bits()),
        });
    });
}

/// Attributes from a JSON object packed by the collector's exporter: strings,
/// numbers (integral ones as ints) and booleans; anything else is skipped.
fn put_json_attrs(out: &mut Vec<u8>, field: u32, attrs: &Map<String, Value>) {
    for (k, v) in attrs {
        match v {
            Value::String(s) => put_kv(out, field, k, &Attr::Str(s)),
            Value::Bool(b) => put_kv(out, field, k, &Attr::Bool(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => put_kv(out, field, k, &Attr::Int(i)),
                None => put_kv(out, field, k, &Attr::Double(n.as_f64().unwrap_or(0.0))),
            },
            _ => {}
        }
    }
}

/// `name|{json}|dropped` as the collector's exporter packs events and links:
/// (name or the leading fields, the attribute object, the dropped count).
fn unpack(value: &str, leading: usize) -> Option<(Vec<&str>, Map<String, Value>, u32)> {
    if !value.contains('|') {
        return None;
    }
    let parts: Vec<&str> = value.split('|').collect();
    if parts.len() < leading + 2 {
        return None;
    }
    let dropped = parts[parts.len() - 1].parse().ok()?;
    let json = parts[leading..parts.len() - 1].join("|");
    match serde_json::from_str::<Value>(&json).ok()? {
        Value::Object(attrs) => Some((parts[..leading].to_vec(), attrs, dropped)),
        _ => None,
    }
}

/// One translated span: its grouping keys and encoded `Span` message.
struct Translated<'a> {
    service: &'a str,
    scope: (&'a str, &'a str),
    resource_tags: Vec<(&'a str, &'a str)>,
    span: Vec<u8>,
}

fn kind_number(kind: &str, span_kind_tag: Option<&str>) -> u64 {
    match kind {
        "CLIENT" => 3,
        "SERVER" => 2,
        "PRODUCER" => 4,
        "CONSUMER" => 5,
        _ if span_kind_tag == Some("internal") => 1,
        _ => 0,
    }
}

fn status_code(value: &str) -> Option<u64> {
    match value {
        "STATUS_CODE_UNSET" | "UNSET" => Some(0),
        "STATUS_CODE_OK" | "OK" => Some(1),
        "STATUS_CODE_ERROR" | "ERROR" => Some(2),
        _ => None,
    }
}

/// The special tags of one span, taken out of its attributes in one pass.
#[derive(Default)]
struct Special<'a> {
    status_code: Option<&'a str>,
    status_description: Option<&'a str>,
    error: Option<&'a str>,
    trace_state: &'a str,
    span_kind: Option<&'a str>,
    scope: [Option<&'a str>; 4],
    links: Vec<&'a str>,
}

fn translate<'a>(z: &'a ZSpan<'a>) -> Translated<'a> {
    let mut sp = Special::default();
    let mut attrs: Vec<(&str, &str)> = Vec::with_capacity(z.tags.len());
    let mut resource_tags = Vec::new();
    for (k, v) in &z.tags {
        let (k, v) = (k.as_ref(), v.as_ref());
        match k {
            TAG_STATUS_CODE => sp.status_code = Some(v),
            TAG_STATUS_DESCRIPTION => sp.status_description = Some(v),
            TAG_ERROR => sp.error = Some(v),
            TAG_TRACE_STATE => sp.trace_state = v,
            TAG_SPAN_KIND => sp.span_kind = Some(v),
            "otel.scope.name" => sp.scope[0] = Some(v),
            "otel.scope.version" => sp.scope[1] = Some(v),
            "otel.library.name" => sp.scope[2] = Some(v),
            "otel.library.version" => sp.scope[3] = Some(v),
            _ if k.starts_with("otlp.link.") && k[10..].parse::<u32>().is_ok() => sp.links.push(v),
            _ if is_resource_tag(k) => resource_tags.push((k, v)),
            _ => attrs.push((k, v)),
        }
    }
    let scope = match sp.scope {
        [Some(n), v, _, _] => (n, v.unwrap_or("")),
        [None, _, Some(n), v] => (n, v.unwrap_or("")),
        _ => ("", ""),
    };
    let kind_field = z.kind.as_deref().unwrap_or("");
    let kind = kind_number(kind_field, sp.span_kind);
    if matches!(kind_field, "CLIENT" | "SERVER" | "PRODUCER" | "CONSUMER") {
        // The tag is read (and dropped) only when the span has no kind of its own.
        if let Some(v) = sp.span_kind {
            attrs.push((TAG_SPAN_KIND, v));
        }
    }
    let (mut code, mut message) = (0, "");
    if let Some(c) = sp.status_code {
        code = status_code(c).unwrap_or(0);
        message = sp.status_description.unwrap_or("");
    } else if let Some(d) = sp.status_description {
        attrs.push((TAG_STATUS_DESCRIPTION, d));
    }
    if let Some(e) = sp.error {
        code = 2;
        if message.is_empty() && e != "true" {
            message = e;
        }
    }
    let local = z.local_endpoint.as_ref();
    let remote = z.remote_endpoint.as_ref();
    let start = z.timestamp.saturating_mul(1000);

    let mut span = Vec::with_capacity(64 + z.tags.len() * 40);
    put_bytes_field(&mut span, 1, &hex_id(&z.trace_id, 16));
    put_bytes_field(&mut span, 2, &hex_id(&z.id, 8));
    if !sp.trace_state.is_empty() {
        put_bytes_field(&mut span, 3, sp.trace_state.as_bytes());
    }
    if let Some(p) = z.parent_id.as_deref().filter(|p| !p.is_empty() && *p != z.id) {
        put_bytes_field(&mut span, 4, &hex_id(p, 8));
    }
    put_bytes_field(&mut span, 5, z.name.as_deref().unwrap_or("").as_bytes());
    if kind != 0 {
        put_varint_field(&mut span, 6, kind);
    }
    put_fixed64_field(&mut span, 7, start);
    put_fixed64_field(&mut span, 8, start.saturating_add(z.duration.saturating_mul(1000)));
    for (k, v) in &attrs {
        put_kv(&mut span, 9, k, &Attr::Str(v));
    }
    if let Some(ip) = local.and_then(Endpoint::ip) {
        put_kv(&mut span, 9, "net.host.ip", &Attr::Str(ip));
    }
    if let Some(port) = local.and_then(|e| e.port).filter(|p| *p > 0) {
        put_kv(&mut span, 9, "net.host.port", &Attr::Int(port as i64));
    }
    if let Some(svc) = remote.and_then(|e| e.service_name.as_deref()).filter(|s| !s.is_empty()) {
        put_kv(&mut span, 9, "peer.service", &Attr::Str(svc));
    }
    if let Some(ip) = remote.and_then(Endpoint::ip) {
        put_kv(&mut span, 9, "net.peer.ip", &Attr::Str(ip));
    }
    if let Some(port) = remote.and_then(|e| e.port).filter(|p| *p > 0) {
        put_kv(&mut span, 9, "net.peer.port", &Attr::Int(port as i64));
    }
    for a in z.annotations.iter().flatten() {
        put_message(&mut span, 11, |e| {
            put_fixed64_field(e, 1, a.timestamp.saturating_mul(1000));
            match unpack(&a.value, 1) {
                Some((name, attrs, dropped)) => {
                    put_bytes_field(e, 2, name[0].as_bytes());
                    put_json_attrs(e, 3, &attrs);
                    if dropped > 0 {
                        put_varint_field(e, 4, dropped as u64);
                    }
                }
                None => put_bytes_field(e, 2, a.value.as_bytes()),
            }
        });
    }
    for v in &sp.links {
        if let Some((ids, attrs, dropped)) = unpack(v, 3) {
            put_message(&mut span, 13, |l| {
                put_bytes_field(l, 1, &hex_id(ids[0], 16));
                put_bytes_field(l, 2, &hex_id(ids[1], 8));
                if !ids[2].is_empty() {
                    put_bytes_field(l, 3, ids[2].as_bytes());
                }
                put_json_attrs(l, 4, &attrs);
                if dropped > 0 {
                    put_varint_field(l, 5, dropped as u64);
                }
            });
        }
    }
    if code != 0 || !message.is_empty() {
        put_message(&mut span, 15, |s| {
            if !message.is_empty() {
                put_bytes_field(s, 2, message.as_bytes());
            }
            if code != 0 {
                put_varint_field(s, 3, code);
            }
        });
    }
    let service = local.and_then(|e| e.service_name.as_deref()).unwrap_or("");
    Translated { service, scope, resource_tags, span }
}

/// Zipkin v2 JSON (an array of spans) to OTLP protobuf: spans grouped into a
/// `ResourceSpans` per local service and a `ScopeSpans` per instrumentation scope.
pub fn zipkin_v2_json_to_otlp(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let spans: Vec<Option<ZSpan<'_>>> =
        serde_path_to_error::deserialize(&mut de).map_err(|e| match e.path().to_string() {
            p if p == "." => e.into_inner().to_string(),
            p => format!("{p}: {}", e.into_inner()),
        })?;
    de.end().map_err(|e| e.to_string())?;
    let translated: Vec<Translated<'_>> = spans.iter().flatten().map(translate).collect();
    // Group by service, then scope, keeping first-seen order.
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, t) in translated.iter().enumerate() {
        match groups.iter_mut().find(|(s, _)| *s == t.service) {
            Some((_, v)) => v.push(i),
            None => groups.push((t.service, vec![i])),
        }
    }
    let size: usize = translated.iter().map(|t| t.span.len() + 8).sum();
    let mut out = Vec::with_capacity(size + 64 * groups.len());
    for (service, members) in groups {
        put_message(&mut out, 1, |rs| {
            put_message(rs, 1, |r| {
                if !service.is_empty() {
                    put_kv(r, 1, "service.name", &Attr::Str(service));
                }
                // Resource tags of the group's first span that carries each key.
                let mut seen: Vec<&str> = Vec::new();
                for &i in &members {
                    for (k, v) in &translated[i].resource_tags {
                        if !seen.contains(k) && *k != "service.name" {
                            seen.push(k);
                            put_kv(r, 1, k, &Attr::Str(v));
                        }
                    }
                }
            });
            let mut scopes: Vec<((&str, &str), Vec<usize>)> = Vec::new();
            for &i in &members {
                let scope = translated[i].scope;
                match scopes.iter_mut().find(|(s, _)| *s == scope) {
                    Some((_, v)) => v.push(i),
                    None => scopes.push((scope, vec![i])),
                }
            }
            for ((name, version), spans) in scopes {
                put_message(rs, 2, |ss| {
                    if !name.is_empty() {
                        put_message(ss, 1, |sc| {
                            put_bytes_field(sc, 1, name.as_bytes());
                            if !version.is_empty() {
                                put_bytes_field(sc, 2, version.as_bytes());
                            }
                        });
                    }
                    for i in spans {
                        let span = &translated[i].span;
                        ss.reserve(span.len() + varint_len(span.len() as u64) + 1);
                        put_bytes_field(ss, 2, span);
                    }
                });
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::otlp::scan;
    use crate::otlp::view::{attrs_of, AnyValue, ScopeHead, SpanView};

    const SPANS: &str = r#"[
      {"traceId": "5af7183fb1d4cf5f", "id": "6b221d5bc9e6496c", "name": "get /api",
       "kind": "SERVER", "timestamp": 1700000000000000, "duration": 2500,
       "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1", "port": 8080},
       "remoteEndpoint": {"serviceName": "browser", "ipv4": "10.0.0.9"},
       "tags": {"http.method": "GET", "host.name": "node-1", "otel.status_code": "ERROR",
                "error": "boom", "otel.scope.name": "lib", "otel.scope.version": "1.0"},
       "annotations": [{"timestamp": 1700000000001000, "value": "cache.miss"},
                       {"timestamp": 1700000000002000, "value": "retry|{\"n\":2,\"why\":\"x\"}|1"}]},
      {"traceId": "00000000000000005af7183fb1d4cf5f", "id": "7b221d5bc9e6496c",
       "parentId": "6b221d5bc9e6496c", "name": "db", "kind": "CLIENT",
       "timestamp": 1700000000000100, "duration": 100,
       "localEndpoint": {"serviceName": "frontend"}, "tags": {"otel.scope.name": "lib"}},
      {"traceId": "abc", "id": "8b221d5bc9e6496c", "name": "bad id",
       "localEndpoint": {"serviceName": "other"}},
      {"traceId": "5af7183fb1d4cf5f", "id": "9b221d5bc9e6496c", "name": "inner",
       "localEndpoint": {"serviceName": "frontend"}, "tags": {"span.kind": "internal"}}
    ]"#;

    #[test]
    fn translates_as_the_collector_does() {
        let pb = zipkin_v2_json_to_otlp(SPANS.as_bytes()).unwrap();
        let req = scan(Arc::from(pb)).unwrap();
        assert_eq!(req.spans.len(), 3);
        assert_eq!(req.rejected.invalid_trace_id, 1);
        assert_eq!(req.resources.len(), 2, "one resource per local service");
        let buf = req.bytes();
        let root = &req.spans[0];
        let tid = u128::from_str_radix("5af7183fb1d4cf5f", 16).unwrap().to_be_bytes();
        assert_eq!(root.trace_id, tid, "64-bit ids are left-padded");
        let v = SpanView::parse(root.msg.get(buf)).unwrap();
        assert_eq!((v.name, v.kind, v.status_code, v.status_message), ("get /api", 2, 2, "boom"));
        assert_eq!(v.start_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(v.end_unix_nano - v.start_unix_nano, 2_500_000);
        let attrs: Vec<(&str, AnyValue)> =
            attrs_of(v.msg, 9).map(|kv| (kv.key, kv.value)).collect();
        assert!(attrs.contains(&("http.method", AnyValue::Str("GET"))));
        assert!(attrs.contains(&("net.host.port", AnyValue::Int(8080))));
        assert!(attrs.contains(&("peer.service", AnyValue::Str("browser"))));
        assert!(!attrs.iter().any(|(k, _)| k.starts_with("otel.") || *k == "error"));
        assert!(!attrs.iter().any(|(k, _)| *k == "host.name"), "resource tags leave the span");
        let resource: Vec<(&str, AnyValue)> = attrs_of(req.resource_of(root).resource.get(buf), 1)
            .map(|kv| (kv.key, kv.value))
            .collect();
        assert_eq!(
            resource,
            vec![
                ("service.name", AnyValue::Str("frontend")),
                ("host.name", AnyValue::Str("node-1"))
            ]
        );
        let scope = ScopeHead::parse(req.scope_of(root).scope.get(buf)).unwrap();
        assert_eq!((scope.name, scope.version), ("lib", "1.0"));
        let events: Vec<&[u8]> =
            crate::otlp::view::repeated(v.msg, 11).map(|e| e.unwrap()).collect();
        assert_eq!(events.len(), 2);
        let retry = crate::otlp::view::EventView::parse(events[1]).unwrap();
        assert_eq!((retry.name, retry.dropped_attributes_count), ("retry", 1));
        let ev_attrs: Vec<(&str, AnyValue)> =
            attrs_of(events[1], 3).map(|kv| (kv.key, kv.value)).collect();
        assert!(ev_attrs.contains(&("n", AnyValue::Int(2))));
        let child = SpanView::parse(req.spans[1].msg.get(buf)).unwrap();
        assert_eq!(child.parent_span_id, &[0x6b, 0x22, 0x1d, 0x5b, 0xc9, 0xe6, 0x49, 0x6c]);
        assert_eq!(child.kind, 3);
        let inner = SpanView::parse(req.spans[2].msg.get(buf)).unwrap();
        assert_eq!(inner.kind, 1, "span.kind=internal");
    }

    #[test]
    fn wrong_types_are_errors_with_a_path() {
        for (body, want) in [
            (r#"{"not": "an array"}"#, "expected a sequence"),
            (r#"[5]"#, "[0]: invalid type: integer `5`, expected a Zipkin v2 span object"),
            (r#"[{"traceId": 5}]"#, "[0].traceId: invalid type: integer `5`, expected a string"),
            (r#"[{"timestamp": "x"}]"#, "[0].timestamp: invalid type: string"),
            (r#"[{"timestamp": -5}]"#, "[0].timestamp: -5 is not a time in microseconds"),
            (r#"[{"tags": {"a": 1}}]"#, "[0].tags.a: invalid type: integer `1`, expected a string"),
            (r#"[{"localEndpoint": {"port": 70000}}]"#, "[0].localEndpoint.port"),
            (r#"[{"annotations": [3]}]"#, "[0].annotations[0]: invalid type: integer `3`"),
            ("[{", "EOF"),
            ("[] x", "trailing characters"),
        ] {
            let e = zipkin_v2_json_to_otlp(body.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
        assert!(zipkin_v2_json_to_otlp(b"[]").unwrap().is_empty());
    }
}

#[cfg(test)]
mod speed_probe {
    /// `cargo test --release -p tempo_core zipkin_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn zipkin_speed() {
        let one = r#"{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","parentId":"7b221d5bc9e6496c","name":"GET /api/v1/orders/{id}","kind":"SERVER","timestamp":1700000000000000,"duration":2500,"localEndpoint":{"serviceName":"svc-frontend"},"tags":{"http.method":"GET","http.route":"/api/v1/orders/{id}","http.status_code":"200","net.peer.name":"svc-cart","user.id":"user-123","db.system":"redis","retry":"false","payload.bytes":"12345","service.name":"svc-frontend","service.namespace":"shop","k8s.pod.name":"svc-frontend-7d9f1","host.name":"node-1","telemetry.sdk.language":"python","deployment.environment":"prod","otel.scope.name":"bench"}}"#;
        let body = format!("[{}]", vec![one; 1000].join(","));
        let t = std::time::Instant::now();
        let n = 200;
        for _ in 0..n {
            std::hint::black_box(super::zipkin_v2_json_to_otlp(body.as_bytes()).unwrap());
        }
        let per = t.elapsed() / (n * 1000);
        let t2 = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(
                serde_json::from_slice::<serde_json::Value>(body.as_bytes()).unwrap(),
            );
        }
        println!(
            "translate {per:?}/span, Value parse alone {:?}/span, {} bytes/span",
            t2.elapsed() / (n * 1000),
            body.len() / 1000
        );
    }
}
