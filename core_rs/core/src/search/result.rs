//! Search results: one [`TraceResult`] per matched trace, combined across sources, and
//! rendered as Tempo's `TraceSearchMetadata` JSON (proto3 JSON: 64-bit numbers as strings,
//! hex ids, empty fields left out).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::fields::hex;
use super::value::{go_duration, kind_name, status_name, Value};

/// Tempo's root names when the root span was not received.
pub const ROOT_NOT_RECEIVED: &str = "<root span not yet received>";

/// An attribute value as returned (OTLP `AnyValue`).
#[derive(Clone, Debug, PartialEq)]
pub enum OutValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// An array attribute's elements (OTLP `arrayValue`).
    Array(Vec<OutValue>),
}

impl OutValue {
    /// Tempo's `Static.AsAnyValue`: statuses, kinds and durations become strings.
    pub fn from_value(v: &Value<'_>) -> Option<OutValue> {
        Some(match *v {
            Value::Nil => return None,
            Value::Int(x) => OutValue::Int(x),
            Value::Float(x) => OutValue::Float(x),
            Value::Str(s) => OutValue::Str(s.to_string()),
            Value::Bool(b) => OutValue::Bool(b),
            Value::Duration(d) => OutValue::Str(go_duration(d)),
            Value::Status(c) => OutValue::Str(status_name(c).to_string()),
            Value::Kind(c) => OutValue::Str(kind_name(c).to_string()),
            Value::Array(_) => {
                OutValue::Array(v.elements().filter_map(|e| OutValue::from_value(&e)).collect())
            }
        })
    }

    pub fn to_json(&self) -> Json {
        match self {
            OutValue::Str(s) => json!({ "stringValue": s }),
            OutValue::Int(i) => json!({ "intValue": i.to_string() }),
            OutValue::Float(f) if f.is_finite() => json!({ "doubleValue": f }),
            OutValue::Float(f) => json!({ "doubleValue": f.to_string() }),
            OutValue::Bool(b) => json!({ "boolValue": b }),
            OutValue::Array(items) => {
                json!({ "arrayValue": { "values": items.iter().map(|v| v.to_json()).collect::<Vec<_>>() } })
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpanOut {
    pub span_id: [u8; 8],
    pub name: Option<String>,
    pub start_ns: u64,
    pub duration_ns: u64,
    /// Keys are shared by every span of a search (the plan's returned fields).
    pub attrs: Vec<(Arc<str>, OutValue)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpansetOut {
    pub spans: Vec<SpanOut>,
    pub matched: u32,
    pub attrs: Vec<(String, OutValue)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    pub spans: u32,
    pub errors: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TraceResult {
    pub trace_id: [u8; 16],
    pub root_service: Option<String>,
    pub root_name: Option<String>,
    pub start_ns: u64,
    pub end_ns: u64,
    pub spansets: Vec<SpansetOut>,
    pub service_stats: BTreeMap<String, ServiceStats>,
}

impl TraceResult {
    /// Folds another part of the same trace (another block or source) into this one.
    pub fn combine(&mut self, o: TraceResult) {
        if self.root_service.is_none() {
            self.root_service = o.root_service;
        }
        if self.root_name.is_none() {
            self.root_name = o.root_name;
        }
        self.start_ns = self.start_ns.min(o.start_ns);
        self.end_ns = self.end_ns.max(o.end_ns);
        self.spansets.extend(o.spansets);
        for (svc, s) in o.service_stats {
            let e = self.service_stats.entry(svc).or_default();
            e.spans += s.spans;
            e.errors += s.errors;
        }
    }

    /// Tempo's `TraceSearchMetadata` JSON.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("traceID".into(), Json::String(trace_id_hex(&self.trace_id)));
        m.insert(
            "rootServiceName".into(),
            Json::String(self.root_service.clone().unwrap_or_else(|| ROOT_NOT_RECEIVED.into())),
        );
        if let Some(n) = self.root_name.as_ref().filter(|n| !n.is_empty()) {
            m.insert("rootTraceName".into(), Json::String(n.clone()));
        }
        m.insert("startTimeUnixNano".into(), Json::String(self.start_ns.to_string()));
        let ms = self.end_ns.saturating_sub(self.start_ns) / 1_000_000;
        if ms > 0 {
            m.insert("durationMs".into(), json!(ms.min(u32::MAX as u64)));
        }
        let sets: Vec<Json> = self.spansets.iter().map(spanset_json).collect();
        if let Some(first) = sets.first() {
            m.insert("spanSet".into(), first.clone());
        }
        m.insert("spanSets".into(), Json::Array(sets));
        if !self.service_stats.is_empty() {
            let stats: Map<String, Json> = self
                .service_stats
                .iter()
                .map(|(k, s)| {
                    let mut o = Map::new();
                    if s.spans > 0 {
                        o.insert("spanCount".into(), json!(s.spans));
                    }
                    if s.errors > 0 {
                        o.insert("errorCount".into(), json!(s.errors));
                    }
                    (k.clone(), Json::Object(o))
                })
                .collect();
            m.insert("serviceStats".into(), Json::Object(stats));
        }
        Json::Object(m)
    }
}

/// `traces` as a JSON array of `TraceSearchMetadata`, written straight into `out`: the
/// same bytes as serialising [`TraceResult::to_json`] of each (keys in sorted order),
/// without building the `Value` trees.
pub fn write_json_array(traces: &[TraceResult], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, t) in traces.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        t.write_json(out);
    }
    out.push(b']');
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec");
}

fn put_key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    put_str(out, k);
    out.push(b':');
}

fn put_num(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(n.to_string().as_bytes());
}

impl TraceResult {
    /// [`TraceResult::to_json`], serialised into `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let first = &mut true;
        out.push(b'{');
        let ms = self.end_ns.saturating_sub(self.start_ns) / 1_000_000;
        if ms > 0 {
            put_key(out, first, "durationMs");
            put_num(out, ms.min(u32::MAX as u64));
        }
        put_key(out, first, "rootServiceName");
        put_str(out, self.root_service.as_deref().unwrap_or(ROOT_NOT_RECEIVED));
        if let Some(n) = self.root_name.as_ref().filter(|n| !n.is_empty()) {
            put_key(out, first, "rootTraceName");
            put_str(out, n);
        }
        if !self.service_stats.is_empty() {
            put_key(out, first, "serviceStats");
            out.push(b'{');
            let f = &mut true;
            for (k, s) in &self.service_stats {
                put_key(out, f, k);
                out.push(b'{');
                let g = &mut true;
                if s.errors > 0 {
                    put_key(out, g, "errorCount");
                    put_num(out, s.errors as u64);
                }
                if s.spans > 0 {
                    put_key(out, g, "spanCount");
                    put_num(out, s.spans as u64);
                }
                out.push(b'}');
            }
            out.push(b'}');
        }
        if let Some(s) = self.spansets.first() {
            put_key(out, first, "spanSet");
            write_spanset(out, s);
        }
        put_key(out, first, "spanSets");
        out.push(b'[');
        for (i, s) in self.spansets.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_spanset(out, s);
        }
        out.push(b']');
        put_key(out, first, "startTimeUnixNano");
        put_str(out, &self.start_ns.to_string());
        put_key(out, first, "traceID");
        put_str(out, &trace_id_hex(&self.trace_id));
        out.push(b'}');
    }
}

