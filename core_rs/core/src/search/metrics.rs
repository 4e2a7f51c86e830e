//! TraceQL metrics, span side: a metrics query (`{…} | rate() by (…)`, …) compiled to one
//! [`SearchPlan`] per bracketed pipeline, and a scan that emits, per matched span whose start
//! lies in the window `(start, end]` (Tempo's `MetricsEvaluator.Do`), its series (the
//! distinct `by()` value tuple), its start time and the value the function reads, as columns.
//! The per-step math (counts, sums, log2 buckets, quantiles) happens over those columns
//! elsewhere (the Cython kernels).
//!
//! Values follow Tempo (`pkg/traceql/ast_metrics.go`, `engine_metrics.go`): the span
//! `duration` reads as seconds for `*_over_time` and as nanoseconds for the log2 buckets of
//! `quantile_over_time` / `histogram_over_time` (bucket `2^ceil(log2(ns))` / 1e9); other
//! durations read as nanoseconds; an attribute reads as its number (NaN when absent or not
//! numeric). Buckets take integers and durations only, at least 2; other spans are dropped
//! from those functions (NaN here). `compare()` emits one row per (span, attribute value)
//! instead, keyed by attribute name and value, flagged baseline or selection.

use std::collections::HashMap;

use arrow_array::{Array, RecordBatch, StringArray};

use super::fields::{hex, BatchView, ItemIndex};
use super::plan::{SearchOptions, SearchPlan};
use super::result::OutValue;
use super::scan::{scan_sources, BatchSink, JobStats, Source};
use super::spanset::Spanset;
use super::value::Value;
use super::{eval_batch, BatchStats, TraceSink};
use crate::schema::{self, DedicatedColumn};
use crate::traceql::{
    self, ArithOp, AttributeScope, Field, FieldExpr, Intrinsic, MetricsExpr, MetricsFirstStage,
    QueryBody, SecondStage, SpansetExpr,
};

/// The HTTP 400 body for a query without a metrics pipeline (Tempo's
/// `CompileMetricsQueryRangeNonRaw`).
pub const NOT_METRICS: &str = "not a metrics query";

/// Tempo's most `compare()` exemplars kept per side (`maxExemplars`).
const MAX_EXEMPLARS: usize = 100;

/// One bracketed pipeline of a metrics query and its first-stage function.
pub struct MetricsLeaf {
    pub plan: SearchPlan,
    /// Tempo's name of the function (`rate`, `quantile_over_time`, `compare`, …).
    pub func: &'static str,
    pub by: Vec<Field>,
    /// Label names of `by` (Tempo's `Attribute.String()`).
    pub by_names: Vec<String>,
    pub field: Option<Field>,
    pub quantiles: Vec<f64>,
    /// Divisor turning a log2 bucket of the field into its label value (1e9 for durations).
    pub bucket_scale: f64,
    pub compare: Option<Compare>,
    /// The request's step (ns).
    pub step_ns: u64,
}

/// `compare({filter}, topN, start, end)`.
pub struct Compare {
    pub filter: Box<FieldExpr>,
    pub top_n: i64,
    pub start: i64,
    pub end: i64,
}

// SAFETY: as SearchPlan (the only non-Send part); the filter box is never mutated.
unsafe impl Send for MetricsLeaf {}
unsafe impl Sync for MetricsLeaf {}

/// A compiled metrics query: its leaves and the expression tree over them as JSON
/// (`{"leaf": i}` or `{"op": "+", "lhs": …, "rhs": …}`, each with `second` stages).
pub struct MetricsQuery {
    pub leaves: Vec<MetricsLeaf>,
    pub tree: serde_json::Value,
    pub canonical: String,
}

impl MetricsQuery {
    /// Compiles `q` for spans starting in `(start_ns, end_ns]` in steps of `step_ns` (the
    /// aligned request; only `compare()` counts per step in Rust); the error is the HTTP 400
    /// body.
    pub fn compile(
        q: &str,
        start_ns: u64,
        end_ns: u64,
        step_ns: u64,
    ) -> Result<MetricsQuery, String> {
        let query = traceql::parse(q).map_err(|e| e.http_message())?;
        let canonical = query.to_string();
        let QueryBody::Metrics(m) = query.body else { return Err(NOT_METRICS.to_string()) };
        let options = SearchOptions { limit: 0, spans_per_spanset: 0, start_ns, end_ns };
        let mut leaves = Vec::new();
        let mut tree = walk(m.expr, &options, &mut leaves)?;
        for l in &mut leaves {
            l.step_ns = step_ns;
        }
        if !m.second.is_empty() {
            let mut second = tree["second"].as_array().cloned().unwrap_or_default();
            second.extend(m.second.iter().map(second_json));
            tree["second"] = serde_json::Value::Array(second);
        }
        Ok(MetricsQuery { leaves, tree, canonical })
    }
}

fn second_json(s: &SecondStage) -> serde_json::Value {
    match s {
        SecondStage::TopK(k) => serde_json::json!({"topk": k}),
        SecondStage::BottomK(k) => serde_json::json!({"bottomk": k}),
        SecondStage::Filter { op, value } => serde_json::json!({"op": op.as_str(), "value": value}),
    }
}

