//! Parquet blocks and head chunks (format [`crate::schema::FORMAT`]).
//!
//! A *head chunk* is one sorted Arrow IPC file written when live traces are cut;
//! the chunks of a head are merged ([`complete`]) into a *complete block*:
//!
//! ```text
//! <blocks>/<tenant>/<block-id>/data.parquet   spans, sorted by trace id then start (zstd)
//!                              bloom-<n>      trace-id bloom filter shards
//!                              index          trace-id range and rows per row group
//!                              meta.json      Tempo's field names; written last
//! ```
//!
//! A lookup by id checks the bloom filter (in memory), picks row groups from the
//! index, then pages within them from the Parquet page index, and reads only those.

mod bloom;
mod chunk;
mod compact;
mod export;
mod index;
mod merge;
mod meta;
mod reader;
mod writer;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use arrow_schema::ArrowError;
use parquet::errors::ParquetError;

pub use bloom::{traces_per_shard, Bloom};
pub use chunk::{write_chunk, ChunkReader};
pub use compact::{compact, CompactLimits, Compacted};
pub use export::{export_block, export_block_to, export_schema, ExportStats};
pub use index::{RowGroupRange, TraceIndex};
pub use merge::{complete, MergeStats};
pub use meta::{format_rfc3339, parse_rfc3339, BlockMeta};
pub use reader::{
    concat as concat_batches, BlockBatches, BlockReader, BlockSource, DirSource, ReadStats,
    StatValue,
};

use crate::columnar::ColumnarError;
use crate::schema::{default_dedicated_columns, DedicatedColumn};

pub const DATA_FILE: &str = "data.parquet";
pub const META_FILE: &str = "meta.json";
pub const INDEX_FILE: &str = "index";

/// The name of bloom filter shard `i`.
pub fn bloom_file(i: usize) -> String {
    format!("bloom-{i}")
}

/// How blocks and head chunks are laid out.
#[derive(Debug, Clone)]
pub struct BlockConfig {
    /// Spans per row group of a complete block (row groups end on trace boundaries).
    pub row_group_rows: usize,
    /// Spans per data page (the granularity a lookup reads).
    pub page_rows: usize,
    /// Spans per record batch of a head chunk (what a merge holds per chunk).
    pub chunk_batch_rows: usize,
    /// Compression of complete blocks' data pages.
    pub compression: BlockCompression,
    /// Bloom filter false-positive rate.
    pub bloom_fp: f64,
    /// Traces per bloom filter shard.
    pub bloom_shard_traces: usize,
    pub dedicated_columns: Vec<DedicatedColumn>,
}

impl Default for BlockConfig {
    fn default() -> Self {
        BlockConfig {
            row_group_rows: 10_000,
            page_rows: 500,
            chunk_batch_rows: 1_024,
            compression: BlockCompression::Lz4Raw,
            bloom_fp: 0.01,
            bloom_shard_traces: traces_per_shard(102_400, 0.01),
            dedicated_columns: default_dedicated_columns(),
        }
    }
}

