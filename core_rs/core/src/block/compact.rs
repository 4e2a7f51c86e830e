//! Compaction: complete blocks of one tenant merged into fewer, larger blocks.
//!
//! The inputs are read row group by row group ([`BlockReader::batches`]) and merged
//! by trace id ([`merge`]): a trace found in several inputs becomes one, its
//! duplicate spans dropped, every other span kept. An output block is closed at a
//! row-group boundary (so on a trace boundary) once it reaches the byte or trace
//! limit, and the next one begins. Memory holds one row group per input plus the
//! output row group being built, whatever the size of the inputs.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow_array::RecordBatch;

use super::merge::{merge, Batches, MergeStats};
use super::writer::BlockWriter;
use super::{new_block_id, BlockConfig, BlockError, BlockMeta, BlockReader};

/// Rows decoded at a time per input. Measured on 4 blocks of 60k reference spans, row
/// groups fetched whole: 4,096 rows 0.75 s / 117 MB peak RSS (42 MB of it the interpreter);
/// 1,024 rows were ~10% slower, whole 10k-row row groups took 60 MB more.
const BATCH_ROWS: usize = 4096;

/// When an output block is full.
#[derive(Debug, Clone, Copy)]
pub struct CompactLimits {
    /// Data bytes (Tempo's `max_block_bytes`).
    pub max_block_bytes: u64,
    /// Traces (Tempo's `max_compaction_objects`).
    pub max_block_traces: u64,
}

/// What a compaction did.
#[derive(Debug, Default, Clone)]
pub struct Compacted {
    /// The output blocks, each complete (meta.json written) in its own directory.
    pub blocks: Vec<BlockMeta>,
    pub merge: MergeStats,
    /// Data bytes read from the inputs.
    pub bytes_read: u64,
}

/// Merges `inputs` (blocks of `tenant`, all of one schema) into new blocks of
/// compaction level `level`, each written to `out_root/<new block id>/`.
pub fn compact(
    inputs: &[Arc<BlockReader>],
    out_root: &Path,
    tenant: &str,
    level: u32,
    cfg: &BlockConfig,
    limits: CompactLimits,
) -> Result<Compacted, BlockError> {
    let mut sources: Vec<Batches> = Vec::with_capacity(inputs.len());
    let mut counters = Vec::with_capacity(inputs.len());
    let mut schema = None;
    for block in inputs {
        let at = block.location();
        let batches = block.batches(BATCH_ROWS).map_err(|e| located(&at, e))?;
        let s = batches.schema();
        match &schema {
            None => schema = Some(s),
            Some(first) if *first != s => {
                return Err(BlockError::Corrupt(format!(
                    "{} has another schema than {} (dedicated columns differ): \
                     blocks of different schemas are not compacted together",
                    block.location(),
                    inputs[0].location()
                )))
            }
            Some(_) => {}
        }
        counters.push(batches.bytes_read());
        sources.push(Box::new(batches.map(move |b| b.map_err(|e| located(&at, e)))));
    }
    let Some(schema) = schema else {
        return Err(BlockError::Corrupt("a compaction needs at least one input block".into()));
    };
    let mut out = Compacted::default();
    let mut writer: Option<(BlockWriter, String)> = None;
    let stats = merge(sources, &schema, cfg.row_group_rows, |rows: RecordBatch| {
        let (w, _) = match &mut writer {
            Some(w) => w,
            None => {
                let id = new_block_id();
                let w = BlockWriter::create(&out_root.join(&id), schema.clone(), cfg)?;
                writer.insert((w, id))
            }
        };
        w.write_row_group(&rows)?;
        let (bytes, traces) = w.written();
        if bytes >= limits.max_block_bytes || traces >= limits.max_block_traces {
            let (w, id) = writer.take().expect("a writer is open");
            out.blocks.push(w.finish(tenant, &id, level)?);
        }
        Ok(())
    })?;
    if let Some((w, id)) = writer.take() {
        out.blocks.push(w.finish(tenant, &id, level)?);
    }
    out.merge = stats;
    out.bytes_read = counters.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    Ok(out)
}

