//! Tag discovery for autocomplete: attribute names per scope, and the distinct values of one
//! attribute or intrinsic, optionally only over spans a filter query matches.

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::{Array, RecordBatch};

use super::eval::Eval;
use super::fields::{BatchView, ItemIndex};
use super::scan::{chunk_batch, for_each_row_group, Source};
use super::value::{go_duration, kind_name, status_name, Value};
use super::SearchPlan;
use crate::block::{BlockError, BlockReader};
use crate::schema::{self, DedicatedColumn};
use crate::traceql::{Attribute, AttributeScope, Intrinsic};

/// What to collect.
#[derive(Clone, Debug)]
pub enum TagTarget {
    /// Attribute names of these scopes (span, resource, event, link, instrumentation).
    Names(Vec<AttributeScope>),
    /// Values of an attribute.
    AttributeValues(Attribute),
    /// Values of an intrinsic.
    IntrinsicValues(Intrinsic),
}

/// Collected tags: names per scope, or typed values (`(type, value)`).
#[derive(Debug, Default)]
pub struct Tags {
    pub names: BTreeMap<&'static str, BTreeSet<String>>,
    pub values: BTreeSet<(&'static str, String)>,
    pub bytes: usize,
    pub inspected_bytes: u64,
    /// The bound on `bytes` (0: none), as Tempo's distinct-value collector: a new name or
    /// value that would pass it is not kept, and collection stops.
    pub max_bytes: usize,
    pub exceeded: bool,
}

impl Tags {
    fn full(&self, max_bytes: usize) -> bool {
        self.exceeded || (max_bytes > 0 && self.bytes >= max_bytes)
    }

    fn add_name(&mut self, scope: &'static str, name: &str) {
        let set = self.names.entry(scope).or_default();
        if set.contains(name) {
            return;
        }
        if self.max_bytes > 0 && self.bytes + name.len() > self.max_bytes {
            self.exceeded = true;
            return;
        }
        self.bytes += name.len();
        set.insert(name.to_string());
    }

    fn add_value(&mut self, v: &Value<'_>) {
        let (ty, s) = match *v {
            Value::Nil => return,
            Value::Array(_) => {
                // each element is a value of the attribute (what `= elem` finds)
                v.elements().for_each(|e| self.add_value(&e));
                return;
            }
            Value::Str(s) => ("string", s.to_string()),
            Value::Int(i) => ("int", i.to_string()),
            Value::Float(f) => ("float", f.to_string()),
            Value::Bool(b) => ("bool", b.to_string()),
            Value::Duration(d) => ("duration", go_duration(d)),
            Value::Status(c) => ("keyword", status_name(c).to_string()),
            Value::Kind(c) => ("keyword", kind_name(c).to_string()),
        };
        let len = s.len();
        let key = (ty, s);
        if self.max_bytes > 0 && self.bytes + len > self.max_bytes {
            self.exceeded |= !self.values.contains(&key);
            return;
        }
        if self.values.insert(key) {
            self.bytes += len;
        }
    }
}

pub fn scope_name(s: AttributeScope) -> &'static str {
    match s {
        AttributeScope::Span => "span",
        AttributeScope::Resource => "resource",
        AttributeScope::Event => "event",
        AttributeScope::Link => "link",
        AttributeScope::Instrumentation => "instrumentation",
        AttributeScope::None => "none",
    }
}

fn columns(
    target: &TagTarget,
    filter: Option<&SearchPlan>,
    dedicated: &[DedicatedColumn],
) -> Vec<String> {
    let mut cols: Vec<String> = filter.map(|p| p.columns_for(dedicated)).unwrap_or_default();
    cols.push(schema::TRACE_ID.to_string());
    let mut add = |c: &str| cols.push(c.to_string());
    match target {
        TagTarget::Names(scopes) => {
            for s in scopes {
                match s {
                    AttributeScope::Span => add(schema::ATTRS),
                    AttributeScope::Resource => {
                        add(schema::RESOURCE_ATTRS);
                        add(schema::RESOURCE_SERVICE_NAME);
                    }
                    AttributeScope::Event => add(schema::EVENTS),
                    AttributeScope::Link => add(schema::LINKS),
                    AttributeScope::Instrumentation => add(schema::SCOPE_ATTRS),
                    AttributeScope::None => {}
                }
            }
            let (mut si, mut ri) = (0, 0);
            for d in dedicated {
                let i = match d.scope {
                    schema::DedicatedScope::Span => &mut si,
                    schema::DedicatedScope::Resource => &mut ri,
                };
                cols.push(schema::dedicated_column_name(d.scope, *i));
                *i += 1;
            }
        }
        TagTarget::AttributeValues(a) => {
            let mut p = SearchPlan::from_pipeline(
                crate::traceql::Pipeline { stages: Vec::new() },
                Default::default(),
            );
            p.use_field_attribute(a);
            cols.extend(p.columns_for(dedicated));
        }
        TagTarget::IntrinsicValues(i) => {
            let mut p = SearchPlan::from_pipeline(
                crate::traceql::Pipeline { stages: Vec::new() },
                Default::default(),
            );
            p.use_field_intrinsic(*i);
            cols.extend(p.columns_for(dedicated));
        }
    }
    cols.sort();
    cols.dedup();
    cols
}

