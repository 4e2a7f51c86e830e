//! Reading complete blocks, counting the bytes each lookup reads.
//!
//! A block's files come from a [`BlockSource`]: a local directory, or an object store
//! the control plane reads by byte range. Either way the reader plans the reads: the
//! bloom filter and index whole, then only the Parquet footer, page index and pages
//! that can hold the trace.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parking_lot::Mutex;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelectionPolicy,
};
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::reader::{ChunkReader as ParquetChunkReader, Length};

use super::{
    bloom_file, io_err, BlockError, BlockMeta, Bloom, TraceIndex, DATA_FILE, INDEX_FILE, META_FILE,
};
use crate::model::TraceId;

/// A bound from column statistics.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatValue {
    Int(i128),
    Bytes(Vec<u8>),
}

/// Bytes and read calls one lookup cost.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadStats {
    pub bytes: u64,
    pub reads: u64,
}

#[derive(Debug, Default)]
struct Counters {
    bytes: AtomicU64,
    reads: AtomicU64,
}

/// Where a block's files are read from.
pub trait BlockSource: Send + Sync {
    /// A whole file (`meta.json`, bloom shards, `index`).
    fn read(&self, name: &str) -> io::Result<Vec<u8>>;
    /// `len` bytes of file `name` from `offset`.
    fn read_range(&self, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Where the block lives, for logs and as its identity in a block list.
    fn describe(&self) -> String;
    /// Whether each read is a request to a remote store: then a lookup fetches whole
    /// row groups up front, in one concurrent [`BlockSource::read_ranges`], instead of
    /// one request per page.
    fn remote(&self) -> bool {
        false
    }
    /// Several ranges of `name` (the remote store fetches them concurrently).
    fn read_ranges(&self, name: &str, ranges: &[(u64, usize)]) -> io::Result<Vec<Vec<u8>>> {
        ranges.iter().map(|&(offset, len)| self.read_range(name, offset, len)).collect()
    }
}

/// A block in a local directory; the data file stays open for positional reads.
pub struct DirSource {
    dir: PathBuf,
    data: Mutex<Option<Arc<File>>>,
}

impl DirSource {
    pub fn new(dir: &Path) -> DirSource {
        DirSource { dir: dir.to_path_buf(), data: Mutex::new(None) }
    }

    fn data(&self) -> io::Result<Arc<File>> {
        let mut g = self.data.lock();
        if let Some(f) = g.as_ref() {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(self.dir.join(DATA_FILE))?);
        *g = Some(f.clone());
        Ok(f)
    }
}

impl BlockSource for DirSource {
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.dir.join(name))
    }

    fn read_range(&self, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        if name == DATA_FILE {
            self.data()?.read_exact_at(&mut buf, offset)?;
        } else {
            File::open(self.dir.join(name))?.read_exact_at(&mut buf, offset)?;
        }
        Ok(buf)
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}

/// The data file for the Parquet reader: ranged reads from the source (or from
/// ranges fetched ahead), counted.
#[derive(Clone)]
struct CountingFile {
    source: Arc<dyn BlockSource>,
    len: u64,
    counters: Arc<Counters>,
    /// Ranges fetched ahead: (offset, bytes).
    ahead: Arc<Mutex<Vec<(u64, Bytes)>>>,
}

impl CountingFile {
    fn new(source: Arc<dyn BlockSource>, len: u64) -> CountingFile {
        CountingFile { source, len, counters: Arc::default(), ahead: Arc::default() }
    }

    /// Fetches `ranges` now, in one call to the source, for the reads that follow.
    fn fetch_ahead(&self, ranges: &[(u64, usize)]) -> io::Result<()> {
        let data = self.source.read_ranges(DATA_FILE, ranges)?;
        let mut ahead = self.ahead.lock();
        for (&(offset, len), bytes) in ranges.iter().zip(data) {
            if bytes.len() != len {
                return Err(io::Error::other(format!(
                    "{}: read {} bytes at {offset}, wanted {len}",
                    self.source.describe(),
                    bytes.len()
                )));
            }
            self.counters.reads.fetch_add(1, Ordering::Relaxed);
            self.counters.bytes.fetch_add(len as u64, Ordering::Relaxed);
            ahead.push((offset, Bytes::from(bytes)));
        }
        Ok(())
    }

