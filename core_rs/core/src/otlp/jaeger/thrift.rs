//! A borrowing Thrift reader (TBinaryProtocol and TCompactProtocol) for Jaeger's
//! `agent.thrift` / `jaeger.thrift`, feeding the [`Translator`].
//!
//! Like Apache Thrift's generated Go code, a known field sent with another type is
//! skipped, a repeated field replaces the earlier one, and a missing required field
//! is an error. Declared sizes are checked against the bytes left before any loop
//! and nested unknown values are skipped at most [`MAX_DEPTH`] deep.

use super::translate::{Log, Process, Ref, SpanHead, Tag, Translator, Val};
use super::{Fail, Strs};

type Res<T> = Result<T, Fail>;

// Type ids in TBinaryProtocol's numbering; compact type ids are mapped onto them.
const T_BOOL: u8 = 2;
const T_BYTE: u8 = 3;
const T_DOUBLE: u8 = 4;
const T_I16: u8 = 6;
const T_I32: u8 = 8;
const T_I64: u8 = 10;
const T_STRING: u8 = 11;
const T_STRUCT: u8 = 12;
const T_MAP: u8 = 13;
const T_SET: u8 = 14;
const T_LIST: u8 = 15;
const T_UUID: u8 = 16;

/// How deep unknown containers may nest.
const MAX_DEPTH: u32 = 64;

/// Message types of the envelope.
const CALL: u8 = 1;
const ONEWAY: u8 = 4;

/// A field header; `bool_val` is a compact bool field's value (sent in the header).
#[derive(Debug, Clone, Copy)]
struct Field {
    ty: u8,
    id: i16,
    bool_val: bool,
}

#[cold]
fn truncated(pos: usize) -> Fail {
    fail!("truncated thrift at byte {pos}")
}

/// The TCompactProtocol type `t` in TBinaryProtocol numbering.
fn compact_type(t: u8, at: usize) -> Res<u8> {
    Ok(match t {
        1 | 2 => T_BOOL,
        3 => T_BYTE,
        4 => T_I16,
        5 => T_I32,
        6 => T_I64,
        7 => T_DOUBLE,
        8 => T_STRING,
        9 => T_LIST,
        10 => T_SET,
        11 => T_MAP,
        12 => T_STRUCT,
        13 => T_UUID,
        _ => return Err(fail!("invalid compact thrift type {t} at byte {at}")),
    })
}

/// Reads one protocol from a borrowed buffer; `C` selects TCompactProtocol.
struct Cursor<'a, const C: bool> {
    buf: &'a [u8],
    pos: usize,
    strs: Strs<'a>,
}

