//! The in-memory form of received spans: the validated OTLP protobuf bytes of a
//! request plus a compact index of where each resource, scope and span sits.
//!
//! Every receiver (OTLP protobuf, OTLP JSON, later Jaeger and Zipkin) produces an
//! `ExportTraceServiceRequest` protobuf buffer; [`crate::otlp::scan`] indexes it into
//! a [`Request`]. The WAL stores the buffer, the live-trace store keeps
//! [`SpanRef`]s into it, and the columnar builder parses each span's bytes once
//! when traces are cut into blocks.

use std::sync::Arc;

pub type TraceId = [u8; 16];
pub type SpanId = [u8; 8];

/// A hash map keyed by client-chosen ids: a fast hasher with per-process random keys, so
/// crafted ids cannot force collisions.
pub type IdMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// A byte range within a request buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Slice {
    pub off: u32,
    pub len: u32,
}

impl Slice {
    pub const EMPTY: Slice = Slice { off: 0, len: 0 };

    pub fn new(off: usize, len: usize) -> Self {
        Slice { off: off as u32, len: len as u32 }
    }

    #[inline]
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.off as usize..(self.off + self.len) as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One `ResourceSpans` entry.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceRef {
    /// The `Resource` message bytes (field 1 of ResourceSpans); empty when absent.
    pub resource: Slice,
    /// `schema_url` (field 3 of ResourceSpans).
    pub schema_url: Slice,
}

/// One `ScopeSpans` entry.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScopeRef {
    /// Index into [`Request::resources`].
    pub resource: u32,
    /// The `InstrumentationScope` message bytes (field 1 of ScopeSpans); empty when absent.
    pub scope: Slice,
    /// `schema_url` (field 3 of ScopeSpans).
    pub schema_url: Slice,
}

/// One valid span: where its `Span` message sits plus the fields every stage needs.
#[derive(Debug, Clone, Copy)]
pub struct SpanRef {
    /// Index into [`Request::scopes`].
    pub scope: u32,
    /// The whole `Span` message bytes.
    pub msg: Slice,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// The parent span id; all zeros for a root.
    pub parent_span_id: SpanId,
    pub kind: i32,
}

/// Spans dropped from an otherwise good request, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejected {
    pub invalid_trace_id: u32,
    pub invalid_span_id: u32,
}

impl Rejected {
    pub fn total(&self) -> u32 {
        self.invalid_trace_id + self.invalid_span_id
    }
}

/// A decoded, validated `ExportTraceServiceRequest`.
#[derive(Debug, Clone)]
pub struct Request {
    /// The protobuf bytes (after gzip/JSON translation), shared by every span referencing it.
    pub buf: Arc<[u8]>,
    pub resources: Vec<ResourceRef>,
    pub scopes: Vec<ScopeRef>,
    /// Valid spans only, in wire order.
    pub spans: Vec<SpanRef>,
    pub rejected: Rejected,
}

impl Request {
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn span_bytes(&self, i: usize) -> &[u8] {
        self.spans[i].msg.get(&self.buf)
    }

    pub fn scope_of(&self, span: &SpanRef) -> &ScopeRef {
        &self.scopes[span.scope as usize]
    }

    pub fn resource_of(&self, span: &SpanRef) -> &ResourceRef {
        &self.resources[self.scopes[span.scope as usize].resource as usize]
    }
}

/// A reference to one span of one shared request: what live traces hold.
#[derive(Debug, Clone)]
pub struct SpanHandle {
    pub req: Arc<Request>,
    pub idx: u32,
}

impl SpanHandle {
    pub fn span(&self) -> &SpanRef {
        &self.req.spans[self.idx as usize]
    }
}
