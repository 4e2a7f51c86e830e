//! Zipkin v1 spans (JSON and thrift) to the shared [`Span`], by the collector's
//! `zipkinv1` rules (json.go, thrift.go, status_code.go):
//!
//! - Annotations with an empty value are ignored. The first core annotation (`cs`,
//!   `cr` client; `sr`, `ss` server; `ms` producer; `mr` consumer) sets the kind;
//!   the first core one whose host has a service name is the local endpoint. The
//!   others become events (`ws`, `wr` and `error` included).
//! - The span's `timestamp` (and `duration`) give start and end; without it, the
//!   earliest and latest annotation do; without either, both are 0 (the collector's
//!   JSON reader stamps the receive time and `otel.zipkin.absentField.startTime`,
//!   which would make the output depend on the clock). Negative times count as 0;
//!   an end before the start is the start.
//! - With no local endpoint, the service is the last binary annotation host's
//!   (thrift: any host, even unnamed; JSON: a named one; address annotations
//!   aside), else the `lc` value, else `unknown-service`. The resource is keyed by
//!   the whole endpoint and gets its address as `ipv4`, `ipv6` and `port` (a
//!   string) attributes.
//! - Binary annotations become typed attributes (see the format readers); `lc` is
//!   renamed `component`; a repeated key keeps its first place and last value.
//! - Status: `census.status_code` (0 OK, else ERROR) before `otel.status_code`
//!   (numeric, kept as sent) before `error` (ERROR) before `http.status_code` (ERROR
//!   outside 100..399), each with its message (`census.status_description` /
//!   `opencensus.status_description`, `otel.status_description`, either of those for
//!   `error`, `http.status_message`). All but the `http.*` tags are dropped.
//! - Address annotations `ca`, `sa`, `ma` (BOOL true, with a host) give the remote
//!   endpoint: `sa` of a client span, `ca` of a server, `ma` of a producer or
//!   consumer; with no kind the first present of `sa`, `ca`, `ma`. (The collector
//!   keeps them as boolean attributes; Zipkin itself reads them as here.)
//! - The parent id is kept even when equal to the span id, as the collector does.

use super::{ip_string, Annotation, Attr, Classified, Endpoint, Groups, Id, Span, Str};
use super::{Value, KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER, STATUS_ERROR};
use super::{STATUS_OK, TAG_ERROR, TAG_STATUS_CODE, TAG_STATUS_DESCRIPTION};

/// The service of a span with no named host.
const UNKNOWN_SERVICE: &str = "unknown-service";

/// A v1 span as both v1 formats read it.
pub(super) struct V1Span<'a> {
    pub(super) trace_id: Id,
    pub(super) id: Id,
    pub(super) parent_id: Option<Id>,
    pub(super) name: Str<'a>,
    /// Microseconds; None when absent (JSON: also when 0).
    pub(super) timestamp: Option<i64>,
    pub(super) duration: i64,
    pub(super) annotations: Vec<V1Annotation<'a>>,
    pub(super) binary_annotations: Vec<V1Binary<'a>>,
}

pub(super) struct V1Annotation<'a> {
    pub(super) timestamp: i64,
    pub(super) value: Str<'a>,
    pub(super) host: Option<Host<'a>>,
}

pub(super) struct V1Binary<'a> {
    pub(super) key: Str<'a>,
    pub(super) value: Value<'a>,
    pub(super) host: Option<Host<'a>>,
}

/// An annotation's host as read. Most hosts only name a service, so binary
/// addresses (thrift) are formatted only for the local and remote endpoints.
#[derive(Default)]
pub(super) struct Host<'a> {
    pub(super) service_name: Str<'a>,
    pub(super) ipv4: Addr<'a>,
    pub(super) ipv6: Addr<'a>,
    pub(super) port: u16,
}

#[derive(Default)]
pub(super) enum Addr<'a> {
    #[default]
    None,
    Text(Str<'a>),
    /// Network-order bytes.
    Bytes(&'a [u8]),
}

impl<'a> Host<'a> {
    fn endpoint(self) -> Endpoint<'a> {
        let text = |a: Addr<'a>| match a {
            Addr::None => None,
            Addr::Text(s) => Some(s),
            Addr::Bytes(b) => ip_string(b).map(Str::Owned),
        };
        Endpoint {
            service_name: Some(self.service_name),
            ipv4: text(self.ipv4),
            ipv6: text(self.ipv6),
            port: Some(self.port).filter(|p| *p != 0),
        }
    }
}

impl<'a> From<Endpoint<'a>> for Host<'a> {
    fn from(e: Endpoint<'a>) -> Host<'a> {
        Host {
            service_name: e.service_name.unwrap_or_default(),
            ipv4: e.ipv4.map_or(Addr::None, Addr::Text),
            ipv6: e.ipv6.map_or(Addr::None, Addr::Text),
            port: e.port.unwrap_or(0),
        }
    }
}

/// Which binary annotation hosts name the service of a span without core
/// annotations: thrift takes any host's name (even empty), JSON a non-empty one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum HostNames {
    Any,
    NonEmpty,
}

fn micros(t: i64) -> u64 {
    t.max(0) as u64
}

