//! A compiled search: the parsed query, its regexes, the filters and value expressions the
//! batch pass precomputes, the columns to read and the fields returned with each span.

use std::collections::BTreeSet;

use super::eval::{visit, Regexes};
use crate::schema::{self, DedicatedColumn, DedicatedScope};
use crate::traceql::{
    self, Attribute, AttributeScope, BinOp, Field, FieldExpr, Intrinsic, Pipeline, QueryBody,
    ScalarExpr, SpansetExpr, Stage, Static, UnaryOp,
};

/// Search parameters beside the query.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Traces to return at most (0: no limit).
    pub limit: usize,
    /// Spans returned per spanset (`spss`).
    pub spans_per_spanset: usize,
    /// Only traces overlapping `[start, end]` (unix ns; 0 = open).
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions { limit: 20, spans_per_spanset: 3, start_ns: 0, end_ns: 0 }
    }
}

/// A field returned with each matched span.
#[derive(Clone, Debug, PartialEq)]
pub enum OutField {
    Attribute(Attribute),
    Intrinsic(Intrinsic),
}

pub struct SearchPlan {
    pub pipeline: Pipeline,
    pub regexes: Regexes,
    pub options: SearchOptions,
    /// Spanset filters (`{ … }` bodies), in the order they appear.
    pub filters: Vec<*const FieldExpr>,
    /// Expressions of `by()` and aggregates, evaluated per row.
    pub value_exprs: Vec<*const FieldExpr>,
    /// Fields returned with each span (besides id, start and duration).
    pub out_fields: Vec<OutField>,
    /// Whether span names are returned (the query reads `name`).
    pub with_name: bool,
    /// The pipeline is a single spanset filter: a trace matches iff one of its rows does.
    pub single_filter: Option<*const FieldExpr>,
    /// Read every attribute column (lists and dedicated columns), as TraceQL metrics'
    /// `compare()` does: it counts all attribute values of the spans.
    pub all_attributes: bool,
    /// Column names the scan reads, with dedicated columns named by attribute (resolved
    /// per block by [`SearchPlan::columns_for`]).
    columns: BTreeSet<&'static str>,
    attrs: Vec<Attribute>,
    /// With a single filter: the columns and attributes that filter alone reads (with the
    /// trace id, to count traces), for a row group prefilter.
    filter_columns: BTreeSet<&'static str>,
    filter_attrs: Vec<Attribute>,
}

// SAFETY: the raw pointers point into `pipeline`, owned (boxed nodes) by the plan and never
// mutated after compilation; they are only used as identities and read-only references.
unsafe impl Send for SearchPlan {}
unsafe impl Sync for SearchPlan {}

/// Columns every search reads: trace and span identity, times, trace metadata and what
/// `serviceStats` counts.
const ALWAYS: &[&str] = &[
    schema::TRACE_ID,
    schema::SPAN_ID,
    schema::START,
    schema::DURATION,
    schema::STATUS_CODE,
    schema::RESOURCE_SERVICE_NAME,
    schema::TRACE_ROOT_SERVICE,
    schema::TRACE_ROOT_NAME,
    schema::TRACE_START,
    schema::TRACE_END,
];

/// Columns every metrics scan reads.
const METRICS_ALWAYS: &[&str] = &[
    schema::TRACE_ID,
    schema::SPAN_ID,
    schema::START,
    schema::DURATION,
    schema::TRACE_START,
    schema::TRACE_END,
];

impl SearchPlan {
    /// Compiles `q` for `/api/search`; the error is the HTTP 400 body.
    pub fn compile(q: &str, options: SearchOptions) -> Result<SearchPlan, String> {
        let query = traceql::parse_for_search(q)?;
        let pipeline = match query.body {
            QueryBody::Pipeline(p) => p,
            QueryBody::ScalarFilter(_) => {
                return Err(format!(
                    "{}comparing two pipelines is not supported",
                    traceql::INVALID_QUERY_PREFIX
                ))
            }
            QueryBody::Metrics(_) => return Err(traceql::METRICS_QUERY_ON_SEARCH.to_string()),
        };
        Ok(SearchPlan::from_pipeline(pipeline, options))
    }

    pub fn from_pipeline(pipeline: Pipeline, options: SearchOptions) -> SearchPlan {
        Self::with_columns(pipeline, options, ALWAYS)
    }

