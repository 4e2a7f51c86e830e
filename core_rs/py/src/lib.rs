//! Python binding of tempo_core, imported as `tempo_fast._core`.
//!
//! Only converts at the boundary: request bodies in, counts and opaque handles
//! out. Every call that touches spans releases the GIL. The typed surface is
//! `tempo_fast/_core.pyi`.

mod compaction;
mod generator;
mod search;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use tempo_core::block::{
    export_block_to as block_export_to, traces_per_shard, BlockConfig, BlockReader, BlockSource,
};
use tempo_core::blocklist::{BlockStore as CoreBlockStore, LookupStats, SourceBlocks};
use tempo_core::ingester::{
    Encoding, Ingester as CoreIngester, IngesterConfig, PushError, PushOutcome,
};
use tempo_core::limits::Limits;
use tempo_core::log::{set_level, Level};
use tempo_core::otlp::{self, DecodeError as CoreDecodeError};
use tempo_core::render::{render_trace as core_render, RenderMeta, TraceFormat};
use tempo_core::schema::{DedicatedColumn, DedicatedScope, DedicatedType};
use tempo_core::wal::FsyncMode;

create_exception!(_core, DecodeError, PyValueError, "The body is not a valid OTLP request.");
create_exception!(_core, TooLargeError, DecodeError, "The body exceeds the size limit.");
create_exception!(
    _core,
    RateLimitedError,
    PyRuntimeError,
    "The tenant is over its ingestion rate limit; the client should retry later."
);
create_exception!(
    _core,
    OverloadedError,
    PyRuntimeError,
    "The ingester is over its memory limit; the client should retry later."
);

pub(crate) fn decode_error(py: Python<'_>, e: &CoreDecodeError) -> PyErr {
    let err = match e {
        CoreDecodeError::TooLarge { .. } => TooLargeError::new_err(e.to_string()),
        _ => DecodeError::new_err(e.to_string()),
    };
    let _ = err.value(py).setattr("reason_code", e.reason_code());
    err
}

fn push_error(py: Python<'_>, e: PushError) -> PyErr {
    match &e {
        PushError::Decode(d) => decode_error(py, d),
        PushError::InvalidTenant(t) => PyValueError::new_err(format!("invalid tenant id {t:?}")),
        PushError::Wal(io) => PyOSError::new_err(format!("write-ahead log append failed: {io}")),
        PushError::Overloaded(_) | PushError::WouldWait => {
            let err = OverloadedError::new_err(e.to_string());
            let _ = err.value(py).setattr("reason_code", "overloaded");
            err
        }
        PushError::RateLimited { spans, .. } => {
            let err = RateLimitedError::new_err(e.to_string());
            let _ = err.value(py).setattr("reason_code", "rate_limited");
            let _ = err.value(py).setattr("spans", *spans);
            err
        }
    }
}

pub(crate) fn runtime<E: std::fmt::Display>(e: E) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

fn trace_id(id: &[u8]) -> PyResult<[u8; 16]> {
    id.try_into().map_err(|_| PyValueError::new_err("trace id must be 16 bytes"))
}

/// What one push did.
#[pyclass(frozen, get_all)]
struct PushResult {
    accepted: u64,
    invalid_trace_id: u64,
    invalid_span_id: u64,
    trace_too_large: u64,
    live_traces_exceeded: u64,
    /// Attributes truncated: (resource, scope, span, event, link).
    truncated: (u32, u32, u32, u32, u32),
    message: String,
    response: Py<PyBytes>,
    lag_seconds: Py<PyBytes>,
    /// The accepted spans for the metrics generator; None when none was accepted.
    batch: Option<Py<generator::SpanBatch>>,
}

/// Rows of one trace from one source; opaque to Python.
#[pyclass(frozen)]
struct TracePart {
    batches: Vec<RecordBatch>,
}

