//! Trace-by-id rendering: turns the Arrow rows of one trace, gathered from several
//! sources (live data, head chunks, blocks), into the responses Tempo serves:
//! `tempopb.Trace` / `tempopb.TraceByIDResponse` as protobuf or as gogo-jsonpb JSON.
//!
//! Rows follow the semantics documented in [`crate::schema`]. Each batch describes its
//! own dedicated columns in its schema metadata, so batches written with different
//! dedicated sets merge into the same logical attributes.
//!
//! Steps:
//! 1. Resolve every column of every batch by name and type ([`RenderError`] if one is
//!    missing or of another type). Batches without rows are skipped unread.
//! 2. De-duplicate spans by `(span_id, kind)`: the first occurrence (batch order, then
//!    row order) wins, as in Tempo's combiner.
//! 3. Group spans by resource, then by scope. The grouping key is canonical: the
//!    encoded attributes are compared as a multiset (sorted), so a resource written by
//!    blocks with different dedicated sets (which changes attribute order) still forms
//!    one `ResourceSpans`. The first row of a group supplies its rendered values. A row
//!    is first compared column-to-column with the batch's few most recent groups, so
//!    the key is only built when the resource or scope changes.
//! 4. Order spans by (start, span id), scopes and resources by their earliest span
//!    start (ties keep first-seen order), and write the output in one pass.
//!
//! Array and kvlist values are stored as their encoded `ArrayValue` / `KeyValueList`
//! message: protobuf output copies those bytes; JSON output decodes them (protobuf
//! semantics as Go applies them: unknown fields and known fields of an unexpected wire
//! type are skipped, the last value of a oneof / singular field wins, strings must be
//! UTF-8, nesting is bounded by [`MAX_VALUE_DEPTH`]) and any malformed payload is a
//! [`RenderError::BadValue`], never a panic.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::ops::Range;

use arrow_array::{
    Array, BinaryArray, BooleanArray, FixedSizeBinaryArray, Float64Array, Int32Array, Int64Array,
    ListArray, RecordBatch, StringArray, StructArray, UInt32Array, UInt64Array, UInt8Array,
};
use base64::Engine as _;

pub use crate::otlp::view::MAX_VALUE_DEPTH;
use crate::otlp::view::{repeated, AnyValue, KeyValue};
use crate::pb::{self, PbError};
use crate::schema::{self, AttrType, DedicatedScope, DedicatedType};

/// Output format of a trace-by-id response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// `tempopb.Trace` (wire-identical to OTLP `TracesData`).
    ProtoV1,
    /// `tempopb.TraceByIDResponse`.
    ProtoV2,
    /// `{"batches":[ResourceSpans...]}`.
    JsonV1,
    /// `{"trace":{"resourceSpans":[...]},"metrics":…,"status":…,"message":…}`.
    JsonV2,
}

/// Response metadata of the v2 formats (ignored by the v1 formats).
#[derive(Debug, Clone, Default)]
pub struct RenderMeta {
    /// `metrics.inspectedBytes`; written only when non-zero.
    pub inspected_bytes: u64,
    /// `status: PARTIAL` when set.
    pub partial: bool,
    /// `message`; written only when non-empty.
    pub message: String,
}

/// Why rows could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("column {0:?} is missing")]
    MissingColumn(String),
    #[error("column {column:?} has type {found}, expected {expected}")]
    WrongType { column: String, expected: &'static str, found: String },
    /// A `span_dedicated_NN` / `resource_dedicated_NN` column that the schema metadata
    /// does not describe (its attribute name is unknown, so its values would be lost).
    #[error("column {0:?} is not described by the schema's dedicated-column metadata")]
    UndescribedDedicatedColumn(String),
    #[error("attribute {key:?} has unknown value type tag {tag}")]
    BadAttrType { key: String, tag: u8 },
    #[error("attribute {key:?} holds a malformed encoded value: {source}")]
    BadValue {
        key: String,
        #[source]
        source: PbError,
    },
}

/// Merges the rows of one trace from several record batches (live data, head chunks,
/// blocks: each batch may have its own dedicated-column set, read from its schema
/// metadata with [`schema::dedicated_from_schema`]), de-duplicates spans and renders
/// the trace. `Ok(None)` when there are no rows at all.
pub fn render_trace(
    batches: &[RecordBatch],
    fmt: TraceFormat,
    meta: &RenderMeta,
) -> Result<Option<Vec<u8>>, RenderError> {
    let mut views = Vec::with_capacity(batches.len());
    for b in batches {
        if b.num_rows() > 0 {
            views.push(View::new(b)?);
        }
    }
    if views.is_empty() {
        return Ok(None);
    }
    let plan = plan(&views)?;
    let rows: usize = views.iter().map(|v| v.rows).sum();
    // Typical spans take ~300 bytes of protobuf and ~700 of JSON: reserving generously
    // avoids regrowing a large buffer (capacity never written costs no resident memory).
    let per_row = if matches!(fmt, TraceFormat::JsonV1 | TraceFormat::JsonV2) { 1024 } else { 384 };
    let mut out = Vec::with_capacity(rows.saturating_mul(per_row).min(1 << 30) + 256);
    match fmt {
        TraceFormat::ProtoV1 => pb_trace(&mut out, &views, &plan)?,
        TraceFormat::ProtoV2 => {
            put_msg(&mut out, 1, |o| pb_trace(o, &views, &plan))?;
            if meta.inspected_bytes > 0 {
                put_msg(&mut out, 2, |o| pb::put_varint_field(o, 1, meta.inspected_bytes));
            }
            if meta.partial {
                pb::put_varint_field(&mut out, 3, 1);
            }
            if !meta.message.is_empty() {
                pb::put_bytes_field(&mut out, 4, meta.message.as_bytes());
            }
        }
        TraceFormat::JsonV1 => {
            out.extend_from_slice(b"{\"batches\":");
            js_trace(&mut out, &views, &plan)?;
            out.push(b'}');
        }
        TraceFormat::JsonV2 => {
            out.extend_from_slice(b"{\"trace\":{\"resourceSpans\":");
            js_trace(&mut out, &views, &plan)?;
            out.push(b'}');
            if meta.inspected_bytes > 0 {
                out.extend_from_slice(b",\"metrics\":{\"inspectedBytes\":");
                js_u64_quoted(&mut out, meta.inspected_bytes);
                out.push(b'}');
            }
            if meta.partial {
                out.extend_from_slice(b",\"status\":\"PARTIAL\"");
            }
            if !meta.message.is_empty() {
                out.extend_from_slice(b",\"message\":");
                js_str(&mut out, &meta.message);
            }
            out.push(b'}');
        }
    }
    Ok(Some(out))
}

// ------------------------------------------------------------------ column views

/// The child columns of one `List<Attr>` column.
pub(crate) struct Attrs<'a> {
    pub(crate) offsets: &'a [i32],
    pub(crate) key: &'a StringArray,
    pub(crate) typ: &'a UInt8Array,
    pub(crate) s: &'a StringArray,
    pub(crate) i: &'a Int64Array,
    pub(crate) d: &'a Float64Array,
    pub(crate) b: &'a BooleanArray,
    pub(crate) raw: &'a BinaryArray,
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(list: &'a ListArray, path: &str) -> Result<Self, RenderError> {
        let s = downcast::<StructArray>(list.values().as_ref(), path, "Struct")?;
        Ok(Attrs {
            offsets: list.value_offsets(),
            key: child(s, path, schema::ATTR_KEY, "Utf8")?,
            typ: child(s, path, schema::ATTR_TYPE, "UInt8")?,
            s: child(s, path, schema::ATTR_STR, "Utf8")?,
            i: child(s, path, schema::ATTR_INT, "Int64")?,
            d: child(s, path, schema::ATTR_DOUBLE, "Float64")?,
            b: child(s, path, schema::ATTR_BOOL, "Boolean")?,
            raw: child(s, path, schema::ATTR_RAW, "Binary")?,
        })
    }

    /// Entries of row `r` of the list column.
    #[inline]
    pub(crate) fn range(&self, r: usize) -> Range<usize> {
        self.offsets[r] as usize..self.offsets[r + 1] as usize
    }

    #[inline]
    pub(crate) fn key(&self, j: usize) -> &'a str {
        self.key.value(j)
    }

    #[inline]
    pub(crate) fn val(&self, j: usize) -> Result<AnyValue<'a>, RenderError> {
        self.try_val(j).ok_or_else(|| RenderError::BadAttrType {
            key: self.key(j).to_string(),
            tag: self.typ.value(j),
        })
    }

    #[inline(always)]
    fn try_val(&self, j: usize) -> Option<AnyValue<'a>> {
        Some(match AttrType::from_u8(self.typ.value(j)) {
            Some(AttrType::String) => AnyValue::Str(self.s.value(j)),
            Some(AttrType::Int) => AnyValue::Int(self.i.value(j)),
            Some(AttrType::Double) => AnyValue::Double(self.d.value(j)),
            Some(AttrType::Bool) => AnyValue::Bool(self.b.value(j)),
            Some(AttrType::Bytes) => AnyValue::Bytes(self.raw.value(j)),
            Some(AttrType::Array) => AnyValue::Array(self.raw.value(j)),
            Some(AttrType::KvList) => AnyValue::KvList(self.raw.value(j)),
            Some(AttrType::Empty) => AnyValue::Empty,
            None => return None,
        })
    }
}

pub(crate) enum DedCol<'a> {
    Str(&'a StringArray),
    Int(&'a Int64Array),
}

/// One dedicated column of a batch: the attribute name and its values.
pub(crate) struct Ded<'a> {
    pub(crate) name: String,
    pub(crate) col: DedCol<'a>,
}

impl<'a> Ded<'a> {
    #[inline]
    pub(crate) fn get(&self, r: usize) -> Option<AnyValue<'a>> {
        match self.col {
            DedCol::Str(a) => a.is_valid(r).then(|| AnyValue::Str(a.value(r))),
            DedCol::Int(a) => a.is_valid(r).then(|| AnyValue::Int(a.value(r))),
        }
    }
}

pub(crate) struct Events<'a> {
    pub(crate) offsets: &'a [i32],
    pub(crate) time: &'a UInt64Array,
    pub(crate) name: &'a StringArray,
    pub(crate) attrs: Attrs<'a>,
    pub(crate) dropped: &'a UInt32Array,
}

pub(crate) struct Links<'a> {
    pub(crate) offsets: &'a [i32],
    pub(crate) trace_id: &'a BinaryArray,
    pub(crate) span_id: &'a BinaryArray,
    pub(crate) trace_state: &'a StringArray,
    pub(crate) attrs: Attrs<'a>,
    pub(crate) dropped: &'a UInt32Array,
    pub(crate) flags: &'a UInt32Array,
}

#[inline]
fn list_range(offsets: &[i32], r: usize) -> Range<usize> {
    offsets[r] as usize..offsets[r + 1] as usize
}

/// Typed views of all columns of one batch.
pub(crate) struct View<'a> {
    pub(crate) rows: usize,
    pub(crate) trace_id: &'a FixedSizeBinaryArray,
    pub(crate) span_id: &'a FixedSizeBinaryArray,
    pub(crate) parent: &'a FixedSizeBinaryArray,
    pub(crate) trace_state: &'a StringArray,
    pub(crate) name: &'a StringArray,
    pub(crate) kind: &'a Int32Array,
    pub(crate) start: &'a UInt64Array,
    pub(crate) duration: &'a UInt64Array,
    pub(crate) status_code: &'a Int32Array,
    pub(crate) status_message: &'a StringArray,
    pub(crate) flags: &'a UInt32Array,
    pub(crate) dropped_attrs: &'a UInt32Array,
    pub(crate) dropped_events: &'a UInt32Array,
    pub(crate) dropped_links: &'a UInt32Array,
    pub(crate) attrs: Attrs<'a>,
    pub(crate) span_ded: Vec<Ded<'a>>,
    pub(crate) events: Events<'a>,
    pub(crate) links: Links<'a>,
    pub(crate) service: &'a StringArray,
    pub(crate) res_attrs: Attrs<'a>,
    pub(crate) res_ded: Vec<Ded<'a>>,
    pub(crate) res_dropped: &'a UInt32Array,
    pub(crate) res_schema_url: &'a StringArray,
    pub(crate) scope_name: &'a StringArray,
    pub(crate) scope_version: &'a StringArray,
    pub(crate) scope_attrs: Attrs<'a>,
    pub(crate) scope_dropped: &'a UInt32Array,
    pub(crate) scope_schema_url: &'a StringArray,
}

fn downcast<'a, T: Array + 'static>(
    a: &'a dyn Array,
    name: &str,
    expected: &'static str,
) -> Result<&'a T, RenderError> {
    a.as_any().downcast_ref::<T>().ok_or_else(|| RenderError::WrongType {
        column: name.to_string(),
        expected,
        found: a.data_type().to_string(),
    })
}

fn col<'a, T: Array + 'static>(
    b: &'a RecordBatch,
    name: &str,
    expected: &'static str,
) -> Result<&'a T, RenderError> {
    let a = b.column_by_name(name).ok_or_else(|| RenderError::MissingColumn(name.to_string()))?;
    downcast(a.as_ref(), name, expected)
}

fn child<'a, T: Array + 'static>(
    s: &'a StructArray,
    parent: &str,
    name: &str,
    expected: &'static str,
) -> Result<&'a T, RenderError> {
    let a = s
        .column_by_name(name)
        .ok_or_else(|| RenderError::MissingColumn(format!("{parent}.{name}")))?;
    downcast(a.as_ref(), &format!("{parent}.{name}"), expected)
}

fn fixed<'a>(
    b: &'a RecordBatch,
    name: &str,
    len: i32,
) -> Result<&'a FixedSizeBinaryArray, RenderError> {
    let expected = if len == 16 { "FixedSizeBinary(16)" } else { "FixedSizeBinary(8)" };
    let a: &FixedSizeBinaryArray = col(b, name, expected)?;
    if a.value_length() != len {
        return Err(RenderError::WrongType {
            column: name.to_string(),
            expected,
            found: a.data_type().to_string(),
        });
    }
    Ok(a)
}

fn attr_list<'a>(b: &'a RecordBatch, name: &str) -> Result<Attrs<'a>, RenderError> {
    Attrs::new(col::<ListArray>(b, name, "List<Attr>")?, name)
}

fn dedicated<'a>(
    b: &'a RecordBatch,
    all: &[schema::DedicatedColumn],
    scope: DedicatedScope,
) -> Result<Vec<Ded<'a>>, RenderError> {
    let mut out = Vec::new();
    for (i, d) in all.iter().filter(|d| d.scope == scope).enumerate() {
        let name = schema::dedicated_column_name(scope, i);
        let col = match d.typ {
            DedicatedType::String => DedCol::Str(col(b, &name, "Utf8")?),
            DedicatedType::Int => DedCol::Int(col(b, &name, "Int64")?),
        };
        out.push(Ded { name: d.name.clone(), col });
    }
    Ok(out)
}

