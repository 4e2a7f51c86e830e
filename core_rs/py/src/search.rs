//! TraceQL search at the boundary: a compiled query object, and results handed back as
//! Tempo JSON bytes (one `TraceSearchMetadata` per matched trace) plus the job's figures.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyAny, PyBytes, PyDict, PyList, PyTuple};

use tempo_core::block::{parse_rfc3339, BlockReader};
use tempo_core::columnar::{build_batch, group_traces};
use tempo_core::otlp;
use tempo_core::schema::default_dedicated_columns;
use tempo_core::search::metrics::{metrics_sources, MetricsOut, MetricsQuery};
use tempo_core::search::tags::{collect_tags, TagTarget, Tags};
use tempo_core::search::{
    search_sources, write_json_array, Found, JobStats, OutValue, SearchOptions, SearchPlan, Source,
};
use tempo_core::traceql::{AttributeScope, Field, QueryBody, Stage};

use crate::runtime;

/// A compiled TraceQL search: the query and its options (limit, spans per spanset, time
/// range). Raises ValueError with the HTTP 400 body for a query Tempo refuses.
#[pyclass(frozen)]
pub struct SearchQuery {
    pub plan: Arc<SearchPlan>,
    canonical: String,
}

#[pymethods]
impl SearchQuery {
    #[new]
    #[pyo3(signature = (q, limit=20, spss=3, start_ns=0, end_ns=0))]
    fn new(q: &str, limit: usize, spss: usize, start_ns: u64, end_ns: u64) -> PyResult<Self> {
        let options = SearchOptions { limit, spans_per_spanset: spss, start_ns, end_ns };
        let plan = SearchPlan::compile(q, options).map_err(PyValueError::new_err)?;
        let canonical = plan.pipeline.to_string();
        Ok(SearchQuery { plan: Arc::new(plan), canonical })
    }

    /// The query's canonical TraceQL (equal for equivalent spellings).
    #[getter]
    fn canonical(&self) -> &str {
        &self.canonical
    }
}

/// `(json bytes of the matched traces, {figure: n})`.
pub type SearchOut = (Py<PyBytes>, Py<PyDict>);

pub fn run(py: Python<'_>, query: &SearchQuery, sources: Vec<Source>) -> PyResult<SearchOut> {
    let plan = query.plan.clone();
    let (found, stats) = py.detach(|| {
        let mut found = Found::default();
        let stats = search_sources(&plan, &sources, &mut found);
        (found, stats)
    });
    out(py, found, stats)
}

fn out(py: Python<'_>, found: Found, stats: JobStats) -> PyResult<SearchOut> {
    let mut body = Vec::new();
    write_json_array(&found.traces, &mut body);
    let d = PyDict::new(py);
    d.set_item("inspected_spans", stats.inspected_spans)?;
    d.set_item("inspected_traces", stats.inspected_traces)?;
    d.set_item("inspected_bytes", stats.inspected_bytes)?;
    d.set_item("blocks", stats.blocks)?;
    d.set_item("block_bytes", stats.block_bytes)?;
    d.set_item("errors", stats.errors)?;
    Ok((PyBytes::new(py, &body).unbind(), d.unbind()))
}

/// `(block id, size in bytes, start unix ns, end unix ns)` of each block.
pub fn block_list(blocks: &[Arc<BlockReader>]) -> Vec<(String, u64, u64, u64)> {
    blocks
        .iter()
        .map(|b| {
            let m = b.meta();
            (
                m.block_id.clone(),
                m.size,
                parse_rfc3339(&m.start_time).unwrap_or(0),
                parse_rfc3339(&m.end_time).unwrap_or(u64::MAX),
            )
        })
        .collect()
}

/// The blocks among `blocks` whose ids are in `ids`, in the order of `ids`.
pub fn pick(blocks: Vec<Arc<BlockReader>>, ids: &[String]) -> Vec<Source> {
    ids.iter()
        .filter_map(|id| blocks.iter().find(|b| &b.meta().block_id == id))
        .map(|b| Source::Block(b.clone()))
        .collect()
}

