//! Zipkin v1 JSON (`POST /api/v1/spans`, an array of spans with `annotations` and
//! `binaryAnnotations`), converted by the [`super::v1`] rules.
//!
//! Fields are typed as the collector's Go structs type them (`timestamp` and
//! `duration` integers, ids hex strings; endpoints as in v2, ports 0..65535); null
//! reads as absent. A binary
//! annotation's `value` may be a string, boolean or number and its optional `type`
//! (`BOOL`, `BYTES`, `I16`, `I32`, `I64`, `DOUBLE`, `STRING`) types it: `BOOL`
//! takes `true`/`false` (or those strings), the integer types an integer (or a
//! decimal string) in range, `DOUBLE` a number (or numeric string), `STRING` and
//! `BYTES` (base64 text, as the thrift reader writes bytes) a string. Untyped
//! values keep their JSON type; the collector itself accepts only strings here.

use std::marker::PhantomData;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use super::v1::{self, Host, HostNames, V1Annotation, V1Binary, V1Span};
use super::v2_json::{opt_str, parse, Borrowed};
use super::{span_path, to_otlp, Endpoint, Id, Rules, Str, Value};

/// Zipkin v1 JSON (an array of spans) to OTLP protobuf: spans grouped into a
/// `ResourceSpans` per local endpoint.
pub fn zipkin_v1_json_to_otlp(body: &[u8]) -> Result<Vec<u8>, String> {
    let spans: Vec<Option<JsonSpan<'_>>> = parse(body, |path, e| span_path(path, &e))?;
    let mut out = Vec::with_capacity(spans.len());
    for (i, s) in spans.into_iter().enumerate() {
        if let Some(s) = s {
            let s = s.into_v1().map_err(|e| format!("span {i}: {e}"))?;
            out.push(v1::to_span(s, HostNames::NonEmpty));
        }
    }
    Ok(to_otlp(&out, Rules::V1))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a Zipkin v1 span object")]
struct JsonSpan<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    trace_id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    parent_id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    name: Option<Str<'a>>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(borrow, default)]
    annotations: Option<Vec<Option<JsonAnnotation<'a>>>>,
    #[serde(borrow, default)]
    binary_annotations: Option<Vec<Option<JsonBinary<'a>>>>,
}

#[derive(Deserialize)]
#[serde(expecting = "a Zipkin v1 annotation object")]
struct JsonAnnotation<'a> {
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    value: Option<Str<'a>>,
    #[serde(borrow, default)]
    endpoint: Option<Endpoint<'a>>,
}

#[derive(Deserialize)]
#[serde(expecting = "a Zipkin v1 binary annotation object")]
struct JsonBinary<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    key: Option<Str<'a>>,
    #[serde(borrow, default)]
    value: Scalar<'a>,
    #[serde(rename = "type", default)]
    kind: Option<AnnotationType>,
    #[serde(borrow, default)]
    endpoint: Option<Endpoint<'a>>,
}

/// A binary annotation value as sent.
#[derive(Default)]
enum Scalar<'a> {
    #[default]
    Null,
    Str(Str<'a>),
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl std::fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Scalar::Null => f.write_str("null"),
            Scalar::Str(s) => write!(f, "{s:?}"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, i: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(i))
            }
            fn visit_u64<E: de::Error>(self, u: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(u).map_or(Scalar::Float(u as f64), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(x))
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Str::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Str::Owned(s.to_string())))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// zipkincore.thrift's `AnnotationType`, by name.
#[derive(Clone, Copy, Debug)]
enum AnnotationType {
    Bool,
    Bytes,
    I16,
    I32,
    I64,
    Double,
    String,
}

impl<'de> Deserialize<'de> for AnnotationType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = Borrowed::deserialize(d)?.0;
        Ok(match name.as_ref() {
            "BOOL" => AnnotationType::Bool,
            "BYTES" => AnnotationType::Bytes,
            "I16" => AnnotationType::I16,
            "I32" => AnnotationType::I32,
            "I64" => AnnotationType::I64,
            "DOUBLE" => AnnotationType::Double,
            "STRING" => AnnotationType::String,
            other => return Err(de::Error::custom(format!("unknown annotation type {other:?}"))),
        })
    }
}

