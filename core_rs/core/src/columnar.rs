//! Arrow record batches in the span schema ([`crate::schema`]) from live spans.
//!
//! [`build_batch`] parses each span's protobuf bytes once and appends straight
//! into column buffers; resources and scopes are parsed once per request scope.
//! [`rederive`] recomputes the trace-level columns of one trace whose rows came
//! from several batches (used when blocks are merged).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, FixedSizeBinaryBuilder, Float64Builder,
    Int32Builder, Int64Builder, StringBuilder, UInt32Builder, UInt64Builder, UInt8Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, Int32Array, ListArray, RecordBatch, StringArray, StructArray, UInt32Array,
    UInt64Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{ArrowError, DataType, Field, Fields};

use crate::model::{IdMap, Request, SpanHandle, SpanRef, TraceId};
use crate::otlp::view::{attrs_of, AnyValue, KeyValue, ResourceHead, ScopeHead, SpanView};
use crate::pb::{PbError, Reader, Value};
use crate::schema::{self, AttrType, DedicatedColumn, DedicatedScope, DedicatedType};

/// The spans of one trace, as handed to the columnar builder.
pub struct TraceSpans {
    pub trace_id: TraceId,
    pub spans: Vec<SpanHandle>,
    /// The oldest WAL segment holding these spans (kept until they are on disk).
    pub first_segment: u64,
}

