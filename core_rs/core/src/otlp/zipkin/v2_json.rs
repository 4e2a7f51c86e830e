//! Zipkin v2 JSON (`POST /api/v2/spans`, an array of spans) into the shared [`Span`].
//!
//! Two readers, one verdict:
//! - the fast path ([`fast`]) scans the body once with [`Reader`], a hand-written reader
//!   specialised to the span schema: strings are borrowed from the body unless they have
//!   escapes, ids are decoded on the stack, unknown fields of any type and depth are skipped
//!   without recursion. It accepts exactly the bodies serde accepts and fills the same
//!   `Span`s; on anything else it gives up without saying why;
//! - the serde path (the derives on [`Span`], [`super::Endpoint`] and [`super::Annotation`],
//!   with the field readers below, which v1 JSON also uses) then reads the body again, so a
//!   rejected body gets serde's message with its JSON path, as before. Were serde to accept
//!   a body the fast path gave up on, its spans are used: the two only ever differ in speed.
//!
//! serde's reading, which the fast path follows: spans (and endpoints and annotations) are
//! objects or arrays of their fields in order; a field given twice is an error; `null` is
//! an absent optional field or span; tag values must be strings; `timestamp` and
//! `duration` are non-negative numbers read as f64 and floored; ports are integers
//! 0..=65535.

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::json_reader::Reader;
use super::{to_otlp, Id, Rules, Span, Str, Tags, Value};
use super::{KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER};

/// [`zipkin_v2_json`] without `parse_string_tags`.
#[cfg(test)]
pub fn zipkin_v2_json_to_otlp(body: &[u8]) -> Result<Vec<u8>, String> {
    zipkin_v2_json(body, false)
}

/// Zipkin v2 JSON (an array of spans) to OTLP protobuf: spans grouped into a
/// `ResourceSpans` per local service and a `ScopeSpans` per instrumentation scope;
/// `parse_string_tags` types tag values that read as numbers or booleans.
pub fn zipkin_v2_json(body: &[u8], parse_string_tags: bool) -> Result<Vec<u8>, String> {
    let rules = Rules::v2(parse_string_tags);
    match fast::spans(body) {
        Some(spans) => Ok(to_otlp(&spans, rules)),
        None => via_serde(body, rules),
    }
}

/// The serde path: the error (with its JSON path) for a body the fast path rejected.
pub(super) fn via_serde(body: &[u8], rules: Rules) -> Result<Vec<u8>, String> {
    let spans: Vec<Option<Span<'_>>> = parse(body, |path, e| match path {
        "." => e,
        p => format!("{p}: {e}"),
    })?;
    Ok(to_otlp(spans.iter().flatten(), rules))
}

/// The fast path: the spans of a body serde would accept, None for any other body.
pub(super) mod fast {
    use super::super::{Annotation, Endpoint, Id, Span, Str, Tags, Value};
    use super::{kind_of, Reader};

    /// Span fields in declaration order (the order of the array form).
    const SPAN_FIELDS: usize = 11;

    /// Tags with no escapes, gathered before they become the span's `Tags`: pushing each
    /// `(Str, Value)` pair as it is read is twice as slow (the pair goes through the stack).
    type Pairs<'a> = Vec<(&'a str, &'a str)>;