#[pymethods]
impl TracePart {
    #[getter]
    fn spans(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

fn part(batches: Vec<RecordBatch>) -> Option<TracePart> {
    let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
    (!batches.is_empty()).then_some(TracePart { batches })
}

fn get<'py, T>(cfg: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<T>>
where
    T: for<'a> FromPyObject<'a, 'py>,
{
    match cfg.get_item(key)? {
        Some(v) if !v.is_none() => Ok(Some(v.extract::<T>().map_err(Into::into)?)),
        _ => Ok(None),
    }
}

fn ingester_config(wal_path: PathBuf, cfg: &Bound<'_, PyDict>) -> PyResult<IngesterConfig> {
    let blocks: Option<String> = get(cfg, "blocks_path")?;
    let blocks = blocks.map(PathBuf::from).unwrap_or_else(|| wal_path.join("blocks"));
    let mut c = IngesterConfig::new(wal_path, blocks);
    let ms = |k: &str| -> PyResult<Option<Duration>> {
        Ok(get::<u64>(cfg, k)?.map(Duration::from_millis))
    };
    if let Some(f) = get::<String>(cfg, "fsync")? {
        c.fsync = FsyncMode::parse(&f).ok_or_else(|| {
            PyValueError::new_err(format!("fsync must be always, interval or never, not {f:?}"))
        })?;
    }
    if let Some(d) = ms("fsync_interval_ms")? {
        c.fsync_interval = d;
    }
    if let Some(d) = ms("trace_idle_period_ms")? {
        c.trace_idle_period = d;
    }
    if let Some(d) = ms("max_trace_live_ms")? {
        c.max_trace_live = d;
    }
    if let Some(d) = ms("flush_check_period_ms")? {
        c.flush_check_period = d;
    }
    if let Some(d) = ms("max_block_duration_ms")? {
        c.max_block_duration = d;
    }
    if let Some(d) = ms("complete_block_timeout_ms")? {
        c.complete_block_timeout = d;
    }
    if let Some(b) = get::<u64>(cfg, "max_block_bytes")? {
        c.max_block_bytes = b;
    }
    if let Some(b) = get::<usize>(cfg, "max_live_bytes")? {
        c.max_live_bytes = b;
    }
    if let Some(b) = get::<u64>(cfg, "segment_bytes")? {
        c.segment_bytes = b;
    }
    block_config(cfg, &mut c.block)?;
    if let Some(limits) = get::<Bound<'_, PyDict>>(cfg, "limits")? {
        c.limits = limits_from(&limits)?;
    }
    Ok(c)
}

/// The block layout keys of a core config dict (`row_group_spans`, `bloom_fp`,
/// `bloom_shard_bytes`, `dedicated_columns`) into `b`.
pub(crate) fn block_config(cfg: &Bound<'_, PyDict>, b: &mut BlockConfig) -> PyResult<()> {
    if let Some(n) = get::<usize>(cfg, "row_group_spans")? {
        b.row_group_rows = n;
    }
    if let Some(fp) = get::<f64>(cfg, "bloom_fp")? {
        if !(fp > 0.0 && fp < 1.0) {
            return Err(PyValueError::new_err(format!("bloom_fp must be in (0, 1), not {fp}")));
        }
        b.bloom_fp = fp;
    }
    if let Some(bytes) = get::<u64>(cfg, "bloom_shard_bytes")? {
        b.bloom_shard_traces = traces_per_shard(bytes, b.bloom_fp);
    }
    if let Some(cols) = get::<Vec<(String, String, String)>>(cfg, "dedicated_columns")? {
        b.dedicated_columns = cols
            .iter()
            .map(|(scope, name, typ)| dedicated_column(scope, name, typ))
            .collect::<PyResult<_>>()?;
    }
    Ok(())
}

/// Limits from a dict of [`Limits`] field names; missing keys keep Tempo's defaults.
fn limits_from(d: &Bound<'_, PyDict>) -> PyResult<Limits> {
    let mut l = Limits::default();
    for (key, field) in [
        ("rate_limit_bytes", &mut l.rate_limit_bytes),
        ("burst_size_bytes", &mut l.burst_size_bytes),
        ("max_traces_per_user", &mut l.max_traces_per_user),
        ("max_bytes_per_trace", &mut l.max_bytes_per_trace),
        ("max_attribute_bytes", &mut l.max_attribute_bytes),
    ] {
        if let Some(v) = get::<u64>(d, key)? {
            *field = v;
        }
    }
    for key in d.keys() {
        let key: String = key.extract()?;
        if !matches!(
            key.as_str(),
            "rate_limit_bytes"
                | "burst_size_bytes"
                | "max_traces_per_user"
                | "max_bytes_per_trace"
                | "max_attribute_bytes"
        ) {
            return Err(PyValueError::new_err(format!("unknown limit {key:?}")));
        }
    }
    Ok(l)
}

fn dedicated_column(scope: &str, name: &str, typ: &str) -> PyResult<DedicatedColumn> {
    let scope = match scope {
        "span" => DedicatedScope::Span,
        "resource" => DedicatedScope::Resource,
        other => return Err(PyValueError::new_err(format!("dedicated column scope {other:?}"))),
    };
    let typ = match typ {
        "string" => DedicatedType::String,
        "int" => DedicatedType::Int,
        other => return Err(PyValueError::new_err(format!("dedicated column type {other:?}"))),
    };
    Ok(DedicatedColumn::new(scope, name, typ))
}

/// The request body encoding named `name`.
fn encoding(name: &str) -> PyResult<Encoding> {
    Ok(match name {
        "protobuf" => Encoding::Protobuf,
        "json" => Encoding::Json,
        // `_typed`: the Zipkin receiver's parse_string_tags
        "zipkin_json" => Encoding::ZipkinJson { parse_string_tags: false },
        "zipkin_json_typed" => Encoding::ZipkinJson { parse_string_tags: true },
        "zipkin_proto" => Encoding::ZipkinProto { parse_string_tags: false },
        "zipkin_proto_typed" => Encoding::ZipkinProto { parse_string_tags: true },
        "zipkin_v1_json" => Encoding::ZipkinV1Json,
        "zipkin_v1_thrift" => Encoding::ZipkinV1Thrift,
        "jaeger_thrift_compact" => Encoding::JaegerCompact,
        "jaeger_thrift_binary" => Encoding::JaegerBinary,
        "jaeger_thrift_http" => Encoding::JaegerThrift,
        "jaeger_proto" => Encoding::JaegerProto,
        other => return Err(PyValueError::new_err(format!("unknown encoding {other:?}"))),
    })
}

/// What Python sees of a push.
fn push_result(py: Python<'_>, out: PushOutcome) -> PyResult<PushResult> {
    let invalid = out.rejected.total();
    let mut messages = Vec::new();
    if invalid > 0 {
        messages.push(format!(
            "{invalid} spans rejected: {} with an invalid trace id, {} with an invalid span id",
            out.rejected.invalid_trace_id, out.rejected.invalid_span_id
        ));
    }
    messages.extend(out.messages.iter().cloned());
    let message = messages.join("; ");
    let rejected = (invalid + out.trace_too_large + out.live_traces_exceeded) as u64;
    let response = otlp::export_response(rejected, &message);
    let lag: Vec<u8> = out.lag_seconds.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let t = out.truncated;
    let batch = match out.request {
        Some(req) if !req.spans.is_empty() => Some(Py::new(py, generator::SpanBatch { req })?),
        _ => None,
    };
    Ok(PushResult {
        accepted: out.accepted as u64,
        invalid_trace_id: out.rejected.invalid_trace_id as u64,
        invalid_span_id: out.rejected.invalid_span_id as u64,
        trace_too_large: out.trace_too_large as u64,
        live_traces_exceeded: out.live_traces_exceeded as u64,
        truncated: (t.resource, t.scope, t.span, t.event, t.link),
        message,
        response: PyBytes::new(py, &response).unbind(),
        lag_seconds: PyBytes::new(py, &lag).unbind(),
        batch,
    })
}

/// Per-tenant WAL, live traces, head chunks and block cutting.
#[pyclass(frozen)]
struct Ingester {
    inner: Arc<CoreIngester>,
}

#[pymethods]
impl Ingester {
    #[new]
    fn new(wal_path: PathBuf, config: &Bound<'_, PyDict>) -> PyResult<Self> {
        let cfg = ingester_config(wal_path, config)?;
        Ok(Ingester { inner: CoreIngester::new(cfg).map_err(runtime)? })
    }

