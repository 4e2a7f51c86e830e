//! The service-graph edge store (Tempo's `servicegraphs` processor and `store`).
//!
//! A client or producer span is stored under (trace id, span id), a server or consumer
//! span under (trace id, parent span id); when both halves of an edge are present it
//! completes and is emitted. Edges wait at most `wait`, in arrival order; on expiry an
//! edge may still be emitted with a virtual node (a root server span without a client,
//! or a client span with a peer attribute and no server). At most `max_items` edges
//! wait; a span that would open one more is dropped (counted).
//!
//! Label values are interned: an edge holds string ids, so storing one allocates
//! nothing; the interner is rebuilt from the waiting edges when it outgrows them.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};

use parking_lot::Mutex;

use super::attrs::{
    sanitize_label_name, scan_attrs, scan_span, Found, KeySet, KIND_CLIENT, KIND_CONSUMER,
    KIND_PRODUCER, KIND_SERVER, STATUS_ERROR,
};
use super::{seconds_between, seconds_to_ns, within_slack, KeyIndex, Keys};
use crate::model::{IdMap, Request, SpanId, TraceId};

/// The store's settings (Tempo's `processor.service_graphs` names).
#[derive(Debug, Clone)]
pub struct ServiceGraphConfig {
    pub wait_seconds: f64,
    pub max_items: usize,
    pub dimensions: Vec<String>,
    pub enable_client_server_prefix: bool,
    pub enable_virtual_node_label: bool,
    pub enable_messaging_system_latency_histogram: bool,
    pub peer_attributes: Vec<String>,
    pub database_name_attributes: Vec<String>,
    pub slack_seconds: f64,
}

impl Default for ServiceGraphConfig {
    fn default() -> Self {
        ServiceGraphConfig {
            wait_seconds: 10.0,
            max_items: 10_000,
            dimensions: Vec::new(),
            enable_client_server_prefix: false,
            enable_virtual_node_label: false,
            enable_messaging_system_latency_histogram: false,
            peer_attributes: ["peer.service", "db.name", "db.system"].map(String::from).to_vec(),
            database_name_attributes: ["db.namespace", "db.name", "db.system"]
                .map(String::from)
                .to_vec(),
            slack_seconds: 30.0,
        }
    }
}

/// Edges completed (by a push) or emitted on expiry, grouped by label values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeBatch {
    /// Distinct label-value tuples (`label_names` order), first-seen order.
    pub keys: Keys,
    /// Per edge: position in `keys`.
    pub index: Vec<u32>,
    pub server_seconds: Vec<f64>,
    pub client_seconds: Vec<f64>,
    /// Per edge: 1 when either side had status ERROR.
    pub failed: Vec<u8>,
    /// Per edge: consumer start - producer end in seconds; NaN when not a messaging
    /// edge, the histogram is disabled, or the difference is not positive (as Tempo).
    pub messaging_seconds: Vec<f64>,
    /// Per key: the trace id of its last edge.
    pub exemplar_trace_ids: Vec<TraceId>,
    /// Spans refused because `max_items` edges were waiting.
    pub dropped_spans: u64,
    /// Edges that expired unpaired (virtual-node edges included).
    pub expired_edges: u64,
    /// Spans dropped because their end is outside now ± slack.
    pub outside_slack: u64,
}

// Interned ids every store has.
const UNSET: u32 = u32::MAX;
const S_EMPTY: u32 = 0;
const S_MESSAGING: u32 = 1;
const S_DATABASE: u32 = 2;
const S_VIRTUAL: u32 = 3;
const S_CLIENT: u32 = 4;
const S_SERVER: u32 = 5;
const S_USER: u32 = 6;
const FIXED: [&str; 7] =
    ["", "messaging_system", "database", "virtual_node", "client", "server", "user"];

/// Interned strings kept at least (before a rebuild is worth it).
const COMPACT_MIN: usize = if cfg!(test) { 1024 } else { 65_536 };

struct Interner {
    ids: IdMap<Box<str>, u32>,
    strs: Vec<Box<str>>,
}

impl Interner {
    fn new() -> Interner {
        let mut i = Interner { ids: IdMap::default(), strs: Vec::new() };
        for s in FIXED {
            i.intern(s);
        }
        i
    }

