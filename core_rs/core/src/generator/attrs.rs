//! Attribute lookup over the zero-copy OTLP view, and Tempo's label conventions:
//! value stringification (`StringifyAnyValue`), label name sanitising, span kind and
//! status code names.
//!
//! A [`KeySet`] names the attributes a processor wants; one walk over a message's
//! attributes fills a [`Found`] with the first value of each (Tempo's
//! `FindAttributeValue`: first match wins). Values stay borrowed from the request;
//! only non-string values are rendered, into per-slot scratch strings that are reused.

use std::borrow::Cow;

use crate::otlp::view::AnyValue;
use crate::pb::{Reader, Value};

/// Renders an `AnyValue` as Tempo's `StringifyAnyValue` does: strings as is, ints in
/// decimal, doubles in shortest plain notation (`strconv.FormatFloat(v, 'f', -1, 64)`),
/// bools as `true`/`false`, arrays as `[` + items + `]`, kvlists as `{` + `key:value`… +
/// `}`, anything else (bytes, empty) as "".
pub fn render_value(v: &AnyValue<'_>, out: &mut String) {
    use std::fmt::Write;
    match *v {
        AnyValue::Str(s) => out.push_str(s),
        AnyValue::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        AnyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        AnyValue::Double(d) => {
            if d.is_nan() {
                out.push_str("NaN");
            } else if d.is_infinite() {
                out.push_str(if d > 0.0 { "+Inf" } else { "-Inf" });
            } else {
                let _ = write!(out, "{d}");
            }
        }
        AnyValue::Array(data) => {
            out.push('[');
            for item in crate::otlp::view::repeated(data, 1).map_while(Result::ok) {
                if let Ok(v) = AnyValue::parse_shallow(item) {
                    render_value(&v, out);
                }
            }
            out.push(']');
        }
        AnyValue::KvList(data) => {
            out.push('{');
            for item in crate::otlp::view::repeated(data, 1).map_while(Result::ok) {
                if let Ok((key, value)) = crate::otlp::view::KeyValue::parts(item) {
                    out.push_str(key);
                    out.push(':');
                    if let Ok(v) = AnyValue::parse_shallow(value) {
                        render_value(&v, out);
                    }
                }
            }
            out.push('}');
        }
        AnyValue::Bytes(_) | AnyValue::Empty => {}
    }
}

/// Prometheus' `strutil.SanitizeLabelName`: every character outside `[a-zA-Z0-9_]`
/// becomes `_` (a leading digit is kept, as there).
pub fn sanitize_label_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// Tempo's span kind label value (`SPAN_KIND_*`; an unknown number as itself).
pub fn kind_name(kind: i32) -> Cow<'static, str> {
    Cow::Borrowed(match kind {
        0 => "SPAN_KIND_UNSPECIFIED",
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        other => return Cow::Owned(other.to_string()),
    })
}

/// Tempo's status code label value (`STATUS_CODE_*`; an unknown number as itself).
pub fn status_name(code: i32) -> Cow<'static, str> {
    Cow::Borrowed(match code {
        0 => "STATUS_CODE_UNSET",
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        other => return Cow::Owned(other.to_string()),
    })
}

pub const KIND_SERVER: i32 = 2;
pub const KIND_CLIENT: i32 = 3;
pub const KIND_PRODUCER: i32 = 4;
pub const KIND_CONSUMER: i32 = 5;
pub const STATUS_ERROR: i32 = 2;

/// The attribute names a processor looks up, each with a slot number.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Box<str>>,
}

impl KeySet {
    /// The slot of `key`, added when new.
    pub fn slot(&mut self, key: &str) -> usize {
        match self.keys.iter().position(|k| &**k == key) {
            Some(i) => i,
            None => {
                self.keys.push(key.into());
                self.keys.len() - 1
            }
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    #[inline]
    fn find(&self, key: &[u8]) -> Option<usize> {
        self.keys.iter().position(|k| k.len() == key.len() && k.as_bytes() == key)
    }

    /// An empty [`Found`] sized for this set.
    pub fn found<'a>(&self) -> Found<'a> {
        Found {
            values: vec![None; self.keys.len()],
            scratch: vec![String::new(); self.keys.len()],
            rendered: vec![false; self.keys.len()],
            missing: self.keys.len(),
        }
    }
}

/// The first value of each wanted attribute of one message.
#[derive(Debug, Clone)]
pub struct Found<'a> {
    values: Vec<Option<AnyValue<'a>>>,
    scratch: Vec<String>,
    rendered: Vec<bool>,
    missing: usize,
}

impl<'a> Found<'a> {
    /// Forgets every value (keeps the scratch strings' capacity).
    #[inline]
    pub fn clear(&mut self) {
        if self.missing != self.values.len() {
            self.values.iter_mut().for_each(|v| *v = None);
            self.rendered.iter_mut().for_each(|r| *r = false);
            self.missing = self.values.len();
        }
    }