/// `e` naming the block it came from (so a caller can tell which input is bad).
fn located(at: &str, e: BlockError) -> BlockError {
    match e {
        BlockError::Io { ref context, .. } if context.contains(at) => e,
        e => BlockError::In { block: at.to_string(), source: Box::new(e) },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use arrow_array::cast::AsArray;

    use super::*;
    use crate::block::{complete, write_chunk, ChunkReader};
    use crate::model::TraceId;
    use crate::otlp::scan;
    use crate::testdata;

    /// A complete block of the spans of `requests` (OTLP bodies) in `root/blocks/<id>`.
    fn block(root: &Path, requests: &[Vec<u8>], cfg: &BlockConfig) -> Arc<BlockReader> {
        let reqs: Vec<Arc<_>> =
            requests.iter().map(|b| Arc::new(scan(Arc::from(b.as_slice())).unwrap())).collect();
        let mut traces = crate::columnar::traces_of(&reqs);
        traces.sort_unstable_by_key(|t| t.trace_id);
        let id = new_block_id();
        std::fs::create_dir_all(root.join("chunks")).unwrap();
        let path = root.join("chunks").join(format!("{id}.arrow"));
        write_chunk(&path, &traces, cfg).unwrap();
        let chunk = ChunkReader::open(&path).unwrap();
        let dir = root.join("blocks").join(&id);
        complete(&[&chunk], &dir, "t", &id, cfg).unwrap();
        Arc::new(BlockReader::open(&dir).unwrap())
    }

    /// `n` generated requests of at least `spans` spans each.
    fn requests(seed: u64, n: u64, spans: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| testdata::request(seed * 1000 + i, spans).0).collect()
    }

    /// (trace id, span id, kind) of every row of the blocks in `dir`'s subdirectories.
    fn spans_in(blocks: &[BlockMeta], root: &Path) -> Vec<(TraceId, [u8; 8], i32)> {
        let mut out = Vec::new();
        for m in blocks {
            let r = BlockReader::open(&root.join(&m.block_id)).unwrap();
            for b in r.batches(1000).unwrap() {
                let b = b.unwrap();
                let ids = b.column(0).as_fixed_size_binary();
                let spans = b.column_by_name(crate::schema::SPAN_ID).unwrap();
                let spans = spans.as_fixed_size_binary();
                let kinds = b.column_by_name(crate::schema::KIND).unwrap();
                let kinds = kinds.as_primitive::<arrow_array::types::Int32Type>();
                for i in 0..b.num_rows() {
                    out.push((
                        ids.value(i).try_into().unwrap(),
                        spans.value(i).try_into().unwrap(),
                        kinds.value(i),
                    ));
                }
            }
        }
        out
    }

    fn small_cfg() -> BlockConfig {
        BlockConfig { row_group_rows: 300, chunk_batch_rows: 64, ..BlockConfig::default() }
    }

    #[test]
    fn merges_blocks_keeping_every_span_once() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = small_cfg();
        let a = requests(1, 8, 20);
        let b = requests(2, 8, 20);
        // The third block repeats half of the first: those spans arrived twice.
        let c: Vec<Vec<u8>> = a.iter().step_by(2).cloned().collect();
        let inputs = [&a, &b, &c].map(|r| block(tmp.path(), r, &cfg));
        let expected: BTreeSet<_> = spans_in(
            &inputs.iter().map(|b| b.meta().clone()).collect::<Vec<_>>(),
            &tmp.path().join("blocks"),
        )
        .into_iter()
        .collect();
        let out_root = tmp.path().join("out");
        let limits = CompactLimits { max_block_bytes: u64::MAX, max_block_traces: u64::MAX };
        let done = compact(&inputs, &out_root, "t", 1, &cfg, limits).unwrap();
        assert_eq!(done.blocks.len(), 1);
        let got = spans_in(&done.blocks, &out_root);
        assert_eq!(got.len(), expected.len(), "every span exactly once");
        assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), expected);
        // Sorted by trace id; traces of the third block were combined.
        assert!(got.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(done.merge.traces_combined > 0);
        assert_eq!(done.merge.rows_out, expected.len() as u64);
        assert!(done.merge.rows_in > done.merge.rows_out);
        let m = &done.blocks[0];
        assert_eq!(m.compaction_level, 1);
        assert_eq!(m.total_spans, expected.len() as u64);
        let traces: BTreeSet<_> = expected.iter().map(|s| s.0).collect();
        assert_eq!(m.total_objects, traces.len() as u64);
        assert!(done.bytes_read > 0);
        // The output answers lookups like the inputs did.
        let out = BlockReader::open(&out_root.join(&m.block_id)).unwrap();
        for id in traces.iter().take(20) {
            let want: usize =
                inputs.iter().filter_map(|b| b.find_trace(id).unwrap()).map(|b| b.num_rows()).sum();
            let got = out.find_trace(id).unwrap().unwrap().num_rows();
            assert!(got > 0 && got <= want);
        }
    }

    #[test]
    fn splits_outputs_at_the_trace_limit_on_trace_boundaries() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = BlockConfig { row_group_rows: 40, ..small_cfg() };
        let inputs = [1, 2].map(|seed| block(tmp.path(), &requests(seed, 10, 20), &cfg));
        let out_root = tmp.path().join("out");
        let limits = CompactLimits { max_block_bytes: u64::MAX, max_block_traces: 5 };
        let done = compact(&inputs, &out_root, "t", 2, &cfg, limits).unwrap();
        assert!(done.blocks.len() > 1, "{} blocks", done.blocks.len());
        // No trace is split across outputs, and no span is lost.
        let mut owner: BTreeMap<TraceId, String> = BTreeMap::new();
        for m in &done.blocks {
            for (t, _, _) in spans_in(std::slice::from_ref(m), &out_root) {
                let prev = owner.insert(t, m.block_id.clone());
                assert!(prev.is_none_or(|p| p == m.block_id), "trace split across blocks");
            }
        }
        let spans: u64 = done.blocks.iter().map(|m| m.total_spans).sum();
        let input_spans: u64 = inputs.iter().map(|b| b.meta().total_spans).sum();
        assert_eq!(spans, input_spans);
    }

    #[test]
    fn refuses_blocks_of_different_schemas() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = small_cfg();
        let other = BlockConfig { dedicated_columns: Vec::new(), ..small_cfg() };
        let a = block(tmp.path(), &requests(1, 2, 5), &cfg);
        let b = block(tmp.path(), &requests(2, 2, 5), &other);
        let limits = CompactLimits { max_block_bytes: u64::MAX, max_block_traces: u64::MAX };
        let err = compact(&[a, b], &tmp.path().join("out"), "t", 1, &cfg, limits).unwrap_err();
        assert!(err.to_string().contains("another schema"), "{err}");
    }
}