    /// `length` bytes at `start` if a range fetched ahead holds them.
    fn fetched(&self, start: u64, length: usize) -> Option<Bytes> {
        let ahead = self.ahead.lock();
        ahead.iter().find_map(|(offset, bytes)| {
            let from = start.checked_sub(*offset)? as usize;
            (from + length <= bytes.len()).then(|| bytes.slice(from..from + length))
        })
    }

    fn stats(&self) -> ReadStats {
        ReadStats {
            bytes: self.counters.bytes.load(Ordering::Relaxed),
            reads: self.counters.reads.load(Ordering::Relaxed),
        }
    }
}

impl Length for CountingFile {
    fn len(&self) -> u64 {
        self.len
    }
}

/// A sequential read from `pos`, fetched in ranges of at most [`READ_CHUNK`] bytes.
struct RangeRead {
    file: CountingFile,
    pos: u64,
}

const READ_CHUNK: usize = 64 << 10;

/// Column chunks of a row group at most this far apart are read from a remote store in
/// one request.
const READ_GAP: u64 = 256 << 10;

impl Read for RangeRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.file.len.saturating_sub(self.pos) as usize;
        let n = buf.len().min(left).min(READ_CHUNK);
        if n == 0 {
            return Ok(0);
        }
        if let Some(data) = self.file.fetched(self.pos, n) {
            buf[..n].copy_from_slice(&data);
            self.pos += n as u64;
            return Ok(n);
        }
        let data = self.file.source.read_range(DATA_FILE, self.pos, n)?;
        buf[..n].copy_from_slice(&data[..n]);
        self.pos += n as u64;
        self.file.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl ParquetChunkReader for CountingFile {
    type T = RangeRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<RangeRead> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        Ok(RangeRead { file: self.clone(), pos: start })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        if let Some(data) = self.fetched(start, length) {
            return Ok(data);
        }
        let buf = self.source.read_range(DATA_FILE, start, length)?;
        if buf.len() != length {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "{}: read {} bytes at {start}, wanted {length}",
                self.source.describe(),
                buf.len()
            )));
        }
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(length as u64, Ordering::Relaxed);
        Ok(Bytes::from(buf))
    }
}

/// The rows of `id` in a batch sorted by trace id (zero-copy slice).
pub(crate) fn rows_of(batch: &RecordBatch, id: &TraceId) -> Option<RecordBatch> {
    let ids = batch.column(0).as_fixed_size_binary();
    let n = batch.num_rows();
    let lo = partition(n, |i| ids.value(i) < &id[..]);
    let hi = partition(n, |i| ids.value(i) <= &id[..]);
    (hi > lo).then(|| batch.slice(lo, hi - lo))
}

fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

pub fn concat(
    schema: &SchemaRef,
    parts: Vec<RecordBatch>,
) -> Result<Option<RecordBatch>, BlockError> {
    match parts.len() {
        0 => Ok(None),
        1 => Ok(parts.into_iter().next()),
        _ => Ok(Some(arrow_select::concat::concat_batches(schema, &parts)?)),
    }
}

fn read_matching(
    file: CountingFile,
    meta: ArrowReaderMetadata,
    row_groups: Vec<usize>,
    selection: Option<RowSelection>,
    id: &TraceId,
) -> Result<Option<RecordBatch>, BlockError> {
    let schema = meta.schema().clone();
    let mut b = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta)
        .with_row_groups(row_groups)
        .with_row_selection_policy(RowSelectionPolicy::Selectors)
        .with_batch_size(8192);
    if let Some(s) = selection {
        b = b.with_row_selection(s);
    }
    let mut parts = Vec::new();
    for batch in b.build()? {
        // Batches read back lack the schema's metadata (the dedicated columns): restore it.
        if let Some(rows) = rows_of(&batch?.with_schema(schema.clone())?, id) {
            parts.push(rows);
        }
    }
    concat(&schema, parts)
}

/// A complete block: meta, bloom filter and index in memory; the Parquet footer
/// and page index loaded on the first lookup that needs them.
pub struct BlockReader {
    source: Arc<dyn BlockSource>,
    meta: BlockMeta,
    bloom: Bloom,
    index: TraceIndex,
    parquet: Mutex<Option<ArrowReaderMetadata>>,
}

impl BlockReader {
    /// Opens the block in local directory `dir`.
    pub fn open(dir: &Path) -> Result<BlockReader, BlockError> {
        BlockReader::open_source(Arc::new(DirSource::new(dir)))
    }