/// Searches OTLP requests in memory (tests and tools): the same engine, over one batch
/// built from `requests` with the default dedicated columns.
#[pyfunction]
#[pyo3(signature = (q, requests, spss=3, limit=0))]
pub fn search_otlp(
    py: Python<'_>,
    q: &str,
    requests: Vec<Vec<u8>>,
    spss: usize,
    limit: usize,
) -> PyResult<Py<PyBytes>> {
    let query = SearchQuery::new(q, limit, spss, 0, 0)?;
    let plan = query.plan.clone();
    let body = py
        .detach(|| {
            let source = otlp_source(requests)?;
            let mut found = Found::default();
            search_sources(&plan, &[source], &mut found);
            let mut body = Vec::new();
            write_json_array(&found.traces, &mut body);
            Ok::<_, String>(body)
        })
        .map_err(PyValueError::new_err)?;
    Ok(PyBytes::new(py, &body).unbind())
}

/// A tag-autocomplete request: attribute names of some scopes, or the values of one tag
/// (a TraceQL identifier: `resource.service.name`, `.foo`, `name`, `status`, …), over the
/// spans `q` matches (a query that does not parse filters nothing, as Tempo's lenient
/// autocomplete), up to `max_bytes` of answers.
#[pyclass(frozen)]
pub struct TagRequest {
    target: TagTarget,
    filter: Option<Arc<SearchPlan>>,
    max_bytes: usize,
}

#[pymethods]
impl TagRequest {
    #[new]
    #[pyo3(signature = (scopes=None, tag=None, q=None, start_ns=0, end_ns=0, max_bytes=1 << 20))]
    fn new(
        scopes: Option<Vec<String>>,
        tag: Option<&str>,
        q: Option<&str>,
        start_ns: u64,
        end_ns: u64,
        max_bytes: usize,
    ) -> PyResult<Self> {
        let target = match (scopes, tag) {
            (Some(scopes), None) => TagTarget::Names(
                scopes
                    .iter()
                    .map(|s| match s.as_str() {
                        "span" => Ok(AttributeScope::Span),
                        "resource" => Ok(AttributeScope::Resource),
                        "event" => Ok(AttributeScope::Event),
                        "link" => Ok(AttributeScope::Link),
                        "instrumentation" => Ok(AttributeScope::Instrumentation),
                        other => Err(PyValueError::new_err(format!("unknown scope {other:?}"))),
                    })
                    .collect::<PyResult<_>>()?,
            ),
            (None, Some(tag)) => match parse_field(tag) {
                Some(Field::Attribute(a)) => TagTarget::AttributeValues(a),
                Some(Field::Intrinsic(i)) => TagTarget::IntrinsicValues(i),
                None => return Err(PyValueError::new_err(format!("invalid tag {tag:?}"))),
            },
            _ => return Err(PyValueError::new_err("give either scopes or tag")),
        };
        let options = SearchOptions { limit: 0, spans_per_spanset: 0, start_ns, end_ns };
        let q = q.unwrap_or("{}");
        let plan = SearchPlan::compile(q, options.clone())
            .or_else(|_| SearchPlan::compile("{}", options))
            .map_err(PyValueError::new_err)?;
        Ok(TagRequest { target, filter: Some(Arc::new(plan)), max_bytes })
    }
}

/// A TraceQL identifier as a field (`{} | select(<tag>)` parsed).
fn parse_field(tag: &str) -> Option<Field> {
    let q = tempo_core::traceql::parse(&format!("{{}} | select({tag})")).ok()?;
    let QueryBody::Pipeline(p) = q.body else { return None };
    match p.stages.last()? {
        Stage::Select(fields) if fields.len() == 1 => fields.first().cloned(),
        _ => None,
    }
}