    fn replay<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = self.inner.clone();
        let r = py.detach(move || inner.replay()).map_err(runtime)?;
        let d = PyDict::new(py);
        d.set_item("segments", r.segments)?;
        d.set_item("records", r.records)?;
        d.set_item(
            "spans",
            self.inner.stats.wal_replayed_spans.load(std::sync::atomic::Ordering::Relaxed),
        )?;
        d.set_item("torn_bytes", r.torn_bytes)?;
        Ok(d)
    }

    fn start(&self) {
        self.inner.start();
    }

    #[pyo3(signature = (tenant, body, encoding="protobuf", gzip=false, max_bytes=20 << 20))]
    fn push(
        &self,
        py: Python<'_>,
        tenant: &str,
        body: &[u8],
        encoding: &str,
        gzip: bool,
        max_bytes: usize,
    ) -> PyResult<PushResult> {
        let encoding = self::encoding(encoding)?;
        let inner = &self.inner;
        let out = py
            .detach(|| inner.push(tenant, body, encoding, gzip, max_bytes))
            .map_err(|e| push_error(py, e))?;
        push_result(py, out)
    }

    /// `push` without ever waiting for room (backpressure): None where `push` would
    /// wait, with nothing appended. For the event-loop thread.
    #[pyo3(signature = (tenant, body, encoding="protobuf", gzip=false, max_bytes=20 << 20))]
    fn try_push(
        &self,
        py: Python<'_>,
        tenant: &str,
        body: &[u8],
        encoding: &str,
        gzip: bool,
        max_bytes: usize,
    ) -> PyResult<Option<PushResult>> {
        let encoding = self::encoding(encoding)?;
        let inner = &self.inner;
        match py.detach(|| inner.try_push(tenant, body, encoding, gzip, max_bytes)) {
            Ok(out) => push_result(py, out).map(Some),
            Err(PushError::WouldWait) => Ok(None),
            Err(e) => Err(push_error(py, e)),
        }
    }