    /// Opens a block from `source`: reads its meta, bloom filter and index whole.
    pub fn open_source(source: Arc<dyn BlockSource>) -> Result<BlockReader, BlockError> {
        let at = source.describe();
        let read = |name: &str| source.read(name).map_err(io_err(format!("reading {at}/{name}")));
        let meta: BlockMeta = serde_json::from_slice(&read(META_FILE)?)
            .map_err(|e| BlockError::Corrupt(format!("{at}: meta.json: {e}")))?;
        let shards = (0..meta.bloom_shards as usize)
            .map(|i| read(&bloom_file(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let bloom =
            Bloom::decode(&shards).map_err(|e| BlockError::Corrupt(format!("{at}: {e}")))?;
        let index = TraceIndex::decode(&read(INDEX_FILE)?)
            .map_err(|e| BlockError::Corrupt(format!("{at}: {e}")))?;
        Ok(BlockReader { source, meta, bloom, index, parquet: Mutex::new(None) })
    }

    /// Where the block lives (its identity in a block list).
    pub fn location(&self) -> String {
        self.source.describe()
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn index(&self) -> &TraceIndex {
        &self.index
    }

    pub fn might_contain(&self, id: &TraceId) -> bool {
        self.bloom.might_contain(id)
    }

    pub fn find_trace(&self, id: &TraceId) -> Result<Option<RecordBatch>, BlockError> {
        Ok(self.find_trace_with_stats(id)?.0)
    }

    /// Loads the Parquet footer and page index now (the block list does this for
    /// new blocks, so the first lookup does not pay for it).
    pub fn warm(&self) -> Result<(), BlockError> {
        self.parquet_meta(&self.data()).map(|_| ())
    }

    fn data(&self) -> CountingFile {
        CountingFile::new(self.source.clone(), self.meta.size)
    }

    fn parquet_meta(&self, file: &CountingFile) -> Result<ArrowReaderMetadata, BlockError> {
        let mut cached = self.parquet.lock();
        if let Some(m) = cached.as_ref() {
            return Ok(m.clone());
        }
        let opts = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let m = ArrowReaderMetadata::load(file, opts)?;
        *cached = Some(m.clone());
        Ok(m)
    }

    /// Row groups in the data file (reads the Parquet footer if not yet loaded).
    pub fn row_groups(&self) -> Result<usize, BlockError> {
        Ok(self.parquet_meta(&self.data())?.metadata().num_row_groups())
    }

    /// Every row of row group `g`, in batches of at most `batch_rows`, carrying the
    /// block's schema metadata. The row group is fetched with one ranged read and held
    /// until the iterator is dropped: memory is bounded by one row group.
    pub fn read_row_group(
        &self,
        g: usize,
        batch_rows: usize,
    ) -> Result<impl Iterator<Item = Result<RecordBatch, BlockError>>, BlockError> {
        let meta = self.parquet_meta(&self.data())?;
        if g >= meta.metadata().num_row_groups() {
            return Err(BlockError::Corrupt(format!(
                "{}: no row group {g}",
                self.source.describe()
            )));
        }
        row_group_batches(&self.source, self.meta.size, &meta, g, batch_rows)
    }

    /// The rows of `id`, reading only the pages that may hold it, and what that read.
    pub fn find_trace_with_stats(
        &self,
        id: &TraceId,
    ) -> Result<(Option<RecordBatch>, ReadStats), BlockError> {
        let groups = self.index.candidates(id);
        if groups.is_empty() {
            return Ok((None, ReadStats::default()));
        }
        let file = self.data();
        let meta = self.parquet_meta(&file)?;
        if self.source.remote() {
            // One request per candidate row group (fetched concurrently) instead of one
            // per page and column.
            let ranges: Vec<(u64, usize)> =
                groups.iter().filter_map(|&g| row_group_range(&meta, g)).collect();
            file.fetch_ahead(&ranges)
                .map_err(io_err(format!("reading {}", self.source.describe())))?;
        }
        let selection = page_selection(&meta, &groups, id);
        let rows = read_matching(file.clone(), meta, groups, selection, id)?;
        Ok((rows, file.stats()))
    }
}

impl BlockReader {
    /// Row groups in the data file and the dedicated columns (loads the footer).
    pub fn dedicated_columns(&self) -> &[crate::schema::DedicatedColumn] {
        &self.meta.dedicated_columns
    }

    /// Row count and `[min trace start, max trace end]` of row group `g`, from the
    /// column statistics (None for the range when the writer left them out).
    pub fn row_group_summary(&self, g: usize) -> Result<(usize, Option<(u64, u64)>), BlockError> {
        let meta = self.parquet_meta(&self.data())?;
        let md = meta.metadata();
        let rg = md.row_group(g);
        let stat = |name: &str, max: bool| -> Option<u64> {
            let i = meta.schema().index_of(name).ok()?;
            let leaf = md.file_metadata().schema_descr().columns().iter().position(|c| {
                c.path().parts().first().map(String::as_str) == Some(meta.schema().field(i).name())
            })?;
            match rg.column(leaf).statistics()? {
                parquet::file::statistics::Statistics::Int64(s) => {
                    (if max { s.max_opt() } else { s.min_opt() }).map(|v| *v as u64)
                }
                _ => None,
            }
        };
        let range =
            match (stat(crate::schema::TRACE_START, false), stat(crate::schema::TRACE_END, true)) {
                (Some(lo), Some(hi)) => Some((lo, hi)),
                _ => None,
            };
        Ok((rg.num_rows() as usize, range))
    }

    /// Minimum and maximum of flat top-level column `name` in row group `g`, from its
    /// statistics (None without them). Integers of every width come as `Int`; strings as
    /// `Bytes` (a truncated minimum is a prefix of the true one, a truncated maximum is
    /// above the true one, so both still bound the values).
    pub fn column_range(
        &self,
        g: usize,
        name: &str,
    ) -> Result<Option<(StatValue, StatValue)>, BlockError> {
        use parquet::file::statistics::Statistics as S;
        let meta = self.parquet_meta(&self.data())?;
        let md = meta.metadata();
        if g >= md.num_row_groups() {
            return Ok(None);
        }
        let descr = md.file_metadata().schema_descr();
        let Some(leaf) =
            descr.columns().iter().position(|c| c.path().parts() == [name.to_string()])
        else {
            return Ok(None);
        };
        let unsigned = meta.schema().field_with_name(name).is_ok_and(|f| {
            matches!(f.data_type(), arrow_schema::DataType::UInt64 | arrow_schema::DataType::UInt32)
        });
        Ok(match md.row_group(g).column(leaf).statistics() {
            Some(S::Int32(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(a), Some(b)) if unsigned => {
                    Some((StatValue::Int(*a as u32 as i128), StatValue::Int(*b as u32 as i128)))
                }
                (Some(a), Some(b)) => {
                    Some((StatValue::Int(*a as i128), StatValue::Int(*b as i128)))
                }
                _ => None,
            },
            Some(S::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(a), Some(b)) if unsigned => {
                    Some((StatValue::Int(*a as u64 as i128), StatValue::Int(*b as u64 as i128)))
                }
                (Some(a), Some(b)) => {
                    Some((StatValue::Int(*a as i128), StatValue::Int(*b as i128)))
                }
                _ => None,
            },
            Some(S::ByteArray(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(a), Some(b)) => {
                    Some((StatValue::Bytes(a.data().to_vec()), StatValue::Bytes(b.data().to_vec())))
                }
                _ => None,
            },
            _ => None,
        })
    }

    /// Nulls of each flat top-level column of row group `g` with statistics, by name.
    pub fn null_counts(&self, g: usize) -> Result<HashMap<String, u64>, BlockError> {
        let meta = self.parquet_meta(&self.data())?;
        let md = meta.metadata();
        if g >= md.num_row_groups() {
            return Err(BlockError::Corrupt(format!(
                "{}: no row group {g}",
                self.source.describe()
            )));
        }
        let rg = md.row_group(g);
        let descr = md.file_metadata().schema_descr();
        let mut out = HashMap::new();
        for (leaf, c) in descr.columns().iter().enumerate() {
            if let [name] = c.path().parts() {
                if let Some(n) = rg.column(leaf).statistics().and_then(|s| s.null_count_opt()) {
                    out.insert(name.clone(), n);
                }
            }
        }
        Ok(out)
    }

    /// Whether attribute name `key` may occur in attribute-list column `list` of row group
    /// `g`: false only when the row group's key bloom filter says it does not (blocks
    /// written without one always answer true).
    pub fn key_may_exist(&self, g: usize, list: &str, key: &str) -> Result<bool, BlockError> {
        let file = self.data();
        let meta = self.parquet_meta(&file)?;
        let md = meta.metadata();
        if g >= md.num_row_groups() {
            return Ok(true);
        }
        let path = super::writer::key_path(list);
        let descr = md.file_metadata().schema_descr();
        let Some(leaf) = descr.columns().iter().position(|c| c.path() == &path) else {
            return Ok(true);
        };
        let chunk = md.row_group(g).column(leaf);
        if chunk.bloom_filter_offset().is_none() {
            return Ok(true);
        }
        let key_bytes: &[u8] = key.as_bytes();
        match parquet::bloom_filter::Sbbf::read_from_column_chunk(chunk, &file)? {
            Some(bloom) => Ok(bloom.check(key_bytes)),
            None => Ok(true),
        }
    }

    /// Row group `g` as one batch holding only `columns` (top-level names; unknown names
    /// are ignored). Only those columns' chunks are fetched, in one call to the source.
    /// Returns the batch and the bytes read.
    pub fn read_columns(
        &self,
        g: usize,
        columns: &[String],
    ) -> Result<(RecordBatch, u64), BlockError> {
        let file = self.data();
        let meta = self.parquet_meta(&file)?;
        let md = meta.metadata();
        if g >= md.num_row_groups() {
            return Err(BlockError::Corrupt(format!(
                "{}: no row group {g}",
                self.source.describe()
            )));
        }
        let schema = meta.schema();
        // In file order: the reader yields the projected columns in schema order.
        let mut roots: Vec<usize> =
            columns.iter().filter_map(|c| schema.index_of(c).ok()).collect();
        roots.sort_unstable();
        roots.dedup();
        let descr = md.file_metadata().schema_descr();
        let rg = md.row_group(g);
        let mut ranges: Vec<(u64, usize)> = (0..rg.num_columns())
            .filter(|&leaf| roots.contains(&descr.get_column_root_idx(leaf)))
            .map(|leaf| {
                let (start, len) = rg.column(leaf).byte_range();
                (start, len as usize)
            })
            .collect();
        ranges.sort_unstable();
        // Chunks closer than READ_GAP are fetched as one range: a remote store answers a
        // few larger requests faster than many small ones.
        let gap = if self.source.remote() { READ_GAP } else { 0 };
        let mut merged: Vec<(u64, usize)> = Vec::with_capacity(ranges.len());
        for (start, len) in ranges {
            match merged.last_mut() {
                Some((s, l)) if start <= *s + *l as u64 + gap => {
                    *l = (start + len as u64 - *s) as usize;
                }
                _ => merged.push((start, len)),
            }
        }
        file.fetch_ahead(&merged).map_err(io_err(format!("reading {}", self.source.describe())))?;
        let mask = parquet::arrow::ProjectionMask::roots(descr, roots.iter().copied());
        let projected = Arc::new(schema.project(&roots)?);
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file.clone(), meta.clone())
            .with_row_groups(vec![g])
            .with_projection(mask)
            .with_batch_size(rg.num_rows().max(1) as usize)
            .build()?;
        let mut parts = Vec::new();
        for b in reader {
            parts.push(b?.with_schema(projected.clone())?);
        }
        let batch =
            concat(&projected, parts)?.unwrap_or_else(|| RecordBatch::new_empty(projected.clone()));
        Ok((batch, file.stats().bytes))
    }

    /// Every row of the block in order, `batch_rows` at a time, reading one row group at
    /// a time (a remote source fetches each row group whole, in one request): what a
    /// merge holds per block is one row group, never the block.
    pub fn batches(&self, batch_rows: usize) -> Result<BlockBatches, BlockError> {
        // Without the page index (it would be held for the whole block): each row group is
        // fetched whole, in one read, so pages are served from memory.
        let meta = match self.parquet.lock().as_ref() {
            Some(m) => m.clone(),
            None => ArrowReaderMetadata::load(
                &self.data(),
                ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Skip),
            )?,
        };
        Ok(BlockBatches {
            source: self.source.clone(),
            size: self.meta.size,
            groups: meta.metadata().num_row_groups(),
            meta,
            next_group: 0,
            batch_rows: batch_rows.max(1),
            current: None,
            bytes_read: Arc::default(),
        })
    }
}

/// The rows of a block in order; see [`BlockReader::batches`].
pub struct BlockBatches {
    source: Arc<dyn BlockSource>,
    size: u64,
    meta: ArrowReaderMetadata,
    groups: usize,
    next_group: usize,
    batch_rows: usize,
    current: Option<RowGroupBatches>,
    bytes_read: Arc<AtomicU64>,
}

impl BlockBatches {
    /// The schema of the batches (with the block's dedicated-column metadata).
    pub fn schema(&self) -> SchemaRef {
        self.meta.schema().clone()
    }