fn write_attrs<K: AsRef<str>>(out: &mut Vec<u8>, attrs: &[(K, OutValue)]) {
    out.push(b'[');
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"key\":");
        put_str(out, k.as_ref());
        out.extend_from_slice(b",\"value\":");
        write_value(out, v);
        out.push(b'}');
    }
    out.push(b']');
}

/// An `AnyValue` in JSON (`{"stringValue":…}`, arrays as `{"arrayValue":{"values":[…]}}`).
fn write_value(out: &mut Vec<u8>, v: &OutValue) {
    out.push(b'{');
    match v {
        OutValue::Str(s) => {
            out.extend_from_slice(b"\"stringValue\":");
            put_str(out, s);
        }
        OutValue::Int(i) => {
            out.extend_from_slice(b"\"intValue\":");
            put_str(out, &i.to_string());
        }
        OutValue::Float(f) if f.is_finite() => {
            out.extend_from_slice(b"\"doubleValue\":");
            serde_json::to_writer(&mut *out, f).expect("writing to a Vec");
        }
        OutValue::Float(f) => {
            out.extend_from_slice(b"\"doubleValue\":");
            put_str(out, &f.to_string());
        }
        OutValue::Bool(b) => {
            out.extend_from_slice(if *b { b"\"boolValue\":true" } else { b"\"boolValue\":false" });
        }
        OutValue::Array(items) => {
            out.extend_from_slice(b"\"arrayValue\":{\"values\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.extend_from_slice(b"]}");
        }
    }
    out.push(b'}');
}

