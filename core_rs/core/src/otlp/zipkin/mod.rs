//! Zipkin spans to an OTLP `ExportTraceServiceRequest`, following the OpenTelemetry
//! collector's `zipkinv2` and `zipkinv1` translators. Four wire formats decode into
//! one borrowed [`Span`]; one writer ([`to_otlp`]) encodes it, grouping spans into a
//! `ResourceSpans` per local service and a `ScopeSpans` per instrumentation scope
//! (first-seen order).
//!
//! Every format:
//! - 64-bit trace ids are left-padded to 128 bits. An id that is not valid (hex of
//!   the right length, or 8 / 16 bytes) is written with a wrong length, so the
//!   validator drops (and counts) just that span. An all-zero parent id is left out.
//! - Times are microseconds; the remote endpoint becomes `peer.service`,
//!   `net.peer.ip` and `net.peer.port`.
//!
//! v2 rules (JSON array, protobuf `ListOfSpans`):
//! - `localEndpoint.serviceName` becomes the resource's `service.name`; tags that
//!   are resource semantic conventions (`host.*`, `k8s.*`, …) go to the resource.
//! - `otel.library.name|version` (or `otel.scope.name|version`) name the scope.
//! - `kind` maps to the span kind (`span.kind=internal` when absent);
//!   `otel.status_code` / `otel.status_description` and `error` set the status.
//! - `timestamp` / `duration` give start and end; annotations become events
//!   (`name|{json attributes}|dropped` is unpacked as the collector writes it);
//!   `otlp.link.N` tags become links; `w3c.tracestate` the trace state.
//! - The local endpoint's address becomes `net.host.ip` / `net.host.port`; a parent
//!   id equal to the span id is left out.
//!
//! v1 rules (JSON array, thrift list of `Span`): see [`v1`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Range;

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::pb::{put_bytes_field, put_fixed64_field, put_message, put_varint_field, varint_len};
use crate::pb::{put_key, put_varint, LEN};

mod json_reader;
mod v1;
mod v1_json;
mod v1_thrift;
mod v2_json;
mod v2_proto;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod format_tests;
#[cfg(test)]
mod json_gen;
#[cfg(test)]
mod realistic;
#[cfg(test)]
mod v2_json_tests;

pub use v1_json::zipkin_v1_json_to_otlp;
pub use v1_thrift::zipkin_v1_thrift_to_otlp;
pub use v2_json::zipkin_v2_json;
#[cfg(test)]
pub use v2_json::zipkin_v2_json_to_otlp;
pub use v2_proto::zipkin_v2_proto;
#[cfg(test)]
pub use v2_proto::zipkin_v2_proto_to_otlp;

const TAG_STATUS_CODE: &str = "otel.status_code";
const TAG_STATUS_DESCRIPTION: &str = "otel.status_description";
const TAG_ERROR: &str = "error";
const TAG_TRACE_STATE: &str = "w3c.tracestate";
const TAG_SPAN_KIND: &str = "span.kind";

/// OTLP span kinds.
const KIND_INTERNAL: u64 = 1;
const KIND_SERVER: u64 = 2;
const KIND_CLIENT: u64 = 3;
const KIND_PRODUCER: u64 = 4;
const KIND_CONSUMER: u64 = 5;

/// OTLP status codes.
const STATUS_OK: i32 = 1;
const STATUS_ERROR: i32 = 2;

/// Whether a tag is a resource semantic convention (`host.*`, `k8s.*`, `aws.ecs.*`, …):
/// such tags describe the process that produced the span, and go back to the resource.
fn is_resource_tag(key: &str) -> bool {
    let k = key.as_bytes();
    match k.first() {
        Some(b's') => k.starts_with(b"service."),
        Some(b't') => k.starts_with(b"telemetry."),
        Some(b'h') => k.starts_with(b"host.") || k.starts_with(b"heroku."),
        Some(b'o') => k.starts_with(b"os."),
        Some(b'p') => k.starts_with(b"process."),
        Some(b'c') => k.starts_with(b"container.") || k.starts_with(b"cloud."),
        Some(b'k') => k.starts_with(b"k8s."),
        Some(b'f') => k.starts_with(b"faas."),
        Some(b'd') => k.starts_with(b"deployment.") || k.starts_with(b"device."),
        Some(b'a') => {
            k.starts_with(b"aws.ecs.") || k.starts_with(b"aws.eks.") || k.starts_with(b"aws.log.")
        }
        Some(b'g') => k.starts_with(b"gcp."),
        Some(b'w') => k.starts_with(b"webengine."),
        _ => false,
    }
}

/// A string borrowed from the body where it can be.
type Str<'a> = Cow<'a, str>;

/// The bytes of up to eight hex digits (either case; an even count), little-endian:
/// None if any is not a hex digit.
fn hex_digits(digits: &[u8]) -> Option<u32> {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let w = u64::from_le_bytes(match digits.try_into() {
        Ok(eight) => eight,
        Err(_) => {
            let mut buf = [b'0'; 8];
            buf.get_mut(..digits.len())?.copy_from_slice(digits);
            buf
        }
    });
    // Per byte: the top bit of `w + (0x80 - lo)` is set iff the byte is >= lo, and of
    // `w + (0x7f - hi)` iff it is > hi (with the top bits cleared first: no carries).
    let low = w & !HIGH;
    let within =
        |lo: u8, hi: u8| (low + ONES * (0x80 - lo) as u64) & !(low + ONES * (0x7f - hi) as u64);
    let valid = (within(b'0', b'9') | within(b'A', b'F') | within(b'a', b'f')) & !w & HIGH;
    if valid != HIGH {
        return None;
    }
    // Digit values (letters have bit 6 set: their low nibble plus 9), then pairs of
    // nibbles into bytes, then the even bytes together.
    let nibbles = (w & (ONES * 0x0f)) + ((w >> 6) & ONES) * 9;
    let pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff_00ff_00ff_00ff;
    let quads = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    Some((quads | (quads >> 16)) as u32)
}

