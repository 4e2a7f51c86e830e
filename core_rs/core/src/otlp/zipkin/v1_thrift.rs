//! Zipkin v1 thrift (`POST /api/v1/spans`, `Content-Type: application/x-thrift`): a
//! TBinaryProtocol list header followed by zipkincore.thrift `Span` structs, read by
//! hand and converted by the [`super::v1`] rules.
//!
//! As Apache Thrift's generated Go readers do: unknown fields, and known ones of
//! another type, are skipped (nesting bounded to 64); a repeated field keeps its
//! last value; bytes after the declared spans are ignored. Strings must be UTF-8.
//! `BinaryAnnotation.value` is typed by `annotation_type` as the collector does:
//! BOOL is true when the value is exactly `[1]`, BYTES becomes base64 text, I16 and
//! I32 are read big-endian *unsigned* (the collector's reading), I64 and DOUBLE
//! big-endian, STRING as text; a value too short for its number, or an unknown
//! type, becomes a `<…>` message string. Ports are unsigned 16-bit.

use base64::Engine;

use super::v1::{self, Addr, Host, HostNames, V1Annotation, V1Binary, V1Span};
use super::{to_otlp, Id, Rules, Str, Value};

// TBinaryProtocol type ids.
const STOP: u8 = 0;
const BOOL: u8 = 2;
const BYTE: u8 = 3;
const DOUBLE: u8 = 4;
const I16: u8 = 6;
const I32: u8 = 8;
const I64: u8 = 10;
const STRING: u8 = 11;
const STRUCT: u8 = 12;
const MAP: u8 = 13;
const SET: u8 = 14;
const LIST: u8 = 15;
const UUID: u8 = 16;

/// Deepest nesting of skipped values (Apache Thrift's default skip depth).
const MAX_DEPTH: usize = 64;

/// Zipkin v1 thrift (a TBinaryProtocol list of `Span`) to OTLP protobuf: spans
/// grouped into a `ResourceSpans` per local endpoint.
pub fn zipkin_v1_thrift_to_otlp(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut c = Cursor { buf: body, pos: 0 };
    let n = c.struct_list().map_err(|e| e.to_string())?;
    let mut spans = Vec::with_capacity(n.min(1024));
    for i in 0..n {
        let s = span(&mut c).map_err(|e| format!("span {i}: {e}"))?;
        spans.push(v1::to_span(s, HostNames::Any));
    }
    Ok(to_otlp(&spans, Rules::V1))
}

/// Where and why the input is not a valid span list.
struct Error {
    path: String,
    message: String,
}

impl Error {
    /// The error inside `field` (a field name or `list[i]`).
    fn at(mut self, field: &str) -> Error {
        self.path = match self.path.as_str() {
            "" => field.to_string(),
            p => format!("{field}.{p}"),
        };
        self
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.path.as_str() {
            "" => f.write_str(&self.message),
            p => write!(f, "{p}: {}", self.message),
        }
    }
}

type Read<T> = Result<T, Error>;