impl<'a> View<'a> {
    pub(crate) fn new(b: &'a RecordBatch) -> Result<Self, RenderError> {
        use schema::*;
        let ded = dedicated_from_schema(b.schema_ref());
        let (spans, resources) = ded.iter().fold((0, 0), |(s, r), d| match d.scope {
            DedicatedScope::Span => (s + 1, r),
            DedicatedScope::Resource => (s, r + 1),
        });
        for f in b.schema_ref().fields() {
            let name = f.name();
            let described = if let Some(n) = name.strip_prefix("span_dedicated_") {
                n.parse::<usize>().is_ok_and(|i| i < spans)
            } else if let Some(n) = name.strip_prefix("resource_dedicated_") {
                n.parse::<usize>().is_ok_and(|i| i < resources)
            } else {
                true
            };
            if !described {
                return Err(RenderError::UndescribedDedicatedColumn(name.clone()));
            }
        }

        let events: &ListArray = col(b, EVENTS, "List<Event>")?;
        let ev = downcast::<StructArray>(events.values().as_ref(), EVENTS, "Struct")?;
        let ev_attrs_path = format!("{EVENTS}.{EVENT_ATTRS}");
        let events = Events {
            offsets: events.value_offsets(),
            time: child(ev, EVENTS, EVENT_TIME, "UInt64")?,
            name: child(ev, EVENTS, EVENT_NAME, "Utf8")?,
            attrs: Attrs::new(child(ev, EVENTS, EVENT_ATTRS, "List<Attr>")?, &ev_attrs_path)?,
            dropped: child(ev, EVENTS, EVENT_DROPPED_ATTRS, "UInt32")?,
        };

        let links: &ListArray = col(b, LINKS, "List<Link>")?;
        let lk = downcast::<StructArray>(links.values().as_ref(), LINKS, "Struct")?;
        let lk_attrs_path = format!("{LINKS}.{LINK_ATTRS}");
        let links = Links {
            offsets: links.value_offsets(),
            trace_id: child(lk, LINKS, LINK_TRACE_ID, "Binary")?,
            span_id: child(lk, LINKS, LINK_SPAN_ID, "Binary")?,
            trace_state: child(lk, LINKS, LINK_TRACE_STATE, "Utf8")?,
            attrs: Attrs::new(child(lk, LINKS, LINK_ATTRS, "List<Attr>")?, &lk_attrs_path)?,
            dropped: child(lk, LINKS, LINK_DROPPED_ATTRS, "UInt32")?,
            flags: child(lk, LINKS, LINK_FLAGS, "UInt32")?,
        };

        Ok(View {
            rows: b.num_rows(),
            trace_id: fixed(b, TRACE_ID, 16)?,
            span_id: fixed(b, SPAN_ID, 8)?,
            parent: fixed(b, PARENT_SPAN_ID, 8)?,
            trace_state: col(b, TRACE_STATE, "Utf8")?,
            name: col(b, NAME, "Utf8")?,
            kind: col(b, KIND, "Int32")?,
            start: col(b, START, "UInt64")?,
            duration: col(b, DURATION, "UInt64")?,
            status_code: col(b, STATUS_CODE, "Int32")?,
            status_message: col(b, STATUS_MESSAGE, "Utf8")?,
            flags: col(b, FLAGS, "UInt32")?,
            dropped_attrs: col(b, DROPPED_ATTRS, "UInt32")?,
            dropped_events: col(b, DROPPED_EVENTS, "UInt32")?,
            dropped_links: col(b, DROPPED_LINKS, "UInt32")?,
            attrs: attr_list(b, ATTRS)?,
            span_ded: dedicated(b, &ded, DedicatedScope::Span)?,
            events,
            links,
            service: col(b, RESOURCE_SERVICE_NAME, "Utf8")?,
            res_attrs: attr_list(b, RESOURCE_ATTRS)?,
            res_ded: dedicated(b, &ded, DedicatedScope::Resource)?,
            res_dropped: col(b, RESOURCE_DROPPED_ATTRS, "UInt32")?,
            res_schema_url: col(b, RESOURCE_SCHEMA_URL, "Utf8")?,
            scope_name: col(b, SCOPE_NAME, "Utf8")?,
            scope_version: col(b, SCOPE_VERSION, "Utf8")?,
            scope_attrs: attr_list(b, SCOPE_ATTRS)?,
            scope_dropped: col(b, SCOPE_DROPPED_ATTRS, "UInt32")?,
            scope_schema_url: col(b, SCOPE_SCHEMA_URL, "Utf8")?,
        })
    }

    #[inline]
    pub(crate) fn span_id(&self, r: usize) -> [u8; 8] {
        self.span_id.value(r).try_into().unwrap_or_default()
    }

    #[inline]
    pub(crate) fn end(&self, r: usize) -> u64 {
        self.start.value(r).saturating_add(self.duration.value(r))
    }

    #[inline]
    pub(crate) fn service(&self, r: usize) -> Option<&'a str> {
        self.service.is_valid(r).then(|| self.service.value(r))
    }
}

/// A string cell that is non-null and non-empty.
#[inline]
pub(crate) fn opt_str(a: &StringArray, r: usize) -> Option<&str> {
    if a.is_null(r) {
        return None;
    }
    let s = a.value(r);
    (!s.is_empty()).then_some(s)
}

/// A u32 cell that is non-null and non-zero.
#[inline]
fn opt_u32(a: &UInt32Array, r: usize) -> Option<u32> {
    if a.is_null(r) {
        return None;
    }
    let v = a.value(r);
    (v != 0).then_some(v)
}

// ------------------------------------------------------------------ merge plan

#[derive(Debug, Clone, Copy)]
struct SpanRef {
    start: u64,
    id: [u8; 8],
    batch: u32,
    row: u32,
}

struct ScopeGroup {
    batch: usize,
    row: usize,
    min_start: u64,
    spans: Vec<SpanRef>,
}

struct ResourceGroup {
    batch: usize,
    row: usize,
    min_start: u64,
    scopes: Vec<ScopeGroup>,
}

/// Scratch buffers for the canonical grouping keys.
#[derive(Default)]
struct KeyScratch {
    kvs: Vec<u8>,
    ranges: Vec<Range<usize>>,
    key: Vec<u8>,
}

impl KeyScratch {
    fn begin(&mut self) {
        self.kvs.clear();
        self.ranges.clear();
        self.key.clear();
    }

    fn push_kv(&mut self, key: &str, v: AnyValue<'_>) {
        let s = self.kvs.len();
        pb_kv(&mut self.kvs, key, v);
        self.ranges.push(s..self.kvs.len());
    }

    fn push_list(&mut self, a: &Attrs<'_>, r: usize) -> Result<(), RenderError> {
        for j in a.range(r) {
            self.push_kv(a.key(j), a.val(j)?);
        }
        Ok(())
    }

    /// Appends the attributes pushed so far to the key as a sorted multiset.
    fn flush_attrs(&mut self) {
        let kvs = &self.kvs;
        if self.ranges.len() > 1 {
            self.ranges.sort_unstable_by(|a, b| kvs[a.clone()].cmp(&kvs[b.clone()]));
        }
        pb::put_varint(&mut self.key, self.ranges.len() as u64);
        for r in &self.ranges {
            pb::put_varint(&mut self.key, r.len() as u64);
            self.key.extend_from_slice(&kvs[r.clone()]);
        }
    }

    fn put_str(&mut self, s: Option<&str>) {
        let s = s.unwrap_or("");
        pb::put_varint(&mut self.key, s.len() as u64);
        self.key.extend_from_slice(s.as_bytes());
    }

    fn resource(&mut self, v: &View<'_>, r: usize) -> Result<&[u8], RenderError> {
        self.begin();
        if let Some(s) = v.service(r) {
            self.push_kv("service.name", AnyValue::Str(s));
        }
        self.push_list(&v.res_attrs, r)?;
        for d in &v.res_ded {
            if let Some(val) = d.get(r) {
                self.push_kv(&d.name, val);
            }
        }
        self.flush_attrs();
        pb::put_varint(&mut self.key, v.res_dropped.value(r) as u64);
        self.put_str(opt_str(v.res_schema_url, r));
        Ok(&self.key)
    }

    fn scope(&mut self, resource: usize, v: &View<'_>, r: usize) -> Result<&[u8], RenderError> {
        self.begin();
        self.key.extend_from_slice(&(resource as u64).to_le_bytes());
        self.put_str(opt_str(v.scope_name, r));
        self.put_str(opt_str(v.scope_version, r));
        self.push_list(&v.scope_attrs, r)?;
        self.flush_attrs();
        pb::put_varint(&mut self.key, v.scope_dropped.value(r) as u64);
        self.put_str(opt_str(v.scope_schema_url, r));
        Ok(&self.key)
    }
}

/// How many recently seen resources / scopes of a batch are compared row-to-row
/// before falling back to the canonical key.
const RECENT: usize = 8;

/// Whether two rows of one batch hold the same attribute list entries.
fn attrs_eq(a: &Attrs<'_>, r1: usize, r2: usize) -> bool {
    let (x, y) = (a.range(r1), a.range(r2));
    x.len() == y.len()
        && x.zip(y).all(|(i, j)| {
            let t = a.typ.value(i);
            t == a.typ.value(j)
                && a.key.value(i) == a.key.value(j)
                && match AttrType::from_u8(t) {
                    Some(AttrType::String) => a.s.value(i) == a.s.value(j),
                    Some(AttrType::Int) => a.i.value(i) == a.i.value(j),
                    Some(AttrType::Double) => a.d.value(i).to_bits() == a.d.value(j).to_bits(),
                    Some(AttrType::Bool) => a.b.value(i) == a.b.value(j),
                    Some(AttrType::Bytes | AttrType::Array | AttrType::KvList) => {
                        a.raw.value(i) == a.raw.value(j)
                    }
                    Some(AttrType::Empty) => true,
                    // Let the slow path report it.
                    None => false,
                }
        })
}

