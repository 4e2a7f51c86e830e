//! Per-tenant ingestion limits (Tempo's `overrides`) and the ingestion rate limiter.
//!
//! The table holds the defaults plus per-tenant overrides, replaced whole when the
//! control plane reloads its overrides. Each tenant's byte rate is a token bucket
//! as in Go's `x/time/rate` (what Tempo's limiter uses): it starts full, refills at
//! `rate_limit_bytes` per second up to `burst_size_bytes`, and a request of `n`
//! bytes passes only when `n` tokens are there (a refused request takes none).

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

/// One tenant's limits. A zero disables the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Bytes per second of decoded OTLP the tenant may push.
    pub rate_limit_bytes: u64,
    /// Bytes the tenant may push at once.
    pub burst_size_bytes: u64,
    /// Live traces the tenant may have at once.
    pub max_traces_per_user: u64,
    /// Bytes one live trace may grow to.
    pub max_bytes_per_trace: u64,
    /// Attribute keys and string values are truncated to this many bytes.
    pub max_attribute_bytes: u64,
}

impl Default for Limits {
    /// Tempo 2.10's defaults.
    fn default() -> Self {
        Limits {
            rate_limit_bytes: 15_000_000,
            burst_size_bytes: 20_000_000,
            max_traces_per_user: 10_000,
            max_bytes_per_trace: 5_000_000,
            max_attribute_bytes: 2048,
        }
    }
}

/// Defaults plus per-tenant overrides.
#[derive(Debug, Default)]
pub struct LimitsTable {
    inner: RwLock<(Limits, HashMap<String, Limits>)>,
}

impl LimitsTable {
    pub fn new(defaults: Limits) -> Self {
        LimitsTable { inner: RwLock::new((defaults, HashMap::new())) }
    }

    /// The limits that apply to `tenant`.
    pub fn get(&self, tenant: &str) -> Limits {
        let g = self.inner.read();
        g.1.get(tenant).copied().unwrap_or(g.0)
    }

    /// Replaces the defaults and every per-tenant override.
    pub fn set(&self, defaults: Limits, tenants: HashMap<String, Limits>) {
        *self.inner.write() = (defaults, tenants);
    }
}

/// A byte-rate token bucket.
#[derive(Debug)]
pub struct TokenBucket {
    state: Mutex<Option<(f64, Instant)>>, // tokens, as of
}

impl Default for TokenBucket {
    fn default() -> Self {
        TokenBucket { state: Mutex::new(None) }
    }
}

impl TokenBucket {
    /// Takes `n` tokens at `now` if the bucket (rate and burst from `limits`) has them.
    /// A zero rate means no limit.
    pub fn allow(&self, n: u64, now: Instant, limits: &Limits) -> bool {
        if limits.rate_limit_bytes == 0 {
            return true;
        }
        let burst = limits.burst_size_bytes as f64;
        let mut g = self.state.lock();
        let (tokens, since) = g.unwrap_or((burst, now));
        let elapsed = now.saturating_duration_since(since).as_secs_f64();
        let tokens = (tokens + elapsed * limits.rate_limit_bytes as f64).min(burst);
        let n = n as f64;
        if n <= tokens {
            *g = Some((tokens - n, now));
            true
        } else {
            *g = Some((tokens, now));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_starts_full_refills_and_caps_at_burst() {
        let l = Limits { rate_limit_bytes: 1000, burst_size_bytes: 2000, ..Default::default() };
        let b = TokenBucket::default();
        let t0 = Instant::now();
        assert!(b.allow(1500, t0, &l));
        assert!(!b.allow(600, t0, &l), "only 500 left");
        assert!(b.allow(500, t0, &l));
        assert!(!b.allow(1, t0, &l));
        assert!(b.allow(1000, t0 + Duration::from_secs(1), &l), "refilled at 1000/s");
        assert!(!b.allow(2001, t0 + Duration::from_secs(100), &l), "never more than burst");
        assert!(b.allow(2000, t0 + Duration::from_secs(100), &l));
        let unlimited = Limits { rate_limit_bytes: 0, ..l };
        assert!(b.allow(u64::MAX, t0, &unlimited));
    }

    #[test]
    fn table_falls_back_to_defaults() {
        let t = LimitsTable::new(Limits::default());
        let a = Limits { max_traces_per_user: 7, ..Default::default() };
        t.set(Limits::default(), HashMap::from([("a".to_string(), a)]));
        assert_eq!(t.get("a").max_traces_per_user, 7);
        assert_eq!(t.get("b"), Limits::default());
    }
}