pub fn run_tags(py: Python<'_>, req: &TagRequest, sources: Vec<Source>) -> PyResult<SearchOut> {
    let filter = req.filter.clone();
    let target = req.target.clone();
    let max_bytes = req.max_bytes;
    let (tags, errors) = py.detach(|| {
        let mut tags = Tags::default();
        let errors = collect_tags(&sources, &target, filter.as_deref(), max_bytes, &mut tags);
        (tags, errors)
    });
    let body = match &req.target {
        TagTarget::Names(_) => serde_json::to_vec(&tags.names),
        _ => serde_json::to_vec(
            &tags
                .values
                .iter()
                .map(|(t, v)| serde_json::json!({"type": t, "value": v}))
                .collect::<Vec<_>>(),
        ),
    }
    .map_err(runtime)?;
    let d = PyDict::new(py);
    d.set_item("inspected_bytes", tags.inspected_bytes)?;
    d.set_item("errors", errors)?;
    Ok((PyBytes::new(py, &body).unbind(), d.unbind()))
}

/// A compiled TraceQL metrics query over spans starting in `(start_ns, end_ns]` (the
/// aligned window) in steps of `step_ns`. Raises ValueError with the HTTP 400 body for a query Tempo refuses
/// (`not a metrics query` for a plain search).
#[pyclass(frozen, name = "MetricsQuery")]
pub struct PyMetricsQuery {
    pub query: Arc<MetricsQuery>,
}

#[pymethods]
impl PyMetricsQuery {
    #[new]
    #[pyo3(signature = (q, start_ns=0, end_ns=0, step_ns=0))]
    fn new(q: &str, start_ns: u64, end_ns: u64, step_ns: u64) -> PyResult<Self> {
        let query =
            MetricsQuery::compile(q, start_ns, end_ns, step_ns).map_err(PyValueError::new_err)?;
        Ok(PyMetricsQuery { query: Arc::new(query) })
    }

    /// The expression over the leaves, as JSON: `{"leaf": i, "second": […]}` or
    /// `{"op": "+", "lhs": …, "rhs": …, "second": […]}`; a second stage is `{"topk": k}`,
    /// `{"bottomk": k}` or `{"op": ">", "value": x}`.
    #[getter]
    fn tree(&self) -> String {
        self.query.tree.to_string()
    }

    #[getter]
    fn canonical(&self) -> &str {
        &self.query.canonical
    }

    /// Per leaf: `func`, `by` (label names), `quantiles`, `bucket_scale`, and for
    /// `compare()` `top_n`, `compare_start`, `compare_end` (unix ns, 0 when absent).
    #[getter]
    fn leaves<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.query
            .leaves
            .iter()
            .map(|l| {
                let d = PyDict::new(py);
                d.set_item("func", l.func)?;
                d.set_item("by", l.by_names.clone())?;
                d.set_item("quantiles", l.quantiles.clone())?;
                d.set_item("bucket_scale", l.bucket_scale)?;
                if let Some(c) = &l.compare {
                    d.set_item("top_n", c.top_n)?;
                    d.set_item("compare_start", c.start)?;
                    d.set_item("compare_end", c.end)?;
                }
                Ok(d)
            })
            .collect()
    }
}

fn label_py<'py>(py: Python<'py>, v: &Option<OutValue>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        None | Some(OutValue::Array(_)) => {
            PyTuple::new(py, ["nil".into_pyobject(py)?.into_any(), py.None().into_bound(py)])?
        }
        Some(OutValue::Str(s)) => PyTuple::new(
            py,
            ["string".into_pyobject(py)?.into_any(), s.into_pyobject(py)?.into_any()],
        )?,
        Some(OutValue::Int(i)) => PyTuple::new(
            py,
            ["int".into_pyobject(py)?.into_any(), i.into_pyobject(py)?.into_any()],
        )?,
        Some(OutValue::Float(f)) => PyTuple::new(
            py,
            ["float".into_pyobject(py)?.into_any(), f.into_pyobject(py)?.into_any()],
        )?,
        Some(OutValue::Bool(b)) => PyTuple::new(
            py,
            ["bool".into_pyobject(py)?.into_any(), b.into_pyobject(py)?.to_owned().into_any()],
        )?,
    }
    .into_any())
}