    /// Replaces the limits: `defaults` for every tenant without an entry in `tenants`.
    fn set_limits(
        &self,
        defaults: &Bound<'_, PyDict>,
        tenants: std::collections::HashMap<String, Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let per_tenant = tenants
            .iter()
            .map(|(t, d)| Ok((t.clone(), limits_from(d)?)))
            .collect::<PyResult<_>>()?;
        self.inner.limits.set(limits_from(defaults)?, per_tenant);
        Ok(())
    }

    fn find_trace(
        &self,
        py: Python<'_>,
        tenant: &str,
        trace_id: &[u8],
    ) -> PyResult<Option<TracePart>> {
        let id = self::trace_id(trace_id)?;
        let inner = &self.inner;
        let batches = py.detach(|| inner.find_trace(tenant, &id)).map_err(runtime)?;
        Ok(part(batches))
    }

    /// Searches everything the ingester holds for `tenant` (live traces, head chunks,
    /// recently completed blocks): `(json bytes of the matched traces, figures)`.
    fn search(
        &self,
        py: Python<'_>,
        tenant: &str,
        query: PyRef<'_, search::SearchQuery>,
    ) -> PyResult<search::SearchOut> {
        let inner = &self.inner;
        let sources = py.detach(|| inner.search_sources(tenant)).map_err(runtime)?;
        search::run(py, &query, sources)
    }

    /// Runs a TraceQL metrics query over everything the ingester holds for `tenant`.
    #[pyo3(signature = (tenant, query, exemplars=0))]
    fn metrics(
        &self,
        py: Python<'_>,
        tenant: &str,
        query: PyRef<'_, search::PyMetricsQuery>,
        exemplars: usize,
    ) -> PyResult<Py<pyo3::types::PyList>> {
        let inner = &self.inner;
        let sources = py.detach(|| inner.search_sources(tenant)).map_err(runtime)?;
        search::run_metrics(py, &query, sources, exemplars)
    }

    /// Tag names or values from everything the ingester holds for `tenant`.
    fn search_tags(
        &self,
        py: Python<'_>,
        tenant: &str,
        request: PyRef<'_, search::TagRequest>,
    ) -> PyResult<search::SearchOut> {
        let inner = &self.inner;
        let sources = py.detach(|| inner.search_sources(tenant)).map_err(runtime)?;
        search::run_tags(py, &request, sources)
    }