/// An id decoded on the stack; `len` 1 marks an invalid id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Id {
    bytes: [u8; 16],
    len: u8,
}

impl std::ops::Deref for Id {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl Id {
    /// Written with a wrong length: the validator rejects the span.
    const BAD: Id = Id { bytes: [0; 16], len: 1 };

    /// Hex of `bytes` bytes; a 16-character trace id is left-padded to 32.
    fn hex(s: &str, bytes: usize) -> Id {
        let pad = if bytes == 16 && s.len() == 16 { 8 } else { 0 };
        if s.len() + pad * 2 != bytes * 2 {
            return Id::BAD;
        }
        // Eight digits at a time, into a register (ids are random: per-digit branches
        // would mispredict, and bytes stored one by one would be slow to read back).
        let (mut v, mut at) = (0u128, pad);
        for digits in s.as_bytes().chunks(8) {
            let Some(x) = hex_digits(digits) else {
                return Id::BAD;
            };
            v |= (x as u128) << (8 * at);
            at += digits.len() / 2;
        }
        Id { bytes: v.to_le_bytes(), len: bytes as u8 }
    }

    /// Raw bytes of a `bytes`-byte id; an 8-byte trace id is left-padded to 16.
    fn raw(b: &[u8], bytes: usize) -> Id {
        let pad = if bytes == 16 && b.len() == 8 { 8 } else { 0 };
        if b.len() + pad != bytes {
            return Id::BAD;
        }
        let mut id = Id { bytes: [0; 16], len: bytes as u8 };
        id.bytes[pad..bytes].copy_from_slice(b);
        id
    }

    /// A trace id from its high and low halves.
    fn trace(high: u64, low: u64) -> Id {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&high.to_be_bytes());
        bytes[8..].copy_from_slice(&low.to_be_bytes());
        Id { bytes, len: 16 }
    }

    fn span(v: u64) -> Id {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&v.to_be_bytes());
        Id { bytes, len: 8 }
    }

    /// A valid id of all zeros (an invalid one is not zero).
    fn is_zero(&self) -> bool {
        self.len != 1 && self.bytes == [0; 16]
    }
}

/// A Zipkin endpoint (the JSON shape of both versions).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "a Zipkin endpoint object")]
struct Endpoint<'a> {
    #[serde(borrow, deserialize_with = "v2_json::opt_str")]
    service_name: Option<Str<'a>>,
    #[serde(borrow, deserialize_with = "v2_json::opt_str")]
    ipv4: Option<Str<'a>>,
    #[serde(borrow, deserialize_with = "v2_json::opt_str")]
    ipv6: Option<Str<'a>>,
    port: Option<u16>,
}

impl Endpoint<'_> {
    fn service(&self) -> &str {
        self.service_name.as_deref().unwrap_or("")
    }

    fn ip(&self) -> Option<&str> {
        self.ipv6.as_deref().filter(|s| !s.is_empty()).or(self.ipv4.as_deref())
    }

    fn port(&self) -> u16 {
        self.port.unwrap_or(0)
    }
}

/// A timed event (the v2 JSON shape).
#[derive(Debug, Deserialize)]
#[serde(expecting = "a Zipkin annotation object")]
struct Annotation<'a> {
    /// Microseconds.
    #[serde(default, deserialize_with = "v2_json::micros")]
    timestamp: u64,
    #[serde(borrow, default, deserialize_with = "v2_json::str")]
    value: Str<'a>,
}

/// A typed tag value (v2 tags are strings; v1 binary annotations are typed).
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    Str(Str<'a>),
    Bool(bool),
    Int(i64),
    Double(f64),
}

impl Value<'_> {
    fn attr(&self) -> Attr<'_> {
        match self {
            Value::Str(s) => Attr::Str(s),
            Value::Bool(b) => Attr::Bool(*b),
            Value::Int(i) => Attr::Int(*i),
            Value::Double(d) => Attr::Double(*d),
        }
    }
}

/// A span's tags in the order sent.
type Tags<'a> = Vec<(Str<'a>, Value<'a>)>;

/// The span every format decodes into: Zipkin v2's model, so v2 JSON deserializes
/// straight into it; v1 spans are converted by [`v1::to_span`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a Zipkin v2 span object")]
struct Span<'a> {
    #[serde(default = "bad_id", deserialize_with = "v2_json::trace_id")]
    trace_id: Id,
    #[serde(default = "bad_id", deserialize_with = "v2_json::span_id")]
    id: Id,
    #[serde(default, deserialize_with = "v2_json::parent_id")]
    parent_id: Option<Id>,
    #[serde(borrow, default, deserialize_with = "v2_json::opt_str")]
    name: Option<Str<'a>>,
    /// The OTLP span kind (0 when unspecified).
    #[serde(default, deserialize_with = "v2_json::kind")]
    kind: u64,
    /// Microseconds.
    #[serde(default, deserialize_with = "v2_json::micros")]
    timestamp: u64,
    /// Microseconds.
    #[serde(default, deserialize_with = "v2_json::micros")]
    duration: u64,
    #[serde(borrow, default)]
    local_endpoint: Option<Endpoint<'a>>,
    #[serde(borrow, default)]
    remote_endpoint: Option<Endpoint<'a>>,
    #[serde(borrow, default, deserialize_with = "v2_json::tags")]
    tags: Tags<'a>,
    #[serde(borrow, default)]
    annotations: Option<Vec<Annotation<'a>>>,
}

impl Span<'_> {
    /// A span with no fields read yet (ids invalid until read).
    fn empty() -> Self {
        Span {
            trace_id: Id::BAD,
            id: Id::BAD,
            parent_id: None,
            name: None,
            kind: 0,
            timestamp: 0,
            duration: 0,
            local_endpoint: None,
            remote_endpoint: None,
            tags: Vec::new(),
            annotations: None,
        }
    }
}

fn bad_id() -> Id {
    Id::BAD
}

