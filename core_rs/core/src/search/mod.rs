//! TraceQL search over span rows: blocks, head chunks and live traces alike.
//!
//! A [`SearchPlan`] names the columns a query reads. Each batch of complete traces is
//! evaluated column at a time ([`eval`]): every spanset filter becomes one boolean mask over
//! the batch, every `by()` / aggregate expression one value column; then each trace runs the
//! pipeline over those ([`spanset`]), with structural operators walking `parent_index`.
//! Matched traces become [`TraceResult`]s, combined per trace id across sources.

pub mod eval;
pub mod fields;
pub mod metrics;
pub mod plan;
pub mod result;
pub mod scan;
pub mod spanset;
pub mod tags;
pub mod value;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::RecordBatch;

pub use plan::{OutField, SearchOptions, SearchPlan};
pub use result::{write_json_array, OutValue, ServiceStats, SpanOut, SpansetOut, TraceResult};
pub use scan::{scan_sources, search_sources, BatchSink, JobStats, Source};

use eval::{Col, Eval};
use fields::{BatchView, ItemIndex};
use spanset::{Spanset, TraceCtx};

use crate::schema::{self, DedicatedColumn};

/// Matched traces of one job, by trace id, in the order first found.
#[derive(Default)]
pub struct Found {
    pub traces: Vec<TraceResult>,
    index: HashMap<[u8; 16], usize>,
}

impl Found {
    pub fn add(&mut self, t: TraceResult) {
        match self.index.get(&t.trace_id) {
            Some(&i) => self.traces[i].combine(t),
            None => {
                self.index.insert(t.trace_id, self.traces.len());
                self.traces.push(t);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.traces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }
}

/// What scanning a batch inspected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub spans: u64,
    pub traces: u64,
}

/// Row ranges of the traces in a batch sorted by trace id.
pub fn trace_runs(batch: &RecordBatch) -> Vec<(usize, usize)> {
    let Some(col) = batch.column_by_name(schema::TRACE_ID) else { return Vec::new() };
    let ids = col.as_fixed_size_binary();
    let n = batch.num_rows();
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        if i == n || ids.value(i) != ids.value(start) {
            runs.push((start, i));
            start = i;
        }
    }
    runs
}

/// Whether some row of `batch` matches the plan's single filter (true without one):
/// `batch` needs only the columns of [`SearchPlan::prefilter_columns`].
pub fn filter_matches_any(
    plan: &SearchPlan,
    batch: &RecordBatch,
    dedicated: &[DedicatedColumn],
) -> bool {
    let Some(f) = plan.single_filter else { return true };
    let view = BatchView::new(batch, dedicated);
    // SAFETY: filter pointers point into `plan.pipeline` (see SearchPlan).
    Eval::new(&view, &plan.regexes).filter(unsafe { &*f }).iter().any(|&x| x)
}

/// What receives the matched spansets of each trace a batch evaluation finds.
pub trait TraceSink {
    /// True once no more traces are wanted (the batch stops there).
    fn full(&self) -> bool {
        false
    }
    /// The spansets the pipeline left for the trace at rows `start..end` (never empty).
    fn trace(&mut self, view: &BatchView<'_>, start: usize, end: usize, sets: &[Spanset<'_>]);
}

/// Collects matched traces as search results, up to the plan's limit.
pub struct SearchSink<'p> {
    pub plan: &'p SearchPlan,
    pub found: &'p mut Found,
}

impl TraceSink for SearchSink<'_> {
    fn full(&self) -> bool {
        self.plan.options.limit > 0 && self.found.len() >= self.plan.options.limit
    }
    fn trace(&mut self, view: &BatchView<'_>, start: usize, end: usize, sets: &[Spanset<'_>]) {
        self.found.add(trace_result(self.plan, view, start, end, sets));
    }
}

/// Evaluates `plan` over `batch` (whole traces, sorted by trace id), adding matched traces
/// to `found` until it holds `plan.options.limit` traces.
pub fn search_batch(
    plan: &SearchPlan,
    batch: &RecordBatch,
    dedicated: &[DedicatedColumn],
    found: &mut Found,
) -> BatchStats {
    eval_batch(plan, batch, dedicated, &mut SearchSink { plan, found })
}

