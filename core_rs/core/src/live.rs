//! Live traces of one tenant: spans grouped by trace id, held as references
//! into their (shared, immutable) request buffers until they are cut.
//!
//! A trace is cut once it has been idle for `trace_idle_period`, has been live
//! for `max_trace_live`, or — to keep memory bounded by configuration — when the
//! tenant's live bytes exceed their cap, oldest first.
//!
//! Trace sizes (for `max_bytes_per_trace`) outlive the cut, as Tempo's size tracker
//! does: a long-running trace is cut into several chunks but keeps growing against
//! one limit. Sizes of traces idle since the previous head block was cut are
//! forgotten when the next one is ([`LiveTraces::forget_sizes_idle_since`]).

use std::sync::Arc;

use crate::columnar::TraceSpans;
use crate::limits::Limits;
use crate::model::{IdMap, Request, SpanHandle, TraceId};

/// Bookkeeping overhead counted per span on top of its message bytes.
const SPAN_OVERHEAD: usize = std::mem::size_of::<SpanHandle>() + 16;

struct LiveTrace {
    spans: Vec<SpanHandle>,
    first_seen_ms: u64,
    last_seen_ms: u64,
    bytes: usize,
    /// The oldest WAL segment holding spans of this trace.
    first_segment: u64,
}

/// The traces of one request: bytes added per trace, in first-seen order.
#[derive(Debug, Default)]
pub struct RequestTraces {
    traces: IdMap<TraceId, (u64, Verdict)>,
    order: Vec<TraceId>,
}

impl RequestTraces {
    pub fn new(req: &Request) -> Self {
        let mut out = RequestTraces::default();
        for s in &req.spans {
            let e = out.traces.entry(s.trace_id).or_insert_with(|| {
                out.order.push(s.trace_id);
                (0, Verdict::Keep)
            });
            e.0 += s.msg.len as u64;
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    TraceTooLarge,
    LiveTracesExceeded,
}

/// Spans of a request refused by the per-trace limits.
#[derive(Debug, Default)]
pub struct Refusals {
    /// Per span of the request: whether it may go in.
    pub keep: Vec<bool>,
    pub trace_too_large: u32,
    pub live_traces_exceeded: u32,
    /// Tempo's message for each reason (the first trace refused).
    pub too_large_message: Option<String>,
    pub live_traces_message: Option<String>,
}

fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl LiveTrace {
    /// The trace's span message bytes (what the per-trace size limit counts).
    fn msg_bytes(&self) -> usize {
        self.bytes - self.spans.len() * SPAN_OVERHEAD
    }
}

/// Why traces were cut, for accounting.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CutCounts {
    pub idle: usize,
    pub expired: usize,
    pub over_limit: usize,
}

/// The live traces of one tenant.
#[derive(Default)]
pub struct LiveTraces {
    traces: IdMap<TraceId, LiveTrace>,
    /// Message bytes of traces already cut (or refused): (bytes, last seen ms). A live
    /// trace's own bytes are added on top.
    sizes: IdMap<TraceId, (u64, u64)>,
    bytes: usize,
    spans: usize,
}

impl LiveTraces {
    /// Adds every span of `req` (appended to WAL segment `segment`). Returns the
    /// number of traces that were not live before.
    pub fn push(&mut self, req: &Arc<Request>, segment: u64, now_ms: u64) -> usize {
        let mut created = 0;
        for (i, span) in req.spans.iter().enumerate() {
            let bytes = span.msg.len as usize + SPAN_OVERHEAD;
            let t = self.traces.entry(span.trace_id).or_insert_with(|| {
                created += 1;
                LiveTrace {
                    spans: Vec::new(),
                    first_seen_ms: now_ms,
                    last_seen_ms: now_ms,
                    bytes: 0,
                    first_segment: segment,
                }
            });
            t.spans.push(SpanHandle { req: req.clone(), idx: i as u32 });
            t.last_seen_ms = now_ms;
            t.bytes += bytes;
            t.first_segment = t.first_segment.min(segment);
            self.bytes += bytes;
        }
        self.spans += req.spans.len();
        created
    }

    /// Removes and returns the traces due to be cut: idle for `idle_ms`, live for
    /// `max_live_ms`, and then the least recently updated ones until live bytes
    /// are at most `max_bytes`.
    pub fn cut(
        &mut self,
        now_ms: u64,
        idle_ms: u64,
        max_live_ms: u64,
        max_bytes: usize,
    ) -> (Vec<TraceSpans>, CutCounts) {
        let mut counts = CutCounts::default();
        let mut due = Vec::new();
        for (id, t) in &self.traces {
            if now_ms.saturating_sub(t.last_seen_ms) >= idle_ms {
                counts.idle += 1;
                due.push(*id);
            } else if now_ms.saturating_sub(t.first_seen_ms) >= max_live_ms {
                counts.expired += 1;
                due.push(*id);
            }
        }
        let mut out: Vec<TraceSpans> = due.iter().map(|id| self.take(id)).collect();
        if self.bytes > max_bytes {
            let mut rest: Vec<(u64, TraceId)> =
                self.traces.iter().map(|(id, t)| (t.last_seen_ms, *id)).collect();
            rest.sort_unstable();
            for (_, id) in rest {
                if self.bytes <= max_bytes {
                    break;
                }
                counts.over_limit += 1;
                out.push(self.take(&id));
            }
        }
        (out, counts)
    }

