//! The decoded Jaeger model shared by the Thrift and protobuf decoders, and its
//! translation to OTLP protobuf (see the module docs for the rules).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;

use super::Strs;
use crate::pb::{
    put_bytes_field, put_fixed32_field, put_fixed64_field, put_key, put_message, put_varint,
    put_varint_field, varint_len, LEN,
};

/// A tag's value, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Val<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    /// `"Jaeger-" + version`, the collector's `opencensus.exporterversion`.
    JaegerVersion(&'a str),
}

impl<'a> Val<'a> {
    /// The value as pdata's `Value.Str()` reads it: `""` unless it is a string.
    fn str(&self) -> &'a str {
        match *self {
            Val::Str(s) => s,
            _ => "",
        }
    }

    /// Equality as the collector's process checksum sees it (`-0.0 == 0.0`, a NaN
    /// equals the same NaN).
    fn same(&self, other: &Val<'_>) -> bool {
        match (*self, *other) {
            (Val::Double(a), Val::Double(b)) => {
                a.to_bits() == b.to_bits() || (a == 0.0 && b == 0.0)
            }
            (Val::Str(a), Val::Str(b)) => a == b,
            (Val::Bool(a), Val::Bool(b)) => a == b,
            (Val::Int(a), Val::Int(b)) => a == b,
            (Val::Bytes(a), Val::Bytes(b)) => a == b,
            _ => false,
        }
    }
}

/// A Jaeger tag (a log field or a process tag too).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Tag<'a> {
    pub key: &'a str,
    pub val: Val<'a>,
}

/// Jaeger's `SpanRefType.CHILD_OF`; `FOLLOWS_FROM` is 1.
pub(super) const CHILD_OF: i32 = 0;
pub(super) const FOLLOWS_FROM: i32 = 1;

/// A span reference.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Ref {
    pub trace_hi: u64,
    pub trace_lo: u64,
    pub span_id: u64,
    pub ref_type: i32,
}

/// A span log: its time and its fields, a range of [`SpanLists::log_tags`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Log {
    pub time_unix_nano: u64,
    pub fields: (usize, usize),
}

/// A span's scalar fields.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SpanHead<'a> {
    pub trace_hi: u64,
    pub trace_lo: u64,
    pub span_id: u64,
    /// Thrift's `parentSpanId` (0 when absent; protobuf spans have none).
    pub parent_span_id: u64,
    pub name: &'a str,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub flags: u32,
}

/// A span's lists; the decoders fill them, reused from span to span.
#[derive(Debug, Default)]
pub(super) struct SpanLists<'a> {
    pub tags: Vec<Tag<'a>>,
    pub refs: Vec<Ref>,
    pub logs: Vec<Log>,
    pub log_tags: Vec<Tag<'a>>,
}

impl SpanLists<'_> {
    pub fn clear(&mut self) {
        self.tags.clear();
        self.refs.clear();
        self.logs.clear();
        self.log_tags.clear();
    }
}

/// A Jaeger process, the source of one resource.
#[derive(Debug, Default)]
pub(super) struct Process<'a> {
    pub service: &'a str,
    pub tags: Vec<Tag<'a>>,
}

impl Process<'_> {
    fn same(&self, other: &Process<'_>) -> bool {
        self.service == other.service
            && self.tags.len() == other.tags.len()
            && self.tags.iter().zip(&other.tags).all(|(a, b)| a.key == b.key && a.val.same(&b.val))
    }

    /// A hash of what [`Process::same`] compares (keyed per translator, so crafted
    /// processes cannot collide on purpose).
    fn hash(&self, keys: &RandomState) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = keys.build_hasher();
        self.service.hash(&mut h);
        for t in &self.tags {
            t.key.hash(&mut h);
            match t.val {
                Val::Str(s) | Val::JaegerVersion(s) => (0u8, s).hash(&mut h),
                Val::Bool(b) => (1u8, b).hash(&mut h),
                Val::Int(i) => (2u8, i).hash(&mut h),
                Val::Double(d) => (3u8, if d == 0.0 { 0 } else { d.to_bits() }).hash(&mut h),
                Val::Bytes(b) => (4u8, b).hash(&mut h),
            }
        }
        h.finish()
    }
}

/// The spans of one instrumentation scope, encoded as `ScopeSpans.spans` fields.
#[derive(Debug)]
struct Scope<'a> {
    name: &'a str,
    version: &'a str,
    spans: Vec<u8>,
}

impl Scope<'_> {
    /// Whether this is the scope (name, version); cheap for the usual empty scope.
    #[inline]
    fn is(&self, name: &str, version: &str) -> bool {
        same(self.name, name) && same(self.version, version)
    }
}

