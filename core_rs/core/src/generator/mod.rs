//! The metrics generator's per-span work (Tempo 2.10 semantics): span-metrics key
//! extraction ([`spanmetrics`]) and the service-graph edge store ([`servicegraph`]).
//!
//! Both read the zero-copy [`Request`](crate::model::Request) of a push: one pass over
//! its spans, resource-level values computed once per resource, label values borrowed
//! from the request buffer while a span's key is hashed. A batch hands back the
//! distinct label-value tuples it saw plus per-span (or per-edge) columns indexing
//! into them, so the caller touches each distinct key once.

pub mod attrs;
pub mod filter;
pub mod hostinfo;
pub mod servicegraph;
pub mod spanmetrics;

#[cfg(test)]
mod tests;

use std::hash::{BuildHasherDefault, Hasher};

pub use filter::{FilterAttr, FilterPolicy, FilterValue, PolicyMatch, Scope, SpanFilter};
pub use servicegraph::{EdgeBatch, ServiceGraphConfig, ServiceGraphStore};
pub use spanmetrics::{
    DimensionMapping, Intrinsic, SpanMetricsBatch, SpanMetricsOptions, SpanMetricsProcessor,
    TargetInfo,
};

/// A hasher for keys that already are hashes.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ b as u64;
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Distinct keys of a batch by hash: the caller hashes a key (without building it)
/// and compares candidates itself, so a lookup allocates nothing.
#[derive(Default)]
pub(crate) struct KeyIndex {
    first: std::collections::HashMap<u64, u32, BuildHasherDefault<PreHashed>>,
    /// Next key with the same hash (`u32::MAX` ends the chain).
    next: Vec<u32>,
}

impl KeyIndex {
    fn with_capacity(n: usize) -> KeyIndex {
        KeyIndex {
            first: std::collections::HashMap::with_capacity_and_hasher(n, Default::default()),
            next: Vec::with_capacity(n),
        }
    }

    /// The index of the key with hash `h` for which `eq` holds.
    #[inline]
    fn find(&self, h: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut i = *self.first.get(&h)?;
        loop {
            if eq(i) {
                return Some(i);
            }
            i = self.next[i as usize];
            if i == u32::MAX {
                return None;
            }
        }
    }

    /// Adds a key with hash `h` (known to be new); returns its index (the count before).
    fn insert(&mut self, h: u64) -> u32 {
        let new = self.next.len() as u32;
        self.next.push(u32::MAX);
        match self.first.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(new);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let mut i = *o.get();
                while self.next[i as usize] != u32::MAX {
                    i = self.next[i as usize];
                }
                self.next[i as usize] = new;
            }
        }
        new
    }
}

/// Distinct label-value tuples of a batch, stored flat (one string buffer, no
/// allocation per key or per label).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keys {
    width: usize,
    count: usize,
    text: String,
    /// End offset in `text` of each label value, `width` per key.
    ends: Vec<u32>,
}

impl Keys {
    pub fn new(width: usize) -> Keys {
        Keys { width, ..Default::default() }
    }

    /// Labels per key.
    pub fn width(&self) -> usize {
        self.width
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Label `p` of key `k`.
    #[inline]
    pub fn get(&self, k: usize, p: usize) -> &str {
        let i = k * self.width + p;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// The labels of key `k`.
    pub fn key(&self, k: usize) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.width).map(move |p| self.get(k, p))
    }

    /// Appends a key of `width` labels.
    #[inline]
    pub fn push<'s>(&mut self, labels: impl Iterator<Item = &'s str>) {
        for l in labels {
            self.text.push_str(l);
            self.ends.push(self.text.len() as u32);
        }
        self.count += 1;
        debug_assert_eq!(self.ends.len(), self.count * self.width);
    }

    /// Every key as owned strings (tests, small batches).
    pub fn to_vecs(&self) -> Vec<Vec<String>> {
        (0..self.count).map(|k| self.key(k).map(str::to_string).collect()).collect()
    }
}

/// Ids for keys that stay the same across batches, so a caller maps each key to its series
/// once and then only looks at new keys. Bounded: past `max` keys the map is cleared and
/// `generation` moves on (every key of the next batch is new again).
#[derive(Debug)]
pub struct KeyIds {
    map: std::collections::HashMap<Box<[u8]>, u32, ahash::RandomState>,
    scratch: Vec<u8>,
    generation: u64,
    max: usize,
}

impl KeyIds {
    pub fn new(max: usize) -> KeyIds {
        KeyIds { map: Default::default(), scratch: Vec::new(), generation: 0, max: max.max(1) }
    }

    /// Changes whenever earlier ids stop meaning anything.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Forgets every id (a new generation): the next batch's keys are all new.
    pub fn reset(&mut self) {
        self.map.clear();
        self.generation += 1;
    }

    /// The stable id of each of `keys`, and which of them (positions in `keys`) are new.
    pub fn assign(&mut self, keys: &Keys) -> (Vec<u32>, Vec<usize>) {
        if self.map.len() + keys.len() > self.max {
            self.reset();
        }
        let mut ids = Vec::with_capacity(keys.len());
        let mut new = Vec::new();
        for k in 0..keys.len() {
            self.scratch.clear();
            for l in keys.key(k) {
                self.scratch.extend_from_slice(l.as_bytes());
                self.scratch.push(0xff); // never in UTF-8: labels cannot run together
            }
            let next = self.map.len() as u32;
            let id = *self.map.entry(self.scratch.as_slice().into()).or_insert_with(|| {
                new.push(k);
                next
            });
            ids.push(id);
        }
        (ids, new)
    }
}

/// Lower-case hex of a trace id (exemplars).
pub use crate::search::fields::hex as hex_id;

/// Whether a span ending at `end_ns` is within `slack_ns` of `now_ns` (Tempo's
/// `metrics_ingestion_time_range_slack`; 0 disables the check).
#[inline]
fn within_slack(end_ns: u64, now_ns: u64, slack_ns: u64) -> bool {
    slack_ns == 0
        || (end_ns >= now_ns.saturating_sub(slack_ns) && end_ns <= now_ns.saturating_add(slack_ns))
}

/// Seconds from `start` to `end`, 0 when `end` is earlier (as Tempo).
#[inline]
fn seconds_between(start: u64, end: u64) -> f64 {
    if start > end {
        0.0
    } else {
        (end - start) as f64 / 1e9
    }
}

/// Seconds to a `u64` nanosecond count (negative and NaN as 0).
pub fn seconds_to_ns(s: f64) -> u64 {
    if s.is_nan() || s <= 0.0 {
        0
    } else {
        (s * 1e9).min(u64::MAX as f64) as u64
    }
}