/// Which collector translator's rules apply to the tags, the local endpoint and
/// the annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rules {
    V1,
    V2,
    /// v2 with the receiver's `parse_string_tags`: tag values that read as an
    /// integer, a float or a boolean (in that order, as Go's `strconv` reads them)
    /// become typed attributes.
    V2Typed,
}

impl Rules {
    fn v2(parse_string_tags: bool) -> Rules {
        if parse_string_tags {
            Rules::V2Typed
        } else {
            Rules::V2
        }
    }
}

/// A string tag value typed as the collector's `parse_string_tags` does.
fn typed(v: &str) -> Attr<'_> {
    if let Ok(i) = v.parse::<i64>() {
        return Attr::Int(i);
    }
    if v.bytes().any(|b| b.is_ascii_digit()) || is_float_word(v) {
        if let Ok(d) = v.parse::<f64>() {
            return Attr::Double(d);
        }
    }
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Attr::Bool(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Attr::Bool(false),
        _ => Attr::Str(v),
    }
}

/// `inf`, `infinity` and `nan` (any case, signed), which Go's `ParseFloat` accepts.
fn is_float_word(v: &str) -> bool {
    let w = v.trim_start_matches(['+', '-']);
    ["inf", "infinity", "nan"].iter().any(|word| w.eq_ignore_ascii_case(word))
}

/// One attribute value, borrowed, as OTLP `AnyValue` bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Attr<'a> {
    Str(&'a str),
    Int(i64),
    Double(f64),
    Bool(bool),
}

impl<'a> Attr<'a> {
    /// The value's string (`""` for other types, as pdata's `Str()` reads it).
    fn str(&self) -> &'a str {
        match self {
            Attr::Str(s) => s,
            _ => "",
        }
    }
}

/// A `KeyValue` message, its lengths computed first (the hot path of every span).
fn put_kv(out: &mut Vec<u8>, field: u32, key: &str, v: &Attr<'_>) {
    // The usual case: a short string value, every length a one-byte varint.
    if let Attr::Str(s) = v {
        let value_len = 2 + s.len();
        let kv_len = 4 + key.len() + value_len;
        if kv_len < 128 && field < 16 {
            out.reserve(2 + kv_len);
            out.extend_from_slice(&[(field << 3) as u8 | LEN, kv_len as u8, 0x0a, key.len() as u8]);
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&[0x12, value_len as u8, 0x0a, s.len() as u8]);
            out.extend_from_slice(s.as_bytes());
            return;
        }
    }
    let value_len = match v {
        Attr::Str(s) => 1 + varint_len(s.len() as u64) + s.len(),
        Attr::Bool(_) => 2,
        Attr::Int(i) => 1 + varint_len(*i as u64),
        Attr::Double(_) => 9,
    };
    let kv_len = 2 + varint_len(key.len() as u64) + key.len() + varint_len(value_len as u64);
    let kv_len = kv_len + value_len;
    out.reserve(kv_len + 15);
    put_key(out, field, LEN);
    put_varint(out, kv_len as u64);
    put_bytes_field(out, 1, key.as_bytes());
    put_key(out, 2, LEN);
    put_varint(out, value_len as u64);
    match v {
        Attr::Str(s) => put_bytes_field(out, 1, s.as_bytes()),
        Attr::Bool(b) => put_varint_field(out, 2, *b as u64),
        Attr::Int(i) => put_varint_field(out, 3, *i as u64),
        Attr::Double(d) => put_fixed64_field(out, 4, d.to_bits()),
    }
}

/// Attributes from a JSON object packed by the collector's exporter: strings,
/// numbers (integral ones as ints) and booleans; anything else is skipped.
fn put_json_attrs(out: &mut Vec<u8>, field: u32, attrs: &Map<String, Json>) {
    for (k, v) in attrs {
        match v {
            Json::String(s) => put_kv(out, field, k, &Attr::Str(s)),
            Json::Bool(b) => put_kv(out, field, k, &Attr::Bool(*b)),
            Json::Number(n) => match n.as_i64() {
                Some(i) => put_kv(out, field, k, &Attr::Int(i)),
                None => put_kv(out, field, k, &Attr::Double(n.as_f64().unwrap_or(0.0))),
            },
            _ => {}
        }
    }
}

/// `name|{json}|dropped` as the collector's exporter packs events and links:
/// (name or the leading fields, the attribute object, the dropped count).
fn unpack(value: &str, leading: usize) -> Option<(Vec<&str>, Map<String, Json>, u32)> {
    if !value.contains('|') {
        return None;
    }
    let parts: Vec<&str> = value.split('|').collect();
    if parts.len() < leading + 2 {
        return None;
    }
    let dropped = parts[parts.len() - 1].parse().ok()?;
    let json = parts[leading..parts.len() - 1].join("|");
    match serde_json::from_str::<Json>(&json).ok()? {
        Json::Object(attrs) => Some((parts[..leading].to_vec(), attrs, dropped)),
        _ => None,
    }
}

/// First-seen-order grouping: a linear scan while small (the usual case), a hash
/// index past that so hostile inputs with many distinct keys stay linear.
struct Groups<K, V> {
    entries: Vec<(K, V)>,
    index: HashMap<K, usize, ahash::RandomState>,
    /// The entry found last: spans often come in runs of one resource and scope.
    last: usize,
}

impl<K, V> Default for Groups<K, V> {
    fn default() -> Self {
        Groups { entries: Vec::new(), index: HashMap::default(), last: 0 }
    }
}

impl<K: Copy + Eq + Hash, V> Groups<K, V> {
    const LINEAR: usize = 16;

    fn new() -> Self {
        Self::default()
    }

    /// The position of `key`, inserted with `new()` when absent; whether it was new.
    fn find_or_insert(&mut self, key: K, new: impl FnOnce() -> V) -> (usize, bool) {
        if self.entries.get(self.last).is_some_and(|(k, _)| *k == key) {
            return (self.last, false);
        }
        let found = if self.entries.len() <= Self::LINEAR {
            self.entries.iter().position(|(k, _)| *k == key)
        } else {
            let indexed = self.index.len();
            self.index.extend(
                self.entries[indexed..].iter().enumerate().map(|(i, (k, _))| (*k, indexed + i)),
            );
            self.index.get(&key).copied()
        };
        match found {
            Some(i) => {
                self.last = i;
                (i, false)
            }
            None => {
                self.entries.push((key, new()));
                self.last = self.entries.len() - 1;
                (self.last, true)
            }
        }
    }

