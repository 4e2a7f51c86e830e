//! Borrowed views of OTLP protobuf messages, shared by validation ([`super::scan`])
//! and the columnar builder, so both read the wire the same way.
//!
//! Protobuf semantics as Go's decoder applies them: unknown fields are skipped, a
//! known field number with an unexpected wire type is skipped like an unknown
//! field, the last value of a repeated scalar wins, strings must be UTF-8.

use crate::pb::{PbError, Reader, Value};

/// Deepest nesting of array / kvlist values accepted.
pub const MAX_VALUE_DEPTH: usize = 64;

/// One `AnyValue`, validated. Array and kvlist values keep their encoded
/// `ArrayValue` / `KeyValueList` message bytes (already validated).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnyValue<'a> {
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    Array(&'a [u8]),
    KvList(&'a [u8]),
}

#[inline]
fn utf8(field: u32, b: &[u8]) -> Result<&str, PbError> {
    simdutf8::basic::from_utf8(b).map_err(|_| PbError::InvalidUtf8 { field })
}

impl<'a> AnyValue<'a> {
    /// Parses and fully validates an `AnyValue` message (nested values included).
    pub fn parse(buf: &'a [u8], depth: usize) -> Result<AnyValue<'a>, PbError> {
        let v = AnyValue::parse_shallow(buf)?;
        match v {
            AnyValue::Array(data) | AnyValue::KvList(data) if depth >= MAX_VALUE_DEPTH => {
                let _ = data;
                Err(PbError::TooDeep)
            }
            AnyValue::Array(data) => {
                for item in repeated(data, 1) {
                    AnyValue::parse(item?, depth + 1)?;
                }
                Ok(v)
            }
            AnyValue::KvList(data) => {
                for item in repeated(data, 1) {
                    KeyValue::parse(item?, depth + 1)?;
                }
                Ok(v)
            }
            _ => Ok(v),
        }
    }

    /// Parses one level: an array or kvlist keeps its bytes unchecked (callers
    /// that walk them parse each item in turn).
    #[inline]
    pub fn parse_shallow(buf: &'a [u8]) -> Result<AnyValue<'a>, PbError> {
        let mut v = AnyValue::Empty;
        let mut r = Reader::new(buf);
        while let Some(f) = r.next_field()? {
            v = match (f.number, f.value) {
                (1, Value::Bytes { data, .. }) => AnyValue::Str(utf8(1, data)?),
                (2, Value::Varint(x)) => AnyValue::Bool(x != 0),
                (3, Value::Varint(x)) => AnyValue::Int(x as i64),
                (4, Value::Fixed64(x)) => AnyValue::Double(f64::from_bits(x)),
                (5, Value::Bytes { data, .. }) => AnyValue::Array(data),
                (6, Value::Bytes { data, .. }) => AnyValue::KvList(data),
                (7, Value::Bytes { data, .. }) => AnyValue::Bytes(data),
                _ => continue,
            };
        }
        Ok(v)
    }
}

/// One `KeyValue`, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyValue<'a> {
    pub key: &'a str,
    pub value: AnyValue<'a>,
}

impl<'a> KeyValue<'a> {
    /// Parses and fully validates a `KeyValue` (its value's nesting counted from `depth`).
    pub fn parse(buf: &'a [u8], depth: usize) -> Result<KeyValue<'a>, PbError> {
        let (key, value) = Self::parts(buf)?;
        Ok(KeyValue { key, value: AnyValue::parse(value, depth)? })
    }

    /// The key and the value's `AnyValue` bytes (last occurrence of each wins).
    #[inline]
    pub fn parts(buf: &'a [u8]) -> Result<(&'a str, &'a [u8]), PbError> {
        let (mut key, mut value): (&str, &[u8]) = ("", &[]);
        let mut r = Reader::new(buf);
        while let Some(f) = r.next_field()? {
            match (f.number, f.value) {
                (1, Value::Bytes { data, .. }) => key = utf8(1, data)?,
                (2, Value::Bytes { data, .. }) => value = data,
                _ => {}
            }
        }
        Ok((key, value))
    }
}

/// The length-delimited payloads of field `number` in `buf`, in order.
pub fn repeated(buf: &[u8], number: u32) -> impl Iterator<Item = Result<&[u8], PbError>> {
    let mut r = Reader::new(buf);
    let mut done = false;
    std::iter::from_fn(move || loop {
        if done {
            return None;
        }
        match r.next_field() {
            Ok(Some(f)) => {
                if let (n, Value::Bytes { data, .. }) = (f.number, f.value) {
                    if n == number {
                        return Some(Ok(data));
                    }
                }
            }
            Ok(None) => return None,
            Err(e) => {
                done = true;
                return Some(Err(e));
            }
        }
    })
}

/// The scalar fields of a `Resource`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceHead {
    pub dropped_attributes_count: u32,
}

impl ResourceHead {
    /// Validates a `Resource` message (attributes included).
    pub fn parse(buf: &[u8]) -> Result<ResourceHead, PbError> {
        let mut h = ResourceHead::default();
        let mut r = Reader::new(buf);
        while let Some(f) = r.next_field()? {
            match (f.number, f.value) {
                (1, Value::Bytes { data, .. }) => {
                    KeyValue::parse(data, 0)?;
                }
                (2, Value::Varint(x)) => h.dropped_attributes_count = x as u32,
                _ => {}
            }
        }
        Ok(h)
    }
}

/// The scalar fields of an `InstrumentationScope`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScopeHead<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub dropped_attributes_count: u32,
}

impl<'a> ScopeHead<'a> {
    /// Validates an `InstrumentationScope` message (attributes included).
    pub fn parse(buf: &'a [u8]) -> Result<ScopeHead<'a>, PbError> {
        let mut h = ScopeHead::default();
        let mut r = Reader::new(buf);
        while let Some(f) = r.next_field()? {
            match (f.number, f.value) {
                (1, Value::Bytes { data, .. }) => h.name = utf8(1, data)?,
                (2, Value::Bytes { data, .. }) => h.version = utf8(2, data)?,
                (3, Value::Bytes { data, .. }) => {
                    KeyValue::parse(data, 0)?;
                }
                (4, Value::Varint(x)) => h.dropped_attributes_count = x as u32,
                _ => {}
            }
        }
        Ok(h)
    }
}

/// An `Event`, validated.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EventView<'a> {
    pub msg: &'a [u8],
    pub time_unix_nano: u64,
    pub name: &'a str,
    pub dropped_attributes_count: u32,
}

impl<'a> EventView<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<EventView<'a>, PbError> {
        let mut e = EventView { msg: buf, ..Default::default() };
        let mut r = Reader::new(buf);
        while let Some(f) = r.next_field()? {
            match (f.number, f.value) {
                (1, Value::Fixed64(x)) => e.time_unix_nano = x,
                (2, Value::Bytes { data, .. }) => e.name = utf8(2, data)?,
                (3, Value::Bytes { data, .. }) => {
                    KeyValue::parse(data, 0)?;
                }
                (4, Value::Varint(x)) => e.dropped_attributes_count = x as u32,
                _ => {}
            }
        }
        Ok(e)
    }
}