impl TraceSpans {
    pub fn new(trace_id: TraceId, spans: Vec<SpanHandle>) -> Self {
        TraceSpans { trace_id, spans, first_segment: 0 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ColumnarError {
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("span does not decode: {0}")]
    Decode(String),
    #[error("span does not decode: {0}")]
    Protobuf(#[from] PbError),
    #[error("{0}")]
    Schema(String),
}

// ------------------------------------------------------------------ attributes

/// Builds one `List<Attr>` column.
pub(crate) struct AttrListBuilder {
    offsets: Vec<i32>,
    keys: StringBuilder,
    types: UInt8Builder,
    strs: StringBuilder,
    ints: Int64Builder,
    doubles: Float64Builder,
    bools: BooleanBuilder,
    raws: BinaryBuilder,
    len: i32,
}

impl AttrListBuilder {
    pub(crate) fn new() -> Self {
        Self::with_capacity(0, 0)
    }

    /// Room for `rows` lists of `items` attributes in all (keys and values ~16 bytes).
    pub(crate) fn with_capacity(rows: usize, items: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        AttrListBuilder {
            offsets,
            keys: StringBuilder::with_capacity(items, items * 16),
            types: UInt8Builder::with_capacity(items),
            strs: StringBuilder::with_capacity(items, items * 16),
            ints: Int64Builder::with_capacity(items),
            doubles: Float64Builder::with_capacity(items),
            bools: BooleanBuilder::with_capacity(items),
            raws: BinaryBuilder::with_capacity(items, 0),
            len: 0,
        }
    }

    /// Appends one attribute to the current row.
    pub(crate) fn push(&mut self, kv: &KeyValue<'_>) {
        self.keys.append_value(kv.key);
        let (t, s, i, d, b, r): (AttrType, Option<&str>, _, _, _, Option<&[u8]>) = match kv.value {
            AnyValue::Str(v) => (AttrType::String, Some(v), None, None, None, None),
            AnyValue::Int(v) => (AttrType::Int, None, Some(v), None, None, None),
            AnyValue::Double(v) => (AttrType::Double, None, None, Some(v), None, None),
            AnyValue::Bool(v) => (AttrType::Bool, None, None, None, Some(v), None),
            AnyValue::Bytes(v) => (AttrType::Bytes, None, None, None, None, Some(v)),
            AnyValue::Array(v) => (AttrType::Array, None, None, None, None, Some(v)),
            AnyValue::KvList(v) => (AttrType::KvList, None, None, None, None, Some(v)),
            AnyValue::Empty => (AttrType::Empty, None, None, None, None, None),
        };
        self.types.append_value(t as u8);
        self.strs.append_option(s);
        self.ints.append_option(i);
        self.doubles.append_option(d);
        self.bools.append_option(b);
        self.raws.append_option(r);
        self.len += 1;
    }

    /// Ends the current row's list.
    pub(crate) fn end_row(&mut self) {
        self.offsets.push(self.len);
    }

    pub(crate) fn finish(mut self) -> Result<ArrayRef, ArrowError> {
        let fields = schema::attr_struct_fields();
        let values = StructArray::try_new(
            fields.clone(),
            vec![
                Arc::new(self.keys.finish()),
                Arc::new(self.types.finish()),
                Arc::new(self.strs.finish()),
                Arc::new(self.ints.finish()),
                Arc::new(self.doubles.finish()),
                Arc::new(self.bools.finish()),
                Arc::new(self.raws.finish()),
            ],
            None,
        )?;
        list(fields, self.offsets, Arc::new(values))
    }
}

fn list(fields: Fields, offsets: Vec<i32>, values: ArrayRef) -> Result<ArrayRef, ArrowError> {
    let item = Arc::new(Field::new("item", DataType::Struct(fields), false));
    Ok(Arc::new(ListArray::try_new(item, OffsetBuffer::new(offsets.into()), values, None)?))
}

// ------------------------------------------------------------ dedicated columns

/// A dedicated column's value for one row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DedicatedValue<'a> {
    Str(&'a str),
    Int(i64),
}

/// Most dedicated columns per scope (Tempo allows 10 per type).
pub const MAX_DEDICATED: usize = 32;

/// Routes attributes to the dedicated columns of one scope.
struct Dedicated {
    columns: Vec<(String, DedicatedType)>,
}

impl Dedicated {
    fn new(all: &[DedicatedColumn], scope: DedicatedScope) -> Self {
        Dedicated {
            columns: all
                .iter()
                .filter(|d| d.scope == scope)
                .take(MAX_DEDICATED)
                .map(|d| (d.name.clone(), d.typ))
                .collect(),
        }
    }

    /// The column `kv` belongs in, with its value, if any.
    #[inline]
    fn route<'a>(&self, kv: &KeyValue<'a>) -> Option<(usize, DedicatedValue<'a>)> {
        let i = self.columns.iter().position(|(name, _)| name == kv.key)?;
        match (self.columns[i].1, kv.value) {
            (DedicatedType::String, AnyValue::Str(s)) => Some((i, DedicatedValue::Str(s))),
            (DedicatedType::Int, AnyValue::Int(v)) => Some((i, DedicatedValue::Int(v))),
            _ => None,
        }
    }

    /// Splits attributes into the list and the dedicated slots (first wins).
    fn split<'a>(
        &self,
        attrs: impl Iterator<Item = KeyValue<'a>>,
        slots: &mut [Option<DedicatedValue<'a>>],
        mut rest: impl FnMut(&KeyValue<'a>),
    ) {
        for kv in attrs {
            match self.route(&kv) {
                Some((i, v)) if slots[i].is_none() => slots[i] = Some(v),
                _ => rest(&kv),
            }
        }
    }
}

enum DedicatedBuilder {
    Str(StringBuilder),
    Int(Int64Builder),
}

impl DedicatedBuilder {
    fn new(t: DedicatedType) -> Self {
        match t {
            DedicatedType::String => DedicatedBuilder::Str(StringBuilder::new()),
            DedicatedType::Int => DedicatedBuilder::Int(Int64Builder::new()),
        }
    }

    fn push(&mut self, v: Option<DedicatedValue<'_>>) {
        match (self, v) {
            (DedicatedBuilder::Str(b), Some(DedicatedValue::Str(s))) => b.append_value(s),
            (DedicatedBuilder::Int(b), Some(DedicatedValue::Int(i))) => b.append_value(i),
            (DedicatedBuilder::Str(b), _) => b.append_null(),
            (DedicatedBuilder::Int(b), _) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            DedicatedBuilder::Str(mut b) => Arc::new(b.finish()),
            DedicatedBuilder::Int(mut b) => Arc::new(b.finish()),
        }
    }
}

// ------------------------------------------------------------ resource / scope

/// A request scope's resource and scope, parsed once.
struct ScopeInfo<'a> {
    service: Option<&'a str>,
    resource_attrs: Vec<KeyValue<'a>>,
    resource_dedicated: Vec<Option<DedicatedValue<'a>>>,
    resource_dropped: u32,
    resource_schema_url: &'a str,
    scope: ScopeHead<'a>,
    scope_attrs: Vec<KeyValue<'a>>,
    scope_schema_url: &'a str,
}

fn scope_info<'a>(req: &'a Request, scope: u32, dedicated: &Dedicated) -> ScopeInfo<'a> {
    let buf = req.bytes();
    let sc = &req.scopes[scope as usize];
    let rs = &req.resources[sc.resource as usize];
    let resource = rs.resource.get(buf);
    let mut info = ScopeInfo {
        service: None,
        resource_attrs: Vec::new(),
        resource_dedicated: vec![None; dedicated.columns.len()],
        resource_dropped: ResourceHead::parse(resource).map_or(0, |h| h.dropped_attributes_count),
        resource_schema_url: std::str::from_utf8(rs.schema_url.get(buf)).unwrap_or(""),
        scope: ScopeHead::parse(sc.scope.get(buf)).unwrap_or_default(),
        scope_attrs: attrs_of(sc.scope.get(buf), 3).collect(),
        scope_schema_url: std::str::from_utf8(sc.schema_url.get(buf)).unwrap_or(""),
    };
    let mut service = None;
    let mut rest = Vec::new();
    let attrs = attrs_of(resource, 1).filter(|kv| match (kv.key, kv.value) {
        ("service.name", AnyValue::Str(s)) if service.is_none() => {
            service = Some(s);
            false
        }
        _ => true,
    });
    dedicated.split(attrs, &mut info.resource_dedicated, |kv| rest.push(*kv));
    info.service = service;
    info.resource_attrs = rest;
    info
}

// ------------------------------------------------------------ trace structure

/// Per-row structure of one trace whose rows are in start order.
pub(crate) struct Structure {
    pub parent_index: Vec<i32>,
    pub left: Vec<i32>,
    pub right: Vec<i32>,
    /// The earliest row without a parent id, if any.
    pub root: Option<usize>,
}

