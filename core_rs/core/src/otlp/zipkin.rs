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

use std::collections::HashMap;

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
const SCOPE_TAGS: [(&str, &str); 2] =
    [("otel.scope.name", "otel.scope.version"), ("otel.library.name", "otel.library.version")];

fn is_resource_tag(key: &str) -> bool {
    RESOURCE_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Hex id of `bytes` bytes; a 16-character trace id is left-padded to 32.
fn hex_id(s: &str, bytes: usize) -> Vec<u8> {
    let padded;
    let s = if bytes == 16 && s.len() == 16 {
        padded = format!("{:0>32}", s);
        padded.as_str()
    } else {
        s
    };
    if s.len() != bytes * 2 {
        return vec![0]; // wrong length: the validator rejects the span
    }
    let mut out = Vec::with_capacity(bytes);
    for pair in s.as_bytes().chunks(2) {
        let hi = (pair[0] as char).to_digit(16);
        let lo = (pair[1] as char).to_digit(16);
        match (hi, lo) {
            (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
            _ => return vec![0],
        }
    }
    out
}

fn err(path: &str, what: &str) -> String {
    format!("{path}: {what}")
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(err(&format!("{path}.{key}"), "expected a string")),
    }
}

/// Microseconds: a non-negative JSON number (fractions are floored).
fn micros(obj: &Map<String, Value>, key: &str, path: &str) -> Result<u64, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.is_finite()).map(|f| f as u64))
            .ok_or_else(|| err(&format!("{path}.{key}"), "expected a non-negative number")),
        Some(_) => Err(err(&format!("{path}.{key}"), "expected a number of microseconds")),
    }
}

/// A Zipkin endpoint's fields.
#[derive(Default, Clone, Copy)]
struct Endpoint<'a> {
    service: &'a str,
    ipv4: &'a str,
    ipv6: &'a str,
    port: u64,
}

fn endpoint<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Endpoint<'a>, String> {
    let path = format!("{path}.{key}");
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Endpoint::default()),
        Some(Value::Object(e)) => Ok(Endpoint {
            service: string(e, "serviceName", &path)?,
            ipv4: string(e, "ipv4", &path)?,
            ipv6: string(e, "ipv6", &path)?,
            port: match e.get("port") {
                None | Some(Value::Null) => 0,
                Some(Value::Number(n)) => n
                    .as_u64()
                    .filter(|p| *p <= 65535)
                    .ok_or_else(|| err(&format!("{path}.port"), "expected a port number"))?,
                Some(_) => return Err(err(&format!("{path}.port"), "expected a port number")),
            },
        }),
        Some(_) => Err(err(&path, "expected an object")),
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