    fn entry(&mut self, key: K, new: impl FnOnce() -> V) -> &mut V {
        let (i, _) = self.find_or_insert(key, new);
        &mut self.entries[i].1
    }
}

/// Whether two strings are equal, without calling `memcmp` for empty ones: glibc's
/// AVX-512 `memcmp` reads through the dangling pointer of an empty slice with a masked
/// load, which can cost a microcode assist (~80 ns on some CPUs), and the grouping keys
/// are often empty.
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

/// A string grouping key, compared with [`same`].
#[derive(Clone, Copy, Hash)]
struct Key<'a>(&'a str);

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        same(self.0, other.0)
    }
}

impl Eq for Key<'_> {}

/// What a span's resource is keyed by: the local service, plus (v1) the local
/// endpoint's address.
#[derive(Clone, Copy, Hash)]
struct ResourceKey<'a> {
    service: &'a str,
    ipv4: &'a str,
    ipv6: &'a str,
    port: u16,
}

impl PartialEq for ResourceKey<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.port == o.port
            && same(self.service, o.service)
            && same(self.ipv4, o.ipv4)
            && same(self.ipv6, o.ipv6)
    }
}

impl Eq for ResourceKey<'_> {}

/// The spans of one resource, and its resource tags (the first value of each key).
#[derive(Default)]
struct Group<'a> {
    members: Vec<usize>,
    resource_tags: Groups<Key<'a>, &'a str>,
}

/// A span's tags after the special ones were taken out.
#[derive(Default)]
struct Classified<'a> {
    attrs: Vec<(&'a str, Attr<'a>)>,
    resource_tags: Vec<(&'a str, &'a str)>,
    scope: (&'a str, &'a str),
    kind: u64,
    status: (i32, &'a str),
    trace_state: &'a str,
    links: Vec<&'a str>,
}

fn v2_status_code(value: &str) -> Option<i32> {
    match value {
        "STATUS_CODE_UNSET" | "UNSET" => Some(0),
        "STATUS_CODE_OK" | "OK" => Some(STATUS_OK),
        "STATUS_CODE_ERROR" | "ERROR" => Some(STATUS_ERROR),
        _ => None,
    }
}

/// The zipkinv2 tag rules, into `c` (its buffers reused from span to span).
fn classify_v2<'a>(z: &'a Span<'a>, parse_string_tags: bool, c: &mut Classified<'a>) {
    let (mut status_code, mut status_description, mut error, mut span_kind) =
        (None, None, None, None);
    let mut trace_state = "";
    let mut scope_tags: [Option<&str>; 4] = [None; 4];
    let (attrs, resource_tags, links) = (&mut c.attrs, &mut c.resource_tags, &mut c.links);
    attrs.clear();
    resource_tags.clear();
    links.clear();
    for (k, v) in &z.tags {
        let k = k.as_ref();
        let Value::Str(v) = v else {
            attrs.push((k, v.attr()));
            continue;
        };
        let v = v.as_ref();
        // Every special tag starts with one of these letters.
        let special = matches!(k.as_bytes().first(), Some(b'o' | b'e' | b'w' | b's'))
            && 'special: {
                match k {
                    TAG_STATUS_CODE => status_code = Some(v),
                    TAG_STATUS_DESCRIPTION => status_description = Some(v),
                    TAG_ERROR => error = Some(v),
                    TAG_TRACE_STATE => trace_state = v,
                    TAG_SPAN_KIND => span_kind = Some(v),
                    "otel.scope.name" => scope_tags[0] = Some(v),
                    "otel.scope.version" => scope_tags[1] = Some(v),
                    "otel.library.name" => scope_tags[2] = Some(v),
                    "otel.library.version" => scope_tags[3] = Some(v),
                    _ if k.starts_with("otlp.link.") && k[10..].parse::<u32>().is_ok() => {
                        links.push(v)
                    }
                    _ => break 'special false,
                }
                true
            };
        if special {
            continue;
        }
        if is_resource_tag(k) {
            resource_tags.push((k, v));
        } else if parse_string_tags {
            attrs.push((k, typed(v)));
        } else {
            attrs.push((k, Attr::Str(v)));
        }
    }
    let scope = match scope_tags {
        [Some(n), v, _, _] => (n, v.unwrap_or("")),
        [None, _, Some(n), v] => (n, v.unwrap_or("")),
        _ => ("", ""),
    };
    let mut kind = z.kind;
    if kind != 0 {
        // The tag is read (and dropped) only when the span has no kind of its own.
        if let Some(v) = span_kind {
            attrs.push((TAG_SPAN_KIND, Attr::Str(v)));
        }
    } else if span_kind == Some("internal") {
        kind = KIND_INTERNAL;
    }
    let (mut code, mut message) = (0, "");
    if let Some(c) = status_code {
        code = v2_status_code(c).unwrap_or(0);
        message = status_description.unwrap_or("");
    } else if let Some(d) = status_description {
        attrs.push((TAG_STATUS_DESCRIPTION, Attr::Str(d)));
    }
    if let Some(e) = error {
        code = STATUS_ERROR;
        if message.is_empty() && e != "true" {
            message = e;
        }
    }
    (c.scope, c.kind, c.status, c.trace_state) = (scope, kind, (code, message), trace_state);
}