/// Converts a v1 span to the shared model (see the module doc).
pub(super) fn to_span(s: V1Span<'_>, host_names: HostNames) -> Span<'_> {
    let mut kind = None;
    let mut local: Option<Endpoint<'_>> = None;
    let (mut earliest, mut latest) = (i64::MAX, i64::MIN);
    let (mut start, mut end) = (0, 0);
    let mut events = Vec::new();
    for a in s.annotations {
        if a.value.is_empty() {
            continue;
        }
        let core = match a.value.as_ref() {
            "cs" | "cr" => Some(KIND_CLIENT),
            "ss" | "sr" => Some(KIND_SERVER),
            "ms" => Some(KIND_PRODUCER),
            "mr" => Some(KIND_CONSUMER),
            _ => None,
        };
        if a.timestamp < earliest {
            earliest = a.timestamp;
            start = micros(a.timestamp);
        }
        if a.timestamp > latest {
            latest = a.timestamp;
            end = micros(a.timestamp);
        }
        match core {
            Some(k) => {
                kind.get_or_insert(k);
                let named = |h: &Host<'_>| !matches!(h.service_name.as_ref(), "" | UNKNOWN_SERVICE);
                if local.is_none() && a.host.as_ref().is_some_and(named) {
                    local = a.host.map(Host::endpoint);
                }
            }
            None => events.push(Annotation { timestamp: micros(a.timestamp), value: a.value }),
        }
    }

    let mut host_service: Option<Str<'_>> = None;
    let mut local_component: Option<Str<'_>> = None;
    // sa, ca, ma
    let mut addresses: [Option<Host<'_>>; 3] = [None, None, None];
    let mut tags = Vec::with_capacity(s.binary_annotations.len());
    for b in s.binary_annotations {
        let address = match b.key.as_ref() {
            "sa" => Some(0),
            "ca" => Some(1),
            "ma" => Some(2),
            _ => None,
        };
        if let Some(i) = address.filter(|_| b.value == Value::Bool(true) && b.host.is_some()) {
            addresses[i] = b.host;
            continue;
        }
        if let Some(h) = &b.host {
            if host_names == HostNames::Any || !h.service_name.is_empty() {
                host_service = Some(h.service_name.clone());
            }
        }
        let mut key = b.key;
        if key == "lc" {
            key = Str::Borrowed("component");
            if let Value::Str(v) = &b.value {
                local_component = Some(v.clone());
            }
        }
        tags.push((key, b.value));
    }
    let local = local.unwrap_or_else(|| {
        let service = host_service
            .filter(|s| !s.is_empty())
            .or(local_component.filter(|s| !s.is_empty()))
            .unwrap_or(Str::Borrowed(UNKNOWN_SERVICE));
        Endpoint { service_name: Some(service), ..Endpoint::default() }
    });
    if let Some(ts) = s.timestamp {
        start = micros(ts);
        end = micros(ts.wrapping_add(s.duration));
    }
    let [sa, ca, ma] = addresses;
    let remote = match kind {
        Some(KIND_CLIENT) => sa,
        Some(KIND_SERVER) => ca,
        Some(_) => ma,
        None => sa.or(ca).or(ma),
    };
    Span {
        trace_id: s.trace_id,
        id: s.id,
        parent_id: s.parent_id,
        name: Some(s.name),
        kind: kind.unwrap_or(0),
        timestamp: start,
        duration: end.saturating_sub(start),
        local_endpoint: Some(local),
        remote_endpoint: remote.map(Host::endpoint),
        tags,
        annotations: Some(events),
    }
}

/// An integer status from an int or a decimal string that fits an int32.
fn status_int(v: &Attr<'_>) -> Option<i32> {
    match v {
        Attr::Int(i) => i32::try_from(*i).ok(),
        Attr::Str(s) => s.parse::<i64>().ok().and_then(|i| i32::try_from(i).ok()),
        _ => None,
    }
}

/// One status source: its code (when it gave one) and message.
#[derive(Default, Clone, Copy)]
struct Source<'a> {
    code: Option<i32>,
    message: &'a str,
}

/// The zipkinv1 attribute rules: the status mapper, and one value per key.
pub(super) fn classify<'a>(z: &'a Span<'a>) -> Classified<'a> {
    let (mut census, mut otel, mut http, mut error) =
        (Source::default(), Source::default(), Source::default(), Source::default());
    let mut attrs: Groups<&str, Attr<'_>> = Groups::new();
    for (k, v) in &z.tags {
        let (k, v) = (k.as_ref(), v.attr());
        match k {
            "census.status_code" => {
                if let Some(c) = status_int(&v) {
                    census.code = Some(if c == 0 { STATUS_OK } else { STATUS_ERROR });
                }
                continue;
            }
            "census.status_description" | "opencensus.status_description" => {
                census.message = v.str();
                continue;
            }
            TAG_STATUS_CODE => {
                otel.code = status_int(&v).or(otel.code);
                continue;
            }
            TAG_STATUS_DESCRIPTION => {
                otel.message = v.str();
                continue;
            }
            TAG_ERROR => {
                error.code = Some(STATUS_ERROR);
                continue;
            }
            "http.status_code" => {
                if let Some(c) = status_int(&v) {
                    http.code = Some(if (100..400).contains(&c) { 0 } else { STATUS_ERROR });
                }
            }
            "http.status_message" => http.message = v.str(),
            _ => {}
        }
        let (i, new) = attrs.find_or_insert(k, || v);
        if !new {
            attrs.entries[i].1 = v;
        }
    }
    let status = if census.code.is_some() {
        census
    } else if otel.code.is_some() {
        otel
    } else if error.code.is_some() {
        let message = if census.message.is_empty() { otel.message } else { census.message };
        Source { code: error.code, message }
    } else {
        http
    };
    let status = match status.code {
        Some(code) => (code, status.message),
        None => (0, ""),
    };
    Classified {
        attrs: attrs.entries,
        resource_tags: Vec::new(),
        scope: ("", ""),
        kind: z.kind,
        status,
        trace_state: "",
        links: Vec::new(),
    }
}