fn walk(
    e: MetricsExpr,
    options: &SearchOptions,
    leaves: &mut Vec<MetricsLeaf>,
) -> Result<serde_json::Value, String> {
    match e {
        MetricsExpr::Math { op, lhs, rhs } => {
            let op = match op {
                ArithOp::Add => "+",
                ArithOp::Sub => "-",
                ArithOp::Mul => "*",
                ArithOp::Div => "/",
                _ => return Err(format!("{}unsupported operator", traceql::INVALID_QUERY_PREFIX)),
            };
            let lhs = walk(*lhs, options, leaves)?;
            let rhs = walk(*rhs, options, leaves)?;
            Ok(serde_json::json!({"op": op, "lhs": lhs, "rhs": rhs, "second": []}))
        }
        MetricsExpr::Pipeline { pipeline, first, second } => {
            let mut plan = SearchPlan::for_metrics(pipeline, options.clone());
            let leaf = leaf(&mut plan, first)?;
            let i = leaves.len();
            leaves.push(MetricsLeaf { plan, ..leaf });
            let second: Vec<_> = second.iter().map(second_json).collect();
            Ok(serde_json::json!({"leaf": i, "second": second}))
        }
    }
}

/// The leaf of `first` (its plan left empty: the caller moves the real one in).
fn leaf(plan: &mut SearchPlan, first: MetricsFirstStage) -> Result<MetricsLeaf, String> {
    use MetricsFirstStage as M;
    let options = plan.options.clone();
    let empty =
        move || SearchPlan::from_pipeline(traceql::Pipeline { stages: Vec::new() }, options);
    let (func, field, by, quantiles) = match first {
        M::Rate { by } => ("rate", None, by, Vec::new()),
        M::CountOverTime { by } => ("count_over_time", None, by, Vec::new()),
        M::MinOverTime { field, by } => ("min_over_time", Some(field), by, Vec::new()),
        M::MaxOverTime { field, by } => ("max_over_time", Some(field), by, Vec::new()),
        M::AvgOverTime { field, by } => ("avg_over_time", Some(field), by, Vec::new()),
        M::SumOverTime { field, by } => ("sum_over_time", Some(field), by, Vec::new()),
        M::QuantileOverTime { field, quantiles, by } => {
            ("quantile_over_time", Some(field), by, quantiles)
        }
        M::HistogramOverTime { field, by } => ("histogram_over_time", Some(field), by, Vec::new()),
        M::Compare { filter, top_n, start, end } => {
            let SpansetExpr::Filter(f) = *filter else {
                return Err(format!(
                    "{}compare() takes one spanset filter",
                    traceql::INVALID_QUERY_PREFIX
                ));
            };
            plan.read_expr(&f);
            plan.read_all_attributes();
            for i in [Intrinsic::Status, Intrinsic::TraceRootSpan, Intrinsic::TraceRootService] {
                plan.use_field_intrinsic(i);
            }
            return Ok(MetricsLeaf {
                plan: empty(),
                func: "compare",
                by: Vec::new(),
                by_names: Vec::new(),
                field: None,
                quantiles: Vec::new(),
                bucket_scale: 1.0,
                compare: Some(Compare { filter: Box::new(f), top_n, start, end }),
                step_ns: 0,
            });
        }
    };
    for f in by.iter().chain(field.as_ref()) {
        match f {
            Field::Attribute(a) => plan.use_field_attribute(a),
            Field::Intrinsic(i) => plan.use_field_intrinsic(*i),
        }
    }
    let bucket_scale = match &field {
        Some(Field::Intrinsic(
            Intrinsic::Duration | Intrinsic::TraceDuration | Intrinsic::EventTimeSinceStart,
        )) => 1e9,
        _ => 1.0,
    };
    Ok(MetricsLeaf {
        plan: empty(),
        func,
        by_names: by.iter().map(label_name).collect(),
        by,
        field,
        quantiles,
        bucket_scale,
        compare: None,
        step_ns: 0,
    })
}

/// Tempo's `Attribute.String()` for a label name: `resource.service.name`, `.foo`, and the
/// legacy intrinsic names (`name`, `status`, `rootServiceName`, …).
pub fn label_name(f: &Field) -> String {
    match f {
        Field::Attribute(a) => a.to_string(),
        Field::Intrinsic(i) => intrinsic_name(*i).to_string(),
    }
}

fn intrinsic_name(i: Intrinsic) -> &'static str {
    match i {
        Intrinsic::Duration => "duration",
        Intrinsic::Name => "name",
        Intrinsic::Status => "status",
        Intrinsic::StatusMessage => "statusMessage",
        Intrinsic::Kind => "kind",
        Intrinsic::TraceRootSpan => "rootName",
        Intrinsic::TraceRootService => "rootServiceName",
        Intrinsic::TraceDuration => "traceDuration",
        other => other.as_str(),
    }
}

/// A label value as handed out: nil, or an OTLP value.
pub type LabelValue = Option<OutValue>;