/// Appends `z`'s `Span` message to `span`.
fn translate<'a>(
    z: &'a Span<'a>,
    rules: Rules,
    span: &mut Vec<u8>,
    c: &mut Classified<'a>,
) -> ResourceKey<'a> {
    match rules {
        Rules::V2 => classify_v2(z, false, c),
        Rules::V2Typed => classify_v2(z, true, c),
        Rules::V1 => *c = v1::classify(z),
    }
    let local = z.local_endpoint.as_ref();
    let remote = z.remote_endpoint.as_ref();
    let start = z.timestamp.saturating_mul(1000);

    span.reserve(64 + z.tags.len() * 40);
    put_bytes_field(span, 1, &z.trace_id);
    put_bytes_field(span, 2, &z.id);
    if !c.trace_state.is_empty() {
        put_bytes_field(span, 3, c.trace_state.as_bytes());
    }
    let parent = z.parent_id.filter(|p| !p.is_zero() && (rules == Rules::V1 || *p != z.id));
    if let Some(p) = parent {
        put_bytes_field(span, 4, &p);
    }
    put_bytes_field(span, 5, z.name.as_deref().unwrap_or("").as_bytes());
    if c.kind != 0 {
        put_varint_field(span, 6, c.kind);
    }
    put_fixed64_field(span, 7, start);
    put_fixed64_field(span, 8, start.saturating_add(z.duration.saturating_mul(1000)));
    for (k, v) in &c.attrs {
        put_kv(span, 9, k, v);
    }
    if rules != Rules::V1 {
        if let Some(ip) = local.and_then(Endpoint::ip) {
            put_kv(span, 9, "net.host.ip", &Attr::Str(ip));
        }
        if let Some(port) = local.map(Endpoint::port).filter(|p| *p > 0) {
            put_kv(span, 9, "net.host.port", &Attr::Int(port as i64));
        }
    }
    if let Some(svc) = remote.map(Endpoint::service).filter(|s| !s.is_empty()) {
        put_kv(span, 9, "peer.service", &Attr::Str(svc));
    }
    if let Some(ip) = remote.and_then(Endpoint::ip) {
        put_kv(span, 9, "net.peer.ip", &Attr::Str(ip));
    }
    if let Some(port) = remote.map(Endpoint::port).filter(|p| *p > 0) {
        put_kv(span, 9, "net.peer.port", &Attr::Int(port as i64));
    }
    for a in z.annotations.iter().flatten() {
        put_message(span, 11, |e| {
            put_fixed64_field(e, 1, a.timestamp.saturating_mul(1000));
            match if rules != Rules::V1 { unpack(&a.value, 1) } else { None } {
                Some((name, attrs, dropped)) => {
                    put_bytes_field(e, 2, name[0].as_bytes());
                    put_json_attrs(e, 3, &attrs);
                    if dropped > 0 {
                        put_varint_field(e, 4, dropped as u64);
                    }
                }
                None => put_bytes_field(e, 2, a.value.as_bytes()),
            }
        });
    }
    for v in &c.links {
        if let Some((ids, attrs, dropped)) = unpack(v, 3) {
            put_message(span, 13, |l| {
                put_bytes_field(l, 1, &Id::hex(ids[0], 16));
                put_bytes_field(l, 2, &Id::hex(ids[1], 8));
                if !ids[2].is_empty() {
                    put_bytes_field(l, 3, ids[2].as_bytes());
                }
                put_json_attrs(l, 4, &attrs);
                if dropped > 0 {
                    put_varint_field(l, 5, dropped as u64);
                }
            });
        }
    }
    let (code, message) = c.status;
    if code != 0 || !message.is_empty() {
        put_message(span, 15, |s| {
            if !message.is_empty() {
                put_bytes_field(s, 2, message.as_bytes());
            }
            if code != 0 {
                put_varint_field(s, 3, code as i64 as u64);
            }
        });
    }
    let service = local.map(Endpoint::service).unwrap_or("");
    let resource = match (rules, local) {
        (Rules::V1, Some(l)) => ResourceKey {
            service,
            ipv4: l.ipv4.as_deref().unwrap_or(""),
            ipv6: l.ipv6.as_deref().unwrap_or(""),
            port: l.port(),
        },
        _ => ResourceKey { service, ipv4: "", ipv6: "", port: 0 },
    };
    resource
}

/// Encodes spans as an `ExportTraceServiceRequest`.
fn to_otlp<'a>(spans: impl IntoIterator<Item = &'a Span<'a>>, rules: Rules) -> Vec<u8> {
    // Each span is grouped as soon as it is translated, while its strings are in cache.
    let mut buf = Vec::new();
    // Each span's scope and where its `Span` message is in `buf`.
    let mut translated: Vec<(usize, Range<usize>)> = Vec::new();
    let mut groups: Groups<ResourceKey<'_>, Group<'_>> = Groups::new();
    let mut scopes: Groups<(Key<'_>, Key<'_>), ()> = Groups::new();
    let mut c = Classified::default();
    for z in spans {
        let start = buf.len();
        let resource = translate(z, rules, &mut buf, &mut c);
        let (scope, _) = scopes.find_or_insert((Key(c.scope.0), Key(c.scope.1)), || ());
        let group = groups.entry(resource, Group::default);
        group.members.push(translated.len());
        // v2: resource tags of the group's first span that carries each key.
        for &(k, v) in &c.resource_tags {
            if k != "service.name" {
                group.resource_tags.find_or_insert(Key(k), || v);
            }
        }
        translated.push((scope, start..buf.len()));
    }
    let mut out = Vec::with_capacity(buf.len() + 8 * translated.len() + 64 * groups.entries.len());
    for (key, group) in groups.entries {
        put_message(&mut out, 1, |rs| {
            put_message(rs, 1, |r| {
                if !key.service.is_empty() {
                    put_kv(r, 1, "service.name", &Attr::Str(key.service));
                }
                // v1: the local endpoint's address, as the collector names it.
                if !key.ipv4.is_empty() {
                    put_kv(r, 1, "ipv4", &Attr::Str(key.ipv4));
                }
                if !key.ipv6.is_empty() {
                    put_kv(r, 1, "ipv6", &Attr::Str(key.ipv6));
                }
                if key.port != 0 {
                    put_kv(r, 1, "port", &Attr::Str(&key.port.to_string()));
                }
                for (Key(k), v) in &group.resource_tags.entries {
                    put_kv(r, 1, k, &Attr::Str(v));
                }
            });
            let mut by_scope: Groups<usize, Vec<usize>> = Groups::new();
            for &i in &group.members {
                by_scope.entry(translated[i].0, Vec::new).push(i);
            }
            for (scope, members) in by_scope.entries {
                let ((Key(name), Key(version)), ()) = scopes.entries[scope];
                put_message(rs, 2, |ss| {
                    if !name.is_empty() {
                        put_message(ss, 1, |sc| {
                            put_bytes_field(sc, 1, name.as_bytes());
                            if !version.is_empty() {
                                put_bytes_field(sc, 2, version.as_bytes());
                            }
                        });
                    }
                    for i in members {
                        let span = &buf[translated[i].1.clone()];
                        ss.reserve(span.len() + varint_len(span.len() as u64) + 1);
                        put_bytes_field(ss, 2, span);
                    }
                });
            }
        });
    }
    out
}

