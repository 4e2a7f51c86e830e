//! Writing head chunks and complete blocks.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{
    bloom_file, io_err, sync_dir, write_atomic, BlockCompression, BlockConfig, BlockError,
    BlockMeta, Bloom, RowGroupRange, TraceIndex, DATA_FILE, INDEX_FILE, META_FILE,
};
use crate::model::TraceId;
use crate::schema;

/// Distinct attribute names a row group's key bloom filter is sized for (~4.8 KiB each).
const KEY_BLOOM_NDV: u64 = 4096;
const KEY_BLOOM_FPP: f64 = 0.01;

/// The Parquet path of the key leaf of attribute-list column `list`.
pub fn key_path(list: &str) -> ColumnPath {
    ColumnPath::new(vec![list.into(), "list".into(), "item".into(), schema::ATTR_KEY.into()])
}

/// Parquet writer settings of complete blocks (row groups are ended by the writer).
fn properties(cfg: &BlockConfig) -> Result<WriterProperties, BlockError> {
    let start_leaf = 6; // trace_id, span_id, parent_span_id, trace_state, name, kind, start
    Ok(WriterProperties::builder()
        .set_compression(match cfg.compression {
            BlockCompression::Lz4Raw => Compression::LZ4_RAW,
            BlockCompression::Snappy => Compression::SNAPPY,
            BlockCompression::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level)?),
            BlockCompression::None => Compression::UNCOMPRESSED,
        })
        .set_max_row_group_row_count(None)
        .set_data_page_row_count_limit(cfg.page_rows)
        .set_write_batch_size(cfg.page_rows)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_dictionary_enabled(ColumnPath::from(schema::SPAN_ID), false)
        // Attribute names get a bloom filter per row group, so a search for an attribute
        // no span of a row group has skips the row group without reading it.
        .set_column_bloom_filter_enabled(key_path(schema::ATTRS), true)
        .set_column_bloom_filter_max_ndv(key_path(schema::ATTRS), KEY_BLOOM_NDV)
        .set_column_bloom_filter_fpp(key_path(schema::ATTRS), KEY_BLOOM_FPP)
        .set_column_bloom_filter_enabled(key_path(schema::RESOURCE_ATTRS), true)
        .set_column_bloom_filter_max_ndv(key_path(schema::RESOURCE_ATTRS), KEY_BLOOM_NDV)
        .set_column_bloom_filter_fpp(key_path(schema::RESOURCE_ATTRS), KEY_BLOOM_FPP)
        .set_column_dictionary_enabled(ColumnPath::from(schema::PARENT_SPAN_ID), false)
        .set_sorting_columns(Some(vec![
            SortingColumn { column_idx: 0, descending: false, nulls_first: false },
            SortingColumn { column_idx: start_leaf, descending: false, nulls_first: false },
        ]))
        .set_created_by(format!("tempo-fast {}", env!("CARGO_PKG_VERSION")))
        .build())
}

pub(crate) fn trace_id_at(batch: &RecordBatch, row: usize) -> TraceId {
    batch.column(0).as_fixed_size_binary().value(row).try_into().expect("trace ids are 16 bytes")
}

/// Writes a complete block row group by row group.
pub(crate) struct BlockWriter {
    dir: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    cfg: BlockConfig,
    index: TraceIndex,
    trace_ids: Vec<TraceId>,
    spans: u64,
    start: u64,
    end: u64,
}