impl<'a, const C: bool> Cursor<'a, C> {
    fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0, strs: Strs::default() }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        match self.pos.checked_add(n).and_then(|end| self.buf.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(truncated(self.pos)),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Res<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    #[inline]
    fn u8(&mut self) -> Res<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(truncated(self.pos)),
        }
    }

    /// An unsigned LEB128 varint of at most 10 bytes (compact only).
    #[inline(always)]
    fn varint(&mut self) -> Res<u64> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(b as u64)
            }
            _ => self.varint_slow(),
        }
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> Res<u64> {
        let start = self.pos;
        let mut v = 0u64;
        let mut shift = 0;
        while shift < 70 {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
        }
        Err(fail!("varint longer than 10 bytes at byte {start}"))
    }

    fn i16(&mut self) -> Res<i16> {
        if C {
            Ok(self.i32()? as i16)
        } else {
            Ok(i16::from_be_bytes(self.array()?))
        }
    }

    #[inline]
    fn i32(&mut self) -> Res<i32> {
        if C {
            let u = self.varint()? as u32;
            Ok((u >> 1) as i32 ^ -((u & 1) as i32))
        } else {
            Ok(i32::from_be_bytes(self.array()?))
        }
    }

    #[inline]
    fn i64(&mut self) -> Res<i64> {
        if C {
            let u = self.varint()?;
            Ok((u >> 1) as i64 ^ -((u & 1) as i64))
        } else {
            Ok(i64::from_be_bytes(self.array()?))
        }
    }

    fn double(&mut self) -> Res<f64> {
        let b = self.array()?;
        Ok(f64::from_bits(if C { u64::from_le_bytes(b) } else { u64::from_be_bytes(b) }))
    }

    /// A bool field's value (compact sends it in the field header).
    fn bool(&mut self, f: &Field) -> Res<bool> {
        if C {
            Ok(f.bool_val)
        } else {
            Ok(self.u8()? == 1)
        }
    }

    /// A non-negative i32 size or length.
    #[inline]
    fn size(&mut self) -> Res<usize> {
        let at = self.pos;
        let n = if C { self.varint()? as u32 as i32 } else { self.i32()? };
        usize::try_from(n).map_err(|_| fail!("negative size {n} at byte {at}"))
    }

    #[inline]
    fn binary(&mut self) -> Res<&'a [u8]> {
        let n = self.size()?;
        self.take(n)
    }

    #[inline]
    fn string(&mut self, what: &str) -> Res<&'a str> {
        let b = self.binary()?;
        self.strs.get(b, what)
    }

    /// The next field header of a struct, None at its end; `last` is the previous
    /// field id (compact field ids are deltas).
    #[inline]
    fn field(&mut self, last: &mut i16) -> Res<Option<Field>> {
        let at = self.pos;
        let b = self.u8()?;
        if C {
            if b & 0x0f == 0 {
                return Ok(None);
            }
            let delta = (b >> 4) as i16;
            let id = if delta == 0 { self.i16()? } else { last.wrapping_add(delta) };
            *last = id;
            let ty = compact_type(b & 0x0f, at)?;
            Ok(Some(Field { ty, id, bool_val: b & 0x0f == 1 }))
        } else {
            if b == 0 {
                return Ok(None);
            }
            Ok(Some(Field { ty: b, id: self.i16()?, bool_val: false }))
        }
    }

    /// Fails unless `n` elements of at least `min` bytes each fit in what is left.
    fn check_count(&self, n: usize, min: usize, at: usize) -> Res<()> {
        let left = self.buf.len().saturating_sub(self.pos);
        if n.saturating_mul(min) > left {
            return Err(fail!("{n} elements at byte {at} exceed the {left} bytes left"));
        }
        Ok(())
    }

    /// A list or set header: (element type, count).
    fn list(&mut self) -> Res<(u8, usize)> {
        let at = self.pos;
        let (ty, n) = if C {
            let b = self.u8()?;
            let n = if b >> 4 == 15 { self.size()? } else { (b >> 4) as usize };
            // Type 0 (STOP) is no element type, but Go's reader lets an empty list have it.
            (if b & 0x0f == 0 { 0 } else { compact_type(b & 0x0f, at)? }, n)
        } else {
            let ty = self.u8()?;
            (ty, self.size()?)
        };
        self.check_count(n, 1, at)?;
        Ok((ty, n))
    }

    /// A map header: (key type, value type, count).
    fn map(&mut self) -> Res<(u8, u8, usize)> {
        let at = self.pos;
        let (k, v, n) = if C {
            let n = self.size()?;
            if n == 0 {
                (0, 0, 0)
            } else {
                let b = self.u8()?;
                (compact_type(b >> 4, at)?, compact_type(b & 0x0f, at)?, n)
            }
        } else {
            let (k, v) = (self.u8()?, self.u8()?);
            (k, v, self.size()?)
        };
        self.check_count(n, 2, at)?;
        Ok((k, v, n))
    }

    /// A list header whose elements must be structs.
    fn struct_list(&mut self) -> Res<usize> {
        let at = self.pos;
        let (ty, n) = self.list()?;
        if n > 0 && ty != T_STRUCT {
            return Err(fail!("list at byte {at} holds type {ty}, not structs"));
        }
        Ok(n)
    }

    fn skip_field(&mut self, f: &Field) -> Res<()> {
        if C && f.ty == T_BOOL {
            return Ok(());
        }
        self.skip(f.ty, 0)
    }

    /// Skips one value of type `ty`.
    fn skip(&mut self, ty: u8, depth: u32) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err(fail!("thrift nested deeper than {MAX_DEPTH} at byte {}", self.pos));
        }
        match ty {
            T_BOOL | T_BYTE => {
                self.take(1)?;
            }
            T_I16 | T_I32 | T_I64 if C => {
                self.varint()?;
            }
            T_I16 => {
                self.take(2)?;
            }
            T_I32 => {
                self.take(4)?;
            }
            T_I64 | T_DOUBLE => {
                self.take(8)?;
            }
            T_UUID => {
                self.take(16)?;
            }
            T_STRING => {
                self.binary()?;
            }
            T_STRUCT => {
                let mut last = 0;
                while let Some(f) = self.field(&mut last)? {
                    if !(C && f.ty == T_BOOL) {
                        self.skip(f.ty, depth + 1)?;
                    }
                }
            }
            T_LIST | T_SET => {
                let (et, n) = self.list()?;
                for _ in 0..n {
                    self.skip(et, depth + 1)?;
                }
            }
            T_MAP => {
                let (kt, vt, n) = self.map()?;
                for _ in 0..n {
                    self.skip(kt, depth + 1)?;
                    self.skip(vt, depth + 1)?;
                }
            }
            t => return Err(fail!("invalid thrift type {t} before byte {}", self.pos)),
        }
        Ok(())
    }

    /// The message envelope: (name, message type).
    fn message_begin(&mut self) -> Res<(&'a [u8], u8)> {
        if C {
            let id = self.u8()?;
            if id != 0x82 {
                return Err(fail!("protocol id {id:#04x} is not TCompactProtocol's 0x82"));
            }
            let vt = self.u8()?;
            if vt & 0x1f != 1 {
                return Err(fail!("compact protocol version {} is not 1", vt & 0x1f));
            }
            self.varint()?; // sequence id
            let name = self.binary()?;
            Ok((name, (vt >> 5) & 0x07))
        } else {
            let first = self.i32()?;
            if first < 0 {
                if first as u32 & 0xffff_0000 != 0x8001_0000 {
                    return Err(fail!("binary protocol version {:#010x} is not 1", first as u32));
                }
                let name = self.binary()?;
                self.take(4)?; // sequence id
                Ok((name, (first & 0xff) as u8))
            } else {
                let name = self.take(first as usize)?;
                let ty = self.u8()?;
                self.take(4)?;
                Ok((name, ty))
            }
        }
    }
}

