//! Decoding of jaeger-idl `api_v2` protobuf (`PostSpansRequest`) into the
//! [`Translator`], with gogo/protobuf's rules: a known field with another wire
//! type is an error, a repeated scalar replaces the earlier one, repeated
//! messages merge (`Batch`, `Process`), ids are 16 or 8 bytes (trace) and 8
//! bytes (span), times must be valid `Timestamp`/`Duration`s.

use super::translate::{Log, Process, Ref, SpanHead, SpanLists, Tag, Translator, Val};
use super::{Fail, Strs};
use crate::pb::{Field, Reader};

type Res<T> = Result<T, Fail>;

/// The next field of `r`.
#[inline]
fn next<'a>(r: &mut Reader<'a>) -> Res<Option<Field<'a>>> {
    r.next_field().map_err(|e| fail!("{e}"))
}

#[cold]
fn wrong(f: &Field<'_>, name: &str) -> Fail {
    fail!("{name} (field {}) has wire type {}", f.number, f.wire_type())
}

#[inline]
fn bytes<'a>(f: &Field<'a>, name: &str) -> Res<&'a [u8]> {
    f.as_bytes().map_err(|_| wrong(f, name))
}

#[inline]
fn string<'a>(f: &Field<'a>, name: &str, strs: &mut Strs<'a>) -> Res<&'a str> {
    strs.get(bytes(f, name)?, name)
}

#[inline]
fn varint(f: &Field<'_>, name: &str) -> Res<u64> {
    f.as_varint().map_err(|_| wrong(f, name))
}

/// A `TraceID`: 16 bytes, or 8 (the low half).
fn trace_id(b: &[u8], name: &str) -> Res<(u64, u64)> {
    let word = |s: &[u8]| s.try_into().map(u64::from_be_bytes).unwrap_or(0);
    match b.len() {
        16 => Ok((word(&b[..8]), word(&b[8..]))),
        8 => Ok((0, word(b))),
        n => Err(fail!("{name} has {n} bytes, not 16 or 8")),
    }
}

fn span_id(b: &[u8], name: &str) -> Res<u64> {
    let a: [u8; 8] = b.try_into().map_err(|_| fail!("{name} has {} bytes, not 8", b.len()))?;
    Ok(u64::from_be_bytes(a))
}

/// A `google.protobuf.Timestamp` as (seconds, nanos).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Time(i64, i32);

/// Go's zero `time.Time` (0001-01-01), what an absent timestamp decodes to.
const ZERO_TIME: Time = Time(-62_135_596_800, 0);
/// 10000-01-01T00:00:00Z, the first second a `Timestamp` may not hold.
const MAX_SECONDS: i64 = 253_402_300_800;
/// The bound of a `Duration`'s seconds (10000 years).
const MAX_DURATION_SECONDS: i64 = 315_576_000_000;

impl Time {
    /// Nanoseconds since the epoch plus `plus`, wrapped to 64 bits as Go's `UnixNano`.
    fn unix_nano(self, plus: i64) -> u64 {
        (self.0 as i128 * 1_000_000_000 + self.1 as i128 + plus as i128) as u64
    }
}

/// The (seconds, nanos) pair of a `Timestamp` or `Duration` message.
fn seconds_nanos(b: &[u8]) -> Res<(i64, i32)> {
    let (mut secs, mut nanos) = (0, 0);
    let mut r = Reader::new(b);
    while let Some(f) = next(&mut r)? {
        match f.number {
            1 => secs = varint(&f, "seconds")? as i64,
            2 => nanos = varint(&f, "nanos")? as i32,
            _ => {}
        }
    }
    Ok((secs, nanos))
}

fn timestamp(b: &[u8]) -> Res<Time> {
    let (secs, nanos) = seconds_nanos(b)?;
    if !(ZERO_TIME.0..MAX_SECONDS).contains(&secs) {
        return Err(fail!("{secs} seconds is outside 0001-01-01 to 9999-12-31"));
    }
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(fail!("{nanos} nanos is outside [0, 1e9)"));
    }
    Ok(Time(secs, nanos))
}

