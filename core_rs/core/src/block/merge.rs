//! Completing a head: a streaming k-way merge of sorted chunks into one block.
//!
//! Memory is bounded by `chunks × chunk_batch_rows` plus one row group being written,
//! never by the size of the head.

use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;

use super::chunk::ChunkReader;
use super::writer::{trace_id_at, BlockWriter};
use super::{BlockConfig, BlockError, BlockMeta};
use crate::columnar;
use crate::model::TraceId;

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

struct Cursor {
    reader: Batches,
    batch: Option<RecordBatch>,
    pos: usize,
}

impl Cursor {
    /// The trace id under the cursor, loading the next batch when needed.
    fn current(&mut self) -> Result<Option<TraceId>, BlockError> {
        loop {
            if let Some(b) = &self.batch {
                if self.pos < b.num_rows() {
                    return Ok(Some(trace_id_at(b, self.pos)));
                }
            }
            match self.reader.next() {
                Some(b) => {
                    self.batch = Some(b?);
                    self.pos = 0;
                }
                None => {
                    self.batch = None;
                    return Ok(None);
                }
            }
        }
    }

    /// Takes rows from the cursor while their trace id is below `bound` (all of
    /// the current batch when None), without crossing the batch end.
    fn take_below(&mut self, bound: Option<&TraceId>) -> RecordBatch {
        let b = self.batch.as_ref().expect("current() loaded a batch");
        let n = b.num_rows();
        let mut end = n;
        if let Some(bound) = bound {
            let (mut lo, mut hi) = (self.pos, n);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if trace_id_at(b, mid) < *bound {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            end = lo;
        }
        let rows = b.slice(self.pos, end - self.pos);
        self.pos = end;
        rows
    }
}

/// Merges sorted head chunks into a complete block in `dir` and returns its meta.
/// Traces present in several chunks are combined (rows re-sorted, duplicate
/// spans dropped, trace-level columns recomputed); the rest are copied.
pub fn complete(
    chunks: &[&ChunkReader],
    dir: &Path,
    tenant: &str,
    block_id: &str,
    cfg: &BlockConfig,
) -> Result<BlockMeta, BlockError> {
    let Some(first) = chunks.first() else {
        return Err(BlockError::Corrupt("a block needs at least one chunk".into()));
    };
    let schema = first.schema();
    if let Some(c) = chunks.iter().find(|c| c.schema() != schema) {
        return Err(BlockError::Corrupt(format!(
            "head chunk {} has a different schema (dedicated columns changed?)",
            c.path().display()
        )));
    }
    let mut cursors = chunks
        .iter()
        .map(|c| Ok(Cursor { reader: Box::new(c.batches()?) as Batches, batch: None, pos: 0 }))
        .collect::<Result<Vec<_>, BlockError>>()?;
    let mut w = BlockWriter::create(dir, schema.clone(), cfg)?;
    let mut heads: Vec<Option<TraceId>> = vec![None; cursors.len()];
    loop {
        for (c, h) in cursors.iter_mut().zip(heads.iter_mut()) {
            *h = c.current()?;
        }
        let Some(min) = heads.iter().flatten().min().copied() else { break };
        let holders: Vec<usize> = (0..cursors.len()).filter(|&i| heads[i] == Some(min)).collect();
        if let [only] = holders[..] {
            // Copy a run of rows no other chunk interleaves with.
            let bound = heads.iter().enumerate().filter(|&(i, _)| i != only).filter_map(|(_, h)| *h).min();
            w.push(cursors[only].take_below(bound.as_ref()))?;
            continue;
        }
        // The trace is in several chunks: gather all its rows and combine them.
        let mut parts = Vec::new();
        let next = u128::from_be_bytes(min).checked_add(1).map(u128::to_be_bytes);
        for &i in &holders {
            let c = &mut cursors[i];
            while c.current()? == Some(min) {
                parts.push(c.take_below(next.as_ref()));
            }
        }
        let rows = arrow_select::concat::concat_batches(&schema, &parts)?;
        w.push(columnar::rederive(&rows)?)?;
    }
    w.finish(tenant, block_id, 0)
}