/// Computes parent indexes and nested-set bounds. `parents[i]` is `None` for a
/// span without a parent id.
pub(crate) fn structure(span_ids: &[[u8; 8]], parents: &[Option<[u8; 8]>]) -> Structure {
    let n = span_ids.len();
    let mut index: IdMap<[u8; 8], usize> =
        IdMap::with_capacity_and_hasher(if n > 16 { n } else { 0 }, Default::default());
    if n > 16 {
        for (i, id) in span_ids.iter().enumerate() {
            index.entry(*id).or_insert(i);
        }
    }
    let find = |id: &[u8; 8]| -> Option<usize> {
        if n > 16 {
            index.get(id).copied()
        } else {
            span_ids.iter().position(|s| s == id)
        }
    };
    let mut parent_index = vec![-1i32; n];
    let mut root = None;
    for i in 0..n {
        match parents[i] {
            Some(p) => {
                if let Some(j) = find(&p).filter(|&j| j != i) {
                    parent_index[i] = j as i32;
                }
            }
            None => {
                if root.is_none() {
                    root = Some(i);
                }
            }
        }
    }
    // Children lists in row order, as first-child / next-sibling links.
    let mut first_child = vec![usize::MAX; n];
    let mut next_sibling = vec![usize::MAX; n];
    for i in (0..n).rev() {
        if parent_index[i] >= 0 {
            let p = parent_index[i] as usize;
            next_sibling[i] = first_child[p];
            first_child[p] = i;
        }
    }
    let mut left = vec![0i32; n];
    let mut right = vec![0i32; n];
    let mut counter = 0i32;
    let mut visited = vec![false; n];
    let mut stack: Vec<(usize, bool)> = Vec::new();
    // Roots and orphans first (in row order), then anything left in a parent cycle.
    let starts = (0..n).filter(|&i| parent_index[i] < 0).chain(0..n);
    for s in starts {
        if visited[s] {
            continue;
        }
        stack.push((s, false));
        while let Some((i, done)) = stack.pop() {
            if done {
                counter += 1;
                right[i] = counter;
                continue;
            }
            if visited[i] {
                continue;
            }
            visited[i] = true;
            counter += 1;
            left[i] = counter;
            stack.push((i, true));
            // Push children in reverse so the first child is numbered first.
            let mut kids = Vec::new();
            let mut c = first_child[i];
            while c != usize::MAX {
                kids.push(c);
                c = next_sibling[c];
            }
            for &c in kids.iter().rev() {
                if !visited[c] {
                    stack.push((c, false));
                }
            }
        }
    }
    Structure { parent_index, left, right, root }
}

// ------------------------------------------------------------------ the builder

/// Where a row sits in its trace and which scope it belongs to.
struct RowPlace {
    trace_id: TraceId,
    trace: u32,
    scope: u32,
    parent_index: i32,
    left: i32,
    right: i32,
}

/// Asks the CPU to start loading the first cache lines of `bytes`.
#[inline(always)]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = bytes.as_ptr() as *const i8;
        // SAFETY: prefetching is a hint; it never faults, whatever the address.
        unsafe {
            _mm_prefetch(p, _MM_HINT_T0);
            _mm_prefetch(p.wrapping_add(64), _MM_HINT_T0);
            _mm_prefetch(p.wrapping_add(128), _MM_HINT_T0);
            _mm_prefetch(p.wrapping_add(192), _MM_HINT_T0);
        }
    }
}

/// A span ready to append: its index entry, bytes and request.
#[derive(Clone, Copy)]
struct Row<'a> {
    span: &'a SpanRef,
    msg: &'a [u8],
    req: &'a Request,
}

struct Builders {
    trace_id: FixedSizeBinaryBuilder,
    span_id: FixedSizeBinaryBuilder,
    parent_span_id: FixedSizeBinaryBuilder,
    trace_state: StringBuilder,
    name: StringBuilder,
    kind: Int32Builder,
    start: UInt64Builder,
    duration: UInt64Builder,
    status_code: Int32Builder,
    status_message: StringBuilder,
    flags: UInt32Builder,
    dropped_attrs: UInt32Builder,
    dropped_events: UInt32Builder,
    dropped_links: UInt32Builder,
    attrs: AttrListBuilder,
    span_dedicated: Vec<DedicatedBuilder>,
    // events
    event_offsets: Vec<i32>,
    event_time: UInt64Builder,
    event_name: StringBuilder,
    event_attrs: AttrListBuilder,
    event_dropped: UInt32Builder,
    // links
    link_offsets: Vec<i32>,
    link_trace_id: BinaryBuilder,
    link_span_id: BinaryBuilder,
    link_trace_state: StringBuilder,
    link_attrs: AttrListBuilder,
    link_dropped: UInt32Builder,
    link_flags: UInt32Builder,
    // resource and scope
    service: StringBuilder,
    resource_attrs: AttrListBuilder,
    resource_dedicated: Vec<DedicatedBuilder>,
    resource_dropped: UInt32Builder,
    resource_schema_url: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scope_attrs: AttrListBuilder,
    scope_dropped: UInt32Builder,
    scope_schema_url: StringBuilder,
    /// Resource/scope columns hold one row per distinct scope; `scope_rows` maps
    /// each span row to it (expanded with `take` at the end).
    scope_rows: Vec<u32>,
    /// Trace-level columns hold one row per trace; `trace_rows` maps span rows.
    trace_rows: Vec<u32>,
    // structure and trace-level
    parent_index: Int32Builder,
    left: Int32Builder,
    right: Int32Builder,
    root_service: StringBuilder,
    root_name: StringBuilder,
    trace_start: UInt64Builder,
    trace_end: UInt64Builder,
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn utf8(b: &[u8]) -> Result<&str, ColumnarError> {
    simdutf8::basic::from_utf8(b).map_err(|_| ColumnarError::Decode("invalid UTF-8".into()))
}

/// The scalar fields of a span, gathered while its bytes are walked.
#[derive(Default)]
struct Scalars<'a> {
    span_id: &'a [u8],
    trace_state: &'a [u8],
    parent: &'a [u8],
    name: &'a [u8],
    kind: i32,
    start: u64,
    end: u64,
    status_code: i32,
    status_message: &'a [u8],
    flags: u32,
    dropped_attrs: u32,
    dropped_events: u32,
    dropped_links: u32,
}