/// A `Duration` in nanoseconds, as gogo's `DurationFromProto` accepts it.
fn duration(b: &[u8]) -> Res<i64> {
    let (secs, nanos) = seconds_nanos(b)?;
    let bad = || fail!("duration of {secs} s {nanos} ns is out of range");
    if !(-MAX_DURATION_SECONDS..=MAX_DURATION_SECONDS).contains(&secs)
        || !(-999_999_999..=999_999_999).contains(&nanos)
        || (secs < 0 && nanos > 0)
        || (secs > 0 && nanos < 0)
    {
        return Err(bad());
    }
    let d = secs.checked_mul(1_000_000_000).ok_or_else(bad)?;
    let d = d.wrapping_add(nanos as i64);
    if nanos != 0 && (d < 0) != (nanos < 0) {
        return Err(bad());
    }
    Ok(d)
}

/// A `KeyValue`.
fn key_value<'a>(b: &'a [u8], strs: &mut Strs<'a>) -> Res<Tag<'a>> {
    let (mut key, mut vtype) = ("", 0);
    let (mut vstr, mut vbool, mut vint, mut vfloat, mut vbin) = (&[][..], false, 0, 0.0, &[][..]);
    let mut r = Reader::new(b);
    while let Some(f) = next(&mut r)? {
        match f.number {
            1 => key = string(&f, "key", strs)?,
            2 => vtype = varint(&f, "v_type")? as i32,
            3 => vstr = bytes(&f, "v_str")?,
            4 => vbool = varint(&f, "v_bool")? != 0,
            5 => vint = varint(&f, "v_int64")? as i64,
            6 => vfloat = f64::from_bits(f.as_fixed64().map_err(|_| wrong(&f, "v_float64"))?),
            7 => vbin = bytes(&f, "v_binary")?,
            _ => {}
        }
    }
    let val = match vtype {
        0 => Val::Str(strs.get(vstr, "v_str")?),
        1 => Val::Bool(vbool),
        2 => Val::Int(vint),
        3 => Val::Double(vfloat),
        4 => Val::Bytes(vbin),
        t => return Err(fail!("v_type {t} is not a Jaeger value type")),
    };
    Ok(Tag { key, val })
}

/// Merges a `Process` message into `p` (service name: last wins; tags appended).
fn merge_process<'a>(p: &mut Process<'a>, b: &'a [u8], strs: &mut Strs<'a>) -> Res<()> {
    let mut r = Reader::new(b);
    while let Some(f) = next(&mut r)? {
        match f.number {
            1 => p.service = string(&f, "service_name", strs)?,
            2 => {
                let i = p.tags.len();
                p.tags.push(
                    key_value(bytes(&f, "tags")?, strs)
                        .map_err(|e| e.ctx(format_args!("tag {i}")))?,
                );
            }
            _ => {}
        }
    }
    Ok(())
}

fn span_ref(b: &[u8]) -> Res<Ref> {
    let mut r = Ref::default();
    let mut rd = Reader::new(b);
    while let Some(f) = next(&mut rd)? {
        match f.number {
            1 => (r.trace_hi, r.trace_lo) = trace_id(bytes(&f, "trace_id")?, "trace_id")?,
            2 => r.span_id = span_id(bytes(&f, "span_id")?, "span_id")?,
            3 => r.ref_type = varint(&f, "ref_type")? as i32,
            _ => {}
        }
    }
    Ok(r)
}

fn log<'a>(b: &'a [u8], lists: &mut SpanLists<'a>, strs: &mut Strs<'a>) -> Res<()> {
    let start = lists.log_tags.len();
    let mut time = ZERO_TIME;
    let mut r = Reader::new(b);
    while let Some(f) = next(&mut r)? {
        match f.number {
            1 => {
                time = timestamp(bytes(&f, "timestamp")?)
                    .map_err(|e| e.ctx(format_args!("timestamp")))?
            }
            2 => {
                let i = lists.log_tags.len() - start;
                let t = key_value(bytes(&f, "fields")?, strs)
                    .map_err(|e| e.ctx(format_args!("field {i}")))?;
                lists.log_tags.push(t);
            }
            _ => {}
        }
    }
    let fields = (start, lists.log_tags.len());
    lists.logs.push(Log { time_unix_nano: time.unix_nano(0), fields });
    Ok(())
}

