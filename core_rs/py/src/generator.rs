//! The metrics generator's Rust core at the boundary: a push's accepted spans as an
//! opaque [`SpanBatch`], span-metrics keys and the service-graph edge store. Per-span
//! columns cross as little-endian bytes (numpy.frombuffer on the Python side); only
//! distinct keys become Python objects. The GIL is released for every span loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use tempo_core::generator::{
    hex_id, DimensionMapping, EdgeBatch as CoreEdgeBatch, FilterAttr, FilterPolicy, FilterValue,
    KeyIds, Keys, PolicyMatch, Scope, ServiceGraphConfig, ServiceGraphStore as CoreStore,
    SpanMetricsOptions, SpanMetricsProcessor as CoreProcessor,
};
use tempo_core::model::{Request, TraceId};
use tempo_core::otlp;

use crate::decode_error;

/// The accepted spans of one push (shares the request buffer; no copy).
#[pyclass(frozen)]
pub struct SpanBatch {
    pub req: Arc<Request>,
}

#[pymethods]
impl SpanBatch {
    /// Number of spans.
    #[getter]
    fn spans(&self) -> usize {
        self.req.spans.len()
    }

    fn __repr__(&self) -> String {
        format!("SpanBatch(spans={})", self.req.spans.len())
    }
}

/// A SpanBatch from a protobuf `ExportTraceServiceRequest` (tests and benches).
#[pyfunction]
pub fn span_batch_from_otlp(py: Python<'_>, body: &[u8]) -> PyResult<SpanBatch> {
    let req = py.detach(|| otlp::scan(Arc::from(body))).map_err(|e| decode_error(py, &e))?;
    Ok(SpanBatch { req: Arc::new(req) })
}

/// `values` as little-endian fixed-width bytes.
fn le_bytes<T: Copy, const N: usize>(
    py: Python<'_>,
    values: &[T],
    to_le: impl Fn(T) -> [u8; N],
) -> PyResult<Py<PyBytes>> {
    let b = PyBytes::new_with(py, values.len() * N, |out| {
        for (chunk, &v) in out.chunks_exact_mut(N).zip(values) {
            chunk.copy_from_slice(&to_le(v));
        }
        Ok(())
    })?;
    Ok(b.unbind())
}

/// The key tuples handed out recently, so a key seen again is the same tuple object
/// (no new str or tuple objects for it). Bounded: cleared when full.
#[derive(Default)]
struct TupleCache {
    tuples: HashMap<Box<[u8]>, Py<PyTuple>, ahash::RandomState>,
    /// The key's labels, each followed by 0xff (never in UTF-8).
    scratch: Vec<u8>,
}

const TUPLE_CACHE_MAX: usize = 1 << 16;

impl TupleCache {
    fn list(&mut self, py: Python<'_>, keys: &Keys) -> PyResult<Py<PyList>> {
        if self.tuples.len() + keys.len() > TUPLE_CACHE_MAX {
            self.tuples.clear();
        }
        let mut out = Vec::with_capacity(keys.len());
        for k in 0..keys.len() {
            self.scratch.clear();
            for l in keys.key(k) {
                self.scratch.extend_from_slice(l.as_bytes());
                self.scratch.push(0xff);
            }
            let t = match self.tuples.get(self.scratch.as_slice()) {
                Some(t) => t.clone_ref(py),
                None => {
                    let t = PyTuple::new(py, keys.key(k))?.unbind();
                    self.tuples.insert(self.scratch.as_slice().into(), t.clone_ref(py));
                    t
                }
            };
            out.push(t);
        }
        Ok(PyList::new(py, out)?.unbind())
    }
}

fn trace_ids(py: Python<'_>, ids: &[TraceId]) -> PyResult<Py<PyList>> {
    Ok(PyList::new(py, ids.iter().map(|t| hex_id(t)))?.unbind())
}

