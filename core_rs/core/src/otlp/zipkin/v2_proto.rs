//! Zipkin v2 protobuf (`zipkin2/zipkin.proto` `ListOfSpans`, `POST /api/v2/spans`
//! with `Content-Type: application/x-protobuf`), read with the zero-copy `pb` reader.
//!
//! As Go's decoder does: unknown fields, and known ones with another wire type, are
//! skipped; the last of a repeated scalar wins; repeated message fields merge;
//! strings must be UTF-8. Unlike zipkin-go, an 8-byte trace id is accepted (and
//! left-padded) and an invalid id drops just its span. Unknown kinds are unspecified;
//! `port` keeps its low 16 bits (zipkin-go's `uint16(port)`); `debug` and `shared`
//! are ignored, as the collector ignores them.

use crate::pb::{Field, PbError, Reader, Value as Wire};

use super::{ip_string, to_otlp, Annotation, Endpoint, Id, Rules, Span, Str, Value};
use super::{KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER};

/// [`zipkin_v2_proto`] without `parse_string_tags`.
#[cfg(test)]
pub fn zipkin_v2_proto_to_otlp(body: &[u8]) -> Result<Vec<u8>, String> {
    zipkin_v2_proto(body, false)
}

/// Zipkin v2 protobuf `ListOfSpans` to OTLP protobuf (grouped as the JSON form is),
/// with the receiver's `parse_string_tags` when set.
pub fn zipkin_v2_proto(body: &[u8], parse_string_tags: bool) -> Result<Vec<u8>, String> {
    let mut spans = Vec::new();
    let mut r = Reader::new(body);
    while let Some(f) = r.next_field().map_err(|e| message(&e))? {
        if let (1, Wire::Bytes { data, .. }) = (f.number, f.value) {
            let i = spans.len();
            spans.push(span(data).map_err(|e| format!("span {i}: {e}"))?);
        }
    }
    Ok(to_otlp(&spans, Rules::v2(parse_string_tags)))
}

/// An error inside a nested message: the field it names ("" for the message
/// itself) and the wire error.
type Leaf = (&'static str, PbError);

fn message(e: &PbError) -> String {
    match e {
        PbError::InvalidUtf8 { .. } => "not valid UTF-8".to_string(),
        e => e.to_string(),
    }
}

/// `outer.leaf: error`.
fn nest(outer: impl std::fmt::Display, (leaf, e): Leaf) -> String {
    match leaf {
        "" => format!("{outer}: {}", message(&e)),
        leaf => format!("{outer}.{leaf}: {}", message(&e)),
    }
}

fn utf8<'a>(f: &Field<'a>, leaf: &'static str) -> Result<Str<'a>, Leaf> {
    f.as_str().map(Str::Borrowed).map_err(|e| (leaf, e))
}

fn span(buf: &[u8]) -> Result<Span<'_>, String> {
    let mut s = Span::empty();
    let mut r = Reader::new(buf);
    while let Some(f) = r.next_field().map_err(|e| message(&e))? {
        match (f.number, f.value) {
            (1, Wire::Bytes { data, .. }) => s.trace_id = Id::raw(data, 16),
            (2, Wire::Bytes { data, .. }) => {
                s.parent_id = (!data.is_empty()).then(|| Id::raw(data, 8));
            }
            (3, Wire::Bytes { data, .. }) => s.id = Id::raw(data, 8),
            (4, Wire::Varint(k)) => {
                s.kind = match k {
                    1 => KIND_CLIENT,
                    2 => KIND_SERVER,
                    3 => KIND_PRODUCER,
                    4 => KIND_CONSUMER,
                    _ => 0,
                };
            }
            (5, Wire::Bytes { .. }) => {
                s.name = Some(utf8(&f, "name").map_err(|(l, e)| format!("{l}: {}", message(&e)))?);
            }
            (6, Wire::Fixed64(t)) => s.timestamp = t,
            (7, Wire::Varint(d)) => s.duration = d,
            (8, Wire::Bytes { data, .. }) => {
                endpoint(data, s.local_endpoint.get_or_insert_with(Endpoint::default))
                    .map_err(|e| nest("local_endpoint", e))?;
            }
            (9, Wire::Bytes { data, .. }) => {
                endpoint(data, s.remote_endpoint.get_or_insert_with(Endpoint::default))
                    .map_err(|e| nest("remote_endpoint", e))?;
            }
            (10, Wire::Bytes { data, .. }) => {
                let list = s.annotations.get_or_insert_with(Vec::new);
                let a = annotation(data)
                    .map_err(|e| nest(format_args!("annotations[{}]", list.len()), e))?;
                list.push(a);
            }
            (11, Wire::Bytes { data, .. }) => {
                let (k, v) =
                    tag(data).map_err(|e| nest(format_args!("tags[{}]", s.tags.len()), e))?;
                s.tags.push((k, Value::Str(v)));
            }
            _ => {}
        }
    }
    Ok(s)
}

/// Merges an `Endpoint` message into `e`.
fn endpoint<'a>(buf: &'a [u8], e: &mut Endpoint<'a>) -> Result<(), Leaf> {
    let mut r = Reader::new(buf);
    while let Some(f) = r.next_field().map_err(|e| ("", e))? {
        match (f.number, f.value) {
            (1, Wire::Bytes { .. }) => e.service_name = Some(utf8(&f, "service_name")?),
            (2, Wire::Bytes { data, .. }) => e.ipv4 = ip_string(data).map(Str::Owned),
            (3, Wire::Bytes { data, .. }) => e.ipv6 = ip_string(data).map(Str::Owned),
            (4, Wire::Varint(p)) => e.port = Some(p as u16),
            _ => {}
        }
    }
    Ok(())
}

fn annotation(buf: &[u8]) -> Result<Annotation<'_>, Leaf> {
    let mut a = Annotation { timestamp: 0, value: Str::Borrowed("") };
    let mut r = Reader::new(buf);
    while let Some(f) = r.next_field().map_err(|e| ("", e))? {
        match (f.number, f.value) {
            (1, Wire::Fixed64(t)) => a.timestamp = t,
            (2, Wire::Bytes { .. }) => a.value = utf8(&f, "value")?,
            _ => {}
        }
    }
    Ok(a)
}

/// A `map<string, string>` entry.
fn tag(buf: &[u8]) -> Result<(Str<'_>, Str<'_>), Leaf> {
    let (mut k, mut v) = (Str::Borrowed(""), Str::Borrowed(""));
    let mut r = Reader::new(buf);
    while let Some(f) = r.next_field().map_err(|e| ("", e))? {
        match (f.number, f.value) {
            (1, Wire::Bytes { .. }) => k = utf8(&f, "key")?,
            (2, Wire::Bytes { .. }) => v = utf8(&f, "value")?,
            _ => {}
        }
    }
    Ok((k, v))
}
