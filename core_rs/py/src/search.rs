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
use tempo_core::search::{
    search_sources, write_json_array, Found, JobStats, SearchOptions, SearchPlan, Source,
};


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