fn kind_number(kind: &str, tags: &mut HashMap<&str, &str>) -> u64 {
    match kind {
        "CLIENT" => 3,
        "SERVER" => 2,
        "PRODUCER" => 4,
        "CONSUMER" => 5,
        _ => match tags.remove(TAG_SPAN_KIND) {
            Some("internal") => 1,
            _ => 0,
        },
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

fn translate<'a>(obj: &'a Map<String, Value>, path: &str) -> Result<Translated<'a>, String> {
    let trace_id = hex_id(string(obj, "traceId", path)?, 16);
    let span_id = hex_id(string(obj, "id", path)?, 8);
    let parent = string(obj, "parentId", path)?;
    let name = string(obj, "name", path)?;
    let kind = string(obj, "kind", path)?;
    let start = micros(obj, "timestamp", path)?.saturating_mul(1000);
    let duration = micros(obj, "duration", path)?.saturating_mul(1000);
    let local = endpoint(obj, "localEndpoint", path)?;
    let remote = endpoint(obj, "remoteEndpoint", path)?;
    let mut tags: HashMap<&str, &str> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    match obj.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Object(t)) => {
            for (k, v) in t {
                let Value::String(v) = v else {
                    return Err(err(&format!("{path}.tags.{k}"), "tag values must be strings"));
                };
                tags.insert(k, v);
                order.push(k);
            }
        }
        Some(_) => return Err(err(&format!("{path}.tags"), "expected an object")),
    }
    let annotations: &[Value] = match obj.get("annotations") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(a)) => a,
        Some(_) => return Err(err(&format!("{path}.annotations"), "expected an array")),
    };

    let scope = SCOPE_TAGS
        .iter()
        .find_map(|(n, v)| tags.get(n).map(|name| (*name, tags.get(v).copied().unwrap_or(""))))
        .unwrap_or(("", ""));
    for (n, v) in SCOPE_TAGS {
        tags.remove(n);
        tags.remove(v);
    }
    let kind = kind_number(kind, &mut tags);
    let mut code = 0;
    let mut message = "";
    if let Some(c) = tags.remove(TAG_STATUS_CODE) {
        code = status_code(c).unwrap_or(0);
        message = tags.remove(TAG_STATUS_DESCRIPTION).unwrap_or("");
    }
    if let Some(e) = tags.remove(TAG_ERROR) {
        code = 2;
        if message.is_empty() && e != "true" {
            message = e;
        }
    }
    let trace_state = tags.remove(TAG_TRACE_STATE).unwrap_or("");
    let resource_tags: Vec<(&str, &str)> = order
        .iter()
        .filter(|k| is_resource_tag(k))
        .filter_map(|k| Some((*k, tags.remove(k)?)))
        .collect();

    let mut span = Vec::with_capacity(256);
    put_bytes_field(&mut span, 1, &trace_id);
    put_bytes_field(&mut span, 2, &span_id);
    if !trace_state.is_empty() {
        put_bytes_field(&mut span, 3, trace_state.as_bytes());
    }
    if !parent.is_empty() && parent != string(obj, "id", path)? {
        put_bytes_field(&mut span, 4, &hex_id(parent, 8));
    }
    put_bytes_field(&mut span, 5, name.as_bytes());
    if kind != 0 {
        put_varint_field(&mut span, 6, kind);
    }
    put_fixed64_field(&mut span, 7, start);
    put_fixed64_field(&mut span, 8, start.saturating_add(duration));
    let mut links = Vec::new();
    for k in &order {
        let Some(v) = tags.get(k).copied() else { continue };
        if let Some(n) = k.strip_prefix("otlp.link.") {
            if n.parse::<u32>().is_ok() {
                links.push(v);
                continue;
            }
        }
        put_kv(&mut span, 9, k, &Attr::Str(v));
    }
    if !local.ipv4.is_empty() || !local.ipv6.is_empty() {
        let ip = if local.ipv6.is_empty() { local.ipv4 } else { local.ipv6 };
        put_kv(&mut span, 9, "net.host.ip", &Attr::Str(ip));
    }
    if local.port > 0 {
        put_kv(&mut span, 9, "net.host.port", &Attr::Int(local.port as i64));
    }
    if !remote.service.is_empty() {
        put_kv(&mut span, 9, "peer.service", &Attr::Str(remote.service));
    }
    if !remote.ipv4.is_empty() || !remote.ipv6.is_empty() {
        let ip = if remote.ipv6.is_empty() { remote.ipv4 } else { remote.ipv6 };
        put_kv(&mut span, 9, "net.peer.ip", &Attr::Str(ip));
    }
    if remote.port > 0 {
        put_kv(&mut span, 9, "net.peer.port", &Attr::Int(remote.port as i64));
    }
    for (i, a) in annotations.iter().enumerate() {
        let path = format!("{path}.annotations[{i}]");
        let Value::Object(a) = a else { return Err(err(&path, "expected an object")) };
        let time = micros(a, "timestamp", &path)?.saturating_mul(1000);
        let value = string(a, "value", &path)?;
        put_message(&mut span, 11, |e| {
            put_fixed64_field(e, 1, time);
            match unpack(value, 1) {
                Some((name, attrs, dropped)) => {
                    put_bytes_field(e, 2, name[0].as_bytes());
                    put_json_attrs(e, 3, &attrs);
                    if dropped > 0 {
                        put_varint_field(e, 4, dropped as u64);
                    }
                }
                None => put_bytes_field(e, 2, value.as_bytes()),
            }
        });
    }
    for v in links {
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
    Ok(Translated { service: local.service, scope, resource_tags, span })
}

/// Zipkin v2 JSON (an array of spans) to OTLP protobuf: spans grouped into a
/// `ResourceSpans` per local service and a `ScopeSpans` per instrumentation scope.
pub fn zipkin_v2_json_to_otlp(body: &[u8]) -> Result<Vec<u8>, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Value::Array(spans) = &doc else {
        return Err("expected a JSON array of Zipkin v2 spans".to_string());
    };
    let mut translated = Vec::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        let path = format!("[{i}]");
        match s {
            Value::Object(obj) => translated.push(translate(obj, &path)?),
            Value::Null => {}
            _ => return Err(err(&path, "expected a span object")),
        }
    }
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
            (r#"{"not": "an array"}"#, "expected a JSON array"),
            (r#"[5]"#, "[0]: expected a span object"),
            (r#"[{"traceId": 5}]"#, "[0].traceId: expected a string"),
            (r#"[{"timestamp": "x"}]"#, "[0].timestamp: expected a number"),
            (r#"[{"tags": {"a": 1}}]"#, "[0].tags.a: tag values must be strings"),
            (r#"[{"localEndpoint": {"port": 70000}}]"#, "[0].localEndpoint.port"),
            (r#"[{"annotations": [3]}]"#, "[0].annotations[0]: expected an object"),
            ("[{", "EOF"),
        ] {
            let e = zipkin_v2_json_to_otlp(body.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
        assert!(zipkin_v2_json_to_otlp(b"[]").unwrap().is_empty());
    }
}
