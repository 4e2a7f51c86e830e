//! The ingester: per-tenant WAL, live traces, head chunks and block cutting.
//!
//! Write path: a request is decoded and validated ([`crate::otlp`]), appended
//! to the tenant's WAL, then indexed into its live traces; only then is it
//! acknowledged. A background sweep moves traces that are idle (or too old, or
//! over the live-bytes cap) into a *head chunk*: a small sorted Arrow IPC file in
//! the span schema, in the tenant's current head directory. Once the head is
//! older than `max_block_duration`, larger than `max_block_bytes` or has too
//! many chunks, its chunks are merged into a complete block in the local
//! backend, which the ingester keeps serving for `complete_block_timeout`.
//!
//! Read path: [`Ingester::find_trace`] collects a trace's rows from live traces
//! (built into a record batch by the same columnar builder the cut uses), head
//! chunks and recently completed blocks — all as Arrow record batches of one
//! schema, so one engine reads them all.
//!
//! On-disk layout under the WAL path, per tenant:
//! `<wal>/<tenant>/wal/<segment>.wal` and `<wal>/<tenant>/head/<block-id>/<n>.arrow`.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::block::{self, BlockConfig, BlockReader, ChunkReader};
use crate::columnar::{self, TraceSpans};
use crate::limits::{Limits, LimitsTable, TokenBucket};
use crate::live::{LiveTraces, RequestTraces};
use crate::log::{self, Level};
use crate::model::{Rejected, Request, TraceId};
use crate::otlp::{self, DecodeError, Truncated};
use crate::schema;
use crate::search;
use crate::wal::{FsyncMode, ReplayReport, Wal, WalOptions};

/// WAL record kind: the payload is an OTLP `ExportTraceServiceRequest`.
const RECORD_OTLP: u8 = 1;
/// File extension of head chunks (Arrow IPC files).
const CHUNK_EXT: &str = "arrow";

/// Everything the ingester needs to know; durations as Tempo names them.
#[derive(Debug, Clone)]
pub struct IngesterConfig {
    pub wal_path: PathBuf,
    /// Where complete blocks go (the local backend's path).
    pub blocks_path: PathBuf,
    pub fsync: FsyncMode,
    pub fsync_interval: Duration,
    pub segment_bytes: u64,
    pub trace_idle_period: Duration,
    pub max_trace_live: Duration,
    pub flush_check_period: Duration,
    pub max_block_duration: Duration,
    pub max_block_bytes: u64,
    /// A head is completed once it has this many chunks (bounds merge memory).
    pub max_head_chunks: usize,
    pub complete_block_timeout: Duration,
    /// Live span bytes per tenant above which the oldest traces are cut early and
    /// pushes wait (backpressure) until the cut catches up.
    pub max_live_bytes: usize,
    /// How long a push waits for room before it is refused as overloaded.
    pub push_wait: Duration,
    pub block: BlockConfig,
    /// Limits of tenants without an override (see [`Ingester::limits`]).
    pub limits: Limits,
}

impl IngesterConfig {
    /// Tempo 2.10's ingester defaults, with `wal_path` and `blocks_path`.
    pub fn new(wal_path: impl Into<PathBuf>, blocks_path: impl Into<PathBuf>) -> Self {
        IngesterConfig {
            wal_path: wal_path.into(),
            blocks_path: blocks_path.into(),
            fsync: FsyncMode::Interval,
            fsync_interval: Duration::from_millis(200),
            segment_bytes: 64 << 20,
            trace_idle_period: Duration::from_secs(5),
            max_trace_live: Duration::from_secs(30),
            flush_check_period: Duration::from_secs(10),
            max_block_duration: Duration::from_secs(30 * 60),
            max_block_bytes: 500 * 1024 * 1024,
            max_head_chunks: 64,
            complete_block_timeout: Duration::from_secs(15 * 60),
            max_live_bytes: 64 << 20,
            push_wait: Duration::from_secs(5),
            block: BlockConfig::default(),
            limits: Limits::default(),
        }
    }
}

/// What a push did.
#[derive(Debug, Default)]
pub struct PushOutcome {
    pub accepted: u32,
    pub rejected: Rejected,
    /// Spans refused because their trace would exceed `max_bytes_per_trace`.
    pub trace_too_large: u32,
    /// Spans refused because their trace would exceed `max_traces_per_user`.
    pub live_traces_exceeded: u32,
    /// Attributes truncated to `max_attribute_bytes`.
    pub truncated: Truncated,
    /// Tempo's message for each limit that refused spans.
    pub messages: Vec<String>,
    /// Seconds between each accepted span's end and now (ingestion lag).
    pub lag_seconds: Vec<f64>,
    /// The accepted spans (after the per-trace limits), for the metrics generator;
    /// None when no span was accepted.
    pub request: Option<Arc<Request>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("invalid tenant id {0:?}")]
    InvalidTenant(String),
    #[error("write-ahead log append failed: {0}")]
    Wal(io::Error),
    #[error(
        "ingester overloaded: live traces stayed over their memory limit for {0:?}; retry later"
    )]
    Overloaded(Duration),
    #[error(
        "RATE_LIMITED: ingestion rate limit (local: {limit} bytes, global: {limit} bytes) \
         exceeded while adding {bytes} bytes for user {tenant}"
    )]
    RateLimited { limit: u64, bytes: u64, spans: u32, tenant: String },
    #[error("the push would wait for room (try_push)")]
    WouldWait,
}

#[derive(Debug, thiserror::Error)]
pub enum IngesterError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("{0}")]
    Block(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> IngesterError {
    let context = context.into();
    move |source| IngesterError::Io { context, source }
}

/// Request body encodings the ingester accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
    /// Zipkin v2 JSON; `parse_string_tags` types tag values (the receiver's option).
    ZipkinJson {
        parse_string_tags: bool,
    },
    /// Zipkin v2 protobuf `ListOfSpans`.
    ZipkinProto {
        parse_string_tags: bool,
    },
    ZipkinV1Json,
    ZipkinV1Thrift,
    /// A Jaeger agent datagram in thrift compact (UDP 6831).
    JaegerCompact,
    /// A Jaeger agent datagram in thrift binary (UDP 6832).
    JaegerBinary,
    /// A Jaeger thrift binary `Batch` (HTTP 14268).
    JaegerThrift,
    /// A Jaeger `PostSpansRequest` (gRPC 14250).
    JaegerProto,
}