    /// Ids of `tenant`'s completed blocks the ingester still serves (its searches cover them).
    fn complete_block_ids(&self, tenant: &str) -> Vec<String> {
        self.inner.complete_block_ids(tenant)
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &self.inner;
        py.detach(|| inner.flush()).map_err(runtime)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        use std::sync::atomic::Ordering::Relaxed;
        let tenants = PyDict::new(py);
        let mut fsyncs = 0;
        for s in self.inner.tenant_stats() {
            let d = PyDict::new(py);
            d.set_item("live_traces", s.live_traces)?;
            d.set_item("live_bytes", s.live_bytes)?;
            d.set_item("traces_created", s.traces_created)?;
            d.set_item("spans_received", s.spans_received)?;
            d.set_item("bytes_received", s.bytes_received)?;
            d.set_item("blocks_cut", s.blocks_cut)?;
            d.set_item("head_chunks", s.head_chunks)?;
            d.set_item("wal_bytes_written", s.wal_bytes_written)?;
            d.set_item("wal_records", s.wal_records)?;
            d.set_item("wal_segments", s.wal_segments)?;
            fsyncs += s.wal_fsyncs;
            tenants.set_item(&s.tenant, d)?;
        }
        let g = &self.inner.stats;
        let global = PyDict::new(py);
        global.set_item("wal_fsyncs", fsyncs)?;
        global.set_item("wal_replayed_spans", g.wal_replayed_spans.load(Relaxed))?;
        global.set_item("wal_torn_bytes", g.wal_torn_bytes.load(Relaxed))?;
        global.set_item("blocks_flushed", g.blocks_flushed.load(Relaxed))?;
        global.set_item("flush_failures", g.flush_failures.load(Relaxed))?;
        let out = PyDict::new(py);
        out.set_item("tenants", tenants)?;
        out.set_item("global", global)?;
        Ok(out)
    }

    fn close(&self, py: Python<'_>) {
        let inner = &self.inner;
        py.detach(|| inner.stop());
    }
}

/// The block-list methods `BlockStore` and `RemoteBlocks` share (both hold `inner` with
/// `blocks(tenant)` and `find_trace(tenant, id)`), added to the class's own `#[pymethods]`.
macro_rules! block_methods {
    (impl $ty:ident { $($own:tt)* }) => {
        #[pymethods]
        impl $ty {
            $($own)*

            /// `(block id, size, start unix ns, end unix ns)` of every block of `tenant`.
            fn list_blocks(&self, tenant: &str) -> Vec<(String, u64, u64, u64)> {
                search::block_list(&self.inner.blocks(tenant))
            }

            /// Tag names or values from `tenant`'s blocks `block_ids`.
            fn search_tags(
                &self,
                py: Python<'_>,
                tenant: &str,
                request: PyRef<'_, search::TagRequest>,
                block_ids: Vec<String>,
            ) -> PyResult<search::SearchOut> {
                let sources = search::pick(self.inner.blocks(tenant), &block_ids);
                search::run_tags(py, &request, sources)
            }

            /// Runs a TraceQL metrics query over `tenant`'s blocks `block_ids`.
            #[pyo3(signature = (tenant, query, block_ids, exemplars=0))]
            fn metrics(
                &self,
                py: Python<'_>,
                tenant: &str,
                query: PyRef<'_, search::PyMetricsQuery>,
                block_ids: Vec<String>,
                exemplars: usize,
            ) -> PyResult<Py<pyo3::types::PyList>> {
                let sources = search::pick(self.inner.blocks(tenant), &block_ids);
                search::run_metrics(py, &query, sources, exemplars)
            }

            /// Searches `tenant`'s blocks `block_ids` in that order, stopping at the query's limit.
            fn search(
                &self,
                py: Python<'_>,
                tenant: &str,
                query: PyRef<'_, search::SearchQuery>,
                block_ids: Vec<String>,
            ) -> PyResult<search::SearchOut> {
                let sources = search::pick(self.inner.blocks(tenant), &block_ids);
                search::run(py, &query, sources)
            }

            fn find_trace<'py>(
                &self,
                py: Python<'py>,
                tenant: &str,
                trace_id: &[u8],
            ) -> PyResult<(Option<TracePart>, Bound<'py, PyDict>)> {
                let inner = &self.inner;
                find_part(py, trace_id, |id| inner.find_trace(tenant, id))
            }
        }
    };
}

/// The querier's view of complete blocks under a local backend path.
#[pyclass(frozen)]
struct BlockStore {
    inner: Arc<CoreBlockStore>,
}

block_methods! {
impl BlockStore {
    #[new]
    fn new(path: PathBuf) -> Self {
        BlockStore { inner: Arc::new(CoreBlockStore::new(path)) }
    }

    fn poll<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = &self.inner;
        let counts = py.detach(|| inner.poll()).map_err(runtime)?;
        counts_dict(py, counts)
    }

    /// Blocks that could not be opened, summed over every poll.
    fn open_failures(&self) -> u64 {
        self.inner.open_failures()
    }
}
}