impl Builders {
    fn new(span_ded: &Dedicated, res_ded: &Dedicated, rows: usize) -> Self {
        Builders {
            trace_id: FixedSizeBinaryBuilder::with_capacity(rows, 16),
            span_id: FixedSizeBinaryBuilder::with_capacity(rows, 8),
            parent_span_id: FixedSizeBinaryBuilder::with_capacity(rows, 8),
            trace_state: StringBuilder::new(),
            name: StringBuilder::with_capacity(rows, rows * 24),
            kind: Int32Builder::with_capacity(rows),
            start: UInt64Builder::with_capacity(rows),
            duration: UInt64Builder::with_capacity(rows),
            status_code: Int32Builder::with_capacity(rows),
            status_message: StringBuilder::new(),
            flags: UInt32Builder::with_capacity(rows),
            dropped_attrs: UInt32Builder::with_capacity(rows),
            dropped_events: UInt32Builder::with_capacity(rows),
            dropped_links: UInt32Builder::with_capacity(rows),
            attrs: AttrListBuilder::with_capacity(rows, rows * 8),
            span_dedicated: span_ded
                .columns
                .iter()
                .map(|(_, t)| DedicatedBuilder::new(*t))
                .collect(),
            event_offsets: vec![0],
            event_time: UInt64Builder::new(),
            event_name: StringBuilder::new(),
            event_attrs: AttrListBuilder::new(),
            event_dropped: UInt32Builder::new(),
            link_offsets: vec![0],
            link_trace_id: BinaryBuilder::new(),
            link_span_id: BinaryBuilder::new(),
            link_trace_state: StringBuilder::new(),
            link_attrs: AttrListBuilder::new(),
            link_dropped: UInt32Builder::new(),
            link_flags: UInt32Builder::new(),
            service: StringBuilder::new(),
            resource_attrs: AttrListBuilder::new(),
            resource_dedicated: res_ded
                .columns
                .iter()
                .map(|(_, t)| DedicatedBuilder::new(*t))
                .collect(),
            resource_dropped: UInt32Builder::new(),
            resource_schema_url: StringBuilder::new(),
            scope_name: StringBuilder::new(),
            scope_version: StringBuilder::new(),
            scope_attrs: AttrListBuilder::new(),
            scope_dropped: UInt32Builder::new(),
            scope_schema_url: StringBuilder::new(),
            scope_rows: Vec::with_capacity(rows),
            trace_rows: Vec::with_capacity(rows),
            parent_index: Int32Builder::with_capacity(rows),
            left: Int32Builder::with_capacity(rows),
            right: Int32Builder::with_capacity(rows),
            root_service: StringBuilder::new(),
            root_name: StringBuilder::new(),
            trace_start: UInt64Builder::new(),
            trace_end: UInt64Builder::new(),
        }
    }

    /// Appends one span, walking its bytes once (they were validated by the scan).
    fn push_span(
        &mut self,
        trace_id: &TraceId,
        msg: &[u8],
        span_ded: &Dedicated,
    ) -> Result<(), ColumnarError> {
        let mut sc = Scalars::default();
        let mut slots = [None; MAX_DEDICATED];
        let mut r = Reader::new(msg);
        while let Some(f) = r.next_field()? {
            match (f.number, f.value) {
                (2, Value::Bytes { data, .. }) => sc.span_id = data,
                (3, Value::Bytes { data, .. }) => sc.trace_state = data,
                (4, Value::Bytes { data, .. }) => sc.parent = data,
                (5, Value::Bytes { data, .. }) => sc.name = data,
                (6, Value::Varint(x)) => sc.kind = x as i32,
                (7, Value::Fixed64(x)) => sc.start = x,
                (8, Value::Fixed64(x)) => sc.end = x,
                (9, Value::Bytes { data, .. }) => {
                    let kv = KeyValue::parse(data, 0)?;
                    match span_ded.route(&kv) {
                        Some((i, v)) if slots[i].is_none() => slots[i] = Some(v),
                        _ => self.attrs.push(&kv),
                    }
                }
                (10, Value::Varint(x)) => sc.dropped_attrs = x as u32,
                (11, Value::Bytes { data, .. }) => self.push_event(data)?,
                (12, Value::Varint(x)) => sc.dropped_events = x as u32,
                (13, Value::Bytes { data, .. }) => self.push_link(data)?,
                (14, Value::Varint(x)) => sc.dropped_links = x as u32,
                (15, Value::Bytes { data, .. }) => {
                    let mut st = Reader::new(data);
                    while let Some(g) = st.next_field()? {
                        match (g.number, g.value) {
                            (2, Value::Bytes { data, .. }) => sc.status_message = data,
                            (3, Value::Varint(x)) => sc.status_code = x as i32,
                            _ => {}
                        }
                    }
                }
                (16, Value::Fixed32(x)) => sc.flags = x,
                _ => {}
            }
        }
        self.attrs.end_row();
        for (b, v) in self.span_dedicated.iter_mut().zip(slots.iter()) {
            b.push(*v);
        }
        self.event_offsets.push(self.event_time.len() as i32);
        self.link_offsets.push(self.link_trace_id.len() as i32);
        self.trace_id.append_value(trace_id)?;
        self.span_id.append_value(sc.span_id)?;
        if sc.parent.len() == 8 && sc.parent != [0u8; 8] {
            self.parent_span_id.append_value(sc.parent)?;
        } else {
            self.parent_span_id.append_null();
        }
        self.trace_state.append_option(non_empty(utf8(sc.trace_state)?));
        self.name.append_value(utf8(sc.name)?);
        self.kind.append_value(sc.kind);
        self.start.append_value(sc.start);
        self.duration.append_value(sc.end.saturating_sub(sc.start));
        self.status_code.append_value(sc.status_code);
        self.status_message.append_option(non_empty(utf8(sc.status_message)?));
        self.flags.append_option((sc.flags != 0).then_some(sc.flags));
        self.dropped_attrs.append_value(sc.dropped_attrs);
        self.dropped_events.append_value(sc.dropped_events);
        self.dropped_links.append_value(sc.dropped_links);
        Ok(())
    }