/// A `Link`, validated.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkView<'a> {
    pub msg: &'a [u8],
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub trace_state: &'a str,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

impl<'a> LinkView<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<LinkView<'a>, PbError> {
        let mut l = LinkView { msg: buf, ..Default::default() };
        let mut r = Reader::new(buf);
        while let Some(f) = r.next_field()? {
            match (f.number, f.value) {
                (1, Value::Bytes { data, .. }) => l.trace_id = data,
                (2, Value::Bytes { data, .. }) => l.span_id = data,
                (3, Value::Bytes { data, .. }) => l.trace_state = utf8(3, data)?,
                (4, Value::Bytes { data, .. }) => {
                    KeyValue::parse(data, 0)?;
                }
                (5, Value::Varint(x)) => l.dropped_attributes_count = x as u32,
                (6, Value::Fixed32(x)) => l.flags = x,
                _ => {}
            }
        }
        Ok(l)
    }
}

/// A `Span`'s scalar fields, after validating the whole message (attributes,
/// events and links included).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpanView<'a> {
    pub msg: &'a [u8],
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub trace_state: &'a str,
    pub parent_span_id: &'a [u8],
    pub name: &'a str,
    pub kind: i32,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub dropped_attributes_count: u32,
    pub dropped_events_count: u32,
    pub dropped_links_count: u32,
    pub status_code: i32,
    pub status_message: &'a str,
    pub flags: u32,
}