    pub(in super::super) fn spans(body: &[u8]) -> Option<Vec<Span<'_>>> {
        let mut r = Reader::new(body);
        // Typical spans take 300 to 1000 bytes of JSON, and a `Span` is about 300.
        let mut spans = Vec::with_capacity(body.len() / 512);
        let mut pairs = Vec::new();
        r.array(usize::MAX, |r, _| {
            if !r.is_null()? {
                // Read in place: a `Span` is large to move.
                spans.push(Span::empty());
                span(r, spans.last_mut()?, &mut pairs)?;
            }
            Some(())
        })?;
        r.at_end().then_some(spans)
    }

    fn span<'a>(r: &mut Reader<'a>, s: &mut Span<'a>, pairs: &mut Pairs<'a>) -> Option<()> {
        if r.peek()? == b'[' {
            return r.array(SPAN_FIELDS, |r, i| span_field(r, s, i, pairs));
        }
        let mut seen = 0u32;
        r.object(|r, key| {
            let i = match key.as_bytes() {
                b"traceId" => 0,
                b"id" => 1,
                b"parentId" => 2,
                b"name" => 3,
                b"kind" => 4,
                b"timestamp" => 5,
                b"duration" => 6,
                b"localEndpoint" => 7,
                b"remoteEndpoint" => 8,
                b"tags" => 9,
                b"annotations" => 10,
                _ => return r.skip(),
            };
            once(&mut seen, i)?;
            span_field(r, s, i, pairs)
        })
    }

    /// Marks field `i` seen; None if it was (serde rejects duplicate fields).
    #[inline]
    fn once(seen: &mut u32, i: usize) -> Option<()> {
        let bit = 1 << i;
        (*seen & bit == 0).then(|| *seen |= bit)
    }

    fn span_field<'a>(
        r: &mut Reader<'a>,
        s: &mut Span<'a>,
        i: usize,
        pairs: &mut Pairs<'a>,
    ) -> Option<()> {
        match i {
            0 => s.trace_id = Id::hex(&r.str()?, 16),
            1 => s.id = Id::hex(&r.str()?, 8),
            2 => s.parent_id = r.opt_str()?.filter(|p| !p.is_empty()).map(|p| Id::hex(&p, 8)),
            3 => s.name = r.opt_str()?,
            4 => s.kind = kind_of(r.opt_str()?.as_deref()),
            5 => s.timestamp = micros(r)?,
            6 => s.duration = micros(r)?,
            7 => s.local_endpoint = endpoint(r)?,
            8 => s.remote_endpoint = endpoint(r)?,
            9 => s.tags = tags(r, pairs)?,
            _ => s.annotations = annotations(r)?,
        }
        Some(())
    }

    /// Microseconds: a non-negative number (floored) or null.
    #[inline]
    fn micros(r: &mut Reader<'_>) -> Option<u64> {
        if r.is_null()? {
            return Some(0);
        }
        let f = r.f64()?;
        (f >= 0.0).then_some(f as u64)
    }

    fn endpoint<'a>(r: &mut Reader<'a>) -> Option<Option<Endpoint<'a>>> {
        if r.is_null()? {
            return Some(None);
        }
        let mut e = Endpoint::default();
        let mut field = |r: &mut Reader<'a>, i| {
            match i {
                0 => e.service_name = r.opt_str()?,
                1 => e.ipv4 = r.opt_str()?,
                2 => e.ipv6 = r.opt_str()?,
                _ => e.port = if r.is_null()? { None } else { Some(r.u16()?) },
            }
            Some(())
        };
        if r.peek()? == b'[' {
            r.array(4, field)?;
        } else {
            let mut seen = 0;
            r.object(|r, key| {
                let i = match key.as_bytes() {
                    b"serviceName" => 0,
                    b"ipv4" => 1,
                    b"ipv6" => 2,
                    b"port" => 3,
                    _ => return r.skip(),
                };
                once(&mut seen, i)?;
                field(r, i)
            })?;
        }
        Some(Some(e))
    }

    /// Tags in the order sent (duplicates included); null is none.
    fn tags<'a>(r: &mut Reader<'a>, pairs: &mut Pairs<'a>) -> Option<Tags<'a>> {
        pairs.clear();
        // Once a string has escapes, the tags are pushed one by one.
        let mut slow: Option<Tags<'a>> = None;
        if r.is_null()? {
            return Some(Vec::new());
        }
        r.object(|r, key| {
            match (key, r.str()?, &mut slow) {
                (Str::Borrowed(k), Str::Borrowed(v), None) => pairs.push((k, v)),
                (k, v, slow) => slow.get_or_insert_with(|| to_tags(pairs)).push((k, Value::Str(v))),
            }
            Some(())
        })?;
        Some(slow.unwrap_or_else(|| to_tags(pairs)))
    }

    fn to_tags<'a>(pairs: &mut Pairs<'a>) -> Tags<'a> {
        pairs.drain(..).map(|(k, v)| (Str::Borrowed(k), Value::Str(Str::Borrowed(v)))).collect()
    }

    fn annotations<'a>(r: &mut Reader<'a>) -> Option<Option<Vec<Annotation<'a>>>> {
        if r.is_null()? {
            return Some(None);
        }
        let mut out = Vec::new();
        r.array(usize::MAX, |r, _| {
            out.push(annotation(r)?);
            Some(())
        })?;
        Some(Some(out))
    }

    fn annotation<'a>(r: &mut Reader<'a>) -> Option<Annotation<'a>> {
        let mut a = Annotation { timestamp: 0, value: Str::default() };
        let mut field = |r: &mut Reader<'a>, i| {
            match i {
                0 => a.timestamp = micros(r)?,
                _ => a.value = r.str()?,
            }
            Some(())
        };
        if r.peek()? == b'[' {
            r.array(2, field)?;
        } else {
            let mut seen = 0;
            r.object(|r, key| {
                let i = match key.as_bytes() {
                    b"timestamp" => 0,
                    b"value" => 1,
                    _ => return r.skip(),
                };
                once(&mut seen, i)?;
                field(r, i)
            })?;
        }
        Some(a)
    }
}