impl BlockWriter {
    /// Starts a block in `dir`, replacing whatever an earlier attempt left there.
    pub(crate) fn create(
        dir: &Path,
        schema: SchemaRef,
        cfg: &BlockConfig,
    ) -> Result<Self, BlockError> {
        let ctx = || format!("creating block {}", dir.display());
        let _ = fs::remove_file(dir.join(META_FILE));
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(io_err(ctx()))?;
        }
        fs::create_dir_all(dir).map_err(io_err(ctx()))?;
        let tmp = dir.join(format!("{DATA_FILE}.tmp"));
        let file = File::create(&tmp).map_err(io_err(ctx()))?;
        let props = properties(cfg)?;
        Ok(BlockWriter {
            dir: dir.to_path_buf(),
            tmp,
            writer: ArrowWriter::try_new(file, schema.clone(), Some(props))?,
            schema,
            cfg: cfg.clone(),
            index: TraceIndex::default(),
            trace_ids: Vec::new(),
            spans: 0,
            start: u64::MAX,
            end: 0,
        })
    }

    /// Writes one row group (sorted rows that end on a trace boundary).
    pub(crate) fn write_row_group(&mut self, batch: &RecordBatch) -> Result<(), BlockError> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let ids = batch.column(0).as_fixed_size_binary();
        let starts =
            batch.column_by_name(schema::START).expect("schema").as_primitive::<UInt64Type>();
        let durs =
            batch.column_by_name(schema::DURATION).expect("schema").as_primitive::<UInt64Type>();
        for i in 0..n {
            if i == 0 || ids.value(i) != ids.value(i - 1) {
                let id: TraceId = ids.value(i).try_into().expect("trace ids are 16 bytes");
                if self.trace_ids.last() != Some(&id) {
                    self.trace_ids.push(id);
                }
            }
            self.start = self.start.min(starts.value(i));
            self.end = self.end.max(starts.value(i).saturating_add(durs.value(i)));
        }
        self.index.groups.push(RowGroupRange {
            min: trace_id_at(batch, 0),
            max: trace_id_at(batch, n - 1),
            rows: n as u32,
        });
        self.spans += n as u64;
        self.writer.write(batch)?;
        self.writer.flush()?;
        Ok(())
    }

    /// Data bytes and traces written so far.
    pub(crate) fn written(&self) -> (u64, u64) {
        (self.writer.bytes_written() as u64, self.trace_ids.len() as u64)
    }

    /// Writes the data file, bloom shards, index and finally `meta.json`.
    pub(crate) fn finish(
        self,
        tenant: &str,
        block_id: &str,
        level: u32,
    ) -> Result<BlockMeta, BlockError> {
        let ctx = || format!("writing block {}", self.dir.display());
        let file = self.writer.into_inner()?;
        file.sync_all().map_err(io_err(ctx()))?;
        let size = file.metadata().map_err(io_err(ctx()))?.len();
        drop(file);
        let data = self.dir.join(DATA_FILE);
        fs::rename(&self.tmp, &data).map_err(io_err(ctx()))?;
        let footer_size = read_footer_len(&data).map_err(io_err(ctx()))?;
        let bloom = Bloom::build(&self.trace_ids, self.cfg.bloom_fp, self.cfg.bloom_shard_traces);
        for i in 0..bloom.shards() {
            write_atomic(&self.dir.join(bloom_file(i)), &bloom.encode_shard(i))?;
        }
        write_atomic(&self.dir.join(INDEX_FILE), &self.index.encode())?;
        let meta = BlockMeta {
            format: schema::FORMAT.to_string(),
            block_id: block_id.to_string(),
            tenant_id: tenant.to_string(),
            start_time: super::format_rfc3339(if self.spans == 0 { 0 } else { self.start }),
            end_time: super::format_rfc3339(self.end),
            total_objects: self.trace_ids.len() as u64,
            size,
            compaction_level: level,
            encoding: "zstd".to_string(),
            index_page_size: 0,
            total_records: self.index.groups.len() as u32,
            data_encoding: String::new(),
            bloom_shards: bloom.shards() as u32,
            footer_size,
            replication_factor: 1,
            dedicated_columns: schema::dedicated_from_schema(&self.schema),
            total_spans: self.spans,
        };
        let json = serde_json::to_vec(&meta).expect("block meta serialises");
        sync_dir(&self.dir).map_err(io_err(ctx()))?;
        write_atomic(&self.dir.join(META_FILE), &json)?;
        sync_dir(&self.dir).map_err(io_err(ctx()))?;
        Ok(meta)
    }
}

/// The Parquet footer length (the 4 bytes before the trailing magic).
fn read_footer_len(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::FileExt;
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut b = [0u8; 4];
    f.read_exact_at(&mut b, len.saturating_sub(8))?;
    Ok(u32::from_le_bytes(b))
}
