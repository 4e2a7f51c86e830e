//! Completing a head: a streaming k-way merge of sorted chunks into one block.
//!
//! The merge walks the chunks' current batches by trace id and records the
//! output as runs `(source batch, rows)`; a row group is materialised from its
//! runs in one pass per column (`MutableArrayData::extend` per run) once it has
//! `row_group_rows` rows and ends on a trace boundary. A trace found in several
//! chunks is combined first (rows re-sorted, duplicate spans dropped, trace-level
//! columns recomputed) and becomes a source of its own.
//!
//! Memory is bounded by `chunks × chunk_batch_rows` plus one row group, never by
//! the size of the head.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::{make_array, Array, ArrayRef, RecordBatch};
use arrow_data::transform::MutableArrayData;
use arrow_schema::{ArrowError, SchemaRef};

use super::chunk::ChunkReader;
use super::writer::BlockWriter;
use super::{BlockConfig, BlockError, BlockMeta};
use crate::columnar;

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// Trace ids compare as big-endian integers (the same order as the bytes).
fn key(batch: &RecordBatch, row: usize) -> u128 {
    let b: [u8; 16] =
        batch.column(0).as_fixed_size_binary().value(row).try_into().expect("16-byte ids");
    u128::from_be_bytes(b)
}

struct Cursor {
    reader: Batches,
    batch: Option<RecordBatch>,
    /// Index of `batch` in the merge's sources.
    slot: usize,
    pos: usize,
}

impl Cursor {
    /// Moves to the next batch when the current one is used up; the new batch
    /// becomes a source. Returns the trace id under the cursor.
    fn current(&mut self, sources: &mut Vec<RecordBatch>) -> Result<Option<u128>, BlockError> {
        loop {
            if let Some(b) = &self.batch {
                if self.pos < b.num_rows() {
                    return Ok(Some(key(b, self.pos)));
                }
            }
            match self.reader.next() {
                Some(b) => {
                    let b = b?;
                    sources.push(b.clone());
                    self.slot = sources.len() - 1;
                    self.batch = Some(b);
                    self.pos = 0;
                }
                None => {
                    self.batch = None;
                    return Ok(None);
                }
            }
        }
    }

    /// Rows from the cursor while their trace id is below `bound` (to the batch
    /// end when None), as a run `(slot, start, end)`.
    fn take_below(&mut self, bound: Option<u128>) -> (usize, usize, usize) {
        let b = self.batch.as_ref().expect("current() loaded a batch");
        let n = b.num_rows();
        let start = self.pos;
        let mut end = n;
        if let Some(bound) = bound {
            let (mut lo, mut hi) = (start, n);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if key(b, mid) < bound {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            end = lo;
        }
        self.pos = end;
        (self.slot, start, end)
    }
}

/// Output rows waiting to become a row group, as runs over source batches.
struct Pending {
    schema: SchemaRef,
    sources: Vec<RecordBatch>,
    runs: Vec<(usize, usize, usize)>,
    rows: usize,
    last: Option<u128>,
}

impl Pending {
    fn add(&mut self, run: (usize, usize, usize)) {
        let (slot, start, end) = run;
        if end > start {
            self.rows += end - start;
            self.last = Some(key(&self.sources[slot], end - 1));
            self.runs.push(run);
        }
    }

    /// Materialises the runs as one batch, then forgets every source but the
    /// cursors' current batches (whose slots are renumbered).
    fn take(&mut self, cursors: &mut [Cursor]) -> Result<RecordBatch, BlockError> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for c in 0..self.schema.fields().len() {
            let data: Vec<_> = self.sources.iter().map(|b| b.column(c).to_data()).collect();
            let mut m = MutableArrayData::new(data.iter().collect(), false, self.rows);
            for &(slot, start, end) in &self.runs {
                m.try_extend(slot, start, end)?;
            }
            columns.push(make_array(m.freeze()));
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        self.runs.clear();
        self.rows = 0;
        self.sources.clear();
        for c in cursors.iter_mut() {
            if let Some(b) = &c.batch {
                self.sources.push(b.clone());
                c.slot = self.sources.len() - 1;
            }
        }
        Ok(batch)
    }
}

/// Merges sorted head chunks into a complete block in `dir` and returns its meta.
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
        .map(|c| {
            Ok(Cursor { reader: Box::new(c.batches()?) as Batches, batch: None, slot: 0, pos: 0 })
        })
        .collect::<Result<Vec<_>, BlockError>>()?;
    let mut w = BlockWriter::create(dir, schema.clone(), cfg)?;
    let mut p = Pending {
        schema: schema.clone(),
        sources: Vec::new(),
        runs: Vec::new(),
        rows: 0,
        last: None,
    };
    let mut heads: Vec<Option<u128>> = vec![None; cursors.len()];
    loop {
        for (c, h) in cursors.iter_mut().zip(heads.iter_mut()) {
            *h = c.current(&mut p.sources)?;
        }
        let min = heads.iter().flatten().min().copied();
        // A row group ends once it is full and the next row starts another trace.
        if p.rows >= cfg.row_group_rows && min != p.last {
            w.write_row_group(&p.take(&mut cursors)?)?;
        }
        let Some(min) = min else { break };
        let mut holders = (0..cursors.len()).filter(|&i| heads[i] == Some(min));
        let only = holders.next().expect("the minimum has a holder");
        if holders.next().is_none() {
            // Copy a run no other chunk interleaves with.
            let bound =
                heads.iter().enumerate().filter(|&(i, _)| i != only).filter_map(|(_, h)| *h).min();
            let run = cursors[only].take_below(bound);
            p.add(run);
            continue;
        }
        // The trace is in several chunks: gather all its rows and combine them.
        let mut parts = Vec::new();
        for i in (0..cursors.len()).filter(|&i| heads[i] == Some(min)) {
            let c = &mut cursors[i];
            while c.current(&mut p.sources)? == Some(min) {
                let (slot, start, end) = c.take_below(min.checked_add(1));
                parts.push(p.sources[slot].slice(start, end - start));
            }
        }
        let rows = arrow_select::concat::concat_batches(&schema, &parts)?;
        let combined = columnar::rederive(&rows)?;
        let n = combined.num_rows();
        p.sources.push(combined);
        p.add((p.sources.len() - 1, 0, n));
    }
    if p.rows > 0 {
        w.write_row_group(&p.take(&mut cursors)?)?;
    }
    w.finish(tenant, block_id, 0)
}