/// A filter value from Python: bool, int, float or str (bool first: it is an int too).
fn filter_value(v: &Bound<'_, PyAny>) -> PyResult<FilterValue> {
    if let Ok(b) = v.cast::<pyo3::types::PyBool>() {
        return Ok(FilterValue::Bool(b.is_true()));
    }
    if let Ok(i) = v.extract::<i64>() {
        return Ok(FilterValue::Int(i));
    }
    if let Ok(f) = v.extract::<f64>() {
        return Ok(FilterValue::Float(f));
    }
    v.extract::<String>().map(FilterValue::Str).map_err(|_| {
        PyValueError::new_err(format!("filter value {v} must be a string, number or bool"))
    })
}

/// A block `(regex, [(scope, name, value), ...])` as the config module normalises it.
type PyBlock<'py> = (bool, Vec<(String, String, Bound<'py, PyAny>)>);

fn policy_match(block: Option<PyBlock<'_>>) -> PyResult<Option<PolicyMatch>> {
    let Some((regex, attrs)) = block else { return Ok(None) };
    let mut attributes = Vec::with_capacity(attrs.len());
    for (scope, name, value) in attrs {
        let scope = match scope.as_str() {
            "resource" => Scope::Resource,
            "span" => Scope::Span,
            "intrinsic" => Scope::Intrinsic,
            other => return Err(PyValueError::new_err(format!("unknown scope {other:?}"))),
        };
        attributes.push(FilterAttr { scope, name, value: filter_value(&value)? });
    }
    Ok(Some(PolicyMatch { regex, attributes }))
}

/// Span-metrics label values per span (Tempo's `span-metrics` processor). Keys get ids that
/// stay the same across batches, so Python maps a key to its series once.
#[pyclass(frozen)]
pub struct SpanMetricsProcessor {
    inner: Arc<CoreProcessor>,
    ids: Arc<Mutex<KeyIds>>,
}

/// Distinct keys a processor remembers before it starts over (a new generation).
const MAX_KEY_IDS: usize = 1 << 20;

#[pymethods]
impl SpanMetricsProcessor {
    /// `dimension_mappings`: `(name, source_labels, join)` tuples; `filter_policies`:
    /// `(include, exclude)` pairs, each None or `(regex, [(scope, name, value), ...])` with
    /// scope `resource`, `span` or `intrinsic`. Invalid policies raise ValueError.
    #[new]
    #[pyo3(signature = (
        intrinsics, dimensions, slack_seconds=30.0, max_keys=MAX_KEY_IDS,
        dimension_mappings=Vec::new(), filter_policies=Vec::new(), target_info=false,
        instance_label=true, target_info_excluded=Vec::new(),
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        intrinsics: Vec<String>,
        dimensions: Vec<String>,
        slack_seconds: f64,
        max_keys: usize,
        dimension_mappings: Vec<(String, Vec<String>, String)>,
        filter_policies: Vec<(Option<PyBlock<'_>>, Option<PyBlock<'_>>)>,
        target_info: bool,
        instance_label: bool,
        target_info_excluded: Vec<String>,
    ) -> PyResult<Self> {
        let mappings: Vec<DimensionMapping> = dimension_mappings
            .into_iter()
            .map(|(name, source_labels, join)| DimensionMapping { name, source_labels, join })
            .collect();
        let policies = filter_policies
            .into_iter()
            .map(|(i, e)| Ok(FilterPolicy { include: policy_match(i)?, exclude: policy_match(e)? }))
            .collect::<PyResult<Vec<_>>>()?;
        let options = SpanMetricsOptions {
            dimension_mappings: mappings,
            filter_policies: policies,
            target_info,
            instance_label,
            target_info_excluded,
        };
        let p = CoreProcessor::configured(&intrinsics, &dimensions, &options, slack_seconds)
            .map_err(PyValueError::new_err)?;
        Ok(SpanMetricsProcessor {
            inner: Arc::new(p),
            ids: Arc::new(Mutex::new(KeyIds::new(max_keys))),
        })
    }

    /// Intrinsics then sanitised dimension labels.
    #[getter]
    fn label_names(&self) -> Vec<String> {
        self.inner.label_names().to_vec()
    }

    /// Forgets every key id (a new generation): the next batch hands out all its keys again.
    fn reset_keys(&self) {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).reset();
    }

    fn process(
        &self,
        py: Python<'_>,
        batch: PyRef<'_, SpanBatch>,
        now_ns: u64,
    ) -> PyResult<SpanMetricsBatch> {
        let (p, req, ids) = (self.inner.clone(), batch.req.clone(), self.ids.clone());
        let (b, key_ids, new, generation) = py.detach(move || {
            let mut b = p.process(&req, now_ns);
            let mut ids = ids.lock().unwrap_or_else(|e| e.into_inner());
            let (key_ids, new) = ids.assign(&b.keys);
            for i in b.index.iter_mut() {
                *i = key_ids[*i as usize];
            }
            (b, key_ids, new, ids.generation())
        });
        let new_keys = new
            .iter()
            .map(|&k| (key_ids[k], PyTuple::new(py, b.keys.key(k)).map(|t| t.unbind())))
            .map(|(id, t)| t.map(|t| (id, t)))
            .collect::<PyResult<Vec<_>>>()?;
        let traces: Vec<u8> = b.exemplar_trace_ids.iter().flatten().copied().collect();
        let target_info = b
            .target_info
            .iter()
            .map(|pairs| PyTuple::new(py, pairs).map(|t| t.unbind()))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(SpanMetricsBatch {
            new_keys: PyList::new(py, new_keys)?.unbind(),
            generation,
            key_ids: le_bytes(py, &key_ids, u32::to_le_bytes)?,
            index: le_bytes(py, &b.index, u32::to_le_bytes)?,
            latency: le_bytes(py, &b.latency, f64::to_le_bytes)?,
            size: le_bytes(py, &b.size, f64::to_le_bytes)?,
            exemplar_trace_ids: PyBytes::new(py, &traces).unbind(),
            exemplar_latency: le_bytes(py, &b.exemplar_latency, f64::to_le_bytes)?,
            exemplar_time_ms: le_bytes(py, &b.exemplar_time_ms, i64::to_le_bytes)?,
            outside_slack: b.outside_slack,
            filtered: b.filtered,
            negative_duration: b.negative_duration,
            target_info: PyList::new(py, target_info)?.unbind(),
        })
    }
}