    /// A counter of the data bytes read so far (shared: it goes on counting).
    pub fn bytes_read(&self) -> Arc<AtomicU64> {
        self.bytes_read.clone()
    }

    /// Opens a reader over the next row group.
    fn open_next(&mut self) -> Result<bool, BlockError> {
        if self.next_group >= self.groups {
            return Ok(false);
        }
        let g = self.next_group;
        self.next_group += 1;
        let bytes = row_group_range(&self.meta, g).map_or(0, |r| r.1 as u64);
        self.current =
            Some(row_group_batches(&self.source, self.size, &self.meta, g, self.batch_rows)?);
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        Ok(true)
    }
}

impl Iterator for BlockBatches {
    type Item = Result<RecordBatch, BlockError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.current.as_mut() {
                match r.next() {
                    Some(b) => return Some(b),
                    None => self.current = None,
                }
            }
            match self.open_next() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.next_group = self.groups;
                    return Some(Err(e));
                }
            }
        }
    }
}

type RowGroupBatches = Box<dyn Iterator<Item = Result<RecordBatch, BlockError>> + Send>;

/// The rows of row group `g`, `batch_rows` at a time, the row group fetched in one read;
/// the batches carry the block's schema metadata (Parquet leaves it out of them).
fn row_group_batches(
    source: &Arc<dyn BlockSource>,
    size: u64,
    meta: &ArrowReaderMetadata,
    g: usize,
    batch_rows: usize,
) -> Result<RowGroupBatches, BlockError> {
    let file = CountingFile::new(source.clone(), size);
    if let Some(range) = row_group_range(meta, g) {
        file.fetch_ahead(&[range]).map_err(io_err(format!("reading {}", source.describe())))?;
    }
    let schema = meta.schema().clone();
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
        .with_row_groups(vec![g])
        .with_batch_size(batch_rows)
        .build()?;
    Ok(Box::new(reader.map(move |b| Ok(b?.with_schema(schema.clone())?))))
}