    fn push_event(&mut self, msg: &[u8]) -> Result<(), ColumnarError> {
        let (mut time, mut name, mut dropped) = (0, &[][..], 0);
        let mut r = Reader::new(msg);
        while let Some(f) = r.next_field()? {
            match (f.number, f.value) {
                (1, Value::Fixed64(x)) => time = x,
                (2, Value::Bytes { data, .. }) => name = data,
                (3, Value::Bytes { data, .. }) => self.event_attrs.push(&KeyValue::parse(data, 0)?),
                (4, Value::Varint(x)) => dropped = x as u32,
                _ => {}
            }
        }
        self.event_attrs.end_row();
        self.event_time.append_value(time);
        self.event_name.append_value(utf8(name)?);
        self.event_dropped.append_value(dropped);
        Ok(())
    }

    fn push_link(&mut self, msg: &[u8]) -> Result<(), ColumnarError> {
        let (mut tid, mut sid, mut state, mut dropped, mut flags) =
            (&[][..], &[][..], &[][..], 0, 0);
        let mut r = Reader::new(msg);
        while let Some(f) = r.next_field()? {
            match (f.number, f.value) {
                (1, Value::Bytes { data, .. }) => tid = data,
                (2, Value::Bytes { data, .. }) => sid = data,
                (3, Value::Bytes { data, .. }) => state = data,
                (4, Value::Bytes { data, .. }) => self.link_attrs.push(&KeyValue::parse(data, 0)?),
                (5, Value::Varint(x)) => dropped = x as u32,
                (6, Value::Fixed32(x)) => flags = x,
                _ => {}
            }
        }
        self.link_attrs.end_row();
        self.link_trace_id.append_value(tid);
        self.link_span_id.append_value(sid);
        self.link_trace_state.append_option(non_empty(utf8(state)?));
        self.link_dropped.append_value(dropped);
        self.link_flags.append_option((flags != 0).then_some(flags));
        Ok(())
    }

    fn push_scope(&mut self, info: &ScopeInfo<'_>) {
        self.service.append_option(info.service);
        for kv in &info.resource_attrs {
            self.resource_attrs.push(kv);
        }
        self.resource_attrs.end_row();
        for (b, v) in self.resource_dedicated.iter_mut().zip(&info.resource_dedicated) {
            b.push(*v);
        }
        self.resource_dropped.append_value(info.resource_dropped);
        self.resource_schema_url.append_option(non_empty(info.resource_schema_url));
        self.scope_name.append_option(non_empty(info.scope.name));
        self.scope_version.append_option(non_empty(info.scope.version));
        for kv in &info.scope_attrs {
            self.scope_attrs.push(kv);
        }
        self.scope_attrs.end_row();
        self.scope_dropped.append_value(info.scope.dropped_attributes_count);
        self.scope_schema_url.append_option(non_empty(info.scope_schema_url));
    }