    #[inline]
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strs.len() as u32;
        self.strs.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn get(&self, id: u32) -> &str {
        if id == UNSET {
            ""
        } else {
            &self.strs[id as usize]
        }
    }
}

/// One waiting (or just completed) edge; strings are interned ids.
#[derive(Debug, Clone, Copy)]
struct Edge {
    trace_id: TraceId,
    /// The key's span id: the client's span id, or the server's parent (zeros: root).
    span_id: SpanId,
    generation: u32,
    live: bool,
    created_ns: u64,
    client: u32,
    server: u32,
    peer: u32,
    connection: u32,
    virtual_node: u32,
    failed: bool,
    client_seconds: f64,
    server_seconds: f64,
    client_end: u64,
    server_start: u64,
}

const BLANK: Edge = Edge {
    trace_id: [0; 16],
    span_id: [0; 8],
    generation: 0,
    live: false,
    created_ns: 0,
    client: S_EMPTY,
    server: S_EMPTY,
    peer: S_EMPTY,
    connection: S_EMPTY,
    virtual_node: S_EMPTY,
    failed: false,
    client_seconds: 0.0,
    server_seconds: 0.0,
    client_end: 0,
    server_start: 0,
};

impl Edge {
    fn reset(&mut self, trace_id: TraceId, span_id: SpanId, now_ns: u64) {
        *self =
            Edge { trace_id, span_id, generation: self.generation, created_ns: now_ns, ..BLANK };
    }

    fn complete(&self) -> bool {
        self.client != S_EMPTY && self.server != S_EMPTY
    }
}

/// Attribute slots: `(resource slot, span slot)` for lookups in resource then span.
#[derive(Debug, Clone)]
struct Plan {
    resource_keys: KeySet,
    span_keys: KeySet,
    dims: Vec<(usize, usize)>,
    /// Span-only lookups.
    peers: Vec<usize>,
    db_names: Vec<(usize, usize)>,
    peer_service: (usize, usize),
    server_address: (usize, usize),
    peer_address: (usize, usize),
    peer_port: (usize, usize),
}

impl Plan {
    fn new(cfg: &ServiceGraphConfig) -> Plan {
        let mut r = KeySet::default();
        let mut s = KeySet::default();
        r.slot("service.name");
        let mut both = |k: &str| (r.slot(k), s.slot(k));
        let dims = cfg.dimensions.iter().map(|d| both(d)).collect();
        let db_names = cfg.database_name_attributes.iter().map(|d| both(d)).collect();
        let peer_service = both("peer.service");
        let server_address = both("server.address");
        let peer_address = both("network.peer.address");
        let peer_port = both("network.peer.port");
        let peers = cfg.peer_attributes.iter().map(|p| s.slot(p)).collect();
        Plan {
            resource_keys: r,
            span_keys: s,
            dims,
            peers,
            db_names,
            peer_service,
            server_address,
            peer_address,
            peer_port,
        }
    }
}

#[inline]
fn lookup<'s>(res: &'s Found<'_>, span: &'s Found<'_>, (r, s): (usize, usize)) -> Option<&'s str> {
    res.get(r).or_else(|| span.get(s))
}

/// Edges of one call, keyed by label-value ids.
struct Builder {
    labels: usize,
    ids: Vec<u32>,
    index: KeyIndex,
    hasher: ahash::RandomState,
    scratch: Vec<u32>,
    out: EdgeBatch,
}

impl Builder {
    fn new(labels: usize, hasher: &ahash::RandomState) -> Builder {
        Builder {
            labels,
            ids: Vec::new(),
            index: KeyIndex::default(),
            hasher: hasher.clone(),
            scratch: Vec::with_capacity(labels),
            out: EdgeBatch::default(),
        }
    }

    /// Adds an edge whose label ids are in `self.scratch`.
    fn add(&mut self, e: &Edge, messaging: bool) {
        let mut h = self.hasher.build_hasher();
        for &id in &self.scratch {
            h.write_u32(id);
        }
        let h = h.finish();
        let (ids, scratch, n) = (&self.ids, &self.scratch, self.labels);
        let k = match self.index.find(h, |k| &ids[k as usize * n..(k as usize + 1) * n] == scratch)
        {
            Some(k) => {
                self.out.exemplar_trace_ids[k as usize] = e.trace_id;
                k
            }
            None => {
                self.ids.extend_from_slice(&self.scratch);
                self.out.exemplar_trace_ids.push(e.trace_id);
                self.index.insert(h)
            }
        };
        let o = &mut self.out;
        o.index.push(k);
        o.server_seconds.push(e.server_seconds);
        o.client_seconds.push(e.client_seconds);
        o.failed.push(e.failed as u8);
        let m = if messaging && e.connection == S_MESSAGING {
            match seconds_between(e.client_end, e.server_start) {
                d if d > 0.0 => d,
                _ => f64::NAN,
            }
        } else {
            f64::NAN
        };
        o.messaging_seconds.push(m);
    }

