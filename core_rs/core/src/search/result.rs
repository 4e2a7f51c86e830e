//! Search results: one [`TraceResult`] per matched trace, combined across sources, and
//! rendered as Tempo's `TraceSearchMetadata` JSON (proto3 JSON: 64-bit numbers as strings,
//! hex ids, empty fields left out).

use std::collections::BTreeMap;

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
        })
    }

    pub fn to_json(&self) -> Json {
        match self {
            OutValue::Str(s) => json!({ "stringValue": s }),
            OutValue::Int(i) => json!({ "intValue": i.to_string() }),
            OutValue::Float(f) if f.is_finite() => json!({ "doubleValue": f }),
            OutValue::Float(f) => json!({ "doubleValue": f.to_string() }),
            OutValue::Bool(b) => json!({ "boolValue": b }),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpanOut {
    pub span_id: Vec<u8>,
    pub name: Option<String>,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub attrs: Vec<(String, OutValue)>,
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

fn attrs_json(attrs: &[(String, OutValue)]) -> Json {
    Json::Array(attrs.iter().map(|(k, v)| json!({ "key": k, "value": v.to_json() })).collect())
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