fn write_spanset(out: &mut Vec<u8>, s: &SpansetOut) {
    let first = &mut true;
    out.push(b'{');
    if !s.attrs.is_empty() {
        put_key(out, first, "attributes");
        write_attrs(out, &s.attrs);
    }
    put_key(out, first, "matched");
    put_num(out, s.matched as u64);
    put_key(out, first, "spans");
    out.push(b'[');
    for (i, sp) in s.spans.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let f = &mut true;
        out.push(b'{');
        if !sp.attrs.is_empty() {
            put_key(out, f, "attributes");
            write_attrs(out, &sp.attrs);
        }
        put_key(out, f, "durationNanos");
        put_str(out, &sp.duration_ns.to_string());
        if let Some(n) = &sp.name {
            put_key(out, f, "name");
            put_str(out, n);
        }
        put_key(out, f, "spanID");
        put_str(out, &hex(&sp.span_id));
        put_key(out, f, "startTimeUnixNano");
        put_str(out, &sp.start_ns.to_string());
        out.push(b'}');
    }
    out.push(b']');
    out.push(b'}');
}

fn attrs_json<K: AsRef<str>>(attrs: &[(K, OutValue)]) -> Json {
    Json::Array(
        attrs.iter().map(|(k, v)| json!({ "key": k.as_ref(), "value": v.to_json() })).collect(),
    )
}

fn spanset_json(s: &SpansetOut) -> Json {
    let spans: Vec<Json> = s
        .spans
        .iter()
        .map(|sp| {
            let mut m = Map::new();
            m.insert("spanID".into(), Json::String(hex(&sp.span_id)));
            if let Some(n) = &sp.name {
                m.insert("name".into(), Json::String(n.clone()));
            }
            m.insert("startTimeUnixNano".into(), Json::String(sp.start_ns.to_string()));
            m.insert("durationNanos".into(), Json::String(sp.duration_ns.to_string()));
            if !sp.attrs.is_empty() {
                m.insert("attributes".into(), attrs_json(&sp.attrs));
            }
            Json::Object(m)
        })
        .collect();
    let mut m = Map::new();
    m.insert("spans".into(), Json::Array(spans));
    m.insert("matched".into(), json!(s.matched));
    if !s.attrs.is_empty() {
        m.insert("attributes".into(), attrs_json(&s.attrs));
    }
    Json::Object(m)
}

/// A trace id as Tempo's search prints it: hex with leading zeros trimmed.
pub fn trace_id_hex(id: &[u8]) -> String {
    let h = hex(id);
    let t = h.trim_start_matches('0');
    if t.is_empty() {
        "0".to_string()
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: u8, name: Option<&str>, attrs: Vec<(Arc<str>, OutValue)>) -> SpanOut {
        SpanOut { span_id: [id; 8], name: name.map(Into::into), start_ns: 7, duration_ns: 9, attrs }
    }

    #[test]
    fn search_json_is_written_as_the_value_tree_serialises() {
        let attrs = vec![
            ("s \"q\" \u{1}é".to_string(), OutValue::Str("v\n".into())),
            ("i".to_string(), OutValue::Int(-5)),
            ("f".to_string(), OutValue::Float(0.1)),
            ("g".to_string(), OutValue::Float(1e300 * 10.0)),
            ("n".to_string(), OutValue::Float(f64::NAN)),
            ("b".to_string(), OutValue::Bool(true)),
            ("c".to_string(), OutValue::Bool(false)),
        ];
        let mut stats = BTreeMap::new();
        stats.insert("svc-b".to_string(), ServiceStats { spans: 3, errors: 0 });
        stats.insert("svc-a".to_string(), ServiceStats { spans: 2, errors: 1 });
        stats.insert("svc-c".to_string(), ServiceStats { spans: 0, errors: 0 });
        let full = TraceResult {
            trace_id: [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
            root_service: Some("root".into()),
            root_name: Some("GET /".into()),
            start_ns: 1_700_000_000_000_000_000,
            end_ns: 1_700_000_000_900_000_000,
            spansets: vec![
                SpansetOut {
                    spans: vec![
                        span(
                            1,
                            Some("a"),
                            attrs.iter().map(|(k, v)| (Arc::from(k.as_str()), v.clone())).collect(),
                        ),
                        span(2, None, vec![]),
                    ],
                    matched: 2,
                    attrs: attrs.clone(),
                },
                SpansetOut { spans: vec![], matched: 0, attrs: vec![] },
            ],
            service_stats: stats,
        };
        let bare = TraceResult {
            trace_id: [0; 16],
            root_service: None,
            root_name: Some(String::new()),
            start_ns: 5,
            end_ns: 6,
            spansets: vec![],
            service_stats: BTreeMap::new(),
        };
        for traces in [vec![], vec![full.clone()], vec![bare.clone(), full, bare]] {
            let want: Vec<Json> = traces.iter().map(TraceResult::to_json).collect();
            let mut got = Vec::new();
            write_json_array(&traces, &mut got);
            assert_eq!(String::from_utf8(got).unwrap(), serde_json::to_string(&want).unwrap());
        }
    }
}