/// `move |e| e.at(field)`.
fn at(field: &str) -> impl FnOnce(Error) -> Error + '_ {
    move |e| e.at(field)
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn error(&self, message: impl std::fmt::Display) -> Error {
        Error { path: String::new(), message: format!("{message} at byte {}", self.pos) }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Read<&'a [u8]> {
        match self.buf.get(self.pos..self.pos.saturating_add(n)) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            _ => Err(self.error("unexpected end of input")),
        }
    }

    fn array<const N: usize>(&mut self) -> Read<[u8; N]> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Read<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn i16(&mut self) -> Read<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Read<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Read<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A collection size; each element takes at least `min` bytes.
    fn size(&mut self, min: usize) -> Read<usize> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| self.error(format_args!("negative size {n}")))?;
        if n.saturating_mul(min) > self.remaining() {
            let left = self.remaining();
            return Err(self.error(format_args!("{n} elements declared, {left} bytes left")));
        }
        Ok(n)
    }

    fn binary(&mut self) -> Read<&'a [u8]> {
        let n = self.size(1)?;
        self.take(n)
    }

    fn string(&mut self) -> Read<Str<'a>> {
        let start = self.pos;
        let b = self.binary()?;
        simdutf8::basic::from_utf8(b).map(Str::Borrowed).map_err(|_| Error {
            path: String::new(),
            message: format!("not valid UTF-8 at byte {start}"),
        })
    }

    /// A list header of struct elements: the element count.
    fn struct_list(&mut self) -> Read<usize> {
        let elem = self.u8()?;
        if elem != STRUCT {
            return Err(self.error(format_args!("list of thrift type {elem}, not of structs")));
        }
        self.size(1)
    }

    /// The next field header: None at the struct's end.
    fn field(&mut self) -> Read<Option<(i16, u8)>> {
        let ty = self.u8()?;
        if ty == STOP {
            return Ok(None);
        }
        Ok(Some((self.i16()?, ty)))
    }

    /// Skips one value of type `ty`.
    fn skip(&mut self, ty: u8, depth: usize) -> Read<()> {
        if depth >= MAX_DEPTH {
            return Err(self.error(format_args!("values nested deeper than {MAX_DEPTH}")));
        }
        match ty {
            BOOL | BYTE => self.take(1).map(drop),
            I16 => self.take(2).map(drop),
            I32 => self.take(4).map(drop),
            DOUBLE | I64 => self.take(8).map(drop),
            UUID => self.take(16).map(drop),
            STRING => self.binary().map(drop),
            STRUCT => {
                while let Some((_, ty)) = self.field()? {
                    self.skip(ty, depth + 1)?;
                }
                Ok(())
            }
            MAP => {
                let (k, v) = (self.u8()?, self.u8()?);
                for _ in 0..self.size(2)? {
                    self.skip(k, depth + 1)?;
                    self.skip(v, depth + 1)?;
                }
                Ok(())
            }
            SET | LIST => {
                let elem = self.u8()?;
                for _ in 0..self.size(1)? {
                    self.skip(elem, depth + 1)?;
                }
                Ok(())
            }
            ty => Err(self.error(format_args!("invalid thrift type {ty}"))),
        }
    }

    /// A list of structs read by `item`.
    fn list<T>(&mut self, name: &str, mut item: impl FnMut(&mut Self) -> Read<T>) -> Read<Vec<T>> {
        let n = self.struct_list().map_err(at(name))?;
        let mut out = Vec::with_capacity(n.min(64));
        for j in 0..n {
            out.push(item(self).map_err(|e| e.at(&format!("{name}[{j}]")))?);
        }
        Ok(out)
    }
}

fn span<'a>(c: &mut Cursor<'a>) -> Read<V1Span<'a>> {
    let (mut low, mut high, mut id) = (0, 0, 0);
    let mut s = V1Span {
        trace_id: Id::BAD,
        id: Id::BAD,
        parent_id: None,
        name: Str::Borrowed(""),
        timestamp: None,
        duration: 0,
        annotations: Vec::new(),
        binary_annotations: Vec::new(),
    };
    while let Some((field, ty)) = c.field()? {
        match (field, ty) {
            (1, I64) => low = c.i64().map_err(at("trace_id"))?,
            (3, STRING) => s.name = c.string().map_err(at("name"))?,
            (4, I64) => id = c.i64().map_err(at("id"))?,
            (5, I64) => s.parent_id = Some(Id::span(c.i64().map_err(at("parent_id"))? as u64)),
            (6, LIST) => s.annotations = c.list("annotations", annotation)?,
            (8, LIST) => s.binary_annotations = c.list("binary_annotations", binary_annotation)?,
            (10, I64) => s.timestamp = Some(c.i64().map_err(at("timestamp"))?),
            (11, I64) => s.duration = c.i64().map_err(at("duration"))?,
            (12, I64) => high = c.i64().map_err(at("trace_id_high"))?,
            _ => c.skip(ty, 0).map_err(|e| e.at(&format!("field {field}")))?,
        }
    }
    s.trace_id = Id::trace(high as u64, low as u64);
    s.id = Id::span(id as u64);
    Ok(s)
}

