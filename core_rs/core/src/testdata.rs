//! Deterministic, realistic OTLP requests for tests and benches, shaped like the
//! reference load generator (`shared/bench/otlp_load.py`): 20 services, traces of
//! 4–30 spans, ~8 span and 6 resource attributes, an exception event on errors.
//! Spans also carry every `AnyValue` kind so round trips cover them all.

use crate::pb::{
    put_bytes_field, put_fixed32_field, put_fixed64_field, put_message, put_varint_field,
};

pub(crate) const SERVICES: [&str; 20] = [
    "frontend",
    "cart",
    "checkout",
    "payment",
    "shipping",
    "email",
    "currency",
    "ad",
    "recommendation",
    "catalog",
    "auth",
    "search",
    "inventory",
    "pricing",
    "user",
    "gateway",
    "review",
    "quote",
    "fraud",
    "ledger",
];
pub(crate) const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
pub(crate) const DBS: [&str; 4] = ["postgresql", "redis", "mongodb", "mysql"];

/// splitmix64: small, fast, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next_u64() as usize % items.len()]
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        if out.iter().all(|&b| b == 0) {
            out[0] = 1;
        }
        out
    }
}

/// Appends a `KeyValue` with a string value as field `field`.
pub fn kv_str(out: &mut Vec<u8>, field: u32, key: &str, value: &str) {
    put_message(out, field, |o| {
        put_bytes_field(o, 1, key.as_bytes());
        put_message(o, 2, |v| put_bytes_field(v, 1, value.as_bytes()));
    });
}

pub fn kv_int(out: &mut Vec<u8>, field: u32, key: &str, value: i64) {
    put_message(out, field, |o| {
        put_bytes_field(o, 1, key.as_bytes());
        put_message(o, 2, |v| put_varint_field(v, 3, value as u64));
    });
}

pub fn kv_bool(out: &mut Vec<u8>, field: u32, key: &str, value: bool) {
    put_message(out, field, |o| {
        put_bytes_field(o, 1, key.as_bytes());
        put_message(o, 2, |v| put_varint_field(v, 2, value as u64));
    });
}

pub fn kv_double(out: &mut Vec<u8>, field: u32, key: &str, value: f64) {
    put_message(out, field, |o| {
        put_bytes_field(o, 1, key.as_bytes());
        put_message(o, 2, |v| put_fixed64_field(v, 4, value.to_bits()));
    });
}

/// A span of the generated data set.
struct GenSpan {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    service: usize,
    start: u64,
    end: u64,
    kind: u64,
    name: String,
    route: String,
    code: i64,
}

fn encode_span(out: &mut Vec<u8>, s: &GenSpan, rng: &mut Rng) {
    put_message(out, 2, |o| {
        put_bytes_field(o, 1, &s.trace_id);
        put_bytes_field(o, 2, &s.span_id);
        if let Some(p) = s.parent {
            put_bytes_field(o, 4, &p);
        }
        put_bytes_field(o, 5, s.name.as_bytes());
        put_varint_field(o, 6, s.kind);
        put_fixed64_field(o, 7, s.start);
        put_fixed64_field(o, 8, s.end);
        kv_str(o, 9, "http.method", rng.pick(&METHODS));
        kv_str(o, 9, "http.route", &s.route);
        kv_int(o, 9, "http.status_code", s.code);
        kv_str(o, 9, "net.peer.name", rng.pick(&SERVICES));
        kv_str(o, 9, "user.id", &format!("user-{}", rng.range(0, 99_999)));
        kv_str(o, 9, "db.system", rng.pick(&DBS));
        kv_bool(o, 9, "retry", rng.range(0, 9) == 0);
        kv_int(o, 9, "payload.bytes", rng.range(0, 1 << 20) as i64);
        if rng.range(0, 49) == 0 {
            // The rarer value kinds: double, bytes, array, kvlist.
            kv_double(o, 9, "sample.ratio", rng.range(0, 1000) as f64 / 1000.0);
            put_message(o, 9, |kv| {
                put_bytes_field(kv, 1, b"blob");
                put_message(kv, 2, |v| put_bytes_field(v, 7, &[0, 1, 2, 254]));
            });
            put_message(o, 9, |kv| {
                put_bytes_field(kv, 1, b"tags");
                put_message(kv, 2, |v| {
                    put_message(v, 5, |arr| {
                        put_message(arr, 1, |x| put_bytes_field(x, 1, b"a"));
                        put_message(arr, 1, |x| put_varint_field(x, 3, 7));
                    })
                });
            });
            put_message(o, 9, |kv| {
                put_bytes_field(kv, 1, b"labels");
                put_message(kv, 2, |v| put_message(v, 6, |list| kv_str(list, 1, "team", "core")));
            });
            put_fixed32_field(o, 16, 0x101);
        }
        if s.code >= 500 {
            put_message(o, 11, |e| {
                put_fixed64_field(e, 1, s.start + 5000);
                put_bytes_field(e, 2, b"exception");
                kv_str(e, 3, "exception.type", "TimeoutError");
                kv_str(e, 3, "exception.message", "upstream timed out");
            });
            put_message(o, 15, |st| {
                put_bytes_field(st, 2, b"internal error");
                put_varint_field(st, 3, 2);
            });
        }
    });
}

