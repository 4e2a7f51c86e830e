//! A streaming k-way merge of sorted sources (a head's chunks, or the blocks a
//! compaction combines) into row groups.
//!
//! The merge walks the sources' current batches by trace id and records the
//! output as runs `(source batch, rows)`; a row group is materialised from its
//! runs in one pass per column (`MutableArrayData::extend` per run) once it has
//! `row_group_rows` rows and ends on a trace boundary. A trace found in several
//! sources is combined first (rows re-sorted, duplicate spans dropped, trace-level
//! columns recomputed) and becomes a source of its own.
//!
//! Memory is bounded by `sources × batch rows` plus one row group, never by the
//! size of the input.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::{make_array, Array, ArrayRef, RecordBatch};
use arrow_data::transform::MutableArrayData;
use arrow_schema::SchemaRef;

use super::chunk::ChunkReader;
use super::writer::BlockWriter;
use super::{BlockConfig, BlockError, BlockMeta};
use crate::columnar;

/// A sorted source: batches of rows in trace-id order.
pub(crate) type Batches = Box<dyn Iterator<Item = Result<RecordBatch, BlockError>> + Send>;

/// What a merge read and wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MergeStats {
    /// Rows (spans) read from the sources.
    pub rows_in: u64,
    /// Rows written (fewer when duplicate spans were dropped).
    pub rows_out: u64,
    /// Traces found in more than one source, combined into one.
    pub traces_combined: u64,
}

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
    fn current(
        &mut self,
        sources: &mut Vec<RecordBatch>,
        rows_in: &mut u64,
    ) -> Result<Option<u128>, BlockError> {
        loop {
            if let Some(b) = &self.batch {
                if self.pos < b.num_rows() {
                    return Ok(Some(key(b, self.pos)));
                }
            }
            match self.reader.next() {
                Some(b) => {
                    let b = b?;
                    *rows_in += b.num_rows() as u64;
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
    let sources = chunks
        .iter()
        .map(|c| Ok(Box::new(c.batches()?.map(|b| b.map_err(BlockError::from))) as Batches))
        .collect::<Result<Vec<_>, BlockError>>()?;
    let mut w = BlockWriter::create(dir, schema.clone(), cfg)?;
    merge(sources, &schema, cfg.row_group_rows, |rows| w.write_row_group(&rows))?;
    w.finish(tenant, block_id, 0)
}

/// Merges `sources` (each sorted by trace id, all of `schema`) and hands each row
/// group — at least `row_group_rows` rows unless it is the last, ending on a trace
/// boundary — to `emit`, in order.
pub(crate) fn merge(
    sources: Vec<Batches>,
    schema: &SchemaRef,
    row_group_rows: usize,
    mut emit: impl FnMut(RecordBatch) -> Result<(), BlockError>,
) -> Result<MergeStats, BlockError> {
    let mut stats = MergeStats::default();
    let mut cursors: Vec<Cursor> =
        sources.into_iter().map(|reader| Cursor { reader, batch: None, slot: 0, pos: 0 }).collect();
    let mut p = Pending {
        schema: schema.clone(),
        sources: Vec::new(),
        runs: Vec::new(),
        rows: 0,
        last: None,
    };
    let mut emit = |batch: RecordBatch, stats: &mut MergeStats| {
        stats.rows_out += batch.num_rows() as u64;
        emit(batch)
    };
    let mut heads: Vec<Option<u128>> = vec![None; cursors.len()];
    loop {
        for (c, h) in cursors.iter_mut().zip(heads.iter_mut()) {
            *h = c.current(&mut p.sources, &mut stats.rows_in)?;
        }
        let min = heads.iter().flatten().min().copied();
        // A row group ends once it is full and the next row starts another trace.
        if p.rows >= row_group_rows && min != p.last {
            emit(p.take(&mut cursors)?, &mut stats)?;
        }
        let Some(min) = min else { break };
        let mut holders = (0..cursors.len()).filter(|&i| heads[i] == Some(min));
        let only = holders.next().expect("the minimum has a holder");
        if holders.next().is_none() {
            // Copy a run no other source interleaves with.
            let bound =
                heads.iter().enumerate().filter(|&(i, _)| i != only).filter_map(|(_, h)| *h).min();
            let run = cursors[only].take_below(bound);
            p.add(run);
            continue;
        }
        // The trace is in several sources: gather all its rows and combine them.
        stats.traces_combined += 1;
        let mut parts = Vec::new();
        for i in (0..cursors.len()).filter(|&i| heads[i] == Some(min)) {
            let c = &mut cursors[i];
            while c.current(&mut p.sources, &mut stats.rows_in)? == Some(min) {
                let (slot, start, end) = c.take_below(min.checked_add(1));
                parts.push(p.sources[slot].slice(start, end - start));
            }
        }
        let rows = arrow_select::concat::concat_batches(schema, &parts)?;
        let combined = columnar::rederive(&rows)?;
        let n = combined.num_rows();
        p.sources.push(combined);
        p.add((p.sources.len() - 1, 0, n));
    }
    if p.rows > 0 {
        emit(p.take(&mut cursors)?, &mut stats)?;
    }
    Ok(stats)
}