    fn finish(mut self, dedicated: &[DedicatedColumn]) -> Result<RecordBatch, ArrowError> {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.parent_span_id.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.dropped_attrs.finish()),
            Arc::new(self.dropped_events.finish()),
            Arc::new(self.dropped_links.finish()),
            self.attrs.finish()?,
        ];
        cols.extend(self.span_dedicated.into_iter().map(DedicatedBuilder::finish));
        let event_fields = schema::event_struct_fields();
        let events = StructArray::try_new(
            event_fields.clone(),
            vec![
                Arc::new(self.event_time.finish()),
                Arc::new(self.event_name.finish()),
                self.event_attrs.finish()?,
                Arc::new(self.event_dropped.finish()),
            ],
            None,
        )?;
        cols.push(list(event_fields, self.event_offsets, Arc::new(events))?);
        let link_fields = schema::link_struct_fields();
        let links = StructArray::try_new(
            link_fields.clone(),
            vec![
                Arc::new(self.link_trace_id.finish()),
                Arc::new(self.link_span_id.finish()),
                Arc::new(self.link_trace_state.finish()),
                self.link_attrs.finish()?,
                Arc::new(self.link_dropped.finish()),
                Arc::new(self.link_flags.finish()),
            ],
            None,
        )?;
        cols.push(list(link_fields, self.link_offsets, Arc::new(links))?);
        let scope_rows = UInt32Array::from(self.scope_rows);
        let trace_rows = UInt32Array::from(self.trace_rows);
        let per_scope = |a: ArrayRef| arrow_select::take::take(a.as_ref(), &scope_rows, None);
        let per_trace = |a: ArrayRef| arrow_select::take::take(a.as_ref(), &trace_rows, None);
        cols.push(per_scope(Arc::new(self.service.finish()))?);
        cols.push(per_scope(self.resource_attrs.finish()?)?);
        for d in self.resource_dedicated {
            cols.push(per_scope(d.finish())?);
        }
        cols.extend([
            per_scope(Arc::new(self.resource_dropped.finish()))?,
            per_scope(Arc::new(self.resource_schema_url.finish()))?,
            per_scope(Arc::new(self.scope_name.finish()))?,
            per_scope(Arc::new(self.scope_version.finish()))?,
            per_scope(self.scope_attrs.finish()?)?,
            per_scope(Arc::new(self.scope_dropped.finish()))?,
            per_scope(Arc::new(self.scope_schema_url.finish()))?,
            Arc::new(self.parent_index.finish()),
            Arc::new(self.left.finish()),
            Arc::new(self.right.finish()),
            per_trace(Arc::new(self.root_service.finish()))?,
            per_trace(Arc::new(self.root_name.finish()))?,
            per_trace(Arc::new(self.trace_start.finish()))?,
            per_trace(Arc::new(self.trace_end.finish()))?,
        ]);
        RecordBatch::try_new(schema::span_schema(dedicated), cols)
    }
}

