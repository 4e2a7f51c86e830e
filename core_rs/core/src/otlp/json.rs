//! OTLP/JSON -> OTLP protobuf translation for `ExportTraceServiceRequest`.
//!
//! The body is walked once with serde_json's borrowing deserializer and visitors that write the
//! protobuf encoding as they go; no `serde_json::Value` tree is built. Keys are processed in the
//! order they appear, which gives the OpenTelemetry collector's semantics for odd documents:
//!
//! * a repeated field given twice appends (`"spans": [..], "spans": [..]`);
//! * a scalar given twice keeps the last value; a message given twice is merged;
//! * for `AnyValue`, the last member present wins;
//! * `null` anywhere a field value is expected means "absent"; a `null` element of a repeated
//!   message field is an empty message (as the collector appends an empty element).
//!
//! Values follow the OTLP "JSON Protobuf Encoding" and protojson:
//!
//! * field names in lowerCamelCase or the proto's snake_case; unknown fields are skipped;
//! * ids are hex (either case). Empty is absent; valid hex of any length is passed through (the
//!   validator judges lengths and all-zero ids, as for protobuf bodies); a string that is not
//!   hex becomes the 1-byte id `[0]`, so only that span is dropped and counted;
//! * 64- and 32-bit integers: a JSON integer, an integral JSON number (`1e3`), or a decimal
//!   string (`"123"`, `"-5"`, also `"+5"`, `"007"`, `"1e3"`), range-checked exactly;
//! * enums: any int32, or the value's name;
//! * doubles: a JSON number, `"NaN"`, `"Infinity"`, `"-Infinity"` or a numeric string. Note
//!   that serde_json's default float parser can land 1 ULP off for numbers with more than ~15
//!   significant digits (its `float_roundtrip` feature makes it exact);
//! * `bytesValue`: standard or URL-safe base64, padding optional.
//!
//! The output is canonical: every message's fields are written in field-number order, each
//! singular field at most once, proto3 defaults omitted (oneof members are always written).
//! To get that order without a second pass, each message collects its singular fields in a small
//! struct and its repeated fields in pooled scratch buffers, and is written into its parent when
//! its JSON object closes (its length is computed first, so no length prefix is ever patched).
//!
//! Errors name the JSON path of the offending value, e.g.
//! `resourceSpans[0].scopeSpans[1].spans[3].startTimeUnixNano: expected an integer or a decimal
//! string, got an object`.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::marker::PhantomData;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::pb;

/// OTLP/JSON ExportTraceServiceRequest -> protobuf bytes of the same ExportTraceServiceRequest.
/// Err is a human-readable reason naming the JSON path, e.g.
/// "resourceSpans[0].scopeSpans[1].spans[3].startTimeUnixNano: expected an integer or a decimal
/// string, got an object".
pub fn json_to_protobuf(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut ctx = Ctx::default();
    // Protobuf is typically well under half the size of the equivalent OTLP/JSON.
    let mut out = Vec::with_capacity(body.len() / 2);
    let mut de = serde_json::Deserializer::from_slice(body);
    let res = Root { ctx: &mut ctx, out: &mut out }.deserialize(&mut de).and_then(|()| de.end());
    match res {
        Ok(()) => Ok(out),
        Err(e) => Err(ctx.into_error(e)),
    }
}

/// Deepest nesting of `arrayValue`/`kvlistValue` accepted. serde_json's own recursion limit (128
/// JSON levels, i.e. ~40 AnyValue levels) normally triggers first; this bounds our recursion
/// even if that limit were ever disabled.
const MAX_ANY_DEPTH: u32 = 100;

/// Scratch buffers kept for reuse; more than this are simply dropped.
const MAX_POOLED: usize = 64;

type Str<'de> = Cow<'de, str>;

// ------------------------------------------------------------------------------------- context

#[derive(Clone, Copy)]
enum Seg {
    Field(&'static str),
    Index(usize),
}

/// State shared by the whole walk: the current JSON path, the first semantic error, and a pool
/// of scratch buffers.
#[derive(Default)]
struct Ctx {
    path: Vec<Seg>,
    error: Option<String>,
    pool: Vec<Vec<u8>>,
    any_depth: u32,
}

impl Ctx {
    fn path_string(&self) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match *seg {
                Seg::Field(name) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(name);
                }
                Seg::Index(i) => {
                    let _ = write!(s, "[{i}]");
                }
            }
        }
        s
    }

    /// Records `msg` at the current path (the first error wins) and returns an error that makes
    /// serde unwind.
    #[cold]
    fn fail<E: de::Error>(&mut self, msg: fmt::Arguments<'_>) -> E {
        if self.error.is_none() {
            let mut s = self.path_string();
            if !s.is_empty() {
                s.push_str(": ");
            }
            let _ = s.write_fmt(msg);
            self.error = Some(s);
        }
        E::custom("invalid OTLP/JSON")
    }

    #[cold]
    fn type_error<E: de::Error>(&mut self, expected: &str, got: &str) -> E {
        self.fail(format_args!("expected {expected}, got {got}"))
    }

    fn into_error(mut self, e: serde_json::Error) -> String {
        if let Some(msg) = self.error.take() {
            return msg;
        }
        // Not ours: invalid JSON (or serde_json's recursion limit). Keep serde's message, which
        // has the line and column, and say where in the document it happened.
        let path = self.path_string();
        if path.is_empty() {
            e.to_string()
        } else {
            format!("{path}: {e}")
        }
    }

    fn take_buf(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_default()
    }

    fn give_buf(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() > 0 && self.pool.len() < MAX_POOLED {
            buf.clear();
            self.pool.push(buf);
        }
    }
}

/// A short, quoted excerpt of a string for error messages.
struct Snippet<'a>(&'a str);

impl fmt::Display for Snippet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 40;
        if self.0.len() <= MAX {
            write!(f, "{:?}", self.0)
        } else {
            let mut end = MAX;
            while !self.0.is_char_boundary(end) {
                end -= 1;
            }
            write!(f, "{:?}...", &self.0[..end])
        }
    }
}

/// Generates the `visit_*` methods of a visitor that reject a JSON type with a path-qualified
/// "expected X, got Y" error. The visitor has a `ctx: &mut Ctx` field and an `EXPECTED` const.
macro_rules! reject {
    ($($kind:ident)*) => { $(reject!(@$kind);)* };
    (@bool) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(self.ctx.type_error(Self::EXPECTED, "a boolean"))
        }
    };
    (@num) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(self.ctx.type_error(Self::EXPECTED, "a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(self.ctx.type_error(Self::EXPECTED, "a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(self.ctx.type_error(Self::EXPECTED, "a number"))
        }
    };
    (@str) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(self.ctx.type_error(Self::EXPECTED, "a string"))
        }
    };
    (@null) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(self.ctx.type_error(Self::EXPECTED, "null"))
        }
    };
    (@seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.ctx.type_error(Self::EXPECTED, "an array"))
        }
    };
    (@map) => {
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.ctx.type_error(Self::EXPECTED, "an object"))
        }
    };
}

/// `DeserializeSeed` for a type that is its own visitor, via `deserialize_any`.
macro_rules! self_seed {
    ($ty:ty, $value:ty) => {
        impl<'de> DeserializeSeed<'de> for $ty {
            type Value = $value;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
    };
}

// ---------------------------------------------------------------------------------- wire output

/// Where encoded bytes go: a buffer, or a counter that computes the encoded length first.
trait Sink {
    fn varint(&mut self, v: u64);
    fn raw(&mut self, b: &[u8]);
}

impl Sink for Vec<u8> {
    #[inline]
    fn varint(&mut self, v: u64) {
        pb::put_varint(self, v);
    }
    #[inline]
    fn raw(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

struct Counter(usize);

impl Sink for Counter {
    #[inline]
    fn varint(&mut self, v: u64) {
        self.0 += pb::varint_len(v);
    }
    #[inline]
    fn raw(&mut self, b: &[u8]) {
        self.0 += b.len();
    }
}

#[inline]
fn w_key<S: Sink>(s: &mut S, field: u32, wire: u8) {
    s.varint((u64::from(field) << 3) | u64::from(wire));
}

/// A length-delimited field, written even when empty.
#[inline]
fn w_len<S: Sink>(s: &mut S, field: u32, b: &[u8]) {
    w_key(s, field, pb::LEN);
    s.varint(b.len() as u64);
    s.raw(b);
}

/// A proto3 string field: omitted when absent or empty.
#[inline]
fn w_str<S: Sink>(s: &mut S, field: u32, v: &Option<Str<'_>>) {
    if let Some(v) = v {
        if !v.is_empty() {
            w_len(s, field, v.as_bytes());
        }
    }
}

#[inline]
fn w_id<S: Sink>(s: &mut S, field: u32, v: &Option<Id>) {
    if let Some(id) = v {
        w_len(s, field, id.as_slice());
    }
}

/// A proto3 varint field (uint32, enum as `i32 as i64 as u64`): omitted when zero.
#[inline]
fn w_varint<S: Sink>(s: &mut S, field: u32, v: u64) {
    if v != 0 {
        w_key(s, field, pb::VARINT);
        s.varint(v);
    }
}

#[inline]
fn w_fixed64<S: Sink>(s: &mut S, field: u32, v: u64) {
    if v != 0 {
        w_key(s, field, pb::I64);
        s.raw(&v.to_le_bytes());
    }
}

#[inline]
fn w_fixed32<S: Sink>(s: &mut S, field: u32, v: u32) {
    if v != 0 {
        w_key(s, field, pb::I32);
        s.raw(&v.to_le_bytes());
    }
}

/// A nested message, written even when empty.
#[inline]
fn w_msg<'de, S: Sink, M: Message<'de>>(s: &mut S, field: u32, m: &M) {
    let mut len = Counter(0);
    m.write(&mut len);
    w_key(s, field, pb::LEN);
    s.varint(len.0 as u64);
    m.write(s);
}

// ------------------------------------------------------------------------------- message model

/// One OTLP message type: how its JSON keys map to fields, how a field's JSON value is read into
/// the message's state, and how the state is encoded.
trait Message<'de>: Default {
    /// The field id (private to the message) and the canonical lowerCamelCase name for paths.
    fn key(k: &str) -> Option<(u8, &'static str)>;
    fn field<A: MapAccess<'de>>(
        &mut self,
        id: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error>;
    fn write<S: Sink>(&self, s: &mut S);
    /// Hands the message's scratch buffers back to the pool.
    fn recycle(self, ctx: &mut Ctx);
}

/// Reads a JSON object into `msg` (merging into what is there). Value: whether an object was
/// present (false for `null`).
struct MsgSeed<'a, M> {
    ctx: &'a mut Ctx,
    msg: &'a mut M,
}

impl<M> MsgSeed<'_, M> {
    const EXPECTED: &'static str = "an object";
}

impl<'de, M: Message<'de>> DeserializeSeed<'de> for MsgSeed<'_, M> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, M: Message<'de>> Visitor<'de> for MsgSeed<'_, M> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::EXPECTED)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let MsgSeed { ctx, msg } = self;
        while let Some(key) = map.next_key_seed(KeySeed::<M>(PhantomData))? {
            match key {
                Some((id, name)) => {
                    ctx.path.push(Seg::Field(name));
                    msg.field(id, &mut map, ctx)?;
                    ctx.path.pop();
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(true)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    reject!(bool num str seq);
}

/// Maps an object key to the message's field id without allocating.
struct KeySeed<M>(PhantomData<fn() -> M>);

impl<'de, M: Message<'de>> DeserializeSeed<'de> for KeySeed<M> {
    type Value = Option<(u8, &'static str)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, M: Message<'de>> Visitor<'de> for KeySeed<M> {
    type Value = Option<(u8, &'static str)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, k: &str) -> Result<Self::Value, E> {
        Ok(M::key(k))
    }
}

/// Reads a JSON array of `M` objects, appending each as field `field` to `out`.
struct RepSeed<'a, M> {
    ctx: &'a mut Ctx,
    out: &'a mut Vec<u8>,
    field: u32,
    _m: PhantomData<fn() -> M>,
}

impl<'a, M> RepSeed<'a, M> {
    fn new(ctx: &'a mut Ctx, out: &'a mut Vec<u8>, field: u32) -> Self {
        RepSeed { ctx, out, field, _m: PhantomData }
    }
    const EXPECTED: &'static str = "an array";
}

impl<'de, M: Message<'de>> DeserializeSeed<'de> for RepSeed<'_, M> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, M: Message<'de>> Visitor<'de> for RepSeed<'_, M> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::EXPECTED)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let RepSeed { ctx, out, field, .. } = self;
        if out.capacity() == 0 {
            *out = ctx.take_buf();
        }
        let mut i = 0;
        loop {
            ctx.path.push(Seg::Index(i));
            let mut msg = M::default();
            let more = seq.next_element_seed(MsgSeed { ctx: &mut *ctx, msg: &mut msg })?;
            ctx.path.pop();
            if more.is_none() {
                msg.recycle(ctx);
                return Ok(());
            }
            // A `null` element is an empty message, as in the collector.
            w_msg(&mut *out, field, &msg);
            msg.recycle(ctx);
            i += 1;
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    reject!(bool num str map);
}

// ------------------------------------------------------------------------------- scalar readers

/// A JSON string, borrowed from the body when it has no escapes.
struct StrSeed<'a> {
    ctx: &'a mut Ctx,
}

impl StrSeed<'_> {
    const EXPECTED: &'static str = "a string";
}

impl<'de> DeserializeSeed<'de> for StrSeed<'_> {
    type Value = Option<Str<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrSeed<'_> {
    type Value = Option<Str<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::EXPECTED)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    reject!(bool num seq map);
}

/// Why a number could not be read as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumErr {
    Syntax,
    Fraction,
    Range,
}

/// Magnitudes above this are out of range for every integer field (it is 2^64).
const INT_LIMIT: u128 = 1 << 64;

/// Exact integer value of a decimal string: an optional sign, digits, optionally a fraction and
/// an exponent (so "123", "-5", "007", "1e3" and "1.0" are all integers; "1.5" is not).
fn parse_int_text(s: &str) -> Result<i128, NumErr> {
    let b = s.as_bytes();
    // Fast path for the common case, plain digits that cannot overflow (timestamps).
    if !b.is_empty() && b.len() <= 19 && b.iter().all(u8::is_ascii_digit) {
        return Ok(b.iter().fold(0i128, |v, &d| v * 10 + i128::from(d - b'0')));
    }
    let mut i = 0;
    let neg = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = &b[int_start..i];
    let mut frac: &[u8] = &[];
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = &b[start..i];
    }
    if int_digits.is_empty() && frac.is_empty() {
        return Err(NumErr::Syntax);
    }
    let mut exp: i64 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let exp_neg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            // Saturate: anything this large is out of range or non-integral anyway.
            exp = (exp * 10 + i64::from(b[i] - b'0')).min(1_000_000_000);
            i += 1;
        }
        if i == start {
            return Err(NumErr::Syntax);
        }
        if exp_neg {
            exp = -exp;
        }
    }
    if i != b.len() {
        return Err(NumErr::Syntax);
    }
    // value = digits(int ++ frac) * 10^scale; the first `keep` digits are the integer part and
    // any digit after them must be zero.
    let scale = exp - frac.len() as i64;
    let keep = (int_digits.len() + frac.len()) as i64 + scale.min(0);
    let mut mag: u128 = 0;
    for (idx, &d) in int_digits.iter().chain(frac).enumerate() {
        let d = d - b'0';
        if (idx as i64) < keep {
            mag = mag * 10 + u128::from(d);
            if mag > INT_LIMIT {
                return Err(NumErr::Range);
            }
        } else if d != 0 {
            return Err(NumErr::Fraction);
        }
    }
    if mag != 0 {
        for _ in 0..scale.max(0) {
            mag *= 10;
            if mag > INT_LIMIT {
                return Err(NumErr::Range);
            }
        }
    }
    let v = mag as i128;
    Ok(if neg { -v } else { v })
}