/// What one job's scan of one leaf produced.
#[derive(Default)]
pub struct MetricsOut {
    /// Distinct series keys, first-seen order: the `by()` values (nil included), or for
    /// `compare()` one `(attribute name, value)`.
    pub keys: Vec<Vec<LabelValue>>,
    /// `compare()` only: the attribute name of each key.
    pub key_names: Vec<String>,
    /// Per emitted row: series index (for `compare()`: key * 2 + 1 when in the selection;
    /// a key whose value is nil holds the attribute's totals).
    pub index: Vec<u32>,
    /// Per row: span start, unix ns.
    pub ts: Vec<i64>,
    /// Per row: the function's value (empty for `rate` / `count_over_time`; for
    /// `compare()` the row's count in its step, `ts` being the step's end).
    pub values: Vec<f64>,
    /// Exemplars: series index (as `index`), span start ns, value (NaN for `rate` and
    /// `count_over_time`, the raw bucket value for `histogram_over_time`), trace id, span id.
    pub ex_index: Vec<u32>,
    pub ex_ts: Vec<i64>,
    pub ex_value: Vec<f64>,
    pub ex_trace: Vec<String>,
    pub ex_span: Vec<String>,
    /// `compare()` only: attributes with more than topN values on a side in this job.
    pub maxed: Vec<String>,
    /// Matched spans inside the window.
    pub spans: u64,
    pub stats: JobStats,
}

/// A borrowed, hashable label value (floats by bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum K<'a> {
    Nil,
    Int(i64),
    Float(u64),
    Str(&'a str),
    Bool(bool),
    Duration(i64),
    Status(i32),
    Kind(i32),
}

impl<'a> K<'a> {
    fn of(v: Value<'a>) -> K<'a> {
        match v {
            // an array is no by() value (as a nil attribute)
            Value::Nil | Value::Array(_) => K::Nil,
            Value::Int(x) => K::Int(x),
            Value::Float(x) => K::Float(x.to_bits()),
            Value::Str(s) => K::Str(s),
            Value::Bool(b) => K::Bool(b),
            Value::Duration(d) => K::Duration(d),
            Value::Status(s) => K::Status(s),
            Value::Kind(k) => K::Kind(k),
        }
    }
    fn value(self) -> Value<'a> {
        match self {
            K::Nil => Value::Nil,
            K::Int(x) => Value::Int(x),
            K::Float(x) => Value::Float(f64::from_bits(x)),
            K::Str(s) => Value::Str(s),
            K::Bool(b) => Value::Bool(b),
            K::Duration(d) => Value::Duration(d),
            K::Status(s) => Value::Status(s),
            K::Kind(k) => Value::Kind(k),
        }
    }
}

/// An owned label value, comparable with a [`K`].
#[derive(Clone, PartialEq)]
enum Owned {
    Nil,
    Int(i64),
    Float(u64),
    Str(Box<str>),
    Bool(bool),
    Duration(i64),
    Status(i32),
    Kind(i32),
}

impl Owned {
    fn of(k: K<'_>) -> Owned {
        match k {
            K::Nil => Owned::Nil,
            K::Int(x) => Owned::Int(x),
            K::Float(x) => Owned::Float(x),
            K::Str(s) => Owned::Str(s.into()),
            K::Bool(b) => Owned::Bool(b),
            K::Duration(d) => Owned::Duration(d),
            K::Status(s) => Owned::Status(s),
            K::Kind(k) => Owned::Kind(k),
        }
    }
    fn is(&self, k: &K<'_>) -> bool {
        match (self, k) {
            (Owned::Nil, K::Nil) => true,
            (Owned::Int(a), K::Int(b)) | (Owned::Duration(a), K::Duration(b)) => a == b,
            (Owned::Float(a), K::Float(b)) => a == b,
            (Owned::Str(a), K::Str(b)) => &**a == *b,
            (Owned::Bool(a), K::Bool(b)) => a == b,
            (Owned::Status(a), K::Status(b)) | (Owned::Kind(a), K::Kind(b)) => a == b,
            _ => false,
        }
    }
    fn label(&self) -> LabelValue {
        let k = match self {
            Owned::Nil => K::Nil,
            Owned::Int(x) => K::Int(*x),
            Owned::Float(x) => K::Float(*x),
            Owned::Str(s) => K::Str(s),
            Owned::Bool(b) => K::Bool(*b),
            Owned::Duration(d) => K::Duration(*d),
            Owned::Status(s) => K::Status(*s),
            Owned::Kind(k) => K::Kind(*k),
        };
        OutValue::from_value(&k.value())
    }
}

/// Distinct keys (a tuple of label values) to dense indexes, without allocating on a hit:
/// a map from the key's hash to its first index, further keys of the same hash chained.
#[derive(Default)]
struct Series {
    hasher: ahash::RandomState,
    by_hash: HashMap<u64, u32, BuildIdentity>,
    /// Per index: the next index with the same hash (u32::MAX: none).
    chain: Vec<u32>,
    keys: Vec<Vec<Owned>>,
}