/// Evaluates `plan`'s pipeline over `batch` (whole traces, sorted by trace id) and hands
/// each trace with matches, within the options' time range, to `sink`.
pub fn eval_batch(
    plan: &SearchPlan,
    batch: &RecordBatch,
    dedicated: &[DedicatedColumn],
    sink: &mut dyn TraceSink,
) -> BatchStats {
    let runs = trace_runs(batch);
    let mut stats = BatchStats { spans: batch.num_rows() as u64, traces: runs.len() as u64 };
    if runs.is_empty() {
        return stats;
    }
    let view = BatchView::new(batch, dedicated);
    let ev = Eval::new(&view, &plan.regexes);
    let (t_start, t_end) = (view.u64s(schema::TRACE_START), view.u64s(schema::TRACE_END));
    let in_range = |row: usize| {
        let o = &plan.options;
        let s = t_start.map_or(0, |a| a.value(row));
        let e = t_end.map_or(u64::MAX, |a| a.value(row));
        (o.end_ns == 0 || s <= o.end_ns) && (o.start_ns == 0 || e >= o.start_ns)
    };
    // Filters first: with a single filter, traces without a matching row are skipped
    // before anything else is computed.
    let masks: Vec<(usize, Vec<bool>)> = plan
        .filters
        .iter()
        .map(|&f| {
            // SAFETY: filter pointers point into `plan.pipeline` (see SearchPlan).
            let f = unsafe { &*f };
            (f as *const _ as usize, ev.filter(f))
        })
        .collect();
    if let Some(f) = plan.single_filter {
        let m = &masks.iter().find(|(k, _)| *k == f as usize).expect("mask").1;
        if !m.iter().any(|&x| x) {
            return stats;
        }
    }
    let values: Vec<(usize, Col<'_>)> = plan
        .value_exprs
        .iter()
        .map(|&e| {
            // SAFETY: as above.
            let e = unsafe { &*e };
            (e as *const _ as usize, ev.values(e))
        })
        .collect();
    let mask_of = |e: &crate::traceql::FieldExpr| -> &[bool] {
        let k = e as *const _ as usize;
        &masks.iter().find(|(a, _)| *a == k).expect("filter mask").1
    };
    let value_of = |e: &crate::traceql::FieldExpr| -> &Col<'_> {
        let k = e as *const _ as usize;
        &values.iter().find(|(a, _)| *a == k).expect("value column").1
    };
    let parents: &[i32] = view.i32s(schema::PARENT_INDEX).map_or(&[], |a| a.values());
    let roots: Vec<bool> = match view.column(schema::PARENT_SPAN_ID) {
        Some(p) => (0..view.rows).map(|r| p.is_null(r)).collect(),
        None => Vec::new(),
    };
    let single = plan.single_filter.map(|f| mask_of(unsafe { &*f }));
    for &(start, end) in &runs {
        if sink.full() {
            stats.spans = start as u64;
            break;
        }
        if let Some(m) = single {
            if !m[start..end].iter().any(|&x| x) {
                continue;
            }
        }
        if !in_range(start) {
            continue;
        }
        let ctx =
            TraceCtx { start, end, parents, roots: &roots, masks: &mask_of, values: &value_of };
        let sets = match single {
            Some(m) => {
                let rows: Vec<u32> = (start..end).filter(|&r| m[r]).map(|r| r as u32).collect();
                vec![Spanset { rows, attrs: Vec::new() }]
            }
            None => ctx.pipeline(&plan.pipeline, vec![ctx.all()]),
        };
        if sets.is_empty() {
            continue;
        }
        sink.trace(&view, start, end, &sets);
    }
    stats
}

fn trace_result(
    plan: &SearchPlan,
    view: &BatchView<'_>,
    start: usize,
    end: usize,
    sets: &[Spanset<'_>],
) -> TraceResult {
    let str_at = |col: &str, row: usize| {
        view.strs(col)
            .filter(|a| arrow_array::Array::is_valid(*a, row))
            .map(|a| a.value(row).to_string())
    };
    let mut trace_id = [0u8; 16];
    trace_id.copy_from_slice(view.trace_id(start));
    let starts = view.u64s(schema::START).expect("start column");
    let durations = view.u64s(schema::DURATION).expect("duration column");
    let names = view.strs(schema::NAME);
    let spss = plan.options.spans_per_spanset;
    let keys: Vec<std::sync::Arc<str>> =
        plan.out_fields.iter().map(|f| SearchPlan::out_key(f).into()).collect();
    let spansets = sets
        .iter()
        .map(|ss| SpansetOut {
            matched: ss.rows.len() as u32,
            spans: ss
                .rows
                .iter()
                .take(spss)
                .map(|&r| {
                    let r = r as usize;
                    SpanOut {
                        span_id: view.span_id(r).try_into().unwrap_or([0; 8]),
                        name: if plan.with_name {
                            names.map(|n| n.value(r).to_string())
                        } else {
                            None
                        },
                        start_ns: starts.value(r),
                        duration_ns: durations.value(r),
                        attrs: plan
                            .out_fields
                            .iter()
                            .enumerate()
                            .filter_map(|(k, f)| {
                                let v = match f {
                                    OutField::Attribute(a) => view.attr(a, r, ItemIndex::default()),
                                    OutField::Intrinsic(i) => {
                                        view.intrinsic(*i, r, ItemIndex::default())
                                    }
                                };
                                OutValue::from_value(&v).map(|v| (keys[k].clone(), v))
                            })
                            .collect(),
                    }
                })
                .collect(),
            attrs: ss
                .attrs
                .iter()
                .filter_map(|(k, v)| OutValue::from_value(v).map(|v| (k.clone(), v)))
                .collect(),
        })
        .collect();
    let mut service_stats = std::collections::BTreeMap::<String, ServiceStats>::new();
    let services = view.strs(schema::RESOURCE_SERVICE_NAME);
    let statuses = view.i32s(schema::STATUS_CODE);
    for r in start..end {
        let svc = match services {
            Some(a) if arrow_array::Array::is_valid(a, r) => a.value(r),
            _ => continue,
        };
        if !service_stats.contains_key(svc) {
            service_stats.insert(svc.to_string(), ServiceStats::default());
        }
        let e = service_stats.get_mut(svc).expect("inserted above");
        e.spans += 1;
        if statuses.is_some_and(|s| s.value(r) == 2) {
            e.errors += 1;
        }
    }
    TraceResult {
        trace_id,
        root_service: str_at(schema::TRACE_ROOT_SERVICE, start),
        root_name: str_at(schema::TRACE_ROOT_NAME, start),
        start_ns: view.u64s(schema::TRACE_START).map_or(0, |a| a.value(start)),
        end_ns: view.u64s(schema::TRACE_END).map_or(0, |a| a.value(start)),
        spansets,
        service_stats,
    }
}