    fn finish(mut self, strings: &Interner) -> EdgeBatch {
        let n = self.labels;
        self.out.keys = Keys::new(n);
        for k in 0..self.out.exemplar_trace_ids.len() {
            self.out.keys.push(self.ids[k * n..(k + 1) * n].iter().map(|&id| strings.get(id)));
        }
        self.out
    }
}

struct Inner {
    edges: Vec<Edge>,
    /// Per edge slot: `dim_slots` dimension value ids (UNSET: not set).
    dims: Vec<u32>,
    free: Vec<u32>,
    map: IdMap<(TraceId, SpanId), u32>,
    /// Slots in arrival order with their generation (stale entries are skipped).
    order: VecDeque<(u32, u32)>,
    live: usize,
    strings: Interner,
    scratch: String,
}

/// Service-graph edges waiting for their other half; thread-safe.
pub struct ServiceGraphStore {
    cfg: ServiceGraphConfig,
    wait_ns: u64,
    slack_ns: u64,
    label_names: Vec<String>,
    /// Dimension value slots per edge: 2 per dimension with the client/server prefix.
    dim_slots: usize,
    plan: Plan,
    hasher: ahash::RandomState,
    inner: Mutex<Inner>,
}

impl ServiceGraphStore {
    pub fn new(cfg: ServiceGraphConfig) -> ServiceGraphStore {
        let mut label_names: Vec<String> =
            ["client", "server", "connection_type"].map(String::from).to_vec();
        if cfg.enable_virtual_node_label {
            label_names.push("virtual_node".into());
        }
        for d in &cfg.dimensions {
            if cfg.enable_client_server_prefix {
                label_names.push(sanitize_label_name(&format!("client_{d}")));
                label_names.push(sanitize_label_name(&format!("server_{d}")));
            } else {
                label_names.push(sanitize_label_name(d));
            }
        }
        let dim_slots = cfg.dimensions.len() * if cfg.enable_client_server_prefix { 2 } else { 1 };
        ServiceGraphStore {
            wait_ns: seconds_to_ns(cfg.wait_seconds),
            slack_ns: seconds_to_ns(cfg.slack_seconds),
            label_names,
            dim_slots,
            plan: Plan::new(&cfg),
            hasher: ahash::RandomState::new(),
            inner: Mutex::new(Inner {
                edges: Vec::new(),
                dims: Vec::new(),
                free: Vec::new(),
                map: IdMap::default(),
                order: VecDeque::new(),
                live: 0,
                strings: Interner::new(),
                scratch: String::new(),
            }),
            cfg,
        }
    }

    /// `client`, `server`, `connection_type`, `virtual_node` (when enabled), dimensions.
    pub fn label_names(&self) -> &[String] {
        &self.label_names
    }