impl<'a, const C: bool> Cursor<'a, C> {
    /// A TBinaryProtocol `Tag` laid out as every writer lays it out (key, vType, the one value
    /// field its type names, stop), else None with nothing consumed: [`tag_fields`]
    /// then reads it field by field, to the same result or an error.
    #[inline(always)]
    fn usual_tag(&mut self) -> Option<Tag<'a>> {
        let buf = self.buf;
        let be32 = |h: &[u8], i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let mut p = self.pos;
        let h = buf.get(p..p + 7)?;
        if h[..3] != [T_STRING, 0, 1] {
            return None;
        }
        p += 7;
        let key = buf.get(p..p.checked_add(be32(h, 3) as usize)?)?;
        p += key.len();
        // vType, then the value field's header.
        let h = buf.get(p..p + 10)?;
        if h[..3] != [T_I32, 0, 2] {
            return None;
        }
        p += 10;
        let val = match (be32(h, 3), [h[7], h[8], h[9]]) {
            (0, [T_STRING, 0, 3]) | (4, [T_STRING, 0, 7]) => {
                let l = buf.get(p..p + 4)?;
                let v = buf.get(p + 4..(p + 4).checked_add(be32(l, 0) as usize)?)?;
                p += 4 + v.len();
                if h[6] == 4 {
                    Val::Bytes(v)
                } else {
                    Val::Str(self.strs.get(v, "vStr").ok()?)
                }
            }
            (2, [T_BOOL, 0, 5]) => {
                p += 1;
                Val::Bool(*buf.get(p - 1)? == 1)
            }
            (1, [T_DOUBLE, 0, 4]) | (3, [T_I64, 0, 6]) => {
                let v = buf.get(p..p + 8)?;
                p += 8;
                let v = u64::from_be_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]]);
                if h[6] == 1 {
                    Val::Double(f64::from_bits(v))
                } else {
                    Val::Int(v as i64)
                }
            }
            _ => return None,
        };
        if *buf.get(p)? != 0 {
            return None;
        }
        let key = self.strs.get(key, "key").ok()?;
        self.pos = p + 1;
        Some(Tag { key, val })
    }
}

