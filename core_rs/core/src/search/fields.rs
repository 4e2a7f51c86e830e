//! A batch of span rows seen as TraceQL fields: intrinsics from their columns, attributes
//! from a dedicated column or the attribute lists, event and link fields per event / link.
//!
//! Every accessor is columnar: it fills one value per row. Columns a query does not need
//! may be absent from the batch (projected away); their fields read as nil.

use std::cell::OnceCell;
use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt64Type, UInt8Type};
use arrow_array::{
    Array, BinaryArray, BooleanArray, Float64Array, Int32Array, Int64Array, ListArray,
    PrimitiveArray, RecordBatch, StringArray, StructArray, UInt64Array, UInt8Array,
};
use arrow_buffer::OffsetBuffer;

use super::value::Value;
use crate::schema::{self, AttrType, DedicatedColumn, DedicatedScope, DedicatedType};
use crate::traceql::{Attribute, AttributeScope, Intrinsic};

/// One attribute list column (`List<Attr>`), with its struct children resolved.
pub struct AttrList<'a> {
    offsets: &'a OffsetBuffer<i32>,
    keys: &'a StringArray,
    types: &'a PrimitiveArray<UInt8Type>,
    strs: &'a StringArray,
    ints: &'a Int64Array,
    doubles: &'a Float64Array,
    bools: &'a BooleanArray,
    raws: &'a BinaryArray,
}

impl<'a> AttrList<'a> {
    pub fn new(list: &'a ListArray) -> AttrList<'a> {
        let s = list.values().as_struct();
        AttrList {
            offsets: list.offsets(),
            keys: s.column(0).as_string::<i32>(),
            types: s.column(1).as_primitive::<UInt8Type>(),
            strs: s.column(2).as_string::<i32>(),
            ints: s.column(3).as_primitive::<Int64Type>(),
            doubles: s.column(4).as_primitive::<arrow_array::types::Float64Type>(),
            bools: s.column(5).as_boolean(),
            raws: s.column(6).as_binary::<i32>(),
        }
    }

    /// The value of the first entry named `name` in list `row` (nil when absent).
    #[inline]
    pub fn get(&self, row: usize, name: &str) -> Value<'a> {
        let (lo, hi) = (self.offsets[row] as usize, self.offsets[row + 1] as usize);
        for e in lo..hi {
            if self.keys.value(e) == name {
                return self.entry(e);
            }
        }
        Value::Nil
    }

    /// The typed value of entry `e`; bytes and maps read as nil.
    pub fn entry(&self, e: usize) -> Value<'a> {
        match AttrType::from_u8(self.types.value(e)) {
            Some(AttrType::String) => Value::Str(self.strs.value(e)),
            Some(AttrType::Int) => Value::Int(self.ints.value(e)),
            Some(AttrType::Double) => Value::Float(self.doubles.value(e)),
            Some(AttrType::Bool) => Value::Bool(self.bools.value(e)),
            Some(AttrType::Array) => Value::Array(self.raws.value(e)),
            _ => Value::Nil,
        }
    }

    /// Entries of list `row`: `(key, value)`.
    pub fn entries(&self, row: usize) -> impl Iterator<Item = (&'a str, Value<'a>)> + '_ {
        let (lo, hi) = (self.offsets[row] as usize, self.offsets[row + 1] as usize);
        (lo..hi).map(move |e| (self.keys.value(e), self.entry(e)))
    }

    pub fn len_of(&self, row: usize) -> usize {
        (self.offsets[row + 1] - self.offsets[row]) as usize
    }

    pub fn first(&self, row: usize) -> usize {
        self.offsets[row] as usize
    }
}

/// A dedicated column: a string or an int column.
#[derive(Clone, Copy)]
pub enum DedicatedArray<'a> {
    Str(&'a StringArray),
    Int(&'a Int64Array),
}

impl<'a> DedicatedArray<'a> {
    #[inline]
    pub fn get(&self, row: usize) -> Value<'a> {
        match self {
            DedicatedArray::Str(a) if a.is_valid(row) => Value::Str(a.value(row)),
            DedicatedArray::Int(a) if a.is_valid(row) => Value::Int(a.value(row)),
            _ => Value::Nil,
        }
    }
}

/// Events or links of every row: the list offsets and the struct of items.
pub struct Items<'a> {
    offsets: &'a OffsetBuffer<i32>,
    pub items: &'a StructArray,
    attrs: AttrList<'a>,
}