    /// Whether slot `i` holds a value.
    #[inline]
    pub fn has(&self, i: usize) -> bool {
        self.values[i].is_some()
    }

    /// Slot `i`'s value as found (typed).
    #[inline]
    pub fn value(&self, i: usize) -> Option<&AnyValue<'a>> {
        self.values[i].as_ref()
    }

    /// Slot `i`'s value as label text (after [`Found::render`]); None when absent.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&str> {
        match &self.values[i] {
            None => None,
            Some(AnyValue::Str(s)) => Some(s),
            Some(_) if self.rendered[i] => Some(&self.scratch[i]),
            Some(_) => None,
        }
    }

    /// Renders the non-string values found into their scratch strings.
    #[inline]
    pub fn render(&mut self) {
        if self.missing == self.values.len() {
            return;
        }
        for i in 0..self.values.len() {
            match &self.values[i] {
                None | Some(AnyValue::Str(_)) => {}
                Some(v) => {
                    if !self.rendered[i] {
                        let s = &mut self.scratch[i];
                        s.clear();
                        render_value(v, s);
                        self.rendered[i] = true;
                    }
                }
            }
        }
    }

    #[inline]
    fn offer(&mut self, set: &KeySet, key: &[u8], value: &'a [u8]) {
        if let Some(i) = set.find(key) {
            if self.values[i].is_none() {
                if let Ok(v) = AnyValue::parse_shallow(value) {
                    self.values[i] = Some(v);
                    self.missing -= 1;
                }
            }
        }
    }
}

/// The key bytes and value bytes of an encoded `KeyValue` (last occurrence wins).
#[inline]
fn key_value(buf: &[u8]) -> (&[u8], &[u8]) {
    let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
    let mut r = Reader::new(buf);
    while let Ok(Some(f)) = r.next_field() {
        match (f.number, f.value) {
            (1, Value::Bytes { data, .. }) => key = data,
            (2, Value::Bytes { data, .. }) => value = data,
            _ => {}
        }
    }
    (key, value)
}

/// Fills `found` from the `KeyValue`s of field `number` of `msg` (a `Resource`'s
/// attributes are field 1).
pub fn scan_attrs<'a>(msg: &'a [u8], number: u32, set: &KeySet, found: &mut Found<'a>) {
    found.clear();
    if set.is_empty() {
        return;
    }
    let mut r = Reader::new(msg);
    while let Ok(Some(f)) = r.next_field() {
        if let (n, Value::Bytes { data, .. }) = (f.number, f.value) {
            if n == number {
                let (k, v) = key_value(data);
                found.offer(set, k, v);
            }
        }
    }
}

/// The fields of a span the generator reads beyond its [`SpanRef`](crate::model::SpanRef).
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanFields<'a> {
    pub name: &'a str,
    pub status_code: i32,
    pub status_message: &'a str,
}

/// One walk over a (validated) `Span` message: its name and status, and the wanted
/// attributes into `found`.
#[inline]
pub fn scan_span<'a>(msg: &'a [u8], set: &KeySet, found: &mut Found<'a>) -> SpanFields<'a> {
    found.clear();
    let mut out = SpanFields::default();
    let mut r = Reader::new(msg);
    while let Ok(Some(f)) = r.next_field() {
        match (f.number, f.value) {
            (5, Value::Bytes { data, .. }) => {
                out.name = simdutf8::basic::from_utf8(data).unwrap_or_default();
            }
            (9, Value::Bytes { data, .. }) if !set.is_empty() => {
                let (k, v) = key_value(data);
                found.offer(set, k, v);
            }
            (15, Value::Bytes { data, .. }) => {
                let mut sr = Reader::new(data);
                while let Ok(Some(g)) = sr.next_field() {
                    match (g.number, g.value) {
                        (2, Value::Bytes { data, .. }) => {
                            out.status_message =
                                simdutf8::basic::from_utf8(data).unwrap_or_default();
                        }
                        (3, Value::Varint(x)) => out.status_code = x as i32,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out
}