    /// Edges waiting for their other half.
    pub fn len(&self) -> usize {
        self.inner.lock().live
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries of the arrival queue (stale ones included) and interned strings.
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> (usize, usize) {
        let g = self.inner.lock();
        (g.order.len(), g.strings.strs.len())
    }

    /// The label ids of edge `slot` into `b.scratch`, then the edge into `b`.
    fn emit(&self, inner: &Inner, slot: usize, b: &mut Builder) {
        let e = &inner.edges[slot];
        b.scratch.clear();
        b.scratch.extend_from_slice(&[e.client, e.server, e.connection]);
        if self.cfg.enable_virtual_node_label {
            b.scratch.push(e.virtual_node);
        }
        let dims = &inner.dims[slot * self.dim_slots..(slot + 1) * self.dim_slots];
        b.scratch.extend(dims.iter().map(|&d| if d == UNSET { S_EMPTY } else { d }));
        b.add(e, self.cfg.enable_messaging_system_latency_histogram);
    }

    /// Pairs the request's client/producer and server/consumer spans with those
    /// waiting; returns the edges this completed.
    pub fn push(&self, req: &Request, now_ns: u64) -> EdgeBatch {
        let plan = &self.plan;
        let buf: &[u8] = &req.buf;
        let nd = self.cfg.dimensions.len();
        let prefix = self.cfg.enable_client_server_prefix;
        let mut b = Builder::new(self.label_names.len(), &self.hasher);
        let mut res = plan.resource_keys.found();
        let mut sf = plan.span_keys.found();
        let mut res_dims = vec![UNSET; nd];
        let mut service: Option<u32> = None;
        let mut cur_resource = u32::MAX;
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        for span in &req.spans {
            if !within_slack(span.end_unix_nano, now_ns, self.slack_ns) {
                b.out.outside_slack += 1;
                continue;
            }
            let client = span.kind == KIND_CLIENT || span.kind == KIND_PRODUCER;
            if !client && span.kind != KIND_SERVER && span.kind != KIND_CONSUMER {
                continue;
            }
            let ri = req.scopes[span.scope as usize].resource;
            if ri != cur_resource {
                cur_resource = ri;
                scan_attrs(
                    req.resources[ri as usize].resource.get(buf),
                    1,
                    &plan.resource_keys,
                    &mut res,
                );
                res.render();
                service = res.get(0).map(|s| inner.strings.intern(s));
                for (d, &(r, _)) in plan.dims.iter().enumerate() {
                    res_dims[d] = res.get(r).map_or(UNSET, |v| inner.strings.intern(v));
                }
            }
            let Some(svc) = service else { continue };
            let fields = scan_span(span.msg.get(buf), &plan.span_keys, &mut sf);
            sf.render();
            let key_span = if client { span.span_id } else { span.parent_span_id };
            let key = (span.trace_id, key_span);
            let existing = inner.map.get(&key).copied();
            let slot = match existing {
                Some(s) => s as usize,
                None => {
                    let s = match inner.free.pop() {
                        Some(s) => s as usize,
                        None => {
                            inner.edges.push(BLANK);
                            inner.dims.resize(inner.edges.len() * self.dim_slots, UNSET);
                            inner.edges.len() - 1
                        }
                    };
                    inner.edges[s].reset(span.trace_id, key_span, now_ns);
                    inner.dims[s * self.dim_slots..(s + 1) * self.dim_slots].fill(UNSET);
                    s
                }
            };
            let Inner { edges, dims, strings, scratch, .. } = inner;
            let e = &mut edges[slot];
            let duration = seconds_between(span.start_unix_nano, span.end_unix_nano);
            e.failed |= fields.status_code == STATUS_ERROR;
            let messaging = span.kind == KIND_PRODUCER || span.kind == KIND_CONSUMER;
            e.connection = if messaging { S_MESSAGING } else { S_EMPTY };
            if client {
                e.client = svc;
                e.client_seconds = duration;
                e.client_end = span.end_unix_nano;
            } else {
                e.server = svc;
                e.server_seconds = duration;
                e.server_start = span.start_unix_nano;
            }
            let edge_dims = &mut dims[slot * self.dim_slots..(slot + 1) * self.dim_slots];
            for (d, &(_, s)) in plan.dims.iter().enumerate() {
                let v = match res_dims[d] {
                    UNSET => match sf.get(s) {
                        Some(v) => strings.intern(v),
                        None => continue,
                    },
                    v => v,
                };
                let at = if !prefix {
                    d
                } else if client {
                    2 * d
                } else {
                    2 * d + 1
                };
                edge_dims[at] = v;
            }
            let root = key_span == [0; 8];
            if client || root {
                if let Some(p) = plan.peers.iter().find_map(|&s| sf.get(s)) {
                    e.peer = strings.intern(p);
                }
            }
            if client {
                let db = plan.db_names.iter().find_map(|&slots| lookup(&res, &sf, slots));
                if let Some(db_name) = db {
                    e.connection = S_DATABASE;
                    e.server_seconds = duration;
                    let name = if let Some(v) = lookup(&res, &sf, plan.peer_service) {
                        Some(v)
                    } else if let Some(v) = lookup(&res, &sf, plan.server_address) {
                        Some(v)
                    } else if let Some(host) = lookup(&res, &sf, plan.peer_address) {
                        match lookup(&res, &sf, plan.peer_port) {
                            Some(port) => {
                                scratch.clear();
                                scratch.push_str(host);
                                scratch.push(':');
                                scratch.push_str(port);
                                Some(scratch.as_str())
                            }
                            None => Some(host),
                        }
                    } else if !db_name.is_empty() {
                        Some(db_name)
                    } else {
                        None
                    };
                    if let Some(name) = name {
                        e.server = strings.intern(name);
                    }
                }
            }
            if e.complete() {
                self.emit(inner, slot, &mut b);
                if existing.is_some() {
                    inner.map.remove(&key);
                    inner.live -= 1;
                }
                Self::release(inner, slot);
            } else if existing.is_none() {
                if inner.live >= self.cfg.max_items {
                    b.out.dropped_spans += 1;
                    Self::release(inner, slot);
                } else {
                    let e = &mut inner.edges[slot];
                    e.live = true;
                    inner.order.push_back((slot as u32, e.generation));
                    inner.map.insert(key, slot as u32);
                    inner.live += 1;
                }
            }
        }
        b.finish(&inner.strings)
    }

    fn release(inner: &mut Inner, slot: usize) {
        let e = &mut inner.edges[slot];
        e.live = false;
        e.generation = e.generation.wrapping_add(1);
        inner.free.push(slot as u32);
    }

    /// Removes the edges that have waited `wait` or longer (arrival order), emitting
    /// those that make a virtual-node edge.
    pub fn expire(&self, now_ns: u64) -> EdgeBatch {
        let mut b = Builder::new(self.label_names.len(), &self.hasher);
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        while let Some(&(slot, generation)) = inner.order.front() {
            let s = slot as usize;
            let e = inner.edges[s];
            if !e.live || e.generation != generation {
                inner.order.pop_front();
                continue;
            }
            if now_ns < e.created_ns.saturating_add(self.wait_ns) {
                break;
            }
            inner.order.pop_front();
            inner.map.remove(&(e.trace_id, e.span_id));
            inner.live -= 1;
            b.out.expired_edges += 1;
            let side = if e.client == S_EMPTY {
                // A root server span called by something uninstrumented.
                (e.span_id == [0; 8]).then(|| {
                    let client = if e.peer != S_EMPTY { e.peer } else { S_USER };
                    (client, e.server, S_CLIENT)
                })
            } else if e.server == S_EMPTY && e.peer != S_EMPTY {
                // A client calling something uninstrumented, named by a peer attribute.
                Some((e.client, e.peer, S_SERVER))
            } else {
                None
            };
            if let Some((client, server, which)) = side {
                let v = &mut inner.edges[s];
                v.client = client;
                v.server = server;
                v.connection = S_VIRTUAL;
                v.virtual_node = which;
                self.emit(inner, s, &mut b);
            }
            Self::release(inner, s);
        }
        if inner.order.len() > 2 * inner.live + 1024 {
            let edges = &inner.edges;
            inner.order.retain(|&(s, g)| {
                let e = &edges[s as usize];
                e.live && e.generation == g
            });
        }
        let out = b.finish(&inner.strings);
        self.compact_strings(inner);
        out
    }

    /// Rebuilds the interner from the waiting edges when it holds far more strings
    /// than they can reference (ids of completed and expired edges are dead).
    fn compact_strings(&self, inner: &mut Inner) {
        let per_edge = 3 + self.dim_slots;
        if inner.strings.strs.len() <= 4 * inner.live * per_edge + COMPACT_MIN {
            return;
        }
        let old = std::mem::replace(&mut inner.strings, Interner::new());
        let strings = &mut inner.strings;
        let mut remap = |id: &mut u32| {
            if *id != UNSET {
                *id = strings.intern(&old.strs[*id as usize]);
            }
        };
        for (s, e) in inner.edges.iter_mut().enumerate() {
            if !e.live {
                continue;
            }
            remap(&mut e.client);
            remap(&mut e.server);
            remap(&mut e.peer);
            for d in &mut inner.dims[s * self.dim_slots..(s + 1) * self.dim_slots] {
                remap(d);
            }
        }
        // Free slots are reset before reuse; the rest hold no ids worth keeping.
        inner.strings.ids.shrink_to_fit();
    }
}