/// Deserializes a whole JSON body. Only a body that fails is read again, with
/// serde_path_to_error, so `path_error(path, error)` can say where: tracking the
/// path of every value would cost a third of the time of good bodies.
pub(super) fn parse<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    path_error: impl FnOnce(&str, String) -> String,
) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let error = match T::deserialize(&mut de).and_then(|t| de.end().map(|()| t)) {
        Ok(t) => return Ok(t),
        Err(e) => e.to_string(),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => Err(path_error(&e.path().to_string(), e.into_inner().to_string())),
        // Trailing characters: no path to tell.
        Ok(_) => Err(error),
    }
}

/// Microseconds: a non-negative JSON number (fractions are floored) or null.
pub(super) fn micros<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Option::<f64>::deserialize(d)? {
        None => Ok(0),
        Some(f) if f >= 0.0 && f.is_finite() => Ok(f as u64),
        Some(f) => Err(de::Error::custom(format!("{f} is not a time in microseconds"))),
    }
}

/// A string, borrowed from the body when it has no escapes.
pub(super) struct Borrowed<'a>(pub(super) Str<'a>);

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Borrowed<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Borrowed(Str::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Borrowed(Str::Owned(s.to_string())))
    }
}

impl<'de> Deserialize<'de> for Borrowed<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

/// A string or null, borrowed from the body when it has no escapes.
pub(super) fn opt_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Str<'de>>, D::Error> {
    Ok(Option::<Borrowed<'de>>::deserialize(d)?.map(|b| b.0))
}

/// A string (not null), borrowed from the body when it has no escapes.
pub(super) fn str<'de, D: Deserializer<'de>>(d: D) -> Result<Str<'de>, D::Error> {
    Ok(Borrowed::deserialize(d)?.0)
}

/// A hex trace id: 32 characters, or 16 left-padded.
pub(super) fn trace_id<'de, D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
    Ok(Id::hex(&Borrowed::deserialize(d)?.0, 16))
}

/// A hex span id: 16 characters.
pub(super) fn span_id<'de, D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
    Ok(Id::hex(&Borrowed::deserialize(d)?.0, 8))
}

/// A hex parent id; null or empty for a root span.
pub(super) fn parent_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id>, D::Error> {
    Ok(opt_str(d)?.filter(|p| !p.is_empty()).map(|p| Id::hex(&p, 8)))
}

/// `CLIENT`, `SERVER`, `PRODUCER` or `CONSUMER` as the OTLP kind; anything else
/// (or null) is unspecified.
pub(super) fn kind<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(kind_of(opt_str(d)?.as_deref()))
}

fn kind_of(kind: Option<&str>) -> u64 {
    match kind {
        Some("CLIENT") => KIND_CLIENT,
        Some("SERVER") => KIND_SERVER,
        Some("PRODUCER") => KIND_PRODUCER,
        Some("CONSUMER") => KIND_CONSUMER,
        _ => 0,
    }
}

/// Tags in the order sent; values must be strings (as Zipkin defines them).
pub(super) fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<Tags<'de>, D::Error> {
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
                out.push((k.0, Value::Str(v.0)));
            }
            Ok(out)
        }
    }
    d.deserialize_any(TagsVisitor)
}
