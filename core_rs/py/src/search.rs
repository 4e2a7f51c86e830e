//! TraceQL search at the boundary: a compiled query object, and results handed back as
//! Tempo JSON bytes (one `TraceSearchMetadata` per matched trace) plus the job's figures.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use tempo_core::block::{parse_rfc3339, BlockReader};
use tempo_core::columnar::{build_batch, group_traces};
use tempo_core::otlp;
use tempo_core::schema::default_dedicated_columns;
use tempo_core::search::tags::{collect_tags, TagTarget, Tags};
use tempo_core::search::{
    search_sources, write_json_array, Found, JobStats, SearchOptions, SearchPlan, Source,
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
            let reqs = requests
                .into_iter()
                .map(|r| otlp::scan(Arc::from(r)).map(Arc::new).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            let traces = group_traces(&reqs);
            let dedicated = default_dedicated_columns();
            let batch = build_batch(&traces, &dedicated).map_err(|e| e.to_string())?;
            let mut found = Found::default();
            search_sources(&plan, &[Source::Batch(batch, dedicated)], &mut found);
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