/// A JSON number that serde_json parsed as a float (it had a fraction or an exponent, or did not
/// fit 64 bits): accepted when integral.
fn float_to_int(v: f64) -> Result<i128, NumErr> {
    if !v.is_finite() || v.fract() != 0.0 {
        return Err(NumErr::Fraction);
    }
    if v.abs() >= 1e30 {
        return Err(NumErr::Range);
    }
    Ok(v as i128)
}

/// An integer of a given range: a JSON integer, an integral JSON number, or a decimal string.
struct IntSeed<'a> {
    ctx: &'a mut Ctx,
    min: i128,
    max: i128,
    ty: &'static str,
}

impl IntSeed<'_> {
    const EXPECTED: &'static str = "an integer or a decimal string";

    fn check<E: de::Error>(
        self,
        r: Result<i128, NumErr>,
        shown: &dyn fmt::Display,
    ) -> Result<Option<i128>, E> {
        match r {
            Ok(v) if v >= self.min && v <= self.max => Ok(Some(v)),
            Ok(_) | Err(NumErr::Range) => {
                Err(self.ctx.fail(format_args!("{shown} is out of range for {}", self.ty)))
            }
            Err(NumErr::Fraction) => Err(self.ctx.fail(format_args!("{shown} is not an integer"))),
            Err(NumErr::Syntax) => {
                Err(self.ctx.fail(format_args!("{shown} is not a decimal integer")))
            }
        }
    }
}

self_seed!(IntSeed<'_>, Option<i128>);

impl<'de> Visitor<'de> for IntSeed<'_> {
    type Value = Option<i128>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.check(Ok(i128::from(v)), &v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.check(Ok(i128::from(v)), &v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.check(float_to_int(v), &v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.check(parse_int_text(v), &Snippet(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    reject!(bool seq map);
}

/// An enum: a JSON integer (any int32) or one of the value names.
struct EnumSeed<'a> {
    ctx: &'a mut Ctx,
    names: &'static [(&'static str, i32)],
    ty: &'static str,
}

impl EnumSeed<'_> {
    const EXPECTED: &'static str = "an enum name or an integer";

    fn number<E: de::Error>(
        self,
        r: Result<i128, NumErr>,
        shown: &dyn fmt::Display,
    ) -> Result<Option<i32>, E> {
        match r.map(i32::try_from) {
            Ok(Ok(v)) => Ok(Some(v)),
            Err(NumErr::Fraction) => Err(self.ctx.fail(format_args!("{shown} is not an integer"))),
            _ => Err(self.ctx.fail(format_args!("{shown} is out of range for {}", self.ty))),
        }
    }
}

self_seed!(EnumSeed<'_>, Option<i32>);

impl<'de> Visitor<'de> for EnumSeed<'_> {
    type Value = Option<i32>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.number(Ok(i128::from(v)), &v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.number(Ok(i128::from(v)), &v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.number(float_to_int(v), &v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match self.names.iter().find(|(name, _)| *name == v) {
            Some(&(_, n)) => Ok(Some(n)),
            None => Err(self.ctx.fail(format_args!("unknown {} {}", self.ty, Snippet(v)))),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    reject!(bool seq map);
}

const SPAN_KINDS: &[(&str, i32)] = &[
    ("SPAN_KIND_UNSPECIFIED", 0),
    ("SPAN_KIND_INTERNAL", 1),
    ("SPAN_KIND_SERVER", 2),
    ("SPAN_KIND_CLIENT", 3),
    ("SPAN_KIND_PRODUCER", 4),
    ("SPAN_KIND_CONSUMER", 5),
];

const STATUS_CODES: &[(&str, i32)] =
    &[("STATUS_CODE_UNSET", 0), ("STATUS_CODE_OK", 1), ("STATUS_CODE_ERROR", 2)];

/// A double: a JSON number, "NaN", "Infinity", "-Infinity" or a numeric string.
struct F64Seed<'a> {
    ctx: &'a mut Ctx,
}

impl F64Seed<'_> {
    const EXPECTED: &'static str = "a number or a numeric string";
}

self_seed!(F64Seed<'_>, Option<f64>);

fn parse_double_text(s: &str) -> Option<f64> {
    match s {
        "NaN" => return Some(f64::NAN),
        "Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let v: f64 = s.parse().ok()?;
    if v.is_infinite() {
        // Rust parses "1e999" as infinity; only an explicit "inf"/"infinity" spelling may be.
        let t = s.trim_start_matches(['+', '-']);
        if !t.as_bytes().first().is_some_and(|c| c.eq_ignore_ascii_case(&b'i')) {
            return None;
        }
    }
    Some(v)
}

impl<'de> Visitor<'de> for F64Seed<'_> {
    type Value = Option<f64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match parse_double_text(v) {
            Some(d) => Ok(Some(d)),
            None => Err(self.ctx.fail(format_args!("{} is not a valid double", Snippet(v)))),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    reject!(bool seq map);
}

/// A JSON boolean.
struct BoolSeed<'a> {
    ctx: &'a mut Ctx,
}

impl BoolSeed<'_> {
    const EXPECTED: &'static str = "a boolean";
}

self_seed!(BoolSeed<'_>, Option<bool>);

impl<'de> Visitor<'de> for BoolSeed<'_> {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::EXPECTED)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    reject!(num str seq map);
}

/// `bytesValue`: standard or URL-safe base64, padded or not. Like Go's decoder (which the
/// collector and protojson use), CR and LF are skipped and non-zero trailing bits are allowed.
struct B64Seed<'a> {
    ctx: &'a mut Ctx,
}

impl B64Seed<'_> {
    const EXPECTED: &'static str = "a base64 string";
}

self_seed!(B64Seed<'_>, Option<Vec<u8>>);

const B64_CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const B64_STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, B64_CONFIG);
const B64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, B64_CONFIG);

fn decode_base64(s: &str, out: &mut Vec<u8>) -> bool {
    let engine =
        if s.bytes().any(|c| c == b'-' || c == b'_') { &B64_URL_SAFE } else { &B64_STANDARD };
    if s.bytes().any(|c| c == b'\r' || c == b'\n') {
        let stripped: Vec<u8> = s.bytes().filter(|&c| c != b'\r' && c != b'\n').collect();
        engine.decode_vec(stripped, out).is_ok()
    } else {
        engine.decode_vec(s, out).is_ok()
    }
}

impl<'de> Visitor<'de> for B64Seed<'_> {
    type Value = Option<Vec<u8>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let mut buf = self.ctx.take_buf();
        if decode_base64(v, &mut buf) {
            Ok(Some(buf))
        } else {
            self.ctx.give_buf(buf);
            Err(self.ctx.fail(format_args!("{} is not valid base64", Snippet(v))))
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    reject!(bool num seq map);
}

/// A trace or span id as decoded from hex.
#[derive(Debug)]
enum Id {
    Inline { len: u8, buf: [u8; 16] },
    Heap(Vec<u8>),
}

impl Id {
    /// What an id that is not valid hex becomes: one zero byte, a length no id has, so the
    /// downstream validator drops (and counts) just that span.
    const INVALID: Id = Id::Inline { len: 1, buf: [0; 16] };

    fn as_slice(&self) -> &[u8] {
        match self {
            Id::Inline { len, buf } => &buf[..usize::from(*len)],
            Id::Heap(v) => v,
        }
    }
}

#[inline]
fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Hex (either case) to bytes. Empty: absent. Not valid hex: [`Id::INVALID`]. Valid hex of an
/// unusual length is kept as is; the validator judges lengths.
fn decode_hex_id(s: &str) -> Option<Id> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    if !b.len().is_multiple_of(2) {
        return Some(Id::INVALID);
    }
    let n = b.len() / 2;
    let mut id =
        if n <= 16 { Id::Inline { len: n as u8, buf: [0; 16] } } else { Id::Heap(vec![0; n]) };
    let dst = match &mut id {
        Id::Inline { buf, .. } => &mut buf[..n],
        Id::Heap(v) => &mut v[..],
    };
    for (d, pair) in dst.iter_mut().zip(b.chunks_exact(2)) {
        match (hex_val(pair[0]), hex_val(pair[1])) {
            (Some(hi), Some(lo)) => *d = (hi << 4) | lo,
            _ => return Some(Id::INVALID),
        }
    }
    Some(id)
}

struct IdSeed<'a> {
    ctx: &'a mut Ctx,
}

impl IdSeed<'_> {
    const EXPECTED: &'static str = "a hex string";
}

self_seed!(IdSeed<'_>, Option<Id>);

impl<'de> Visitor<'de> for IdSeed<'_> {
    type Value = Option<Id>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(decode_hex_id(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    reject!(bool num seq map);
}

// Typed field readers: `Ok(None)` for `null`.

fn read_str<'de, A: MapAccess<'de>>(
    map: &mut A,
    ctx: &mut Ctx,
    slot: &mut Option<Str<'de>>,
) -> Result<(), A::Error> {
    if let Some(v) = map.next_value_seed(StrSeed { ctx })? {
        *slot = Some(v);
    }
    Ok(())
}

fn read_id<'de, A: MapAccess<'de>>(
    map: &mut A,
    ctx: &mut Ctx,
    slot: &mut Option<Id>,
) -> Result<(), A::Error> {
    // "" means absent, but (unlike null) it does replace an earlier value.
    *slot = map.next_value_seed(IdSeed { ctx })?;
    Ok(())
}

fn read_int<'de, A: MapAccess<'de>>(
    map: &mut A,
    ctx: &mut Ctx,
    min: i128,
    max: i128,
    ty: &'static str,
) -> Result<Option<i128>, A::Error> {
    map.next_value_seed(IntSeed { ctx, min, max, ty })
}

fn read_u64<'de, A: MapAccess<'de>>(
    map: &mut A,
    ctx: &mut Ctx,
    slot: &mut u64,
) -> Result<(), A::Error> {
    if let Some(v) = read_int(map, ctx, 0, i128::from(u64::MAX), "uint64")? {
        *slot = v as u64;
    }
    Ok(())
}

fn read_u32<'de, A: MapAccess<'de>>(
    map: &mut A,
    ctx: &mut Ctx,
    slot: &mut u32,
) -> Result<(), A::Error> {
    if let Some(v) = read_int(map, ctx, 0, i128::from(u32::MAX), "uint32")? {
        *slot = v as u32;
    }
    Ok(())
}

fn read_enum<'de, A: MapAccess<'de>>(
    map: &mut A,
    ctx: &mut Ctx,
    names: &'static [(&'static str, i32)],
    ty: &'static str,
    slot: &mut i32,
) -> Result<(), A::Error> {
    if let Some(v) = map.next_value_seed(EnumSeed { ctx, names, ty })? {
        *slot = v;
    }
    Ok(())
}

/// A singular message field: merged into `msg`; `present` records that an object was seen.
fn read_msg<'de, A: MapAccess<'de>, M: Message<'de>>(
    map: &mut A,
    ctx: &mut Ctx,
    msg: &mut M,
    present: &mut bool,
) -> Result<(), A::Error> {
    *present |= map.next_value_seed(MsgSeed { ctx, msg })?;
    Ok(())
}

/// A repeated message field: elements appended to `out` as field `field`.
fn read_rep<'de, A: MapAccess<'de>, M: Message<'de>>(
    map: &mut A,
    ctx: &mut Ctx,
    out: &mut Vec<u8>,
    field: u32,
) -> Result<(), A::Error> {
    map.next_value_seed(RepSeed::<M>::new(ctx, out, field))
}

fn give(ctx: &mut Ctx, bufs: [Vec<u8>; 3]) {
    for b in bufs {
        ctx.give_buf(b);
    }
}

// ------------------------------------------------------------------------------------ messages

/// ExportTraceServiceRequest. It has one field, so resource spans go straight to the output.
struct Root<'a> {
    ctx: &'a mut Ctx,
    out: &'a mut Vec<u8>,
}

impl Root<'_> {
    const EXPECTED: &'static str = "an object";
}

self_seed!(Root<'_>, ());

impl<'de> Visitor<'de> for Root<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::EXPECTED)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Root { ctx, out } = self;
        while let Some(key) = map.next_key_seed(KeySeed::<RootKeys>(PhantomData))? {
            if let Some((_, name)) = key {
                ctx.path.push(Seg::Field(name));
                map.next_value_seed(RepSeed::<ResourceSpans>::new(&mut *ctx, &mut *out, 1))?;
                ctx.path.pop();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    reject!(bool num str null seq);
}

/// Only names the root's keys; the root itself is [`Root`].
#[derive(Default)]
struct RootKeys;

impl<'de> Message<'de> for RootKeys {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        match k {
            "resourceSpans" | "resource_spans" => Some((1, "resourceSpans")),
            _ => None,
        }
    }
    fn field<A: MapAccess<'de>>(
        &mut self,
        _: u8,
        map: &mut A,
        _: &mut Ctx,
    ) -> Result<(), A::Error> {
        map.next_value::<IgnoredAny>().map(drop)
    }
    fn write<S: Sink>(&self, _: &mut S) {}
    fn recycle(self, _: &mut Ctx) {}
}

#[derive(Default)]
struct ResourceSpans<'de> {
    resource: Resource,
    has_resource: bool,
    scope_spans: Vec<u8>,
    schema_url: Option<Str<'de>>,
}

impl<'de> Message<'de> for ResourceSpans<'de> {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        Some(match k {
            "resource" => (1, "resource"),
            "scopeSpans" | "scope_spans" => (2, "scopeSpans"),
            "schemaUrl" | "schema_url" => (3, "schemaUrl"),
            _ => return None,
        })
    }

    fn field<A: MapAccess<'de>>(
        &mut self,
        id: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error> {
        match id {
            1 => read_msg(map, ctx, &mut self.resource, &mut self.has_resource),
            2 => read_rep::<A, ScopeSpans>(map, ctx, &mut self.scope_spans, 2),
            _ => read_str(map, ctx, &mut self.schema_url),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) {
        if self.has_resource {
            w_msg(s, 1, &self.resource);
        }
        s.raw(&self.scope_spans);
        w_str(s, 3, &self.schema_url);
    }

    fn recycle(self, ctx: &mut Ctx) {
        give(ctx, [self.resource.attributes, self.scope_spans, Vec::new()]);
    }
}