/// One `Tag`.
#[inline]
fn tag<'a, const C: bool>(c: &mut Cursor<'a, C>) -> Res<Tag<'a>> {
    if !C {
        if let Some(t) = c.usual_tag() {
            return Ok(t);
        }
    }
    tag_fields(c)
}

/// One `Tag`, field by field.
fn tag_fields<'a, const C: bool>(c: &mut Cursor<'a, C>) -> Res<Tag<'a>> {
    let (mut key, mut vtype) = (None, None);
    let (mut vstr, mut vdouble, mut vbool, mut vlong, mut vbin) = (&[][..], 0.0, false, 0, &[][..]);
    let mut last = 0;
    while let Some(f) = c.field(&mut last)? {
        match (f.id, f.ty) {
            (1, T_STRING) => key = Some(c.string("key")?),
            (2, T_I32) => vtype = Some(c.i32()?),
            (3, T_STRING) => vstr = c.binary()?,
            (4, T_DOUBLE) => vdouble = c.double()?,
            (5, T_BOOL) => vbool = c.bool(&f)?,
            (6, T_I64) => vlong = c.i64()?,
            (7, T_STRING) => vbin = c.binary()?,
            _ => c.skip_field(&f)?,
        }
    }
    let key = key.ok_or_else(|| Fail::new("required field key is missing"))?;
    let val = match vtype.ok_or_else(|| Fail::new("required field vType is missing"))? {
        0 => Val::Str(c.strs.get(vstr, "vStr")?),
        1 => Val::Double(vdouble),
        2 => Val::Bool(vbool),
        3 => Val::Int(vlong),
        4 => Val::Bytes(vbin),
        t => return Err(fail!("vType {t} is not a Jaeger tag type")),
    };
    Ok(Tag { key, val })
}

/// A `list<Tag>`, appended to `out`; `what` names an element in errors.
fn tags<'a, const C: bool>(c: &mut Cursor<'a, C>, out: &mut Vec<Tag<'a>>, what: &str) -> Res<()> {
    let n = c.struct_list()?;
    for i in 0..n {
        out.push(tag(c).map_err(|e| e.ctx(format_args!("{what} {i}")))?);
    }
    Ok(())
}

/// One `Log`, its fields appended to `log_tags`.
fn log<'a, const C: bool>(c: &mut Cursor<'a, C>, log_tags: &mut Vec<Tag<'a>>) -> Res<Log> {
    let start = log_tags.len();
    let (mut time, mut fields) = (None, false);
    let mut last = 0;
    while let Some(f) = c.field(&mut last)? {
        match (f.id, f.ty) {
            (1, T_I64) => time = Some(c.i64()?),
            (2, T_LIST) => {
                log_tags.truncate(start);
                tags(c, log_tags, "field")?;
                fields = true;
            }
            _ => c.skip_field(&f)?,
        }
    }
    let time = time.ok_or_else(|| Fail::new("required field timestamp is missing"))?;
    if !fields {
        return Err(Fail::new("required field fields is missing"));
    }
    Ok(Log { time_unix_nano: (time as u64).wrapping_mul(1000), fields: (start, log_tags.len()) })
}

/// One `SpanRef`.
fn span_ref<const C: bool>(c: &mut Cursor<'_, C>) -> Res<Ref> {
    let mut r = Ref::default();
    let mut seen = 0u8;
    let mut last = 0;
    while let Some(f) = c.field(&mut last)? {
        match (f.id, f.ty) {
            (1, T_I32) => r.ref_type = c.i32()?,
            (2, T_I64) => r.trace_lo = c.i64()? as u64,
            (3, T_I64) => r.trace_hi = c.i64()? as u64,
            (4, T_I64) => r.span_id = c.i64()? as u64,
            _ => {
                c.skip_field(&f)?;
                continue;
            }
        }
        seen |= 1 << f.id;
    }
    for (bit, name) in [(1, "refType"), (2, "traceIdLow"), (3, "traceIdHigh"), (4, "spanId")] {
        if seen & 1 << bit == 0 {
            return Err(fail!("required field {name} is missing"));
        }
    }
    Ok(r)
}