    /// The span references of every live trace, sorted by trace id (the traces stay live).
    pub fn snapshot(&self) -> Vec<TraceSpans> {
        let mut out: Vec<TraceSpans> =
            self.traces.iter().map(|(id, t)| TraceSpans::new(*id, t.spans.clone())).collect();
        out.sort_unstable_by_key(|t| t.trace_id);
        out
    }

    /// Removes and returns every live trace.
    pub fn cut_all(&mut self) -> Vec<TraceSpans> {
        let ids: Vec<TraceId> = self.traces.keys().copied().collect();
        ids.iter().map(|id| self.take(id)).collect()
    }

    fn take(&mut self, id: &TraceId) -> TraceSpans {
        let t = self.traces.remove(id).expect("trace is live");
        let size = self.sizes.entry(*id).or_default();
        size.0 += t.msg_bytes() as u64;
        size.1 = size.1.max(t.last_seen_ms);
        self.bytes -= t.bytes;
        self.spans -= t.spans.len();
        TraceSpans { trace_id: *id, spans: t.spans, first_segment: t.first_segment }
    }

    /// Which spans of `req` the per-trace limits refuse, given the traces live now:
    /// a trace that would grow past `max_bytes_per_trace` (span message bytes), and
    /// a new trace while the tenant already has `max_traces_per_user`. None when
    /// every span may go in.
    /// `traces` is [`RequestTraces::new`] of `req`, built before taking the lock.
    /// A refused trace's bytes still count against its size (Tempo's rule), so a
    /// trace past the limit stays refused. `now_ms` dates that.
    pub fn refusals(
        &mut self,
        req: &Request,
        traces: &mut RequestTraces,
        limits: &Limits,
        now_ms: u64,
    ) -> Option<Refusals> {
        let (max_bytes, max_traces) = (limits.max_bytes_per_trace, limits.max_traces_per_user);
        if max_bytes == 0 && max_traces == 0 || req.spans.is_empty() {
            return None;
        }
        let RequestTraces { traces, order } = traces;
        let mut live = self.traces.len() as u64;
        let mut out = Refusals::default();
        for id in order.iter() {
            let id = *id;
            let (added, verdict) = traces.get_mut(&id).expect("indexed above");
            let live_bytes = self.traces.get(&id).map(|t| t.msg_bytes() as u64);
            let is_live = live_bytes.is_some();
            let seen = live_bytes.unwrap_or(0) + self.sizes.get(&id).map_or(0, |s| s.0);
            if !is_live && max_traces > 0 && live >= max_traces {
                *verdict = Verdict::LiveTracesExceeded;
                out.live_traces_message.get_or_insert_with(|| {
                    format!(
                        "LIVE_TRACES_EXCEEDED: max live traces per tenant exceeded: per-user \
                         traces limit (local: {max_traces} global: 0 actual local: {max_traces}) \
                         exceeded"
                    )
                });
            } else if max_bytes > 0 && seen + *added > max_bytes {
                *verdict = Verdict::TraceTooLarge;
                let size = self.sizes.entry(id).or_default();
                size.0 += *added;
                size.1 = now_ms;
                out.too_large_message.get_or_insert_with(|| {
                    format!(
                        "TRACE_TOO_LARGE: max size of trace ({max_bytes}) exceeded while adding \
                         {added} bytes to trace {}",
                        hex(&id)
                    )
                });
            } else if !is_live {
                live += 1;
            }
        }
        out.keep = Vec::with_capacity(req.spans.len());
        for s in &req.spans {
            let verdict = traces[&s.trace_id].1;
            match verdict {
                Verdict::Keep => {}
                Verdict::TraceTooLarge => out.trace_too_large += 1,
                Verdict::LiveTracesExceeded => out.live_traces_exceeded += 1,
            }
            out.keep.push(verdict == Verdict::Keep);
        }
        (out.trace_too_large + out.live_traces_exceeded > 0).then_some(out)
    }

    /// Forgets the sizes of traces not seen since `since_ms` (the previous head cut).
    pub fn forget_sizes_idle_since(&mut self, since_ms: u64) {
        self.sizes.retain(|_, (_, last)| *last >= since_ms);
    }

    /// Traces whose size is remembered.
    pub fn sizes_tracked(&self) -> usize {
        self.sizes.len()
    }

    /// The live spans of one trace.
    pub fn get(&self, id: &TraceId) -> Option<Vec<SpanHandle>> {
        self.traces.get(id).map(|t| t.spans.clone())
    }

    /// The oldest WAL segment any live trace still needs.
    pub fn min_segment(&self) -> Option<u64> {
        self.traces.values().map(|t| t.first_segment).min()
    }