/// `ip` bytes as Go's `net.IP.String()` writes them (the collector's formatting of
/// binary addresses): dotted IPv4 (IPv4-mapped IPv6 included), RFC 5952 IPv6,
/// `?hex` for other lengths; None when empty.
fn ip_string(ip: &[u8]) -> Option<String> {
    use std::fmt::Write;
    let dotted = |b: &[u8]| {
        let mut s = String::with_capacity(15);
        for (i, &octet) in b.iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            if octet >= 100 {
                s.push((b'0' + octet / 100) as char);
            }
            if octet >= 10 {
                s.push((b'0' + octet / 10 % 10) as char);
            }
            s.push((b'0' + octet % 10) as char);
        }
        s
    };
    match ip.len() {
        0 => None,
        4 => Some(dotted(ip)),
        16 if ip[..10] == [0; 10] && ip[10..12] == [0xff, 0xff] => Some(dotted(&ip[12..])),
        16 => {
            let groups: Vec<u16> =
                ip.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
            // The longest run of two or more zero groups (the first on ties) becomes "::".
            let (mut best, mut best_len, mut i) = (8, 0, 0);
            while i < 8 {
                let run = groups[i..].iter().take_while(|g| **g == 0).count();
                if run > best_len {
                    (best, best_len) = (i, run);
                }
                i += run.max(1);
            }
            if best_len < 2 {
                best = 8;
            }
            let mut s = String::with_capacity(40);
            let mut i = 0;
            while i < 8 {
                if i == best {
                    s.push_str("::");
                    i += best_len;
                    continue;
                }
                if i > 0 && i != best + best_len {
                    s.push(':');
                }
                let _ = write!(s, "{:x}", groups[i]);
                i += 1;
            }
            Some(s)
        }
        _ => {
            let mut s = String::with_capacity(1 + ip.len() * 2);
            s.push('?');
            for b in ip {
                let _ = write!(s, "{b:02x}");
            }
            Some(s)
        }
    }
}