/// One `Span`, translated into its own process's group, else `batch_group`,
/// unless it is blank (every field zero, as the collector skips it).
fn span<'a>(b: &'a [u8], tr: &mut Translator<'a>, batch_group: usize) -> Res<()> {
    tr.lists.clear();
    let (lists, strs) = (&mut tr.lists, &mut tr.strs);
    let mut h = SpanHead::default();
    let (mut start, mut duration_ns) = (ZERO_TIME, 0);
    let mut process: Option<Process<'a>> = None;
    let (mut process_id, mut warnings) = (false, false);
    let mut r = Reader::new(b);
    while let Some(f) = next(&mut r)? {
        match f.number {
            1 => (h.trace_hi, h.trace_lo) = trace_id(bytes(&f, "trace_id")?, "trace_id")?,
            2 => h.span_id = span_id(bytes(&f, "span_id")?, "span_id")?,
            3 => h.name = string(&f, "operation_name", strs)?,
            4 => {
                let i = lists.refs.len();
                let x = span_ref(bytes(&f, "references")?);
                lists.refs.push(x.map_err(|e| e.ctx(format_args!("reference {i}")))?);
            }
            5 => h.flags = varint(&f, "flags")? as u32,
            6 => {
                let t = timestamp(bytes(&f, "start_time")?);
                start = t.map_err(|e| e.ctx(format_args!("start_time")))?;
            }
            7 => {
                let d = duration(bytes(&f, "duration")?);
                duration_ns = d.map_err(|e| e.ctx(format_args!("duration")))?;
            }
            8 => {
                let i = lists.tags.len();
                let t = key_value(bytes(&f, "tags")?, strs)
                    .map_err(|e| e.ctx(format_args!("tag {i}")))?;
                lists.tags.push(t);
            }
            9 => {
                let i = lists.logs.len();
                log(bytes(&f, "logs")?, lists, strs).map_err(|e| e.ctx(format_args!("log {i}")))?;
            }
            10 => {
                let p = process.get_or_insert_with(Process::default);
                merge_process(p, bytes(&f, "process")?, strs)
                    .map_err(|e| e.ctx(format_args!("process")))?;
            }
            11 => process_id = !bytes(&f, "process_id")?.is_empty(),
            12 => {
                bytes(&f, "warnings")?;
                warnings = true;
            }
            _ => {}
        }
    }
    let blank = (h.trace_hi, h.trace_lo, h.span_id, h.flags) == (0, 0, 0, 0)
        && h.name.is_empty()
        && (start, duration_ns) == (ZERO_TIME, 0)
        && lists.refs.is_empty()
        && lists.tags.is_empty()
        && lists.logs.is_empty()
        && process.is_none()
        && !process_id
        && !warnings;
    if blank {
        tr.blank_span(batch_group);
        return Ok(());
    }
    h.start_unix_nano = start.unix_nano(0);
    h.end_unix_nano = start.unix_nano(duration_ns);
    let g = match process {
        Some(p) => tr.group_for(Some(p)),
        None => batch_group,
    };
    tr.span(g, &h);
    Ok(())
}

/// A `PostSpansRequest`: its `batch` (field 1; repeated occurrences merge).
pub(super) fn post_spans<'a>(body: &'a [u8], tr: &mut Translator<'a>) -> Res<()> {
    tr.proto = true;
    // The batch's process first: the collector's regroup starts with its group.
    let mut process: Option<Process<'a>> = None;
    let mut r = Reader::new(body);
    while let Some(f) = next(&mut r)? {
        if f.number != 1 {
            continue;
        }
        let mut br = Reader::new(bytes(&f, "batch")?);
        while let Some(bf) = next(&mut br).map_err(|e| e.ctx(format_args!("batch")))? {
            match bf.number {
                1 => {
                    bytes(&bf, "spans").map_err(|e| e.ctx(format_args!("batch")))?;
                }
                2 => {
                    let p = process.get_or_insert_with(Process::default);
                    let b = bytes(&bf, "process").map_err(|e| e.ctx(format_args!("batch")))?;
                    merge_process(p, b, &mut tr.strs)
                        .map_err(|e| e.ctx(format_args!("batch: process")))?;
                }
                _ => {}
            }
        }
    }
    let batch_group = tr.group_for(process);
    let mut i = 0;
    let mut r = Reader::new(body);
    while let Some(f) = next(&mut r)? {
        if f.number != 1 {
            continue;
        }
        let mut br = Reader::new(bytes(&f, "batch")?);
        while let Some(bf) = next(&mut br)? {
            if bf.number == 1 {
                span(bytes(&bf, "spans")?, tr, batch_group)
                    .map_err(|e| e.ctx(format_args!("span {i}")))?;
                i += 1;
            }
        }
    }
    Ok(())
}
