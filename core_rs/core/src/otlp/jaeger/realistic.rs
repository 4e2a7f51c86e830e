//! Realistic Jaeger Thrift for the speed probe and the old-versus-new tests: the
//! reference load generator's traces (`shared/bench/otlp_load.py` `make_trace`) as
//! `bench/test_receivers.py` `to_jaeger` writes them (Apache Thrift's Python
//! TBinaryProtocol, fields in id order, unset optionals left out). Per span: the 8
//! span attributes (strings, ints, a bool), `span.kind` and `otel.scope.name` as tags;
//! 3% errors with `error=true`, `otel.status_description` and an `exception` log; the
//! process is the service name and the 5 other resource attributes.

use crate::testdata::{Rng, DBS, METHODS, SERVICES};

const RESOURCES: [&str; 5] = ["orders", "users", "items", "carts", "payments"];
const ACTIONS: [&str; 4] = ["{id}", "list", "search", "create"];
const KINDS: [&str; 3] = ["internal", "server", "client"];

/// A TBinaryProtocol writer.
#[derive(Default)]
pub(super) struct Bin(pub Vec<u8>);

impl Bin {
    fn field(&mut self, ty: u8, id: i16) {
        self.0.push(ty);
        self.0.extend_from_slice(&id.to_be_bytes());
    }
    fn i32(&mut self, id: i16, v: i32) {
        self.field(8, id);
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, id: i16, v: i64) {
        self.field(10, id);
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn str(&mut self, id: i16, v: &str) {
        self.field(11, id);
        self.0.extend_from_slice(&(v.len() as i32).to_be_bytes());
        self.0.extend_from_slice(v.as_bytes());
    }
    fn bool(&mut self, id: i16, v: bool) {
        self.field(2, id);
        self.0.push(v as u8);
    }
    fn list(&mut self, id: i16, n: usize) {
        self.field(15, id);
        self.0.push(12);
        self.0.extend_from_slice(&(n as i32).to_be_bytes());
    }
    fn stop(&mut self) {
        self.0.push(0);
    }
    fn tag(&mut self, key: &str, v: TagVal<'_>) {
        self.str(1, key);
        match v {
            TagVal::Str(s) => {
                self.i32(2, 0);
                self.str(3, s);
            }
            TagVal::Bool(b) => {
                self.i32(2, 2);
                self.bool(5, b);
            }
            TagVal::Int(i) => {
                self.i32(2, 3);
                self.i64(6, i);
            }
        }
        self.stop();
    }
}

#[derive(Clone, Copy)]
enum TagVal<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
}

/// One generated span, its Thrift `Span` struct body encoded.
struct GenSpan {
    service: usize,
    thrift: Vec<u8>,
}