/// Builds one sorted batch from whole traces: rows by trace id then start time,
/// duplicate (span id, kind) pairs within a trace dropped.
pub fn build_batch(
    traces: &[TraceSpans],
    dedicated: &[DedicatedColumn],
) -> Result<RecordBatch, ColumnarError> {
    let mut order: Vec<&TraceSpans> = traces.iter().collect();
    if !traces.is_sorted_by_key(|t| t.trace_id) {
        order.sort_unstable_by_key(|t| t.trace_id);
    }
    let span_ded = Dedicated::new(dedicated, DedicatedScope::Span);
    let res_ded = Dedicated::new(dedicated, DedicatedScope::Resource);
    let total: usize = traces.iter().map(|t| t.spans.len()).sum();
    let mut b = Builders::new(&span_ded, &res_ded, total);
    let mut scopes: HashMap<(usize, u32), usize> = HashMap::new();
    let mut infos: Vec<ScopeInfo<'_>> = Vec::new();
    let mut rows: Vec<Row<'_>> = Vec::new();
    let mut all: Vec<(Row<'_>, RowPlace)> = Vec::with_capacity(total);
    let mut ids: Vec<[u8; 8]> = Vec::new();
    let mut parents: Vec<Option<[u8; 8]>> = Vec::new();
    // Pass 1, per trace: order, de-duplicate, structure, scope and trace-level values.
    for t in order {
        rows.clear();
        for h in &t.spans {
            let req: &Request = &h.req;
            let span = h.span();
            rows.push(Row { span, msg: span.msg.get(req.bytes()), req });
        }
        rows.sort_by(|a, b| {
            (a.span.start_unix_nano, a.span.span_id, a.span.kind).cmp(&(
                b.span.start_unix_nano,
                b.span.span_id,
                b.span.kind,
            ))
        });
        rows.dedup_by(|a, b| a.span.span_id == b.span.span_id && a.span.kind == b.span.kind);
        ids.clear();
        parents.clear();
        for r in &rows {
            ids.push(r.span.span_id);
            parents.push(Some(r.span.parent_span_id).filter(|p| *p != [0u8; 8]));
        }
        let st = structure(&ids, &parents);
        let ordinal = b.root_name.len() as u32;
        let mut root_service = None;
        for (k, r) in rows.iter().enumerate() {
            let key = (r.req as *const Request as usize, r.span.scope);
            let info = match scopes.get(&key) {
                Some(&i) => i,
                None => {
                    let info = scope_info(r.req, r.span.scope, &res_ded);
                    b.push_scope(&info);
                    infos.push(info);
                    scopes.insert(key, infos.len() - 1);
                    infos.len() - 1
                }
            };
            if st.root == Some(k) {
                root_service = infos[info].service;
            }
            let place = RowPlace {
                trace_id: t.trace_id,
                trace: ordinal,
                scope: info as u32,
                parent_index: st.parent_index[k],
                left: st.left[k],
                right: st.right[k],
            };
            all.push((*r, place));
        }
        let root_name = match st.root {
            Some(i) => Some(SpanView::parse(rows[i].msg)?.name),
            None => None,
        };
        b.root_service.append_option(root_service);
        b.root_name.append_option(root_name);
        b.trace_start.append_value(rows.iter().map(|r| r.span.start_unix_nano).min().unwrap_or(0));
        b.trace_end.append_value(
            rows.iter()
                .map(|r| r.span.end_unix_nano.max(r.span.start_unix_nano))
                .max()
                .unwrap_or(0),
        );
    }
    // Pass 2: append every span, fetching the bytes of the spans ahead (they are
    // scattered over many request buffers, so each would otherwise miss the cache).
    const AHEAD: usize = 6;
    for (k, (r, place)) in all.iter().enumerate() {
        if let Some((next, _)) = all.get(k + AHEAD) {
            prefetch(next.msg);
        }
        b.push_span(&place.trace_id, r.msg, &span_ded)?;
        b.scope_rows.push(place.scope);
        b.trace_rows.push(place.trace);
        b.parent_index.append_value(place.parent_index);
        b.left.append_value(place.left);
        b.right.append_value(place.right);
    }
    Ok(b.finish(dedicated)?)
}

// ------------------------------------------------------------------ re-deriving

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ColumnarError> {
    batch.column_by_name(name).ok_or_else(|| ColumnarError::Schema(format!("no column {name}")))
}

/// Recomputes the structure and trace-level columns of `batch`, whose rows are
/// all of one trace (gathered from several sources): rows are sorted by start,
/// duplicate (span id, kind) pairs dropped, then parent indexes, nested sets,
/// root service and name and trace bounds recomputed.
pub fn rederive(batch: &RecordBatch) -> Result<RecordBatch, ColumnarError> {
    let n = batch.num_rows();
    let span_ids = column(batch, schema::SPAN_ID)?.as_fixed_size_binary();
    let parents = column(batch, schema::PARENT_SPAN_ID)?.as_fixed_size_binary();
    let starts = column(batch, schema::START)?.as_primitive::<UInt64Type>();
    let durations = column(batch, schema::DURATION)?.as_primitive::<UInt64Type>();
    let kinds = column(batch, schema::KIND)?.as_primitive::<Int32Type>();
    let id = |i: usize| -> [u8; 8] { span_ids.value(i).try_into().unwrap_or([0; 8]) };
    // A (span id, kind) seen again is a duplicate even if other fields differ (a resend
    // with new timestamps): the first row of each is kept.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (id(i), kinds.value(i), i));
    order.dedup_by(|a, b| id(*a) == id(*b) && kinds.value(*a) == kinds.value(*b));
    order.sort_by_key(|&i| (starts.value(i), id(i), kinds.value(i)));
    let take = UInt32Array::from_iter_values(order.iter().map(|&i| i as u32));
    let ids: Vec<[u8; 8]> = order.iter().map(|&i| id(i)).collect();
    let pids: Vec<Option<[u8; 8]>> = order
        .iter()
        .map(|&i| (!parents.is_null(i)).then(|| parents.value(i).try_into().unwrap_or([0; 8])))
        .collect();
    let st = structure(&ids, &pids);
    let trace_start = order.iter().map(|&i| starts.value(i)).min().unwrap_or(0);
    let trace_end = order.iter().map(|&i| starts.value(i) + durations.value(i)).max().unwrap_or(0);
    let (root_service, root_name) = match st.root {
        Some(k) => {
            let i = order[k];
            let svc = column(batch, schema::RESOURCE_SERVICE_NAME)?.as_string::<i32>();
            let name = column(batch, schema::NAME)?.as_string::<i32>();
            ((!svc.is_null(i)).then(|| svc.value(i).to_string()), Some(name.value(i).to_string()))
        }
        None => (None, None),
    };
    let m = order.len();
    let schema_ref = batch.schema();
    let mut cols = Vec::with_capacity(batch.num_columns());
    for (f, c) in schema_ref.fields().iter().zip(batch.columns()) {
        let col: ArrayRef = match f.name().as_str() {
            schema::PARENT_INDEX => Arc::new(Int32Array::from(st.parent_index.clone())),
            schema::NESTED_SET_LEFT => Arc::new(Int32Array::from(st.left.clone())),
            schema::NESTED_SET_RIGHT => Arc::new(Int32Array::from(st.right.clone())),
            schema::TRACE_ROOT_SERVICE => {
                Arc::new(StringArray::from(vec![root_service.as_deref(); m]))
            }
            schema::TRACE_ROOT_NAME => Arc::new(StringArray::from(vec![root_name.as_deref(); m])),
            schema::TRACE_START => Arc::new(UInt64Array::from(vec![trace_start; m])),
            schema::TRACE_END => Arc::new(UInt64Array::from(vec![trace_end; m])),
            _ => arrow_select::take::take(c.as_ref(), &take, None)?,
        };
        cols.push(col);
    }
    Ok(RecordBatch::try_new(schema_ref, cols)?)
}

/// The spans of `reqs` grouped into traces, sorted by trace id.
pub fn group_traces(reqs: &[Arc<Request>]) -> Vec<TraceSpans> {
    let mut by: HashMap<TraceId, Vec<SpanHandle>> = HashMap::new();
    for req in reqs {
        for (i, s) in req.spans.iter().enumerate() {
            by.entry(s.trace_id).or_default().push(SpanHandle { req: req.clone(), idx: i as u32 });
        }
    }
    let mut out: Vec<TraceSpans> =
        by.into_iter().map(|(trace_id, spans)| TraceSpans::new(trace_id, spans)).collect();
    out.sort_unstable_by_key(|t| t.trace_id);
    out
}

#[cfg(test)]
pub(crate) fn traces_of(reqs: &[Arc<Request>]) -> Vec<TraceSpans> {
    group_traces(reqs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::scan;
    use crate::testdata;

    #[test]
    fn builds_sorted_rows_with_structure() {
        let (body, n) = testdata::request(11, 500);
        let req = Arc::new(scan(Arc::from(body)).unwrap());
        let traces = traces_of(std::slice::from_ref(&req));
        let ded = schema::default_dedicated_columns();
        let batch = build_batch(&traces, &ded).unwrap();
        assert_eq!(batch.num_rows(), n);
        let tids = batch.column_by_name(schema::TRACE_ID).unwrap().as_fixed_size_binary();
        let starts = batch.column_by_name(schema::START).unwrap().as_primitive::<UInt64Type>();
        for i in 1..n {
            let a = (tids.value(i - 1), starts.value(i - 1));
            let b = (tids.value(i), starts.value(i));
            assert!(a <= b, "row {i} out of order");
        }
        // Every generated trace has its root: left == 1 on exactly the root rows.
        let pidx = batch.column_by_name(schema::PARENT_INDEX).unwrap().as_primitive::<Int32Type>();
        let roots = (0..n).filter(|&i| pidx.value(i) < 0).count();
        assert_eq!(roots, traces.len());
        let svc = batch.column_by_name(schema::TRACE_ROOT_SERVICE).unwrap().as_string::<i32>();
        assert!((0..n).all(|i| svc.value(i) == "svc-frontend"));
        // http.method went to the first span dedicated column.
        let m = batch.column_by_name("span_dedicated_00").unwrap().as_string::<i32>();
        assert_eq!(m.null_count(), 0);
        let ns = batch.column_by_name("resource_dedicated_02").unwrap().as_string::<i32>();
        assert!(ns.value(0).starts_with("svc-"), "k8s.pod.name is dedicated");
    }

    #[test]
    fn duplicates_are_dropped_and_rederive_matches() {
        let (body, _) = testdata::request(5, 100);
        let req = Arc::new(scan(Arc::from(body)).unwrap());
        let once = traces_of(std::slice::from_ref(&req));
        let mut twice = traces_of(std::slice::from_ref(&req));
        for t in &mut twice {
            let copy = t.spans.clone();
            t.spans.extend(copy);
        }
        let ded = schema::default_dedicated_columns();
        let a = build_batch(&once, &ded).unwrap();
        let b = build_batch(&twice, &ded).unwrap();
        assert_eq!(a, b);
        // One trace split over two batches and merged back re-derives the same rows.
        let tid =
            a.column_by_name(schema::TRACE_ID).unwrap().as_fixed_size_binary().value(0).to_vec();
        let rows: Vec<usize> = (0..a.num_rows())
            .filter(|&i| {
                a.column_by_name(schema::TRACE_ID).unwrap().as_fixed_size_binary().value(i) == tid
            })
            .collect();
        let one = a.slice(rows[0], rows.len());
        let reversed = UInt32Array::from_iter_values((0..one.num_rows() as u32).rev());
        let cols = one
            .columns()
            .iter()
            .map(|c| arrow_select::take::take(c.as_ref(), &reversed, None).unwrap())
            .collect();
        let shuffled = RecordBatch::try_new(one.schema(), cols).unwrap();
        let doubled =
            arrow_select::concat::concat_batches(&one.schema(), [&shuffled, &one]).unwrap();
        assert_eq!(rederive(&doubled).unwrap(), one);
        // A resend with other timestamps is still a duplicate: the first copy stays.
        let start_col = one.schema().index_of(schema::START).unwrap();
        let later: UInt64Array = one
            .column(start_col)
            .as_primitive::<UInt64Type>()
            .iter()
            .map(|v| v.map(|v| v + 1_000_000))
            .collect();
        let mut cols = one.columns().to_vec();
        cols[start_col] = Arc::new(later);
        let resent = RecordBatch::try_new(one.schema(), cols).unwrap();
        let both = arrow_select::concat::concat_batches(&one.schema(), [&one, &resent]).unwrap();
        assert_eq!(rederive(&both).unwrap(), one);
    }

    #[test]
    fn structure_handles_orphans_and_cycles() {
        let ids = [[1u8; 8], [2; 8], [3; 8], [4; 8]];
        // 1 root; 2 child of 1; 3 parent missing (orphan); 4 child of itself.
        let parents = [None, Some([1; 8]), Some([9; 8]), Some([4; 8])];
        let s = structure(&ids, &parents);
        assert_eq!(s.parent_index, vec![-1, 0, -1, -1]);
        assert_eq!(s.root, Some(0));
        assert_eq!((s.left[0], s.right[0]), (1, 4));
        assert_eq!((s.left[1], s.right[1]), (2, 3));
        // A two-span cycle is still numbered, once each.
        let s = structure(&ids[..2], &[Some([2; 8]), Some([1; 8])]);
        assert!(s.left.iter().all(|&l| l > 0));
        assert_eq!(s.root, None);
    }
}