/// `{tenant: blocks}`.
fn counts_dict(py: Python<'_>, counts: Vec<(String, usize)>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for (tenant, n) in counts {
        d.set_item(tenant, n)?;
    }
    Ok(d)
}

/// A lookup of `trace_id` by `find` with the GIL released, as `(part, stats)`.
fn find_part<'py>(
    py: Python<'py>,
    trace_id: &[u8],
    find: impl FnOnce(&[u8; 16]) -> (Vec<RecordBatch>, LookupStats) + Send,
) -> PyResult<(Option<TracePart>, Bound<'py, PyDict>)> {
    let id = self::trace_id(trace_id)?;
    let (batches, stats) = py.detach(|| find(&id));
    Ok((part(batches), lookup_stats(py, &stats)?))
}

fn lookup_stats<'py>(py: Python<'py>, stats: &LookupStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("blocks_checked", stats.blocks_checked)?;
    d.set_item("blocks_read", stats.blocks_read)?;
    d.set_item("bytes_read", stats.bytes_read)?;
    d.set_item("reads", stats.reads)?;
    d.set_item("errors", stats.errors)?;
    Ok(d)
}

/// A block in an object store, read through a Python store object's `get(key)` and
/// `get_range(key, offset, length)` (keys `<tenant>/<block-id>/<file>`): the Rust
/// reader plans every read, the control plane's one S3 client performs it.
pub(crate) struct PySource {
    pub(crate) store: Py<PyAny>,
    pub(crate) prefix: String,
}

impl PySource {
    /// Calls the store; the result must be bytes. A Python error becomes an I/O error.
    fn call(
        &self,
        f: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>>,
    ) -> std::io::Result<Vec<u8>> {
        Python::attach(|py| {
            f(self.store.bind(py))
                .and_then(|r| r.extract::<Vec<u8>>())
                .map_err(|e| std::io::Error::other(e.to_string()))
        })
    }
}

impl BlockSource for PySource {
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        let key = format!("{}/{name}", self.prefix);
        self.call(|store| store.call_method1("get", (key,)))
    }

    fn read_range(&self, name: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let key = format!("{}/{name}", self.prefix);
        self.call(|store| store.call_method1("get_range", (key, offset, len)))
    }

    fn describe(&self) -> String {
        format!("object store {}", self.prefix)
    }

    fn remote(&self) -> bool {
        true
    }

    fn read_ranges(&self, name: &str, ranges: &[(u64, usize)]) -> std::io::Result<Vec<Vec<u8>>> {
        let key = format!("{}/{name}", self.prefix);
        Python::attach(|py| {
            self.store
                .bind(py)
                .call_method1("get_ranges", (key, ranges.to_vec()))
                .and_then(|r| r.extract::<Vec<Vec<u8>>>())
                .map_err(|e| std::io::Error::other(e.to_string()))
        })
    }
}

/// Blocks the querier opened from an object store's block list.
#[pyclass(frozen)]
struct RemoteBlocks {
    inner: Arc<SourceBlocks>,
}

block_methods! {
impl RemoteBlocks {
    #[new]
    fn new() -> Self {
        RemoteBlocks { inner: Arc::default() }
    }

    /// Opens `tenant`'s block `block_id` from `store` (meta, bloom and index are read now;
    /// the Parquet footer too when `warm`, else by the first lookup that needs it).
    #[pyo3(signature = (tenant, block_id, store, warm=true))]
    fn open(
        &self,
        py: Python<'_>,
        tenant: &str,
        block_id: &str,
        store: Py<PyAny>,
        warm: bool,
    ) -> PyResult<()> {
        let source = Arc::new(PySource { store, prefix: format!("{tenant}/{block_id}") });
        let block = py
            .detach(|| {
                let b = BlockReader::open_source(source)?;
                if warm {
                    b.warm()?;
                }
                Ok::<_, tempo_core::block::BlockError>(b)
            })
            .map_err(runtime)?;
        self.inner.insert(tenant, block_id, Arc::new(block));
        Ok(())
    }

    fn contains(&self, tenant: &str, block_id: &str) -> bool {
        self.inner.contains(tenant, block_id)
    }

    /// Forgets `tenant`'s blocks whose ids are not in `keep`.
    fn retain(&self, tenant: &str, keep: std::collections::HashSet<String>) {
        self.inner.retain(tenant, &keep);
    }

    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        counts_dict(py, self.inner.counts())
    }
}
}