/// One batch's span-metrics columns. Keys are stable ids: `index` gives each kept span's key
/// id, `key_ids` the batch's distinct ids (the exemplar columns follow it), `new_keys` the
/// labels of ids not handed out before in this `generation`.
#[pyclass(frozen, get_all)]
pub struct SpanMetricsBatch {
    new_keys: Py<PyList>,
    generation: u64,
    key_ids: Py<PyBytes>,
    index: Py<PyBytes>,
    latency: Py<PyBytes>,
    size: Py<PyBytes>,
    exemplar_trace_ids: Py<PyBytes>,
    exemplar_latency: Py<PyBytes>,
    exemplar_time_ms: Py<PyBytes>,
    outside_slack: u64,
    filtered: u64,
    negative_duration: u64,
    target_info: Py<PyList>,
}

/// Service-graph edges waiting for their other half (thread-safe; one per tenant).
#[pyclass(frozen)]
pub struct ServiceGraphStore {
    inner: Arc<CoreStore>,
    tuples: Mutex<TupleCache>,
}

#[pymethods]
impl ServiceGraphStore {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        wait_seconds=10.0,
        max_items=10000,
        dimensions=Vec::new(),
        enable_client_server_prefix=false,
        enable_virtual_node_label=false,
        enable_messaging_system_latency_histogram=false,
        peer_attributes=vec!["peer.service".to_string(), "db.name".to_string(), "db.system".to_string()],
        database_name_attributes=vec!["db.namespace".to_string(), "db.name".to_string(), "db.system".to_string()],
        slack_seconds=30.0,
    ))]
    fn new(
        wait_seconds: f64,
        max_items: usize,
        dimensions: Vec<String>,
        enable_client_server_prefix: bool,
        enable_virtual_node_label: bool,
        enable_messaging_system_latency_histogram: bool,
        peer_attributes: Vec<String>,
        database_name_attributes: Vec<String>,
        slack_seconds: f64,
    ) -> Self {
        let cfg = ServiceGraphConfig {
            wait_seconds,
            max_items,
            dimensions,
            enable_client_server_prefix,
            enable_virtual_node_label,
            enable_messaging_system_latency_histogram,
            peer_attributes,
            database_name_attributes,
            slack_seconds,
        };
        ServiceGraphStore { inner: Arc::new(CoreStore::new(cfg)), tuples: Mutex::default() }
    }

    /// `client`, `server`, `connection_type`, `virtual_node` (when enabled), dimensions.
    #[getter]
    fn label_names(&self) -> Vec<String> {
        self.inner.label_names().to_vec()
    }

    /// Edges completed by this batch.
    fn push(
        &self,
        py: Python<'_>,
        batch: PyRef<'_, SpanBatch>,
        now_ns: u64,
    ) -> PyResult<EdgeBatch> {
        let (s, req) = (self.inner.clone(), batch.req.clone());
        let b = py.detach(move || s.push(&req, now_ns));
        self.edges(py, b)
    }

    /// Edges waiting `wait_seconds` or longer: virtual-node edges emitted, the rest dropped.
    fn expire(&self, py: Python<'_>, now_ns: u64) -> PyResult<EdgeBatch> {
        let s = self.inner.clone();
        let b = py.detach(move || s.expire(now_ns));
        self.edges(py, b)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }
}