impl Series {
    fn index(&mut self, key: &[K<'_>]) -> u32 {
        let h = self.hasher.hash_one(key);
        let new = self.keys.len() as u32;
        let mut at = match self.by_hash.entry(h) {
            std::collections::hash_map::Entry::Occupied(e) => *e.get(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(new);
                u32::MAX
            }
        };
        let mut last = u32::MAX;
        while at != u32::MAX {
            let k = &self.keys[at as usize];
            if k.len() == key.len() && k.iter().zip(key).all(|(a, b)| a.is(b)) {
                return at;
            }
            last = at;
            at = self.chain[at as usize];
        }
        if last != u32::MAX {
            self.chain[last as usize] = new;
        }
        self.keys.push(key.iter().map(|k| Owned::of(*k)).collect());
        self.chain.push(u32::MAX);
        new
    }
}

/// Hashes a u64 that is already a hash to itself.
#[derive(Default, Clone, Copy)]
struct BuildIdentity;

struct Identity(u64);

impl std::hash::BuildHasher for BuildIdentity {
    type Hasher = Identity;
    fn build_hasher(&self) -> Identity {
        Identity(0)
    }
}

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Exemplars of one job: at most `max`, one per trace, one per time slot of the window.
struct Exemplars {
    max: usize,
    start: i64,
    width: i64,
    taken: Vec<bool>,
    traces: std::collections::HashSet<[u8; 16]>,
}

impl Exemplars {
    fn new(max: usize, start: u64, end: u64) -> Exemplars {
        let width = if max == 0 { 1 } else { ((end.saturating_sub(start)) / max as u64).max(1) };
        Exemplars {
            max,
            start: start as i64,
            width: width as i64,
            taken: vec![false; max],
            traces: Default::default(),
        }
    }

    /// Whether to keep an exemplar for a span of `trace` starting at `ts`.
    fn want(&self, trace: &[u8], ts: i64) -> bool {
        if self.traces.len() >= self.max {
            return false;
        }
        let slot = ((ts - self.start) / self.width).clamp(0, self.max as i64 - 1) as usize;
        !self.taken[slot] && !self.traces.contains(trace)
    }

    fn take(&mut self, trace: &[u8], ts: i64) {
        let slot = ((ts - self.start) / self.width).clamp(0, self.max as i64 - 1) as usize;
        self.taken[slot] = true;
        let mut id = [0u8; 16];
        let n = trace.len().min(16);
        id[..n].copy_from_slice(&trace[..n]);
        self.traces.insert(id);
    }
}

struct LeafSink<'l> {
    leaf: &'l MetricsLeaf,
    out: MetricsOut,
    series: Series,
    exemplars: Exemplars,
    start: u64,
    end: u64,
    /// `compare()`: span count per (key * 2 + selection) << 32 | step.
    counts: HashMap<u64, u64, ahash::RandomState>,
}

impl BatchSink for LeafSink<'_> {
    fn full(&self) -> bool {
        false
    }
    fn batch(&mut self, batch: &RecordBatch, dedicated: &[DedicatedColumn]) -> BatchStats {
        let leaf = self.leaf;
        let mask = leaf.compare.as_ref().map(|c| {
            let view = BatchView::new(batch, dedicated);
            super::eval::Eval::new(&view, &leaf.plan.regexes).filter(&c.filter)
        });
        let direct: Vec<Option<&StringArray>> =
            leaf.by.iter().map(|f| direct_column(batch, f)).collect();
        let mut t =
            LeafTraces { sink: self, mask: mask.as_deref(), rows: Vec::new(), direct: &direct };
        eval_batch(&leaf.plan, batch, dedicated, &mut t)
    }
}

struct LeafTraces<'s, 'l> {
    sink: &'s mut LeafSink<'l>,
    mask: Option<&'s [bool]>,
    rows: Vec<u32>,
    /// Per `by` field: its string column when the field reads one directly (a row whose
    /// value there is null falls back to the generic lookup).
    direct: &'s [Option<&'s StringArray>],
}

/// The string column `f` reads first: `resource.service.name` and the span `name`.
fn direct_column<'b>(batch: &'b RecordBatch, f: &Field) -> Option<&'b StringArray> {
    let col = match f {
        Field::Attribute(a)
            if a.scope == AttributeScope::Resource && !a.parent && a.name == "service.name" =>
        {
            schema::RESOURCE_SERVICE_NAME
        }
        Field::Intrinsic(Intrinsic::Name) => schema::NAME,
        _ => return None,
    };
    batch.column_by_name(col).and_then(|c| c.as_any().downcast_ref::<StringArray>())
}

