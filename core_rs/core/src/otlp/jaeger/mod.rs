//! Jaeger spans to an OTLP `ExportTraceServiceRequest`, following the OpenTelemetry
//! collector's Jaeger translator (`pkg/translator/jaeger` v0.165, default feature
//! gates: `jaegerthrift_to_traces.go`, `jaegerproto_to_traces.go`) to the attribute:
//!
//! - Inputs: an agent UDP datagram (`Agent.emitBatch`, compact or binary Thrift), a
//!   collector HTTP body (one binary Thrift `Batch`), a gRPC `PostSpansRequest`.
//! - Resources: one `ResourceSpans` per Thrift batch; for protobuf one per distinct
//!   process, a span's own `process` winning over the batch's (the collector's
//!   `regroup`; first-seen order where the collector's is a Go map's). `serviceName`
//!   becomes `service.name` (none when empty), then the process tags; `hostname`
//!   becomes `host.name` and `jaeger.version` `opencensus.exporterversion:
//!   Jaeger-<v>` unless those keys exist; the protobuf service name
//!   `OTLPResourceNoServiceName` drops all resource attributes.
//! - Attributes behave as pdata's map: a repeated key keeps its first position and
//!   its last value, a consumed key is swap-removed, so the order matches too. Tag
//!   types map to string, double, bool, int and bytes values; `http.status_code` and
//!   `http.response.status_code` tags are both stored as `http.response.status_code`.
//! - Consumed span tags: `span.kind` (`client`, `server`, `producer`, `consumer`,
//!   `internal`) sets the kind. Status: a bool `error=true` gives ERROR with message
//!   `otel.status_description` (consumed) else `http.status_message`; otherwise
//!   `otel.status_code` (`OK`/`ERROR` in any case; other values: UNSET) with
//!   `otel.status_description`; otherwise the HTTP status code (an int or decimal
//!   string): 4xx is ERROR for client spans and unset for server spans, anything
//!   outside 100..=398 is ERROR, with `http.status_message` as message.
//!   `otel.status_code` is always consumed, `error` only when it is `true`.
//! - Protobuf spans only (the collector's Thrift path keeps these as attributes):
//!   `w3c.tracestate` becomes the trace state; the first `otel.scope.name` tag and
//!   then the first `otel.scope.version` tag name the `InstrumentationScope`, and
//!   spans are grouped into a `ScopeSpans` per scope. Thrift spans share one.
//! - Ids: trace id `high << 64 | low` as 16 big-endian bytes (an 8-byte protobuf id
//!   is the low half), span ids 8 big-endian bytes. The parent is Thrift's non-zero
//!   `parentSpanId`, else the first CHILD_OF reference within the span's trace, else
//!   the first FOLLOWS_FROM one there. Every other reference (a FOLLOWS_FROM parent
//!   included) becomes a link with `opentracing.ref_type` `child_of`/`follows_from`.
//! - Times: Thrift microseconds and protobuf `Timestamp`/`Duration` to unix nanos,
//!   wrapping as Go does; Jaeger's sampled flag (bit 0) becomes OTLP flags bit 0.
//! - Logs become events: the `event` field names the event, the rest are attributes.
//! - A span whose every field is zero is skipped, as the collector does.
//!
//! Departures from the collector, all refusals: a tag type other than the five is an
//! error (`span 3: tag 2: vType 9 is not a Jaeger tag type`; the collector writes
//! `<Unknown Jaeger TagType ...>`), so is a string that is not UTF-8 (Go passes it
//! on), a Thrift list of non-structs where structs belong, and a protobuf group
//! (wire types 3 and 4). Every error says where; no input can panic or recurse more
//! than 64 deep, sizes are checked against the bytes left before anything loops or
//! reserves, and the output stays under 40 times the input (empty references).

/// A [`Fail`] from `format!` arguments.
macro_rules! fail {
    ($($arg:tt)*) => {
        Fail::new(format!($($arg)*))
    };
}

#[cfg(test)]
mod fixtures;
mod proto;
#[cfg(test)]
mod realistic;
#[cfg(test)]
mod tests;
mod thrift;
mod translate;

use translate::Translator;