/// The byte range of row group `g`'s column chunks in the data file (None if empty).
fn row_group_range(meta: &ArrowReaderMetadata, g: usize) -> Option<(u64, usize)> {
    let (lo, hi) = meta
        .metadata()
        .row_group(g)
        .columns()
        .iter()
        .map(|c| c.byte_range())
        .fold((u64::MAX, 0), |(lo, hi), (start, len)| (lo.min(start), hi.max(start + len)));
    (lo < hi).then(|| (lo, (hi - lo) as usize))
}

/// Rows of the selected row groups whose trace-id pages may hold `id`, from the
/// page index (None when there is none: read the row groups whole).
fn page_selection(
    meta: &ArrowReaderMetadata,
    groups: &[usize],
    id: &TraceId,
) -> Option<RowSelection> {
    let md = meta.metadata();
    let mut ranges = Vec::new();
    let mut base = 0usize;
    for &g in groups {
        let rows = md.row_group(g).num_rows() as usize;
        let pages = md.page_index_for_row_group(g);
        let (Some(ColumnIndexMetaData::FIXED_LEN_BYTE_ARRAY(ci)), Some(oi)) =
            (pages.column_index(0), pages.offset_index(0))
        else {
            return None;
        };
        let locs = oi.page_locations();
        for (p, loc) in locs.iter().enumerate() {
            let fits = match (ci.min_value(p), ci.max_value(p)) {
                (Some(lo), Some(hi)) => lo <= &id[..] && &id[..] <= hi,
                _ => true,
            };
            if fits {
                let start = loc.first_row_index as usize;
                let end = locs.get(p + 1).map_or(rows, |n| n.first_row_index as usize);
                ranges.push(base + start..base + end);
            }
        }
        base += rows;
    }
    Some(RowSelection::from_consecutive_ranges(ranges.into_iter(), base))
}