fn annotation<'a>(c: &mut Cursor<'a>) -> Read<V1Annotation<'a>> {
    let mut a = V1Annotation { timestamp: 0, value: Str::Borrowed(""), host: None };
    while let Some((field, ty)) = c.field()? {
        match (field, ty) {
            (1, I64) => a.timestamp = c.i64().map_err(at("timestamp"))?,
            (2, STRING) => a.value = c.string().map_err(at("value"))?,
            (3, STRUCT) => a.host = Some(host(c).map_err(at("host"))?),
            _ => c.skip(ty, 1).map_err(|e| e.at(&format!("field {field}")))?,
        }
    }
    Ok(a)
}

fn binary_annotation<'a>(c: &mut Cursor<'a>) -> Read<V1Binary<'a>> {
    let (mut key, mut value, mut kind, mut binary_host) = (Str::Borrowed(""), &[][..], 0, None);
    let mut value_at = c.pos;
    while let Some((field, ty)) = c.field()? {
        match (field, ty) {
            (1, STRING) => key = c.string().map_err(at("key"))?,
            (2, STRING) => {
                value_at = c.pos;
                value = c.binary().map_err(at("value"))?;
            }
            (3, I32) => kind = c.i32().map_err(at("annotation_type"))?,
            (4, STRUCT) => binary_host = Some(host(c).map_err(at("host"))?),
            _ => c.skip(ty, 1).map_err(|e| e.at(&format!("field {field}")))?,
        }
    }
    let value = typed(value, kind).ok_or_else(|| Error {
        path: "value".to_string(),
        message: format!("not valid UTF-8 at byte {value_at}"),
    })?;
    Ok(V1Binary { key, value, host: binary_host })
}

const NOT_ENOUGH_BYTES: &str = "<not enough bytes representing the number>";

/// A binary annotation's value by its `AnnotationType`; None for a STRING that is
/// not UTF-8.
fn typed(b: &[u8], kind: i32) -> Option<Value<'_>> {
    let first = |n: usize| b.get(..n).map(|x| x.iter().fold(0u64, |a, y| a << 8 | *y as u64));
    Some(match kind {
        0 => Value::Bool(b == [1]),
        1 => Value::Str(Str::Owned(base64::engine::general_purpose::STANDARD.encode(b))),
        2 => first(2).map_or(Value::Str(Str::Borrowed(NOT_ENOUGH_BYTES)), |v| Value::Int(v as i64)),
        3 => first(4).map_or(Value::Str(Str::Borrowed(NOT_ENOUGH_BYTES)), |v| Value::Int(v as i64)),
        4 => first(8).map_or(Value::Str(Str::Borrowed(NOT_ENOUGH_BYTES)), |v| Value::Int(v as i64)),
        5 => first(8).map_or(Value::Str(Str::Borrowed(NOT_ENOUGH_BYTES)), |v| {
            Value::Double(f64::from_bits(v))
        }),
        6 => Value::Str(Str::Borrowed(simdutf8::basic::from_utf8(b).ok()?)),
        n => Value::Str(Str::Owned(format!("<unknown zipkin v1 binary annotation type ({n})>"))),
    })
}

fn host<'a>(c: &mut Cursor<'a>) -> Read<Host<'a>> {
    let mut h = Host::default();
    while let Some((field, ty)) = c.field()? {
        match (field, ty) {
            (1, I32) => {
                let ip = c.take(4).map_err(at("ipv4"))?;
                h.ipv4 = if ip == [0; 4] { Addr::None } else { Addr::Bytes(ip) };
            }
            (2, I16) => h.port = c.i16().map_err(at("port"))? as u16,
            (3, STRING) => h.service_name = c.string().map_err(at("service_name"))?,
            (4, STRING) => h.ipv6 = Addr::Bytes(c.binary().map_err(at("ipv6"))?),
            _ => c.skip(ty, 2).map_err(|e| e.at(&format!("field {field}")))?,
        }
    }
    Ok(h)
}
