//! Zipkin v2 JSON (`POST /api/v2/spans`, an array of spans): serde reads it straight
//! into the shared [`Span`], borrowing strings from the body; these are its field
//! readers, also used by the v1 JSON reader.

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

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
    let spans: Vec<Option<Span<'_>>> = parse(body, |path, e| match path {
        "." => e,
        p => format!("{p}: {e}"),
    })?;
    Ok(to_otlp(spans.iter().flatten(), Rules::v2(parse_string_tags)))
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
    Ok(match opt_str(d)?.as_deref() {
        Some("CLIENT") => KIND_CLIENT,
        Some("SERVER") => KIND_SERVER,
        Some("PRODUCER") => KIND_PRODUCER,
        Some("CONSUMER") => KIND_CONSUMER,
        _ => 0,
    })
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