#[derive(Default)]
struct Resource {
    attributes: Vec<u8>,
    dropped_attributes_count: u32,
}

impl<'de> Message<'de> for Resource {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        Some(match k {
            "attributes" => (1, "attributes"),
            "droppedAttributesCount" | "dropped_attributes_count" => (2, "droppedAttributesCount"),
            _ => return None,
        })
    }

    fn field<A: MapAccess<'de>>(
        &mut self,
        id: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error> {
        match id {
            1 => read_rep::<A, KeyValue>(map, ctx, &mut self.attributes, 1),
            _ => read_u32(map, ctx, &mut self.dropped_attributes_count),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) {
        s.raw(&self.attributes);
        w_varint(s, 2, u64::from(self.dropped_attributes_count));
    }

    fn recycle(self, ctx: &mut Ctx) {
        ctx.give_buf(self.attributes);
    }
}

#[derive(Default)]
struct ScopeSpans<'de> {
    scope: Scope<'de>,
    has_scope: bool,
    spans: Vec<u8>,
    schema_url: Option<Str<'de>>,
}

impl<'de> Message<'de> for ScopeSpans<'de> {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        Some(match k {
            "scope" => (1, "scope"),
            "spans" => (2, "spans"),
            "schemaUrl" | "schema_url" => (3, "schemaUrl"),
            _ => return None,
        })
    }

    fn field<A: MapAccess<'de>>(
        &mut self,
        id: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error> {
        match id {
            1 => read_msg(map, ctx, &mut self.scope, &mut self.has_scope),
            2 => read_rep::<A, Span>(map, ctx, &mut self.spans, 2),
            _ => read_str(map, ctx, &mut self.schema_url),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) {
        if self.has_scope {
            w_msg(s, 1, &self.scope);
        }
        s.raw(&self.spans);
        w_str(s, 3, &self.schema_url);
    }

    fn recycle(self, ctx: &mut Ctx) {
        give(ctx, [self.scope.attributes, self.spans, Vec::new()]);
    }
}

/// InstrumentationScope.
#[derive(Default)]
struct Scope<'de> {
    name: Option<Str<'de>>,
    version: Option<Str<'de>>,
    attributes: Vec<u8>,
    dropped_attributes_count: u32,
}

impl<'de> Message<'de> for Scope<'de> {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        Some(match k {
            "name" => (1, "name"),
            "version" => (2, "version"),
            "attributes" => (3, "attributes"),
            "droppedAttributesCount" | "dropped_attributes_count" => (4, "droppedAttributesCount"),
            _ => return None,
        })
    }

    fn field<A: MapAccess<'de>>(
        &mut self,
        id: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error> {
        match id {
            1 => read_str(map, ctx, &mut self.name),
            2 => read_str(map, ctx, &mut self.version),
            3 => read_rep::<A, KeyValue>(map, ctx, &mut self.attributes, 3),
            _ => read_u32(map, ctx, &mut self.dropped_attributes_count),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) {
        w_str(s, 1, &self.name);
        w_str(s, 2, &self.version);
        s.raw(&self.attributes);
        w_varint(s, 4, u64::from(self.dropped_attributes_count));
    }

    fn recycle(self, ctx: &mut Ctx) {
        ctx.give_buf(self.attributes);
    }
}

#[derive(Default)]
struct Span<'de> {
    trace_id: Option<Id>,
    span_id: Option<Id>,
    trace_state: Option<Str<'de>>,
    parent_span_id: Option<Id>,
    name: Option<Str<'de>>,
    kind: i32,
    start_time_unix_nano: u64,
    end_time_unix_nano: u64,
    attributes: Vec<u8>,
    dropped_attributes_count: u32,
    events: Vec<u8>,
    dropped_events_count: u32,
    links: Vec<u8>,
    dropped_links_count: u32,
    status: Status<'de>,
    has_status: bool,
    flags: u32,
}

impl<'de> Message<'de> for Span<'de> {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        Some(match k {
            "traceId" | "trace_id" => (1, "traceId"),
            "spanId" | "span_id" => (2, "spanId"),
            "traceState" | "trace_state" => (3, "traceState"),
            "parentSpanId" | "parent_span_id" => (4, "parentSpanId"),
            "name" => (5, "name"),
            "kind" => (6, "kind"),
            "startTimeUnixNano" | "start_time_unix_nano" => (7, "startTimeUnixNano"),
            "endTimeUnixNano" | "end_time_unix_nano" => (8, "endTimeUnixNano"),
            "attributes" => (9, "attributes"),
            "droppedAttributesCount" | "dropped_attributes_count" => (10, "droppedAttributesCount"),
            "events" => (11, "events"),
            "droppedEventsCount" | "dropped_events_count" => (12, "droppedEventsCount"),
            "links" => (13, "links"),
            "droppedLinksCount" | "dropped_links_count" => (14, "droppedLinksCount"),
            "status" => (15, "status"),
            "flags" => (16, "flags"),
            _ => return None,
        })
    }

    fn field<A: MapAccess<'de>>(
        &mut self,
        id: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error> {
        match id {
            1 => read_id(map, ctx, &mut self.trace_id),
            2 => read_id(map, ctx, &mut self.span_id),
            3 => read_str(map, ctx, &mut self.trace_state),
            4 => read_id(map, ctx, &mut self.parent_span_id),
            5 => read_str(map, ctx, &mut self.name),
            6 => read_enum(map, ctx, SPAN_KINDS, "SpanKind", &mut self.kind),
            7 => read_u64(map, ctx, &mut self.start_time_unix_nano),
            8 => read_u64(map, ctx, &mut self.end_time_unix_nano),
            9 => read_rep::<A, KeyValue>(map, ctx, &mut self.attributes, 9),
            10 => read_u32(map, ctx, &mut self.dropped_attributes_count),
            11 => read_rep::<A, Event>(map, ctx, &mut self.events, 11),
            12 => read_u32(map, ctx, &mut self.dropped_events_count),
            13 => read_rep::<A, Link>(map, ctx, &mut self.links, 13),
            14 => read_u32(map, ctx, &mut self.dropped_links_count),
            15 => read_msg(map, ctx, &mut self.status, &mut self.has_status),
            _ => read_u32(map, ctx, &mut self.flags),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) {
        w_id(s, 1, &self.trace_id);
        w_id(s, 2, &self.span_id);
        w_str(s, 3, &self.trace_state);
        w_id(s, 4, &self.parent_span_id);
        w_str(s, 5, &self.name);
        w_varint(s, 6, self.kind as i64 as u64);
        w_fixed64(s, 7, self.start_time_unix_nano);
        w_fixed64(s, 8, self.end_time_unix_nano);
        s.raw(&self.attributes);
        w_varint(s, 10, u64::from(self.dropped_attributes_count));
        s.raw(&self.events);
        w_varint(s, 12, u64::from(self.dropped_events_count));
        s.raw(&self.links);
        w_varint(s, 14, u64::from(self.dropped_links_count));
        if self.has_status {
            w_msg(s, 15, &self.status);
        }
        w_fixed32(s, 16, self.flags);
    }

    fn recycle(self, ctx: &mut Ctx) {
        give(ctx, [self.attributes, self.events, self.links]);
    }
}

/// Span.Event.
#[derive(Default)]
struct Event<'de> {
    time_unix_nano: u64,
    name: Option<Str<'de>>,
    attributes: Vec<u8>,
    dropped_attributes_count: u32,
}

impl<'de> Message<'de> for Event<'de> {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        Some(match k {
            "timeUnixNano" | "time_unix_nano" => (1, "timeUnixNano"),
            "name" => (2, "name"),
            "attributes" => (3, "attributes"),
            "droppedAttributesCount" | "dropped_attributes_count" => (4, "droppedAttributesCount"),
            _ => return None,
        })
    }

    fn field<A: MapAccess<'de>>(
        &mut self,
        id: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error> {
        match id {
            1 => read_u64(map, ctx, &mut self.time_unix_nano),
            2 => read_str(map, ctx, &mut self.name),
            3 => read_rep::<A, KeyValue>(map, ctx, &mut self.attributes, 3),
            _ => read_u32(map, ctx, &mut self.dropped_attributes_count),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) {
        w_fixed64(s, 1, self.time_unix_nano);
        w_str(s, 2, &self.name);
        s.raw(&self.attributes);
        w_varint(s, 4, u64::from(self.dropped_attributes_count));
    }

    fn recycle(self, ctx: &mut Ctx) {
        ctx.give_buf(self.attributes);
    }
}

/// Span.Link.
#[derive(Default)]
struct Link<'de> {
    trace_id: Option<Id>,
    span_id: Option<Id>,
    trace_state: Option<Str<'de>>,
    attributes: Vec<u8>,
    dropped_attributes_count: u32,
    flags: u32,
}

impl<'de> Message<'de> for Link<'de> {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        Some(match k {
            "traceId" | "trace_id" => (1, "traceId"),
            "spanId" | "span_id" => (2, "spanId"),
            "traceState" | "trace_state" => (3, "traceState"),
            "attributes" => (4, "attributes"),
            "droppedAttributesCount" | "dropped_attributes_count" => (5, "droppedAttributesCount"),
            "flags" => (6, "flags"),
            _ => return None,
        })
    }

    fn field<A: MapAccess<'de>>(
        &mut self,
        id: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error> {
        match id {
            1 => read_id(map, ctx, &mut self.trace_id),
            2 => read_id(map, ctx, &mut self.span_id),
            3 => read_str(map, ctx, &mut self.trace_state),
            4 => read_rep::<A, KeyValue>(map, ctx, &mut self.attributes, 4),
            5 => read_u32(map, ctx, &mut self.dropped_attributes_count),
            _ => read_u32(map, ctx, &mut self.flags),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) {
        w_id(s, 1, &self.trace_id);
        w_id(s, 2, &self.span_id);
        w_str(s, 3, &self.trace_state);
        s.raw(&self.attributes);
        w_varint(s, 5, u64::from(self.dropped_attributes_count));
        w_fixed32(s, 6, self.flags);
    }

    fn recycle(self, ctx: &mut Ctx) {
        ctx.give_buf(self.attributes);
    }
}

#[derive(Default)]
struct Status<'de> {
    message: Option<Str<'de>>,
    code: i32,
}

impl<'de> Message<'de> for Status<'de> {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        Some(match k {
            "message" => (2, "message"),
            "code" => (3, "code"),
            // Field 1, deprecated_code, is ignored like any unknown field.
            _ => return None,
        })
    }

    fn field<A: MapAccess<'de>>(
        &mut self,
        id: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error> {
        match id {
            2 => read_str(map, ctx, &mut self.message),
            _ => read_enum(map, ctx, STATUS_CODES, "StatusCode", &mut self.code),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) {
        w_str(s, 2, &self.message);
        w_varint(s, 3, self.code as i64 as u64);
    }

    fn recycle(self, _: &mut Ctx) {}
}

#[derive(Default)]
struct KeyValue<'de> {
    key: Option<Str<'de>>,
    value: AnyValue<'de>,
    has_value: bool,
}

impl<'de> Message<'de> for KeyValue<'de> {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        Some(match k {
            "key" => (1, "key"),
            "value" => (2, "value"),
            _ => return None,
        })
    }

    fn field<A: MapAccess<'de>>(
        &mut self,
        id: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error> {
        match id {
            1 => read_str(map, ctx, &mut self.key),
            _ => read_msg(map, ctx, &mut self.value, &mut self.has_value),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) {
        w_str(s, 1, &self.key);
        if self.has_value {
            w_msg(s, 2, &self.value);
        }
    }

    fn recycle(self, ctx: &mut Ctx) {
        self.value.recycle(ctx);
    }
}

/// AnyValue: a oneof; the last member present in the JSON object wins.
#[derive(Default)]
enum AnyValue<'de> {
    #[default]
    Empty,
    Str(Str<'de>),
    Bool(bool),
    Int(i64),
    Double(f64),
    /// Encoded ArrayValue body.
    Array(Vec<u8>),
    /// Encoded KeyValueList body.
    Kvlist(Vec<u8>),
    Bytes(Vec<u8>),
}

impl<'de> AnyValue<'de> {
    fn set(&mut self, v: AnyValue<'de>, ctx: &mut Ctx) {
        std::mem::replace(self, v).recycle(ctx);
    }

    /// Reads an `arrayValue`/`kvlistValue` object; `None` for null.
    fn read_list<A: MapAccess<'de>, M: Message<'de> + ValueList>(
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<Option<Vec<u8>>, A::Error> {
        if ctx.any_depth >= MAX_ANY_DEPTH {
            return Err(ctx.fail(format_args!("values nested more than {MAX_ANY_DEPTH} deep")));
        }
        ctx.any_depth += 1;
        let mut list = M::default();
        let present = map.next_value_seed(MsgSeed { ctx: &mut *ctx, msg: &mut list })?;
        ctx.any_depth -= 1;
        let values = list.into_values();
        if present {
            Ok(Some(values))
        } else {
            ctx.give_buf(values);
            Ok(None)
        }
    }
}

impl<'de> Message<'de> for AnyValue<'de> {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        Some(match k {
            "stringValue" | "string_value" => (1, "stringValue"),
            "boolValue" | "bool_value" => (2, "boolValue"),
            "intValue" | "int_value" => (3, "intValue"),
            "doubleValue" | "double_value" => (4, "doubleValue"),
            "arrayValue" | "array_value" => (5, "arrayValue"),
            "kvlistValue" | "kvlist_value" => (6, "kvlistValue"),
            "bytesValue" | "bytes_value" => (7, "bytesValue"),
            _ => return None,
        })
    }

    fn field<A: MapAccess<'de>>(
        &mut self,
        id: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error> {
        let v = match id {
            1 => map.next_value_seed(StrSeed { ctx: &mut *ctx })?.map(AnyValue::Str),
            2 => map.next_value_seed(BoolSeed { ctx: &mut *ctx })?.map(AnyValue::Bool),
            3 => read_int(map, ctx, i128::from(i64::MIN), i128::from(i64::MAX), "int64")?
                .map(|v| AnyValue::Int(v as i64)),
            4 => map.next_value_seed(F64Seed { ctx: &mut *ctx })?.map(AnyValue::Double),
            5 => Self::read_list::<A, ArrayValue>(map, ctx)?.map(AnyValue::Array),
            6 => Self::read_list::<A, KeyValueList>(map, ctx)?.map(AnyValue::Kvlist),
            _ => map.next_value_seed(B64Seed { ctx: &mut *ctx })?.map(AnyValue::Bytes),
        };
        if let Some(v) = v {
            self.set(v, ctx);
        }
        Ok(())
    }

    fn write<S: Sink>(&self, s: &mut S) {
        // Oneof members are written even when they hold the zero value.
        match self {
            AnyValue::Empty => {}
            AnyValue::Str(v) => w_len(s, 1, v.as_bytes()),
            AnyValue::Bool(v) => {
                w_key(s, 2, pb::VARINT);
                s.varint(u64::from(*v));
            }
            AnyValue::Int(v) => {
                w_key(s, 3, pb::VARINT);
                s.varint(*v as u64);
            }
            AnyValue::Double(v) => {
                w_key(s, 4, pb::I64);
                s.raw(&v.to_bits().to_le_bytes());
            }
            AnyValue::Array(body) => w_len(s, 5, body),
            AnyValue::Kvlist(body) => w_len(s, 6, body),
            AnyValue::Bytes(v) => w_len(s, 7, v),
        }
    }

    fn recycle(self, ctx: &mut Ctx) {
        match self {
            AnyValue::Array(b) | AnyValue::Kvlist(b) | AnyValue::Bytes(b) => ctx.give_buf(b),
            _ => {}
        }
    }
}