/// A Jaeger agent UDP datagram: a Thrift `emitBatch` message (CALL or ONEWAY) whose
/// args field 1 is a `jaeger.Batch`; `compact` selects TCompactProtocol (port 6831),
/// else TBinaryProtocol (port 6832, strict or old-style message header).
pub fn jaeger_agent_to_otlp(datagram: &[u8], compact: bool) -> Result<Vec<u8>, String> {
    let mut tr = Translator::new(datagram.len());
    if compact {
        thrift::agent_message::<true>(datagram, &mut tr)?;
    } else {
        thrift::agent_message::<false>(datagram, &mut tr)?;
    }
    Ok(tr.finish())
}

/// The Jaeger collector's HTTP body (`POST /api/traces`, `application/x-thrift`):
/// one `jaeger.Batch` in TBinaryProtocol.
pub fn jaeger_thrift_batch_to_otlp(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut tr = Translator::new(body.len());
    thrift::thrift_batch::<false>(body, &mut tr)?;
    Ok(tr.finish())
}

/// The gRPC `jaeger.api_v2.CollectorService/PostSpans` request message
/// (`PostSpansRequest`).
pub fn jaeger_proto_to_otlp(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut tr = Translator::new(body.len());
    proto::post_spans(body, &mut tr)?;
    Ok(tr.finish())
}

/// A decoding error: one pointer wide, so the decoders' results stay small; its
/// context (`span 3: tag 2: `) is prepended on the way out.
#[derive(Debug)]
#[allow(clippy::box_collection)] // one pointer wide, unlike `String` or `Box<str>`
struct Fail(Box<String>);

impl Fail {
    #[cold]
    fn new(msg: impl Into<String>) -> Fail {
        Fail(Box::new(msg.into()))
    }

    /// The error with `where_: ` in front.
    #[cold]
    fn ctx(self, where_: std::fmt::Arguments<'_>) -> Fail {
        Fail(Box::new(format!("{where_}: {}", self.0)))
    }
}

impl From<Fail> for String {
    fn from(f: Fail) -> String {
        *f.0
    }
}

/// Short strings validated before in the same input, by content: tag keys (and many
/// values) repeat from span to span, and a hit skips the UTF-8 check.
#[derive(Debug)]
struct Strs<'a> {
    slots: [&'a str; 64],
}

impl Default for Strs<'_> {
    fn default() -> Self {
        Strs { slots: [""; 64] }
    }
}

impl<'a> Strs<'a> {
    /// `b` as UTF-8 (maybe an equal string from elsewhere in the input), or an error
    /// naming the field `what`.
    #[inline(always)]
    fn get(&mut self, b: &'a [u8], what: &str) -> Result<&'a str, Fail> {
        match ascii(b) {
            Some(s) => Ok(s),
            None => self.get_other(b, what),
        }
    }

    /// [`Strs::get`] past the ASCII check.
    #[inline(never)]
    fn get_other(&mut self, b: &'a [u8], what: &str) -> Result<&'a str, Fail> {
        if b.len() > 16 {
            return utf8(b, what);
        }
        // Up to 16 bytes, the first and last 8 are the whole string.
        let words = translate::words(b);
        let mix = words.0 ^ words.1.rotate_left(23) ^ b.len() as u64;
        let slot = &mut self.slots[(mix.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize];
        if slot.len() == b.len() && translate::words(slot.as_bytes()) == words {
            return Ok(slot);
        }
        let s = utf8(b, what)?;
        *slot = s;
        Ok(s)
    }
}

/// `b` as a `&str` if it is ASCII (most keys and values), checked inline: up to 32
/// bytes with two or four overlapping word loads.
#[inline(always)]
fn ascii(b: &[u8]) -> Option<&str> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let n = b.len();
    let high = if n <= 16 {
        let (x, y) = translate::words(b);
        x | y
    } else if n <= 32 {
        let (x, y) = translate::words(&b[..16]);
        let (z, w) = translate::words(&b[n - 16..]);
        x | y | z | w
    } else {
        return None; // simdutf8 is quick enough at this length
    };
    if high & HIGH != 0 {
        return None;
    }
    // SAFETY: every byte of `b` is below 0x80 (the loads above cover all of them), and
    // ASCII is valid UTF-8.
    Some(unsafe { std::str::from_utf8_unchecked(b) })
}

/// `b` as UTF-8, or an error naming the field `what`.
#[inline]
fn utf8<'a>(b: &'a [u8], what: &str) -> Result<&'a str, Fail> {
    simdutf8::basic::from_utf8(b).map_err(|_| fail!("{what} is not valid UTF-8"))
}