    pub fn len(&self) -> usize {
        self.traces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn spans(&self) -> usize {
        self.spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Rejected, ScopeRef, Slice, SpanRef};

    fn request(spans: &[(u8, u64)]) -> Arc<Request> {
        Arc::new(Request {
            buf: Arc::from(vec![0u8; 100]),
            resources: vec![Default::default()],
            scopes: vec![ScopeRef::default()],
            spans: spans
                .iter()
                .enumerate()
                .map(|(i, &(t, start))| SpanRef {
                    scope: 0,
                    msg: Slice::new(0, 100),
                    trace_id: [t; 16],
                    span_id: [i as u8 + 1; 8],
                    start_unix_nano: start,
                    end_unix_nano: start + 1,
                    parent_span_id: [0; 8],
                    kind: 0,
                })
                .collect(),
            rejected: Rejected::default(),
        })
    }

    fn refusals(live: &mut LiveTraces, req: &Request, l: &Limits) -> Option<Refusals> {
        live.refusals(req, &mut RequestTraces::new(req), l, 0)
    }

    #[test]
    fn refusals_apply_trace_size_and_live_trace_limits() {
        let mut live = LiveTraces::default();
        live.push(&request(&[(1, 0), (1, 1)]), 0, 0); // trace 1: 200 message bytes
        let none = Limits { max_bytes_per_trace: 0, max_traces_per_user: 0, ..Limits::default() };
        assert!(refusals(&mut live, &request(&[(1, 0)]), &none).is_none());
        let l = Limits { max_bytes_per_trace: 300, max_traces_per_user: 2, ..Limits::default() };
        assert!(refusals(&mut live, &request(&[(1, 0), (2, 0)]), &l).is_none());
        // trace 1 would reach 400 bytes; trace 2 is new and fits; trace 3 is one too many
        let r =
            refusals(&mut live, &request(&[(1, 0), (1, 0), (2, 0), (3, 0), (2, 0)]), &l).unwrap();
        assert_eq!(r.keep, [false, false, true, false, true]);
        assert_eq!((r.trace_too_large, r.live_traces_exceeded), (2, 1));
        assert!(r
            .too_large_message
            .unwrap()
            .starts_with("TRACE_TOO_LARGE: max size of trace (300)"));
        assert!(r.live_traces_message.unwrap().contains("(local: 2 global: 0 actual local: 2)"));
        // a new trace larger than the limit on its own
        let r = refusals(&mut live, &request(&[(4, 0), (4, 0), (4, 0), (4, 0)]), &l).unwrap();
        assert_eq!(r.trace_too_large, 4);
        // a trace's size outlives its cut, until the sizes idle since a head cut are forgotten
        let mut live = LiveTraces::default();
        live.push(&request(&[(5, 0), (5, 1)]), 0, 10);
        live.cut_all();
        let r = refusals(&mut live, &request(&[(5, 0), (5, 0)]), &l).unwrap();
        assert_eq!(r.trace_too_large, 2);
        live.forget_sizes_idle_since(11);
        assert_eq!(live.sizes_tracked(), 0);
        assert!(refusals(&mut live, &request(&[(5, 0), (5, 0)]), &l).is_none());
    }

    #[test]
    fn groups_by_trace_and_cuts_idle() {
        let mut live = LiveTraces::default();
        assert_eq!(live.push(&request(&[(1, 0), (2, 0), (1, 5)]), 1, 1000), 2);
        assert_eq!(live.push(&request(&[(2, 9)]), 2, 4000), 0);
        assert_eq!(live.get(&[1; 16]).unwrap().len(), 2);
        assert_eq!(live.min_segment(), Some(1));
        let (cut, counts) = live.cut(6000, 5000, 60_000, usize::MAX);
        assert_eq!(counts, CutCounts { idle: 1, expired: 0, over_limit: 0 });
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0].trace_id, [1; 16]);
        assert_eq!(cut[0].spans.len(), 2);
        assert_eq!(live.len(), 1);
        assert_eq!(live.spans(), 2);
        assert_eq!(live.min_segment(), Some(1), "trace 2 started in segment 1");
    }

    #[test]
    fn max_live_and_byte_cap() {
        let mut live = LiveTraces::default();
        for t in 0..10u8 {
            live.push(&request(&[(t, 0)]), 1, 1000 + t as u64);
        }
        let per_trace = live.bytes() / 10;
        let (cut, counts) = live.cut(1005, 10_000, 60_000, per_trace * 4);
        assert_eq!(counts.over_limit, 6);
        // The least recently updated traces went first.
        let mut ids: Vec<u8> = cut.iter().map(|t| t.trace_id[0]).collect();
        ids.sort();
        assert_eq!(ids, vec![0, 1, 2, 3, 4, 5]);
        let (cut, counts) = live.cut(62_000, 100_000, 60_000, usize::MAX);
        assert_eq!(counts.expired, 4);
        assert_eq!(cut.len(), 4);
        assert!(live.is_empty());
        assert_eq!(live.bytes(), 0);
    }
}