/// Per-tenant counters (monotonic unless noted).
#[derive(Debug, Default)]
pub struct TenantStats {
    pub traces_created: AtomicU64,
    pub spans_received: AtomicU64,
    pub bytes_received: AtomicU64,
    pub blocks_cut: AtomicU64,
}

/// Ingester-wide counters.
#[derive(Debug, Default)]
pub struct GlobalStats {
    pub wal_replayed_spans: AtomicU64,
    pub wal_torn_bytes: AtomicU64,
    pub blocks_flushed: AtomicU64,
    pub flush_failures: AtomicU64,
}

/// A head block being filled with chunks, or waiting to be completed.
struct Head {
    id: String,
    dir: PathBuf,
    created: Instant,
    bytes: u64,
    chunks: Vec<Arc<ChunkReader>>,
}

impl Head {
    fn new(tenant_dir: &Path) -> Head {
        let id = block::new_block_id();
        Head {
            dir: tenant_dir.join("head").join(&id),
            id,
            created: Instant::now(),
            bytes: 0,
            chunks: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Heads {
    current: Option<Head>,
    /// Heads cut from `current`, waiting for (or in) completion.
    completing: Vec<Arc<Head>>,
}

struct Tenant {
    name: String,
    dir: PathBuf,
    wal: Wal,
    live: Mutex<LiveTraces>,
    heads: Mutex<Heads>,
    /// Traces cut from `live` whose chunk is being written (each sorted by id), so
    /// a lookup finds them meanwhile.
    cutting: Mutex<Vec<Arc<Vec<TraceSpans>>>>,
    /// Serialises sweeps of this tenant (the background thread and `flush`).
    sweeping: Mutex<()>,
    /// Serialises head completion of this tenant.
    completing: Mutex<()>,
    complete: Mutex<Vec<(Instant, Arc<BlockReader>)>>,
    stats: TenantStats,
    /// The ingestion rate limiter.
    bucket: TokenBucket,
}

/// The ingester of every tenant in this process.
pub struct Ingester {
    cfg: IngesterConfig,
    /// Per-tenant limits, replaced at runtime when the overrides are reloaded.
    pub limits: LimitsTable,
    epoch: Instant,
    tenants: RwLock<HashMap<String, Arc<Tenant>>>,
    pub stats: GlobalStats,
    wake: Mutex<bool>,
    woken: Condvar,
    /// Pushes waiting for live traces to shrink; notified after every cut.
    room: Condvar,
    room_lock: Mutex<()>,
    /// Wakes the completion thread.
    complete_wake: Mutex<bool>,
    complete_woken: Condvar,
    stop: AtomicBool,
    /// Wakes interval sleepers when `stop` is set.
    stop_lock: Mutex<()>,
    stop_cv: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Tenant ids as Tempo accepts them: `^[A-Za-z0-9!_.*'()-]{1,150}$`, not `.` or `..`.
pub fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 150
        && t != "."
        && t != ".."
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"!_.*'()-".contains(&b))
}

fn unix_nanos_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl Ingester {
    pub fn new(cfg: IngesterConfig) -> Result<Arc<Ingester>, IngesterError> {
        fs::create_dir_all(&cfg.wal_path)
            .map_err(io_err(format!("creating {:?}", cfg.wal_path)))?;
        fs::create_dir_all(&cfg.blocks_path)
            .map_err(io_err(format!("creating {:?}", cfg.blocks_path)))?;
        Ok(Arc::new(Ingester {
            limits: LimitsTable::new(cfg.limits),
            cfg,
            epoch: Instant::now(),
            tenants: RwLock::new(HashMap::new()),
            stats: GlobalStats::default(),
            wake: Mutex::new(false),
            woken: Condvar::new(),
            room: Condvar::new(),
            room_lock: Mutex::new(()),
            complete_wake: Mutex::new(false),
            complete_woken: Condvar::new(),
            stop: AtomicBool::new(false),
            stop_lock: Mutex::new(()),
            stop_cv: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        }))
    }

    pub fn config(&self) -> &IngesterConfig {
        &self.cfg
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Replays every tenant's WAL into live traces and re-queues heads left by a
    /// previous run for completion. Call once, before serving.
    pub fn replay(&self) -> Result<ReplayReport, IngesterError> {
        let mut total = ReplayReport::default();
        let entries = fs::read_dir(&self.cfg.wal_path)
            .map_err(io_err(format!("reading {:?}", self.cfg.wal_path)))?;
        for entry in entries {
            let entry = entry.map_err(io_err("listing the WAL directory"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            // Only tenants' directories: not the staged blocks or the compactor's work.
            let tenant_dir = dir.join("wal").is_dir() || dir.join("head").is_dir();
            if !valid_tenant(&name) || !tenant_dir {
                continue;
            }
            let (_, report) = self.open_tenant(&name)?;
            total.segments += report.segments;
            total.records += report.records;
            total.torn_bytes += report.torn_bytes;
        }
        self.stats.wal_torn_bytes.fetch_add(total.torn_bytes, Ordering::Relaxed);
        Ok(total)
    }

    /// The tenant's instance, opening (and replaying) it on first use.
    fn tenant(&self, name: &str) -> Result<Arc<Tenant>, IngesterError> {
        if let Some(t) = self.tenants.read().get(name) {
            return Ok(t.clone());
        }
        Ok(self.open_tenant(name)?.0)
    }

    fn open_tenant(&self, name: &str) -> Result<(Arc<Tenant>, ReplayReport), IngesterError> {
        let mut tenants = self.tenants.write();
        if let Some(t) = tenants.get(name) {
            return Ok((t.clone(), ReplayReport::default()));
        }
        let dir = self.cfg.wal_path.join(name);
        let mut live = LiveTraces::default();
        let now = self.now_ms();
        let mut replayed = 0u64;
        let opts = WalOptions { fsync: self.cfg.fsync, segment_bytes: self.cfg.segment_bytes };
        let (wal, report) = Wal::open(&dir.join("wal"), opts, |segment, payload| {
            if let Some(req) = decode_record(payload) {
                replayed += req.spans.len() as u64;
                live.push(&Arc::new(req), segment, now);
            }
        })
        .map_err(io_err(format!("opening the WAL of tenant {name}")))?;
        // A replayed segment stays needed until its traces are cut.
        let stats = TenantStats::default();
        stats.traces_created.fetch_add(live.len() as u64, Ordering::Relaxed);
        self.stats.wal_replayed_spans.fetch_add(replayed, Ordering::Relaxed);
        let heads = Heads { current: None, completing: self.recover_heads(&dir)? };
        let tenant = Arc::new(Tenant {
            name: name.to_string(),
            dir,
            wal,
            live: Mutex::new(live),
            heads: Mutex::new(heads),
            cutting: Mutex::new(Vec::new()),
            sweeping: Mutex::new(()),
            completing: Mutex::new(()),
            complete: Mutex::new(Vec::new()),
            stats,
            bucket: TokenBucket::default(),
        });
        tenants.insert(name.to_string(), tenant.clone());
        Ok((tenant, report))
    }

    /// Heads a previous run left behind: their chunks are queued for completion.
    fn recover_heads(&self, tenant_dir: &Path) -> Result<Vec<Arc<Head>>, IngesterError> {
        let head_root = tenant_dir.join("head");
        let Ok(entries) = fs::read_dir(&head_root) else {
            return Ok(Vec::new());
        };
        let mut heads = Vec::new();
        for entry in entries.flatten() {
            let dir = entry.path();
            let id = entry.file_name().to_string_lossy().into_owned();
            let mut chunks = Vec::new();
            let mut bytes = 0;
            let mut files: Vec<PathBuf> = fs::read_dir(&dir)
                .map_err(io_err(format!("reading {dir:?}")))?
                .flatten()
                .map(|e| e.path())
                .collect();
            files.sort();
            for f in files {
                if f.extension().and_then(|e| e.to_str()) != Some(CHUNK_EXT) {
                    // A chunk torn while being written: its spans are still in the WAL.
                    let _ = fs::remove_file(&f);
                    continue;
                }
                match ChunkReader::open(&f) {
                    Ok(c) => {
                        bytes += c.size();
                        chunks.push(Arc::new(c));
                    }
                    Err(e) => {
                        // Unreadable chunk: its WAL segments were kept, so nothing is lost.
                        log_error(&format!("dropping unreadable head chunk {f:?}: {e}"));
                        let _ = fs::remove_file(&f);
                    }
                }
            }
            if chunks.is_empty() {
                let _ = fs::remove_dir_all(&dir);
                continue;
            }
            heads.push(Arc::new(Head { id, dir, created: Instant::now(), bytes, chunks }));
        }
        Ok(heads)
    }

    /// Decodes, validates and appends one OTLP request for `tenant`. Returns once
    /// the request is in the WAL (and fsynced, with `fsync: always`).
    pub fn push(
        &self,
        tenant: &str,
        body: &[u8],
        encoding: Encoding,
        gzip: bool,
        max_bytes: usize,
    ) -> Result<PushOutcome, PushError> {
        self.push_with(tenant, body, encoding, gzip, max_bytes, true)
    }

    /// [`Ingester::push`] that never waits for room: where the push would wait for
    /// the cut to catch up (backpressure) it returns [`PushError::WouldWait`] at once,
    /// having appended nothing. For callers on a thread that must not block.
    pub fn try_push(
        &self,
        tenant: &str,
        body: &[u8],
        encoding: Encoding,
        gzip: bool,
        max_bytes: usize,
    ) -> Result<PushOutcome, PushError> {
        self.push_with(tenant, body, encoding, gzip, max_bytes, false)
    }

    fn push_with(
        &self,
        tenant: &str,
        body: &[u8],
        encoding: Encoding,
        gzip: bool,
        max_bytes: usize,
        wait: bool,
    ) -> Result<PushOutcome, PushError> {
        if !valid_tenant(tenant) {
            return Err(PushError::InvalidTenant(tenant.to_string()));
        }
        if body.len() > max_bytes {
            return Err(DecodeError::TooLarge { limit: max_bytes }.into());
        }
        let raw;
        let mut body = body;
        if gzip {
            raw = otlp::gunzip(body, max_bytes)?;
            body = &raw;
        }
        let pb: Arc<[u8]> = match encoding {
            Encoding::Protobuf => Arc::from(body),
            Encoding::Json => Arc::from(otlp::json_to_protobuf(body)?),
            Encoding::ZipkinJson { parse_string_tags } => {
                Arc::from(otlp::zipkin_json_to_protobuf(body, parse_string_tags)?)
            }
            Encoding::ZipkinProto { parse_string_tags } => {
                Arc::from(otlp::zipkin_proto_to_protobuf(body, parse_string_tags)?)
            }
            Encoding::ZipkinV1Json => Arc::from(otlp::zipkin_v1_json_to_protobuf(body)?),
            Encoding::ZipkinV1Thrift => Arc::from(otlp::zipkin_v1_thrift_to_protobuf(body)?),
            Encoding::JaegerCompact => Arc::from(otlp::jaeger_agent_to_protobuf(body, true)?),
            Encoding::JaegerBinary => Arc::from(otlp::jaeger_agent_to_protobuf(body, false)?),
            Encoding::JaegerThrift => Arc::from(otlp::jaeger_thrift_to_protobuf(body)?),
            Encoding::JaegerProto => Arc::from(otlp::jaeger_proto_to_protobuf(body)?),
        };
        let mut req = Arc::new(otlp::scan(pb)?);
        let mut out = PushOutcome {
            accepted: req.spans.len() as u32,
            rejected: req.rejected,
            ..Default::default()
        };
        if req.spans.is_empty() {
            return Ok(out);
        }
        let t = self.tenant(tenant).map_err(|e| PushError::Wal(io::Error::other(e.to_string())))?;
        if !wait && t.live.lock().bytes() > self.cfg.max_live_bytes {
            return Err(PushError::WouldWait);
        }
        let limits = self.limits.get(tenant);
        let size = req.buf.len() as u64;
        if !t.bucket.allow(size, Instant::now(), &limits) {
            return Err(PushError::RateLimited {
                limit: limits.rate_limit_bytes,
                bytes: size,
                spans: req.spans.len() as u32,
                tenant: tenant.to_string(),
            });
        }
        if let Some(limited) = self.apply_limits(&t, &req, &limits, &mut out)? {
            req = Arc::new(limited);
            out.accepted = req.spans.len() as u32;
            if req.spans.is_empty() {
                return Ok(out);
            }
        }
        if !wait && t.live.lock().bytes() > self.cfg.max_live_bytes {
            // Over since the check above (a concurrent push): the caller retries with
            // `push`, which charges the rate limiter again for this request.
            return Err(PushError::WouldWait);
        }
        self.wait_for_room(&t)?;
        let segment = t.wal.append_parts(&[&[RECORD_OTLP], &req.buf]).map_err(PushError::Wal)?;
        let (created, over) = {
            let mut live = t.live.lock();
            let created = live.push(&req, segment, self.now_ms());
            (created, live.bytes() > self.cfg.max_live_bytes)
        };
        t.wal.unpin(segment);
        t.stats.traces_created.fetch_add(created as u64, Ordering::Relaxed);
        t.stats.spans_received.fetch_add(req.spans.len() as u64, Ordering::Relaxed);
        t.stats.bytes_received.fetch_add(req.buf.len() as u64, Ordering::Relaxed);
        if over {
            self.wake_sweeper();
        }
        let now = unix_nanos_now();
        out.lag_seconds =
            req.spans.iter().map(|s| (now as f64 - s.end_unix_nano as f64) / 1e9).collect();
        out.request = Some(req);
        Ok(out)
    }

    /// The request without the spans the per-trace limits refuse and with long
    /// attributes truncated, when either applies (the rare path).
    fn apply_limits(
        &self,
        t: &Tenant,
        req: &Request,
        limits: &Limits,
        out: &mut PushOutcome,
    ) -> Result<Option<Request>, PushError> {
        let limited = limits.max_bytes_per_trace > 0 || limits.max_traces_per_user > 0;
        let refusals = if limited {
            let mut traces = RequestTraces::new(req);
            t.live.lock().refusals(req, &mut traces, limits, self.now_ms())
        } else {
            None
        };
        let max_attr = limits.max_attribute_bytes as usize;
        if refusals.is_none() && otlp::long_attributes(req, max_attr).total() == 0 {
            return Ok(None);
        }
        let keep = refusals.as_ref().map(|r| r.keep.as_slice());
        let (buf, truncated) = otlp::rewrite(req, keep, max_attr);
        out.truncated = truncated;
        if let Some(r) = refusals {
            out.trace_too_large = r.trace_too_large;
            out.live_traces_exceeded = r.live_traces_exceeded;
            out.messages.extend(r.too_large_message);
            out.messages.extend(r.live_traces_message);
        }
        let mut limited = otlp::scan(Arc::from(buf))?;
        limited.rejected = req.rejected;
        Ok(Some(limited))
    }

    /// Backpressure: while the tenant's live traces are over `max_live_bytes`, a push
    /// waits (up to `push_wait`) for the sweeper to cut them, then is refused.
    fn wait_for_room(&self, t: &Tenant) -> Result<(), PushError> {
        if t.live.lock().bytes() <= self.cfg.max_live_bytes {
            return Ok(());
        }
        self.wake_sweeper();
        let deadline = Instant::now() + self.cfg.push_wait;
        let mut g = self.room_lock.lock();
        while t.live.lock().bytes() > self.cfg.max_live_bytes {
            let now = Instant::now();
            if now >= deadline || self.stop.load(Ordering::Relaxed) {
                return Err(PushError::Overloaded(self.cfg.push_wait));
            }
            self.wake_sweeper();
            self.room.wait_for(&mut g, (deadline - now).min(Duration::from_millis(100)));
        }
        Ok(())
    }

    /// Every row of `trace_id` the ingester holds: live, head chunks and recently
    /// completed blocks (one batch per source).
    pub fn find_trace(
        &self,
        tenant: &str,
        trace_id: &TraceId,
    ) -> Result<Vec<RecordBatch>, IngesterError> {
        let Some(t) = self.tenants.read().get(tenant).cloned() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut spans = t.live.lock().get(trace_id).unwrap_or_default();
        for cut in t.cutting.lock().iter() {
            if let Ok(i) = cut.binary_search_by_key(trace_id, |t| t.trace_id) {
                spans.extend(cut[i].spans.iter().cloned());
            }
        }
        if !spans.is_empty() {
            out.push(self.build(&[TraceSpans::new(*trace_id, spans)])?);
        }
        let chunks: Vec<Arc<ChunkReader>> = {
            let heads = t.heads.lock();
            heads
                .current
                .iter()
                .flat_map(|h| h.chunks.iter())
                .chain(heads.completing.iter().flat_map(|h| h.chunks.iter()))
                .cloned()
                .collect()
        };
        for c in chunks {
            if let Some(b) =
                c.find_trace(trace_id).map_err(|e| IngesterError::Block(e.to_string()))?
            {
                out.push(b);
            }
        }
        let blocks: Vec<Arc<BlockReader>> =
            t.complete.lock().iter().map(|(_, b)| b.clone()).collect();
        for b in blocks {
            if !b.might_contain(trace_id) {
                continue;
            }
            // The block list serves these blocks too: one that cannot be read here (the
            // compactor replaced it, or it broke) is skipped, not a failed query.
            match b.find_trace(trace_id) {
                Ok(Some(batch)) => out.push(batch),
                Ok(None) => {}
                Err(e) => log::log(
                    Level::Warn,
                    "ingester",
                    &format!(
                        "msg=\"skipping a completed block that cannot be read\" block={} err={}",
                        log::quote(&b.location()),
                        log::quote(&e.to_string())
                    ),
                ),
            }
        }
        Ok(out)
    }

    /// Ids of `tenant`'s recently completed blocks this ingester still serves.
    pub fn complete_block_ids(&self, tenant: &str) -> Vec<String> {
        let Some(t) = self.tenants.read().get(tenant).cloned() else {
            return Vec::new();
        };
        let ids = t.complete.lock().iter().map(|(_, b)| b.meta().block_id.clone()).collect();
        ids
    }

    /// Everything the ingester holds for `tenant`, as search sources: live traces (and
    /// those being cut) as one batch, head chunks, recently completed blocks.
    pub fn search_sources(&self, tenant: &str) -> Result<Vec<search::Source>, IngesterError> {
        let Some(t) = self.tenants.read().get(tenant).cloned() else {
            return Ok(Vec::new());
        };
        let dedicated = self.cfg.block.dedicated_columns.clone();
        let mut out = Vec::new();
        let mut traces = t.live.lock().snapshot();
        for cut in t.cutting.lock().iter() {
            traces.extend(cut.iter().map(|c| TraceSpans::new(c.trace_id, c.spans.clone())));
        }
        if !traces.is_empty() {
            // A trace both live and being cut is one trace: merge its references.
            traces.sort_by_key(|t| t.trace_id);
            let mut merged: Vec<TraceSpans> = Vec::with_capacity(traces.len());
            for tr in traces {
                match merged.last_mut() {
                    Some(last) if last.trace_id == tr.trace_id => last.spans.extend(tr.spans),
                    _ => merged.push(tr),
                }
            }
            out.push(search::Source::Batch(self.build(&merged)?, dedicated.clone()));
        }
        {
            let heads = t.heads.lock();
            for c in heads
                .current
                .iter()
                .flat_map(|h| h.chunks.iter())
                .chain(heads.completing.iter().flat_map(|h| h.chunks.iter()))
            {
                let d = schema::dedicated_from_schema(&c.schema());
                out.push(search::Source::Chunk(c.clone(), d));
            }
        }
        for (_, b) in t.complete.lock().iter() {
            out.push(search::Source::Block(b.clone()));
        }
        Ok(out)
    }

    fn build(&self, traces: &[TraceSpans]) -> Result<RecordBatch, IngesterError> {
        columnar::build_batch(traces, &self.cfg.block.dedicated_columns)
            .map_err(|e| IngesterError::Block(e.to_string()))
    }

    /// Starts the background threads: the sweep, head completion and, with
    /// `fsync: interval`, the fsync tick.
    pub fn start(self: &Arc<Self>) {
        let mut threads = self.threads.lock();
        if !threads.is_empty() {
            return;
        }
        let spawn = |name: &str, run: fn(&Ingester)| {
            let me = self.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || run(&me))
                .unwrap_or_else(|e| panic!("spawning thread {name}: {e}"))
        };
        threads.push(spawn("tf-sweep", Ingester::sweep_loop));
        threads.push(spawn("tf-complete", Ingester::complete_loop));
        if self.cfg.fsync == FsyncMode::Interval {
            threads.push(spawn("tf-fsync", Ingester::fsync_loop));
        }
    }

    fn wake_sweeper(&self) {
        *self.wake.lock() = true;
        self.woken.notify_one();
    }

    fn sleep(&self, d: Duration) -> bool {
        let mut w = self.wake.lock();
        if !*w && !self.stop.load(Ordering::Relaxed) {
            self.woken.wait_for(&mut w, d);
        }
        *w = false;
        !self.stop.load(Ordering::Relaxed)
    }

    fn sweep_loop(&self) {
        // The sweep runs at least every second so the idle period is honoured
        // closely; `flush_check_period` bounds it from above.
        let tick = self.cfg.flush_check_period.min(Duration::from_secs(1));
        while self.sleep(tick) {
            for t in self.all_tenants() {
                if let Err(e) = self.sweep(&t, false) {
                    self.stats.flush_failures.fetch_add(1, Ordering::Relaxed);
                    log_error(&format!("tenant={} sweep failed: {e}", t.name));
                }
            }
        }
    }

    fn wake_completer(&self) {
        *self.complete_wake.lock() = true;
        self.complete_woken.notify_one();
    }

    /// Completes due heads (off the sweep thread, so cuts go on meanwhile) and
    /// forgets completed blocks past `complete_block_timeout`.
    fn complete_loop(&self) {
        loop {
            {
                let mut w = self.complete_wake.lock();
                if !*w && !self.stop.load(Ordering::Relaxed) {
                    self.complete_woken.wait_for(&mut w, Duration::from_secs(1));
                }
                *w = false;
            }
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            for t in self.all_tenants() {
                if let Err(e) = self.complete_due(&t) {
                    self.stats.flush_failures.fetch_add(1, Ordering::Relaxed);
                    log_error(&format!("tenant={} block completion failed: {e}", t.name));
                }
            }
        }
    }

    /// Completes every head waiting in `completing`.
    fn complete_due(&self, t: &Tenant) -> Result<(), IngesterError> {
        let _one_at_a_time = t.completing.lock();
        let due = t.heads.lock().completing.clone();
        for head in due {
            self.complete_head(t, &head)?;
        }
        let timeout = self.cfg.complete_block_timeout;
        t.complete.lock().retain(|(at, _)| at.elapsed() < timeout);
        Ok(())
    }

    fn fsync_loop(&self) {
        while self.sleep_fsync() {
            for t in self.all_tenants() {
                if let Err(e) = t.wal.sync() {
                    log_error(&format!("tenant={} WAL fsync failed: {e}", t.name));
                }
            }
        }
    }

    /// Sleeps one fsync interval (or until stopped); false once stopped.
    fn sleep_fsync(&self) -> bool {
        let mut g = self.stop_lock.lock();
        if !self.stop.load(Ordering::Relaxed) {
            self.stop_cv.wait_for(&mut g, self.cfg.fsync_interval);
        }
        !self.stop.load(Ordering::Relaxed)
    }

    fn all_tenants(&self) -> Vec<Arc<Tenant>> {
        self.tenants.read().values().cloned().collect()
    }

    /// One sweep of one tenant: cut due traces into a head chunk, release WAL
    /// segments nothing needs, hand heads that are due to the completion thread.
    /// `force` cuts every live trace and completes every head here and now.
    fn sweep(&self, t: &Tenant, force: bool) -> Result<(), IngesterError> {
        let _one_at_a_time = t.sweeping.lock();
        let now = self.now_ms();
        let mut cut = {
            let mut live = t.live.lock();
            if force {
                live.cut_all()
            } else {
                live.cut(
                    now,
                    self.cfg.trace_idle_period.as_millis() as u64,
                    self.cfg.max_trace_live.as_millis() as u64,
                    self.cfg.max_live_bytes / 2,
                )
                .0
            }
        };
        // Cuts whose chunk failed to write on an earlier sweep (disk full, say) are
        // still in `cutting`, visible and holding their WAL segments: retry them first.
        let failed: Vec<Arc<Vec<TraceSpans>>> = t.cutting.lock().clone();
        if !cut.is_empty() {
            cut.sort_unstable_by_key(|t| t.trace_id);
            t.cutting.lock().push(Arc::new(cut));
            self.room.notify_all();
        }
        let pending: Vec<Arc<Vec<TraceSpans>>> = t.cutting.lock().clone();
        for c in pending {
            if let Err(e) = self.write_chunk(t, &c) {
                if failed.iter().any(|f| Arc::ptr_eq(f, &c)) {
                    log_error(&format!(
                        "tenant={} retrying a head chunk failed again: {e}",
                        t.name
                    ));
                }
                return Err(e);
            }
            t.cutting.lock().retain(|x| !Arc::ptr_eq(x, &c));
        }
        // A WAL segment goes once no live or unwritten trace needs it.
        let live_min = t.live.lock().min_segment().unwrap_or(u64::MAX);
        let cut_min = t.cutting.lock().iter().flat_map(|c| c.iter()).map(|x| x.first_segment).min();
        let needed = live_min.min(cut_min.unwrap_or(u64::MAX));
        t.wal.delete_before(needed).map_err(io_err("deleting WAL segments"))?;

        let due = {
            let mut heads = t.heads.lock();
            let due = heads.current.as_ref().is_some_and(|h| {
                force
                    || h.created.elapsed() >= self.cfg.max_block_duration
                    || h.bytes >= self.cfg.max_block_bytes
                    || h.chunks.len() >= self.cfg.max_head_chunks
            });
            if due {
                let h = Arc::new(heads.current.take().expect("due head exists"));
                let since = h.created.saturating_duration_since(self.epoch).as_millis() as u64;
                t.live.lock().forget_sizes_idle_since(since);
                heads.completing.push(h);
            }
            due
        };
        if force {
            self.complete_due(t)?;
        } else if due {
            self.wake_completer();
        }
        Ok(())
    }

    /// Writes cut traces as one sorted chunk of the current head.
    fn write_chunk(&self, t: &Tenant, cut: &[TraceSpans]) -> Result<(), IngesterError> {
        let (dir, n) = {
            let mut heads = t.heads.lock();
            let head = heads.current.get_or_insert_with(|| Head::new(&t.dir));
            (head.dir.clone(), head.chunks.len())
        };
        fs::create_dir_all(&dir).map_err(io_err(format!("creating {dir:?}")))?;
        let path = dir.join(format!("{n:08}.{CHUNK_EXT}"));
        block::write_chunk(&path, cut, &self.cfg.block)
            .map_err(|e| IngesterError::Block(format!("writing head chunk {path:?}: {e}")))?;
        let chunk = ChunkReader::open(&path).map_err(|e| IngesterError::Block(e.to_string()))?;
        let mut heads = t.heads.lock();
        let head = heads.current.as_mut().expect("head exists while its tenant sweeps");
        head.bytes += chunk.size();
        head.chunks.push(Arc::new(chunk));
        Ok(())
    }

    /// Merges a head's chunks into a complete block in the backend, then drops the head.
    fn complete_head(&self, t: &Tenant, head: &Arc<Head>) -> Result<(), IngesterError> {
        // Chunks cut under other dedicated-column settings (a restart with a new
        // config) cannot share a block: each schema gets a block of its own, with an
        // id derived from the head's so a retried completion rewrites the same blocks.
        let mut groups: Vec<(SchemaRef, Vec<&ChunkReader>)> = Vec::new();
        for c in &head.chunks {
            let schema = c.schema();
            match groups.iter_mut().find(|(s, _)| *s == schema) {
                Some((_, g)) => g.push(c),
                None => groups.push((schema, vec![c])),
            }
        }
        let base = uuid::Uuid::parse_str(&head.id).map_or(0, |u| u.as_u128());
        for (i, (_, chunks)) in groups.iter().enumerate() {
            let id = if i == 0 {
                head.id.clone()
            } else {
                uuid::Uuid::from_u128(base ^ i as u128).to_string()
            };
            let dir = self.cfg.blocks_path.join(&t.name).join(&id);
            let meta = block::complete(chunks, &dir, &t.name, &id, &self.cfg.block)
                .map_err(|e| IngesterError::Block(format!("completing block {id}: {e}")))?;
            let reader =
                BlockReader::open(&dir).map_err(|e| IngesterError::Block(e.to_string()))?;
            // Open the data file now: the compactor may replace and delete the block
            // while the ingester still serves it.
            reader.warm().map_err(|e| IngesterError::Block(e.to_string()))?;
            t.complete.lock().push((Instant::now(), Arc::new(reader)));
            t.stats.blocks_cut.fetch_add(1, Ordering::Relaxed);
            self.stats.blocks_flushed.fetch_add(1, Ordering::Relaxed);
            log::log(
                Level::Info,
                "ingester",
                &format!(
                    "msg=\"block completed\" tenant={} block={id} traces={} size={}",
                    log::quote(&t.name),
                    meta.total_objects,
                    meta.size
                ),
            );
        }
        t.heads.lock().completing.retain(|h| !Arc::ptr_eq(h, head));
        let _ = fs::remove_dir_all(&head.dir);
        Ok(())
    }

    /// Cuts every live trace and completes every head now.
    pub fn flush(&self) -> Result<(), IngesterError> {
        for t in self.all_tenants() {
            self.sweep(&t, true)?;
        }
        Ok(())
    }

    /// Stops the background threads (the WAL keeps what was not flushed).
    pub fn stop(&self) {
        {
            let _g = self.stop_lock.lock();
            self.stop.store(true, Ordering::Relaxed);
            self.stop_cv.notify_all();
        }
        self.wake_sweeper();
        self.wake_completer();
        self.room.notify_all();
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
        for t in self.all_tenants() {
            let _ = t.wal.sync();
        }
    }

    /// A snapshot of per-tenant figures.
    pub fn tenant_stats(&self) -> Vec<TenantSnapshot> {
        self.all_tenants()
            .iter()
            .map(|t| {
                let (live_traces, live_bytes) = {
                    let l = t.live.lock();
                    (l.len() as u64, l.bytes() as u64)
                };
                let head_chunks = {
                    let h = t.heads.lock();
                    h.current.iter().map(|h| h.chunks.len()).sum::<usize>()
                        + h.completing.iter().map(|h| h.chunks.len()).sum::<usize>()
                } as u64;
                TenantSnapshot {
                    tenant: t.name.clone(),
                    live_traces,
                    live_bytes,
                    traces_created: t.stats.traces_created.load(Ordering::Relaxed),
                    spans_received: t.stats.spans_received.load(Ordering::Relaxed),
                    bytes_received: t.stats.bytes_received.load(Ordering::Relaxed),
                    head_chunks,
                    blocks_cut: t.stats.blocks_cut.load(Ordering::Relaxed),
                    wal_bytes_written: t.wal.stats.bytes_written.load(Ordering::Relaxed),
                    wal_records: t.wal.stats.records.load(Ordering::Relaxed),
                    wal_segments: t.wal.stats.segments.load(Ordering::Relaxed),
                    wal_fsyncs: t.wal.stats.fsyncs.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

/// Figures of one tenant at one moment.
#[derive(Debug, Clone, Default)]
pub struct TenantSnapshot {
    pub tenant: String,
    pub live_traces: u64,
    pub live_bytes: u64,
    pub traces_created: u64,
    pub spans_received: u64,
    pub bytes_received: u64,
    /// Head chunks not yet merged into a block (a gauge).
    pub head_chunks: u64,
    pub blocks_cut: u64,
    pub wal_bytes_written: u64,
    pub wal_records: u64,
    pub wal_segments: u64,
    pub wal_fsyncs: u64,
}

/// A WAL record back to a request; records that no longer decode are skipped
/// (they were validated before they were written, so this means corruption the
/// CRC did not catch).
fn decode_record(payload: &[u8]) -> Option<Request> {
    match payload.split_first() {
        Some((&RECORD_OTLP, body)) => otlp::scan(Arc::from(body)).ok(),
        _ => None,
    }
}

fn log_error(msg: &str) {
    log::log(Level::Error, "ingester", &format!("msg={}", log::quote(msg)));
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use arrow_array::cast::AsArray;

    use super::*;
    use crate::blocklist::BlockStore;
    use crate::testdata;

    fn config(dir: &Path) -> IngesterConfig {
        let mut c = IngesterConfig::new(dir.join("wal"), dir.join("blocks"));
        c.fsync = FsyncMode::Never;
        c
    }

    fn expected(body: &[u8]) -> BTreeMap<TraceId, BTreeSet<[u8; 8]>> {
        let req = otlp::scan(Arc::from(body)).unwrap();
        let mut out: BTreeMap<TraceId, BTreeSet<[u8; 8]>> = BTreeMap::new();
        for s in &req.spans {
            out.entry(s.trace_id).or_default().insert(s.span_id);
        }
        out
    }

    fn span_ids(batches: &[RecordBatch]) -> BTreeSet<[u8; 8]> {
        batches
            .iter()
            .flat_map(|b| {
                let ids = b.column_by_name(crate::schema::SPAN_ID).unwrap().as_fixed_size_binary();
                (0..b.num_rows()).map(|i| ids.value(i).try_into().unwrap()).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn limits_refuse_and_truncate_before_the_wal() {
        let tmp = tempfile::tempdir().unwrap();
        let ing = Ingester::new(config(tmp.path())).unwrap();
        let (body, n) = testdata::request(3, 200);
        let traces = expected(&body).len();
        let strict = Limits {
            rate_limit_bytes: 1,
            burst_size_bytes: body.len() as u64,
            max_traces_per_user: traces as u64 - 1,
            max_bytes_per_trace: 0,
            max_attribute_bytes: 4,
        };
        ing.limits.set(Limits::default(), HashMap::from([("a".to_string(), strict)]));
        let out = ing.push("a", &body, Encoding::Protobuf, false, 20 << 20).unwrap();
        assert!(out.live_traces_exceeded > 0 && out.trace_too_large == 0);
        assert_eq!(out.accepted + out.live_traces_exceeded, n as u32);
        assert!(out.truncated.span > 0 && out.truncated.resource > 0, "{:?}", out.truncated);
        assert!(out.messages[0].starts_with("LIVE_TRACES_EXCEEDED"));
        assert_eq!(ing.tenant("a").unwrap().live.lock().len(), traces - 1);
        // the outcome carries the accepted (limited, truncated) request
        let accepted = out.request.as_ref().unwrap();
        assert_eq!(accepted.spans.len(), out.accepted as usize);
        assert!(accepted.buf.len() < body.len());
        let accepted_a = out.accepted as usize;
        // the bucket is empty now: the next push is refused whole
        let err = ing.push("a", &body, Encoding::Protobuf, false, 20 << 20).unwrap_err();
        assert!(matches!(err, PushError::RateLimited { spans, .. } if spans == n as u32));
        assert!(err.to_string().starts_with("RATE_LIMITED: ingestion rate limit"), "{err}");
        // another tenant is untouched by a's limits
        let out = ing.push("b", &body, Encoding::Protobuf, false, 20 << 20).unwrap();
        assert_eq!((out.accepted, out.truncated.total()), (n as u32, 0));
        // what went into a's WAL is what was accepted: replay finds the same
        ing.stop();
        drop(ing);
        let again = Ingester::new(config(tmp.path())).unwrap();
        again.replay().unwrap();
        assert_eq!(again.tenant("a").unwrap().live.lock().spans(), accepted_a);
    }

    #[test]
    fn live_head_block_and_replay_all_answer() {
        let tmp = tempfile::tempdir().unwrap();
        let (first, n) = testdata::request(1, 400);
        let (second, _) = testdata::request(2, 400);
        let want1 = expected(&first);
        let want2 = expected(&second);
        {
            let ing = Ingester::new(config(tmp.path())).unwrap();
            ing.replay().unwrap();
            let out = ing.push("t", &first, Encoding::Protobuf, false, 20 << 20).unwrap();
            assert_eq!(out.accepted as usize, n);
            assert_eq!(out.lag_seconds.len(), n);
            for (tid, sids) in &want1 {
                assert_eq!(&span_ids(&ing.find_trace("t", tid).unwrap()), sids);
            }
            assert!(ing.find_trace("other", want1.keys().next().unwrap()).unwrap().is_empty());
            ing.flush().unwrap();
            let stats = &ing.tenant_stats()[0];
            assert_eq!((stats.live_traces, stats.blocks_cut), (0, 1));
            for (tid, sids) in &want1 {
                assert_eq!(
                    &span_ids(&ing.find_trace("t", tid).unwrap()),
                    sids,
                    "from the completed block"
                );
            }
            // Pushed but never cut: only the WAL has it when the process "dies" here.
            ing.push("t", &second, Encoding::Protobuf, false, 20 << 20).unwrap();
        }
        let ing = Ingester::new(config(tmp.path())).unwrap();
        let report = ing.replay().unwrap();
        assert!(report.records >= 1);
        for (tid, sids) in &want2 {
            assert_eq!(
                &span_ids(&ing.find_trace("t", tid).unwrap()),
                sids,
                "replayed from the WAL"
            );
        }
        let store = BlockStore::new(tmp.path().join("blocks"));
        assert_eq!(store.poll().unwrap(), vec![("t".to_string(), 1)]);
        for (tid, sids) in &want1 {
            let (batches, stats) = store.find_trace("t", tid);
            assert_eq!(&span_ids(&batches), sids);
            assert_eq!(stats.errors, 0);
        }
    }

    #[test]
    fn pushes_wait_for_room_then_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.max_live_bytes = 50_000;
        cfg.push_wait = Duration::from_millis(300);
        let (body, _) = testdata::request(4, 400);
        // No sweeper: the first push fills live traces, the next one waits, then is refused.
        let ing = Ingester::new(cfg.clone()).unwrap();
        ing.push("t", &body, Encoding::Protobuf, false, 20 << 20).unwrap();
        let t0 = Instant::now();
        let err = ing.push("t", &body, Encoding::Protobuf, false, 20 << 20).unwrap_err();
        assert!(matches!(err, PushError::Overloaded(_)), "{err}");
        assert!(t0.elapsed() >= Duration::from_millis(300));
        // try_push answers at once instead, and appends nothing
        let records = ing.tenant("t").unwrap().wal.stats.records.load(Ordering::Relaxed);
        let t0 = Instant::now();
        let err = ing.try_push("t", &body, Encoding::Protobuf, false, 20 << 20).unwrap_err();
        assert!(matches!(err, PushError::WouldWait), "{err}");
        assert!(t0.elapsed() < Duration::from_millis(100));
        assert_eq!(ing.tenant("t").unwrap().wal.stats.records.load(Ordering::Relaxed), records);
        drop(ing);
        // With the sweeper running, pushes wait for the cut and go through.
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg2 = config(tmp.path());
        cfg2.max_live_bytes = cfg.max_live_bytes;
        cfg2.push_wait = Duration::from_secs(10);
        let ing = Ingester::new(cfg2).unwrap();
        ing.start();
        for seed in 0..5 {
            let (body, n) = testdata::request(seed, 400);
            assert_eq!(
                ing.push("t", &body, Encoding::Protobuf, false, 20 << 20).unwrap().accepted
                    as usize,
                n
            );
        }
        ing.stop();
        assert!(ing.tenant_stats()[0].head_chunks > 0, "over-limit traces were cut to chunks");
    }

    #[test]
    fn a_head_cut_under_two_configs_completes_into_two_blocks() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config(tmp.path());
        let head = tmp.path().join("wal").join("t").join("head").join(block::new_block_id());
        fs::create_dir_all(&head).unwrap();
        let mut want = BTreeMap::new();
        for (n, dedicated) in [(0u64, cfg.block.dedicated_columns.clone()), (1, Vec::new())] {
            let (body, _) = testdata::request(n + 10, 300);
            want.extend(expected(&body));
            let req = Arc::new(otlp::scan(Arc::from(body)).unwrap());
            let mut by: HashMap<TraceId, Vec<crate::model::SpanHandle>> = HashMap::new();
            for (i, s) in req.spans.iter().enumerate() {
                let h = crate::model::SpanHandle { req: req.clone(), idx: i as u32 };
                by.entry(s.trace_id).or_default().push(h);
            }
            let mut traces: Vec<TraceSpans> =
                by.into_iter().map(|(trace_id, spans)| TraceSpans::new(trace_id, spans)).collect();
            traces.sort_unstable_by_key(|t| t.trace_id);
            let block_cfg = BlockConfig { dedicated_columns: dedicated, ..cfg.block.clone() };
            block::write_chunk(&head.join(format!("{n:08}.{CHUNK_EXT}")), &traces, &block_cfg)
                .unwrap();
        }
        let ing = Ingester::new(cfg).unwrap();
        ing.replay().unwrap();
        ing.flush().unwrap();
        assert!(!head.exists(), "the head was completed");
        let store = BlockStore::new(tmp.path().join("blocks"));
        assert_eq!(store.poll().unwrap(), vec![("t".to_string(), 2)]);
        for (tid, sids) in &want {
            assert_eq!(&span_ids(&store.find_trace("t", tid).0), sids);
        }
    }

    #[test]
    fn a_failed_chunk_write_loses_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (body, _) = testdata::request(21, 300);
        let want = expected(&body);
        let (tid, sids) = want.iter().next().unwrap();
        let head_root = tmp.path().join("wal").join("t").join("head");
        {
            let ing = Ingester::new(config(tmp.path())).unwrap();
            ing.push("t", &body, Encoding::Protobuf, false, 20 << 20).unwrap();
            // A file where the head directory goes: the chunk cannot be written.
            fs::write(&head_root, b"in the way").unwrap();
            assert!(ing.flush().is_err());
            assert_eq!(&span_ids(&ing.find_trace("t", tid).unwrap()), sids, "still visible");
            assert!(ing.flush().is_err(), "retried, fails again");
        }
        // The WAL kept the spans: a restart has them, and the next cut succeeds.
        fs::remove_file(&head_root).unwrap();
        let ing = Ingester::new(config(tmp.path())).unwrap();
        ing.replay().unwrap();
        ing.flush().unwrap();
        for (tid, sids) in &want {
            assert_eq!(&span_ids(&ing.find_trace("t", tid).unwrap()), sids);
        }
    }

    #[test]
    fn bad_input_is_refused_without_side_effects() {
        let tmp = tempfile::tempdir().unwrap();
        let ing = Ingester::new(config(tmp.path())).unwrap();
        let (body, _) = testdata::request(3, 50);
        assert!(matches!(
            ing.push("../etc", &body, Encoding::Protobuf, false, 1 << 20),
            Err(PushError::InvalidTenant(_))
        ));
        let err =
            ing.push("t", &body[..body.len() - 1], Encoding::Protobuf, false, 1 << 20).unwrap_err();
        assert!(matches!(err, PushError::Decode(DecodeError::Protobuf(_))));
        let err = ing.push("t", &body, Encoding::Protobuf, false, 100).unwrap_err();
        assert!(matches!(err, PushError::Decode(DecodeError::TooLarge { .. })));
        assert!(ing.tenant_stats().is_empty(), "nothing was opened for refused requests");
        assert!(!tmp.path().join("wal").join("..").join("etc").exists());
    }
}