/// One `Span`, translated into group `g` unless it is blank (all fields zero).
fn span<'a, const C: bool>(c: &mut Cursor<'a, C>, tr: &mut Translator<'a>, g: usize) -> Res<()> {
    tr.lists.clear();
    let mut h = SpanHead::default();
    let (mut start, mut duration) = (0i64, 0i64);
    // Required fields seen (bit = field id) and optional ones present.
    let mut seen = 0u16;
    let mut last = 0;
    while let Some(f) = c.field(&mut last)? {
        let lists = &mut tr.lists;
        match (f.id, f.ty) {
            (1, T_I64) => h.trace_lo = c.i64()? as u64,
            (2, T_I64) => h.trace_hi = c.i64()? as u64,
            (3, T_I64) => h.span_id = c.i64()? as u64,
            (4, T_I64) => h.parent_span_id = c.i64()? as u64,
            (5, T_STRING) => h.name = c.string("operationName")?,
            (6, T_LIST) => {
                lists.refs.clear();
                let n = c.struct_list()?;
                for i in 0..n {
                    lists.refs.push(span_ref(c).map_err(|e| e.ctx(format_args!("reference {i}")))?);
                }
            }
            (7, T_I32) => h.flags = c.i32()? as u32,
            (8, T_I64) => start = c.i64()?,
            (9, T_I64) => duration = c.i64()?,
            (10, T_LIST) => {
                lists.tags.clear();
                tags(c, &mut lists.tags, "tag")?;
            }
            (11, T_LIST) => {
                lists.logs.clear();
                lists.log_tags.clear();
                let n = c.struct_list()?;
                for i in 0..n {
                    let l =
                        log(c, &mut lists.log_tags).map_err(|e| e.ctx(format_args!("log {i}")))?;
                    lists.logs.push(l);
                }
            }
            (12, T_BOOL) => {
                c.bool(&f)?;
            }
            _ => {
                c.skip_field(&f)?;
                continue;
            }
        }
        seen |= 1 << f.id;
    }
    for (bit, name) in [
        (1, "traceIdLow"),
        (2, "traceIdHigh"),
        (3, "spanId"),
        (4, "parentSpanId"),
        (5, "operationName"),
        (7, "flags"),
        (8, "startTime"),
        (9, "duration"),
    ] {
        if seen & 1 << bit == 0 {
            return Err(fail!("required field {name} is missing"));
        }
    }
    let optional = 1 << 6 | 1 << 10 | 1 << 11 | 1 << 12;
    let blank = seen & optional == 0
        && (h.trace_lo, h.trace_hi, h.span_id, h.parent_span_id, h.flags) == (0, 0, 0, 0, 0)
        && (start, duration) == (0, 0)
        && h.name.is_empty();
    if blank {
        return Ok(());
    }
    h.start_unix_nano = (start as u64).wrapping_mul(1000);
    h.end_unix_nano = (start.wrapping_add(duration) as u64).wrapping_mul(1000);
    tr.span(g, &h);
    Ok(())
}

/// One `Process`.
fn process<'a, const C: bool>(c: &mut Cursor<'a, C>) -> Res<Process<'a>> {
    let mut p = Process::default();
    let mut service = false;
    let mut last = 0;
    while let Some(f) = c.field(&mut last)? {
        match (f.id, f.ty) {
            (1, T_STRING) => {
                p.service = c.string("serviceName")?;
                service = true;
            }
            (2, T_LIST) => {
                p.tags.clear();
                tags(c, &mut p.tags, "tag")?;
            }
            _ => c.skip_field(&f)?,
        }
    }
    if !service {
        return Err(Fail::new("required field serviceName is missing"));
    }
    Ok(p)
}

/// One `Batch`: a `ResourceSpans` for its process.
fn batch<'a, const C: bool>(c: &mut Cursor<'a, C>, tr: &mut Translator<'a>) -> Res<()> {
    tr.reset();
    let g = tr.add_group(None);
    let (mut has_process, mut has_spans) = (false, false);
    let mut last = 0;
    while let Some(f) = c.field(&mut last)? {
        match (f.id, f.ty) {
            (1, T_STRUCT) => {
                let p = process(c).map_err(|e| e.ctx(format_args!("process")))?;
                tr.set_process(g, p);
                has_process = true;
            }
            (2, T_LIST) => {
                tr.clear_spans(g);
                let n = c.struct_list().map_err(|e| e.ctx(format_args!("spans")))?;
                for i in 0..n {
                    span(c, tr, g).map_err(|e| e.ctx(format_args!("span {i}")))?;
                }
                has_spans = true;
            }
            _ => c.skip_field(&f)?,
        }
    }
    if !has_process {
        return Err(Fail::new("batch: required field process is missing"));
    }
    if !has_spans {
        return Err(Fail::new("batch: required field spans is missing"));
    }
    Ok(())
}