impl<'a> SpanView<'a> {
    /// Parses the scalar fields and validates every nested message.
    pub fn parse(buf: &'a [u8]) -> Result<SpanView<'a>, PbError> {
        let mut s = SpanView { msg: buf, ..Default::default() };
        let mut r = Reader::new(buf);
        while let Some(f) = r.next_field()? {
            match (f.number, f.value) {
                (1, Value::Bytes { data, .. }) => s.trace_id = data,
                (2, Value::Bytes { data, .. }) => s.span_id = data,
                (3, Value::Bytes { data, .. }) => s.trace_state = utf8(3, data)?,
                (4, Value::Bytes { data, .. }) => s.parent_span_id = data,
                (5, Value::Bytes { data, .. }) => s.name = utf8(5, data)?,
                (6, Value::Varint(x)) => s.kind = x as i32,
                (7, Value::Fixed64(x)) => s.start_unix_nano = x,
                (8, Value::Fixed64(x)) => s.end_unix_nano = x,
                (9, Value::Bytes { data, .. }) => {
                    KeyValue::parse(data, 0)?;
                }
                (10, Value::Varint(x)) => s.dropped_attributes_count = x as u32,
                (11, Value::Bytes { data, .. }) => {
                    EventView::parse(data)?;
                }
                (12, Value::Varint(x)) => s.dropped_events_count = x as u32,
                (13, Value::Bytes { data, .. }) => {
                    LinkView::parse(data)?;
                }
                (14, Value::Varint(x)) => s.dropped_links_count = x as u32,
                (15, Value::Bytes { data, .. }) => {
                    // Repeated occurrences of a message field merge: later fields win.
                    let mut sr = Reader::new(data);
                    while let Some(g) = sr.next_field()? {
                        match (g.number, g.value) {
                            (2, Value::Bytes { data, .. }) => s.status_message = utf8(2, data)?,
                            (3, Value::Varint(x)) => s.status_code = x as i32,
                            _ => {}
                        }
                    }
                }
                (16, Value::Fixed32(x)) => s.flags = x,
                _ => {}
            }
        }
        Ok(s)
    }
}

/// The validated `KeyValue`s of field `number` of `msg` (skips any that do not parse).
pub fn attrs_of(msg: &[u8], number: u32) -> impl Iterator<Item = KeyValue<'_>> {
    repeated(msg, number).filter_map(|b| KeyValue::parse(b.ok()?, 0).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{put_bytes_field, put_fixed64_field, put_message, put_varint_field};

    #[test]
    fn any_value_last_member_wins_and_nesting_is_bounded() {
        let mut v = Vec::new();
        put_bytes_field(&mut v, 1, b"s");
        put_varint_field(&mut v, 3, (-5i64) as u64);
        assert_eq!(AnyValue::parse(&v, 0).unwrap(), AnyValue::Int(-5));
        let mut d = Vec::new();
        put_fixed64_field(&mut d, 4, 0.5f64.to_bits());
        assert_eq!(AnyValue::parse(&d, 0).unwrap(), AnyValue::Double(0.5));
        // 100 nested arrays
        let mut inner = Vec::new();
        for _ in 0..100 {
            let mut outer = Vec::new();
            put_message(&mut outer, 5, |o| put_bytes_field(o, 1, &inner));
            inner = outer;
        }
        assert_eq!(AnyValue::parse(&inner, 0), Err(PbError::TooDeep));
    }

    #[test]
    fn wrong_wire_type_is_skipped_like_go() {
        let mut s = Vec::new();
        put_varint_field(&mut s, 1, 7); // trace_id as a varint: ignored
        put_bytes_field(&mut s, 5, b"name");
        let v = SpanView::parse(&s).unwrap();
        assert!(v.trace_id.is_empty());
        assert_eq!(v.name, "name");
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut s = Vec::new();
        put_bytes_field(&mut s, 5, &[0xff, 0xfe]);
        assert_eq!(SpanView::parse(&s), Err(PbError::InvalidUtf8 { field: 5 }));
    }
}