fn bytes_of<T: Copy>(py: Python<'_>, v: &[T]) -> Py<PyBytes> {
    // SAFETY: T is a plain little-endian number (u32, i64, f64); the slice is read as bytes.
    let b =
        unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) };
    PyBytes::new(py, b).unbind()
}

/// Runs every leaf of `query` over `sources`: per leaf a dict of columns (`index` u32,
/// `ts` i64, `values` f64, exemplar columns), distinct `keys` (tuples of `(type, value)`
/// labels; for `compare()` one label, nil for an attribute's totals, its attribute name in
/// `key_names`, and `maxed` attributes) and figures.
pub fn run_metrics(
    py: Python<'_>,
    query: &PyMetricsQuery,
    sources: Vec<Source>,
    exemplars: usize,
) -> PyResult<Py<PyList>> {
    let q = query.query.clone();
    let outs: Vec<MetricsOut> =
        py.detach(|| q.leaves.iter().map(|l| metrics_sources(l, &sources, exemplars)).collect());
    let list = PyList::empty(py);
    for out in outs {
        let d = PyDict::new(py);
        let keys = PyList::empty(py);
        for k in &out.keys {
            let items = k.iter().map(|v| label_py(py, v)).collect::<PyResult<Vec<_>>>()?;
            keys.append(PyTuple::new(py, items)?)?;
        }
        d.set_item("keys", keys)?;
        d.set_item("key_names", out.key_names)?;
        d.set_item("maxed", out.maxed)?;
        d.set_item("index", bytes_of(py, &out.index))?;
        d.set_item("ts", bytes_of(py, &out.ts))?;
        d.set_item("values", bytes_of(py, &out.values))?;
        d.set_item("ex_index", bytes_of(py, &out.ex_index))?;
        d.set_item("ex_ts", bytes_of(py, &out.ex_ts))?;
        d.set_item("ex_value", bytes_of(py, &out.ex_value))?;
        d.set_item("ex_trace", out.ex_trace)?;
        d.set_item("ex_span", out.ex_span)?;
        d.set_item("spans", out.spans)?;
        d.set_item("inspected_spans", out.stats.inspected_spans)?;
        d.set_item("inspected_traces", out.stats.inspected_traces)?;
        d.set_item("inspected_bytes", out.stats.inspected_bytes)?;
        d.set_item("blocks", out.stats.blocks)?;
        d.set_item("block_bytes", out.stats.block_bytes)?;
        d.set_item("errors", out.stats.errors)?;
        list.append(d)?;
    }
    Ok(list.unbind())
}

/// Runs a metrics query over OTLP requests in memory (tests and benchmarks): one batch
/// built from `requests` with the default dedicated columns, as [`run_metrics`].
#[pyfunction]
#[pyo3(signature = (query, requests, exemplars=0))]
pub fn metrics_otlp(
    py: Python<'_>,
    query: PyRef<'_, PyMetricsQuery>,
    requests: Vec<Vec<u8>>,
    exemplars: usize,
) -> PyResult<Py<PyList>> {
    let source = py.detach(|| otlp_source(requests)).map_err(PyValueError::new_err)?;
    run_metrics(py, &query, vec![source], exemplars)
}

/// OTLP requests as one in-memory batch with the default dedicated columns.
fn otlp_source(requests: Vec<Vec<u8>>) -> Result<Source, String> {
    let reqs = requests
        .into_iter()
        .map(|r| otlp::scan(Arc::from(r)).map(Arc::new).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let traces = group_traces(&reqs);
    let dedicated = default_dedicated_columns();
    let batch = build_batch(&traces, &dedicated).map_err(|e| e.to_string())?;
    Ok(Source::Batch(batch, dedicated))
}