impl<'a> Items<'a> {
    fn new(list: &'a ListArray, attrs_field: &str) -> Items<'a> {
        let items = list.values().as_struct();
        let attrs = items.column_by_name(attrs_field).expect("item attrs").as_list::<i32>();
        Items { offsets: list.offsets(), items, attrs: AttrList::new(attrs) }
    }

    /// Index of the `k`-th item of `row`, if it has one.
    #[inline]
    pub fn nth(&self, row: usize, k: usize) -> Option<usize> {
        let lo = self.offsets[row] as usize + k;
        (lo < self.offsets[row + 1] as usize).then_some(lo)
    }

    pub fn max_len(&self) -> usize {
        self.offsets.windows(2).map(|w| (w[1] - w[0]) as usize).max().unwrap_or(0)
    }
}

/// The span rows of one batch, resolved once.
pub struct BatchView<'a> {
    pub batch: &'a RecordBatch,
    pub rows: usize,
    cols: HashMap<&'a str, usize>,
    span_dedicated: HashMap<String, DedicatedArray<'a>>,
    resource_dedicated: HashMap<String, DedicatedArray<'a>>,
    span_attrs: Option<AttrList<'a>>,
    resource_attrs: Option<AttrList<'a>>,
    scope_attrs: Option<AttrList<'a>>,
    events: Option<Items<'a>>,
    links: Option<Items<'a>>,
    hex: [OnceCell<Vec<String>>; 3],
    child_counts: OnceCell<Vec<i64>>,
    link_hex: [OnceCell<Vec<String>>; 2],
}

const HEX_TRACE: usize = 0;
const HEX_SPAN: usize = 1;
const HEX_PARENT: usize = 2;

impl<'a> BatchView<'a> {
    /// A view of `batch`, a block's rows with its `dedicated` columns (batches read back
    /// from Parquet do not carry them in their schema).
    pub fn new(batch: &'a RecordBatch, dedicated: &[DedicatedColumn]) -> BatchView<'a> {
        let schema = batch.schema_ref();
        let cols: HashMap<&'a str, usize> =
            schema.fields().iter().enumerate().map(|(i, f)| (f.name().as_str(), i)).collect();
        let mut span_dedicated = HashMap::new();
        let mut resource_dedicated = HashMap::new();
        let (mut si, mut ri) = (0, 0);
        for d in dedicated {
            let (map, i) = match d.scope {
                DedicatedScope::Span => (&mut span_dedicated, &mut si),
                DedicatedScope::Resource => (&mut resource_dedicated, &mut ri),
            };
            let name = schema::dedicated_column_name(d.scope, *i);
            *i += 1;
            if let Some(&c) = cols.get(name.as_str()) {
                let col = batch.column(c);
                let arr = match d.typ {
                    DedicatedType::String => DedicatedArray::Str(col.as_string::<i32>()),
                    DedicatedType::Int => DedicatedArray::Int(col.as_primitive::<Int64Type>()),
                };
                map.entry(d.name.clone()).or_insert(arr);
            }
        }
        let list = |name: &str| cols.get(name).map(|&c| batch.column(c).as_list::<i32>());
        BatchView {
            batch,
            rows: batch.num_rows(),
            span_attrs: list(schema::ATTRS).map(AttrList::new),
            resource_attrs: list(schema::RESOURCE_ATTRS).map(AttrList::new),
            scope_attrs: list(schema::SCOPE_ATTRS).map(AttrList::new),
            events: list(schema::EVENTS).map(|l| Items::new(l, schema::EVENT_ATTRS)),
            links: list(schema::LINKS).map(|l| Items::new(l, schema::LINK_ATTRS)),
            cols,
            span_dedicated,
            resource_dedicated,
            hex: Default::default(),
            child_counts: OnceCell::new(),
            link_hex: Default::default(),
        }
    }

    pub fn column(&self, name: &str) -> Option<&'a dyn Array> {
        self.cols.get(name).map(|&c| self.batch.column(c).as_ref())
    }