fn ded_eq(ded: &[Ded<'_>], r1: usize, r2: usize) -> bool {
    ded.iter().all(|d| match d.col {
        DedCol::Str(c) => {
            c.is_valid(r1) == c.is_valid(r2) && (c.is_null(r1) || c.value(r1) == c.value(r2))
        }
        DedCol::Int(c) => {
            c.is_valid(r1) == c.is_valid(r2) && (c.is_null(r1) || c.value(r1) == c.value(r2))
        }
    })
}

/// Whether two rows of one batch have the same resource (so the same canonical key).
fn same_resource(v: &View<'_>, r1: usize, r2: usize) -> bool {
    v.service(r1) == v.service(r2)
        && v.res_dropped.value(r1) == v.res_dropped.value(r2)
        && opt_str(v.res_schema_url, r1) == opt_str(v.res_schema_url, r2)
        && ded_eq(&v.res_ded, r1, r2)
        && attrs_eq(&v.res_attrs, r1, r2)
}

/// Whether two rows of one batch have the same scope (the resource compared apart).
fn same_scope(v: &View<'_>, r1: usize, r2: usize) -> bool {
    opt_str(v.scope_name, r1) == opt_str(v.scope_name, r2)
        && opt_str(v.scope_version, r1) == opt_str(v.scope_version, r2)
        && v.scope_dropped.value(r1) == v.scope_dropped.value(r2)
        && opt_str(v.scope_schema_url, r1) == opt_str(v.scope_schema_url, r2)
        && attrs_eq(&v.scope_attrs, r1, r2)
}

/// Finds `hit` among the recent entries, moving it to the front.
#[inline]
fn recent_find<T: Copy>(recent: &mut Vec<(usize, T)>, hit: impl Fn(usize, T) -> bool) -> Option<T> {
    let i = recent.iter().position(|&(row, t)| hit(row, t))?;
    let e = recent.remove(i);
    recent.insert(0, e);
    Some(e.1)
}

#[inline]
fn recent_add<T>(recent: &mut Vec<(usize, T)>, row: usize, t: T) {
    recent.truncate(RECENT - 1);
    recent.insert(0, (row, t));
}

/// De-duplicates, groups and orders the spans of all batches.
fn plan(views: &[View<'_>]) -> Result<Vec<ResourceGroup>, RenderError> {
    let rows: usize = views.iter().map(|v| v.rows).sum();
    let mut seen: HashSet<(u64, i32)> = HashSet::with_capacity(rows);
    let mut resources: Vec<ResourceGroup> = Vec::new();
    let mut res_index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut scope_index: HashMap<Vec<u8>, (usize, usize)> = HashMap::new();
    let mut scratch = KeyScratch::default();
    let mut recent_res: Vec<(usize, usize)> = Vec::with_capacity(RECENT);
    let mut recent_scope: Vec<(usize, (usize, usize))> = Vec::with_capacity(RECENT);

    for (b, v) in views.iter().enumerate() {
        recent_res.clear();
        recent_scope.clear();
        for r in 0..v.rows {
            let id = v.span_id(r);
            if !seen.insert((u64::from_be_bytes(id), v.kind.value(r))) {
                continue;
            }
            let start = v.start.value(r);
            let ri = match recent_find(&mut recent_res, |row, _| same_resource(v, row, r)) {
                Some(ri) => ri,
                None => {
                    let key = scratch.resource(v, r)?;
                    let ri = match res_index.get(key) {
                        Some(&i) => i,
                        None => {
                            res_index.insert(key.to_vec(), resources.len());
                            resources.push(ResourceGroup {
                                batch: b,
                                row: r,
                                min_start: start,
                                scopes: Vec::new(),
                            });
                            resources.len() - 1
                        }
                    };
                    recent_add(&mut recent_res, r, ri);
                    ri
                }
            };
            let hit = |row: usize, (gri, _): (usize, usize)| gri == ri && same_scope(v, row, r);
            let (ri, si) = match recent_find(&mut recent_scope, hit) {
                Some(g) => g,
                None => {
                    let key = scratch.scope(ri, v, r)?;
                    let g = match scope_index.get(key) {
                        Some(&g) => g,
                        None => {
                            let scopes = &mut resources[ri].scopes;
                            scope_index.insert(key.to_vec(), (ri, scopes.len()));
                            scopes.push(ScopeGroup {
                                batch: b,
                                row: r,
                                min_start: start,
                                spans: Vec::new(),
                            });
                            (ri, scopes.len() - 1)
                        }
                    };
                    recent_add(&mut recent_scope, r, g);
                    g
                }
            };
            let res = &mut resources[ri];
            res.min_start = res.min_start.min(start);
            let sc = &mut res.scopes[si];
            sc.min_start = sc.min_start.min(start);
            sc.spans.push(SpanRef { start, id, batch: b as u32, row: r as u32 });
        }
    }

    // Stable sorts: ties keep first-seen order.
    for res in &mut resources {
        for sc in &mut res.scopes {
            sc.spans.sort_by_key(|s| (s.start, s.id));
        }
        res.scopes.sort_by_key(|s| s.min_start);
    }
    resources.sort_by_key(|r| r.min_start);
    Ok(resources)
}

// ------------------------------------------------------------------ protobuf

/// Writes a length-delimited field whose body `body` appends; the length prefix is
/// patched in afterwards (one byte reserved, the body moved if it needs more).
#[inline]
fn put_msg<R>(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    pb::put_key(out, field, pb::LEN);
    let len_pos = out.len();
    out.push(0);
    let start = out.len();
    let res = body(out);
    let len = out.len() - start;
    if len < 0x80 {
        out[len_pos] = len as u8;
    } else {
        let need = pb::varint_len(len as u64);
        let extra = need - 1;
        out.resize(out.len() + extra, 0);
        out.copy_within(start..start + len, start + extra);
        let mut v = len as u64;
        for b in &mut out[len_pos..len_pos + need] {
            *b = (v as u8 & 0x7f) | 0x80;
            v >>= 7;
        }
        out[len_pos + need - 1] &= 0x7f;
    }
    res
}

/// An `AnyValue` body: the set oneof member is written even when zero.
#[inline]
fn pb_any(out: &mut Vec<u8>, v: AnyValue<'_>) {
    match v {
        AnyValue::Str(s) => pb::put_bytes_field(out, 1, s.as_bytes()),
        AnyValue::Bool(b) => pb::put_varint_field(out, 2, b as u64),
        AnyValue::Int(i) => pb::put_varint_field(out, 3, i as u64),
        AnyValue::Double(d) => pb::put_fixed64_field(out, 4, d.to_bits()),
        AnyValue::Array(raw) => pb::put_bytes_field(out, 5, raw),
        AnyValue::KvList(raw) => pb::put_bytes_field(out, 6, raw),
        AnyValue::Bytes(raw) => pb::put_bytes_field(out, 7, raw),
        AnyValue::Empty => {}
    }
}

/// A `KeyValue` body.
#[inline]
fn pb_kv(out: &mut Vec<u8>, key: &str, v: AnyValue<'_>) {
    if !key.is_empty() {
        pb::put_bytes_field(out, 1, key.as_bytes());
    }
    put_msg(out, 2, |o| pb_any(o, v));
}

/// Repeated `KeyValue` field `field` from a list column row.
#[inline]
fn pb_attr_list(out: &mut Vec<u8>, field: u32, a: &Attrs<'_>, r: usize) -> Result<(), RenderError> {
    pb_attr_range(out, field, a, a.range(r))
}

#[inline]
fn pb_attr_range(
    out: &mut Vec<u8>,
    field: u32,
    a: &Attrs<'_>,
    range: Range<usize>,
) -> Result<(), RenderError> {
    for j in range {
        let v = a.val(j)?;
        put_msg(out, field, |o| pb_kv(o, a.key(j), v));
    }
    Ok(())
}

fn pb_dedicated(out: &mut Vec<u8>, field: u32, ded: &[Ded<'_>], r: usize) {
    for d in ded {
        if let Some(v) = d.get(r) {
            put_msg(out, field, |o| pb_kv(o, &d.name, v));
        }
    }
}

fn pb_str(out: &mut Vec<u8>, field: u32, s: Option<&str>) {
    if let Some(s) = s {
        pb::put_bytes_field(out, field, s.as_bytes());
    }
}

fn pb_u32(out: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        pb::put_varint_field(out, field, v as u64);
    }
}

fn pb_trace(
    out: &mut Vec<u8>,
    views: &[View<'_>],
    plan: &[ResourceGroup],
) -> Result<(), RenderError> {
    for res in plan {
        put_msg(out, 1, |o| pb_resource_spans(o, views, res))?;
    }
    Ok(())
}

fn pb_resource_spans(
    out: &mut Vec<u8>,
    views: &[View<'_>],
    res: &ResourceGroup,
) -> Result<(), RenderError> {
    let (v, r) = (&views[res.batch], res.row);
    put_msg(out, 1, |o| {
        if let Some(s) = v.service(r) {
            put_msg(o, 1, |o| pb_kv(o, "service.name", AnyValue::Str(s)));
        }
        pb_attr_list(o, 1, &v.res_attrs, r)?;
        pb_dedicated(o, 1, &v.res_ded, r);
        pb_u32(o, 2, v.res_dropped.value(r));
        Ok::<_, RenderError>(())
    })?;
    for sc in &res.scopes {
        put_msg(out, 2, |o| pb_scope_spans(o, views, sc))?;
    }
    pb_str(out, 3, opt_str(v.res_schema_url, r));
    Ok(())
}

fn pb_scope_spans(
    out: &mut Vec<u8>,
    views: &[View<'_>],
    sc: &ScopeGroup,
) -> Result<(), RenderError> {
    let (v, r) = (&views[sc.batch], sc.row);
    put_msg(out, 1, |o| {
        pb_str(o, 1, opt_str(v.scope_name, r));
        pb_str(o, 2, opt_str(v.scope_version, r));
        pb_attr_list(o, 3, &v.scope_attrs, r)?;
        pb_u32(o, 4, v.scope_dropped.value(r));
        Ok::<_, RenderError>(())
    })?;
    for s in &sc.spans {
        put_msg(out, 2, |o| pb_span(o, &views[s.batch as usize], s.row as usize))?;
    }
    pb_str(out, 3, opt_str(v.scope_schema_url, r));
    Ok(())
}

fn pb_span(out: &mut Vec<u8>, v: &View<'_>, r: usize) -> Result<(), RenderError> {
    pb::put_bytes_field(out, 1, v.trace_id.value(r));
    pb::put_bytes_field(out, 2, v.span_id.value(r));
    pb_str(out, 3, opt_str(v.trace_state, r));
    if v.parent.is_valid(r) {
        pb::put_bytes_field(out, 4, v.parent.value(r));
    }
    let name = v.name.value(r);
    if !name.is_empty() {
        pb::put_bytes_field(out, 5, name.as_bytes());
    }
    let kind = v.kind.value(r);
    if kind != 0 {
        pb::put_varint_field(out, 6, kind as i64 as u64);
    }
    let (start, end) = (v.start.value(r), v.end(r));
    if start != 0 {
        pb::put_fixed64_field(out, 7, start);
    }
    if end != 0 {
        pb::put_fixed64_field(out, 8, end);
    }
    pb_attr_list(out, 9, &v.attrs, r)?;
    pb_dedicated(out, 9, &v.span_ded, r);
    pb_u32(out, 10, v.dropped_attrs.value(r));
    let ev = &v.events;
    for e in list_range(ev.offsets, r) {
        put_msg(out, 11, |o| {
            let t = ev.time.value(e);
            if t != 0 {
                pb::put_fixed64_field(o, 1, t);
            }
            let name = ev.name.value(e);
            if !name.is_empty() {
                pb::put_bytes_field(o, 2, name.as_bytes());
            }
            pb_attr_list(o, 3, &ev.attrs, e)?;
            pb_u32(o, 4, ev.dropped.value(e));
            Ok::<_, RenderError>(())
        })?;
    }
    pb_u32(out, 12, v.dropped_events.value(r));
    let lk = &v.links;
    for l in list_range(lk.offsets, r) {
        put_msg(out, 13, |o| {
            let (tid, sid) = (lk.trace_id.value(l), lk.span_id.value(l));
            if !tid.is_empty() {
                pb::put_bytes_field(o, 1, tid);
            }
            if !sid.is_empty() {
                pb::put_bytes_field(o, 2, sid);
            }
            pb_str(o, 3, opt_str(lk.trace_state, l));
            pb_attr_list(o, 4, &lk.attrs, l)?;
            pb_u32(o, 5, lk.dropped.value(l));
            if let Some(f) = opt_u32(lk.flags, l) {
                pb::put_fixed32_field(o, 6, f);
            }
            Ok::<_, RenderError>(())
        })?;
    }
    pb_u32(out, 14, v.dropped_links.value(r));
    put_msg(out, 15, |o| {
        pb_str(o, 2, opt_str(v.status_message, r));
        let code = v.status_code.value(r);
        if code != 0 {
            pb::put_varint_field(o, 3, code as i64 as u64);
        }
    });
    if let Some(f) = opt_u32(v.flags, r) {
        pb::put_fixed32_field(out, 16, f);
    }
    Ok(())
}

// ------------------------------------------------------------------ JSON

/// Writes the keys of one JSON object, handling the commas.
struct Obj {
    first: bool,
}

impl Obj {
    #[inline]
    fn open(out: &mut Vec<u8>) -> Obj {
        out.push(b'{');
        Obj { first: true }
    }

    /// Writes `"k":` (keys are plain ASCII identifiers, never escaped).
    #[inline]
    fn key(&mut self, out: &mut Vec<u8>, k: &str) {
        if !self.first {
            out.push(b',');
        }
        self.first = false;
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
    }

    #[inline]
    fn close(self, out: &mut Vec<u8>) {
        out.push(b'}');
    }
}

/// Per-byte escape: 0 = copy, `u` = `\u00XX`, else the short escape letter.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// A JSON string literal.
pub(crate) fn js_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut from = 0;
    for (i, &c) in b.iter().enumerate() {
        let e = ESCAPE[c as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&b[from..i]);
        if e == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(c >> 4) as usize]);
            out.push(HEX[(c & 0xf) as usize]);
        } else {
            out.push(b'\\');
            out.push(e);
        }
        from = i + 1;
    }
    out.extend_from_slice(&b[from..]);
    out.push(b'"');
}

#[inline]
fn js_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[inline]
fn js_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    js_u64(out, v.unsigned_abs());
}

/// A 64-bit integer as a JSON string (proto3 JSON mapping).
#[inline]
fn js_u64_quoted(out: &mut Vec<u8>, v: u64) {
    out.push(b'"');
    js_u64(out, v);
    out.push(b'"');
}

#[inline]
fn js_i64_quoted(out: &mut Vec<u8>, v: i64) {
    out.push(b'"');
    js_i64(out, v);
    out.push(b'"');
}