fn gen_trace(rng: &mut Rng, t0: u64, out: &mut Vec<GenSpan>) {
    let trace_id = rng.bytes::<16>();
    let n = rng.range(4, 30) as usize;
    let first = out.len();
    let root_dur = rng.range(5_000_000, 900_000_000);
    for i in 0..n {
        let span_id = rng.bytes::<8>();
        let parent = (i > 0).then(|| out[first + rng.range(0, i as u64 - 1) as usize].span_id);
        let route = format!(
            "/api/v1/{}/{}",
            rng.pick(&["orders", "users", "items", "carts", "payments"]),
            rng.pick(&["{id}", "list", "search", "create"])
        );
        let name = if i % 3 != 0 {
            format!("{} {route}", rng.pick(&METHODS))
        } else {
            format!("db.query {}", rng.pick(&DBS))
        };
        let start = t0 + i as u64 * 1000;
        let dur = if i == 0 { root_dur } else { rng.range(10_000, root_dur) };
        let code = if rng.range(0, 99) < 3 { 500 } else { rng.pick(&[200, 200, 200, 201, 404]) };
        out.push(GenSpan {
            trace_id,
            span_id,
            parent,
            service: if i == 0 { 0 } else { rng.range(0, 19) as usize },
            start,
            end: start + dur,
            kind: if i == 0 { 2 } else { rng.range(1, 3) },
            name,
            route,
            code,
        });
    }
}

/// A request of complete traces with at least `min_spans` spans; returns the
/// protobuf bytes and the span count. Same seed, same bytes.
pub fn request(seed: u64, min_spans: usize) -> (Vec<u8>, usize) {
    let mut rng = Rng::new(seed);
    let t0 = 1_700_000_000_000_000_000 + rng.range(0, 60_000_000_000);
    let mut spans = Vec::with_capacity(min_spans + 30);
    while spans.len() < min_spans {
        let start = t0 + rng.range(0, 60_000_000_000);
        gen_trace(&mut rng, start, &mut spans);
    }
    let mut out = Vec::with_capacity(spans.len() * 320);
    for (svc, name) in SERVICES.iter().enumerate() {
        let mine: Vec<&GenSpan> = spans.iter().filter(|s| s.service == svc).collect();
        if mine.is_empty() {
            continue;
        }
        put_message(&mut out, 1, |rs| {
            put_message(rs, 1, |r| {
                kv_str(r, 1, "service.name", &format!("svc-{name}"));
                kv_str(r, 1, "service.namespace", "shop");
                kv_str(r, 1, "k8s.pod.name", &format!("svc-{name}-7d9f{}", svc % 10));
                kv_str(r, 1, "host.name", &format!("node-{}", svc % 8));
                kv_str(r, 1, "telemetry.sdk.language", "rust");
                kv_str(r, 1, "deployment.environment", "prod");
            });
            put_message(rs, 2, |ss| {
                put_message(ss, 1, |sc| {
                    put_bytes_field(sc, 1, b"bench");
                    put_bytes_field(sc, 2, b"1.0.0");
                });
                for s in &mine {
                    encode_span(ss, s, &mut rng);
                }
            });
        });
    }
    (out, spans.len())
}

/// A request with one resource and scope holding a span per `(trace id, span id,
/// parent id)` triple, ids written as given (for validation tests).
pub fn request_with_ids(ids: &[(Vec<u8>, Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    put_message(&mut out, 1, |rs| {
        put_message(rs, 1, |r| kv_str(r, 1, "service.name", "ids"));
        put_message(rs, 2, |ss| {
            for (i, (t, s, p)) in ids.iter().enumerate() {
                put_message(ss, 2, |o| {
                    put_bytes_field(o, 1, t);
                    put_bytes_field(o, 2, s);
                    if !p.is_empty() {
                        put_bytes_field(o, 4, p);
                    }
                    put_bytes_field(o, 5, format!("span-{i}").as_bytes());
                    put_fixed64_field(o, 7, 1_000 + i as u64);
                    put_fixed64_field(o, 8, 2_000 + i as u64);
                });
            }
        });
    });
    out
}