impl AnnotationType {
    fn name(self) -> &'static str {
        match self {
            AnnotationType::Bool => "BOOL",
            AnnotationType::Bytes => "BYTES",
            AnnotationType::I16 => "I16",
            AnnotationType::I32 => "I32",
            AnnotationType::I64 => "I64",
            AnnotationType::Double => "DOUBLE",
            AnnotationType::String => "STRING",
        }
    }
}

/// A binary annotation's attribute value (see the module doc).
fn typed(v: Scalar<'_>, kind: Option<AnnotationType>) -> Result<Value<'_>, String> {
    use AnnotationType as T;
    let invalid =
        |k: AnnotationType, v: &Scalar<'_>| format!("{v} is not a valid {} value", k.name());
    match (kind, v) {
        (None | Some(T::String | T::Bytes), Scalar::Str(s)) => Ok(Value::Str(s)),
        (None | Some(T::String), Scalar::Null) => Ok(Value::Str(Str::Borrowed(""))),
        (None | Some(T::Bool), Scalar::Bool(b)) => Ok(Value::Bool(b)),
        (Some(T::Bool), Scalar::Str(s)) if s == "true" || s == "false" => {
            Ok(Value::Bool(s == "true"))
        }
        (None, Scalar::Int(i)) => Ok(Value::Int(i)),
        (None | Some(T::Double), Scalar::Float(x)) => Ok(Value::Double(x)),
        (Some(T::Double), Scalar::Int(i)) => Ok(Value::Double(i as f64)),
        (Some(T::Double), Scalar::Str(s)) => {
            s.parse().map(Value::Double).map_err(|_| invalid(T::Double, &Scalar::Str(s)))
        }
        (Some(k @ (T::I16 | T::I32 | T::I64)), v) => {
            let (min, max) = match k {
                T::I16 => (i16::MIN.into(), i16::MAX.into()),
                T::I32 => (i32::MIN.into(), i32::MAX.into()),
                _ => (i64::MIN, i64::MAX),
            };
            let i = match &v {
                Scalar::Int(i) => Some(*i),
                Scalar::Str(s) => s.parse::<i64>().ok(),
                _ => None,
            };
            i.filter(|i| (min..=max).contains(i)).map(Value::Int).ok_or_else(|| invalid(k, &v))
        }
        (k, v) => Err(invalid(k.unwrap_or(T::String), &v)),
    }
}

impl<'a> JsonSpan<'a> {
    fn into_v1(self) -> Result<V1Span<'a>, String> {
        let hex = |s: &Option<Str<'_>>, bytes| Id::hex(s.as_deref().unwrap_or(""), bytes);
        let annotations = self.annotations.unwrap_or_default().into_iter().flatten();
        let mut binary_annotations = Vec::new();
        for (j, b) in self.binary_annotations.unwrap_or_default().into_iter().enumerate() {
            let Some(b) = b else { continue };
            let value =
                typed(b.value, b.kind).map_err(|e| format!("binaryAnnotations[{j}].value: {e}"))?;
            binary_annotations.push(V1Binary {
                key: b.key.unwrap_or_default(),
                value,
                host: b.endpoint.map(Host::from),
            });
        }
        Ok(V1Span {
            trace_id: hex(&self.trace_id, 16),
            id: hex(&self.id, 8),
            parent_id: self.parent_id.filter(|p| !p.is_empty()).map(|p| Id::hex(&p, 8)),
            name: self.name.unwrap_or_default(),
            timestamp: self.timestamp.filter(|t| *t != 0),
            duration: self.duration.unwrap_or(0),
            annotations: annotations
                .map(|a| V1Annotation {
                    timestamp: a.timestamp.unwrap_or(0),
                    value: a.value.unwrap_or_default(),
                    host: a.endpoint.map(Host::from),
                })
                .collect(),
            binary_annotations,
        })
    }
}
