//! Parquet blocks and head chunks (format [`crate::schema::FORMAT`]).
//!
//! A *head chunk* is one sorted Parquet file written when live traces are cut;
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

pub use bloom::Bloom;
pub use index::{RowGroupRange, TraceIndex};
pub use merge::complete;
pub use meta::{format_rfc3339, parse_rfc3339, BlockMeta};
pub use reader::{BlockReader, ChunkReader, ReadStats};
pub use writer::write_chunk;

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
    /// zstd level of head chunks (written often, read once).
    pub chunk_zstd_level: i32,
    /// zstd level of complete blocks.
    pub block_zstd_level: i32,
    /// Bloom filter false-positive rate.
    pub bloom_fp: f64,
    /// Traces per bloom filter shard.
    pub bloom_shard_traces: usize,
    pub dedicated_columns: Vec<DedicatedColumn>,
}

impl Default for BlockConfig {
    fn default() -> Self {
        BlockConfig {
            row_group_rows: 20_000,
            page_rows: 1_000,
            chunk_zstd_level: 1,
            block_zstd_level: 3,
            bloom_fp: 0.01,
            bloom_shard_traces: 250_000,
            dedicated_columns: default_dedicated_columns(),
        }
    }
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
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::Array;

    use super::*;
    use crate::columnar::{build_batch, TraceSpans};
    use crate::model::{Request, SpanHandle, TraceId};
    use crate::otlp::scan;
    use crate::testdata;

    /// Spans of generated requests, split into `parts` chunks so that some traces
    /// land in several chunks (and some spans twice).
    fn chunked(parts: usize, seed: u64) -> (Vec<Vec<TraceSpans>>, BTreeMap<TraceId, BTreeSet<[u8; 8]>>) {
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
            .map(|m| m.into_iter().map(|(trace_id, spans)| TraceSpans { trace_id, spans }).collect())
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
        let cfg = BlockConfig { row_group_rows: 500, page_rows: 100, bloom_shard_traces: 50, ..Default::default() };
        let (chunks, expected) = chunked(3, 42);
        let mut readers = Vec::new();
        for (n, mut traces) in chunks.into_iter().enumerate() {
            let batch = build_batch(&mut traces, &cfg.dedicated_columns).unwrap();
            let path = tmp.path().join(format!("{n:08}.parquet"));
            write_chunk(&path, &batch, &cfg).unwrap();
            readers.push(ChunkReader::open(&path).unwrap());
        }
        // Chunks answer lookups themselves.
        let (tid, sids) = expected.iter().next().unwrap();
        let found: BTreeSet<[u8; 8]> =
            readers.iter().filter_map(|r| r.find_trace(tid).unwrap()).flat_map(|b| span_ids(&b)).collect();
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
    fn corrupt_blocks_are_errors_not_panics() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = BlockConfig::default();
        let (mut chunks, expected) = chunked(1, 3);
        let batch = build_batch(&mut chunks[0], &cfg.dedicated_columns).unwrap();
        let path = tmp.path().join("c.parquet");
        write_chunk(&path, &batch, &cfg).unwrap();
        let chunk = ChunkReader::open(&path).unwrap();
        let dir = tmp.path().join("b");
        complete(&[&chunk], &dir, "t", "b", &cfg).unwrap();
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