/// Bytes as a standard, padded base64 JSON string.
#[inline]
pub(crate) fn js_b64(out: &mut Vec<u8>, data: &[u8]) {
    let n = data.len().div_ceil(3) * 4;
    out.push(b'"');
    let at = out.len();
    out.resize(at + n, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(data, &mut out[at..])
        .expect("buffer sized for the padded encoding");
    debug_assert_eq!(written, n);
    out.push(b'"');
}

/// A double as JSON: a number that parses back to the same value, or the proto3
/// JSON strings for non-finite values.
pub(crate) fn js_f64(out: &mut Vec<u8>, d: f64) {
    if d.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if d.is_infinite() {
        out.extend_from_slice(if d > 0.0 { b"\"Infinity\"" } else { b"\"-Infinity\"" });
    } else {
        let a = d.abs();
        // Display never uses an exponent; use one for very large / small magnitudes.
        let _ = if a == 0.0 || (1e-5..1e16).contains(&a) {
            write!(out, "{d}")
        } else {
            write!(out, "{d:e}")
        };
    }
}

/// An `AnyValue` object.
fn js_any(out: &mut Vec<u8>, key: &str, v: AnyValue<'_>) -> Result<(), RenderError> {
    js_value(out, v, 0).map_err(|e| RenderError::BadValue { key: key.to_string(), source: e })
}

/// An `AnyValue` as JSON; array and kvlist bytes are decoded level by level (as
/// Go's decoder reads them: the last oneof member wins, unknown fields skipped),
/// at most [`MAX_VALUE_DEPTH`] levels deep.
fn js_value(out: &mut Vec<u8>, v: AnyValue<'_>, depth: usize) -> Result<(), PbError> {
    match v {
        AnyValue::Str(s) => {
            out.extend_from_slice(b"{\"stringValue\":");
            js_str(out, s);
        }
        AnyValue::Bool(b) => {
            out.extend_from_slice(if b { b"{\"boolValue\":true" } else { b"{\"boolValue\":false" })
        }
        AnyValue::Int(i) => {
            out.extend_from_slice(b"{\"intValue\":");
            js_i64_quoted(out, i);
        }
        AnyValue::Double(d) => {
            out.extend_from_slice(b"{\"doubleValue\":");
            js_f64(out, d);
        }
        AnyValue::Bytes(b) => {
            out.extend_from_slice(b"{\"bytesValue\":");
            js_b64(out, b);
        }
        AnyValue::Array(raw) | AnyValue::KvList(raw) => {
            if depth >= MAX_VALUE_DEPTH {
                return Err(PbError::TooDeep);
            }
            let kvlist = matches!(v, AnyValue::KvList(_));
            out.extend_from_slice(if kvlist {
                b"{\"kvlistValue\":{"
            } else {
                b"{\"arrayValue\":{"
            });
            let mut n = 0;
            for item in repeated(raw, 1) {
                out.extend_from_slice(if n == 0 { b"\"values\":[" } else { b"," });
                n += 1;
                if kvlist {
                    let (key, value) = KeyValue::parts(item?)?;
                    out.extend_from_slice(b"{\"key\":");
                    js_str(out, key);
                    out.extend_from_slice(b",\"value\":");
                    js_value(out, AnyValue::parse_shallow(value)?, depth + 1)?;
                    out.push(b'}');
                } else {
                    js_value(out, AnyValue::parse_shallow(item?)?, depth + 1)?;
                }
            }
            if n > 0 {
                out.push(b']');
            }
            out.push(b'}');
        }
        AnyValue::Empty => out.push(b'{'),
    }
    out.push(b'}');
    Ok(())
}

/// A `KeyValue` object (`key` is always written, even when empty).
#[inline]
fn js_kv(out: &mut Vec<u8>, key: &str, v: AnyValue<'_>) -> Result<(), RenderError> {
    out.extend_from_slice(b"{\"key\":");
    js_str(out, key);
    out.extend_from_slice(b",\"value\":");
    js_any(out, key, v)?;
    out.push(b'}');
    Ok(())
}

/// `"attributes":[...]` from an optional `service.name`, a list row and dedicated
/// cells; nothing when all are empty.
fn js_attributes(
    out: &mut Vec<u8>,
    o: &mut Obj,
    service: Option<&str>,
    a: &Attrs<'_>,
    r: usize,
    ded: &[Ded<'_>],
) -> Result<(), RenderError> {
    let range = a.range(r);
    if service.is_none() && range.is_empty() && ded.iter().all(|d| d.get(r).is_none()) {
        return Ok(());
    }
    o.key(out, "attributes");
    out.push(b'[');
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !first {
            out.push(b',');
        }
        first = false;
    };
    if let Some(s) = service {
        sep(out);
        js_kv(out, "service.name", AnyValue::Str(s))?;
    }
    for j in range {
        sep(out);
        js_kv(out, a.key(j), a.val(j)?)?;
    }
    for d in ded {
        if let Some(v) = d.get(r) {
            sep(out);
            js_kv(out, &d.name, v)?;
        }
    }
    out.push(b']');
    Ok(())
}

#[inline]
fn js_opt_str(out: &mut Vec<u8>, o: &mut Obj, key: &str, s: Option<&str>) {
    if let Some(s) = s {
        o.key(out, key);
        js_str(out, s);
    }
}

#[inline]
fn js_count(out: &mut Vec<u8>, o: &mut Obj, key: &str, v: u32) {
    if v != 0 {
        o.key(out, key);
        js_u64(out, v as u64);
    }
}

#[inline]
fn js_time(out: &mut Vec<u8>, o: &mut Obj, key: &str, v: u64) {
    if v != 0 {
        o.key(out, key);
        js_u64_quoted(out, v);
    }
}

#[inline]
fn js_id(out: &mut Vec<u8>, o: &mut Obj, key: &str, id: &[u8]) {
    if !id.is_empty() {
        o.key(out, key);
        js_b64(out, id);
    }
}

/// An enum by name, or as a number when unknown.
fn js_enum(out: &mut Vec<u8>, o: &mut Obj, key: &str, v: i32, names: &[&str]) {
    if v == 0 {
        return;
    }
    o.key(out, key);
    match names.get(v as usize) {
        Some(n) if v > 0 => {
            out.push(b'"');
            out.extend_from_slice(n.as_bytes());
            out.push(b'"');
        }
        _ => js_i64(out, v as i64),
    }
}

pub(crate) const SPAN_KINDS: &[&str] = &[
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];

pub(crate) const STATUS_CODES: &[&str] =
    &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

/// The `[ResourceSpans...]` array.
fn js_trace(
    out: &mut Vec<u8>,
    views: &[View<'_>],
    plan: &[ResourceGroup],
) -> Result<(), RenderError> {
    out.push(b'[');
    for (i, res) in plan.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        js_resource_spans(out, views, res)?;
    }
    out.push(b']');
    Ok(())
}

fn js_resource_spans(
    out: &mut Vec<u8>,
    views: &[View<'_>],
    res: &ResourceGroup,
) -> Result<(), RenderError> {
    let (v, r) = (&views[res.batch], res.row);
    let mut o = Obj::open(out);
    o.key(out, "resource");
    let mut ro = Obj::open(out);
    js_attributes(out, &mut ro, v.service(r), &v.res_attrs, r, &v.res_ded)?;
    js_count(out, &mut ro, "droppedAttributesCount", v.res_dropped.value(r));
    ro.close(out);
    o.key(out, "scopeSpans");
    out.push(b'[');
    for (i, sc) in res.scopes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        js_scope_spans(out, views, sc)?;
    }
    out.push(b']');
    js_opt_str(out, &mut o, "schemaUrl", opt_str(v.res_schema_url, r));
    o.close(out);
    Ok(())
}

fn js_scope_spans(
    out: &mut Vec<u8>,
    views: &[View<'_>],
    sc: &ScopeGroup,
) -> Result<(), RenderError> {
    let (v, r) = (&views[sc.batch], sc.row);
    let mut o = Obj::open(out);
    o.key(out, "scope");
    let mut so = Obj::open(out);
    js_opt_str(out, &mut so, "name", opt_str(v.scope_name, r));
    js_opt_str(out, &mut so, "version", opt_str(v.scope_version, r));
    js_attributes(out, &mut so, None, &v.scope_attrs, r, &[])?;
    js_count(out, &mut so, "droppedAttributesCount", v.scope_dropped.value(r));
    so.close(out);
    o.key(out, "spans");
    out.push(b'[');
    for (i, s) in sc.spans.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        js_span(out, &views[s.batch as usize], s.row as usize)?;
    }
    out.push(b']');
    js_opt_str(out, &mut o, "schemaUrl", opt_str(v.scope_schema_url, r));
    o.close(out);
    Ok(())
}

fn js_span(out: &mut Vec<u8>, v: &View<'_>, r: usize) -> Result<(), RenderError> {
    let mut o = Obj::open(out);
    js_id(out, &mut o, "traceId", v.trace_id.value(r));
    js_id(out, &mut o, "spanId", v.span_id.value(r));
    js_opt_str(out, &mut o, "traceState", opt_str(v.trace_state, r));
    if v.parent.is_valid(r) {
        js_id(out, &mut o, "parentSpanId", v.parent.value(r));
    }
    if let Some(f) = opt_u32(v.flags, r) {
        js_count(out, &mut o, "flags", f);
    }
    let name = v.name.value(r);
    js_opt_str(out, &mut o, "name", (!name.is_empty()).then_some(name));
    js_enum(out, &mut o, "kind", v.kind.value(r), SPAN_KINDS);
    js_time(out, &mut o, "startTimeUnixNano", v.start.value(r));
    js_time(out, &mut o, "endTimeUnixNano", v.end(r));
    js_attributes(out, &mut o, None, &v.attrs, r, &v.span_ded)?;
    js_count(out, &mut o, "droppedAttributesCount", v.dropped_attrs.value(r));

    let ev = &v.events;
    let events = list_range(ev.offsets, r);
    if !events.is_empty() {
        o.key(out, "events");
        out.push(b'[');
        for (i, e) in events.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut eo = Obj::open(out);
            js_time(out, &mut eo, "timeUnixNano", ev.time.value(e));
            let name = ev.name.value(e);
            js_opt_str(out, &mut eo, "name", (!name.is_empty()).then_some(name));
            js_attributes(out, &mut eo, None, &ev.attrs, e, &[])?;
            js_count(out, &mut eo, "droppedAttributesCount", ev.dropped.value(e));
            eo.close(out);
        }
        out.push(b']');
    }
    js_count(out, &mut o, "droppedEventsCount", v.dropped_events.value(r));

    let lk = &v.links;
    let links = list_range(lk.offsets, r);
    if !links.is_empty() {
        o.key(out, "links");
        out.push(b'[');
        for (i, l) in links.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut lo = Obj::open(out);
            js_id(out, &mut lo, "traceId", lk.trace_id.value(l));
            js_id(out, &mut lo, "spanId", lk.span_id.value(l));
            js_opt_str(out, &mut lo, "traceState", opt_str(lk.trace_state, l));
            js_attributes(out, &mut lo, None, &lk.attrs, l, &[])?;
            js_count(out, &mut lo, "droppedAttributesCount", lk.dropped.value(l));
            if let Some(f) = opt_u32(lk.flags, l) {
                js_count(out, &mut lo, "flags", f);
            }
            lo.close(out);
        }
        out.push(b']');
    }
    js_count(out, &mut o, "droppedLinksCount", v.dropped_links.value(r));

    o.key(out, "status");
    let mut so = Obj::open(out);
    js_opt_str(out, &mut so, "message", opt_str(v.status_message, r));
    js_enum(out, &mut so, "code", v.status_code.value(r), STATUS_CODES);
    so.close(out);
    o.close(out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::Reader;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow_array::ArrayRef;
    use arrow_buffer::OffsetBuffer;
    use arrow_schema::{DataType, FieldRef};
    use schema::DedicatedColumn;
    use serde_json::{json, Map, Value as J};

    // ------------------------------------------------------------ test data

    #[derive(Clone, Debug)]
    enum TAny {
        Str(String),
        Int(i64),
        Double(f64),
        Bool(bool),
        Bytes(Vec<u8>),
        Array(Vec<TAny>),
        KvList(Vec<(String, TAny)>),
        Empty,
    }

    type TAttr = (String, TAny);

    fn a(k: &str, v: TAny) -> TAttr {
        (k.to_string(), v)
    }

    fn st(s: &str) -> TAny {
        TAny::Str(s.to_string())
    }

    impl TAny {
        /// The `AnyValue` message body.
        fn encode(&self, out: &mut Vec<u8>) {
            match self {
                TAny::Str(s) => pb::put_bytes_field(out, 1, s.as_bytes()),
                TAny::Bool(b) => pb::put_varint_field(out, 2, *b as u64),
                TAny::Int(i) => pb::put_varint_field(out, 3, *i as u64),
                TAny::Double(d) => pb::put_fixed64_field(out, 4, d.to_bits()),
                TAny::Array(_) => pb::put_bytes_field(out, 5, &self.raw()),
                TAny::KvList(_) => pb::put_bytes_field(out, 6, &self.raw()),
                TAny::Bytes(b) => pb::put_bytes_field(out, 7, b),
                TAny::Empty => {}
            }
        }

        /// What the `raw` attribute field holds.
        fn raw(&self) -> Vec<u8> {
            let mut out = Vec::new();
            match self {
                TAny::Bytes(b) => out.extend_from_slice(b),
                TAny::Array(vs) => {
                    for v in vs {
                        pb::put_message(&mut out, 1, |o| v.encode(o));
                    }
                }
                TAny::KvList(kvs) => {
                    for (k, v) in kvs {
                        pb::put_message(&mut out, 1, |o| {
                            pb::put_bytes_field(o, 1, k.as_bytes());
                            pb::put_message(o, 2, |o| v.encode(o));
                        });
                    }
                }
                _ => {}
            }
            out
        }

        fn tag(&self) -> AttrType {
            match self {
                TAny::Str(_) => AttrType::String,
                TAny::Int(_) => AttrType::Int,
                TAny::Double(_) => AttrType::Double,
                TAny::Bool(_) => AttrType::Bool,
                TAny::Bytes(_) => AttrType::Bytes,
                TAny::Array(_) => AttrType::Array,
                TAny::KvList(_) => AttrType::KvList,
                TAny::Empty => AttrType::Empty,
            }
        }

        /// The JSON the renderer must produce for this value.
        fn expected(&self) -> J {
            match self {
                TAny::Str(s) => json!({ "stringValue": s }),
                TAny::Int(i) => json!({ "intValue": i.to_string() }),
                TAny::Double(d) => json!({ "doubleValue": jdouble(*d) }),
                TAny::Bool(b) => json!({ "boolValue": b }),
                TAny::Bytes(b) => json!({ "bytesValue": b64(b) }),
                TAny::Array(vs) if vs.is_empty() => json!({ "arrayValue": {} }),
                TAny::Array(vs) => {
                    json!({ "arrayValue": { "values": vs.iter().map(TAny::expected).collect::<Vec<_>>() } })
                }
                TAny::KvList(kvs) if kvs.is_empty() => json!({ "kvlistValue": {} }),
                TAny::KvList(kvs) => {
                    json!({ "kvlistValue": { "values": kvs.iter().map(|(k, v)| expected_kv(k, v)).collect::<Vec<_>>() } })
                }
                TAny::Empty => json!({}),
            }
        }
    }

    fn expected_kv(k: &str, v: &TAny) -> J {
        json!({ "key": k, "value": v.expected() })
    }

    fn jdouble(d: f64) -> J {
        if d.is_nan() {
            json!("NaN")
        } else if d.is_infinite() {
            json!(if d > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            json!(d)
        }
    }

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[derive(Clone, Debug, Default)]
    struct TEvent {
        time: u64,
        name: String,
        attrs: Vec<TAttr>,
        dropped: u32,
    }

    #[derive(Clone, Debug, Default)]
    struct TLink {
        trace_id: Vec<u8>,
        span_id: Vec<u8>,
        trace_state: Option<String>,
        attrs: Vec<TAttr>,
        dropped: u32,
        flags: Option<u32>,
    }

    #[derive(Clone, Debug, Default)]
    struct TSpan {
        trace_id: [u8; 16],
        span_id: [u8; 8],
        parent: Option<[u8; 8]>,
        trace_state: Option<String>,
        name: String,
        kind: i32,
        start: u64,
        duration: u64,
        status_code: i32,
        status_message: Option<String>,
        flags: Option<u32>,
        dropped_attrs: u32,
        dropped_events: u32,
        dropped_links: u32,
        /// Logical attributes: the builder routes them to dedicated columns.
        attrs: Vec<TAttr>,
        events: Vec<TEvent>,
        links: Vec<TLink>,
        /// Logical resource attributes, `service.name` included.
        resource: Vec<TAttr>,
        res_dropped: u32,
        res_schema_url: Option<String>,
        scope_name: Option<String>,
        scope_version: Option<String>,
        scope_attrs: Vec<TAttr>,
        scope_dropped: u32,
        scope_schema_url: Option<String>,
    }

    const TRACE: [u8; 16] = [0xab; 16];

    fn span(id: u8, kind: i32, start: u64, name: &str) -> TSpan {
        TSpan {
            trace_id: TRACE,
            span_id: [id; 8],
            name: name.to_string(),
            kind,
            start,
            duration: 10,
            resource: vec![a("service.name", st("svc"))],
            ..Default::default()
        }
    }

    fn sd(name: &str, t: DedicatedType) -> DedicatedColumn {
        DedicatedColumn::new(DedicatedScope::Span, name, t)
    }

    fn rd(name: &str, t: DedicatedType) -> DedicatedColumn {
        DedicatedColumn::new(DedicatedScope::Resource, name, t)
    }

    /// Splits logical attributes as the writer does: the first attribute of a dedicated
    /// column's name and type goes to the column, the rest stays in the list.
    fn split(attrs: &[TAttr], cols: &[&DedicatedColumn]) -> (Vec<TAttr>, Vec<Option<TAny>>) {
        let mut slots: Vec<Option<TAny>> = vec![None; cols.len()];
        let mut rest = Vec::new();
        for (k, v) in attrs {
            let i = cols.iter().position(|c| &c.name == k);
            let fits = |i: usize| {
                matches!(
                    (cols[i].typ, v),
                    (DedicatedType::String, TAny::Str(_)) | (DedicatedType::Int, TAny::Int(_))
                )
            };
            match i {
                Some(i) if fits(i) && slots[i].is_none() => slots[i] = Some(v.clone()),
                _ => rest.push((k.clone(), v.clone())),
            }
        }
        (rest, slots)
    }

    /// Splits off the first string `service.name`.
    fn split_service(attrs: &[TAttr]) -> (Option<String>, Vec<TAttr>) {
        let mut svc = None;
        let mut rest = Vec::new();
        for (k, v) in attrs {
            match v {
                TAny::Str(s) if k == "service.name" && svc.is_none() => svc = Some(s.clone()),
                _ => rest.push((k.clone(), v.clone())),
            }
        }
        (svc, rest)
    }

    fn item_field(dt: &DataType) -> FieldRef {
        match dt {
            DataType::List(f) => f.clone(),
            _ => panic!("not a list: {dt}"),
        }
    }

    fn attr_list(rows: &[Vec<TAttr>]) -> ArrayRef {
        let flat: Vec<&TAttr> = rows.iter().flatten().collect();
        let key = StringArray::from_iter_values(flat.iter().map(|(k, _)| k.as_str()));
        let typ = UInt8Array::from_iter_values(flat.iter().map(|(_, v)| v.tag() as u8));
        let s = StringArray::from_iter(flat.iter().map(|(_, v)| match v {
            TAny::Str(s) => Some(s.as_str()),
            _ => None,
        }));
        let i = Int64Array::from_iter(flat.iter().map(|(_, v)| match v {
            TAny::Int(i) => Some(*i),
            _ => None,
        }));
        let d = Float64Array::from_iter(flat.iter().map(|(_, v)| match v {
            TAny::Double(d) => Some(*d),
            _ => None,
        }));
        let b = BooleanArray::from_iter(flat.iter().map(|(_, v)| match v {
            TAny::Bool(b) => Some(*b),
            _ => None,
        }));
        let raw = BinaryArray::from_iter(flat.iter().map(|(_, v)| match v {
            TAny::Bytes(_) | TAny::Array(_) | TAny::KvList(_) => Some(v.raw()),
            _ => None,
        }));
        let values = StructArray::new(
            schema::attr_struct_fields(),
            vec![
                Arc::new(key),
                Arc::new(typ),
                Arc::new(s),
                Arc::new(i),
                Arc::new(d),
                Arc::new(b),
                Arc::new(raw),
            ],
            None,
        );
        Arc::new(ListArray::new(
            item_field(&schema::attr_list_type()),
            OffsetBuffer::from_lengths(rows.iter().map(Vec::len)),
            Arc::new(values),
            None,
        ))
    }

    fn strs<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
        Arc::new(StringArray::from_iter(it))
    }

    fn u32s(it: impl Iterator<Item = u32>) -> ArrayRef {
        Arc::new(UInt32Array::from_iter_values(it))
    }

    fn dedicated_array(typ: DedicatedType, vals: Vec<Option<TAny>>) -> ArrayRef {
        match typ {
            DedicatedType::String => Arc::new(StringArray::from_iter(vals.into_iter().map(|v| {
                v.map(|v| match v {
                    TAny::Str(s) => s,
                    _ => unreachable!(),
                })
            }))),
            DedicatedType::Int => Arc::new(Int64Array::from_iter(vals.into_iter().map(|v| {
                v.map(|v| match v {
                    TAny::Int(i) => i,
                    _ => unreachable!(),
                })
            }))),
        }
    }

    /// A batch of `spans` in the schema of `ded`, split as the writer would.
    fn batch(ded: &[DedicatedColumn], spans: &[TSpan]) -> RecordBatch {
        use schema::*;
        let sch = span_schema(ded);
        let span_cols: Vec<&DedicatedColumn> =
            ded.iter().filter(|d| d.scope == DedicatedScope::Span).collect();
        let res_cols: Vec<&DedicatedColumn> =
            ded.iter().filter(|d| d.scope == DedicatedScope::Resource).collect();
        let mut span_lists = Vec::new();
        let mut span_slots = vec![Vec::new(); span_cols.len()];
        let mut services = Vec::new();
        let mut res_lists = Vec::new();
        let mut res_slots = vec![Vec::new(); res_cols.len()];
        for s in spans {
            let (list, slots) = split(&s.attrs, &span_cols);
            span_lists.push(list);
            for (i, v) in slots.into_iter().enumerate() {
                span_slots[i].push(v);
            }
            let (svc, rest) = split_service(&s.resource);
            services.push(svc);
            let (list, slots) = split(&rest, &res_cols);
            res_lists.push(list);
            for (i, v) in slots.into_iter().enumerate() {
                res_slots[i].push(v);
            }
        }

        let mut cols: HashMap<String, ArrayRef> = HashMap::new();
        let mut put = |name: &str, a: ArrayRef| {
            cols.insert(name.to_string(), a);
        };
        put(
            TRACE_ID,
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    spans.iter().map(|s| Some(s.trace_id)),
                    16,
                )
                .unwrap(),
            ),
        );
        put(
            SPAN_ID,
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    spans.iter().map(|s| Some(s.span_id)),
                    8,
                )
                .unwrap(),
            ),
        );
        put(
            PARENT_SPAN_ID,
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    spans.iter().map(|s| s.parent),
                    8,
                )
                .unwrap(),
            ),
        );
        put(TRACE_STATE, strs(spans.iter().map(|s| s.trace_state.as_deref())));
        put(NAME, strs(spans.iter().map(|s| Some(s.name.as_str()))));
        put(KIND, Arc::new(Int32Array::from_iter_values(spans.iter().map(|s| s.kind))));
        put(START, Arc::new(UInt64Array::from_iter_values(spans.iter().map(|s| s.start))));
        put(DURATION, Arc::new(UInt64Array::from_iter_values(spans.iter().map(|s| s.duration))));
        put(
            STATUS_CODE,
            Arc::new(Int32Array::from_iter_values(spans.iter().map(|s| s.status_code))),
        );
        put(STATUS_MESSAGE, strs(spans.iter().map(|s| s.status_message.as_deref())));
        put(FLAGS, Arc::new(UInt32Array::from_iter(spans.iter().map(|s| s.flags))));
        put(DROPPED_ATTRS, u32s(spans.iter().map(|s| s.dropped_attrs)));
        put(DROPPED_EVENTS, u32s(spans.iter().map(|s| s.dropped_events)));
        put(DROPPED_LINKS, u32s(spans.iter().map(|s| s.dropped_links)));
        put(ATTRS, attr_list(&span_lists));
        for (i, (c, vals)) in span_cols.iter().zip(span_slots).enumerate() {
            put(&dedicated_column_name(DedicatedScope::Span, i), dedicated_array(c.typ, vals));
        }

        let events: Vec<&TEvent> = spans.iter().flat_map(|s| &s.events).collect();
        let ev = StructArray::new(
            event_struct_fields(),
            vec![
                Arc::new(UInt64Array::from_iter_values(events.iter().map(|e| e.time))),
                strs(events.iter().map(|e| Some(e.name.as_str()))),
                attr_list(&events.iter().map(|e| e.attrs.clone()).collect::<Vec<_>>()),
                u32s(events.iter().map(|e| e.dropped)),
            ],
            None,
        );
        put(
            EVENTS,
            Arc::new(ListArray::new(
                item_field(sch.field_with_name(EVENTS).unwrap().data_type()),
                OffsetBuffer::from_lengths(spans.iter().map(|s| s.events.len())),
                Arc::new(ev),
                None,
            )),
        );
        let links: Vec<&TLink> = spans.iter().flat_map(|s| &s.links).collect();
        let lk = StructArray::new(
            link_struct_fields(),
            vec![
                Arc::new(BinaryArray::from_iter_values(links.iter().map(|l| &l.trace_id))),
                Arc::new(BinaryArray::from_iter_values(links.iter().map(|l| &l.span_id))),
                strs(links.iter().map(|l| l.trace_state.as_deref())),
                attr_list(&links.iter().map(|l| l.attrs.clone()).collect::<Vec<_>>()),
                u32s(links.iter().map(|l| l.dropped)),
                Arc::new(UInt32Array::from_iter(links.iter().map(|l| l.flags))),
            ],
            None,
        );
        put(
            LINKS,
            Arc::new(ListArray::new(
                item_field(sch.field_with_name(LINKS).unwrap().data_type()),
                OffsetBuffer::from_lengths(spans.iter().map(|s| s.links.len())),
                Arc::new(lk),
                None,
            )),
        );

        put(RESOURCE_SERVICE_NAME, strs(services.iter().map(|s| s.as_deref())));
        put(RESOURCE_ATTRS, attr_list(&res_lists));
        for (i, (c, vals)) in res_cols.iter().zip(res_slots).enumerate() {
            put(&dedicated_column_name(DedicatedScope::Resource, i), dedicated_array(c.typ, vals));
        }
        put(RESOURCE_DROPPED_ATTRS, u32s(spans.iter().map(|s| s.res_dropped)));
        put(RESOURCE_SCHEMA_URL, strs(spans.iter().map(|s| s.res_schema_url.as_deref())));
        put(SCOPE_NAME, strs(spans.iter().map(|s| s.scope_name.as_deref())));
        put(SCOPE_VERSION, strs(spans.iter().map(|s| s.scope_version.as_deref())));
        put(
            SCOPE_ATTRS,
            attr_list(&spans.iter().map(|s| s.scope_attrs.clone()).collect::<Vec<_>>()),
        );
        put(SCOPE_DROPPED_ATTRS, u32s(spans.iter().map(|s| s.scope_dropped)));
        put(SCOPE_SCHEMA_URL, strs(spans.iter().map(|s| s.scope_schema_url.as_deref())));
        let n = spans.len();
        put(PARENT_INDEX, Arc::new(Int32Array::from(vec![-1; n])));
        put(NESTED_SET_LEFT, Arc::new(Int32Array::from(vec![0; n])));
        put(NESTED_SET_RIGHT, Arc::new(Int32Array::from(vec![0; n])));
        put(TRACE_ROOT_SERVICE, strs((0..n).map(|_| None)));
        put(TRACE_ROOT_NAME, strs((0..n).map(|_| None)));
        put(TRACE_START, Arc::new(UInt64Array::from(vec![0u64; n])));
        put(TRACE_END, Arc::new(UInt64Array::from(vec![0u64; n])));

        let arrays = sch.fields().iter().map(|f| cols.remove(f.name()).unwrap()).collect();
        RecordBatch::try_new(sch, arrays).unwrap()
    }

    fn render(batches: &[RecordBatch], fmt: TraceFormat, meta: &RenderMeta) -> Vec<u8> {
        render_trace(batches, fmt, meta).unwrap().unwrap()
    }

    fn json_v1(batches: &[RecordBatch]) -> J {
        let out = render(batches, TraceFormat::JsonV1, &RenderMeta::default());
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&out)))
    }

    /// All spans of a rendered trace (`batches` array), in output order.
    fn all_spans(batches: &J) -> Vec<&J> {
        batches
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|rs| rs["scopeSpans"].as_array().unwrap())
            .flat_map(|ss| ss["spans"].as_array().unwrap())
            .collect()
    }

    fn id_b64(id: u8) -> String {
        b64(&[id; 8])
    }

    // ------------------------------------------------------------ protobuf walker

    /// Decodes protobuf output into the JSON shape the renderer writes, asserting the
    /// wire types and that no zero value was written where proto3 omits it.
    mod walk {
        use super::*;

        fn fields(buf: &[u8]) -> Vec<pb::Field<'_>> {
            let mut r = Reader::new(buf);
            let mut out = Vec::new();
            while let Some(f) = r.next_field().expect("valid protobuf") {
                out.push(f);
            }
            out
        }

        fn string(f: &pb::Field<'_>) -> J {
            let s = f.as_str().unwrap();
            assert!(!s.is_empty(), "empty string field {} written", f.number);
            J::String(s.to_string())
        }

        fn bytes(f: &pb::Field<'_>) -> J {
            let b = f.as_bytes().unwrap();
            assert!(!b.is_empty(), "empty bytes field {} written", f.number);
            J::String(b64(b))
        }

        fn count(f: &pb::Field<'_>) -> J {
            let v = f.as_varint().unwrap();
            assert!(v != 0 && v <= u32::MAX as u64, "bad count field {}", f.number);
            json!(v)
        }

        fn time(f: &pb::Field<'_>) -> J {
            let v = f.as_fixed64().unwrap();
            assert!(v != 0, "zero time field {}", f.number);
            J::String(v.to_string())
        }

        fn flags(f: &pb::Field<'_>) -> J {
            let v = f.as_fixed32().unwrap();
            assert!(v != 0, "zero flags");
            json!(v)
        }

        fn enum_(f: &pb::Field<'_>, names: &[&str]) -> J {
            let v = f.as_varint().unwrap() as i64 as i32;
            assert!(v != 0, "zero enum field {}", f.number);
            match names.get(v as usize) {
                Some(n) if v > 0 => json!(n),
                _ => json!(v),
            }
        }

        fn set(m: &mut Map<String, J>, k: &str, v: J) {
            assert!(m.insert(k.to_string(), v).is_none(), "{k} written twice");
        }

        fn push(m: &mut Map<String, J>, k: &str, v: J) {
            m.entry(k).or_insert_with(|| json!([])).as_array_mut().unwrap().push(v);
        }

        pub fn trace(buf: &[u8]) -> J {
            let mut m = Map::new();
            for f in fields(buf) {
                assert_eq!(f.number, 1, "Trace field");
                push(&mut m, "batches", resource_spans(f.as_bytes().unwrap()));
            }
            J::Object(m)
        }

        pub fn response(buf: &[u8]) -> J {
            let mut m = Map::new();
            for f in fields(buf) {
                match f.number {
                    1 => set(&mut m, "trace", trace(f.as_bytes().unwrap())),
                    2 => {
                        let fs = fields(f.as_bytes().unwrap());
                        assert_eq!(fs.len(), 1);
                        assert_eq!(fs[0].number, 1);
                        let v = fs[0].as_varint().unwrap();
                        assert!(v != 0);
                        set(&mut m, "metrics", json!({ "inspectedBytes": v.to_string() }))
                    }
                    3 => set(&mut m, "status", enum_(&f, &["COMPLETE", "PARTIAL"])),
                    4 => set(&mut m, "message", string(&f)),
                    n => panic!("TraceByIDResponse field {n}"),
                }
            }
            J::Object(m)
        }

        fn resource_spans(buf: &[u8]) -> J {
            let mut m = Map::new();
            for f in fields(buf) {
                match f.number {
                    1 => {
                        let mut r = Map::new();
                        for g in fields(f.as_bytes().unwrap()) {
                            match g.number {
                                1 => push(&mut r, "attributes", kv(g.as_bytes().unwrap())),
                                2 => set(&mut r, "droppedAttributesCount", count(&g)),
                                n => panic!("Resource field {n}"),
                            }
                        }
                        set(&mut m, "resource", J::Object(r))
                    }
                    2 => push(&mut m, "scopeSpans", scope_spans(f.as_bytes().unwrap())),
                    3 => set(&mut m, "schemaUrl", string(&f)),
                    n => panic!("ResourceSpans field {n}"),
                }
            }
            J::Object(m)
        }

        fn scope_spans(buf: &[u8]) -> J {
            let mut m = Map::new();
            for f in fields(buf) {
                match f.number {
                    1 => {
                        let mut s = Map::new();
                        for g in fields(f.as_bytes().unwrap()) {
                            match g.number {
                                1 => set(&mut s, "name", string(&g)),
                                2 => set(&mut s, "version", string(&g)),
                                3 => push(&mut s, "attributes", kv(g.as_bytes().unwrap())),
                                4 => set(&mut s, "droppedAttributesCount", count(&g)),
                                n => panic!("Scope field {n}"),
                            }
                        }
                        set(&mut m, "scope", J::Object(s))
                    }
                    2 => push(&mut m, "spans", span(f.as_bytes().unwrap())),
                    3 => set(&mut m, "schemaUrl", string(&f)),
                    n => panic!("ScopeSpans field {n}"),
                }
            }
            J::Object(m)
        }

        fn span(buf: &[u8]) -> J {
            let mut m = Map::new();
            for f in fields(buf) {
                match f.number {
                    1 => set(&mut m, "traceId", bytes(&f)),
                    2 => set(&mut m, "spanId", bytes(&f)),
                    3 => set(&mut m, "traceState", string(&f)),
                    4 => set(&mut m, "parentSpanId", bytes(&f)),
                    5 => set(&mut m, "name", string(&f)),
                    6 => set(&mut m, "kind", enum_(&f, SPAN_KINDS)),
                    7 => set(&mut m, "startTimeUnixNano", time(&f)),
                    8 => set(&mut m, "endTimeUnixNano", time(&f)),
                    9 => push(&mut m, "attributes", kv(f.as_bytes().unwrap())),
                    10 => set(&mut m, "droppedAttributesCount", count(&f)),
                    11 => push(&mut m, "events", event(f.as_bytes().unwrap())),
                    12 => set(&mut m, "droppedEventsCount", count(&f)),
                    13 => push(&mut m, "links", link(f.as_bytes().unwrap())),
                    14 => set(&mut m, "droppedLinksCount", count(&f)),
                    15 => {
                        let mut s = Map::new();
                        for g in fields(f.as_bytes().unwrap()) {
                            match g.number {
                                2 => set(&mut s, "message", string(&g)),
                                3 => set(&mut s, "code", enum_(&g, STATUS_CODES)),
                                n => panic!("Status field {n}"),
                            }
                        }
                        set(&mut m, "status", J::Object(s))
                    }
                    16 => set(&mut m, "flags", flags(&f)),
                    n => panic!("Span field {n}"),
                }
            }
            assert!(m.contains_key("status"), "span status not written");
            J::Object(m)
        }

        fn event(buf: &[u8]) -> J {
            let mut m = Map::new();
            for f in fields(buf) {
                match f.number {
                    1 => set(&mut m, "timeUnixNano", time(&f)),
                    2 => set(&mut m, "name", string(&f)),
                    3 => push(&mut m, "attributes", kv(f.as_bytes().unwrap())),
                    4 => set(&mut m, "droppedAttributesCount", count(&f)),
                    n => panic!("Event field {n}"),
                }
            }
            J::Object(m)
        }

        fn link(buf: &[u8]) -> J {
            let mut m = Map::new();
            for f in fields(buf) {
                match f.number {
                    1 => set(&mut m, "traceId", bytes(&f)),
                    2 => set(&mut m, "spanId", bytes(&f)),
                    3 => set(&mut m, "traceState", string(&f)),
                    4 => push(&mut m, "attributes", kv(f.as_bytes().unwrap())),
                    5 => set(&mut m, "droppedAttributesCount", count(&f)),
                    6 => set(&mut m, "flags", flags(&f)),
                    n => panic!("Link field {n}"),
                }
            }
            J::Object(m)
        }

        fn kv(buf: &[u8]) -> J {
            let mut key = None;
            let mut value = None;
            for f in fields(buf) {
                match f.number {
                    // Raw (copied) kvlists may carry empty keys.
                    1 => key = Some(json!(f.as_str().unwrap())),
                    2 => value = Some(any(f.as_bytes().unwrap())),
                    n => panic!("KeyValue field {n}"),
                }
            }
            json!({ "key": key.unwrap_or(json!("")), "value": value.expect("KeyValue.value written") })
        }

        fn any(buf: &[u8]) -> J {
            let fs = fields(buf);
            assert!(fs.len() <= 1, "several AnyValue fields");
            let Some(f) = fs.first() else { return json!({}) };
            match f.number {
                1 => json!({ "stringValue": f.as_str().unwrap() }),
                2 => json!({ "boolValue": f.as_varint().unwrap() != 0 }),
                3 => json!({ "intValue": (f.as_varint().unwrap() as i64).to_string() }),
                4 => json!({ "doubleValue": jdouble(f64::from_bits(f.as_fixed64().unwrap())) }),
                5 => {
                    let vs: Vec<J> = fields(f.as_bytes().unwrap())
                        .iter()
                        .map(|g| {
                            assert_eq!(g.number, 1);
                            any(g.as_bytes().unwrap())
                        })
                        .collect();
                    if vs.is_empty() {
                        json!({ "arrayValue": {} })
                    } else {
                        json!({ "arrayValue": { "values": vs } })
                    }
                }
                6 => {
                    let vs: Vec<J> = fields(f.as_bytes().unwrap())
                        .iter()
                        .map(|g| {
                            assert_eq!(g.number, 1);
                            kv(g.as_bytes().unwrap())
                        })
                        .collect();
                    if vs.is_empty() {
                        json!({ "kvlistValue": {} })
                    } else {
                        json!({ "kvlistValue": { "values": vs } })
                    }
                }
                7 => json!({ "bytesValue": b64(f.as_bytes().unwrap()) }),
                n => panic!("AnyValue field {n}"),
            }
        }
    }

    /// Numbers compared as f64 (an integral double renders as `1`, decodes as 1.0).
    fn norm(v: &J) -> J {
        match v {
            J::Number(n) => json!(n.as_f64().unwrap()),
            J::Array(a) => J::Array(a.iter().map(norm).collect()),
            J::Object(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), norm(v))).collect()),
            v => v.clone(),
        }
    }

    /// Protobuf and JSON output of the same batches describe the same trace.
    fn assert_formats_agree(batches: &[RecordBatch]) {
        let meta = RenderMeta { inspected_bytes: 1234, partial: true, message: "m\"x".into() };
        let pb1 = walk::trace(&render(batches, TraceFormat::ProtoV1, &meta));
        let js1: J = serde_json::from_slice(&render(batches, TraceFormat::JsonV1, &meta)).unwrap();
        assert_eq!(norm(&pb1), norm(&js1));
        let pb2 = walk::response(&render(batches, TraceFormat::ProtoV2, &meta));
        let js2: J = serde_json::from_slice(&render(batches, TraceFormat::JsonV2, &meta)).unwrap();
        let mut js2n = norm(&js2);
        // The walker names the trace's list like v1; v2 calls it resourceSpans.
        let rs = js2n["trace"].as_object_mut().unwrap().remove("resourceSpans").unwrap();
        js2n["trace"] = json!({ "batches": rs });
        assert_eq!(norm(&pb2), js2n);
    }

    // ------------------------------------------------------------ tests

    #[test]
    fn empty_input_is_none() {
        let meta = RenderMeta::default();
        assert!(render_trace(&[], TraceFormat::JsonV2, &meta).unwrap().is_none());
        let empty = batch(&schema::default_dedicated_columns(), &[]);
        for fmt in
            [TraceFormat::ProtoV1, TraceFormat::ProtoV2, TraceFormat::JsonV1, TraceFormat::JsonV2]
        {
            assert!(render_trace(&[empty.clone(), empty.clone()], fmt, &meta).unwrap().is_none());
        }
    }

    #[test]
    fn merges_batches_with_different_dedicated_sets() {
        let ded_a = vec![
            sd("http.method", DedicatedType::String),
            rd("k8s.pod.name", DedicatedType::String),
        ];
        let ded_b = vec![
            sd("http.status_code", DedicatedType::Int),
            sd("http.method", DedicatedType::String),
        ];
        let attrs = vec![
            a("http.method", st("GET")),
            a("x", TAny::Int(1)),
            a("http.status_code", TAny::Int(200)),
        ];
        let resource =
            vec![a("k8s.pod.name", st("pod-1")), a("service.name", st("api")), a("zone", st("eu"))];
        let mk = |id: u8, kind: i32, start: u64, name: &str| TSpan {
            attrs: attrs.clone(),
            resource: resource.clone(),
            ..span(id, kind, start, name)
        };
        // Batch A: span 1 (server), span 2 (client).
        let ba = batch(&ded_a, &[mk(1, 2, 100, "a-one"), mk(2, 3, 300, "a-two-client")]);
        // Batch B: span 1 again (same kind: dropped), span 2 as server (kept), span 3.
        let bb = batch(
            &ded_b,
            &[mk(1, 2, 100, "b-one"), mk(2, 2, 200, "b-two-server"), mk(3, 1, 50, "b-three")],
        );
        let j = json_v1(&[ba.clone(), bb.clone()]);
        let batches = &j["batches"];
        // One resource: the dedicated split differs but the attributes are the same.
        assert_eq!(batches.as_array().unwrap().len(), 1);
        let spans = all_spans(batches);
        let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["b-three", "a-one", "b-two-server", "a-two-client"]);

        // Resource attributes of the group's first row (batch A): service.name first,
        // then the list, then the dedicated resource column.
        let res_attrs = &batches[0]["resource"]["attributes"];
        assert_eq!(
            res_attrs,
            &json!([
                expected_kv("service.name", &st("api")),
                expected_kv("zone", &st("eu")),
                expected_kv("k8s.pod.name", &st("pod-1")),
            ])
        );
        // Batch A span: list (x, status) then dedicated http.method.
        assert_eq!(
            spans[1]["attributes"],
            json!([
                expected_kv("x", &TAny::Int(1)),
                expected_kv("http.status_code", &TAny::Int(200)),
                expected_kv("http.method", &st("GET")),
            ])
        );
        // Batch B span: list (x) then dedicated status_code, http.method in that order.
        assert_eq!(
            spans[0]["attributes"],
            json!([
                expected_kv("x", &TAny::Int(1)),
                expected_kv("http.status_code", &TAny::Int(200)),
                expected_kv("http.method", &st("GET")),
            ])
        );
        assert_eq!(spans[2]["kind"], "SPAN_KIND_SERVER");
        assert_eq!(spans[3]["kind"], "SPAN_KIND_CLIENT");
        assert_eq!(spans[2]["spanId"], spans[3]["spanId"]);
        assert_formats_agree(&[ba.clone(), bb.clone()]);

        // Batch order decides which duplicate wins.
        let j = json_v1(&[bb, ba]);
        let names: Vec<String> =
            all_spans(&j["batches"]).iter().map(|s| s["name"].as_str().unwrap().into()).collect();
        assert_eq!(names, ["b-three", "b-one", "b-two-server", "a-two-client"]);
    }

    #[test]
    fn groups_by_resource_and_scope() {
        let mut s1 = span(1, 1, 500, "api-lib1-late");
        s1.resource = vec![a("service.name", st("api"))];
        s1.scope_name = Some("lib1".into());
        let mut s2 = span(2, 1, 100, "db-early");
        s2.resource = vec![a("service.name", st("db"))];
        s2.scope_name = Some("lib1".into());
        let mut s3 = span(3, 1, 200, "api-lib2");
        s3.resource = vec![a("service.name", st("api"))];
        s3.scope_name = Some("lib2".into());
        s3.scope_version = Some("1.0".into());
        s3.scope_attrs = vec![a("s", TAny::Bool(true))];
        s3.scope_dropped = 2;
        s3.scope_schema_url = Some("https://scope".into());
        let mut s4 = span(4, 1, 300, "api-lib1-early");
        s4.resource = vec![a("service.name", st("api"))];
        s4.scope_name = Some("lib1".into());
        // Same service, different resource schema url: another resource.
        let mut s5 = span(5, 1, 400, "api-v2");
        s5.resource = vec![a("service.name", st("api"))];
        s5.res_schema_url = Some("https://res".into());
        s5.res_dropped = 3;
        // A resource without service.name; another with dropped attributes differing.
        let mut s6 = span(6, 1, 50, "anon");
        s6.resource = vec![a("host", st("h"))];
        let b = batch(&[], &[s1, s2, s3, s4, s5, s6]);
        let j = json_v1(std::slice::from_ref(&b));
        let rs = j["batches"].as_array().unwrap();
        assert_eq!(rs.len(), 4);
        assert_eq!(rs[0]["resource"], json!({ "attributes": [expected_kv("host", &st("h"))] }));
        assert_eq!(rs[1]["resource"]["attributes"][0]["value"]["stringValue"], "db");
        // api: earliest span 200 (lib2), then lib1 (300, 500).
        let api = &rs[2];
        assert_eq!(api["resource"]["attributes"][0]["value"]["stringValue"], "api");
        assert!(api.get("schemaUrl").is_none());
        let scopes = api["scopeSpans"].as_array().unwrap();
        assert_eq!(scopes.len(), 2);
        assert_eq!(
            scopes[0]["scope"],
            json!({
                "name": "lib2",
                "version": "1.0",
                "attributes": [expected_kv("s", &TAny::Bool(true))],
                "droppedAttributesCount": 2
            })
        );
        assert_eq!(scopes[0]["schemaUrl"], "https://scope");
        assert_eq!(scopes[1]["scope"], json!({ "name": "lib1" }));
        let names: Vec<&str> = scopes[1]["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["api-lib1-early", "api-lib1-late"]);
        assert_eq!(rs[3]["schemaUrl"], "https://res");
        assert_eq!(rs[3]["resource"]["droppedAttributesCount"], 3);
        assert_eq!(rs[3]["scopeSpans"][0]["scope"], json!({}));
        assert_formats_agree(&[b]);
    }

    fn every_value() -> Vec<TAttr> {
        vec![
            a("str", st("hi \"there\"\n")),
            a("empty-str", st("")),
            a("int", TAny::Int(-42)),
            a("int0", TAny::Int(0)),
            a("big", TAny::Int(i64::MAX)),
            a("double", TAny::Double(0.25)),
            a("double0", TAny::Double(0.0)),
            a("bool", TAny::Bool(false)),
            a("bytes", TAny::Bytes(vec![0, 1, 2, 255])),
            a("empty-bytes", TAny::Bytes(vec![])),
            a(
                "array",
                TAny::Array(vec![
                    st("a"),
                    TAny::Int(7),
                    TAny::Double(1.5),
                    TAny::Bool(true),
                    TAny::Bytes(vec![9]),
                    TAny::Empty,
                    TAny::Array(vec![]),
                    TAny::KvList(vec![a("inner", TAny::Array(vec![TAny::Int(1)]))]),
                ]),
            ),
            a(
                "kvlist",
                TAny::KvList(vec![
                    a("k1", st("v")),
                    a("k2", TAny::KvList(vec![])),
                    a("k3", TAny::KvList(vec![a("deep", TAny::Double(-2.0))])),
                    a("", TAny::Empty),
                ]),
            ),
            a("empty", TAny::Empty),
        ]
    }

    #[test]
    fn renders_every_value_type() {
        let mut s = span(1, 1, 10, "values");
        s.attrs = every_value();
        s.events = vec![TEvent { time: 11, name: "ev".into(), attrs: every_value(), dropped: 1 }];
        s.links = vec![TLink {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            trace_state: Some("ts".into()),
            attrs: every_value(),
            dropped: 4,
            flags: Some(257),
        }];
        s.resource = [vec![a("service.name", st("svc"))], every_value()].concat();
        s.scope_attrs = every_value();
        let b = batch(&[], &[s]);
        let j = json_v1(std::slice::from_ref(&b));
        let expected: Vec<J> = every_value().iter().map(|(k, v)| expected_kv(k, v)).collect();
        let sp = all_spans(&j["batches"])[0];
        let expected = norm(&J::Array(expected));
        assert_eq!(norm(&sp["attributes"]), expected);
        assert_eq!(norm(&sp["events"][0]["attributes"]), expected);
        assert_eq!(norm(&sp["links"][0]["attributes"]), expected);
        assert_eq!(norm(&j["batches"][0]["scopeSpans"][0]["scope"]["attributes"]), expected);
        let mut res = vec![expected_kv("service.name", &st("svc"))];
        res.extend(expected.as_array().unwrap().iter().cloned());
        assert_eq!(norm(&j["batches"][0]["resource"]["attributes"]), J::Array(res));
        // Exact shapes of a few.
        assert_eq!(sp["attributes"][2], json!({"key": "int", "value": {"intValue": "-42"}}));
        assert_eq!(sp["attributes"][3]["value"], json!({"intValue": "0"}));
        assert_eq!(sp["attributes"][4]["value"], json!({"intValue": "9223372036854775807"}));
        assert_eq!(sp["attributes"][6]["value"], json!({"doubleValue": 0}));
        assert_eq!(sp["attributes"][7]["value"], json!({"boolValue": false}));
        assert_eq!(sp["attributes"][8]["value"], json!({"bytesValue": "AAEC/w=="}));
        assert_eq!(sp["attributes"][9]["value"], json!({"bytesValue": ""}));
        assert_eq!(sp["attributes"][12]["value"], json!({}));
        assert_eq!(
            sp["links"][0],
            json!({
                "traceId": b64(&[1; 16]),
                "spanId": b64(&[2; 8]),
                "traceState": "ts",
                "attributes": sp["attributes"].clone(),
                "droppedAttributesCount": 4,
                "flags": 257
            })
        );
        assert_eq!(sp["events"][0]["timeUnixNano"], "11");
        assert_eq!(sp["events"][0]["droppedAttributesCount"], 1);
        assert_formats_agree(&[b]);
    }

    #[test]
    fn protobuf_values_are_exact() {
        let mut s = span(1, 1, 10, "values");
        s.attrs = every_value();
        let b = batch(&[], &[s]);
        let out = render(&[b], TraceFormat::ProtoV1, &RenderMeta::default());
        // Dig to the span's attributes and check the AnyValue bytes.
        let first = |buf: &[u8], n: u32| -> Vec<u8> {
            let mut r = Reader::new(buf);
            while let Some(f) = r.next_field().unwrap() {
                if f.number == n {
                    return f.as_bytes().unwrap().to_vec();
                }
            }
            panic!("field {n} missing")
        };
        let sp = first(&first(&first(&out, 1), 2), 2);
        let mut values = Vec::new();
        let mut r = Reader::new(&sp);
        while let Some(f) = r.next_field().unwrap() {
            if f.number == 9 {
                values.push(first(f.as_bytes().unwrap(), 2));
            }
        }
        let expect: Vec<Vec<u8>> = every_value()
            .iter()
            .map(|(_, v)| {
                let mut o = Vec::new();
                v.encode(&mut o);
                o
            })
            .collect();
        assert_eq!(values, expect);
        // Zero values of the oneof are written: int 0 is `18 00`, false `10 00`, "" `0a 00`.
        assert_eq!(values[3], [0x18, 0]);
        assert_eq!(values[7], [0x10, 0]);
        assert_eq!(values[1], [0x0a, 0]);
        assert_eq!(values[12], Vec::<u8>::new());
    }

    #[test]
    fn service_name_first_and_dedicated_values_restored() {
        let ded = vec![
            rd("k8s.namespace.name", DedicatedType::String),
            rd("replicas", DedicatedType::Int),
            sd("http.url", DedicatedType::String),
            sd("http.status_code", DedicatedType::Int),
            sd("absent", DedicatedType::String),
        ];
        let mut s = span(1, 2, 10, "s");
        s.resource = vec![
            a("a", st("1")),
            a("replicas", TAny::Int(3)),
            a("service.name", st("api")),
            a("k8s.namespace.name", st("prod")),
            a("service.name", st("dup")),
            // The int-typed column does not take a string value.
            a("replicas", st("three")),
        ];
        s.attrs = vec![
            a("http.status_code", st("not-int")),
            a("http.url", st("/x")),
            a("http.status_code", TAny::Int(500)),
            a("http.url", st("/dup")),
        ];
        let b = batch(&ded, &[s]);
        let j = json_v1(std::slice::from_ref(&b));
        let res = &j["batches"][0]["resource"]["attributes"];
        let keys: Vec<(&str, &J)> = res
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv["key"].as_str().unwrap(), &kv["value"]))
            .collect();
        assert_eq!(
            keys,
            [
                ("service.name", &json!({"stringValue": "api"})),
                ("a", &json!({"stringValue": "1"})),
                ("service.name", &json!({"stringValue": "dup"})),
                ("replicas", &json!({"stringValue": "three"})),
                ("k8s.namespace.name", &json!({"stringValue": "prod"})),
                ("replicas", &json!({"intValue": "3"})),
            ]
        );
        let sp = all_spans(&j["batches"])[0];
        assert_eq!(
            sp["attributes"],
            json!([
                expected_kv("http.status_code", &st("not-int")),
                expected_kv("http.url", &st("/dup")),
                expected_kv("http.url", &st("/x")),
                expected_kv("http.status_code", &TAny::Int(500)),
            ])
        );
        assert_formats_agree(&[b]);
    }

    #[test]
    fn json_shapes() {
        let mut s = span(1, 2, 1_000_000_000_000_000_000, "root");
        s.duration = 5;
        s.status_code = 2;
        s.status_message = Some("boom".into());
        s.trace_state = Some("k=v".into());
        s.flags = Some(0x301);
        s.dropped_attrs = 1;
        s.dropped_events = 2;
        s.dropped_links = 3;
        s.attrs = vec![a("n", TAny::Int(42))];
        let mut c = span(2, 3, 1_000_000_000_000_000_001, "child");
        c.parent = Some([1; 8]);
        c.status_code = 1;
        c.flags = Some(0);
        c.duration = 0;
        let mut odd = span(3, 9, 1_000_000_000_000_000_002, "");
        odd.status_code = 7;
        let mut neg = span(4, -1, 1_000_000_000_000_000_003, "neg");
        neg.status_code = -2;
        let mut none = span(5, 0, 0, "zero");
        none.duration = 0;
        let b = batch(&schema::default_dedicated_columns(), &[s, c, odd, neg, none]);
        let j = json_v1(std::slice::from_ref(&b));
        assert_eq!(j.as_object().unwrap().keys().collect::<Vec<_>>(), ["batches"]);
        let spans = all_spans(&j["batches"]);
        assert_eq!(
            spans[1],
            &json!({
                "traceId": "q6urq6urq6urq6urq6urqw==",
                "spanId": "AQEBAQEBAQE=",
                "traceState": "k=v",
                "flags": 769,
                "name": "root",
                "kind": "SPAN_KIND_SERVER",
                "startTimeUnixNano": "1000000000000000000",
                "endTimeUnixNano": "1000000000000000005",
                "attributes": [{"key": "n", "value": {"intValue": "42"}}],
                "droppedAttributesCount": 1,
                "droppedEventsCount": 2,
                "droppedLinksCount": 3,
                "status": {"message": "boom", "code": "STATUS_CODE_ERROR"}
            })
        );
        assert_eq!(
            spans[2],
            &json!({
                "traceId": "q6urq6urq6urq6urq6urqw==",
                "spanId": id_b64(2),
                "parentSpanId": id_b64(1),
                "name": "child",
                "kind": "SPAN_KIND_CLIENT",
                "startTimeUnixNano": "1000000000000000001",
                "endTimeUnixNano": "1000000000000000001",
                "status": {"code": "STATUS_CODE_OK"}
            })
        );
        assert_eq!(spans[3]["kind"], 9);
        assert_eq!(spans[3]["status"], json!({"code": 7}));
        assert!(spans[3].get("name").is_none());
        assert_eq!(spans[4]["kind"], -1);
        assert_eq!(spans[4]["status"], json!({"code": -2}));
        // Zero start / end / kind are omitted; status is always there.
        assert_eq!(
            spans[0],
            &json!({
                "traceId": "q6urq6urq6urq6urq6urqw==",
                "spanId": id_b64(5),
                "name": "zero",
                "status": {}
            })
        );
        assert_formats_agree(&[b]);
    }

    #[test]
    fn v2_envelopes() {
        let b = batch(&[], &[span(1, 1, 5, "x")]);
        let bs = std::slice::from_ref(&b);
        let plain: J =
            serde_json::from_slice(&render(bs, TraceFormat::JsonV2, &RenderMeta::default()))
                .unwrap();
        assert_eq!(plain.as_object().unwrap().keys().collect::<Vec<_>>(), ["trace"]);
        assert_eq!(
            plain["trace"].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["resourceSpans"]
        );
        assert_eq!(plain["trace"]["resourceSpans"], json_v1(bs)["batches"]);

        let meta =
            RenderMeta { inspected_bytes: u64::MAX, partial: true, message: "cut\tshort".into() };
        let full: J = serde_json::from_slice(&render(bs, TraceFormat::JsonV2, &meta)).unwrap();
        assert_eq!(full["metrics"], json!({"inspectedBytes": "18446744073709551615"}));
        assert_eq!(full["status"], "PARTIAL");
        assert_eq!(full["message"], "cut\tshort");

        // Protobuf: the trace, then metrics / status / message only when set.
        let v1 = render(bs, TraceFormat::ProtoV1, &meta);
        let v2 = render(bs, TraceFormat::ProtoV2, &RenderMeta::default());
        let mut expect = Vec::new();
        pb::put_bytes_field(&mut expect, 1, &v1);
        assert_eq!(v2, expect);
        let v2 = render(bs, TraceFormat::ProtoV2, &meta);
        let mut tail = Vec::new();
        pb::put_message(&mut tail, 2, |o| pb::put_varint_field(o, 1, u64::MAX));
        pb::put_varint_field(&mut tail, 3, 1);
        pb::put_bytes_field(&mut tail, 4, b"cut\tshort");
        expect.extend_from_slice(&tail);
        assert_eq!(v2, expect);
        assert_eq!(walk::response(&v2)["status"], "PARTIAL");
    }

    #[test]
    fn strings_are_escaped() {
        let nasty = "q\" b\\ s/ \u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f}\u{7f} é 😀 \u{2028}";
        let mut s = span(1, 1, 5, nasty);
        s.attrs = vec![(nasty.to_string(), st(nasty))];
        s.status_message = Some(nasty.into());
        let b = batch(&[], &[s]);
        let raw = render(std::slice::from_ref(&b), TraceFormat::JsonV1, &RenderMeta::default());
        let text = std::str::from_utf8(&raw).unwrap();
        assert!(text.contains(r#"q\" b\\ s/ \u0000\u0001\b\t\n\f\r\u001f"#), "{text}");
        let j = json_v1(&[b]);
        let sp = all_spans(&j["batches"])[0];
        assert_eq!(sp["name"], nasty);
        assert_eq!(sp["status"]["message"], nasty);
        assert_eq!(sp["attributes"][0], expected_kv(nasty, &st(nasty)));
    }

    #[test]
    fn doubles_round_trip() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.5,
            0.1,
            1e-5,
            9.999e-6,
            1e15,
            1e16,
            123456789012345680.0,
            1e300,
            -1e-300,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
        ];
        for d in values {
            let mut out = Vec::new();
            js_f64(&mut out, d);
            let text = std::str::from_utf8(&out).unwrap();
            let back: f64 = serde_json::from_str::<J>(text).unwrap().as_f64().unwrap();
            assert_eq!(back.to_bits(), d.to_bits(), "{d} rendered as {text}");
            assert_eq!(text.parse::<f64>().unwrap().to_bits(), d.to_bits(), "{text}");
            assert!(text.len() < 30, "{text}");
        }
        for (d, s) in [
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ] {
            let mut out = Vec::new();
            js_f64(&mut out, d);
            assert_eq!(out, s.as_bytes());
        }
    }

    fn kvlist_span(raw: Vec<u8>, typ: AttrType) -> RecordBatch {
        // Build a valid batch, then swap the raw bytes of its only attribute.
        let mut s = span(1, 1, 5, "x");
        s.attrs = vec![a("bad", TAny::KvList(vec![]))];
        let b = batch(&[], &[s]);
        let list =
            b.column_by_name(schema::ATTRS).unwrap().as_any().downcast_ref::<ListArray>().unwrap();
        let st = list.values().as_any().downcast_ref::<StructArray>().unwrap();
        let mut cols: Vec<ArrayRef> = st.columns().to_vec();
        cols[1] = Arc::new(UInt8Array::from(vec![typ as u8]));
        cols[6] = Arc::new(BinaryArray::from_iter_values([raw]));
        let st = StructArray::new(schema::attr_struct_fields(), cols, None);
        let list = ListArray::new(
            item_field(&schema::attr_list_type()),
            list.offsets().clone(),
            Arc::new(st),
            None,
        );
        let idx = b.schema().index_of(schema::ATTRS).unwrap();
        let mut columns = b.columns().to_vec();
        columns[idx] = Arc::new(list);
        RecordBatch::try_new(b.schema(), columns).unwrap()
    }

    #[test]
    fn corrupt_raw_values_are_errors() {
        let meta = RenderMeta::default();
        let mut too_deep = TAny::Int(1);
        for _ in 0..70 {
            too_deep = TAny::KvList(vec![a("k", too_deep)]);
        }
        let deep_ok = {
            let mut v = TAny::Int(1);
            for _ in 0..MAX_VALUE_DEPTH {
                v = TAny::Array(vec![v]);
            }
            v
        };
        let cases: Vec<(Vec<u8>, AttrType)> = vec![
            (vec![0x0a, 0x05, 1], AttrType::KvList),          // truncated
            (vec![0x0a, 0x02, 0x0a, 0x7f], AttrType::KvList), // truncated key
            (vec![0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe], AttrType::KvList), // key not UTF-8
            (vec![0x0a, 0x03, 0x0a, 0x01, 0xc3], AttrType::Array), // string not UTF-8
            (vec![0xff; 12], AttrType::Array),                // overlong varint
            (vec![0x0f], AttrType::KvList),                   // bad wire type
            (vec![0x00, 0x00], AttrType::Array),              // field 0
            (too_deep.raw(), AttrType::KvList),
            (TAny::Array(vec![deep_ok.clone()]).raw(), AttrType::Array),
        ];
        for (raw, typ) in cases {
            let b = kvlist_span(raw.clone(), typ);
            for fmt in [TraceFormat::JsonV1, TraceFormat::JsonV2] {
                let err = render_trace(std::slice::from_ref(&b), fmt, &meta).unwrap_err();
                assert!(
                    matches!(err, RenderError::BadValue { ref key, .. } if key == "bad"),
                    "{raw:?}: {err}"
                );
            }
            // Protobuf copies the stored bytes as they are.
            render(&[b], TraceFormat::ProtoV1, &meta);
        }
        // At the limit it still renders (deeper than serde_json parses by default).
        let b = kvlist_span(deep_ok.raw(), AttrType::Array);
        let out = render(&[b], TraceFormat::JsonV1, &meta);
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(text.matches("arrayValue").count(), MAX_VALUE_DEPTH);
        assert!(text.contains(r#"{"intValue":"1"}]}}]}}"#));
        // Unknown fields and known fields of another wire type are skipped; the last
        // oneof member wins.
        let mut raw = Vec::new();
        pb::put_message(&mut raw, 1, |o| {
            pb::put_bytes_field(o, 1, b"k");
            pb::put_varint_field(o, 9, 5);
            pb::put_message(o, 2, |o| {
                pb::put_bytes_field(o, 1, b"first");
                pb::put_fixed32_field(o, 3, 1);
                pb::put_varint_field(o, 3, 77);
            });
        });
        pb::put_varint_field(&mut raw, 2, 1);
        let b = kvlist_span(raw, AttrType::KvList);
        let j = json_v1(&[b]);
        assert_eq!(
            all_spans(&j["batches"])[0]["attributes"][0]["value"],
            json!({"kvlistValue": {"values": [{"key": "k", "value": {"intValue": "77"}}]}})
        );
        // Unknown type tag.
        let b = kvlist_span(vec![], AttrType::Empty);
        let list =
            b.column_by_name(schema::ATTRS).unwrap().as_any().downcast_ref::<ListArray>().unwrap();
        let st = list.values().as_any().downcast_ref::<StructArray>().unwrap();
        let mut cols: Vec<ArrayRef> = st.columns().to_vec();
        cols[1] = Arc::new(UInt8Array::from(vec![42]));
        let list = ListArray::new(
            item_field(&schema::attr_list_type()),
            list.offsets().clone(),
            Arc::new(StructArray::new(schema::attr_struct_fields(), cols, None)),
            None,
        );
        let mut columns = b.columns().to_vec();
        columns[b.schema().index_of(schema::ATTRS).unwrap()] = Arc::new(list);
        let b = RecordBatch::try_new(b.schema(), columns).unwrap();
        for fmt in [TraceFormat::ProtoV1, TraceFormat::JsonV1] {
            let err = render_trace(std::slice::from_ref(&b), fmt, &meta).unwrap_err();
            assert!(matches!(err, RenderError::BadAttrType { tag: 42, .. }), "{err}");
        }
    }

    #[test]
    fn missing_or_mistyped_columns_are_errors() {
        let b = batch(&[sd("x", DedicatedType::Int)], &[span(1, 1, 5, "x")]);
        let sch = b.schema();
        // Drop a column.
        let keep: Vec<usize> =
            (0..sch.fields().len()).filter(|&i| sch.field(i).name() != schema::KIND).collect();
        let dropped = b.project(&keep).unwrap();
        let err =
            render_trace(&[dropped], TraceFormat::JsonV1, &RenderMeta::default()).unwrap_err();
        assert!(matches!(err, RenderError::MissingColumn(ref c) if c == "kind"), "{err}");
        // Metadata naming a dedicated column of another type.
        let mut md = sch.metadata().clone();
        md.insert(
            schema::DEDICATED_METADATA_KEY,
            serde_json::to_string(&[sd("x", DedicatedType::String)]).unwrap(),
        );
        let relabelled = RecordBatch::try_new(
            Arc::new(arrow_schema::Schema::new_with_metadata(sch.fields().clone(), md)),
            b.columns().to_vec(),
        )
        .unwrap();
        let err =
            render_trace(&[relabelled], TraceFormat::ProtoV1, &RenderMeta::default()).unwrap_err();
        assert!(
            matches!(err, RenderError::WrongType { ref column, .. } if column == "span_dedicated_00"),
            "{err}"
        );
    }

    #[test]
    fn dedicated_columns_without_metadata_are_errors() {
        let b = batch(&[rd("k8s.pod.name", DedicatedType::String)], &[span(1, 1, 5, "x")]);
        let sch = b.schema();
        let bare = RecordBatch::try_new(
            Arc::new(arrow_schema::Schema::new(sch.fields().clone())),
            b.columns().to_vec(),
        )
        .unwrap();
        let err = render_trace(&[bare], TraceFormat::JsonV1, &RenderMeta::default()).unwrap_err();
        assert!(
            matches!(err, RenderError::UndescribedDedicatedColumn(ref c) if c == "resource_dedicated_00"),
            "{err}"
        );
    }

    #[test]
    fn columns_are_found_by_name_and_slices_work() {
        let spans: Vec<TSpan> = (1..=6u8)
            .map(|i| {
                let mut s = span(i, 1, i as u64 * 10, &format!("s{i}"));
                s.attrs = vec![a("i", TAny::Int(i as i64)), a("http.method", st("GET"))];
                s.events = vec![TEvent { time: i as u64, name: "e".into(), ..Default::default() }];
                s
            })
            .collect();
        let b = batch(&schema::default_dedicated_columns(), &spans);
        let n = b.num_columns();
        let reversed = b.project(&(0..n).rev().collect::<Vec<_>>()).unwrap();
        assert_eq!(json_v1(std::slice::from_ref(&b)), json_v1(&[reversed]));
        // Slices (non-zero list offsets) render only their rows.
        let part = json_v1(&[b.slice(2, 3)]);
        let names: Vec<&str> =
            all_spans(&part["batches"]).iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["s3", "s4", "s5"]);
        let sp = all_spans(&part["batches"])[0];
        assert_eq!(sp["attributes"][0]["value"]["intValue"], "3");
        assert_eq!(sp["attributes"][1]["key"], "http.method");
        assert_eq!(sp["events"][0]["timeUnixNano"], "3");
        assert_formats_agree(&[b.slice(2, 3), b.slice(0, 4)]);
    }

    #[test]
    fn large_messages_get_long_length_prefixes() {
        let mut s = span(1, 1, 5, &"n".repeat(70_000));
        s.attrs = vec![a("big", st(&"v".repeat(200)))];
        let b = batch(&[], &[s]);
        assert_formats_agree(&[b]);
    }

    // ------------------------------------------------------------ property test

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => proptest::sample::select(vec!["", "a", "http.method", "k8s.pod.name", "x", "service.name"])
                    .prop_map(str::to_string),
                1 => proptest::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
            ]
        }

        fn value() -> impl Strategy<Value = TAny> {
            let leaf = prop_oneof![
                text().prop_map(TAny::Str),
                any::<i64>().prop_map(TAny::Int),
                (-3i64..3).prop_map(TAny::Int),
                any::<f64>().prop_map(TAny::Double),
                any::<bool>().prop_map(TAny::Bool),
                proptest::collection::vec(any::<u8>(), 0..5).prop_map(TAny::Bytes),
                Just(TAny::Empty),
            ];
            leaf.prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(TAny::Array),
                    proptest::collection::vec((text(), inner), 0..4).prop_map(TAny::KvList),
                ]
            })
        }

        fn attrs() -> impl Strategy<Value = Vec<TAttr>> {
            proptest::collection::vec((text(), value()), 0..5)
        }

        prop_compose! {
            fn tspan()(
                id in 0u8..6,
                kind in 0i32..4,
                start in 0u64..5,
                name in text(),
                attrs in attrs(),
                resource in proptest::collection::vec(
                    (proptest::sample::select(vec!["service.name", "k8s.pod.name", "r"]), 0u8..2),
                    0..3,
                ),
                scope in proptest::option::of(proptest::sample::select(vec!["l1", "l2"])),
                events in proptest::collection::vec((0u64..3, text(), attrs()), 0..2),
                links in proptest::collection::vec((attrs(), proptest::option::of(0u32..3)), 0..2),
                status in (0i32..4, proptest::option::of(text())),
                flags in proptest::option::of(0u32..3),
            ) -> TSpan {
                TSpan {
                    trace_id: TRACE,
                    span_id: [id; 8],
                    parent: (id % 2 == 1).then(|| [id - 1; 8]),
                    name,
                    kind,
                    start,
                    duration: 3,
                    status_code: status.0,
                    status_message: status.1,
                    flags,
                    attrs,
                    events: events
                        .into_iter()
                        .map(|(time, name, attrs)| TEvent { time, name, attrs, dropped: 0 })
                        .collect(),
                    links: links
                        .into_iter()
                        .map(|(attrs, flags)| TLink {
                            trace_id: vec![id; 16],
                            span_id: vec![id; 8],
                            attrs,
                            flags,
                            ..Default::default()
                        })
                        .collect(),
                    resource: resource
                        .into_iter()
                        .map(|(k, v)| a(k, if v == 0 { st("v0") } else { TAny::Int(1) }))
                        .collect(),
                    scope_name: scope.map(str::to_string),
                    ..Default::default()
                }
            }
        }

        fn dedicated_set() -> impl Strategy<Value = Vec<DedicatedColumn>> {
            proptest::sample::subsequence(
                vec![
                    sd("http.method", DedicatedType::String),
                    sd("x", DedicatedType::Int),
                    sd("a", DedicatedType::String),
                    rd("k8s.pod.name", DedicatedType::String),
                    rd("r", DedicatedType::Int),
                    rd("service.name", DedicatedType::String),
                ],
                0..=6,
            )
        }

        /// A resource's attributes as a sorted multiset (rendered order may differ).
        fn multiset(attrs: &J) -> Vec<String> {
            let mut v: Vec<String> = attrs
                .as_array()
                .map(|a| a.iter().map(|x| norm(x).to_string()).collect())
                .unwrap_or_default();
            v.sort();
            v
        }

        proptest! {
            #[test]
            fn arbitrary_raw_bytes_never_panic(
                raw in proptest::collection::vec(any::<u8>(), 0..40),
                kvlist in any::<bool>(),
            ) {
                let typ = if kvlist { AttrType::KvList } else { AttrType::Array };
                let b = kvlist_span(raw, typ);
                for fmt in [TraceFormat::JsonV1, TraceFormat::ProtoV2] {
                    match render_trace(std::slice::from_ref(&b), fmt, &RenderMeta::default()) {
                        Ok(out) => {
                            let out = out.unwrap();
                            if fmt == TraceFormat::JsonV1 {
                                prop_assert!(serde_json::from_slice::<J>(&out).is_ok());
                            }
                        }
                        Err(e) => prop_assert!(matches!(e, RenderError::BadValue { .. }), "{}", e),
                    }
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]
            #[test]
            fn rendering_matches_the_model(
                input in proptest::collection::vec((dedicated_set(), proptest::collection::vec(tspan(), 0..6)), 1..4)
            ) {
                let batches: Vec<RecordBatch> = input.iter().map(|(d, s)| batch(d, s)).collect();
                // The model: first (span id, kind) wins.
                let mut seen = HashSet::new();
                let mut kept: Vec<(&Vec<DedicatedColumn>, &TSpan)> = Vec::new();
                for (d, spans) in &input {
                    for s in spans {
                        if seen.insert((s.span_id, s.kind)) {
                            kept.push((d, s));
                        }
                    }
                }
                let out = render_trace(&batches, TraceFormat::JsonV1, &RenderMeta::default()).unwrap();
                if kept.is_empty() {
                    prop_assert!(out.is_none());
                    return Ok(());
                }
                let j: J = serde_json::from_slice(&out.unwrap()).unwrap();
                assert_formats_agree(&batches);

                let spans = all_spans(&j["batches"]);
                prop_assert_eq!(spans.len(), kept.len());
                let mut by_key: BTreeMap<(String, String), &J> = BTreeMap::new();
                for s in &spans {
                    let kind = s.get("kind").map(|k| k.to_string()).unwrap_or_default();
                    by_key.insert((s["spanId"].as_str().unwrap().to_string(), kind), s);
                }
                prop_assert_eq!(by_key.len(), kept.len());
                // Resources are distinct multisets.
                let mut resources = BTreeMap::new();
                for rs in j["batches"].as_array().unwrap() {
                    let key = multiset(&rs["resource"]["attributes"]);
                    prop_assert!(resources.insert(key, ()).is_none(), "resource split: {}", j);
                    // Spans of each scope in (start, id) order.
                    for ss in rs["scopeSpans"].as_array().unwrap() {
                        let order: Vec<(u64, String)> = ss["spans"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|s| {
                                let start = s.get("startTimeUnixNano").map_or(0, |v| v.as_str().unwrap().parse().unwrap());
                                let id = base64::engine::general_purpose::STANDARD.decode(s["spanId"].as_str().unwrap()).unwrap();
                                (start, String::from_utf8_lossy(&id).into_owned())
                            })
                            .collect();
                        let mut sorted = order.clone();
                        sorted.sort();
                        prop_assert_eq!(order, sorted);
                    }
                }
                for (ded, s) in kept {
                    let kind = if s.kind == 0 { String::new() } else { format!("\"{}\"", SPAN_KINDS[s.kind as usize]) };
                    let got = by_key[&(b64(&s.span_id), kind)];
                    prop_assert_eq!(got["name"].as_str().unwrap_or(""), s.name.as_str());
                    // Attributes: the list order, then dedicated columns in their order.
                    let span_cols: Vec<&DedicatedColumn> = ded.iter().filter(|d| d.scope == DedicatedScope::Span).collect();
                    let (list, slots) = split(&s.attrs, &span_cols);
                    let mut expect: Vec<J> = list.iter().map(|(k, v)| expected_kv(k, v)).collect();
                    for (c, v) in span_cols.iter().zip(slots) {
                        if let Some(v) = v {
                            expect.push(expected_kv(&c.name, &v));
                        }
                    }
                    let got_attrs = got.get("attributes").cloned().unwrap_or(json!([]));
                    prop_assert_eq!(norm(&got_attrs), norm(&J::Array(expect)));
                    for (e, ge) in s.events.iter().zip(got.get("events").and_then(J::as_array).into_iter().flatten()) {
                        let expect: Vec<J> = e.attrs.iter().map(|(k, v)| expected_kv(k, v)).collect();
                        prop_assert_eq!(norm(&ge.get("attributes").cloned().unwrap_or(json!([]))), norm(&J::Array(expect)));
                    }
                    // Its resource holds the logical attributes (service.name first when a
                    // string) and its scope the span's scope.
                    let (rs, ss) = j["batches"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap().iter().map(move |ss| (rs, ss)))
                        .find(|(_, ss)| ss["spans"].as_array().unwrap().iter().any(|x| std::ptr::eq(x, got)))
                        .unwrap();
                    prop_assert_eq!(ss["scope"].get("name").and_then(J::as_str), s.scope_name.as_deref());
                    let expect: Vec<J> = s.resource.iter().map(|(k, v)| expected_kv(k, v)).collect();
                    prop_assert_eq!(multiset(&rs["resource"]["attributes"]), multiset(&J::Array(expect)));
                    if let (Some(svc), _) = split_service(&s.resource) {
                        prop_assert_eq!(&rs["resource"]["attributes"][0], &expected_kv("service.name", &st(&svc)));
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ timing

    /// `cargo test --release -- --ignored --nocapture timing`
    #[test]
    #[ignore]
    fn timing_10k_spans() {
        // TIMING_SPANS=100000 to try a larger trace.
        let n: u32 =
            std::env::var("TIMING_SPANS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
        let services = ["frontend", "cart", "checkout", "payment", "db"];
        let spans: Vec<TSpan> = (0..n)
            .map(|i| {
                let svc = services[i as usize % services.len()];
                let mut id = [0u8; 8];
                id[..4].copy_from_slice(&i.to_be_bytes());
                TSpan {
                    trace_id: TRACE,
                    span_id: id,
                    parent: (i > 0).then_some([0; 8]),
                    name: format!("GET /api/v1/items/{}", i % 50),
                    kind: 1 + (i % 3) as i32,
                    start: 1_700_000_000_000_000_000 + i as u64 * 1000,
                    duration: 12_345,
                    status_code: (i % 7 == 0) as i32 * 2,
                    attrs: vec![
                        a("http.method", st("GET")),
                        a("http.status_code", TAny::Int(200)),
                        a("http.url", st("https://example.com/api/v1/items?id=12345")),
                        a("component", st("net/http")),
                        a("retry", TAny::Int(0)),
                        a("ratio", TAny::Double(0.25)),
                        a("cached", TAny::Bool(true)),
                        a("tags", TAny::Array(vec![st("a"), st("b")])),
                    ],
                    events: if i % 10 == 0 {
                        vec![TEvent {
                            time: 5,
                            name: "exception".into(),
                            attrs: vec![a("exception.message", st("boom"))],
                            dropped: 0,
                        }]
                    } else {
                        vec![]
                    },
                    resource: vec![
                        a("service.name", st(svc)),
                        a("k8s.pod.name", st(&format!("{svc}-7d9f8-abcde"))),
                        a("k8s.namespace.name", st("prod")),
                        a("host.name", st("node-17")),
                        a("telemetry.sdk.language", st("go")),
                        a("telemetry.sdk.version", st("1.21.0")),
                    ],
                    scope_name: Some("go.opentelemetry.io/contrib/net/http".into()),
                    scope_version: Some("0.45.0".into()),
                    ..Default::default()
                }
            })
            .collect();
        let ded = schema::default_dedicated_columns();
        // Two sources with different dedicated sets, overlapping by 10% of the spans.
        let half = n as usize / 2;
        let batches =
            vec![batch(&ded, &spans[..half]), batch(&[], &spans[half - n as usize / 10..])];
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let meta = RenderMeta::default();
        for fmt in
            [TraceFormat::JsonV1, TraceFormat::JsonV2, TraceFormat::ProtoV1, TraceFormat::ProtoV2]
        {
            let mut best = std::time::Duration::MAX;
            let mut size = 0;
            for _ in 0..if n > 20_000 { 3 } else { 30 } {
                let t = std::time::Instant::now();
                let out = render(&batches, fmt, &meta);
                best = best.min(t.elapsed());
                size = out.len();
            }
            println!("{fmt:?}: {n} spans ({rows} rows) in {best:?}, {size} bytes");
        }
        let views: Vec<View> = batches.iter().map(|b| View::new(b).unwrap()).collect();
        let t = std::time::Instant::now();
        for _ in 0..10 {
            std::hint::black_box(plan(&views).unwrap());
        }
        println!("plan: {:?}", t.elapsed() / 10);
        let t = std::time::Instant::now();
        for _ in 0..10 {
            for b in &batches {
                std::hint::black_box(View::new(b).unwrap());
            }
        }
        println!("views: {:?}", t.elapsed() / 10);
    }
}
