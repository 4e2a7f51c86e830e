//! Head chunks: sorted runs of cut traces as Arrow IPC files.
//!
//! A chunk is written once per cut and read once when its head is completed,
//! so it is kept in Arrow's own layout (no encoding, no compression: writing is
//! a copy and reading is a copy back). Record batches hold at most
//! `chunk_batch_rows` spans so a merge holds one small batch per chunk; the
//! trace-id range of every batch is in the file footer, so a lookup reads only
//! the batches that may hold the trace.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::FileWriter;
use arrow_schema::{ArrowError, SchemaRef};
use base64::Engine as _;

use super::reader::rows_of;
use super::writer::trace_id_at;
use super::{io_err, sync_dir, BlockConfig, BlockError, RowGroupRange, TraceIndex};
use crate::columnar::{build_batch, TraceSpans};
use crate::model::TraceId;

/// Footer metadata key holding the base64 [`TraceIndex`] of the chunk's batches.
const RANGES_KEY: &str = "tempo_fast.batch_ranges";

/// Builds and writes cut traces, sorted by trace id, as one chunk (rows sorted by
/// trace id, then start): a temporary file, fsync, rename, so a chunk on disk is
/// always whole. Returns its size.
pub fn write_chunk(
    path: &Path,
    traces: &[TraceSpans],
    cfg: &BlockConfig,
) -> Result<u64, BlockError> {
    if !traces.is_sorted_by_key(|t| t.trace_id) {
        return Err(BlockError::Corrupt("chunk traces must be sorted by trace id".into()));
    }
    let tmp = path.with_extension("arrow.tmp");
    let ctx = || format!("writing head chunk {}", path.display());
    let file = File::create(&tmp).map_err(io_err(ctx()))?;
    let mut writer: Option<FileWriter<BufWriter<File>>> = None;
    let mut index = TraceIndex::default();
    let mut file = Some(file);
    let mut start = 0;
    while start < traces.len() {
        // Whole traces, up to `chunk_batch_rows` spans (a bigger trace goes alone).
        let mut end = start;
        let mut rows = 0;
        while end < traces.len()
            && (end == start || rows + traces[end].spans.len() <= cfg.chunk_batch_rows)
        {
            rows += traces[end].spans.len();
            end += 1;
        }
        let batch = build_batch(&traces[start..end], &cfg.dedicated_columns)?;
        start = end;
        if batch.num_rows() == 0 {
            continue;
        }
        if writer.is_none() {
            let f = BufWriter::with_capacity(1 << 20, file.take().expect("file is taken once"));
            writer = Some(FileWriter::try_new(f, &batch.schema())?);
        }
        index.groups.push(RowGroupRange {
            min: trace_id_at(&batch, 0),
            max: trace_id_at(&batch, batch.num_rows() - 1),
            rows: batch.num_rows() as u32,
        });
        writer.as_mut().expect("writer exists").write(&batch)?;
    }
    let Some(mut w) = writer else {
        let _ = fs::remove_file(&tmp);
        return Ok(0);
    };
    w.write_metadata(RANGES_KEY, base64::engine::general_purpose::STANDARD.encode(index.encode()));
    w.finish()?;
    let file = w.into_inner()?.into_inner().map_err(|e| io_err(ctx())(e.into_error()))?;
    file.sync_all().map_err(io_err(ctx()))?;
    let size = file.metadata().map_err(io_err(ctx()))?.len();
    fs::rename(&tmp, path).map_err(io_err(ctx()))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir).map_err(io_err(ctx()))?;
    }
    Ok(size)
}

/// A head chunk on disk: its schema and per-batch trace-id ranges in memory.
pub struct ChunkReader {
    path: PathBuf,
    size: u64,
    schema: SchemaRef,
    index: TraceIndex,
}

impl ChunkReader {
    pub fn open(path: &Path) -> Result<ChunkReader, BlockError> {
        let reader = Self::reader(path)?;
        let corrupt = |why: &str| BlockError::Corrupt(format!("{}: {why}", path.display()));
        let ranges =
            reader.custom_metadata().get(RANGES_KEY).ok_or_else(|| corrupt("no batch ranges"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(ranges)
            .map_err(|_| corrupt("bad batch ranges"))?;
        let index = TraceIndex::decode(&bytes).map_err(|e| corrupt(&e))?;
        if index.groups.len() != reader.num_batches() {
            return Err(corrupt("batch ranges do not match the batches"));
        }
        let size = fs::metadata(path).map_err(io_err(format!("reading {}", path.display())))?.len();
        Ok(ChunkReader { path: path.to_path_buf(), size, schema: reader.schema(), index })
    }

    fn reader(path: &Path) -> Result<FileReader<BufReader<File>>, BlockError> {
        let file = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
        Ok(FileReader::try_new_buffered(file, None)?)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn rows(&self) -> u64 {
        self.index.groups.iter().map(|g| g.rows as u64).sum()
    }

    /// The rows of `id` in this chunk, reading only the batches that may hold it.
    pub fn find_trace(&self, id: &TraceId) -> Result<Option<RecordBatch>, BlockError> {
        let batches = self.index.candidates(id);
        if batches.is_empty() {
            return Ok(None);
        }
        let mut reader = Self::reader(&self.path)?;
        let mut parts = Vec::new();
        for i in batches {
            reader.set_index(i)?;
            if let Some(batch) = reader.next() {
                parts.extend(rows_of(&batch?, id));
            }
        }
        super::reader::concat(&self.schema, parts)
    }

    /// Every row, in order, one batch (at most `chunk_batch_rows`) at a time.
    pub fn batches(
        &self,
    ) -> Result<impl Iterator<Item = Result<RecordBatch, ArrowError>> + Send, BlockError> {
        Self::reader(&self.path)
    }
}
