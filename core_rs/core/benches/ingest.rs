//! The core's hot paths on the reference-shaped data set (`testdata`):
//! - `push`: decode + validate + WAL append (fsync never) + live-trace index.
//! - `scan`: decode + validate alone.
//! - `build_batch`: live traces to one sorted Arrow batch.
//! - `cut`: live traces to a head chunk (Arrow IPC, batches of `chunk_batch_rows`).
//!
//! `cargo bench -p tempo_core --bench ingest`; throughput is in spans (elements).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tempo_core::block::{complete, write_chunk, BlockConfig, ChunkReader};
use tempo_core::columnar::{build_batch, TraceSpans};
use tempo_core::ingester::{Encoding, Ingester, IngesterConfig};
use tempo_core::model::{SpanHandle, TraceId};
use tempo_core::otlp::scan;
use tempo_core::testdata;
use tempo_core::wal::FsyncMode;

const SPANS_PER_REQUEST: usize = 1000;
const REQUESTS: usize = 64;

fn requests() -> (Vec<Vec<u8>>, usize) {
    let mut spans = 0;
    let bodies = (0..REQUESTS as u64)
        .map(|seed| {
            let (b, n) = testdata::request(seed, SPANS_PER_REQUEST);
            spans += n;
            b
        })
        .collect();
    (bodies, spans)
}

fn bench(c: &mut Criterion) {
    let (bodies, spans) = requests();
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(spans as u64));
    g.sample_size(20);

    g.bench_function("scan", |b| {
        b.iter(|| {
            for body in &bodies {
                std::hint::black_box(scan(Arc::from(body.as_slice())).unwrap());
            }
        })
    });

    g.bench_function("push", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let tmp = tempfile::tempdir().unwrap();
                let mut cfg =
                    IngesterConfig::new(tmp.path().join("wal"), tmp.path().join("blocks"));
                cfg.fsync = FsyncMode::Never;
                let ing = Ingester::new(cfg).unwrap();
                let t = Instant::now();
                for body in &bodies {
                    ing.push("bench", body, Encoding::Protobuf, false, 64 << 20).unwrap();
                }
                total += t.elapsed();
            }
            total
        })
    });

    let reqs: Vec<Arc<_>> =
        bodies.iter().map(|b| Arc::new(scan(Arc::from(b.as_slice())).unwrap())).collect();
    let traces = || {
        let mut by: HashMap<TraceId, Vec<SpanHandle>> = HashMap::new();
        for r in &reqs {
            for (i, s) in r.spans.iter().enumerate() {
                by.entry(s.trace_id)
                    .or_default()
                    .push(SpanHandle { req: r.clone(), idx: i as u32 });
            }
        }
        by.into_iter().map(|(trace_id, spans)| TraceSpans::new(trace_id, spans)).collect::<Vec<_>>()
    };
    let cfg = BlockConfig::default();
    g.bench_function("build_batch", |b| {
        b.iter_batched(
            traces,
            |t| build_batch(&t, &cfg.dedicated_columns).unwrap(),
            BatchSize::LargeInput,
        )
    });
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("chunk.arrow");
    g.bench_function("cut", |b| {
        b.iter_batched(
            traces,
            |mut t| {
                t.sort_unstable_by_key(|x| x.trace_id);
                write_chunk(&path, &t, &cfg).unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    // `complete`: four chunks merged into a Parquet block (bloom, index, meta).
    let chunks: Vec<ChunkReader> = (0..4)
        .map(|i| {
            let mut t = traces();
            t.retain(|tr| tr.trace_id[0] % 4 == i as u8);
            let p = tmp.path().join(format!("c{i}.arrow"));
            t.sort_unstable_by_key(|x| x.trace_id);
            write_chunk(&p, &t, &cfg).unwrap();
            ChunkReader::open(&p).unwrap()
        })
        .collect();
    let refs: Vec<&ChunkReader> = chunks.iter().collect();
    let dir = tmp.path().join("block");
    g.bench_function("complete", |b| b.iter(|| complete(&refs, &dir, "bench", "b", &cfg).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