/// ArrayValue and KeyValueList: one repeated field 1, `values`.
trait ValueList {
    fn into_values(self) -> Vec<u8>;
}

#[derive(Default)]
struct ArrayValue {
    values: Vec<u8>,
}

impl ValueList for ArrayValue {
    fn into_values(self) -> Vec<u8> {
        self.values
    }
}

impl<'de> Message<'de> for ArrayValue {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        (k == "values").then_some((1, "values"))
    }

    fn field<A: MapAccess<'de>>(
        &mut self,
        _: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error> {
        read_rep::<A, AnyValue>(map, ctx, &mut self.values, 1)
    }

    fn write<S: Sink>(&self, s: &mut S) {
        s.raw(&self.values);
    }

    fn recycle(self, ctx: &mut Ctx) {
        ctx.give_buf(self.values);
    }
}

#[derive(Default)]
struct KeyValueList {
    values: Vec<u8>,
}

impl ValueList for KeyValueList {
    fn into_values(self) -> Vec<u8> {
        self.values
    }
}

impl<'de> Message<'de> for KeyValueList {
    fn key(k: &str) -> Option<(u8, &'static str)> {
        (k == "values").then_some((1, "values"))
    }

    fn field<A: MapAccess<'de>>(
        &mut self,
        _: u8,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error> {
        read_rep::<A, KeyValue>(map, ctx, &mut self.values, 1)
    }

    fn write<S: Sink>(&self, s: &mut S) {
        s.raw(&self.values);
    }

    fn recycle(self, ctx: &mut Ctx) {
        ctx.give_buf(self.values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{Field, Reader};
    use proptest::collection::vec;
    use proptest::prelude::*;
    use serde_json::{json, Map, Value as J};

    // ------------------------------------------------------------- test-only protobuf decoder

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Req {
        rs: Vec<Rs>,
    }

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Rs {
        resource: Option<Res>,
        scope_spans: Vec<Ss>,
        schema_url: String,
    }

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Res {
        attrs: Vec<Kv>,
        dropped: u32,
    }

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Ss {
        scope: Option<Scp>,
        spans: Vec<Sp>,
        schema_url: String,
    }

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Scp {
        name: String,
        version: String,
        attrs: Vec<Kv>,
        dropped: u32,
    }

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Sp {
        trace_id: Vec<u8>,
        span_id: Vec<u8>,
        trace_state: String,
        parent: Vec<u8>,
        name: String,
        kind: i32,
        start: u64,
        end: u64,
        attrs: Vec<Kv>,
        dropped_attrs: u32,
        events: Vec<Ev>,
        dropped_events: u32,
        links: Vec<Lk>,
        dropped_links: u32,
        status: Option<St>,
        flags: u32,
    }

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Ev {
        time: u64,
        name: String,
        attrs: Vec<Kv>,
        dropped: u32,
    }

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Lk {
        trace_id: Vec<u8>,
        span_id: Vec<u8>,
        trace_state: String,
        attrs: Vec<Kv>,
        dropped: u32,
        flags: u32,
    }

    #[derive(Debug, Clone, Default, PartialEq)]
    struct St {
        message: String,
        code: i32,
    }

    #[derive(Debug, Clone, PartialEq)]
    struct Kv {
        key: String,
        value: Option<Av>,
    }

    /// AnyValue; doubles as bits so NaN compares equal to itself.
    #[derive(Debug, Clone, PartialEq)]
    enum Av {
        Empty,
        Str(String),
        Bool(bool),
        Int(i64),
        Double(u64),
        Array(Vec<Av>),
        Kvlist(Vec<Kv>),
        Bytes(Vec<u8>),
    }

    /// The fields of one message. Panics unless they are canonical: in field-number order, and
    /// only fields listed in `repeated` occurring more than once.
    fn fields<'a>(buf: &'a [u8], repeated: &[u32]) -> Vec<Field<'a>> {
        let mut r = Reader::new(buf);
        let mut out = Vec::new();
        let mut last = 0;
        while let Some(f) = r.next_field().expect("valid protobuf") {
            assert!(
                f.number > last || (f.number == last && repeated.contains(&f.number)),
                "field {} after {last}: not canonical",
                f.number
            );
            last = f.number;
            out.push(f);
        }
        out
    }

