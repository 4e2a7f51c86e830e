//! The metrics generator's per-span work on the reference-shaped data set (`testdata`):
//! - `spanmetrics`: key extraction with Tempo's default intrinsics and two dimensions.
//! - `servicegraph_push`: pairing into the edge store (one fresh store per pass).
//!
//! `cargo bench -p tempo_core --bench generator`; throughput is in spans (elements).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tempo_core::generator::{ServiceGraphConfig, ServiceGraphStore, SpanMetricsProcessor};
use tempo_core::model::Request;
use tempo_core::otlp::scan;
use tempo_core::testdata;

const SPANS_PER_REQUEST: usize = 1000;
const REQUESTS: usize = 64;

fn requests() -> (Vec<Arc<Request>>, usize) {
    let mut spans = 0;
    let reqs = (0..REQUESTS as u64)
        .map(|seed| {
            let (b, n) = testdata::request(seed, SPANS_PER_REQUEST);
            spans += n;
            Arc::new(scan(Arc::from(b)).unwrap())
        })
        .collect();
    (reqs, spans)
}

fn bench(c: &mut Criterion) {
    let (reqs, spans) = requests();
    let mut g = c.benchmark_group("generator");
    g.throughput(Throughput::Elements(spans as u64));
    g.sample_size(20);
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let intrinsics = strs(&["service", "span_name", "span_kind", "status_code"]);

    let plain = SpanMetricsProcessor::new(&intrinsics, &[], 0.0).unwrap();
    g.bench_function("spanmetrics", |b| {
        b.iter(|| {
            for r in &reqs {
                std::hint::black_box(plain.process(r, 0));
            }
        })
    });
    let dims = SpanMetricsProcessor::new(
        &intrinsics,
        &strs(&["http.method", "deployment.environment"]),
        0.0,
    )
    .unwrap();
    g.bench_function("spanmetrics_2dims", |b| {
        b.iter(|| {
            for r in &reqs {
                std::hint::black_box(dims.process(r, 0));
            }
        })
    });

    g.bench_function("servicegraph_push", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cfg = ServiceGraphConfig {
                    slack_seconds: 0.0,
                    max_items: 1 << 20,
                    ..Default::default()
                };
                let store = ServiceGraphStore::new(cfg);
                let t = Instant::now();
                for r in &reqs {
                    std::hint::black_box(store.push(r, 0));
                }
                total += t.elapsed();
                std::hint::black_box(store.expire(u64::MAX));
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
