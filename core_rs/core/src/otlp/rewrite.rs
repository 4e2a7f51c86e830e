//! Rewrites a validated request: drops spans refused by a limit and truncates
//! attribute keys and string values longer than `max_attribute_bytes`.
//!
//! This is the rare path: the common request has nothing to drop and no long
//! attribute, which [`long_attributes`] tells cheaply (an attribute longer than
//! the limit can only sit in a message longer than the limit). Truncation cuts
//! at a UTF-8 character boundary at or below the limit, so values stay valid
//! strings; strings nested in array and kvlist values are truncated too, and each
//! attribute counts once, under the scope of the message that holds it.

use crate::model::Request;
use crate::pb::{
    put_bytes_field, put_fixed32_field, put_fixed64_field, put_message, put_varint_field, Field,
    Reader, Value,
};

/// Attributes truncated, by the `scope` label of
/// `tempo_distributor_attributes_truncated_total`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Truncated {
    pub resource: u32,
    pub scope: u32,
    pub span: u32,
    pub event: u32,
    pub link: u32,
}

impl Truncated {
    pub fn total(&self) -> u32 {
        self.resource + self.scope + self.span + self.event + self.link
    }

    fn add(&mut self, kind: Kind) {
        match kind {
            Kind::Resource => self.resource += 1,
            Kind::Scope => self.scope += 1,
            Kind::Span => self.span += 1,
            Kind::Event => self.event += 1,
            Kind::Link => self.link += 1,
        }
    }
}

/// The messages that carry attributes.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Resource,
    Scope,
    Span,
    Event,
    Link,
}

impl Kind {
    /// The field number of the message's `repeated KeyValue attributes`.
    fn attributes(self) -> u32 {
        match self {
            Kind::Resource => 1,
            Kind::Scope | Kind::Event => 3,
            Kind::Span => 9,
            Kind::Link => 4,
        }
    }

    /// Nested messages that carry attributes of their own.
    fn child(self, field: u32) -> Option<Kind> {
        match (self, field) {
            (Kind::Span, 11) => Some(Kind::Event),
            (Kind::Span, 13) => Some(Kind::Link),
            _ => None,
        }
    }
}

/// Fields of an already validated message (a read error ends the walk).
fn fields(buf: &[u8]) -> impl Iterator<Item = Field<'_>> {
    let mut r = Reader::new(buf);
    std::iter::from_fn(move || r.next_field().ok().flatten())
}

fn bytes<'a>(f: &Field<'a>) -> Option<&'a [u8]> {
    match f.value {
        Value::Bytes { data, .. } => Some(data),
        _ => None,
    }
}

fn copy(out: &mut Vec<u8>, f: &Field<'_>) {
    match f.value {
        Value::Varint(v) => put_varint_field(out, f.number, v),
        Value::Fixed64(v) => put_fixed64_field(out, f.number, v),
        Value::Fixed32(v) => put_fixed32_field(out, f.number, v),
        Value::Bytes { data, .. } => put_bytes_field(out, f.number, data),
    }
}