impl TraceSink for LeafTraces<'_, '_> {
    fn trace(&mut self, view: &BatchView<'_>, _start: usize, _end: usize, sets: &[Spanset<'_>]) {
        let s = &mut *self.sink;
        let leaf = s.leaf;
        self.rows.clear();
        for set in sets {
            self.rows.extend_from_slice(&set.rows);
        }
        if sets.len() > 1 {
            self.rows.sort_unstable();
            self.rows.dedup();
        }
        let starts = view.u64s(schema::START).expect("start column");
        let durations = view.u64s(schema::DURATION);
        let window = s.start != 0 || s.end != 0;
        let mut key: Vec<K<'_>> = Vec::with_capacity(leaf.by.len());
        let mut last: Option<(Vec<K<'_>>, u32)> = None;
        let mut exemplar: Option<(u32, i64, f64, usize)> = None;
        let mut candidates = 0u32;
        for &r in &self.rows {
            let r = r as usize;
            let ts = starts.value(r);
            if window && (ts <= s.start || ts > s.end) {
                continue;
            }
            s.out.spans += 1;
            let ts = ts as i64;
            if let Some(c) = &leaf.compare {
                let mut selected = self.mask.is_some_and(|m| m[r]);
                if selected && c.start > 0 && c.end > 0 {
                    selected = ts >= c.start && ts < c.end;
                }
                let sel = selected as u64;
                let Some(step) = interval_of(ts as u64, s.start, s.end, leaf.step_ns) else {
                    continue;
                };
                for_each_attribute(view, r, &mut |scope, name, v| {
                    let key = [K::Int(scope as i64), K::Str(name), K::of(v)];
                    let i = s.series.index(&key) as u64;
                    *s.counts.entry((i * 2 + sel) << 32 | step as u64).or_insert(0) += 1;
                });
                if s.exemplars.want(view.trace_id(r), ts) {
                    exemplar = Some((sel as u32, ts, f64::NAN, r));
                }
                continue;
            }
            let value = match &leaf.field {
                None => f64::NAN,
                Some(f) => {
                    let bucket =
                        leaf.func == "quantile_over_time" || leaf.func == "histogram_over_time";
                    field_value(view, f, r, durations, bucket)
                }
            };
            if value.is_nan() && matches!(leaf.func, "quantile_over_time" | "histogram_over_time") {
                continue; // Tempo drops spans without a bucket
            }
            key.clear();
            for (f, direct) in leaf.by.iter().zip(self.direct) {
                key.push(match direct {
                    Some(a) if a.is_valid(r) => K::Str(a.value(r)),
                    _ => K::of(field_of(view, f, r)),
                });
            }
            // Neighbouring spans mostly share their key (one service per resource).
            let i = match last {
                Some((ref k, i)) if *k == key => i,
                _ => {
                    let i = s.series.index(&key);
                    last = Some((key.clone(), i));
                    i
                }
            };
            s.out.index.push(i);
            s.out.ts.push(ts);
            if leaf.field.is_some() {
                s.out.values.push(value);
            }
            // One exemplar per trace: a span picked evenly among its matches (reservoir).
            candidates += 1;
            if s.exemplars.want(view.trace_id(r), ts)
                && (exemplar.is_none()
                    || (r as u32).wrapping_mul(2654435761).is_multiple_of(candidates))
            {
                let v = match (&leaf.field, leaf.func) {
                    (_, "rate" | "count_over_time") => f64::NAN,
                    // The raw bucket value: it names the exemplar's `__bucket` series.
                    (_, "histogram_over_time") => value,
                    (Some(f), _) => field_value(view, f, r, durations, false),
                    (None, _) => f64::NAN,
                };
                exemplar = Some((i, ts, v, r));
            }
        }
        if let Some((i, ts, v, r)) = exemplar {
            s.exemplars.take(view.trace_id(r), ts);
            s.out.ex_index.push(i);
            s.out.ex_ts.push(ts);
            s.out.ex_value.push(v);
            s.out.ex_trace.push(hex(view.trace_id(r)));
            s.out.ex_span.push(hex(view.span_id(r)));
        }
    }
}

fn field_of<'v>(view: &'v BatchView<'_>, f: &Field, row: usize) -> Value<'v> {
    match f {
        Field::Attribute(a) => view.attr(a, row, ItemIndex::default()),
        Field::Intrinsic(i) => view.intrinsic(*i, row, ItemIndex::default()),
    }
}

/// The number a function reads from `f` (see the module docs); NaN when there is none.
/// `bucket`: the raw integer a log2 bucket is taken of (at least 2), else NaN.
fn field_value(
    view: &BatchView<'_>,
    f: &Field,
    row: usize,
    durations: Option<&arrow_array::UInt64Array>,
    bucket: bool,
) -> f64 {
    if let (Field::Intrinsic(Intrinsic::Duration), Some(d)) = (f, durations) {
        let ns = d.value(row);
        return if bucket {
            if ns < 2 {
                f64::NAN
            } else {
                ns as f64
            }
        } else {
            ns as f64 / 1e9
        };
    }
    let v = field_of(view, f, row);
    if bucket {
        return match v {
            Value::Int(x) | Value::Duration(x) if x >= 2 => x as f64,
            _ => f64::NAN,
        };
    }
    match v {
        Value::Int(x) | Value::Duration(x) => x as f64,
        Value::Float(x) => x,
        _ => f64::NAN,
    }
}