    /// proto3 scalars: a field that is written must not hold the default value.
    fn string(f: &Field<'_>) -> String {
        let s = f.as_str().expect("string field").to_owned();
        assert!(!s.is_empty(), "empty string field {} written", f.number);
        s
    }
    fn bytes(f: &Field<'_>) -> Vec<u8> {
        let b = f.as_bytes().expect("bytes field").to_vec();
        assert!(!b.is_empty(), "empty bytes field {} written", f.number);
        b
    }
    fn varint(f: &Field<'_>) -> u64 {
        let v = f.as_varint().expect("varint field");
        assert_ne!(v, 0, "zero varint field {} written", f.number);
        v
    }
    fn uint32(f: &Field<'_>) -> u32 {
        u32::try_from(varint(f)).expect("uint32 fits")
    }
    fn enum32(f: &Field<'_>) -> i32 {
        let v = varint(f) as i64;
        i32::try_from(v).expect("enum is an int32")
    }
    fn fixed64(f: &Field<'_>) -> u64 {
        let v = f.as_fixed64().expect("fixed64 field");
        assert_ne!(v, 0, "zero fixed64 field {} written", f.number);
        v
    }
    fn fixed32(f: &Field<'_>) -> u32 {
        let v = f.as_fixed32().expect("fixed32 field");
        assert_ne!(v, 0, "zero fixed32 field {} written", f.number);
        v
    }
    fn sub<'a>(f: &Field<'a>) -> &'a [u8] {
        f.as_bytes().expect("message field")
    }

    fn decode(buf: &[u8]) -> Req {
        let mut req = Req::default();
        for f in fields(buf, &[1]) {
            match f.number {
                1 => req.rs.push(decode_rs(sub(&f))),
                n => panic!("unexpected request field {n}"),
            }
        }
        req
    }

    fn decode_rs(buf: &[u8]) -> Rs {
        let mut m = Rs::default();
        for f in fields(buf, &[2]) {
            match f.number {
                1 => {
                    let mut r = Res::default();
                    for g in fields(sub(&f), &[1]) {
                        match g.number {
                            1 => r.attrs.push(decode_kv(sub(&g))),
                            2 => r.dropped = uint32(&g),
                            n => panic!("unexpected resource field {n}"),
                        }
                    }
                    m.resource = Some(r);
                }
                2 => m.scope_spans.push(decode_ss(sub(&f))),
                3 => m.schema_url = string(&f),
                n => panic!("unexpected ResourceSpans field {n}"),
            }
        }
        m
    }

    fn decode_ss(buf: &[u8]) -> Ss {
        let mut m = Ss::default();
        for f in fields(buf, &[2]) {
            match f.number {
                1 => {
                    let mut s = Scp::default();
                    for g in fields(sub(&f), &[3]) {
                        match g.number {
                            1 => s.name = string(&g),
                            2 => s.version = string(&g),
                            3 => s.attrs.push(decode_kv(sub(&g))),
                            4 => s.dropped = uint32(&g),
                            n => panic!("unexpected scope field {n}"),
                        }
                    }
                    m.scope = Some(s);
                }
                2 => m.spans.push(decode_span(sub(&f))),
                3 => m.schema_url = string(&f),
                n => panic!("unexpected ScopeSpans field {n}"),
            }
        }
        m
    }

    fn decode_span(buf: &[u8]) -> Sp {
        let mut m = Sp::default();
        for f in fields(buf, &[9, 11, 13]) {
            match f.number {
                1 => m.trace_id = bytes(&f),
                2 => m.span_id = bytes(&f),
                3 => m.trace_state = string(&f),
                4 => m.parent = bytes(&f),
                5 => m.name = string(&f),
                6 => m.kind = enum32(&f),
                7 => m.start = fixed64(&f),
                8 => m.end = fixed64(&f),
                9 => m.attrs.push(decode_kv(sub(&f))),
                10 => m.dropped_attrs = uint32(&f),
                11 => {
                    let mut e = Ev::default();
                    for g in fields(sub(&f), &[3]) {
                        match g.number {
                            1 => e.time = fixed64(&g),
                            2 => e.name = string(&g),
                            3 => e.attrs.push(decode_kv(sub(&g))),
                            4 => e.dropped = uint32(&g),
                            n => panic!("unexpected event field {n}"),
                        }
                    }
                    m.events.push(e);
                }
                12 => m.dropped_events = uint32(&f),
                13 => {
                    let mut l = Lk::default();
                    for g in fields(sub(&f), &[4]) {
                        match g.number {
                            1 => l.trace_id = bytes(&g),
                            2 => l.span_id = bytes(&g),
                            3 => l.trace_state = string(&g),
                            4 => l.attrs.push(decode_kv(sub(&g))),
                            5 => l.dropped = uint32(&g),
                            6 => l.flags = fixed32(&g),
                            n => panic!("unexpected link field {n}"),
                        }
                    }
                    m.links.push(l);
                }
                14 => m.dropped_links = uint32(&f),
                15 => {
                    let mut s = St::default();
                    for g in fields(sub(&f), &[]) {
                        match g.number {
                            2 => s.message = string(&g),
                            3 => s.code = enum32(&g),
                            n => panic!("unexpected status field {n}"),
                        }
                    }
                    m.status = Some(s);
                }
                16 => m.flags = fixed32(&f),
                n => panic!("unexpected span field {n}"),
            }
        }
        m
    }

    fn decode_kv(buf: &[u8]) -> Kv {
        let mut kv = Kv { key: String::new(), value: None };
        for f in fields(buf, &[]) {
            match f.number {
                1 => kv.key = string(&f),
                2 => kv.value = Some(decode_any(sub(&f))),
                n => panic!("unexpected KeyValue field {n}"),
            }
        }
        kv
    }

    fn decode_any(buf: &[u8]) -> Av {
        let fs = fields(buf, &[]);
        assert!(fs.len() <= 1, "AnyValue with {} members", fs.len());
        let Some(f) = fs.first() else { return Av::Empty };
        match f.number {
            1 => Av::Str(f.as_str().unwrap().to_owned()),
            2 => Av::Bool(match f.as_varint().unwrap() {
                0 => false,
                1 => true,
                v => panic!("bool {v}"),
            }),
            3 => Av::Int(f.as_varint().unwrap() as i64),
            4 => Av::Double(f.as_fixed64().unwrap()),
            5 => Av::Array(
                fields(sub(f), &[1])
                    .iter()
                    .map(|g| {
                        assert_eq!(g.number, 1);
                        decode_any(sub(g))
                    })
                    .collect(),
            ),
            6 => Av::Kvlist(
                fields(sub(f), &[1])
                    .iter()
                    .map(|g| {
                        assert_eq!(g.number, 1);
                        decode_kv(sub(g))
                    })
                    .collect(),
            ),
            7 => Av::Bytes(f.as_bytes().unwrap().to_vec()),
            n => panic!("unexpected AnyValue field {n}"),
        }
    }

    // ----------------------------------------------------------------------------- helpers

    fn ok(json: &str) -> Vec<u8> {
        json_to_protobuf(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn err(json: &str) -> String {
        match json_to_protobuf(json.as_bytes()) {
            Ok(out) => panic!("{json}: expected an error, got {out:?}"),
            Err(e) => e,
        }
    }

    /// Wraps one span's JSON in a request.
    fn span_req(span: &str) -> String {
        format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{span}]}}]}}]}}"#)
    }

    fn one_span(span: &str) -> Sp {
        let req = decode(&ok(&span_req(span)));
        assert_eq!(req.rs.len(), 1);
        assert_eq!(req.rs[0].scope_spans.len(), 1);
        assert_eq!(req.rs[0].scope_spans[0].spans.len(), 1);
        req.rs[0].scope_spans[0].spans[0].clone()
    }

    /// The value of a single span attribute given as AnyValue JSON.
    fn attr_value(value_json: &str) -> Option<Av> {
        let sp = one_span(&format!(r#"{{"attributes":[{{"key":"k","value":{value_json}}}]}}"#));
        assert_eq!(sp.attrs.len(), 1);
        sp.attrs[0].value.clone()
    }

    fn span_err(span: &str) -> String {
        err(&span_req(span))
    }

    const SPAN_PATH: &str = "resourceSpans[0].scopeSpans[0].spans[0]";

    fn kv(key: &str, v: Av) -> Kv {
        Kv { key: key.into(), value: Some(v) }
    }
    fn s(v: &str) -> Av {
        Av::Str(v.into())
    }
    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // ------------------------------------------------------------------------ the big one

    const REALISTIC: &str = r#"{
      "resourceSpans": [
        {
          "resource": {
            "attributes": [
              {"key": "service.name", "value": {"stringValue": "checkout"}},
              {"key": "host.cpus", "value": {"intValue": "8"}}
            ],
            "droppedAttributesCount": 1
          },
          "scopeSpans": [
            {
              "scope": {
                "name": "io.opentelemetry.http", "version": "1.2.3",
                "attributes": [{"key": "s", "value": {"boolValue": true}}],
                "droppedAttributesCount": 2
              },
              "spans": [
                {
                  "traceId": "5B8EFFF798038103D269B633813FC60C",
                  "spanId": "EEE19B7EC3C1B174",
                  "parentSpanId": "eee19b7ec3c1b173",
                  "traceState": "rojo=00f067aa0ba902b7",
                  "name": "GET /cart \"quoted\" \u00e9",
                  "kind": 2,
                  "startTimeUnixNano": "1544712660000000000",
                  "endTimeUnixNano": 1544712661000000000,
                  "attributes": [
                    {"key": "http.status_code", "value": {"intValue": 200}},
                    {"key": "ratio", "value": {"doubleValue": 0.25}},
                    {"key": "neg", "value": {"intValue": "-5"}},
                    {"key": "raw", "value": {"bytesValue": "AQID/w=="}},
                    {"key": "list", "value": {"arrayValue": {"values": [
                      {"stringValue": "a"},
                      {"intValue": "1"},
                      {"arrayValue": {"values": [{"boolValue": false}]}},
                      {}
                    ]}}},
                    {"key": "map", "value": {"kvlistValue": {"values": [
                      {"key": "inner", "value": {"doubleValue": "NaN"}},
                      {"key": "deeper", "value": {"kvlistValue": {"values": [
                        {"key": "x", "value": {"stringValue": ""}}
                      ]}}}
                    ]}}},
                    {"key": "empty", "value": {}},
                    {"key": "novalue"}
                  ],
                  "droppedAttributesCount": 3,
                  "events": [
                    {
                      "timeUnixNano": "1544712660500000000", "name": "cache miss",
                      "attributes": [{"key": "key", "value": {"stringValue": "cart:42"}}],
                      "droppedAttributesCount": 4
                    },
                    {"timeUnixNano": 0, "name": "no attrs"}
                  ],
                  "droppedEventsCount": 5,
                  "links": [
                    {
                      "traceId": "00112233445566778899aabbccddeeff",
                      "spanId": "0011223344556677",
                      "traceState": "a=b",
                      "attributes": [{"key": "link.kind", "value": {"stringValue": "follows"}}],
                      "droppedAttributesCount": 6,
                      "flags": 257
                    }
                  ],
                  "droppedLinksCount": 7,
                  "status": {"message": "boom", "code": "STATUS_CODE_ERROR"},
                  "flags": 769
                },
                {
                  "traceId": "5b8efff798038103d269b633813fc60c",
                  "spanId": "eee19b7ec3c1b175",
                  "name": "minimal",
                  "kind": "SPAN_KIND_CLIENT",
                  "status": {}
                }
              ],
              "schemaUrl": "https://opentelemetry.io/schemas/1.21.0"
            },
            {"scope": {"name": "second-scope"}, "spans": []}
          ],
          "schemaUrl": "https://opentelemetry.io/schemas/1.20.0"
        },
        {
          "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "payments"}}]},
          "scopeSpans": [
            {
              "spans": [
                {
                  "traceId": "0af7651916cd43dd8448eb211c80319c",
                  "spanId": "b7ad6b7169203331",
                  "name": "charge",
                  "kind": "SPAN_KIND_INTERNAL",
                  "startTimeUnixNano": 1,
                  "endTimeUnixNano": 2,
                  "status": {"code": 1}
                }
              ]
            }
          ]
        }
      ]
    }"#;

    fn realistic_expected() -> Req {
        let span1 = Sp {
            trace_id: hex("5b8efff798038103d269b633813fc60c"),
            span_id: hex("eee19b7ec3c1b174"),
            trace_state: "rojo=00f067aa0ba902b7".into(),
            parent: hex("eee19b7ec3c1b173"),
            name: "GET /cart \"quoted\" é".into(),
            kind: 2,
            start: 1544712660000000000,
            end: 1544712661000000000,
            attrs: vec![
                kv("http.status_code", Av::Int(200)),
                kv("ratio", Av::Double(0.25f64.to_bits())),
                kv("neg", Av::Int(-5)),
                kv("raw", Av::Bytes(vec![1, 2, 3, 255])),
                kv(
                    "list",
                    Av::Array(vec![
                        s("a"),
                        Av::Int(1),
                        Av::Array(vec![Av::Bool(false)]),
                        Av::Empty,
                    ]),
                ),
                kv(
                    "map",
                    Av::Kvlist(vec![
                        kv("inner", Av::Double(f64::NAN.to_bits())),
                        kv("deeper", Av::Kvlist(vec![kv("x", s(""))])),
                    ]),
                ),
                kv("empty", Av::Empty),
                Kv { key: "novalue".into(), value: None },
            ],
            dropped_attrs: 3,
            events: vec![
                Ev {
                    time: 1544712660500000000,
                    name: "cache miss".into(),
                    attrs: vec![kv("key", s("cart:42"))],
                    dropped: 4,
                },
                Ev { time: 0, name: "no attrs".into(), attrs: vec![], dropped: 0 },
            ],
            dropped_events: 5,
            links: vec![Lk {
                trace_id: hex("00112233445566778899aabbccddeeff"),
                span_id: hex("0011223344556677"),
                trace_state: "a=b".into(),
                attrs: vec![kv("link.kind", s("follows"))],
                dropped: 6,
                flags: 257,
            }],
            dropped_links: 7,
            status: Some(St { message: "boom".into(), code: 2 }),
            flags: 769,
        };
        let span2 = Sp {
            trace_id: hex("5b8efff798038103d269b633813fc60c"),
            span_id: hex("eee19b7ec3c1b175"),
            name: "minimal".into(),
            kind: 3,
            status: Some(St::default()),
            ..Sp::default()
        };
        let span3 = Sp {
            trace_id: hex("0af7651916cd43dd8448eb211c80319c"),
            span_id: hex("b7ad6b7169203331"),
            name: "charge".into(),
            kind: 1,
            start: 1,
            end: 2,
            status: Some(St { message: String::new(), code: 1 }),
            ..Sp::default()
        };
        Req {
            rs: vec![
                Rs {
                    resource: Some(Res {
                        attrs: vec![kv("service.name", s("checkout")), kv("host.cpus", Av::Int(8))],
                        dropped: 1,
                    }),
                    scope_spans: vec![
                        Ss {
                            scope: Some(Scp {
                                name: "io.opentelemetry.http".into(),
                                version: "1.2.3".into(),
                                attrs: vec![kv("s", Av::Bool(true))],
                                dropped: 2,
                            }),
                            spans: vec![span1, span2],
                            schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
                        },
                        Ss {
                            scope: Some(Scp { name: "second-scope".into(), ..Scp::default() }),
                            spans: vec![],
                            schema_url: String::new(),
                        },
                    ],
                    schema_url: "https://opentelemetry.io/schemas/1.20.0".into(),
                },
                Rs {
                    resource: Some(Res {
                        attrs: vec![kv("service.name", s("payments"))],
                        dropped: 0,
                    }),
                    scope_spans: vec![Ss {
                        scope: None,
                        spans: vec![span3],
                        schema_url: "".into(),
                    }],
                    schema_url: String::new(),
                },
            ],
        }
    }

    #[test]
    fn realistic_request_round_trips_field_by_field() {
        let out = ok(REALISTIC);
        let got = decode(&out);
        let want = realistic_expected();
        // Compare piecewise first for readable failures.
        let (g, w) = (&got.rs[0].scope_spans[0].spans[0], &want.rs[0].scope_spans[0].spans[0]);
        assert_eq!(g.attrs, w.attrs);
        assert_eq!(g.events, w.events);
        assert_eq!(g.links, w.links);
        assert_eq!(g, w);
        assert_eq!(got, want);
    }

    #[test]
    fn output_is_byte_exact_for_a_small_request() {
        let out = ok(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
            "name":"a","kind":2,"spanId":"0102030405060708","startTimeUnixNano":"1",
            "traceId":"0102030405060708090a0b0c0d0e0f10",
            "attributes":[{"value":{"intValue":"-1"},"key":"k"}],"flags":1}]}]}]}"#);
        // The same request built with pb's writers, fields in number order.
        let mut want = Vec::new();
        pb::put_message(&mut want, 1, |rs| {
            pb::put_message(rs, 2, |ss| {
                pb::put_message(ss, 2, |sp| {
                    pb::put_bytes_field(sp, 1, &hex("0102030405060708090a0b0c0d0e0f10"));
                    pb::put_bytes_field(sp, 2, &hex("0102030405060708"));
                    pb::put_bytes_field(sp, 5, b"a");
                    pb::put_varint_field(sp, 6, 2);
                    pb::put_fixed64_field(sp, 7, 1);
                    pb::put_message(sp, 9, |kv| {
                        pb::put_bytes_field(kv, 1, b"k");
                        pb::put_message(kv, 2, |av| pb::put_varint_field(av, 3, u64::MAX));
                    });
                    pb::put_fixed32_field(sp, 16, 1);
                });
            });
        });
        assert_eq!(out, want);
    }

    #[test]
    fn long_messages_get_multi_byte_lengths() {
        let long = "x".repeat(70_000);
        let sp = one_span(&format!(r#"{{"name":"{long}","attributes":[{{"key":"{long}"}}]}}"#));
        assert_eq!(sp.name, long);
        assert_eq!(sp.attrs[0].key, long);
    }

    // ------------------------------------------------------------------------- empties

    #[test]
    fn empty_object_is_an_empty_request() {
        assert_eq!(ok("{}"), Vec::<u8>::new());
        assert_eq!(ok(" { } "), Vec::<u8>::new());
        assert_eq!(ok(r#"{"resourceSpans":[]}"#), Vec::<u8>::new());
        assert_eq!(ok(r#"{"resourceSpans":null}"#), Vec::<u8>::new());
        assert_eq!(decode(&ok(r#"{"resourceSpans":[{}]}"#)), Req { rs: vec![Rs::default()] });
    }

    // ------------------------------------------------------------------------ errors

    #[test]
    fn top_level_must_be_an_object() {
        assert_eq!(err("[]"), "expected an object, got an array");
        assert_eq!(err("null"), "expected an object, got null");
        assert_eq!(err("5"), "expected an object, got a number");
        assert_eq!(err(r#""x""#), "expected an object, got a string");
        assert_eq!(err("true"), "expected an object, got a boolean");
    }

    #[test]
    fn invalid_json_is_an_error_with_serdes_message() {
        assert!(err("").contains("EOF while parsing"), "{}", err(""));
        assert!(err("{").contains("EOF while parsing an object"));
        assert!(err(r#"{"a":1} x"#).contains("trailing characters"));
        assert!(err(r#"{"a":1,}"#).contains("trailing comma"));
        assert!(err("\u{feff}{}").contains("expected value"));
        assert!(json_to_protobuf(b"{\"resourceSpans\":[{\"schemaUrl\":\"\xff\"}]}").is_err());
        // A syntax error deep down says where it was.
        let e = span_err(r#"{"name": tru}"#);
        assert!(e.starts_with(&format!("{SPAN_PATH}.name: ")), "{e}");
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn wrong_types_name_their_path() {
        assert_eq!(
            err(r#"{"resourceSpans": 5}"#),
            "resourceSpans: expected an array, got a number"
        );
        assert_eq!(
            err(r#"{"resource_spans": {}}"#),
            "resourceSpans: expected an array, got an object"
        );
        assert_eq!(
            err(r#"{"resourceSpans": [5]}"#),
            "resourceSpans[0]: expected an object, got a number"
        );
        assert_eq!(
            err(r#"{"resourceSpans": [{}, {"resource": []}]}"#),
            "resourceSpans[1].resource: expected an object, got an array"
        );
        assert_eq!(
            err(
                r#"{"resourceSpans":[{"scopeSpans":[{},{"spans":[{},{},{},{"startTimeUnixNano":{}}]}]}]}"#
            ),
            "resourceSpans[0].scopeSpans[1].spans[3].startTimeUnixNano: \
             expected an integer or a decimal string, got an object"
        );
        assert_eq!(
            err(r#"{"resourceSpans":[{"scopeSpans":[{"scope":{"name":1}}]}]}"#),
            "resourceSpans[0].scopeSpans[0].scope.name: expected a string, got a number"
        );
        assert_eq!(
            err(r#"{"resourceSpans":[{"scopeSpans":"x"}]}"#),
            "resourceSpans[0].scopeSpans: expected an array, got a string"
        );
        assert_eq!(
            err(r#"{"resourceSpans":[{"schema_url":true}]}"#),
            "resourceSpans[0].schemaUrl: expected a string, got a boolean"
        );
        let cases = [
            (r#"{"name": 5}"#, "name: expected a string, got a number"),
            (r#"{"traceState": []}"#, "traceState: expected a string, got an array"),
            (r#"{"traceId": 5}"#, "traceId: expected a hex string, got a number"),
            (r#"{"span_id": {}}"#, "spanId: expected a hex string, got an object"),
            (r#"{"parentSpanId": true}"#, "parentSpanId: expected a hex string, got a boolean"),
            (r#"{"kind": true}"#, "kind: expected an enum name or an integer, got a boolean"),
            (r#"{"kind": "SPAN_KIND_BOGUS"}"#, "kind: unknown SpanKind \"SPAN_KIND_BOGUS\""),
            (r#"{"kind": "2"}"#, "kind: unknown SpanKind \"2\""),
            (r#"{"kind": 2147483648}"#, "kind: 2147483648 is out of range for SpanKind"),
            (r#"{"kind": -2147483649}"#, "kind: -2147483649 is out of range for SpanKind"),
            (r#"{"kind": 1.5}"#, "kind: 1.5 is not an integer"),
            (r#"{"attributes": {}}"#, "attributes: expected an array, got an object"),
            (r#"{"attributes": [[]]}"#, "attributes[0]: expected an object, got an array"),
            (r#"{"attributes": [{"key": 1}]}"#, "attributes[0].key: expected a string, got a number"),
            (r#"{"attributes": [{"value": "x"}]}"#, "attributes[0].value: expected an object, got a string"),
            (r#"{"events": [{"timeUnixNano": true}]}"#,
             "events[0].timeUnixNano: expected an integer or a decimal string, got a boolean"),
            (r#"{"events": [{}, {"attributes": [{"value": {"intValue": []}}]}]}"#,
             "events[1].attributes[0].value.intValue: expected an integer or a decimal string, got an array"),
            (r#"{"links": [{"traceId": []}]}"#, "links[0].traceId: expected a hex string, got an array"),
            (r#"{"links": [{"flags": -1}]}"#, "links[0].flags: -1 is out of range for uint32"),
            (r#"{"status": "x"}"#, "status: expected an object, got a string"),
            (r#"{"status": {"code": "OK"}}"#, "status.code: unknown StatusCode \"OK\""),
            (r#"{"status": {"message": 1}}"#, "status.message: expected a string, got a number"),
            (r#"{"droppedAttributesCount": -1}"#, "droppedAttributesCount: -1 is out of range for uint32"),
            (r#"{"droppedEventsCount": 4294967296}"#, "droppedEventsCount: 4294967296 is out of range for uint32"),
            (r#"{"droppedLinksCount": "4294967296"}"#, "droppedLinksCount: \"4294967296\" is out of range for uint32"),
            (r#"{"flags": 1.5}"#, "flags: 1.5 is not an integer"),
            (r#"{"flags": "1.5"}"#, "flags: \"1.5\" is not an integer"),
            (r#"{"flags": "0x10"}"#, "flags: \"0x10\" is not a decimal integer"),
            (r#"{"flags": ""}"#, "flags: \"\" is not a decimal integer"),
            (r#"{"flags": " 1"}"#, "flags: \" 1\" is not a decimal integer"),
            (r#"{"startTimeUnixNano": -1}"#, "startTimeUnixNano: -1 is out of range for uint64"),
            (r#"{"startTimeUnixNano": "18446744073709551616"}"#,
             "startTimeUnixNano: \"18446744073709551616\" is out of range for uint64"),
            (r#"{"endTimeUnixNano": 18446744073709551616}"#,
             "endTimeUnixNano: 18446744073709552000 is out of range for uint64"),
            (r#"{"endTimeUnixNano": "abc"}"#, "endTimeUnixNano: \"abc\" is not a decimal integer"),
            (r#"{"endTimeUnixNano": "NaN"}"#, "endTimeUnixNano: \"NaN\" is not a decimal integer"),
        ];
        for (span, want) in cases {
            assert_eq!(span_err(span), format!("{SPAN_PATH}.{want}"), "{span}");
        }
    }

    #[test]
    fn wrong_any_value_types_are_errors() {
        let attr = |v: &str| span_err(&format!(r#"{{"attributes":[{{"key":"k","value":{v}}}]}}"#));
        let p = format!("{SPAN_PATH}.attributes[0].value");
        let cases = [
            (r#"{"stringValue": 1}"#, "stringValue: expected a string, got a number"),
            (r#"{"boolValue": "true"}"#, "boolValue: expected a boolean, got a string"),
            (r#"{"boolValue": 1}"#, "boolValue: expected a boolean, got a number"),
            (
                r#"{"intValue": "9223372036854775808"}"#,
                "intValue: \"9223372036854775808\" is out of range for int64",
            ),
            (r#"{"intValue": 1e19}"#, "intValue: 10000000000000000000 is out of range for int64"),
            (r#"{"intValue": "1.25"}"#, "intValue: \"1.25\" is not an integer"),
            (
                r#"{"intValue": true}"#,
                "intValue: expected an integer or a decimal string, got a boolean",
            ),
            (r#"{"doubleValue": "abc"}"#, "doubleValue: \"abc\" is not a valid double"),
            (r#"{"doubleValue": "1e999"}"#, "doubleValue: \"1e999\" is not a valid double"),
            (
                r#"{"doubleValue": true}"#,
                "doubleValue: expected a number or a numeric string, got a boolean",
            ),
            (r#"{"bytesValue": "!!!!"}"#, "bytesValue: \"!!!!\" is not valid base64"),
            (r#"{"bytesValue": "A"}"#, "bytesValue: \"A\" is not valid base64"),
            (r#"{"bytesValue": "ab+_"}"#, "bytesValue: \"ab+_\" is not valid base64"),
            (r#"{"bytesValue": 5}"#, "bytesValue: expected a base64 string, got a number"),
            (r#"{"arrayValue": []}"#, "arrayValue: expected an object, got an array"),
            (
                r#"{"arrayValue": {"values": {}}}"#,
                "arrayValue.values: expected an array, got an object",
            ),
            (
                r#"{"arrayValue": {"values": [{}, {}, {"intValue": "x"}]}}"#,
                "arrayValue.values[2].intValue: \"x\" is not a decimal integer",
            ),
            (
                r#"{"kvlistValue": {"values": [{"key": "a", "value": {"kvlistValue": {"values": 1}}}]}}"#,
                "kvlistValue.values[0].value.kvlistValue.values: expected an array, got a number",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(attr(v), format!("{p}.{want}"), "{v}");
        }
        // Errors inside resource and scope attributes too.
        assert_eq!(
            err(r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":{"boolValue":0}}]}}]}"#),
            "resourceSpans[0].resource.attributes[0].value.boolValue: expected a boolean, got a number"
        );
        assert_eq!(
            err(
                r#"{"resourceSpans":[{"scopeSpans":[{"scope":{"attributes":[{"key":"a","value":{"intValue":[]}}]}}]}]}"#
            ),
            "resourceSpans[0].scopeSpans[0].scope.attributes[0].value.intValue: \
             expected an integer or a decimal string, got an array"
        );
    }

    #[test]
    fn long_bad_strings_are_abbreviated_in_errors() {
        let e = span_err(&format!(r#"{{"flags": "{}"}}"#, "é".repeat(1000)));
        assert!(e.len() < 200, "{e}");
        assert!(e.ends_with("\"... is not a decimal integer"), "{e}");
    }

    // -------------------------------------------------------------------------------- ids

    #[test]
    fn ids_are_hex_and_bad_hex_becomes_a_one_byte_id() {
        let sp = one_span(
            r#"{"traceId":"zz","spanId":"abc","parentSpanId":"0g","links":[{"traceId":"not hex","spanId":"1"}]}"#,
        );
        assert_eq!(sp.trace_id, vec![0]);
        assert_eq!(sp.span_id, vec![0]);
        assert_eq!(sp.parent, vec![0]);
        assert_eq!(sp.links[0].trace_id, vec![0]);
        assert_eq!(sp.links[0].span_id, vec![0]);

        // Base64 of a 16-byte id is not hex: it is the bad-hex case, not decoded as base64.
        let sp = one_span(r#"{"traceId":"W47/95gDgQPSabYzgT/GDA==","spanId":"7uGbfsPBsXQ="}"#);
        assert_eq!((sp.trace_id, sp.span_id), (vec![0], vec![0]));

        // Empty and null are absent; valid hex of any length passes through for the validator.
        let sp = one_span(r#"{"traceId":"","spanId":null,"parentSpanId":"0102"}"#);
        assert!(sp.trace_id.is_empty() && sp.span_id.is_empty());
        assert_eq!(sp.parent, vec![1, 2]);
        let sp = one_span(r#"{"traceId":"aBcD000000000000000000000000000000FF"}"#);
        assert_eq!(sp.trace_id, hex("abcd000000000000000000000000000000ff"));
        // All-zero ids are kept: the validator judges them, as for protobuf bodies.
        let sp = one_span(r#"{"parentSpanId":"0000000000000000"}"#);
        assert_eq!(sp.parent, vec![0; 8]);
    }

    // ------------------------------------------------------------------- names and values

    #[test]
    fn snake_case_names_give_the_same_bytes() {
        let snake = REALISTIC
            .replace("resourceSpans", "resource_spans")
            .replace("scopeSpans", "scope_spans")
            .replace("droppedAttributesCount", "dropped_attributes_count")
            .replace("droppedEventsCount", "dropped_events_count")
            .replace("droppedLinksCount", "dropped_links_count")
            .replace("traceId", "trace_id")
            .replace("parentSpanId", "parent_span_id")
            .replace("spanId", "span_id")
            .replace("traceState", "trace_state")
            .replace("startTimeUnixNano", "start_time_unix_nano")
            .replace("endTimeUnixNano", "end_time_unix_nano")
            .replace("timeUnixNano", "time_unix_nano")
            .replace("schemaUrl", "schema_url")
            .replace("stringValue", "string_value")
            .replace("boolValue", "bool_value")
            .replace("intValue", "int_value")
            .replace("doubleValue", "double_value")
            .replace("bytesValue", "bytes_value")
            .replace("arrayValue", "array_value")
            .replace("kvlistValue", "kvlist_value");
        assert!(!snake.contains("Value\""), "all renamed");
        assert_eq!(ok(&snake), ok(REALISTIC));
    }

    #[test]
    fn enum_names_and_numbers() {
        let names = [
            ("SPAN_KIND_UNSPECIFIED", 0),
            ("SPAN_KIND_INTERNAL", 1),
            ("SPAN_KIND_SERVER", 2),
            ("SPAN_KIND_CLIENT", 3),
            ("SPAN_KIND_PRODUCER", 4),
            ("SPAN_KIND_CONSUMER", 5),
        ];
        for (name, n) in names {
            assert_eq!(one_span(&format!(r#"{{"kind":"{name}"}}"#)).kind, n);
            assert_eq!(one_span(&format!(r#"{{"kind":{n}}}"#)).kind, n);
        }
        for (name, n) in [("STATUS_CODE_UNSET", 0), ("STATUS_CODE_OK", 1), ("STATUS_CODE_ERROR", 2)]
        {
            let sp = one_span(&format!(r#"{{"status":{{"code":"{name}"}}}}"#));
            assert_eq!(sp.status, Some(St { message: String::new(), code: n }));
        }
        // Unknown numbers pass through, negative ones as 10-byte varints.
        assert_eq!(one_span(r#"{"kind": 77}"#).kind, 77);
        assert_eq!(one_span(r#"{"kind": 2.0}"#).kind, 2);
        assert_eq!(one_span(r#"{"kind": -1}"#).kind, -1);
        assert_eq!(one_span(r#"{"status":{"code": -2147483648}}"#).status.unwrap().code, i32::MIN);
        let out = ok(&span_req(r#"{"kind": -1}"#));
        let tail = [0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(out.ends_with(&tail), "{out:?}");
        // Field 1 of Status (deprecated_code) is ignored whatever its value.
        let sp = one_span(r#"{"status":{"deprecatedCode":[1],"deprecated_code":"x","code":2}}"#);
        assert_eq!(sp.status.unwrap().code, 2);
    }

    #[test]
    fn integers_as_numbers_or_strings() {
        let sp = one_span(
            r#"{"startTimeUnixNano":"18446744073709551615","endTimeUnixNano":1e3,
                "droppedAttributesCount":"4294967295","droppedEventsCount":"007",
                "droppedLinksCount":"+5","flags":"1e2",
                "events":[{"timeUnixNano":"12.0"},{"timeUnixNano":"-0"},{"timeUnixNano":1.5e1}]}"#,
        );
        assert_eq!(sp.start, u64::MAX);
        assert_eq!(sp.end, 1000);
        assert_eq!(sp.dropped_attrs, u32::MAX);
        assert_eq!(sp.dropped_events, 7);
        assert_eq!(sp.dropped_links, 5);
        assert_eq!(sp.flags, 100);
        assert_eq!(sp.events.iter().map(|e| e.time).collect::<Vec<_>>(), vec![12, 0, 15]);
        assert_eq!(attr_value(r#"{"intValue":"-9223372036854775808"}"#), Some(Av::Int(i64::MIN)));
        assert_eq!(attr_value(r#"{"intValue":9223372036854775807}"#), Some(Av::Int(i64::MAX)));
        assert_eq!(attr_value(r#"{"intValue":-42}"#), Some(Av::Int(-42)));
        assert_eq!(attr_value(r#"{"intValue":"-42"}"#), Some(Av::Int(-42)));
        assert_eq!(attr_value(r#"{"intValue":"1.5e3"}"#), Some(Av::Int(1500)));
        assert_eq!(attr_value(r#"{"intValue":"100e-2"}"#), Some(Av::Int(1)));
        assert_eq!(attr_value(r#"{"intValue":"0e999999999999"}"#), Some(Av::Int(0)));
        // A negative intValue is a 10-byte two's complement varint.
        let out = ok(&span_req(r#"{"attributes":[{"value":{"intValue":"-1"}}]}"#));
        let tail = [0x12, 0x0b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(out.ends_with(&tail), "{out:?}");
    }

    #[test]
    fn parse_int_text_edge_cases() {
        use NumErr::*;
        let cases: &[(&str, Result<i128, NumErr>)] = &[
            ("0", Ok(0)),
            ("-0", Ok(0)),
            ("18446744073709551616", Ok(1 << 64)),
            ("18446744073709551617", Err(Range)),
            ("-18446744073709551616", Ok(-(1 << 64))),
            ("1e19", Ok(10_000_000_000_000_000_000)),
            ("1e20", Err(Range)),
            ("1E+2", Ok(100)),
            ("12.50e1", Ok(125)),
            ("1.", Ok(1)),
            (".5e1", Ok(5)),
            ("0.000", Ok(0)),
            ("0.001", Err(Fraction)),
            ("1e-1", Err(Fraction)),
            ("10e-1", Ok(1)),
            ("5e-999999999999999999999", Err(Fraction)),
            ("0e-999999999999999999999", Ok(0)),
            ("00000000000000000000000000000001", Ok(1)),
            ("", Err(Syntax)),
            ("-", Err(Syntax)),
            (".", Err(Syntax)),
            ("1e", Err(Syntax)),
            ("1e+", Err(Syntax)),
            ("--1", Err(Syntax)),
            ("1 ", Err(Syntax)),
            ("1_000", Err(Syntax)),
            ("١", Err(Syntax)),
            ("Infinity", Err(Syntax)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_int_text(text), *want, "{text}");
        }
    }

    #[test]
    fn doubles_bools_strings_and_bytes() {
        let d = |v: f64| Some(Av::Double(v.to_bits()));
        assert_eq!(attr_value(r#"{"doubleValue": 1.5}"#), d(1.5));
        assert_eq!(attr_value(r#"{"doubleValue": 2}"#), d(2.0));
        assert_eq!(attr_value(r#"{"doubleValue": -3}"#), d(-3.0));
        assert_eq!(attr_value(r#"{"doubleValue": 0}"#), d(0.0));
        assert_eq!(attr_value(r#"{"doubleValue": -0.0}"#), d(-0.0));
        assert_eq!(attr_value(r#"{"doubleValue": "NaN"}"#), d(f64::NAN));
        assert_eq!(attr_value(r#"{"doubleValue": "Infinity"}"#), d(f64::INFINITY));
        assert_eq!(attr_value(r#"{"doubleValue": "-Infinity"}"#), d(f64::NEG_INFINITY));
        assert_eq!(attr_value(r#"{"doubleValue": "2.5e-3"}"#), d(2.5e-3));
        assert_eq!(attr_value(r#"{"doubleValue": "-7"}"#), d(-7.0));
        assert_eq!(attr_value(r#"{"boolValue": true}"#), Some(Av::Bool(true)));
        assert_eq!(attr_value(r#"{"boolValue": false}"#), Some(Av::Bool(false)));
        assert_eq!(
            attr_value(r#"{"stringValue": "a\"b\\c\u0000\ud83d\ude00"}"#),
            Some(s("a\"b\\c\0😀"))
        );
        let b = |v: &[u8]| Some(Av::Bytes(v.to_vec()));
        assert_eq!(attr_value(r#"{"bytesValue": "AQID/w=="}"#), b(&[1, 2, 3, 255]));
        assert_eq!(attr_value(r#"{"bytesValue": "AQID/w"}"#), b(&[1, 2, 3, 255]));
        assert_eq!(attr_value(r#"{"bytesValue": "AQID_w=="}"#), b(&[1, 2, 3, 255]));
        assert_eq!(attr_value(r#"{"bytesValue": "AQID_w"}"#), b(&[1, 2, 3, 255]));
        assert_eq!(attr_value(r#"{"bytesValue": "AQ\r\nID"}"#), b(&[1, 2, 3]));
        assert_eq!(attr_value(r#"{"bytesValue": "AR=="}"#), b(&[1])); // non-zero trailing bits, as Go
        assert_eq!(attr_value(r#"{"bytesValue": ""}"#), b(&[]));
    }

    #[test]
    fn double_json_numbers_are_close() {
        // serde_json's default float parser is not always correctly rounded: a JSON number with
        // many significant digits can land 1 ULP off (its `float_roundtrip` feature fixes
        // that). The same text as a string goes through Rust's exact parser.
        let text = "-903782.3876953125";
        let want = text.parse::<f64>().unwrap();
        let from_string = attr_value(&format!(r#"{{"doubleValue":"{text}"}}"#));
        assert_eq!(from_string, Some(Av::Double(want.to_bits())));
        let Some(Av::Double(bits)) = attr_value(&format!(r#"{{"doubleValue":{text}}}"#)) else {
            panic!("not a double")
        };
        assert!(bits.abs_diff(want.to_bits()) <= 1, "{} vs {want}", f64::from_bits(bits));
    }

    #[test]
    fn set_oneof_members_are_written_even_when_zero() {
        // The raw bytes of the one attribute's AnyValue.
        let raw = |v: &str| {
            let out = ok(&span_req(&format!(r#"{{"attributes":[{{"value":{v}}}]}}"#)));
            let mut buf = &out[..];
            for field in [1, 2, 2, 9, 2] {
                let fs = fields(buf, &[]);
                assert_eq!(fs.len(), 1);
                assert_eq!(fs[0].number, field);
                buf = sub(&fs[0]);
            }
            buf.to_vec()
        };
        assert_eq!(raw(r#"{"intValue":"0"}"#), vec![0x18, 0x00]);
        assert_eq!(raw(r#"{"stringValue":""}"#), vec![0x0a, 0x00]);
        assert_eq!(raw(r#"{"boolValue":false}"#), vec![0x10, 0x00]);
        assert_eq!(raw(r#"{"doubleValue":0}"#), vec![0x21, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(raw(r#"{"bytesValue":""}"#), vec![0x3a, 0x00]);
        assert_eq!(raw(r#"{"arrayValue":{}}"#), vec![0x2a, 0x00]);
        assert_eq!(raw(r#"{"kvlistValue":{"values":[]}}"#), vec![0x32, 0x00]);
        assert_eq!(raw(r#"{}"#), Vec::<u8>::new());
        assert_eq!(attr_value(r#"{"intValue":"0"}"#), Some(Av::Int(0)));
        assert_eq!(attr_value(r#"{"stringValue":""}"#), Some(s("")));
        assert_eq!(attr_value(r#"{"arrayValue":{}}"#), Some(Av::Array(vec![])));
    }

    #[test]
    fn last_any_value_member_wins() {
        assert_eq!(attr_value(r#"{"stringValue":"a","intValue":"5"}"#), Some(Av::Int(5)));
        assert_eq!(attr_value(r#"{"intValue":5,"string_value":"a"}"#), Some(s("a")));
        assert_eq!(
            attr_value(r#"{"arrayValue":{"values":[{"intValue":1}]},"boolValue":true}"#),
            Some(Av::Bool(true))
        );
        assert_eq!(
            attr_value(r#"{"boolValue":true,"kvlistValue":{"values":[{"key":"a"}]}}"#),
            Some(Av::Kvlist(vec![Kv { key: "a".into(), value: None }]))
        );
        assert_eq!(attr_value(r#"{"intValue":5,"stringValue":null}"#), Some(Av::Int(5)));
        assert_eq!(attr_value(r#"{"intValue":5,"unknownValue":"x"}"#), Some(Av::Int(5)));
        assert_eq!(attr_value(r#"{"unknownValue":"x"}"#), Some(Av::Empty));
        assert_eq!(attr_value(r#"{"stringValue":null}"#), Some(Av::Empty));
        assert_eq!(attr_value("null"), None);
        // A repeated "value" key merges like the collector: the later member wins.
        let sp = one_span(
            r#"{"attributes":[{"key":"k","value":{"intValue":1},"value":{"boolValue":true}}]}"#,
        );
        assert_eq!(sp.attrs, vec![kv("k", Av::Bool(true))]);
    }

    #[test]
    fn null_fields_are_absent() {
        let req = decode(&ok(r#"{"resourceSpans":[{"resource":null,"schemaUrl":null,
            "scopeSpans":[{"scope":null,"schemaUrl":null,"spans":[{
              "traceId":null,"spanId":null,"traceState":null,"parentSpanId":null,"name":null,
              "kind":null,"startTimeUnixNano":null,"endTimeUnixNano":null,"attributes":null,
              "droppedAttributesCount":null,"events":null,"droppedEventsCount":null,"links":null,
              "droppedLinksCount":null,"status":null,"flags":null}]}]}]}"#));
        assert_eq!(
            req,
            Req {
                rs: vec![Rs {
                    scope_spans: vec![Ss { spans: vec![Sp::default()], ..Ss::default() }],
                    ..Rs::default()
                }]
            }
        );
        // null after a value leaves the value; null elements are empty messages.
        let sp = one_span(
            r#"{"name":"a","name":null,"kind":2,"kind":null,
                "attributes":[null,{"key":"k","value":null},{"key":null,"value":{"intValue":null}}],
                "events":[null],"links":[null],"status":{"code":2,"message":null}}"#,
        );
        assert_eq!(sp.name, "a");
        assert_eq!(sp.kind, 2);
        assert_eq!(
            sp.attrs,
            vec![
                Kv { key: String::new(), value: None },
                Kv { key: "k".into(), value: None },
                Kv { key: String::new(), value: Some(Av::Empty) }
            ]
        );
        assert_eq!(sp.events, vec![Ev::default()]);
        assert_eq!(sp.links, vec![Lk::default()]);
        assert_eq!(sp.status, Some(St { message: String::new(), code: 2 }));
        assert_eq!(
            attr_value(r#"{"arrayValue":{"values":[null,{"intValue":1}]}}"#),
            Some(Av::Array(vec![Av::Empty, Av::Int(1)]))
        );
        assert_eq!(attr_value(r#"{"arrayValue":null}"#), Some(Av::Empty));
        assert_eq!(attr_value(r#"{"arrayValue":{"values":null}}"#), Some(Av::Array(vec![])));
    }

    #[test]
    fn unknown_fields_are_ignored_whatever_their_value() {
        let junk = r#"{"deep":[1,"x",{"y":null,"z":[[[{}]]]}],"n":-1.5e300,"t":true}"#;
        let noisy = REALISTIC
            .replace("\"status\": {}", "\"status\": {\"junk\": 1}")
            .replace("\"resource\": {", &format!("\"resource\": {{\"junk\": {junk},"))
            .replace("\"scope\": {", &format!("\"scope\": {{\"junk\": {junk},"))
            .replace("\"status\": {", &format!("\"status\": {{\"junk\": {junk},"))
            .replace("\"spanId\":", &format!("\"junk\": {junk}, \"unknown\": 5, \"spanId\":"))
            .replace("{\"key\":", &format!("{{\"junk\": {junk}, \"key\":"))
            .replace("\"values\": [", "\"junk\": [null], \"values\": [")
            .replace("\"schemaUrl\":", &format!("\"junk\": {junk}, \"schemaUrl\":"))
            .replace("\"resourceSpans\":", "\"partialSuccess\": {}, \"resourceSpans\":");
        assert_ne!(noisy, REALISTIC);
        assert_eq!(ok(&noisy), ok(REALISTIC));
        // Case matters: near-miss names are unknown, so ignored.
        let sp = one_span(r#"{"TraceId":"01","Name":5,"start_time_unixNano":{}}"#);
        assert_eq!(sp, Sp::default());
    }

    #[test]
    fn repeated_keys_behave_like_the_collector() {
        // A repeated field given twice appends; a scalar given twice keeps the last value;
        // a message given twice is merged.
        let req = decode(&ok(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a"}],
              "spans":[{"name":"b","name":"c","attributes":[{"key":"1"}],"attributes":[{"key":"2"}]}]}],
            "resource":{"attributes":[{"key":"x"}],"droppedAttributesCount":1},
            "resource":{"attributes":[{"key":"y"}]}}],
            "resource_spans":[{}]}"#));
        assert_eq!(req.rs.len(), 2);
        let spans = &req.rs[0].scope_spans[0].spans;
        assert_eq!(spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(spans[1].attrs.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(), ["1", "2"]);
        let res = req.rs[0].resource.as_ref().unwrap();
        assert_eq!(res.attrs.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(res.dropped, 1);
        // An empty id string replaces an earlier id.
        assert!(one_span(r#"{"traceId":"01","traceId":""}"#).trace_id.is_empty());
    }

    // ---------------------------------------------------------------------- hostile input

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        // Run on a small stack to show our recursion per JSON level is modest.
        std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(|| {
                for n in [1_000, 100_000] {
                    assert!(json_to_protobuf("[".repeat(n).as_bytes()).is_err());
                    let unknown = format!(r#"{{"x":{}}}"#, "[".repeat(n));
                    assert!(json_to_protobuf(unknown.as_bytes()).is_err());
                    let closed = format!(r#"{{"x":{}{}}}"#, "[".repeat(n), "]".repeat(n));
                    let _ = json_to_protobuf(closed.as_bytes());
                }
                // Nested kvlists, as deep as serde_json's limit allows and beyond it.
                let nest = |depth: usize| {
                    let mut v = r#"{"intValue":1}"#.to_string();
                    for _ in 0..depth {
                        v = format!(
                            r#"{{"kvlistValue":{{"values":[{{"key":"k","value":{v}}}]}}}}"#
                        );
                    }
                    span_req(&format!(r#"{{"attributes":[{{"key":"k","value":{v}}}]}}"#))
                };
                let out = json_to_protobuf(nest(28).as_bytes()).expect("28 levels");
                let mut v = decode(&out).rs[0].scope_spans[0].spans[0].attrs[0].value.clone();
                let mut depth = 0;
                while let Some(Av::Kvlist(kvs)) = v {
                    v = kvs[0].value.clone();
                    depth += 1;
                }
                assert_eq!((depth, v), (28, Some(Av::Int(1))));
                let e = json_to_protobuf(nest(40).as_bytes()).unwrap_err();
                assert!(e.contains("recursion limit exceeded"), "{e}");
                let e = json_to_protobuf(nest(5000).as_bytes()).unwrap_err();
                assert!(e.contains("recursion limit exceeded"), "{e}");
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn many_repeated_keys_stay_linear() {
        // 200k duplicate keys in one span and 200k attribute replacements: must be quick.
        let mut span = String::from("{");
        for i in 0..200_000 {
            span.push_str(&format!(r#""name":"n{i}","attributes":[{{"value":{{"stringValue":"a","arrayValue":{{"values":[{{}}]}}}}}}],"#));
        }
        span.push_str(r#""kind":1}"#);
        let t = std::time::Instant::now();
        let sp = one_span(&span);
        assert!(t.elapsed().as_secs() < 20);
        assert_eq!(sp.name, "n199999");
        assert_eq!(sp.attrs.len(), 200_000);
    }

    // ---------------------------------------------------------------------------- proptests

    const KNOWN_KEYS: &[&str] = &[
        "resourceSpans",
        "resource_spans",
        "resource",
        "scopeSpans",
        "scope_spans",
        "schemaUrl",
        "attributes",
        "droppedAttributesCount",
        "scope",
        "name",
        "version",
        "spans",
        "traceId",
        "spanId",
        "parentSpanId",
        "traceState",
        "kind",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "events",
        "droppedEventsCount",
        "links",
        "droppedLinksCount",
        "status",
        "flags",
        "timeUnixNano",
        "message",
        "code",
        "key",
        "value",
        "stringValue",
        "boolValue",
        "intValue",
        "doubleValue",
        "arrayValue",
        "kvlistValue",
        "bytesValue",
        "values",
        "x",
    ];

    const ODD_STRINGS: &[&str] = &[
        "",
        "0",
        "-1",
        "1e3",
        "1.5",
        "NaN",
        "Infinity",
        "-Infinity",
        "zz",
        "0102",
        "AQID",
        "AQID_w",
        "SPAN_KIND_SERVER",
        "STATUS_CODE_ERROR",
        "18446744073709551616",
        "abc",
        "0102030405060708090a0b0c0d0e0f10",
        "é\"\\\n",
    ];

    fn arb_json() -> impl Strategy<Value = J> {
        let leaf = prop_oneof![
            Just(J::Null),
            any::<bool>().prop_map(J::Bool),
            any::<i64>().prop_map(|v| json!(v)),
            any::<u64>().prop_map(|v| json!(v)),
            prop_oneof![any::<f64>(), -10.0f64..10.0]
                .prop_filter_map("finite", |v| serde_json::Number::from_f64(v).map(J::Number)),
            prop::sample::select(ODD_STRINGS).prop_map(|s| J::String(s.into())),
            ".{0,6}".prop_map(J::String),
        ];
        leaf.prop_recursive(6, 48, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..5).prop_map(J::Array),
                vec((prop::sample::select(KNOWN_KEYS), inner), 0..6).prop_map(|kvs| {
                    J::Object(kvs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    /// Places a random value where the translator will look deep into it.
    fn wrap(v: J, place: u8) -> J {
        match place % 5 {
            0 => v,
            1 => json!({ "resourceSpans": v }),
            2 => json!({ "resourceSpans": [{ "scopeSpans": [{ "spans": [v] }] }] }),
            3 => {
                json!({ "resourceSpans": [{ "resource": { "attributes": [{ "key": "k", "value": v }] } }] })
            }
            _ => {
                json!({ "resourceSpans": [{ "scopeSpans": [{ "spans": [{ "events": [v], "links": [v] }] }] }] })
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(body in vec(any::<u8>(), 0..512)) {
            if let Ok(out) = json_to_protobuf(&body) {
                decode(&out);
            }
        }

        #[test]
        fn arbitrary_json_never_panics(v in arb_json(), place in any::<u8>(), cut in any::<u16>()) {
            let text = serde_json::to_vec(&wrap(v, place)).unwrap();
            match json_to_protobuf(&text) {
                Ok(out) => { decode(&out); }
                Err(e) => prop_assert!(!e.is_empty()),
            }
            // And every truncation of it.
            let cut = usize::from(cut) % (text.len() + 1);
            let _ = json_to_protobuf(&text[..cut]);
        }
    }

    // Round trip: random request model -> OTLP/JSON in a random style -> protobuf -> model.

    fn arb_any() -> impl Strategy<Value = Av> {
        let leaf = prop_oneof![
            Just(Av::Empty),
            ".{0,8}".prop_map(Av::Str),
            any::<bool>().prop_map(Av::Bool),
            any::<i64>().prop_map(Av::Int),
            prop_oneof![
                (-1_000_000_000i64..1_000_000_000).prop_map(|i| i as f64 / 1024.0),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(-0.0),
                Just(1e300),
            ]
            .prop_map(|d| Av::Double(d.to_bits())),
            vec(any::<u8>(), 0..8).prop_map(Av::Bytes),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(Av::Array),
                vec(arb_kv_with(inner), 0..4).prop_map(Av::Kvlist),
            ]
        })
    }

    fn arb_kv_with(v: impl Strategy<Value = Av>) -> impl Strategy<Value = Kv> {
        (".{0,6}", proptest::option::of(v)).prop_map(|(key, value)| Kv { key, value })
    }

    fn arb_attrs() -> impl Strategy<Value = Vec<Kv>> {
        vec(arb_kv_with(arb_any()), 0..4)
    }

    fn arb_id() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![vec(any::<u8>(), 16), vec(any::<u8>(), 8), vec(any::<u8>(), 0..20)]
    }

    fn arb_u32() -> impl Strategy<Value = u32> {
        prop_oneof![Just(0u32), any::<u32>()]
    }

    fn arb_u64() -> impl Strategy<Value = u64> {
        prop_oneof![Just(0u64), any::<u64>()]
    }

    prop_compose! {
        fn arb_event()(time in arb_u64(), name in ".{0,6}", attrs in arb_attrs(),
                       dropped in arb_u32()) -> Ev {
            Ev { time, name, attrs, dropped }
        }
    }

    prop_compose! {
        fn arb_link()(trace_id in arb_id(), span_id in arb_id(), trace_state in ".{0,6}",
                      attrs in arb_attrs(), dropped in arb_u32(), flags in arb_u32()) -> Lk {
            Lk { trace_id, span_id, trace_state, attrs, dropped, flags }
        }
    }

    prop_compose! {
        fn arb_span()(ids in (arb_id(), arb_id(), arb_id()),
                      strs in (".{0,6}", ".{0,10}"),
                      kind in prop_oneof![0i32..6, any::<i32>()],
                      times in (arb_u64(), arb_u64()),
                      attrs in arb_attrs(),
                      events in vec(arb_event(), 0..3),
                      links in vec(arb_link(), 0..3),
                      dropped in (arb_u32(), arb_u32(), arb_u32()),
                      status in proptest::option::of((".{0,6}", prop_oneof![0i32..3, any::<i32>()])),
                      flags in arb_u32()) -> Sp {
            Sp {
                trace_id: ids.0, span_id: ids.1, parent: ids.2,
                trace_state: strs.0, name: strs.1, kind,
                start: times.0, end: times.1,
                attrs, dropped_attrs: dropped.0,
                events, dropped_events: dropped.1,
                links, dropped_links: dropped.2,
                status: status.map(|(message, code)| St { message, code }),
                flags,
            }
        }
    }

    prop_compose! {
        fn arb_ss()(scope in proptest::option::of((".{0,6}", ".{0,6}", arb_attrs(), arb_u32())),
                    spans in vec(arb_span(), 0..4), schema_url in ".{0,6}") -> Ss {
            let scope = scope.map(|(name, version, attrs, dropped)| Scp { name, version, attrs, dropped });
            Ss { scope, spans, schema_url }
        }
    }

    prop_compose! {
        fn arb_req()(rs in vec((proptest::option::of((arb_attrs(), arb_u32())),
                                vec(arb_ss(), 0..3), ".{0,6}"), 0..3)) -> Req {
            Req {
                rs: rs.into_iter().map(|(res, scope_spans, schema_url)| Rs {
                    resource: res.map(|(attrs, dropped)| Res { attrs, dropped }),
                    scope_spans,
                    schema_url,
                }).collect(),
            }
        }
    }

    /// Without serde_json's `float_roundtrip` feature, a JSON number with more than ~15
    /// significant digits may parse 1 ULP off (see `double_json_numbers_are_close`).
    fn json_number_is_exact(d: f64) -> bool {
        let text = serde_json::to_string(&d).unwrap();
        serde_json::from_str::<f64>(&text).unwrap().to_bits() == d.to_bits()
    }

    /// Writes the model as OTLP/JSON, choosing spellings at random: camelCase or snake_case
    /// names, numbers or strings for integers, enum names or numbers, hex case, base64
    /// alphabet, default values written or left out, unknown fields and nulls added.
    struct Style(u64);

    impl Style {
        fn coin(&mut self) -> bool {
            // xorshift64
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 & 1 == 1
        }
        fn obj(&mut self, fields: Vec<(&str, &str, Option<J>)>) -> J {
            let mut m = Map::new();
            for (camel, snake, v) in fields {
                let k = if self.coin() { camel } else { snake };
                match v {
                    Some(v) => {
                        m.insert(k.to_string(), v);
                    }
                    None => {
                        if self.coin() && self.coin() {
                            m.insert(k.to_string(), J::Null);
                        }
                    }
                }
            }
            if self.coin() && self.coin() {
                m.insert("zzUnknown".into(), json!({"a": [1, null, {"b": "c"}]}));
            }
            J::Object(m)
        }
        fn string(&mut self, v: &str) -> Option<J> {
            (!v.is_empty() || self.coin()).then(|| json!(v))
        }
        fn uint(&mut self, v: u64) -> Option<J> {
            if v == 0 && self.coin() {
                return None;
            }
            Some(if self.coin() { json!(v) } else { json!(v.to_string()) })
        }
        fn id(&mut self, v: &[u8]) -> Option<J> {
            if v.is_empty() && self.coin() {
                return None;
            }
            let upper = self.coin();
            let h: String = v
                .iter()
                .map(|b| if upper { format!("{b:02X}") } else { format!("{b:02x}") })
                .collect();
            Some(json!(h))
        }
        fn enumv(&mut self, v: i32, names: &[(&str, i32)]) -> Option<J> {
            if v == 0 && self.coin() {
                return None;
            }
            match names.iter().find(|(_, n)| *n == v) {
                Some((name, _)) if self.coin() => Some(json!(name)),
                _ => Some(json!(v)),
            }
        }
        fn attrs(&mut self, v: &[Kv]) -> Option<J> {
            if v.is_empty() && self.coin() {
                return None;
            }
            Some(J::Array(v.iter().map(|kv| self.kv(kv)).collect()))
        }
        fn kv(&mut self, kv: &Kv) -> J {
            let value = kv.value.as_ref().map(|v| self.any(v));
            let key = self.string(&kv.key);
            self.obj(vec![("key", "key", key), ("value", "value", value)])
        }
        fn any(&mut self, v: &Av) -> J {
            let (camel, snake, j) = match v {
                Av::Empty => return self.obj(vec![]),
                Av::Str(s) => ("stringValue", "string_value", json!(s)),
                Av::Bool(b) => ("boolValue", "bool_value", json!(b)),
                Av::Int(i) => (
                    "intValue",
                    "int_value",
                    if self.coin() { json!(i) } else { json!(i.to_string()) },
                ),
                Av::Double(bits) => {
                    let d = f64::from_bits(*bits);
                    let j = if d.is_nan() {
                        json!("NaN")
                    } else if d.is_infinite() {
                        json!(if d > 0.0 { "Infinity" } else { "-Infinity" })
                    } else if self.coin() && json_number_is_exact(d) {
                        json!(d)
                    } else {
                        json!(d.to_string())
                    };
                    ("doubleValue", "double_value", j)
                }
                Av::Bytes(b) => {
                    let text = if self.coin() {
                        base64::engine::general_purpose::STANDARD.encode(b)
                    } else {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
                    };
                    ("bytesValue", "bytes_value", json!(text))
                }
                Av::Array(vs) => {
                    let values = J::Array(vs.iter().map(|v| self.any(v)).collect());
                    (
                        "arrayValue",
                        "array_value",
                        self.obj(vec![("values", "values", Some(values))]),
                    )
                }
                Av::Kvlist(kvs) => {
                    let values = J::Array(kvs.iter().map(|kv| self.kv(kv)).collect());
                    (
                        "kvlistValue",
                        "kvlist_value",
                        self.obj(vec![("values", "values", Some(values))]),
                    )
                }
            };
            self.obj(vec![(camel, snake, Some(j))])
        }
        fn req(&mut self, r: &Req) -> J {
            let rs: Vec<J> = r.rs.iter().map(|rs| self.rs(rs)).collect();
            self.obj(vec![("resourceSpans", "resource_spans", Some(J::Array(rs)))])
        }
        fn rs(&mut self, rs: &Rs) -> J {
            let resource = rs.resource.as_ref().map(|r| {
                let attrs = self.attrs(&r.attrs);
                let dropped = self.uint(r.dropped.into());
                self.obj(vec![
                    ("attributes", "attributes", attrs),
                    ("droppedAttributesCount", "dropped_attributes_count", dropped),
                ])
            });
            let ss = J::Array(rs.scope_spans.iter().map(|ss| self.ss(ss)).collect());
            let url = self.string(&rs.schema_url);
            self.obj(vec![
                ("resource", "resource", resource),
                ("scopeSpans", "scope_spans", Some(ss)),
                ("schemaUrl", "schema_url", url),
            ])
        }
        fn ss(&mut self, ss: &Ss) -> J {
            let scope = ss.scope.as_ref().map(|s| {
                let f = vec![
                    ("name", "name", self.string(&s.name)),
                    ("version", "version", self.string(&s.version)),
                    ("attributes", "attributes", self.attrs(&s.attrs)),
                    (
                        "droppedAttributesCount",
                        "dropped_attributes_count",
                        self.uint(s.dropped.into()),
                    ),
                ];
                self.obj(f)
            });
            let spans = J::Array(ss.spans.iter().map(|s| self.span(s)).collect());
            let url = self.string(&ss.schema_url);
            self.obj(vec![
                ("scope", "scope", scope),
                ("spans", "spans", Some(spans)),
                ("schemaUrl", "schema_url", url),
            ])
        }
        fn span(&mut self, s: &Sp) -> J {
            let events = J::Array(
                s.events
                    .iter()
                    .map(|e| {
                        let f = vec![
                            ("timeUnixNano", "time_unix_nano", self.uint(e.time)),
                            ("name", "name", self.string(&e.name)),
                            ("attributes", "attributes", self.attrs(&e.attrs)),
                            (
                                "droppedAttributesCount",
                                "dropped_attributes_count",
                                self.uint(e.dropped.into()),
                            ),
                        ];
                        self.obj(f)
                    })
                    .collect(),
            );
            let links = J::Array(
                s.links
                    .iter()
                    .map(|l| {
                        let f = vec![
                            ("traceId", "trace_id", self.id(&l.trace_id)),
                            ("spanId", "span_id", self.id(&l.span_id)),
                            ("traceState", "trace_state", self.string(&l.trace_state)),
                            ("attributes", "attributes", self.attrs(&l.attrs)),
                            (
                                "droppedAttributesCount",
                                "dropped_attributes_count",
                                self.uint(l.dropped.into()),
                            ),
                            ("flags", "flags", self.uint(l.flags.into())),
                        ];
                        self.obj(f)
                    })
                    .collect(),
            );
            let status = s.status.as_ref().map(|st| {
                let f = vec![
                    ("message", "message", self.string(&st.message)),
                    ("code", "code", self.enumv(st.code, STATUS_CODES)),
                ];
                self.obj(f)
            });
            let f = vec![
                ("traceId", "trace_id", self.id(&s.trace_id)),
                ("spanId", "span_id", self.id(&s.span_id)),
                ("traceState", "trace_state", self.string(&s.trace_state)),
                ("parentSpanId", "parent_span_id", self.id(&s.parent)),
                ("name", "name", self.string(&s.name)),
                ("kind", "kind", self.enumv(s.kind, SPAN_KINDS)),
                ("startTimeUnixNano", "start_time_unix_nano", self.uint(s.start)),
                ("endTimeUnixNano", "end_time_unix_nano", self.uint(s.end)),
                ("attributes", "attributes", self.attrs(&s.attrs)),
                (
                    "droppedAttributesCount",
                    "dropped_attributes_count",
                    self.uint(s.dropped_attrs.into()),
                ),
                ("events", "events", Some(events)),
                ("droppedEventsCount", "dropped_events_count", self.uint(s.dropped_events.into())),
                ("links", "links", Some(links)),
                ("droppedLinksCount", "dropped_links_count", self.uint(s.dropped_links.into())),
                ("status", "status", status),
                ("flags", "flags", self.uint(s.flags.into())),
            ];
            self.obj(f)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_requests_round_trip(req in arb_req(), seed in any::<u64>()) {
            let json = Style(seed | 1).req(&req);
            let text = serde_json::to_vec(&json).unwrap();
            let out = json_to_protobuf(&text).map_err(TestCaseError::fail)?;
            prop_assert_eq!(decode(&out), req);
        }
    }

    // ----------------------------------------------------------------------------- benchmark

    /// ~1 MB body of ~3000 spans, shaped like what SDKs send.
    fn bench_body() -> String {
        let mut spans = Vec::new();
        for i in 0..3000u64 {
            spans.push(json!({
                "traceId": format!("{:032x}", 0x5b8e_fff7_9803_8103_d269_b633_813f_c60cu128 + u128::from(i / 10)),
                "spanId": format!("{:016x}", 0xeee1_9b7e_c3c1_b174u64 + i),
                "parentSpanId": if i % 10 == 0 { String::new() } else { format!("{:016x}", 0xeee1_9b7e_c3c1_b174u64 + i - 1) },
                "name": format!("GET /api/v1/items/{}", i % 50),
                "kind": 2,
                "startTimeUnixNano": (1_700_000_000_000_000_000u64 + i * 1000).to_string(),
                "endTimeUnixNano": (1_700_000_000_000_500_000u64 + i * 1000).to_string(),
                "attributes": [
                    {"key": "http.method", "value": {"stringValue": "GET"}},
                    {"key": "http.status_code", "value": {"intValue": "200"}},
                    {"key": "net.peer.name", "value": {"stringValue": "checkout.internal"}},
                ],
                "events": if i % 20 == 0 { json!([{"timeUnixNano": "1700000000000000100", "name": "retry", "attributes": [{"key": "attempt", "value": {"intValue": 2}}]}]) } else { json!([]) },
                "status": {"code": 1}
            }));
        }
        serde_json::to_string(&json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
            "scopeSpans": [{"scope": {"name": "io.opentelemetry.http", "version": "1.0"}, "spans": spans}]
        }]}))
        .unwrap()
    }

    #[test]
    fn bench_body_translates() {
        let body = bench_body();
        let req = decode(&ok(&body));
        assert_eq!(req.rs[0].scope_spans[0].spans.len(), 3000);
    }

    /// `cargo test --release -- --ignored --nocapture bench_throughput`
    #[test]
    #[ignore]
    fn bench_throughput() {
        let body = bench_body();
        let mb = body.len() as f64 / 1e6;
        let iters = 200;
        let time = |f: &dyn Fn()| {
            f();
            let t = std::time::Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() / f64::from(iters)
        };
        let ours = time(&|| {
            std::hint::black_box(json_to_protobuf(std::hint::black_box(body.as_bytes())).unwrap());
        });
        let value = time(&|| {
            std::hint::black_box(serde_json::from_slice::<J>(body.as_bytes()).unwrap());
        });
        let ignored = time(&|| {
            std::hint::black_box(serde_json::from_slice::<IgnoredAny>(body.as_bytes()).unwrap());
        });
        let out_len = json_to_protobuf(body.as_bytes()).unwrap().len();
        println!(
            "body {mb:.2} MB -> {:.2} MB protobuf; json_to_protobuf {:.2} ms = {:.0} MB/s; \
             serde_json::Value parse alone {:.0} MB/s; IgnoredAny scan {:.0} MB/s",
            out_len as f64 / 1e6,
            ours * 1e3,
            mb / ours,
            mb / value,
            mb / ignored
        );
    }
}