/// A `jaeger.Batch` struct.
pub(super) fn thrift_batch<'a, const C: bool>(buf: &'a [u8], tr: &mut Translator<'a>) -> Res<()> {
    batch(&mut Cursor::<C>::new(buf), tr)
}

/// An `Agent.emitBatch` message: the envelope, then the args struct whose field 1
/// is the batch (absent: no spans).
pub(super) fn agent_message<'a, const C: bool>(buf: &'a [u8], tr: &mut Translator<'a>) -> Res<()> {
    let mut c = Cursor::<C>::new(buf);
    let (name, ty) = c.message_begin()?;
    if ty != CALL && ty != ONEWAY {
        return Err(fail!("thrift message type {ty} is neither CALL nor ONEWAY"));
    }
    if name != b"emitBatch" {
        let name = String::from_utf8_lossy(name);
        return Err(fail!("thrift message {name:?} is not emitBatch"));
    }
    let mut last = 0;
    while let Some(f) = c.field(&mut last)? {
        match (f.id, f.ty) {
            (1, T_STRUCT) => batch(&mut c, tr)?,
            _ => c.skip_field(&f)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binary tags of every type and layout, whole and damaged: the fast path reads
    /// what [`tag_fields`] reads, or leaves the tag to it.
    #[test]
    fn usual_tags_read_as_field_by_field() {
        let mut tags: Vec<Vec<u8>> = Vec::new();
        let field = |out: &mut Vec<u8>, ty: u8, id: i16| {
            out.push(ty);
            out.extend_from_slice(&id.to_be_bytes());
        };
        let values: [(u8, i16, Vec<u8>); 7] = [
            (T_STRING, 3, [&5i32.to_be_bytes()[..], b"h\xc3\xa9llo"].concat()),
            (T_STRING, 3, [&2i32.to_be_bytes()[..], b"\xff\xfe"].concat()),
            (T_DOUBLE, 4, 1.5f64.to_bits().to_be_bytes().to_vec()),
            (T_BOOL, 5, vec![1]),
            (T_BOOL, 5, vec![2]),
            (T_I64, 6, (-3i64).to_be_bytes().to_vec()),
            (T_STRING, 7, [&3i32.to_be_bytes()[..], b"\x00\x80\xff"].concat()),
        ];
        for key in [&b"span.kind"[..], b"", b"k\xe9y", b"a-key-longer-than-thirty-two-bytes!"] {
            for vtype in [0i32, 1, 2, 3, 4, 5, -1] {
                for (ty, id, v) in &values {
                    let mut t = Vec::new();
                    field(&mut t, T_STRING, 1);
                    t.extend_from_slice(&(key.len() as i32).to_be_bytes());
                    t.extend_from_slice(key);
                    field(&mut t, T_I32, 2);
                    t.extend_from_slice(&vtype.to_be_bytes());
                    field(&mut t, *ty, *id);
                    t.extend_from_slice(v);
                    t.push(0);
                    tags.push(t);
                }
            }
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let whole = tags.clone();
        for t in &whole {
            for n in 0..t.len() {
                tags.push(t[..n].to_vec());
                for _ in 0..4 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let mut m = t.clone();
                    m[n] = (seed >> 32) as u8;
                    tags.push(m);
                }
            }
        }
        let mut fast = 0;
        for t in &tags {
            let mut a = Cursor::<false>::new(t);
            let mut b = Cursor::<false>::new(t);
            let usual = a.usual_tag();
            fast += usual.is_some() as usize;
            let got = match usual {
                Some(tag) => Ok(tag),
                None => {
                    assert_eq!(a.pos, 0);
                    tag_fields(&mut a)
                }
            };
            let want = tag_fields(&mut b);
            let show = |r: Res<Tag<'_>>| format!("{:?}", r.map_err(String::from));
            assert_eq!(show(got), show(want), "{t:?}");
            assert_eq!(a.pos, b.pos, "{t:?}");
        }
        assert!(fast > 100, "{fast}");
    }
}