/// Collects tags from `sources`, over the spans `filter` matches (its first spanset filter;
/// all spans without one), until `max_bytes` of names / values are held.
pub fn collect_tags(
    sources: &[Source],
    target: &TagTarget,
    filter: Option<&SearchPlan>,
    max_bytes: usize,
    tags: &mut Tags,
) -> u64 {
    let mut errors = 0;
    tags.max_bytes = max_bytes;
    for source in sources {
        if tags.full(max_bytes) {
            break;
        }
        let r = match source {
            Source::Block(b) => collect_block(b, target, filter, max_bytes, tags),
            Source::Chunk(c, d) => chunk_batch(c).map(|b| {
                if let Some(batch) = b {
                    tags.inspected_bytes += c.size();
                    collect_batch(&batch, d, target, filter, tags);
                }
            }),
            Source::Batch(b, d) => {
                collect_batch(b, d, target, filter, tags);
                Ok(())
            }
        };
        if r.is_err() {
            errors += 1;
        }
    }
    errors
}

fn collect_block(
    block: &BlockReader,
    target: &TagTarget,
    filter: Option<&SearchPlan>,
    max_bytes: usize,
    tags: &mut Tags,
) -> Result<(), BlockError> {
    let dedicated = block.dedicated_columns();
    let cols = columns(target, filter, dedicated);
    let o = filter.map(|p| p.options.clone()).unwrap_or_default();
    if tags.full(max_bytes) {
        return Ok(());
    }
    for_each_row_group(block, &cols, &o, |batch, bytes| {
        tags.inspected_bytes += bytes;
        collect_batch(batch, dedicated, target, filter, tags);
        !tags.full(max_bytes)
    })
}

fn collect_batch(
    batch: &RecordBatch,
    dedicated: &[DedicatedColumn],
    target: &TagTarget,
    filter: Option<&SearchPlan>,
    tags: &mut Tags,
) {
    let view = BatchView::new(batch, dedicated);
    let rows: Vec<usize> = match filter.and_then(|p| p.filters.first().map(|f| (p, *f))) {
        Some((p, f)) => {
            let ev = Eval::new(&view, &p.regexes);
            // SAFETY: filter pointers point into the plan's pipeline (see SearchPlan).
            let m = ev.filter(unsafe { &*f });
            (0..view.rows).filter(|&i| m[i]).collect()
        }
        None => (0..view.rows).collect(),
    };
    if rows.is_empty() {
        return;
    }
    match target {
        TagTarget::Names(scopes) => {
            for &s in scopes {
                let name = scope_name(s);
                if let Some(list) = view.attr_list(s) {
                    match s {
                        AttributeScope::Event | AttributeScope::Link => {
                            // Items of the chosen rows.
                            let items = if s == AttributeScope::Event {
                                view.events()
                            } else {
                                view.links()
                            };
                            if let Some(items) = items {
                                for &r in &rows {
                                    let mut k = 0;
                                    while let Some(e) = items.nth(r, k) {
                                        for (key, _) in list.entries(e) {
                                            tags.add_name(name, key);
                                        }
                                        k += 1;
                                    }
                                }
                            }
                        }
                        _ => {
                            for &r in &rows {
                                for (key, _) in list.entries(r) {
                                    tags.add_name(name, key);
                                }
                            }
                        }
                    }
                }
                if matches!(s, AttributeScope::Span | AttributeScope::Resource) {
                    for (key, col) in view.dedicated_columns(s) {
                        if rows.iter().any(|&r| !col.get(r).is_nil()) {
                            tags.add_name(name, key);
                        }
                    }
                }
                if s == AttributeScope::Resource {
                    if let Some(svc) = view.strs(schema::RESOURCE_SERVICE_NAME) {
                        if rows.iter().any(|&r| svc.is_valid(r)) {
                            tags.add_name(name, "service.name");
                        }
                    }
                }
            }
        }
        TagTarget::AttributeValues(a) => {
            let items = matches!(a.scope, AttributeScope::Event | AttributeScope::Link);
            for &r in &rows {
                if items {
                    let list =
                        if a.scope == AttributeScope::Event { view.events() } else { view.links() };
                    let Some(list) = list else { continue };
                    let mut k = 0;
                    while list.nth(r, k).is_some() {
                        let idx = if a.scope == AttributeScope::Event {
                            ItemIndex { event: Some(k), link: None }
                        } else {
                            ItemIndex { event: None, link: Some(k) }
                        };
                        tags.add_value(&view.attr(a, r, idx));
                        k += 1;
                    }
                } else {
                    tags.add_value(&view.attr(a, r, ItemIndex::default()));
                }
            }
        }
        TagTarget::IntrinsicValues(i) => {
            let per_event = matches!(i, Intrinsic::EventName | Intrinsic::EventTimeSinceStart);
            for &r in &rows {
                if per_event {
                    let Some(ev) = view.events() else { continue };
                    let mut k = 0;
                    while ev.nth(r, k).is_some() {
                        tags.add_value(&view.intrinsic(
                            *i,
                            r,
                            ItemIndex { event: Some(k), link: None },
                        ));
                        k += 1;
                    }
                } else {
                    tags.add_value(&view.intrinsic(*i, r, ItemIndex::default()));
                }
            }
        }
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    #[test]
    fn names_and_values_stop_at_max_bytes_as_tempo() {
        let mut t = Tags { max_bytes: 10, ..Default::default() };
        t.add_value(&Value::Str("abcd"));
        t.add_value(&Value::Str("abcd")); // known: free
        t.add_value(&Value::Str("efghij")); // exactly 10
        assert!(!t.exceeded);
        t.add_value(&Value::Str("abcd")); // known, at the bound: not a new value
        assert!(!t.exceeded);
        t.add_value(&Value::Str("k")); // would pass the bound: not kept
        assert_eq!(t.values.len(), 2);
        assert!(t.exceeded && t.full(10));
        let mut n = Tags { max_bytes: 3, ..Default::default() };
        n.add_name("span", "ab");
        n.add_name("span", "ab");
        n.add_name("span", "cd");
        assert_eq!(n.names["span"].len(), 1);
        assert!(n.exceeded);
    }
}