/// `[N].rest: message` (a serde_path_to_error rendering) as `span N: rest: message`.
fn span_path(path: &str, message: &str) -> String {
    let Some((index, rest)) = path.strip_prefix('[').and_then(|p| p.split_once(']')) else {
        return match path {
            "." => message.to_string(),
            p => format!("{p}: {message}"),
        };
    };
    match rest.strip_prefix('.') {
        Some(rest) => format!("span {index}: {rest}: {message}"),
        None if rest.is_empty() => format!("span {index}: {message}"),
        None => format!("span {index}: {rest}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The previous, obviously right, hex decoding.
    fn hex_reference(s: &str, bytes: usize) -> Id {
        let pad = if bytes == 16 && s.len() == 16 { 8 } else { 0 };
        if s.len() + pad * 2 != bytes * 2 {
            return Id::BAD;
        }
        let mut id = Id { bytes: [0; 16], len: bytes as u8 };
        for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
            match ((pair[0] as char).to_digit(16), (pair[1] as char).to_digit(16)) {
                (Some(h), Some(l)) => id.bytes[pad + i] = (h * 16 + l) as u8,
                _ => return Id::BAD,
            }
        }
        id
    }

    /// The previous `KeyValue` writer.
    fn put_kv_reference(out: &mut Vec<u8>, field: u32, key: &str, v: &Attr<'_>) {
        put_message(out, field, |kv| {
            put_bytes_field(kv, 1, key.as_bytes());
            put_message(kv, 2, |a| match v {
                Attr::Str(s) => put_bytes_field(a, 1, s.as_bytes()),
                Attr::Bool(b) => put_varint_field(a, 2, *b as u64),
                Attr::Int(i) => put_varint_field(a, 3, *i as u64),
                Attr::Double(d) => put_fixed64_field(a, 4, d.to_bits()),
            });
        });
    }

    #[test]
    fn key_values_are_written_as_before() {
        let long = "x".repeat(300);
        for field in [1, 3, 9, 15, 16, 200] {
            for klen in [0, 1, 60, 61, 62, 63, 64, 120, 123, 124, 125, 126, 127, 128, 300] {
                for vlen in [0, 1, 58, 59, 60, 61, 62, 120, 121, 122, 123, 124, 125, 126, 127, 300]
                {
                    let (key, value) = (&long[..klen], &long[..vlen]);
                    for v in [Attr::Str(value), Attr::Int(-1), Attr::Bool(true), Attr::Double(0.5)]
                    {
                        let (mut got, mut want) = (vec![7], vec![7]);
                        put_kv(&mut got, field, key, &v);
                        put_kv_reference(&mut want, field, key, &v);
                        assert_eq!(got, want, "{field} {klen} {vlen} {v:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn hex_ids_decode_as_before() {
        let digits = ["0", "9", "a", "f", "A", "F", "g", "G", "/", ":", "@", "`", "\u{e9}", " "];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = [0, 2, 8, 15, 16, 17, 24, 31, 32, 33][(seed % 10) as usize];
            let s: String = (0..len)
                .map(|i| {
                    let r = seed.rotate_left(i as u32 * 5);
                    // Mostly valid digits; now and then anything.
                    if r.is_multiple_of(50) {
                        digits[(r >> 8) as usize % digits.len()]
                    } else {
                        digits[(r >> 8) as usize % 6]
                    }
                })
                .collect();
            for bytes in [8, 16] {
                assert_eq!(Id::hex(&s, bytes), hex_reference(&s, bytes), "{s:?} {bytes}");
            }
        }
        for b in 0..=255u8 {
            let s: String = std::iter::repeat_n(b as char, 16).collect();
            assert_eq!(Id::hex(&s, 8), hex_reference(&s, 8), "{b}");
        }
    }

    #[test]
    fn resource_tags_are_the_semantic_convention_prefixes() {
        const PREFIXES: &[&str] = &[
            "service.",
            "telemetry.",
            "host.",
            "os.",
            "process.",
            "container.",
            "k8s.",
            "cloud.",
            "faas.",
            "deployment.",
            "device.",
            "aws.ecs.",
            "aws.eks.",
            "aws.log.",
            "gcp.",
            "heroku.",
            "webengine.",
        ];
        let mut keys = vec![String::new(), ".".into(), "aws.".into(), "aws.ecs".into()];
        for p in PREFIXES {
            for cut in 0..=p.len() {
                keys.push(p[..cut].to_string());
                keys.push(format!("{}x.y", &p[..cut]));
            }
            keys.push(p.to_uppercase());
            keys.push(format!("x{p}"));
            keys.push(p.replace('.', "_"));
        }
        for key in keys {
            let want = PREFIXES.iter().any(|p| key.starts_with(p));
            assert_eq!(is_resource_tag(&key), want, "{key}");
        }
    }

    #[test]
    fn parse_string_tags_types_values_as_go_reads_them() {
        assert_eq!(typed("42"), Attr::Int(42));
        assert_eq!(typed("-7"), Attr::Int(-7));
        assert_eq!(typed("1"), Attr::Int(1), "an integer before a boolean");
        assert_eq!(typed("2.5"), Attr::Double(2.5));
        assert_eq!(typed("1e3"), Attr::Double(1000.0));
        assert!(matches!(typed("NaN"), Attr::Double(d) if d.is_nan()));
        assert_eq!(typed("true"), Attr::Bool(true));
        assert_eq!(typed("F"), Attr::Bool(false));
        assert_eq!(typed("yes"), Attr::Str("yes"));
        assert_eq!(typed("12ab"), Attr::Str("12ab"));
        let body = br#"[{"traceId":"0123456789abcdef0123456789abcdef","id":"0123456789abcdef",
            "tags":{"n":"5","ok":"true","s":"x"}}]"#;
        let plain = zipkin_v2_json(body, false).unwrap();
        let typed_out = zipkin_v2_json(body, true).unwrap();
        assert_ne!(plain, typed_out);
        // "5" is an int value (AnyValue field 3 = varint 5) only when parsing
        assert!(typed_out.windows(2).any(|w| w == [0x18, 5]));
        assert!(!plain.windows(2).any(|w| w == [0x18, 5]));
    }
    use crate::otlp::scan;
    use crate::otlp::view::{attrs_of, AnyValue, ScopeHead, SpanView};

    const SPANS: &str = r#"[
      {"traceId": "5af7183fb1d4cf5f", "id": "6b221d5bc9e6496c", "name": "get /api",
       "kind": "SERVER", "timestamp": 1700000000000000, "duration": 2500,
       "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1", "port": 8080},
       "remoteEndpoint": {"serviceName": "browser", "ipv4": "10.0.0.9"},
       "tags": {"http.method": "GET", "host.name": "node-1", "otel.status_code": "ERROR",
                "error": "boom", "otel.scope.name": "lib", "otel.scope.version": "1.0"},
       "annotations": [{"timestamp": 1700000000001000, "value": "cache.miss"},
                       {"timestamp": 1700000000002000, "value": "retry|{\"n\":2,\"why\":\"x\"}|1"}]},
      {"traceId": "00000000000000005af7183fb1d4cf5f", "id": "7b221d5bc9e6496c",
       "parentId": "6b221d5bc9e6496c", "name": "db", "kind": "CLIENT",
       "timestamp": 1700000000000100, "duration": 100,
       "localEndpoint": {"serviceName": "frontend"}, "tags": {"otel.scope.name": "lib"}},
      {"traceId": "abc", "id": "8b221d5bc9e6496c", "name": "bad id",
       "localEndpoint": {"serviceName": "other"}},
      {"traceId": "5af7183fb1d4cf5f", "id": "9b221d5bc9e6496c", "name": "inner",
       "localEndpoint": {"serviceName": "frontend"}, "tags": {"span.kind": "internal"}}
    ]"#;

    #[test]
    fn translates_as_the_collector_does() {
        let pb = zipkin_v2_json_to_otlp(SPANS.as_bytes()).unwrap();
        let req = scan(Arc::from(pb)).unwrap();
        assert_eq!(req.spans.len(), 3);
        assert_eq!(req.rejected.invalid_trace_id, 1);
        assert_eq!(req.resources.len(), 2, "one resource per local service");
        let buf = req.bytes();
        let root = &req.spans[0];
        let tid = u128::from_str_radix("5af7183fb1d4cf5f", 16).unwrap().to_be_bytes();
        assert_eq!(root.trace_id, tid, "64-bit ids are left-padded");
        let v = SpanView::parse(root.msg.get(buf)).unwrap();
        assert_eq!((v.name, v.kind, v.status_code, v.status_message), ("get /api", 2, 2, "boom"));
        assert_eq!(v.start_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(v.end_unix_nano - v.start_unix_nano, 2_500_000);
        let attrs: Vec<(&str, AnyValue)> =
            attrs_of(v.msg, 9).map(|kv| (kv.key, kv.value)).collect();
        assert!(attrs.contains(&("http.method", AnyValue::Str("GET"))));
        assert!(attrs.contains(&("net.host.port", AnyValue::Int(8080))));
        assert!(attrs.contains(&("peer.service", AnyValue::Str("browser"))));
        assert!(!attrs.iter().any(|(k, _)| k.starts_with("otel.") || *k == "error"));
        assert!(!attrs.iter().any(|(k, _)| *k == "host.name"), "resource tags leave the span");
        let resource: Vec<(&str, AnyValue)> = attrs_of(req.resource_of(root).resource.get(buf), 1)
            .map(|kv| (kv.key, kv.value))
            .collect();
        assert_eq!(
            resource,
            vec![
                ("service.name", AnyValue::Str("frontend")),
                ("host.name", AnyValue::Str("node-1"))
            ]
        );
        let scope = ScopeHead::parse(req.scope_of(root).scope.get(buf)).unwrap();
        assert_eq!((scope.name, scope.version), ("lib", "1.0"));
        let events: Vec<&[u8]> =
            crate::otlp::view::repeated(v.msg, 11).map(|e| e.unwrap()).collect();
        assert_eq!(events.len(), 2);
        let retry = crate::otlp::view::EventView::parse(events[1]).unwrap();
        assert_eq!((retry.name, retry.dropped_attributes_count), ("retry", 1));
        let ev_attrs: Vec<(&str, AnyValue)> =
            attrs_of(events[1], 3).map(|kv| (kv.key, kv.value)).collect();
        assert!(ev_attrs.contains(&("n", AnyValue::Int(2))));
        let child = SpanView::parse(req.spans[1].msg.get(buf)).unwrap();
        assert_eq!(child.parent_span_id, &[0x6b, 0x22, 0x1d, 0x5b, 0xc9, 0xe6, 0x49, 0x6c]);
        assert_eq!(child.kind, 3);
        let inner = SpanView::parse(req.spans[2].msg.get(buf)).unwrap();
        assert_eq!(inner.kind, 1, "span.kind=internal");
    }

    #[test]
    fn wrong_types_are_errors_with_a_path() {
        for (body, want) in [
            (r#"{"not": "an array"}"#, "expected a sequence"),
            (r#"[5]"#, "[0]: invalid type: integer `5`, expected a Zipkin v2 span object"),
            (r#"[{"traceId": 5}]"#, "[0].traceId: invalid type: integer `5`, expected a string"),
            (r#"[{"timestamp": "x"}]"#, "[0].timestamp: invalid type: string"),
            (r#"[{"timestamp": -5}]"#, "[0].timestamp: -5 is not a time in microseconds"),
            (r#"[{"tags": {"a": 1}}]"#, "[0].tags.a: invalid type: integer `1`, expected a string"),
            (r#"[{"localEndpoint": {"port": 70000}}]"#, "[0].localEndpoint.port"),
            (r#"[{"annotations": [3]}]"#, "[0].annotations[0]: invalid type: integer `3`"),
            ("[{", "EOF"),
            ("[] x", "trailing characters"),
        ] {
            let e = zipkin_v2_json_to_otlp(body.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
        assert!(zipkin_v2_json_to_otlp(b"[]").unwrap().is_empty());
    }
}

#[cfg(test)]
mod speed_probe {
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    use super::realistic::realistic_v2_json;
    use super::{to_otlp, v2_json, Rules};

    /// A compact span with 15 string tags, as 1,000 copies.
    fn typical() -> String {
        let one = r#"{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","parentId":"7b221d5bc9e6496c","name":"GET /api/v1/orders/{id}","kind":"SERVER","timestamp":1700000000000000,"duration":2500,"localEndpoint":{"serviceName":"svc-frontend"},"tags":{"http.method":"GET","http.route":"/api/v1/orders/{id}","http.status_code":"200","net.peer.name":"svc-cart","user.id":"user-123","db.system":"redis","retry":"false","payload.bytes":"12345","service.name":"svc-frontend","service.namespace":"shop","k8s.pod.name":"svc-frontend-7d9f1","host.name":"node-1","telemetry.sdk.language":"python","deployment.environment":"prod","otel.scope.name":"bench"}}"#;
        format!("[{}]", vec![one; 1000].join(","))
    }

    /// Per-span times of each of `fs` over 9 runs, interleaved, sorted (`[4]`: the median).
    fn per_span(spans: usize, runs: &mut [Vec<Duration>], fs: &mut [&mut dyn FnMut()]) {
        for _ in 0..9 {
            for (f, times) in fs.iter_mut().zip(runs.iter_mut()) {
                let t = Instant::now();
                for _ in 0..20 {
                    f();
                }
                times.push(t.elapsed() / (20 * spans as u32));
            }
        }
        for times in runs.iter_mut() {
            times.sort();
        }
    }

    /// The fast path against the serde path (the same writer), alternately, and the fast
    /// path's parse and OTLP write apart.
    /// `cargo test --release -p tempo_core speed_probe -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn zipkin_speed() {
        for (name, body) in [("typical", typical()), ("realistic", realistic_v2_json(1, 1000))] {
            let body = body.as_bytes();
            let spans = v2_json::fast::spans(body).unwrap();
            let n = spans.len();
            assert_eq!(v2_json::zipkin_v2_json(body, false), v2_json::via_serde(body, Rules::V2));
            let mut runs = vec![Vec::new(); 4];
            per_span(
                n,
                &mut runs,
                &mut [
                    &mut || drop(black_box(v2_json::zipkin_v2_json(black_box(body), false))),
                    &mut || drop(black_box(v2_json::via_serde(black_box(body), Rules::V2))),
                    &mut || drop(black_box(v2_json::fast::spans(black_box(body)))),
                    &mut || drop(black_box(to_otlp(black_box(&spans), Rules::V2))),
                ],
            );
            println!(
                "{name}: {n} spans, {} B/span: fast path {:?}/span, serde path {:?}/span \
                 (fast parse {:?} + OTLP write {:?})",
                body.len() / n,
                runs[0][4],
                runs[1][4],
                runs[2][4],
                runs[3][4]
            );
        }
    }
}