fn gen_trace(rng: &mut Rng, t0_us: i64, out: &mut Vec<GenSpan>) {
    let (trace_hi, trace_lo) = (rng.next_u64() as i64, rng.next_u64() as i64);
    let n = rng.range(4, 30) as usize;
    let root_dur = rng.range(5_000, 900_000) as i64;
    let mut ids: Vec<i64> = Vec::new();
    for i in 0..n {
        let id = rng.next_u64() as i64;
        let parent = if i == 0 { 0 } else { ids[rng.range(0, i as u64 - 1) as usize] };
        let service = if i == 0 { 0 } else { rng.range(0, 19) as usize };
        let route = format!("/api/v1/{}/{}", rng.pick(&RESOURCES), rng.pick(&ACTIONS));
        let name = if i % 3 != 0 {
            format!("{} {route}", rng.pick(&METHODS))
        } else {
            format!("db.query {}", rng.pick(&DBS))
        };
        let kind = if i == 0 { "server" } else { rng.pick(&KINDS) };
        let duration = if i == 0 { root_dur } else { rng.range(10, root_dur as u64) as i64 };
        let error = rng.range(0, 99) < 3;
        let code = if error { 500 } else { rng.pick(&[200, 200, 200, 201, 404]) };
        let user = format!("user-{}", rng.range(0, 99_999));
        let tags = [
            ("http.method", TagVal::Str(rng.pick(&METHODS))),
            ("http.route", TagVal::Str(&route)),
            ("http.status_code", TagVal::Int(code)),
            ("net.peer.name", TagVal::Str(rng.pick(&SERVICES))),
            ("user.id", TagVal::Str(&user)),
            ("db.system", TagVal::Str(rng.pick(&DBS))),
            ("retry", TagVal::Bool(rng.range(0, 9) == 0)),
            ("payload.bytes", TagVal::Int(rng.range(0, (1 << 20) - 1) as i64)),
            ("span.kind", TagVal::Str(kind)),
            ("otel.scope.name", TagVal::Str("bench")),
        ];
        let errors = [
            ("error", TagVal::Bool(true)),
            ("otel.status_description", TagVal::Str("internal error")),
        ];
        let tags: Vec<_> = tags.iter().chain(if error { &errors[..] } else { &[] }).collect();
        let start = t0_us + i as i64;
        let mut b = Bin::default();
        b.i64(1, trace_lo);
        b.i64(2, trace_hi);
        b.i64(3, id);
        b.i64(4, parent);
        b.str(5, &name);
        b.i32(7, 1);
        b.i64(8, start);
        b.i64(9, duration);
        b.list(10, tags.len());
        for &&(k, v) in &tags {
            b.tag(k, v);
        }
        if error {
            b.list(11, 1);
            b.i64(1, t0_us + 5);
            b.list(2, 3);
            b.tag("event", TagVal::Str("exception"));
            b.tag("exception.type", TagVal::Str("TimeoutError"));
            b.tag("exception.message", TagVal::Str("upstream timed out"));
            b.stop();
        }
        b.stop();
        out.push(GenSpan { service, thrift: b.0 });
        ids.push(id);
    }
}

/// Collector HTTP bodies (binary Thrift `Batch`es) of at least `spans` spans in all:
/// whole traces, one batch per service with up to `per_batch` spans each (the
/// load generator's 1000-span requests split per resource give ~50).
pub(crate) fn realistic_batches(
    seed: u64,
    spans: usize,
    per_batch: usize,
) -> Vec<(Vec<u8>, usize)> {
    let mut rng = Rng::new(seed);
    let t0_us = 1_700_000_000_000_000i64 + rng.range(0, 60_000_000) as i64;
    let mut all = Vec::new();
    while all.len() < spans {
        let t = t0_us + rng.range(0, 60_000_000) as i64;
        gen_trace(&mut rng, t, &mut all);
    }
    let pods: Vec<(u64, u64)> =
        (0..SERVICES.len()).map(|_| (rng.range(0, 9), rng.range(0, 7))).collect();
    let mut out = Vec::new();
    for (svc, name) in SERVICES.iter().enumerate() {
        let mine: Vec<&GenSpan> = all.iter().filter(|s| s.service == svc).collect();
        for chunk in mine.chunks(per_batch.max(1)) {
            let mut b = Bin::default();
            b.field(12, 1);
            b.str(1, name);
            b.list(2, 5);
            let (pod, node) = pods[svc];
            b.tag("service.namespace", TagVal::Str("shop"));
            b.tag("k8s.pod.name", TagVal::Str(&format!("{name}-7d9f{pod}")));
            b.tag("host.name", TagVal::Str(&format!("node-{node}")));
            b.tag("telemetry.sdk.language", TagVal::Str("python"));
            b.tag("deployment.environment", TagVal::Str("prod"));
            b.stop();
            b.list(2, chunk.len());
            for s in chunk {
                b.0.extend_from_slice(&s.thrift);
            }
            b.stop();
            out.push((b.0, chunk.len()));
        }
    }
    out
}