/// Calls `f(scope, name, value)` for every attribute of `row` Tempo's `compare()` counts
/// (scope 0: span, 1: resource, 2: intrinsic): span and resource attributes (dedicated
/// columns included) and the intrinsics `name`, `status`, `kind`, `rootName`,
/// `rootServiceName`. Durations, start times and ids are left out.
fn for_each_attribute<'v>(
    view: &'v BatchView<'_>,
    row: usize,
    f: &mut dyn FnMut(u8, &'v str, Value<'v>),
) {
    // Names taken from a column outside the lists, so a list entry does not count twice.
    let mut columns: Vec<(u8, &'v str)> = Vec::new();
    for (code, scope) in [(0u8, AttributeScope::Span), (1, AttributeScope::Resource)] {
        for (name, col) in view.dedicated_columns(scope) {
            let v = col.get(row);
            if !v.is_nil() {
                columns.push((code, name.as_str()));
                f(code, name.as_str(), v);
            }
        }
        if code == 1 {
            if let Some(s) = view.strs(schema::RESOURCE_SERVICE_NAME) {
                if arrow_array::Array::is_valid(s, row) {
                    columns.push((1, "service.name"));
                    f(1, "service.name", Value::Str(s.value(row)));
                }
            }
        }
        if let Some(list) = view.attr_list(scope) {
            for (name, v) in list.entries(row) {
                if !v.is_nil() && !columns.contains(&(code, name)) {
                    f(code, name, v);
                }
            }
        }
    }
    for i in [
        Intrinsic::Name,
        Intrinsic::Status,
        Intrinsic::Kind,
        Intrinsic::TraceRootSpan,
        Intrinsic::TraceRootService,
    ] {
        let v = view.intrinsic(i, row, ItemIndex::default());
        if !v.is_nil() {
            f(2, intrinsic_name(i), v);
        }
    }
}

/// The step of a span starting at `ts` (Tempo's `IntervalOf` over the aligned window,
/// right-closed steps; one step `[start, end]` for an instant query; step 0 for none).
fn interval_of(ts: u64, start: u64, end: u64, step: u64) -> Option<u32> {
    if step == 0 {
        return Some(0);
    }
    if end.wrapping_sub(start) == step {
        return (ts >= start && ts <= end && end != start).then_some(0);
    }
    let s = start - start % step;
    let e = if end.is_multiple_of(step) { end } else { end + step - end % step };
    if !(ts > s && ts <= e) {
        return None;
    }
    let off = ts - s;
    let i = off / step;
    Some((if i * step == off { i - 1 } else { i }) as u32)
}

/// Tempo's job-level `MetricsCompare.result`: per attribute and side its topN values by
/// count (more make the attribute `maxed`) and its totals (a key with a nil value), as rows
/// of (key * 2 + side, step end, count).
fn compare_out(sink: &LeafSink<'_>, top_n: usize, out: &mut MetricsOut) {
    // (step, count) by row
    let mut by_row: HashMap<u64, Vec<(u32, u64)>, ahash::RandomState> = HashMap::default();
    for (&k, &n) in &sink.counts {
        by_row.entry(k >> 32).or_default().push(((k & 0xffff_ffff) as u32, n));
    }
    let name_of = |key: u64| {
        let k = &sink.series.keys[key as usize];
        let prefix = match k[0] {
            Owned::Int(0) => "span.",
            Owned::Int(1) => "resource.",
            _ => "",
        };
        match &k[1] {
            Owned::Str(s) => format!("{prefix}{s}"),
            _ => String::new(),
        }
    };
    // name -> side -> [(grand total, key)]
    let mut attrs: std::collections::BTreeMap<String, [Vec<(u64, u64)>; 2]> = Default::default();
    for (&row, per) in &by_row {
        let total: u64 = per.iter().map(|p| p.1).sum();
        attrs.entry(name_of(row >> 1)).or_default()[(row & 1) as usize].push((total, row >> 1));
    }
    let (start, end, step) = (sink.start, sink.end, sink.leaf.step_ns);
    let step_end = |i: u32| -> i64 {
        if step == 0 || end.wrapping_sub(start) == step {
            end as i64
        } else {
            (start - start % step + (i as u64 + 1) * step) as i64
        }
    };
    for (name, sides) in attrs {
        let mut maxed = false;
        for (sel, mut values) in sides.into_iter().enumerate() {
            if values.is_empty() {
                continue;
            }
            maxed |= values.len() > top_n;
            values.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut totals: HashMap<u32, u64, ahash::RandomState> = HashMap::default();
            for (rank, &(_, key)) in values.iter().enumerate() {
                let per = &by_row[&(key * 2 + sel as u64)];
                for &(i, n) in per {
                    *totals.entry(i).or_insert(0) += n;
                }
                if rank < top_n {
                    let k = out.keys.len() as u32;
                    out.keys.push(vec![sink.series.keys[key as usize][2].label()]);
                    out.key_names.push(name.clone());
                    for &(i, n) in per {
                        out.index.push(k * 2 + sel as u32);
                        out.ts.push(step_end(i));
                        out.values.push(n as f64);
                    }
                }
            }
            let k = out.keys.len() as u32;
            out.keys.push(vec![None]);
            out.key_names.push(name.clone());
            for (i, n) in totals {
                out.index.push(k * 2 + sel as u32);
                out.ts.push(step_end(i));
                out.values.push(n as f64);
            }
        }
        if maxed {
            out.maxed.push(name);
        }
    }
}

/// Scans `sources` for `leaf`, spans starting in `(start_ns, end_ns]` (both 0: any),
/// keeping up to `exemplars` exemplars.
pub fn metrics_sources(leaf: &MetricsLeaf, sources: &[Source], exemplars: usize) -> MetricsOut {
    let (start, end) = (leaf.plan.options.start_ns, leaf.plan.options.end_ns);
    let max = if leaf.compare.is_some() { exemplars.min(MAX_EXEMPLARS) } else { exemplars };
    let mut sink = LeafSink {
        leaf,
        out: MetricsOut::default(),
        series: Series::default(),
        exemplars: Exemplars::new(max, start, end),
        start,
        end,
        counts: HashMap::default(),
    };
    let stats = scan_sources(&leaf.plan, sources, &mut sink);
    let mut out = std::mem::take(&mut sink.out);
    out.stats = stats;
    if let Some(c) = &leaf.compare {
        compare_out(&sink, c.top_n.max(0) as usize, &mut out);
    } else {
        out.keys = sink.series.keys.iter().map(|k| k.iter().map(Owned::label).collect()).collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::columnar::{build_batch, group_traces};
    use crate::otlp::scan;
    use crate::schema::default_dedicated_columns;
    use crate::testdata;

    fn source() -> (Source, RecordBatch) {
        let reqs: Vec<_> = (0..3)
            .map(|s| Arc::new(scan(Arc::from(testdata::request(s, 1_500).0)).unwrap()))
            .collect();
        let batch = build_batch(&group_traces(&reqs), &default_dedicated_columns()).unwrap();
        (Source::Batch(batch.clone(), default_dedicated_columns()), batch)
    }

    fn run(q: &str, start: u64, end: u64, exemplars: usize) -> Vec<MetricsOut> {
        let (src, _) = source();
        let step = if end > start { (end - start) / 10 } else { 0 };
        let query =
            MetricsQuery::compile(q, start, end, step).unwrap_or_else(|e| panic!("{q}: {e}"));
        query
            .leaves
            .iter()
            .map(|l| metrics_sources(l, std::slice::from_ref(&src), exemplars))
            .collect()
    }

    fn key_str(k: &[LabelValue]) -> String {
        format!("{k:?}")
    }

    /// Span counts per service of rows starting in `(start, end]`, straight from the batch.
    fn expected_by_service(batch: &RecordBatch, start: u64, end: u64) -> HashMap<String, u64> {
        let view = BatchView::new(batch, &default_dedicated_columns());
        let starts = view.u64s(schema::START).unwrap();
        let svc = view.strs(schema::RESOURCE_SERVICE_NAME).unwrap();
        let mut out = HashMap::new();
        for r in 0..batch.num_rows() {
            let t = starts.value(r);
            if t > start && t <= end {
                *out.entry(svc.value(r).to_string()).or_insert(0) += 1;
            }
        }
        out
    }

    #[test]
    fn rate_by_service_counts_every_span_in_the_window_once() {
        let (_, batch) = source();
        let view = BatchView::new(&batch, &[]);
        let starts = view.u64s(schema::START).unwrap();
        let (lo, hi) = (0..batch.num_rows())
            .fold((u64::MAX, 0), |(a, b), r| (a.min(starts.value(r)), b.max(starts.value(r))));
        let mid = lo + (hi - lo) / 2;
        for (start, end) in [(lo - 1, hi), (mid, hi), (lo, mid)] {
            let out = run("{} | rate() by (resource.service.name)", start, end, 0);
            let out = &out[0];
            assert!(out.values.is_empty());
            let mut got: HashMap<String, u64> = HashMap::new();
            for &i in &out.index {
                let Some(OutValue::Str(s)) = &out.keys[i as usize][0] else { panic!() };
                *got.entry(s.clone()).or_insert(0) += 1;
            }
            assert_eq!(got, expected_by_service(&batch, start, end));
            assert_eq!(out.spans as usize, out.index.len());
            assert!(out.ts.iter().all(|&t| t as u64 > start && t as u64 <= end));
        }
    }

    #[test]
    fn values_follow_tempo_units() {
        let (_, batch) = source();
        let view = BatchView::new(&batch, &[]);
        let durations = view.u64s(schema::DURATION).unwrap();
        let all: Vec<u64> = (0..batch.num_rows()).map(|r| durations.value(r)).collect();
        let out = &run("{} | max_over_time(duration)", 0, 0, 0)[0];
        let mut got = out.values.clone();
        got.sort_by(f64::total_cmp);
        let mut want: Vec<f64> = all.iter().map(|&d| d as f64 / 1e9).collect();
        want.sort_by(f64::total_cmp);
        assert_eq!(got, want);
        // Buckets read nanoseconds, and drop spans shorter than 2ns.
        let out = &run("{} | quantile_over_time(duration, .5)", 0, 0, 0)[0];
        assert_eq!(out.values.len(), all.iter().filter(|&&d| d >= 2).count());
        assert!(out.values.iter().all(|&v| v >= 2.0 && v.fract() == 0.0));
        // An attribute that is not a number reads as NaN.
        let out = &run("{} | sum_over_time(span.http.method)", 0, 0, 0)[0];
        assert!(out.values.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn by_keeps_typed_values_and_nil() {
        let out = &run("{} | count_over_time() by (span.http.status_code, .nope)", 0, 0, 0)[0];
        assert!(out.keys.iter().all(|k| k.len() == 2 && k[1].is_none()));
        assert!(out.keys.iter().any(|k| matches!(k[0], Some(OutValue::Int(_)))));
        let distinct: std::collections::HashSet<String> =
            out.keys.iter().map(|k| key_str(k)).collect();
        assert_eq!(distinct.len(), out.keys.len());
    }

    #[test]
    fn exemplars_are_bounded_one_per_trace() {
        let out = &run("{} | rate() by (resource.service.name)", 1, u64::MAX / 2, 7)[0];
        assert!(!out.ex_index.is_empty() && out.ex_index.len() <= 7);
        let traces: std::collections::HashSet<&String> = out.ex_trace.iter().collect();
        assert_eq!(traces.len(), out.ex_trace.len());
        assert!(out.ex_value.iter().all(|v| v.is_nan()));
        let out = &run("{} | quantile_over_time(duration, .9)", 1, u64::MAX / 2, 5)[0];
        assert!(out.ex_value.iter().all(|v| *v > 0.0 && *v < 1e4));
    }

    #[test]
    fn compare_counts_values_per_side_keeps_the_top_n_and_totals() {
        let (_, batch) = source();
        let out = &run("{} | compare({ status = error }, 3)", 0, 0, 0)[0];
        let view = BatchView::new(&batch, &[]);
        let status = view.i32s(schema::STATUS_CODE).unwrap();
        let errors = (0..batch.num_rows()).filter(|&r| status.value(r) == 2).count() as f64;
        let total = |name: &str, sel: u32| -> f64 {
            (0..out.index.len())
                .filter(|&j| {
                    let k = (out.index[j] / 2) as usize;
                    out.index[j] % 2 == sel && out.key_names[k] == name && out.keys[k][0].is_none()
                })
                .map(|j| out.values[j])
                .sum()
        };
        // Every span has one `status`: the selection's total is the errors.
        assert_eq!(total("status", 1), errors);
        assert_eq!(total("status", 0), batch.num_rows() as f64 - errors);
        let value = |name: &str, sel: u32, v: &str| -> f64 {
            (0..out.index.len())
                .filter(|&j| {
                    let k = (out.index[j] / 2) as usize;
                    out.index[j] % 2 == sel
                        && out.key_names[k] == name
                        && out.keys[k][0] == Some(OutValue::Str(v.to_string()))
                })
                .map(|j| out.values[j])
                .sum()
        };
        assert_eq!(value("status", 1, "error"), errors);
        // At most 3 values per attribute and side; more mark the attribute.
        let names: std::collections::HashSet<&String> = out.key_names.iter().collect();
        for n in names {
            for sel in 0..2 {
                let kept = (0..out.keys.len())
                    .filter(|&k| &out.key_names[k] == n && out.keys[k][0].is_some())
                    .filter(|&k| out.index.iter().any(|&i| i == k as u32 * 2 + sel))
                    .count();
                assert!(kept <= 3, "{n}: {kept}");
            }
        }
        assert!(out.maxed.iter().any(|n| n == "span.http.url" || n == "resource.k8s.pod.name"));
        assert!(!out.maxed.iter().any(|n| n == "status"));
    }

    #[test]
    fn compile_refuses_searches_and_describes_math() {
        assert_eq!(MetricsQuery::compile("{}", 0, 0, 0).err().unwrap(), NOT_METRICS);
        assert!(MetricsQuery::compile("{ .a = }", 0, 0, 0)
            .err()
            .unwrap()
            .starts_with(traceql::INVALID_QUERY_PREFIX));
        let q = MetricsQuery::compile(
            "({ status = error } | rate()) / ({} | rate()) | topk(3)",
            0,
            0,
            0,
        )
        .unwrap();
        assert_eq!(q.leaves.len(), 2);
        assert_eq!(q.tree["op"], "/");
        assert_eq!(q.tree["lhs"]["leaf"], 0);
        assert_eq!(q.tree["second"][0]["topk"], 3);
        let q = MetricsQuery::compile(
            "{} | quantile_over_time(duration, .5, .99) by (name) > 0.1",
            0,
            0,
            0,
        )
        .unwrap();
        assert_eq!(q.leaves[0].by_names, ["name"]);
        assert_eq!(q.leaves[0].quantiles, [0.5, 0.99]);
        assert_eq!(q.leaves[0].bucket_scale, 1e9);
        assert_eq!(q.tree["second"][0]["op"], ">");
    }
}