/// One `ResourceSpans`: its process (None: the protobuf batch had none) and scopes.
#[derive(Debug)]
struct Group<'a> {
    process: Option<Process<'a>>,
    scopes: Vec<Scope<'a>>,
    /// Scope lookup once a group has more than a few scopes.
    scope_index: HashMap<(&'a str, &'a str), usize>,
    last_scope: usize,
    /// Whether any span (blank ones too) belongs here.
    any_span: bool,
}

/// A tag key the collector looks up: its [`fingerprint`] and a bit of its own.
#[derive(Debug, Clone, Copy)]
struct Key {
    name: &'static str,
    print: u64,
    bit: u32,
}

const fn key(name: &'static str, bit: u32) -> Key {
    Key { name, print: const_fingerprint(name), bit }
}

const SPAN_KIND: Key = key("span.kind", 1);
const ERROR: Key = key("error", 2);
const STATUS_CODE: Key = key("otel.status_code", 4);
const STATUS_DESCRIPTION: Key = key("otel.status_description", 8);
/// Both HTTP status code keys share a bit: only the second is ever stored (below).
const HTTP_STATUS_CODE_V0: Key = key("http.status_code", 16);
const HTTP_STATUS_CODE: Key = key("http.response.status_code", 16);
const HTTP_STATUS_MESSAGE: Key = key("http.status_message", 32);
const TRACE_STATE: Key = key("w3c.tracestate", 64);
const EVENT: Key = key("event", 128);
const HOSTNAME: Key = key("hostname", 256);
const JAEGER_VERSION: Key = key("jaeger.version", 512);
const HOST_NAME: Key = key("host.name", 1024);
const EXPORTER_VERSION: Key = key("opencensus.exporterversion", 2048);
/// Never looked up by bit: a `service.name` tag replaces it as any key would.
const SERVICE_NAME: Key = key("service.name", 0);

/// Where the collector stores `http.status_code` and `http.response.status_code`
/// tags: its `EmitV1HttpConventions` and `DontEmitV0HttpConventions` gates are beta
/// (on) since v0.158, so both land under the current semantic-convention key.
const HTTP_STATUS_CODE_STORED: Key = HTTP_STATUS_CODE;