    pub fn u64s(&self, name: &str) -> Option<&'a UInt64Array> {
        self.column(name).map(|c| c.as_primitive::<UInt64Type>())
    }

    pub fn i32s(&self, name: &str) -> Option<&'a Int32Array> {
        self.column(name).map(|c| c.as_primitive::<Int32Type>())
    }

    pub fn strs(&self, name: &str) -> Option<&'a StringArray> {
        self.column(name).map(|c| c.as_string::<i32>())
    }

    pub fn u8s(&self, name: &str) -> Option<&'a UInt8Array> {
        self.column(name).map(|c| c.as_primitive::<UInt8Type>())
    }

    pub fn trace_id(&self, row: usize) -> &'a [u8] {
        self.column(schema::TRACE_ID).expect("trace_id column").as_fixed_size_binary().value(row)
    }

    pub fn span_id(&self, row: usize) -> &'a [u8] {
        self.column(schema::SPAN_ID).expect("span_id column").as_fixed_size_binary().value(row)
    }

    /// The dedicated column holding `scope`'s attribute `name`, if the block has one.
    pub fn dedicated(&self, scope: AttributeScope, name: &str) -> Option<DedicatedArray<'a>> {
        match scope {
            AttributeScope::Span => self.span_dedicated.get(name).copied(),
            AttributeScope::Resource => self.resource_dedicated.get(name).copied(),
            _ => None,
        }
    }

    pub fn events(&self) -> Option<&Items<'a>> {
        self.events.as_ref()
    }

    pub fn links(&self) -> Option<&Items<'a>> {
        self.links.as_ref()
    }

    /// `scope.name` of `row` (span or resource; unscoped tries the span first).
    #[inline]
    pub fn attr(&self, a: &Attribute, row: usize, item: ItemIndex) -> Value<'a> {
        match a.scope {
            AttributeScope::Span => self.span_attr(&a.name, row),
            AttributeScope::Resource => self.resource_attr(&a.name, row),
            AttributeScope::None => match self.span_attr(&a.name, row) {
                Value::Nil => self.resource_attr(&a.name, row),
                v => v,
            },
            AttributeScope::Instrumentation => {
                self.scope_attrs.as_ref().map_or(Value::Nil, |l| l.get(row, &a.name))
            }
            AttributeScope::Event => match (self.events.as_ref(), item.event) {
                (Some(ev), Some(k)) => {
                    ev.nth(row, k).map_or(Value::Nil, |e| ev.attrs.get(e, &a.name))
                }
                _ => Value::Nil,
            },
            AttributeScope::Link => match (self.links.as_ref(), item.link) {
                (Some(ls), Some(k)) => {
                    ls.nth(row, k).map_or(Value::Nil, |e| ls.attrs.get(e, &a.name))
                }
                _ => Value::Nil,
            },
        }
    }

    #[inline]
    fn span_attr(&self, name: &str, row: usize) -> Value<'a> {
        if let Some(d) = self.span_dedicated.get(name) {
            if let v @ (Value::Str(_) | Value::Int(_)) = d.get(row) {
                return v;
            }
        }
        self.span_attrs.as_ref().map_or(Value::Nil, |l| l.get(row, name))
    }

    #[inline]
    fn resource_attr(&self, name: &str, row: usize) -> Value<'a> {
        if name == "service.name" {
            if let Some(s) = self.strs(schema::RESOURCE_SERVICE_NAME) {
                if s.is_valid(row) {
                    return Value::Str(s.value(row));
                }
            }
        } else if let Some(d) = self.resource_dedicated.get(name) {
            if let v @ (Value::Str(_) | Value::Int(_)) = d.get(row) {
                return v;
            }
        }
        self.resource_attrs.as_ref().map_or(Value::Nil, |l| l.get(row, name))
    }

    /// Attribute lists of `scope` (for tag discovery).
    pub fn attr_list(&self, scope: AttributeScope) -> Option<&AttrList<'a>> {
        match scope {
            AttributeScope::Span => self.span_attrs.as_ref(),
            AttributeScope::Resource => self.resource_attrs.as_ref(),
            AttributeScope::Instrumentation => self.scope_attrs.as_ref(),
            AttributeScope::Event => self.events.as_ref().map(|e| &e.attrs),
            AttributeScope::Link => self.links.as_ref().map(|e| &e.attrs),
            AttributeScope::None => None,
        }
    }

    /// Dedicated columns of `scope` by attribute name.
    pub fn dedicated_columns(
        &self,
        scope: AttributeScope,
    ) -> impl Iterator<Item = (&String, &DedicatedArray<'a>)> {
        match scope {
            AttributeScope::Span => self.span_dedicated.iter(),
            _ => self.resource_dedicated.iter(),
        }
    }

    fn hex(&self, which: usize) -> &Vec<String> {
        self.hex[which].get_or_init(|| {
            let name = [schema::TRACE_ID, schema::SPAN_ID, schema::PARENT_SPAN_ID][which];
            let Some(col) = self.column(name) else { return vec![String::new(); self.rows] };
            let col = col.as_fixed_size_binary();
            (0..self.rows)
                .map(|i| if col.is_valid(i) { hex(col.value(i)) } else { String::new() })
                .collect()
        })
    }

    /// Children of each row within its trace (from `parent_index`).
    fn child_counts(&self) -> &Vec<i64> {
        self.child_counts.get_or_init(|| {
            let mut counts = vec![0i64; self.rows];
            let (Some(parents), Some(ids)) =
                (self.i32s(schema::PARENT_INDEX), self.column(schema::TRACE_ID))
            else {
                return counts;
            };
            let ids = ids.as_fixed_size_binary();
            let mut start = 0;
            for i in 0..self.rows {
                if i > 0 && ids.value(i) != ids.value(i - 1) {
                    start = i;
                }
                let p = parents.value(i);
                if p >= 0 && start + (p as usize) < self.rows {
                    counts[start + p as usize] += 1;
                }
            }
            counts
        })
    }

    /// Intrinsic `i` of `row` (`item` picks the event or link for their fields).
    pub fn intrinsic<'s>(&'s self, i: Intrinsic, row: usize, item: ItemIndex) -> Value<'s> {
        use Intrinsic::*;
        let str_or_nil = |col: &str| match self.strs(col) {
            Some(a) if a.is_valid(row) => Value::Str(a.value(row)),
            _ => Value::Nil,
        };
        match i {
            Duration => self
                .u64s(schema::DURATION)
                .map_or(Value::Nil, |a| Value::Duration(a.value(row) as i64)),
            Name => str_or_nil(schema::NAME),
            Status => {
                self.i32s(schema::STATUS_CODE).map_or(Value::Nil, |a| Value::Status(a.value(row)))
            }
            StatusMessage => match self.strs(schema::STATUS_MESSAGE) {
                Some(a) if a.is_valid(row) => Value::Str(a.value(row)),
                Some(_) => Value::Str(""),
                None => Value::Nil,
            },
            Kind => self.i32s(schema::KIND).map_or(Value::Nil, |a| Value::Kind(a.value(row))),
            ChildCount => Value::Int(self.child_counts()[row]),
            SpanId => Value::Str(&self.hex(HEX_SPAN)[row]),
            ParentId => match &self.hex(HEX_PARENT)[row] {
                s if s.is_empty() => Value::Nil,
                s => Value::Str(s),
            },
            Parent => match self.i32s(schema::PARENT_INDEX) {
                Some(a) if a.value(row) >= 0 => Value::Int(a.value(row) as i64),
                _ => Value::Nil,
            },
            // A trace whose root was not received has empty root names (as Tempo stores them).
            TraceRootSpan | TraceRootService => {
                let col = if i == TraceRootSpan {
                    schema::TRACE_ROOT_NAME
                } else {
                    schema::TRACE_ROOT_SERVICE
                };
                match self.strs(col) {
                    Some(a) if a.is_valid(row) => Value::Str(a.value(row)),
                    Some(_) => Value::Str(""),
                    None => Value::Nil,
                }
            }
            TraceDuration => match (self.u64s(schema::TRACE_START), self.u64s(schema::TRACE_END)) {
                (Some(s), Some(e)) => {
                    Value::Duration(e.value(row).saturating_sub(s.value(row)) as i64)
                }
                _ => Value::Nil,
            },
            TraceId => Value::Str(&self.hex(HEX_TRACE)[row]),
            NestedSetLeft => self
                .i32s(schema::NESTED_SET_LEFT)
                .map_or(Value::Nil, |a| Value::Int(a.value(row) as i64)),
            NestedSetRight => self
                .i32s(schema::NESTED_SET_RIGHT)
                .map_or(Value::Nil, |a| Value::Int(a.value(row) as i64)),
            NestedSetParent => self
                .i32s(schema::PARENT_INDEX)
                .map_or(Value::Nil, |a| Value::Int(a.value(row) as i64)),
            EventName | EventTimeSinceStart => {
                let (Some(ev), Some(k)) = (self.events.as_ref(), item.event) else {
                    return Value::Nil;
                };
                let Some(e) = ev.nth(row, k) else { return Value::Nil };
                if i == EventName {
                    Value::Str(ev.items.column(1).as_string::<i32>().value(e))
                } else {
                    let t = ev.items.column(0).as_primitive::<UInt64Type>().value(e);
                    let start = self.u64s(schema::START).map_or(0, |a| a.value(row));
                    Value::Duration(t as i64 - start as i64)
                }
            }
            LinkTraceId | LinkSpanId => {
                let (Some(ls), Some(k)) = (self.links.as_ref(), item.link) else {
                    return Value::Nil;
                };
                let Some(e) = ls.nth(row, k) else { return Value::Nil };
                let which = if i == LinkTraceId { 0 } else { 1 };
                let ids = self.link_hex[which].get_or_init(|| {
                    let col = ls.items.column(which).as_binary::<i32>();
                    (0..col.len()).map(|j| hex(col.value(j))).collect()
                });
                Value::Str(&ids[e])
            }
            InstrumentationName => str_or_nil(schema::SCOPE_NAME),
            InstrumentationVersion => str_or_nil(schema::SCOPE_VERSION),
        }
    }
}

/// Which event and link of a span the event- and link-scoped fields read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ItemIndex {
    pub event: Option<usize>,
    pub link: Option<usize>,
}

pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}