/// Page compression of complete blocks. LZ4 is the default: lookups decompress a
/// few pages of every column, and arrow-rs builds a fresh zstd context per column
/// chunk read, which costs more than the decompression (zstd blocks are ~20%
/// smaller, lookups ~3x slower).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockCompression {
    Lz4Raw,
    Snappy,
    Zstd(i32),
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error(transparent)]
    Columnar(#[from] ColumnarError),
    #[error("corrupt block: {0}")]
    Corrupt(String),
    /// An error reading the block at `block`.
    #[error("{block}: {source}")]
    In { block: String, source: Box<BlockError> },
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> BlockError {
    let context = context.into();
    move |source| BlockError::Io { context, source }
}

/// A new block id (a random UUID, as Tempo's).
pub fn new_block_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BlockError> {
    let tmp = path.with_extension("tmp");
    let ctx = || format!("writing {}", path.display());
    let mut f = File::create(&tmp).map_err(io_err(ctx()))?;
    f.write_all(bytes).map_err(io_err(ctx()))?;
    f.sync_all().map_err(io_err(ctx()))?;
    fs::rename(&tmp, path).map_err(io_err(ctx()))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::Array;

    use super::*;
    use crate::columnar::TraceSpans;
    use crate::model::{Request, SpanHandle, TraceId};
    use crate::otlp::scan;
    use crate::testdata;

    /// The span ids of every trace.
    pub(crate) type Expected = BTreeMap<TraceId, BTreeSet<[u8; 8]>>;

    /// Spans of generated requests, split into `parts` chunks so that some traces
    /// land in several chunks (and some spans twice).
    pub(crate) fn chunked(parts: usize, seed: u64) -> (Vec<Vec<TraceSpans>>, Expected) {
        let (body, _) = testdata::request(seed, 3000);
        let req: Arc<Request> = Arc::new(scan(Arc::from(body)).unwrap());
        let mut expected: BTreeMap<TraceId, BTreeSet<[u8; 8]>> = BTreeMap::new();
        let mut chunks: Vec<HashMap<TraceId, Vec<SpanHandle>>> = vec![HashMap::new(); parts];
        for (i, s) in req.spans.iter().enumerate() {
            expected.entry(s.trace_id).or_default().insert(s.span_id);
            let h = SpanHandle { req: req.clone(), idx: i as u32 };
            chunks[i % parts].entry(s.trace_id).or_default().push(h.clone());
            if i % 7 == 0 {
                chunks[(i + 1) % parts].entry(s.trace_id).or_default().push(h);
            }
        }
        let out = chunks
            .into_iter()
            .map(|m| {
                m.into_iter().map(|(trace_id, spans)| TraceSpans::new(trace_id, spans)).collect()
            })
            .collect();
        (out, expected)
    }

    fn span_ids(b: &arrow_array::RecordBatch) -> BTreeSet<[u8; 8]> {
        let ids = b.column_by_name(crate::schema::SPAN_ID).unwrap().as_fixed_size_binary();
        (0..b.num_rows()).map(|i| ids.value(i).try_into().unwrap()).collect()
    }

    #[test]
    fn chunks_merge_into_a_block_that_finds_every_trace() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = BlockConfig {
            row_group_rows: 500,
            page_rows: 100,
            chunk_batch_rows: 200,
            bloom_shard_traces: 50,
            ..Default::default()
        };
        let (chunks, expected) = chunked(3, 42);
        let mut readers = Vec::new();
        for (n, mut traces) in chunks.into_iter().enumerate() {
            let path = tmp.path().join(format!("{n:08}.arrow"));
            traces.sort_unstable_by_key(|t| t.trace_id);
            assert!(write_chunk(&path, &traces, &cfg).unwrap() > 0);
            readers.push(ChunkReader::open(&path).unwrap());
        }
        // Chunks answer lookups themselves.
        let (tid, sids) = expected.iter().next().unwrap();
        let found: BTreeSet<[u8; 8]> = readers
            .iter()
            .filter_map(|r| r.find_trace(tid).unwrap())
            .flat_map(|b| span_ids(&b))
            .collect();
        assert_eq!(&found, sids);

        let dir = tmp.path().join("blocks").join("t").join("b1");
        let refs: Vec<&ChunkReader> = readers.iter().collect();
        let meta = complete(&refs, &dir, "t", "b1", &cfg).unwrap();
        assert_eq!(meta.total_objects as usize, expected.len());
        assert_eq!(meta.total_spans as usize, expected.values().map(|s| s.len()).sum::<usize>());
        assert!(meta.total_records > 1);
        assert!(meta.bloom_shards > 1);
        let block = BlockReader::open(&dir).unwrap();
        let block_schema = readers[0].schema();
        assert!(!crate::schema::dedicated_from_schema(&block_schema).is_empty());
        let mut max_bytes = 0;
        for (tid, sids) in &expected {
            assert!(block.might_contain(tid));
            let (rows, stats) = block.find_trace_with_stats(tid).unwrap();
            let rows = rows.unwrap();
            assert_eq!(&span_ids(&rows), sids);
            assert_eq!(rows.num_rows(), sids.len(), "duplicates were dropped");
            assert_eq!(rows.schema(), block_schema, "rows carry the dedicated-column metadata");
            // Trace-level columns agree on every row and structure is consistent.
            let left = rows.column_by_name(crate::schema::NESTED_SET_LEFT).unwrap();
            assert_eq!(left.as_primitive::<arrow_array::types::Int32Type>().null_count(), 0);
            max_bytes = max_bytes.max(stats.bytes);
        }
        assert!(block.find_trace(&[0xee; 16]).unwrap().is_none());
        // Reading a trace reads a fraction of the file (the footer is cached after the first).
        let (_, stats) = block.find_trace_with_stats(expected.keys().next().unwrap()).unwrap();
        assert!(stats.bytes < meta.size / 2, "{} of {}", stats.bytes, meta.size);
        assert!(max_bytes > 0);
    }

    #[test]
    fn a_search_reads_columns_named_out_of_schema_order() {
        use crate::search::{search_sources, Found, SearchOptions, SearchPlan, Source};
        let tmp = tempfile::tempdir().unwrap();
        let cfg = BlockConfig { row_group_rows: 500, page_rows: 100, ..Default::default() };
        let (dir, _, meta, expected) = one_chunk_block(tmp.path(), &cfg, 7);
        let block = BlockReader::open(&dir).unwrap();
        let cols = [crate::schema::TRACE_END, crate::schema::ATTRS, crate::schema::TRACE_ID];
        let cols: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
        let (batch, bytes) = block.read_columns(0, &cols).unwrap();
        assert_eq!(batch.num_columns(), 3);
        assert!(batch.num_rows() > 0 && bytes > 0);
        let options = SearchOptions { limit: 0, ..Default::default() };
        let plan = SearchPlan::compile("{ span.http.status_code >= 0 || true }", options).unwrap();
        let mut found = Found::default();
        let stats = search_sources(&plan, &[Source::Block(std::sync::Arc::new(block))], &mut found);
        assert_eq!(stats.errors, 0);
        assert_eq!(stats.inspected_spans, meta.total_spans);
        assert_eq!(found.len(), expected.len());
    }

    #[test]
    fn a_block_search_answers_as_a_search_of_its_rows() {
        use crate::search::{search_sources, Found, SearchOptions, SearchPlan, Source};
        use std::sync::Arc;
        let tmp = tempfile::tempdir().unwrap();
        let cfg = BlockConfig { row_group_rows: 200, page_rows: 100, ..Default::default() };
        let (dir, _, _, _) = one_chunk_block(tmp.path(), &cfg, 11);
        let block = Arc::new(BlockReader::open(&dir).unwrap());
        let dedicated = block.dedicated_columns().to_vec();
        let all: Vec<String> = crate::schema::span_schema(&dedicated)
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let batches: Vec<Source> = (0..block.row_groups().unwrap())
            .map(|g| Source::Batch(block.read_columns(g, &all).unwrap().0, dedicated.clone()))
            .collect();
        let queries = [
            "{}",
            "{ span.http.status_code = 500 }",
            "{ span.http.status_code = 200 && duration > 1ms }",
            "{ .http.status_code >= 400 }",
            "{ .nope = 1 }",
            r#"{ .foo =~ "ba.*" }"#,
            "{ trace:duration > 100ms }",
            r#"{ resource.service.name = "cart" || resource.service.name = "svc-cart" }"#,
            "{ status = error }",
            r#"{ name =~ "GET.*" && kind = server }"#,
            r#"{ event:name = "exception" }"#,
            "{ status = error } >> { duration > 1ms }",
        ];
        for q in queries {
            let options = SearchOptions { limit: 0, ..Default::default() };
            let plan = SearchPlan::compile(q, options).unwrap();
            let (mut a, mut b) = (Found::default(), Found::default());
            let sa = search_sources(&plan, &[Source::Block(block.clone())], &mut a);
            let sb = search_sources(&plan, &batches, &mut b);
            assert_eq!(sa.errors, 0, "{q}");
            assert_eq!(a.traces, b.traces, "{q}");
            assert_eq!(sa.inspected_spans, sb.inspected_spans, "{q}");
            if q.contains(".nope") || q.contains(".foo") {
                // Pruned from the key bloom filters: nothing read, traces not counted.
                assert_eq!(sa.pruned_row_groups, block.row_groups().unwrap() as u64, "{q}");
            } else {
                assert_eq!(sa.pruned_row_groups, 0, "{q}");
                assert_eq!(sa.inspected_traces, sb.inspected_traces, "{q}");
            }
        }
    }

    /// A block of generated spans (seed `seed`) completed from one head chunk: the
    /// block's directory `<tmp>/b`, the chunk `<tmp>/c.arrow`, its meta and spans.
    pub(crate) fn one_chunk_block(
        tmp: &Path,
        cfg: &BlockConfig,
        seed: u64,
    ) -> (std::path::PathBuf, std::path::PathBuf, BlockMeta, Expected) {
        let (mut chunks, expected) = chunked(1, seed);
        let path = tmp.join("c.arrow");
        chunks[0].sort_unstable_by_key(|t| t.trace_id);
        write_chunk(&path, &chunks[0], cfg).unwrap();
        let chunk = ChunkReader::open(&path).unwrap();
        let dir = tmp.join("b");
        let meta = complete(&[&chunk], &dir, "t", "b", cfg).unwrap();
        (dir, path, meta, expected)
    }

    #[test]
    fn corrupt_blocks_are_errors_not_panics() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = BlockConfig::default();
        let (dir, path, _, expected) = one_chunk_block(tmp.path(), &cfg, 3);
        let chunk = ChunkReader::open(&path).unwrap();
        let tid = expected.keys().next().unwrap();
        // Truncated data file: opening works (meta is separate), the lookup errors.
        let data = dir.join(DATA_FILE);
        let len = fs::metadata(&data).unwrap().len();
        File::options().write(true).open(&data).unwrap().set_len(len / 2).unwrap();
        let block = BlockReader::open(&dir).unwrap();
        assert!(block.find_trace(tid).is_err());
        // Bad meta.json or a missing bloom shard: open fails with a reason.
        fs::write(dir.join(META_FILE), b"{").unwrap();
        assert!(matches!(BlockReader::open(&dir), Err(BlockError::Corrupt(_))));
        fs::remove_dir_all(&dir).unwrap();
        complete(&[&chunk], &dir, "t", "b", &cfg).unwrap();
        fs::remove_file(dir.join(bloom_file(0))).unwrap();
        assert!(BlockReader::open(&dir).is_err());
        // A truncated chunk does not open.
        let clen = fs::metadata(&path).unwrap().len();
        File::options().write(true).open(&path).unwrap().set_len(clen - 10).unwrap();
        assert!(ChunkReader::open(&path).is_err());
    }
}