impl ServiceGraphStore {
    fn edges(&self, py: Python<'_>, b: CoreEdgeBatch) -> PyResult<EdgeBatch> {
        let keys = self.tuples.lock().unwrap_or_else(|e| e.into_inner()).list(py, &b.keys)?;
        EdgeBatch::from_core(py, keys, b)
    }
}

/// Completed (or virtual-node) edges by distinct label values, with per-edge columns.
#[pyclass(frozen, get_all)]
pub struct EdgeBatch {
    keys: Py<PyList>,
    index: Py<PyBytes>,
    server_seconds: Py<PyBytes>,
    client_seconds: Py<PyBytes>,
    failed: Py<PyBytes>,
    messaging_seconds: Py<PyBytes>,
    exemplar_trace_ids: Py<PyList>,
    dropped_spans: u64,
    expired_edges: u64,
    outside_slack: u64,
}

impl EdgeBatch {
    fn from_core(py: Python<'_>, keys: Py<PyList>, b: CoreEdgeBatch) -> PyResult<Self> {
        Ok(EdgeBatch {
            keys,
            index: le_bytes(py, &b.index, u32::to_le_bytes)?,
            server_seconds: le_bytes(py, &b.server_seconds, f64::to_le_bytes)?,
            client_seconds: le_bytes(py, &b.client_seconds, f64::to_le_bytes)?,
            failed: PyBytes::new(py, &b.failed).unbind(),
            messaging_seconds: le_bytes(py, &b.messaging_seconds, f64::to_le_bytes)?,
            exemplar_trace_ids: trace_ids(py, &b.exemplar_trace_ids)?,
            dropped_spans: b.dropped_spans,
            expired_edges: b.expired_edges,
            outside_slack: b.outside_slack,
        })
    }
}

/// The batch's distinct `(host id, identifier attribute)` pairs for `host-info`: per
/// resource, the first of `identifiers` holding a non-empty string.
#[pyfunction]
pub fn host_ids(
    py: Python<'_>,
    batch: PyRef<'_, SpanBatch>,
    identifiers: Vec<String>,
) -> Vec<(String, String)> {
    let req = batch.req.clone();
    py.detach(move || tempo_core::generator::hostinfo::host_ids(&req, &identifiers))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SpanBatch>()?;
    m.add_class::<SpanMetricsProcessor>()?;
    m.add_class::<SpanMetricsBatch>()?;
    m.add_class::<ServiceGraphStore>()?;
    m.add_class::<EdgeBatch>()?;
    m.add_function(wrap_pyfunction!(span_batch_from_otlp, m)?)?;
    m.add_function(wrap_pyfunction!(host_ids, m)?)?;
    Ok(())
}