/// Writes `tenant`'s block `block_id` from `store` to `path` as plain Parquet (one row
/// per span, see `tempo_core::block::export_block`), a row group at a time. `progress`
/// is called as `progress(done, total, rows)` after each row group; an exception it
/// raises (KeyboardInterrupt too) stops the export and is raised here.
#[pyfunction]
#[pyo3(signature = (tenant, block_id, store, path, progress=None))]
fn export_block<'py>(
    py: Python<'py>,
    tenant: &str,
    block_id: &str,
    store: Py<PyAny>,
    path: PathBuf,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let source = Arc::new(PySource { store, prefix: format!("{tenant}/{block_id}") });
    let mut failed: Option<PyErr> = None;
    let result = py.detach(|| {
        let block = BlockReader::open_source(source)?;
        block_export_to(&block, &path, |done, total, rows| {
            let Some(cb) = &progress else { return Ok(()) };
            Python::attach(|py| cb.call1(py, (done, total, rows)).map(|_| ())).map_err(|e| {
                let msg = e.to_string();
                failed = Some(e);
                tempo_core::block::BlockError::Corrupt(format!("progress callback: {msg}"))
            })
        })
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let stats = result.map_err(runtime)?;
    let d = PyDict::new(py);
    d.set_item("rows", stats.rows)?;
    d.set_item("row_groups", stats.row_groups)?;
    d.set_item("bytes", stats.bytes)?;
    Ok(d)
}

/// Merges and de-duplicates trace parts and renders them as one trace.
#[pyfunction]
#[pyo3(signature = (parts, fmt, inspected_bytes=0))]
fn render_trace(
    py: Python<'_>,
    parts: Vec<PyRef<'_, TracePart>>,
    fmt: &str,
    inspected_bytes: u64,
) -> PyResult<Option<Py<PyBytes>>> {
    let format = match fmt {
        "proto_v1" => TraceFormat::ProtoV1,
        "proto_v2" => TraceFormat::ProtoV2,
        "json_v1" => TraceFormat::JsonV1,
        "json_v2" => TraceFormat::JsonV2,
        other => return Err(PyValueError::new_err(format!("unknown trace format {other:?}"))),
    };
    let batches: Vec<RecordBatch> = parts.iter().flat_map(|p| p.batches.iter().cloned()).collect();
    let meta = RenderMeta { inspected_bytes, ..Default::default() };
    let out = py.detach(|| core_render(&batches, format, &meta)).map_err(runtime)?;
    Ok(out.map(|b| PyBytes::new(py, &b).unbind()))
}

/// Sets the Rust side's log level ("debug", "info", "warn", "error").
#[pyfunction]
fn set_log_level(level: &str) -> PyResult<()> {
    let l = Level::parse(level)
        .ok_or_else(|| PyValueError::new_err(format!("unknown log level {level:?}")))?;
    set_level(l);
    Ok(())
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DecodeError", m.py().get_type::<DecodeError>())?;
    m.add("TooLargeError", m.py().get_type::<TooLargeError>())?;
    m.add("OverloadedError", m.py().get_type::<OverloadedError>())?;
    m.add("RateLimitedError", m.py().get_type::<RateLimitedError>())?;
    m.add_class::<PushResult>()?;
    m.add_class::<TracePart>()?;
    m.add_class::<Ingester>()?;
    m.add_class::<BlockStore>()?;
    m.add_class::<RemoteBlocks>()?;
    m.add_class::<search::SearchQuery>()?;
    m.add_class::<search::TagRequest>()?;
    m.add_function(wrap_pyfunction!(search::search_otlp, m)?)?;
    m.add_class::<search::PyMetricsQuery>()?;
    m.add_function(wrap_pyfunction!(search::metrics_otlp, m)?)?;
    m.add_function(wrap_pyfunction!(render_trace, m)?)?;
    m.add_function(wrap_pyfunction!(compaction::compact_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(export_block, m)?)?;
    m.add_function(wrap_pyfunction!(set_log_level, m)?)?;
    generator::register(m)?;
    Ok(())
}