/// Length and first and last 8 bytes of `key` mixed: equal keys have equal prints.
#[inline]
fn fingerprint(key: &str) -> u64 {
    let (head, tail) = words(key.as_bytes());
    head ^ tail.rotate_left(29) ^ (key.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The first and last (up to) 8 bytes of `b`, zero-padded, as little-endian words;
/// built from fixed-size loads (a `copy_from_slice` of a variable length would be a
/// `memcpy` call).
#[inline]
pub(super) fn words(b: &[u8]) -> (u64, u64) {
    let n = b.len();
    let u32_at =
        |i: usize| b.get(i..i + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    let u64_at = |i: usize| {
        b.get(i..i + 8)
            .map_or(0, |s| u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
    };
    let short = if n >= 8 {
        return (u64_at(0), u64_at(n - 8));
    } else if n >= 4 {
        // Two overlapping loads; the shared bytes are the same on both sides.
        u32_at(0) as u64 | (u32_at(n - 4) as u64) << (8 * (n - 4))
    } else if n > 0 {
        b[0] as u64 | (b[n / 2] as u64) << (8 * (n / 2)) | (b[n - 1] as u64) << (8 * (n - 1))
    } else {
        0
    };
    (short, short)
}

/// [`fingerprint`] at compile time.
const fn const_fingerprint(key: &str) -> u64 {
    let b = key.as_bytes();
    let n = if b.len() < 8 { b.len() } else { 8 };
    let (mut head, mut tail) = (0u64, 0u64);
    let mut i = 0;
    while i < n {
        head |= (b[i] as u64) << (8 * i);
        tail |= (b[b.len() - n + i] as u64) << (8 * i);
        i += 1;
    }
    head ^ tail.rotate_left(29) ^ (b.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// String equality without a `memcmp` call for keys of up to 16 bytes (their first
/// and last 8 bytes cover them).
#[inline]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 16 {
        return a == b;
    }
    words(a) == words(b)
}

/// A bit per print (one of 64, as [`AttrMap`] marks the keys it holds).
#[inline]
const fn print_bit(print: u64) -> u64 {
    1 << (print.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58)
}

/// Every key [`special`] finds.
const SPECIALS: [Key; 13] = [
    SPAN_KIND,
    ERROR,
    STATUS_CODE,
    STATUS_DESCRIPTION,
    HTTP_STATUS_CODE_V0,
    HTTP_STATUS_CODE,
    HTTP_STATUS_MESSAGE,
    TRACE_STATE,
    EVENT,
    HOSTNAME,
    JAEGER_VERSION,
    HOST_NAME,
    EXPORTER_VERSION,
];

/// The [`print_bit`]s of the special keys: most other keys miss them all.
const SPECIAL_BITS: u64 = {
    let all = SPECIALS;
    let (mut bits, mut i) = (0, 0);
    while i < all.len() {
        bits |= print_bit(all[i].print);
        i += 1;
    }
    bits
};

/// The special key that `name` (with print `print`) is, if any.
#[inline]
fn special(name: &str, print: u64) -> Option<Key> {
    if SPECIAL_BITS & print_bit(print) == 0 {
        return None;
    }
    let candidates: &[Key] = match name.len() {
        5 => &[ERROR, EVENT],
        8 => &[HOSTNAME],
        9 => &[SPAN_KIND, HOST_NAME],
        14 => &[TRACE_STATE, JAEGER_VERSION],
        16 => &[STATUS_CODE, HTTP_STATUS_CODE_V0],
        19 => &[HTTP_STATUS_MESSAGE],
        23 => &[STATUS_DESCRIPTION],
        25 => &[HTTP_STATUS_CODE],
        26 => &[EXPORTER_VERSION],
        _ => return None,
    };
    candidates.iter().find(|k| k.print == print && same(k.name, name)).copied()
}

/// Up to this many tags, duplicate keys are found by a linear scan.
const SMALL_MAP: usize = 32;

/// pdata's attribute `Map` as the collector fills it: `Put` replaces the value of an
/// existing key in place, `Remove` moves the last entry into the hole.
#[derive(Debug, Default)]
struct AttrMap<'a> {
    entries: Vec<Tag<'a>>,
    /// [`fingerprint`]s of the entries' keys.
    prints: Vec<u64>,
    index: HashMap<&'a str, usize>,
    /// [`Key::bit`]s of the special keys present.
    specials: u32,
    /// A bit per key present (and maybe per key removed): [`print_bit`].
    seen: u64,
}

impl<'a> AttrMap<'a> {
    fn clear(&mut self) {
        self.entries.clear();
        self.prints.clear();
        self.specials = 0;
        self.seen = 0;
    }

    /// Puts `tags` (but those at `skip`) in order, as `Map.Put*` does.
    fn put_all(&mut self, tags: &[Tag<'a>], skip: [usize; 2]) {
        let large = tags.len() + self.entries.len() > SMALL_MAP;
        if large {
            self.index.clear();
            for (i, e) in self.entries.iter().enumerate() {
                self.index.insert(e.key, i);
            }
        }
        for (i, t) in tags.iter().enumerate() {
            if i == skip[0] || i == skip[1] {
                continue;
            }
            let (mut key, mut print) = (t.key, fingerprint(t.key));
            let sp = special(key, print);
            let mut bit = sp.map_or(0, |k| k.bit);
            if bit == HTTP_STATUS_CODE.bit {
                (key, print, bit) = (
                    HTTP_STATUS_CODE_STORED.name,
                    HTTP_STATUS_CODE_STORED.print,
                    HTTP_STATUS_CODE_STORED.bit,
                );
            }
            let existing = if large {
                match self.index.get(key) {
                    Some(&j) => Some(j),
                    None => {
                        self.index.insert(key, self.entries.len());
                        None
                    }
                }
            } else if self.seen & print_bit(print) == 0 {
                None
            } else {
                self.position(key, print)
            };
            match existing {
                Some(j) => self.entries[j].val = t.val,
                None => {
                    self.specials |= bit;
                    self.seen |= print_bit(print);
                    self.entries.push(Tag { key, val: t.val });
                    self.prints.push(print);
                }
            }
        }
        if large {
            self.index.clear();
        }
    }

    #[inline]
    fn position(&self, key: &str, print: u64) -> Option<usize> {
        let entries = &self.entries;
        self.prints.iter().zip(entries).position(|(&p, e)| p == print && same(e.key, key))
    }

    /// The value under special key `k`.
    fn get(&self, k: Key) -> Option<Val<'a>> {
        if self.specials & k.bit == 0 {
            return None;
        }
        self.position(k.name, k.print).map(|i| self.entries[i].val)
    }

    /// `Map.Remove`: the last entry takes the removed one's place.
    fn remove(&mut self, k: Key) {
        if self.specials & k.bit == 0 {
            return;
        }
        if let Some(i) = self.position(k.name, k.print) {
            self.entries.swap_remove(i);
            self.prints.swap_remove(i);
            self.specials &= !k.bit;
        }
    }

    /// Appends a key known to be absent.
    fn put_new(&mut self, k: Key, val: Val<'a>) {
        self.specials |= k.bit;
        self.seen |= print_bit(k.print);
        self.prints.push(k.print);
        self.entries.push(Tag { key: k.name, val });
    }

    fn write(&self, out: &mut Vec<u8>, field: u32) {
        for t in &self.entries {
            put_kv(out, field, t);
        }
    }
}

/// The encoded length of a length-delimited field of `len` bytes.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

const JAEGER_PREFIX: &str = "Jaeger-";

/// Writes a `KeyValue` as field `field`, its lengths computed up front.
#[inline(always)]
fn put_kv(out: &mut Vec<u8>, field: u32, t: &Tag<'_>) {
    // The usual cases: a short string, int or bool, every length a one-byte varint.
    let (key, klen) = (t.key.as_bytes(), t.key.len());
    if field < 16 && klen < 128 {
        let tag = (field << 3) as u8 | LEN;
        match t.val {
            Val::Str(s) if 6 + klen + s.len() < 128 => {
                let v = s.as_bytes();
                out.reserve(8 + klen + v.len());
                let any_len = 2 + v.len();
                out.extend_from_slice(&[tag, (4 + klen + any_len) as u8, 0x0a, klen as u8]);
                out.extend_from_slice(key);
                out.extend_from_slice(&[0x12, any_len as u8, 0x0a, v.len() as u8]);
                out.extend_from_slice(v);
                return;
            }
            Val::Int(i) if klen < 100 => {
                let any_len = 1 + varint_len(i as u64);
                out.reserve(16 + klen + any_len);
                out.extend_from_slice(&[tag, (4 + klen + any_len) as u8, 0x0a, klen as u8]);
                out.extend_from_slice(key);
                out.extend_from_slice(&[0x12, any_len as u8, 0x18]);
                put_varint(out, i as u64);
                return;
            }
            Val::Bool(b) if klen < 120 => {
                out.reserve(10 + klen);
                out.extend_from_slice(&[tag, (6 + klen) as u8, 0x0a, klen as u8]);
                out.extend_from_slice(key);
                out.extend_from_slice(&[0x12, 2, 0x10, b as u8]);
                return;
            }
            _ => {}
        }
    }
    let any_len = match t.val {
        Val::Str(s) => field_len(s.len()),
        Val::Bool(_) => 2,
        Val::Int(i) => 1 + varint_len(i as u64),
        Val::Double(_) => 9,
        Val::Bytes(b) => field_len(b.len()),
        Val::JaegerVersion(v) => field_len(JAEGER_PREFIX.len() + v.len()),
    };
    let kv_len = field_len(t.key.len()) + field_len(any_len);
    out.reserve(kv_len + 6);
    put_key(out, field, LEN);
    put_varint(out, kv_len as u64);
    put_key(out, 1, LEN);
    put_varint(out, t.key.len() as u64);
    out.extend_from_slice(t.key.as_bytes());
    put_key(out, 2, LEN);
    put_varint(out, any_len as u64);
    match t.val {
        Val::Str(s) => {
            put_key(out, 1, LEN);
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Val::Bool(b) => put_varint_field(out, 2, b as u64),
        Val::Int(i) => put_varint_field(out, 3, i as u64),
        Val::Double(d) => put_fixed64_field(out, 4, d.to_bits()),
        Val::Bytes(b) => put_bytes_field(out, 7, b),
        Val::JaegerVersion(v) => {
            put_key(out, 1, LEN);
            put_varint(out, (JAEGER_PREFIX.len() + v.len()) as u64);
            out.extend_from_slice(JAEGER_PREFIX.as_bytes());
            out.extend_from_slice(v.as_bytes());
        }
    }
}

fn trace_id(hi: u64, lo: u64) -> [u8; 16] {
    (((hi as u128) << 64) | lo as u128).to_be_bytes()
}

/// OTLP `SpanKind` of a `span.kind` tag value.
fn span_kind(v: &str) -> u64 {
    match v {
        "internal" => 1,
        "server" => 2,
        "client" => 3,
        "producer" => 4,
        "consumer" => 5,
        _ => 0,
    }
}

/// The collector's status from an `http.status_code` (int, or a base-10 string).
fn http_status(v: Val<'_>, kind: u64) -> Option<u64> {
    let code = match v {
        Val::Int(i) => i,
        Val::Str(s) => s.parse::<i64>().ok()?,
        _ => return None,
    };
    Some(match (code, kind) {
        (400..=499, 3) => 2,
        (400..=499, 2) => 0,
        (100..=398, _) => 0,
        _ => 2,
    })
}

/// Collects translated spans by resource and scope, then writes the request.
#[derive(Debug, Default)]
pub(super) struct Translator<'a> {
    groups: Vec<Group<'a>>,
    /// Groups by [`Process::hash`] (protobuf only).
    process_index: HashMap<u64, Vec<usize>>,
    hash_keys: RandomState,
    attrs: AttrMap<'a>,
    event_attrs: AttrMap<'a>,
    /// Filled by the decoders for each span.
    pub lists: SpanLists<'a>,
    /// The protobuf decoder's string cache.
    pub strs: Strs<'a>,
    /// The protobuf path's rules: scope and `w3c.tracestate` tags are consumed, an
    /// `OTLPResourceNoServiceName` process has no attributes.
    pub proto: bool,
    /// Bytes to reserve for the first scope's spans (about the input's size).
    size_hint: usize,
}

impl<'a> Translator<'a> {
    /// A translator for an input of `input_len` bytes.
    pub fn new(input_len: usize) -> Self {
        // The OTLP output is about as large as Jaeger's encoding.
        Translator { size_hint: input_len + input_len / 8, ..Default::default() }
    }

    /// Starts a `ResourceSpans` for `process`, returning its index.
    pub fn add_group(&mut self, process: Option<Process<'a>>) -> usize {
        self.groups.push(Group {
            process,
            scopes: Vec::new(),
            scope_index: HashMap::new(),
            last_scope: 0,
            any_span: false,
        });
        self.groups.len() - 1
    }

    /// Drops all groups (a repeated Thrift `batch` field replaces the earlier one).
    pub fn reset(&mut self) {
        self.groups.clear();
        self.process_index.clear();
    }

    /// Drops the spans of group `g` (a repeated Thrift `spans` field replaces the earlier one).
    pub fn clear_spans(&mut self, g: usize) {
        if let Some(group) = self.groups.get_mut(g) {
            group.scopes.clear();
            group.scope_index.clear();
            group.last_scope = 0;
        }
    }

    /// Replaces the process of group `g` (a repeated Thrift `process` field).
    pub fn set_process(&mut self, g: usize, process: Process<'a>) {
        if let Some(group) = self.groups.get_mut(g) {
            group.process = Some(process);
        }
    }

    /// The group of spans from `process` (a nil process groups with an empty one),
    /// as the collector's `regroup` keys batches by a checksum of the process.
    pub fn group_for(&mut self, process: Option<Process<'a>>) -> usize {
        let empty = Process::default();
        let p = process.as_ref().unwrap_or(&empty);
        let h = p.hash(&self.hash_keys);
        if let Some(candidates) = self.process_index.get(&h) {
            for &g in candidates {
                let q = self.groups[g].process.as_ref().unwrap_or(&empty);
                if q.same(p) {
                    return g;
                }
            }
        }
        let g = self.add_group(process);
        self.process_index.entry(h).or_default().push(g);
        g
    }

    /// Counts a blank span (skipped, but it keeps a protobuf group without a process).
    pub fn blank_span(&mut self, g: usize) {
        if let Some(group) = self.groups.get_mut(g) {
            group.any_span = true;
        }
    }

    /// Translates one span (head plus [`Self::lists`]) into group `g`.
    pub fn span(&mut self, g: usize, head: &SpanHead<'a>) {
        let Translator { groups, attrs, event_attrs, lists, proto, size_hint, .. } = self;
        let Some(group) = groups.get_mut(g) else { return };
        group.any_span = true;

        // Scope (protobuf only): the first otel.scope.name tag, then the first
        // otel.scope.version tag, both consumed; their value as a string, else "".
        let mut skip = [usize::MAX; 2];
        let (mut name, mut version) = ("", "");
        if *proto {
            let find = |key: &str| lists.tags.iter().position(|t| t.key == key);
            if let Some(i) = find("otel.scope.name") {
                name = lists.tags[i].val.str();
                skip[0] = i;
                if let Some(j) = find("otel.scope.version") {
                    version = lists.tags[j].val.str();
                    skip[1] = j;
                }
            }
        }

        attrs.clear();
        attrs.put_all(&lists.tags, skip);
        let mut kind = 0;
        if let Some(v) = attrs.get(SPAN_KIND) {
            kind = span_kind(v.str());
            attrs.remove(SPAN_KIND);
        }
        let status = status(attrs, kind);
        let mut trace_state = "";
        if let Some(v) = attrs.get(TRACE_STATE).filter(|_| *proto) {
            trace_state = v.str();
            attrs.remove(TRACE_STATE);
        }
        let parent = match head.parent_span_id {
            0 => parent_from_refs(head, &lists.refs),
            p => p,
        };

        // The scope's buffer: the last one used, else a lookup.
        let si = match group.scopes.get(group.last_scope) {
            Some(s) if s.is(name, version) => group.last_scope,
            _ => {
                let found = if group.scopes.len() <= 8 {
                    group.scopes.iter().position(|s| s.is(name, version))
                } else {
                    group.scope_index.get(&(name, version)).copied()
                };
                match found {
                    Some(i) => i,
                    None => {
                        group.scopes.push(Scope { name, version, spans: Vec::new() });
                        let i = group.scopes.len() - 1;
                        if group.scopes.len() == 9 {
                            for (j, s) in group.scopes.iter().enumerate() {
                                group.scope_index.insert((s.name, s.version), j);
                            }
                        } else if group.scopes.len() > 9 {
                            group.scope_index.insert((name, version), i);
                        }
                        i
                    }
                }
            }
        };
        group.last_scope = si;
        let Some(scope) = group.scopes.get_mut(si) else { return };

        // The span goes straight into the scope's buffer behind a two-byte length
        // (spans of 128 bytes to 16 KiB; others move to fit theirs).
        let s = &mut scope.spans;
        if s.capacity() == 0 {
            s.reserve(std::mem::take(size_hint));
        }
        let mut ids = [0u8; 31];
        ids[0] = 0x12;
        ids[3] = 0x0a;
        ids[4] = 16;
        ids[5..21].copy_from_slice(&trace_id(head.trace_hi, head.trace_lo));
        ids[21] = 0x12;
        ids[22] = 8;
        ids[23..31].copy_from_slice(&head.span_id.to_be_bytes());
        s.extend_from_slice(&ids);
        let start = s.len() - 28;
        if !trace_state.is_empty() {
            put_bytes_field(s, 3, trace_state.as_bytes());
        }
        if parent != 0 {
            put_bytes_field(s, 4, &parent.to_be_bytes());
        }
        if !head.name.is_empty() {
            put_bytes_field(s, 5, head.name.as_bytes());
        }
        if kind != 0 {
            put_varint_field(s, 6, kind);
        }
        put_fixed64_field(s, 7, head.start_unix_nano);
        put_fixed64_field(s, 8, head.end_unix_nano);
        attrs.write(s, 9);
        for log in &lists.logs {
            let fields = lists.log_tags.get(log.fields.0..log.fields.1).unwrap_or_default();
            event_attrs.clear();
            event_attrs.put_all(fields, [usize::MAX; 2]);
            let mut name = "";
            if let Some(v) = event_attrs.get(EVENT) {
                name = v.str();
                event_attrs.remove(EVENT);
            }
            put_message(s, 11, |e| {
                put_fixed64_field(e, 1, log.time_unix_nano);
                if !name.is_empty() {
                    put_bytes_field(e, 2, name.as_bytes());
                }
                event_attrs.write(e, 3);
            });
        }
        for r in &lists.refs {
            if r.span_id == parent && r.ref_type == CHILD_OF {
                continue;
            }
            put_message(s, 13, |l| {
                put_bytes_field(l, 1, &trace_id(r.trace_hi, r.trace_lo));
                put_bytes_field(l, 2, &r.span_id.to_be_bytes());
                let ref_type = if r.ref_type == CHILD_OF { "child_of" } else { "follows_from" };
                let t = Tag { key: "opentracing.ref_type", val: Val::Str(ref_type) };
                put_kv(l, 4, &t);
            });
        }
        if let Some((code, message)) = status {
            if code != 0 || !message.is_empty() {
                put_message(s, 15, |st| {
                    if !message.is_empty() {
                        put_bytes_field(st, 2, message.as_bytes());
                    }
                    if code != 0 {
                        put_varint_field(st, 3, code);
                    }
                });
            }
        }
        if head.flags & 1 != 0 {
            put_fixed32_field(s, 16, 1);
        }
        let len = s.len() - start;
        if (128..1 << 14).contains(&len) {
            s[start - 2] = len as u8 | 0x80;
            s[start - 1] = (len >> 7) as u8;
        } else {
            let mut prefix = Vec::with_capacity(5);
            put_varint(&mut prefix, len as u64);
            s.splice(start - 2..start, prefix);
        }
    }

    /// The `ExportTraceServiceRequest`: a `ResourceSpans` per group (the protobuf
    /// path skips a group with neither process nor spans, blank ones included), a
    /// `ScopeSpans` per scope.
    pub fn finish(mut self) -> Vec<u8> {
        let mut resources: Vec<Vec<u8>> = Vec::with_capacity(self.groups.len());
        for group in &self.groups {
            let mut r = Vec::new();
            if let Some(p) = &group.process {
                resource_attrs(&mut self.attrs, p, self.proto);
                self.attrs.write(&mut r, 1);
            }
            resources.push(r);
        }
        let mut size = 0;
        let mut lens = Vec::with_capacity(self.groups.len());
        for (group, res) in self.groups.iter().zip(&resources) {
            let mut rs_len = 1 + varint_len(res.len() as u64) + res.len();
            for sc in &group.scopes {
                let ss_len = scope_spans_len(sc);
                rs_len += 1 + varint_len(ss_len as u64) + ss_len;
            }
            lens.push(rs_len);
            size += 1 + varint_len(rs_len as u64) + rs_len;
        }
        let mut out = Vec::with_capacity(size);
        for ((group, res), rs_len) in self.groups.iter().zip(&resources).zip(lens) {
            if self.proto && group.process.is_none() && !group.any_span {
                continue;
            }
            put_key(&mut out, 1, LEN);
            put_varint(&mut out, rs_len as u64);
            put_bytes_field(&mut out, 1, res);
            for sc in &group.scopes {
                put_key(&mut out, 2, LEN);
                put_varint(&mut out, scope_spans_len(sc) as u64);
                if !sc.name.is_empty() || !sc.version.is_empty() {
                    put_message(&mut out, 1, |m| put_scope(m, sc));
                }
                out.extend_from_slice(&sc.spans);
            }
        }
        out
    }
}

fn put_scope(m: &mut Vec<u8>, sc: &Scope<'_>) {
    if !sc.name.is_empty() {
        put_bytes_field(m, 1, sc.name.as_bytes());
    }
    if !sc.version.is_empty() {
        put_bytes_field(m, 2, sc.version.as_bytes());
    }
}

/// The encoded length of a `ScopeSpans` message.
fn scope_spans_len(sc: &Scope<'_>) -> usize {
    let mut len = sc.spans.len();
    if !sc.name.is_empty() || !sc.version.is_empty() {
        let mut scope_len = 0;
        for s in [sc.name, sc.version] {
            if !s.is_empty() {
                scope_len += 1 + varint_len(s.len() as u64) + s.len();
            }
        }
        len += 1 + varint_len(scope_len as u64) + scope_len;
    }
    len
}

/// A span's status (code, message) from its attributes, removing the tags the
/// collector consumes; None leaves the status unset.
fn status<'a>(attrs: &mut AttrMap<'a>, kind: u64) -> Option<(u64, &'a str)> {
    let (mut code, mut message, mut exists) = (0, "", false);
    if let Some(Val::Bool(true)) = attrs.get(ERROR) {
        code = 2;
        attrs.remove(ERROR);
        exists = true;
        if let Some(d) = attrs.get(STATUS_DESCRIPTION) {
            message = d.str();
            attrs.remove(STATUS_DESCRIPTION);
        } else if let Some(m) = attrs.get(HTTP_STATUS_MESSAGE) {
            message = m.str();
        }
    }
    if let Some(c) = attrs.get(STATUS_CODE) {
        if !exists {
            exists = true;
            let c = c.str();
            code = if c.eq_ignore_ascii_case("OK") {
                1
            } else if c.eq_ignore_ascii_case("ERROR") {
                2
            } else {
                0
            };
            if let Some(d) = attrs.get(STATUS_DESCRIPTION) {
                message = d.str();
                attrs.remove(STATUS_DESCRIPTION);
            }
        }
        attrs.remove(STATUS_CODE);
    } else if !exists {
        let http = attrs.get(HTTP_STATUS_CODE_V0);
        if let Some(h) = http.or_else(|| attrs.get(HTTP_STATUS_CODE)) {
            if let Some(c) = http_status(h, kind) {
                if c != 0 {
                    exists = true;
                    code = c;
                }
                if let Some(m) = attrs.get(HTTP_STATUS_MESSAGE) {
                    message = m.str();
                }
            }
        }
    }
    exists.then_some((code, message))
}

/// Jaeger's `ParentSpanID()`: the first CHILD_OF reference within the span's trace,
/// else the first FOLLOWS_FROM one.
fn parent_from_refs(head: &SpanHead<'_>, refs: &[Ref]) -> u64 {
    let mut follows = None;
    for r in refs {
        if r.trace_hi != head.trace_hi || r.trace_lo != head.trace_lo {
            continue;
        }
        if r.ref_type == CHILD_OF {
            return r.span_id;
        }
        if follows.is_none() && r.ref_type == FOLLOWS_FROM {
            follows = Some(r.span_id);
        }
    }
    follows.unwrap_or(0)
}

/// A process's resource attributes as the collector builds them.
fn resource_attrs<'a>(attrs: &mut AttrMap<'a>, p: &Process<'a>, proto: bool) {
    attrs.clear();
    if proto && p.service == "OTLPResourceNoServiceName" {
        return;
    }
    if !p.service.is_empty() {
        attrs.put_new(SERVICE_NAME, Val::Str(p.service));
    }
    attrs.put_all(&p.tags, [usize::MAX; 2]);
    if let Some(h) = attrs.get(HOSTNAME) {
        if attrs.get(HOST_NAME).is_none() {
            attrs.put_new(HOST_NAME, h);
            attrs.remove(HOSTNAME);
        }
    }
    if let Some(v) = attrs.get(JAEGER_VERSION) {
        if attrs.get(EXPORTER_VERSION).is_none() {
            attrs.put_new(EXPORTER_VERSION, Val::JaegerVersion(v.str()));
            attrs.remove(JAEGER_VERSION);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_keys_are_found_and_fingerprints_agree() {
        for k in SPECIALS {
            assert_eq!(k.print, fingerprint(k.name), "{}", k.name);
            assert_eq!(special(k.name, k.print).map(|s| s.name), Some(k.name));
        }
        let names = ["", "e", "ab", "abc", "abcd", "errorx", "abcdefg", "span.kin", "abcdefghi"];
        let more =
            ["abcdefghijklmnop", "abcdefghijklmnopq", "a-rather-long-key-over-16-bytes", "ünï"];
        for name in names.into_iter().chain(more) {
            assert_eq!(const_fingerprint(name), fingerprint(name), "{name}");
            assert!(special(name, fingerprint(name)).is_none());
        }
        assert!(same("abcdefghijk", "abcdefghijk") && !same("abcdefghijk", "abcdefghijK"));
        assert!(!same("abc", "abd") && same("", ""));
        for (a, b) in
            [("abcde", "abcdf"), ("xbcde", "abcde"), ("ab", "ac"), ("abcdefgh1", "abcdefgh2")]
        {
            assert!(!same(a, b) && same(a, a), "{a} {b}");
        }
    }
}

#[cfg(test)]
mod put_kv_tests {
    use super::*;

    /// The `KeyValue` writer before its one-byte-length fast paths.
    fn put_kv_reference(out: &mut Vec<u8>, field: u32, t: &Tag<'_>) {
        put_message(out, field, |kv| {
            put_bytes_field(kv, 1, t.key.as_bytes());
            put_message(kv, 2, |a| match t.val {
                Val::Str(s) => put_bytes_field(a, 1, s.as_bytes()),
                Val::Bool(b) => put_varint_field(a, 2, b as u64),
                Val::Int(i) => put_varint_field(a, 3, i as u64),
                Val::Double(d) => put_fixed64_field(a, 4, d.to_bits()),
                Val::Bytes(b) => put_bytes_field(a, 7, b),
                Val::JaegerVersion(v) => {
                    put_bytes_field(a, 1, format!("{JAEGER_PREFIX}{v}").as_bytes())
                }
            });
        });
    }

    #[test]
    fn key_values_are_written_as_before() {
        let long: String = (0..300).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        for field in [1, 3, 9, 15, 16, 200] {
            for klen in
                [0, 1, 60, 61, 98, 99, 100, 101, 119, 120, 121, 122, 123, 124, 125, 127, 128]
            {
                for vlen in [0, 1, 58, 59, 60, 61, 62, 120, 121, 122, 123, 124, 125, 126, 127, 300]
                {
                    let (key, value) = (&long[..klen], &long[..vlen]);
                    let ints = [0, 1, 127, 128, -1, i64::MAX, i64::MIN];
                    let vals = [Val::Str(value), Val::Bool(true), Val::Bool(false)]
                        .into_iter()
                        .chain(ints.map(Val::Int))
                        .chain([Val::Double(0.5), Val::Bytes(value.as_bytes())])
                        .chain([Val::JaegerVersion(value)]);
                    for val in vals {
                        let t = Tag { key, val };
                        let (mut got, mut want) = (vec![7], vec![7]);
                        put_kv(&mut got, field, &t);
                        put_kv_reference(&mut want, field, &t);
                        assert_eq!(got, want, "{field} {klen} {vlen} {val:?}");
                    }
                }
            }
        }
    }
}