#[cfg(test)]
mod settings_probe {
    //! `cargo test --release -p tempo_core settings_probe -- --ignored --nocapture`:
    //! block size, completion time and lookup cost for writer settings on the
    //! reference-shaped data. `PROBE="0,10000,500;3,20000,1000"` picks settings
    //! (compression: 0 LZ4, -1 Snappy, n zstd level n; row-group rows; page rows),
    //! `PROBE_LOOKUPS=n` the number of lookups timed.
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::model::{Request, TraceId};
    use crate::otlp::scan;
    use crate::testdata;

    #[test]
    #[ignore]
    fn probe() {
        let tmp = tempfile::tempdir().unwrap();
        let reqs: Vec<Arc<Request>> = (0..100)
            .map(|seed| Arc::new(scan(Arc::from(testdata::request(seed, 1000).0)).unwrap()))
            .collect();
        let mut traces = crate::columnar::traces_of(&reqs);
        let spans: usize = traces.iter().map(|t| t.spans.len()).sum();
        let base = BlockConfig::default();
        let chunk = tmp.path().join("c.arrow");
        let t = Instant::now();
        traces.sort_unstable_by_key(|t| t.trace_id);
        let chunk_size = write_chunk(&chunk, &traces, &base).unwrap();
        println!(
            "spans={spans} cut={:?} chunk bytes/span={:.0}",
            t.elapsed(),
            chunk_size as f64 / spans as f64
        );
        let c = ChunkReader::open(&chunk).unwrap();
        let combos: Vec<(i32, usize, usize)> = std::env::var("PROBE")
            .map(|v| {
                v.split(';')
                    .map(|c| {
                        let n: Vec<i64> = c.split(',').map(|x| x.parse().unwrap()).collect();
                        (n[0] as i32, n[1] as usize, n[2] as usize)
                    })
                    .collect()
            })
            .unwrap_or_else(|_| vec![(0, 10_000, 500), (1, 10_000, 500), (0, 20_000, 1_000)]);
        let lookups: usize = std::env::var("PROBE_LOOKUPS").map_or(200, |v| v.parse().unwrap());
        for (level, rg, page) in combos {
            let compression = match level {
                0 => BlockCompression::Lz4Raw,
                -1 => BlockCompression::Snappy,
                l => BlockCompression::Zstd(l),
            };
            let cfg =
                BlockConfig { compression, row_group_rows: rg, page_rows: page, ..base.clone() };
            let dir = tmp.path().join(format!("b{level}-{rg}-{page}"));
            let t = Instant::now();
            let meta = complete(&[&c], &dir, "t", "b", &cfg).unwrap();
            let took = t.elapsed();
            let block = BlockReader::open(&dir).unwrap();
            let ids: Vec<TraceId> =
                traces.iter().cycle().take(lookups).map(|t| t.trace_id).collect();
            block.find_trace(&ids[0]).unwrap();
            {
                let file = File::open(dir.join(DATA_FILE)).unwrap();
                let opts = parquet::arrow::arrow_reader::ArrowReaderOptions::new()
                    .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional);
                let m =
                    parquet::arrow::arrow_reader::ArrowReaderMetadata::load(&file, opts).unwrap();
                let md = m.metadata();
                let pi = md.page_index_for_row_group(0);
                let cols = md.row_group(0).num_columns();
                let pages: Vec<usize> = (0..cols)
                    .map(|c| pi.offset_index(c).map_or(0, |o| o.page_locations().len()))
                    .collect();
                println!(
                    "  row groups={} rows/rg0={} leaf cols={cols} pages per col={pages:?}",
                    md.num_row_groups(),
                    md.row_group(0).num_rows()
                );
            }
            let t = Instant::now();
            let mut bytes = 0;
            for id in &ids {
                bytes += block.find_trace_with_stats(id).unwrap().1.bytes;
            }
            println!(
                "{compression:?} rg={rg} page={page}: complete={:?} ({:.2} us/span) bytes/span={:.1} lookup={:?} read/lookup={}",
                took,
                took.as_secs_f64() * 1e6 / spans as f64,
                meta.size as f64 / spans as f64,
                t.elapsed() / ids.len() as u32,
                bytes / ids.len() as u64
            );
        }
    }
}