    /// A plan for TraceQL metrics: besides what the pipeline reads, only the span identity,
    /// times and the trace's extent (no root names or service stats).
    pub fn for_metrics(pipeline: Pipeline, options: SearchOptions) -> SearchPlan {
        Self::with_columns(pipeline, options, METRICS_ALWAYS)
    }

    fn with_columns(
        pipeline: Pipeline,
        options: SearchOptions,
        always: &[&'static str],
    ) -> SearchPlan {
        let mut plan = SearchPlan {
            pipeline,
            regexes: Regexes::new(),
            options,
            filters: Vec::new(),
            value_exprs: Vec::new(),
            out_fields: Vec::new(),
            with_name: false,
            single_filter: None,
            all_attributes: false,
            columns: always.iter().copied().collect(),
            attrs: Vec::new(),
            filter_columns: BTreeSet::new(),
            filter_attrs: Vec::new(),
        };
        let p: *const Pipeline = &plan.pipeline;
        // SAFETY: `p` points at `plan.pipeline`, which is not moved or mutated while the
        // walk below reads it (the walk only touches other fields of `plan`).
        plan.walk_pipeline(unsafe { &*p });
        if let [Stage::Spanset(SpansetExpr::Filter(f))] = plan.pipeline.stages.as_slice() {
            plan.single_filter = Some(f as *const FieldExpr);
        }
        if let Some(f) = plan.single_filter {
            // The filter's own columns: walk it again into empty sets.
            let columns = std::mem::replace(&mut plan.columns, [schema::TRACE_ID].into());
            let attrs = std::mem::take(&mut plan.attrs);
            let (out_fields, with_name) = (plan.out_fields.clone(), plan.with_name);
            // SAFETY: as above; `f` points into `plan.pipeline`.
            plan.walk_fields(unsafe { &*f });
            plan.filter_columns = std::mem::replace(&mut plan.columns, columns);
            plan.filter_attrs = std::mem::replace(&mut plan.attrs, attrs);
            (plan.out_fields, plan.with_name) = (out_fields, with_name);
        }
        plan
    }

    fn walk_pipeline(&mut self, p: &Pipeline) {
        for stage in &p.stages {
            match stage {
                Stage::Spanset(e) => self.walk_spanset(e),
                Stage::ScalarFilter(f) => {
                    self.walk_scalar(&f.lhs);
                    self.walk_scalar(&f.rhs);
                }
                Stage::By(e) => {
                    self.value_exprs.push(e);
                    self.walk_fields(e);
                }
                Stage::Coalesce => {}
                Stage::Select(fields) => {
                    for f in fields {
                        match f {
                            Field::Attribute(a) => self.use_attribute(a),
                            Field::Intrinsic(i) => self.use_intrinsic(*i),
                        }
                    }
                }
            }
        }
    }

    fn walk_spanset(&mut self, e: &SpansetExpr) {
        match e {
            SpansetExpr::Filter(f) => {
                self.filters.push(f);
                self.walk_fields(f);
            }
            SpansetExpr::Op { op, lhs, rhs } => {
                if !matches!(op, traceql::SpansetOp::And | traceql::SpansetOp::Union) {
                    self.columns.insert(schema::PARENT_INDEX);
                    self.columns.insert(schema::PARENT_SPAN_ID);
                }
                self.walk_spanset(lhs);
                self.walk_spanset(rhs);
            }
            SpansetExpr::Pipeline(p) => self.walk_pipeline(p),
        }
    }

    fn walk_scalar(&mut self, e: &ScalarExpr) {
        match e {
            ScalarExpr::Aggregate(a) => {
                if let Some(x) = a.expr.as_deref() {
                    self.value_exprs.push(x);
                    self.walk_fields(x);
                }
            }
            ScalarExpr::Op { lhs, rhs, .. } => {
                self.walk_scalar(lhs);
                self.walk_scalar(rhs);
            }
            ScalarExpr::Pipeline { pipeline, aggregate } => {
                self.walk_pipeline(pipeline);
                if let Some(x) = aggregate.expr.as_deref() {
                    self.value_exprs.push(x);
                    self.walk_fields(x);
                }
            }
            ScalarExpr::Static(_) => {}
        }
    }

    fn walk_fields(&mut self, e: &FieldExpr) {
        let mut attrs = Vec::new();
        let mut intrinsics = Vec::new();
        let mut patterns = Vec::new();
        visit(e, &mut |x| match x {
            FieldExpr::Attribute(a) => attrs.push(a.clone()),
            FieldExpr::Intrinsic(i) => intrinsics.push(*i),
            FieldExpr::Binary { op: BinOp::Re | BinOp::NotRe, rhs, .. } => {
                if let FieldExpr::Static(Static::String(p)) = rhs.as_ref() {
                    patterns.push(p.clone());
                }
            }
            _ => {}
        });
        for a in &attrs {
            self.use_attribute(a);
        }
        for i in intrinsics {
            self.use_intrinsic(i);
        }
        for p in patterns {
            if let Ok(re) = traceql::compile_regex(&p) {
                self.regexes.insert(p, re);
            }
        }
    }

    /// Reads the columns of expression `e` too (and compiles its regexes), for an
    /// expression evaluated outside the pipeline.
    pub fn read_expr(&mut self, e: &FieldExpr) {
        self.walk_fields(e);
    }

    /// Reads every attribute list and dedicated column, and the span intrinsics.
    pub fn read_all_attributes(&mut self) {
        self.all_attributes = true;
        self.columns.extend([schema::ATTRS, schema::RESOURCE_ATTRS, schema::NAME, schema::KIND]);
    }

    /// Reads attribute `a` too (its columns), as a returned field.
    pub fn use_field_attribute(&mut self, a: &Attribute) {
        self.use_attribute(a);
    }

    /// Reads intrinsic `i` too (its columns), as a returned field.
    pub fn use_field_intrinsic(&mut self, i: Intrinsic) {
        self.use_intrinsic(i);
    }

    fn use_attribute(&mut self, a: &Attribute) {
        match a.scope {
            AttributeScope::Span => {
                self.columns.insert(schema::ATTRS);
            }
            AttributeScope::Resource => {
                self.columns.insert(schema::RESOURCE_ATTRS);
                self.columns.insert(schema::RESOURCE_SERVICE_NAME);
            }
            AttributeScope::None => {
                self.columns.insert(schema::ATTRS);
                self.columns.insert(schema::RESOURCE_ATTRS);
                self.columns.insert(schema::RESOURCE_SERVICE_NAME);
            }
            AttributeScope::Event => {
                self.columns.insert(schema::EVENTS);
            }
            AttributeScope::Link => {
                self.columns.insert(schema::LINKS);
            }
            AttributeScope::Instrumentation => {
                self.columns.insert(schema::SCOPE_ATTRS);
            }
        }
        if !self.attrs.contains(a) {
            self.attrs.push(a.clone());
        }
        let f = OutField::Attribute(a.clone());
        if !matches!(a.scope, AttributeScope::Event | AttributeScope::Link)
            && !self.out_fields.contains(&f)
        {
            self.out_fields.push(f);
        }
    }

    fn use_intrinsic(&mut self, i: Intrinsic) {
        use Intrinsic::*;
        let cols: &[&'static str] = match i {
            Duration => &[schema::DURATION],
            Status => &[schema::STATUS_CODE],
            SpanId => &[schema::SPAN_ID],
            TraceId => &[schema::TRACE_ID],
            TraceRootSpan => &[schema::TRACE_ROOT_NAME],
            TraceRootService => &[schema::TRACE_ROOT_SERVICE],
            TraceDuration => &[schema::TRACE_START, schema::TRACE_END],
            Name => &[schema::NAME],
            StatusMessage => &[schema::STATUS_MESSAGE],
            Kind => &[schema::KIND],
            ChildCount | Parent | NestedSetParent => &[schema::PARENT_INDEX],
            ParentId => &[schema::PARENT_SPAN_ID],
            NestedSetLeft => &[schema::NESTED_SET_LEFT],
            NestedSetRight => &[schema::NESTED_SET_RIGHT],
            EventName => &[schema::EVENTS],
            EventTimeSinceStart => &[schema::EVENTS, schema::START],
            LinkTraceId | LinkSpanId => &[schema::LINKS],
            InstrumentationName => &[schema::SCOPE_NAME],
            InstrumentationVersion => &[schema::SCOPE_VERSION],
        };
        self.columns.extend(cols.iter().copied());
        if i == Name {
            self.with_name = true;
        }
        let hidden = matches!(
            i,
            Name | Duration
                | TraceDuration
                | TraceRootService
                | TraceRootSpan
                | TraceId
                | SpanId
                | EventName
                | EventTimeSinceStart
                | LinkTraceId
                | LinkSpanId
        );
        let f = OutField::Intrinsic(i);
        if !hidden && !self.out_fields.contains(&f) {
            self.out_fields.push(f);
        }
    }

    /// Attributes a span must have for the single filter to match it: the operands of its
    /// comparisons, through `&&` (either side's) and `||` (both sides'). A row group where
    /// one of them is absent has no match.
    pub fn required_attributes(&self) -> Vec<Attribute> {
        // SAFETY: filter pointers point into `self.pipeline` (see the type's docs).
        self.single_filter.map(|f| required(unsafe { &*f })).unwrap_or_default()
    }

    /// Names of the columns to read from a block with `dedicated` columns.
    pub fn columns_for(&self, dedicated: &[DedicatedColumn]) -> Vec<String> {
        let mut out = columns_of(&self.columns, &self.attrs, dedicated);
        if self.all_attributes {
            let (mut si, mut ri) = (0, 0);
            for d in dedicated {
                let i = match d.scope {
                    DedicatedScope::Span => &mut si,
                    DedicatedScope::Resource => &mut ri,
                };
                let name = schema::dedicated_column_name(d.scope, *i);
                *i += 1;
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// With a single filter, what a row group prefilter reads: the filter's columns (as
    /// [`SearchPlan::columns_for_group`]) and the trace id; None when that is everything
    /// the search reads anyway, or when the filter reads no column.
    pub fn prefilter_columns(
        &self,
        dedicated: &[DedicatedColumn],
        no_nulls: impl Fn(&str) -> bool,
    ) -> Option<Vec<String>> {
        self.single_filter?;
        if self.filter_columns.len() == 1 && self.filter_attrs.is_empty() {
            return None; // the filter reads no column (`{}`): it matches all rows or none
        }
        let pre = columns_for_group(&self.filter_columns, &self.filter_attrs, dedicated, &no_nulls);
        let all = columns_for_group(&self.columns, &self.attrs, dedicated, &no_nulls);
        (pre.len() < all.len()).then_some(pre)
    }

    /// [`SearchPlan::columns_for`] for one row group, without the span or resource
    /// attribute list when no row reads it: every attribute the query names from that
    /// list is in a column with no null in the row group (`no_nulls`), and a row's value
    /// comes from such a column whenever it has one (see `BatchView::attr`).
    pub fn columns_for_group(
        &self,
        dedicated: &[DedicatedColumn],
        no_nulls: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        if self.all_attributes {
            return self.columns_for(dedicated);
        }
        columns_for_group(&self.columns, &self.attrs, dedicated, &no_nulls)
    }

    /// The key a returned span attribute carries (Tempo's `Attribute.Name`).
    pub fn out_key(f: &OutField) -> String {
        match f {
            OutField::Attribute(a) => a.name.clone(),
            OutField::Intrinsic(i) => {
                let s = i.as_str();
                s.rsplit(':').next().unwrap_or(s).to_string()
            }
        }
    }
}

/// `columns` and the dedicated columns holding `attrs`, named as in a block with `dedicated`.
fn columns_of(
    columns: &BTreeSet<&'static str>,
    attrs: &[Attribute],
    dedicated: &[DedicatedColumn],
) -> Vec<String> {
    let mut out: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    let (mut si, mut ri) = (0, 0);
    for d in dedicated {
        let i = match d.scope {
            DedicatedScope::Span => &mut si,
            DedicatedScope::Resource => &mut ri,
        };
        let used = attrs.iter().any(|a| {
            a.name == d.name
                && matches!(
                    (a.scope, d.scope),
                    (AttributeScope::Span | AttributeScope::None, DedicatedScope::Span)
                        | (
                            AttributeScope::Resource | AttributeScope::None,
                            DedicatedScope::Resource
                        )
                )
        });
        if used {
            out.push(schema::dedicated_column_name(d.scope, *i));
        }
        *i += 1;
    }
    out
}

/// `columns_of` without the attribute lists no row of the row group reads (see
/// [`SearchPlan::columns_for_group`]).
fn columns_for_group(
    columns: &BTreeSet<&'static str>,
    attrs: &[Attribute],
    dedicated: &[DedicatedColumn],
    no_nulls: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = columns_of(columns, attrs, dedicated);
    let covered = |scope: DedicatedScope, name: &str| {
        if scope == DedicatedScope::Resource && name == "service.name" {
            return no_nulls(schema::RESOURCE_SERVICE_NAME);
        }
        // The first dedicated column of that scope and name (the one a view reads).
        dedicated
            .iter()
            .filter(|d| d.scope == scope)
            .position(|d| d.name == name)
            .is_some_and(|i| no_nulls(&schema::dedicated_column_name(scope, i)))
    };
    let (mut span_list, mut resource_list) = (false, false);
    for a in attrs {
        match a.scope {
            AttributeScope::Span => span_list |= !covered(DedicatedScope::Span, &a.name),
            AttributeScope::Resource => {
                resource_list |= !covered(DedicatedScope::Resource, &a.name)
            }
            AttributeScope::None if !covered(DedicatedScope::Span, &a.name) => {
                span_list = true;
                resource_list |= !covered(DedicatedScope::Resource, &a.name);
            }
            _ => {}
        }
    }
    out.retain(|c| {
        (c != schema::ATTRS || span_list) && (c != schema::RESOURCE_ATTRS || resource_list)
    });
    out
}

/// See [`SearchPlan::required_attributes`].
fn required(e: &FieldExpr) -> Vec<Attribute> {
    match e {
        FieldExpr::Binary { op: BinOp::And, lhs, rhs } => {
            let mut out = required(lhs);
            for a in required(rhs) {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            out
        }
        FieldExpr::Binary { op: BinOp::Or, lhs, rhs } => {
            let r = required(rhs);
            required(lhs).into_iter().filter(|a| r.contains(a)).collect()
        }
        // A comparison (`=`, `!=`, `<`, `=~`, `!~`, …) is false when an operand is nil.
        FieldExpr::Binary { op, lhs, rhs } if op.is_boolean() => [lhs, rhs]
            .into_iter()
            .filter_map(|x| match x.as_ref() {
                FieldExpr::Attribute(a) if !a.parent => Some(a.clone()),
                _ => None,
            })
            .collect(),
        FieldExpr::Unary { op: UnaryOp::Exists, expr } => match expr.as_ref() {
            FieldExpr::Attribute(a) if !a.parent => vec![a.clone()],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(cols: &[String], c: &str) -> bool {
        cols.iter().any(|x| x == c)
    }

    /// Columns `q` reads from a row group where only `no_nulls` have no null.
    fn cols(q: &str, no_nulls: &[&str]) -> Vec<String> {
        let plan = SearchPlan::compile(q, SearchOptions::default()).unwrap();
        plan.columns_for_group(&schema::default_dedicated_columns(), |c| no_nulls.contains(&c))
    }

    #[test]
    fn search_reads_attribute_lists_only_for_attributes_outside_null_free_columns() {
        let (span, res) = (schema::ATTRS, schema::RESOURCE_ATTRS);
        let full = ["span_dedicated_01", schema::RESOURCE_SERVICE_NAME, "resource_dedicated_02"];
        let c = cols("{ span.http.status_code = 500 }", &full);
        assert!(!has(&c, span) && !has(&c, res) && has(&c, "span_dedicated_01"));
        assert!(has(&cols("{ span.http.status_code = 500 }", &[]), span));
        // Unscoped: the span's value first, then the resource's.
        let c = cols("{ .http.status_code = 500 }", &full);
        assert!(!has(&c, span) && !has(&c, res));
        let c = cols("{ .http.status_code = 500 }", &[]);
        assert!(has(&c, span) && has(&c, res));
        let c = cols(r#"{ .service.name = "a" }"#, &full);
        assert!(has(&c, span) && !has(&c, res));
        let c = cols(r#"{ resource.service.name = "a" && span.foo = 1 }"#, &full);
        assert!(has(&c, span) && !has(&c, res));
        assert!(has(&cols(r#"{ resource.service.name = "a" }"#, &[]), res));
        let c = cols(r#"{ resource.k8s.pod.name = "a" } | select(span.http.route)"#, &full);
        assert!(!has(&c, res) && has(&c, span) && has(&c, "resource_dedicated_02"));
        let pre = |q: &str| {
            let plan = SearchPlan::compile(q, SearchOptions::default()).unwrap();
            plan.prefilter_columns(&schema::default_dedicated_columns(), |c| full.contains(&c))
        };
        assert_eq!(pre("{}"), None);
        assert_eq!(pre("{ status = error } >> { duration > 1s }"), None);
        let p = pre("{ span.http.status_code = 500 && duration > 1s }").unwrap();
        assert_eq!(p, [schema::DURATION, schema::TRACE_ID, "span_dedicated_01"]);
        // Columns read for other reasons stay.
        let c = cols("{ status = error } >> { span.http.status_code = 500 }", &full);
        assert!(has(&c, schema::PARENT_INDEX) && !has(&c, span));
    }
}
