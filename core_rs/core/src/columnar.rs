//! (in progress on branch `block`) Arrow record batches from span references.
use crate::model::{SpanHandle, TraceId};

/// The spans of one trace, as handed to the columnar builder.
pub struct TraceSpans {
    pub trace_id: TraceId,
    pub spans: Vec<SpanHandle>,
}