/// `s` cut to at most `max` bytes, at a UTF-8 character boundary.
fn truncate(s: &[u8], max: usize) -> &[u8] {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && s[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    &s[..end]
}

fn value_is_long(buf: &[u8], max: usize) -> bool {
    fields(buf).any(|f| match (f.number, bytes(&f)) {
        (1, Some(s)) => s.len() > max,
        (5, Some(array)) => {
            fields(array).any(|v| v.number == 1 && bytes(&v).is_some_and(|v| value_is_long(v, max)))
        }
        (6, Some(list)) => fields(list)
            .any(|kv| kv.number == 1 && bytes(&kv).is_some_and(|kv| kv_is_long(kv, max))),
        _ => false,
    })
}

fn kv_is_long(buf: &[u8], max: usize) -> bool {
    fields(buf).any(|f| match (f.number, bytes(&f)) {
        (1, Some(key)) => key.len() > max,
        (2, Some(value)) => value_is_long(value, max),
        _ => false,
    })
}

fn write_value(out: &mut Vec<u8>, buf: &[u8], max: usize) {
    for f in fields(buf) {
        match (f.number, bytes(&f)) {
            (1, Some(s)) => put_bytes_field(out, 1, truncate(s, max)),
            (5, Some(array)) => put_message(out, 5, |o| {
                for v in fields(array) {
                    match (v.number, bytes(&v)) {
                        (1, Some(item)) => put_message(o, 1, |o| write_value(o, item, max)),
                        _ => copy(o, &v),
                    }
                }
            }),
            (6, Some(list)) => put_message(out, 6, |o| {
                for kv in fields(list) {
                    match (kv.number, bytes(&kv)) {
                        (1, Some(item)) => put_message(o, 1, |o| write_kv(o, item, max)),
                        _ => copy(o, &kv),
                    }
                }
            }),
            _ => copy(out, &f),
        }
    }
}

fn write_kv(out: &mut Vec<u8>, buf: &[u8], max: usize) {
    for f in fields(buf) {
        match (f.number, bytes(&f)) {
            (1, Some(key)) => put_bytes_field(out, 1, truncate(key, max)),
            (2, Some(value)) => put_message(out, 2, |o| write_value(o, value, max)),
            _ => copy(out, &f),
        }
    }
}

/// Counts the long attributes of a message (and of its nested events and links).
fn count(buf: &[u8], kind: Kind, max: usize, n: &mut Truncated) {
    if buf.len() <= max {
        return; // nothing inside can be longer than the message itself
    }
    for f in fields(buf) {
        let Some(data) = bytes(&f) else { continue };
        if f.number == kind.attributes() {
            if kv_is_long(data, max) {
                n.add(kind);
            }
        } else if let Some(child) = kind.child(f.number) {
            count(data, child, max, n);
        }
    }
}

/// Writes a message with its long attributes truncated, counting them.
fn write(out: &mut Vec<u8>, buf: &[u8], kind: Kind, max: usize, n: &mut Truncated) {
    if max == 0 || buf.len() <= max {
        out.extend_from_slice(buf);
        return;
    }
    for f in fields(buf) {
        match bytes(&f) {
            Some(data) if f.number == kind.attributes() && kv_is_long(data, max) => {
                n.add(kind);
                put_message(out, f.number, |o| write_kv(o, data, max));
            }
            Some(data) => match kind.child(f.number) {
                Some(child) => put_message(out, f.number, |o| write(o, data, child, max, n)),
                None => copy(out, &f),
            },
            None => copy(out, &f),
        }
    }
}

/// The attributes of `req` longer than `max` bytes (key or string value), by scope.
pub fn long_attributes(req: &Request, max: usize) -> Truncated {
    let mut n = Truncated::default();
    if max == 0 {
        return n;
    }
    let buf = req.bytes();
    for r in &req.resources {
        count(r.resource.get(buf), Kind::Resource, max, &mut n);
    }
    for s in &req.scopes {
        count(s.scope.get(buf), Kind::Scope, max, &mut n);
    }
    for span in &req.spans {
        count(span.msg.get(buf), Kind::Span, max, &mut n);
    }
    n
}

/// Re-encodes `req` keeping only the spans whose `keep` entry is true (all, when
/// `keep` is None) with attributes truncated to `max_attribute_bytes` (0: no
/// truncation). Resources and scopes left without spans are dropped.
pub fn rewrite(
    req: &Request,
    keep: Option<&[bool]>,
    max_attribute_bytes: usize,
) -> (Vec<u8>, Truncated) {
    let buf = req.bytes();
    let max = max_attribute_bytes;
    let mut n = Truncated::default();
    // Spans are indexed in request order, so each scope's spans are contiguous.
    let mut by_scope: Vec<Vec<usize>> = vec![Vec::new(); req.scopes.len()];
    for (i, span) in req.spans.iter().enumerate() {
        if keep.is_none_or(|k| k.get(i).copied().unwrap_or(false)) {
            by_scope[span.scope as usize].push(i);
        }
    }
    let mut out = Vec::with_capacity(buf.len());
    for (ri, resource) in req.resources.iter().enumerate() {
        let scopes: Vec<usize> = (0..req.scopes.len())
            .filter(|&si| req.scopes[si].resource as usize == ri && !by_scope[si].is_empty())
            .collect();
        if scopes.is_empty() {
            continue;
        }
        put_message(&mut out, 1, |rs| {
            if !resource.resource.is_empty() {
                put_message(rs, 1, |o| {
                    write(o, resource.resource.get(buf), Kind::Resource, max, &mut n)
                });
            }
            for &si in &scopes {
                let scope = &req.scopes[si];
                put_message(rs, 2, |ss| {
                    if !scope.scope.is_empty() {
                        put_message(ss, 1, |o| {
                            write(o, scope.scope.get(buf), Kind::Scope, max, &mut n)
                        });
                    }
                    for &i in &by_scope[si] {
                        put_message(ss, 2, |o| {
                            write(o, req.spans[i].msg.get(buf), Kind::Span, max, &mut n)
                        });
                    }
                    if !scope.schema_url.is_empty() {
                        put_bytes_field(ss, 3, scope.schema_url.get(buf));
                    }
                });
            }
            if !resource.schema_url.is_empty() {
                put_bytes_field(rs, 3, resource.schema_url.get(buf));
            }
        });
    }
    (out, n)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::otlp::scan;
    use crate::otlp::view::{KeyValue, SpanView};
    use crate::testdata;

    fn kv(out: &mut Vec<u8>, field: u32, key: &str, value: &str) {
        put_message(out, field, |o| {
            put_bytes_field(o, 1, key.as_bytes());
            put_message(o, 2, |v| put_bytes_field(v, 1, value.as_bytes()));
        });
    }

    /// One resource, one scope, two spans of two traces; span 1 has a long value,
    /// an event with a long key and a link with an array holding a long string.
    fn request(long: &str) -> Vec<u8> {
        let mut body = Vec::new();
        put_message(&mut body, 1, |rs| {
            put_message(rs, 1, |r| kv(r, 1, "service.name", "svc"));
            put_message(rs, 2, |ss| {
                put_message(ss, 1, |s| put_bytes_field(s, 1, b"lib"));
                for (i, t) in [1u8, 2].iter().enumerate() {
                    put_message(ss, 2, |s| {
                        put_bytes_field(s, 1, &[*t; 16]);
                        put_bytes_field(s, 2, &[i as u8 + 1; 8]);
                        put_bytes_field(s, 5, b"op");
                        kv(s, 9, "short", "v");
                        if i == 0 {
                            kv(s, 9, "long", long);
                            put_message(s, 11, |e| {
                                put_bytes_field(e, 2, b"ev");
                                kv(e, 3, long, "x");
                            });
                            put_message(s, 13, |l| {
                                put_bytes_field(l, 1, &[9; 16]);
                                put_bytes_field(l, 2, &[9; 8]);
                                put_message(l, 4, |a| {
                                    put_bytes_field(a, 1, b"arr");
                                    put_message(a, 2, |v| {
                                        put_message(v, 5, |arr| {
                                            put_message(arr, 1, |x| {
                                                put_bytes_field(x, 1, long.as_bytes())
                                            });
                                        })
                                    });
                                });
                            });
                        }
                    });
                }
                put_bytes_field(ss, 3, b"https://schema");
            });
        });
        body
    }

    fn attrs(span: &[u8], field: u32) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for f in fields(span) {
            if f.number == field {
                let kv = KeyValue::parse(bytes(&f).unwrap(), 0).unwrap();
                let v = match kv.value {
                    crate::otlp::view::AnyValue::Str(s) => s.to_string(),
                    other => format!("{other:?}"),
                };
                out.push((kv.key.to_string(), v));
            }
        }
        out
    }

    #[test]
    fn short_attributes_need_nothing() {
        let req = scan(Arc::from(request("0123456789"))).unwrap();
        assert_eq!(long_attributes(&req, 64), Truncated::default());
        let (same, n) = rewrite(&req, None, 64);
        assert_eq!(n, Truncated::default());
        let again = scan(Arc::from(same)).unwrap();
        assert_eq!(again.spans.len(), 2);
    }

    #[test]
    fn long_keys_and_values_are_truncated_and_counted() {
        let long = "é".repeat(40); // 80 bytes; a limit of 33 cuts inside a character
        let req = scan(Arc::from(request(&long))).unwrap();
        let expect = Truncated { span: 1, event: 1, link: 1, ..Default::default() };
        assert_eq!(long_attributes(&req, 33), expect);
        let (buf, n) = rewrite(&req, None, 33);
        assert_eq!(n, expect);
        let out = scan(Arc::from(buf)).unwrap();
        assert_eq!(out.spans.len(), 2);
        let span = out.spans[0].msg.get(out.bytes());
        let a = attrs(span, 9);
        assert_eq!(a[0], ("short".into(), "v".into()));
        assert_eq!(a[1], ("long".into(), "é".repeat(16)));
        let view = SpanView::parse(span).unwrap();
        assert_eq!(view.name, "op");
        let ev = fields(span).find(|f| f.number == 11).unwrap();
        assert_eq!(attrs(bytes(&ev).unwrap(), 3)[0].0, "é".repeat(16));
        assert_eq!(long_attributes(&out, 33), Truncated::default());
        // the schema url and the resource survive
        assert_eq!(out.scopes[0].schema_url.get(out.bytes()), b"https://schema");
        assert!(!out.resources[0].resource.is_empty());
    }

    #[test]
    fn dropped_spans_leave_the_rest_intact() {
        let req = scan(Arc::from(request("x"))).unwrap();
        let (buf, _) = rewrite(&req, Some(&[false, true]), 0);
        let out = scan(Arc::from(buf)).unwrap();
        assert_eq!(out.spans.len(), 1);
        assert_eq!(out.spans[0].trace_id, [2; 16]);
        let (buf, _) = rewrite(&req, Some(&[false, false]), 0);
        assert!(buf.is_empty());
    }

    #[test]
    fn generated_requests_round_trip() {
        let (body, n) = testdata::request(5, 300);
        let req = scan(Arc::from(body)).unwrap();
        let (buf, t) = rewrite(&req, None, 2048);
        assert_eq!(t, Truncated::default());
        let out = scan(Arc::from(buf)).unwrap();
        assert_eq!(out.spans.len(), n);
        for (a, b) in req.spans.iter().zip(&out.spans) {
            assert_eq!(a.msg.get(req.bytes()), b.msg.get(out.bytes()));
        }
    }
}
