//! Export of a block to *plain* Parquet: one row per span with obvious columns, for
//! DuckDB, pyarrow or Spark users who should not need to know the block format.
//!
//! | column | type |
//! |---|---|
//! | `trace_id`, `span_id`, `parent_span_id` | lowercase hex strings (`parent_span_id` null for a root) |
//! | `trace_state`, `name` | string |
//! | `kind`, `status_code` | the OTLP enum names (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`; unknown values as their number) |
//! | `start_time`, `end_time` | timestamp (ns, UTC) |
//! | `duration_ns` | int64 |
//! | `status_message`, `service_name`, `scope_name`, `scope_version` | string, null when empty |
//! | `span_attributes`, `resource_attributes`, `scope_attributes` | `MAP<string, string>` |
//! | `events` | list of `{time, name, attributes}` |
//! | `links` | list of `{trace_id, span_id, trace_state, attributes}` |
//! | `trace_root_service`, `trace_root_name` | string: the trace's root span (null when it was not received) |
//!
//! Attributes are `MAP<string, string>`: the representation every Parquet reader turns
//! into something queryable (`span_attributes['http.route']` in DuckDB). Values are
//! written as text: strings as they are, ints in decimal, doubles in the shortest form
//! that parses back to the same value, booleans as `true` / `false`, bytes as base64,
//! arrays and key/value lists as JSON (`["a",1]`, `{"k":true}`: `json_extract` reads them),
//! an empty value as null. Dedicated columns are folded back under their attribute names
//! and `service.name` back into the resource attributes; a key appears once per map (the
//! first occurrence, as the block's dedicated columns keep it).
//!
//! The block is read one row group at a time (one ranged read each) and each becomes
//! one row group of the output, so memory stays bounded by a row group, whatever the
//! block's size.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, Int64Builder, MapBuilder, MapFieldNames, StringBuilder,
    TimestampNanosecondBuilder,
};
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, StringArray, StructArray};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use base64::Engine as _;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::{io_err, BlockError, BlockReader};
use crate::otlp::view::{repeated, AnyValue, KeyValue};
use crate::pb::PbError;
use crate::render::{
    js_b64, js_f64, js_str, opt_str, Attrs, Ded, RenderError, View, MAX_VALUE_DEPTH, SPAN_KINDS,
    STATUS_CODES,
};
use crate::schema;

/// Spans per record batch read from the block.
const BATCH_ROWS: usize = 8192;

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExportStats {
    pub rows: u64,
    pub row_groups: usize,
    /// Bytes of the output file.
    pub bytes: u64,
}

fn render_err(e: RenderError) -> BlockError {
    BlockError::Corrupt(e.to_string())
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn map_names() -> MapFieldNames {
    // Parquet's canonical MAP layout.
    MapFieldNames { entry: "key_value".into(), key: "key".into(), value: "value".into() }
}

fn map_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::new(Some(map_names()), StringBuilder::new(), StringBuilder::new())
}

/// `MAP<string, string>` as [`map_builder`] builds it.
fn map_type() -> DataType {
    map_builder().finish().data_type().clone()
}

fn event_fields() -> Fields {
    Fields::from(vec![
        Field::new("time", timestamp(), false),
        Field::new("name", DataType::Utf8, false),
        Field::new("attributes", map_type(), false),
    ])
}

fn link_fields() -> Fields {
    Fields::from(vec![
        Field::new("trace_id", DataType::Utf8, false),
        Field::new("span_id", DataType::Utf8, false),
        Field::new("trace_state", DataType::Utf8, true),
        Field::new("attributes", map_type(), false),
    ])
}

fn list_field(fields: Fields) -> Arc<Field> {
    Arc::new(Field::new("element", DataType::Struct(fields), false))
}

/// The schema of an exported file.
pub fn export_schema() -> SchemaRef {
    let s = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        s("trace_id", false),
        s("span_id", false),
        s("parent_span_id", true),
        s("trace_state", true),
        s("name", false),
        s("kind", false),
        Field::new("start_time", timestamp(), false),
        Field::new("end_time", timestamp(), false),
        Field::new("duration_ns", DataType::Int64, false),
        s("status_code", false),
        s("status_message", true),
        s("service_name", true),
        s("scope_name", true),
        s("scope_version", true),
        Field::new("span_attributes", map_type(), false),
        Field::new("resource_attributes", map_type(), false),
        Field::new("scope_attributes", map_type(), false),
        Field::new("events", DataType::List(list_field(event_fields())), false),
        Field::new("links", DataType::List(list_field(link_fields())), false),
        s("trace_root_service", true),
        s("trace_root_name", true),
    ]))
}

fn hex_into<'a>(buf: &'a mut String, id: &[u8]) -> &'a str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.clear();
    for &b in id {
        buf.push(HEX[(b >> 4) as usize] as char);
        buf.push(HEX[(b & 0xf) as usize] as char);
    }
    buf
}

fn enum_name(names: &[&str], v: i32) -> String {
    match usize::try_from(v).ok().and_then(|i| names.get(i)) {
        Some(n) => (*n).to_string(),
        None => v.to_string(),
    }
}

fn nanos(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A value as plain JSON (see the module doc); arrays and kvlists decoded level by level.
fn plain_json(out: &mut Vec<u8>, v: AnyValue<'_>, depth: usize) -> Result<(), PbError> {
    match v {
        AnyValue::Str(s) => js_str(out, s),
        AnyValue::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        AnyValue::Double(d) => js_f64(out, d),
        AnyValue::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        AnyValue::Bytes(b) => js_b64(out, b),
        AnyValue::Empty => out.extend_from_slice(b"null"),
        AnyValue::Array(raw) | AnyValue::KvList(raw) => {
            if depth >= MAX_VALUE_DEPTH {
                return Err(PbError::TooDeep);
            }
            let kvlist = matches!(v, AnyValue::KvList(_));
            out.push(if kvlist { b'{' } else { b'[' });
            for (n, item) in repeated(raw, 1).enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                if kvlist {
                    let (key, value) = KeyValue::parts(item?)?;
                    js_str(out, key);
                    out.push(b':');
                    plain_json(out, AnyValue::parse_shallow(value)?, depth + 1)?;
                } else {
                    plain_json(out, AnyValue::parse_shallow(item?)?, depth + 1)?;
                }
            }
            out.push(if kvlist { b'}' } else { b']' });
        }
    }
    Ok(())
}

/// A value as the text of a map entry (None for an empty value).
fn value_text(
    key: &str,
    v: AnyValue<'_>,
    scratch: &mut Vec<u8>,
) -> Result<Option<String>, BlockError> {
    Ok(Some(match v {
        AnyValue::Str(s) => s.to_string(),
        AnyValue::Int(i) => i.to_string(),
        AnyValue::Bool(b) => b.to_string(),
        AnyValue::Double(d) if d.is_nan() => "NaN".into(),
        AnyValue::Double(d) if d.is_infinite() => {
            (if d > 0.0 { "Infinity" } else { "-Infinity" }).into()
        }
        AnyValue::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
        AnyValue::Empty => return Ok(None),
        v => {
            scratch.clear();
            plain_json(scratch, v, 0).map_err(|e| {
                render_err(RenderError::BadValue { key: key.to_string(), source: e })
            })?;
            String::from_utf8_lossy(scratch).into_owned()
        }
    }))
}

/// Appends one map of attributes: `first` (service.name), then the dedicated cells, then
/// the list; a key seen before is skipped (the block keeps the first occurrence of a
/// name in its dedicated column and later duplicates in the list).
struct MapWriter {
    keys: Vec<String>,
    scratch: Vec<u8>,
}

impl MapWriter {
    fn new() -> Self {
        MapWriter { keys: Vec::new(), scratch: Vec::new() }
    }

    fn append(
        &mut self,
        m: &mut MapBuilder<StringBuilder, StringBuilder>,
        first: Option<(&str, &str)>,
        ded: &[Ded<'_>],
        list: &Attrs<'_>,
        r: usize,
    ) -> Result<(), BlockError> {
        self.keys.clear();
        if let Some((k, v)) = first {
            self.put(m, k, Some(v.to_string()));
        }
        for d in ded {
            if let Some(v) = d.get(r) {
                let text = value_text(&d.name, v, &mut self.scratch)?;
                self.put(m, &d.name, text);
            }
        }
        for j in list.range(r) {
            let key = list.key(j);
            if self.keys.iter().any(|k| k == key) {
                continue;
            }
            let text = value_text(key, list.val(j).map_err(render_err)?, &mut self.scratch)?;
            self.put(m, key, text);
        }
        m.append(true)?;
        Ok(())
    }

    fn put(
        &mut self,
        m: &mut MapBuilder<StringBuilder, StringBuilder>,
        k: &str,
        v: Option<String>,
    ) {
        if self.keys.iter().any(|seen| seen == k) {
            return;
        }
        self.keys.push(k.to_string());
        m.keys().append_value(k);
        m.values().append_option(v);
    }
}

/// Builders of one output batch.
struct Columns {
    trace_id: StringBuilder,
    span_id: StringBuilder,
    parent: StringBuilder,
    trace_state: StringBuilder,
    name: StringBuilder,
    kind: StringBuilder,
    start: TimestampNanosecondBuilder,
    end: TimestampNanosecondBuilder,
    duration: Int64Builder,
    status_code: StringBuilder,
    status_message: StringBuilder,
    service: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    span_attrs: MapBuilder<StringBuilder, StringBuilder>,
    res_attrs: MapBuilder<StringBuilder, StringBuilder>,
    scope_attrs: MapBuilder<StringBuilder, StringBuilder>,
    event_offsets: Vec<i32>,
    event_time: TimestampNanosecondBuilder,
    event_name: StringBuilder,
    event_attrs: MapBuilder<StringBuilder, StringBuilder>,
    link_offsets: Vec<i32>,
    link_trace_id: StringBuilder,
    link_span_id: StringBuilder,
    link_trace_state: StringBuilder,
    link_attrs: MapBuilder<StringBuilder, StringBuilder>,
    root_service: StringBuilder,
    root_name: StringBuilder,
    maps: MapWriter,
    hex: String,
}

fn ts_builder() -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::new().with_timezone("UTC")
}

impl Columns {
    fn new() -> Self {
        Columns {
            trace_id: StringBuilder::new(),
            span_id: StringBuilder::new(),
            parent: StringBuilder::new(),
            trace_state: StringBuilder::new(),
            name: StringBuilder::new(),
            kind: StringBuilder::new(),
            start: ts_builder(),
            end: ts_builder(),
            duration: Int64Builder::new(),
            status_code: StringBuilder::new(),
            status_message: StringBuilder::new(),
            service: StringBuilder::new(),
            scope_name: StringBuilder::new(),
            scope_version: StringBuilder::new(),
            span_attrs: map_builder(),
            res_attrs: map_builder(),
            scope_attrs: map_builder(),
            event_offsets: vec![0],
            event_time: ts_builder(),
            event_name: StringBuilder::new(),
            event_attrs: map_builder(),
            link_offsets: vec![0],
            link_trace_id: StringBuilder::new(),
            link_span_id: StringBuilder::new(),
            link_trace_state: StringBuilder::new(),
            link_attrs: map_builder(),
            root_service: StringBuilder::new(),
            root_name: StringBuilder::new(),
            maps: MapWriter::new(),
            hex: String::new(),
        }
    }

    /// Appends every row of a block batch.
    fn push(&mut self, b: &RecordBatch) -> Result<(), BlockError> {
        let v = View::new(b).map_err(render_err)?;
        let root_service = string_col(b, schema::TRACE_ROOT_SERVICE)?;
        let root_name = string_col(b, schema::TRACE_ROOT_NAME)?;
        for r in 0..v.rows {
            self.push_row(&v, r)?;
            self.root_service
                .append_option(root_service.is_valid(r).then(|| root_service.value(r)));
            self.root_name.append_option(root_name.is_valid(r).then(|| root_name.value(r)));
        }
        Ok(())
    }

    fn push_row(&mut self, v: &View<'_>, r: usize) -> Result<(), BlockError> {
        let hex = &mut self.hex;
        self.trace_id.append_value(hex_into(hex, v.trace_id.value(r)));
        self.span_id.append_value(hex_into(hex, v.span_id.value(r)));
        if v.parent.is_valid(r) {
            self.parent.append_value(hex_into(hex, v.parent.value(r)));
        } else {
            self.parent.append_null();
        }
        self.trace_state.append_option(opt_str(v.trace_state, r));
        self.name.append_value(v.name.value(r));
        self.kind.append_value(enum_name(SPAN_KINDS, v.kind.value(r)));
        let start = v.start.value(r);
        self.start.append_value(nanos(start));
        self.end.append_value(nanos(v.end(r)));
        self.duration.append_value(nanos(v.duration.value(r)));
        self.status_code.append_value(enum_name(STATUS_CODES, v.status_code.value(r)));
        self.status_message.append_option(opt_str(v.status_message, r));
        let service = v.service(r);
        self.service.append_option(service);
        self.scope_name.append_option(opt_str(v.scope_name, r));
        self.scope_version.append_option(opt_str(v.scope_version, r));
        let maps = &mut self.maps;
        maps.append(&mut self.span_attrs, None, &v.span_ded, &v.attrs, r)?;
        let service_kv = service.map(|s| ("service.name", s));
        maps.append(&mut self.res_attrs, service_kv, &v.res_ded, &v.res_attrs, r)?;
        maps.append(&mut self.scope_attrs, None, &[], &v.scope_attrs, r)?;

        let ev = &v.events;
        let events = ev.offsets[r] as usize..ev.offsets[r + 1] as usize;
        for e in events.clone() {
            self.event_time.append_value(nanos(ev.time.value(e)));
            self.event_name.append_value(ev.name.value(e));
            maps.append(&mut self.event_attrs, None, &[], &ev.attrs, e)?;
        }
        push_offset(&mut self.event_offsets, events.len())?;

        let lk = &v.links;
        let links = lk.offsets[r] as usize..lk.offsets[r + 1] as usize;
        for l in links.clone() {
            self.link_trace_id.append_value(hex_into(hex, lk.trace_id.value(l)));
            self.link_span_id.append_value(hex_into(hex, lk.span_id.value(l)));
            self.link_trace_state.append_option(opt_str(lk.trace_state, l));
            maps.append(&mut self.link_attrs, None, &[], &lk.attrs, l)?;
        }
        push_offset(&mut self.link_offsets, links.len())
    }

    fn len(&self) -> usize {
        self.trace_id.len()
    }

    /// The rows appended so far as one batch; the builders start over.
    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, BlockError> {
        let events = StructArray::try_new(
            event_fields(),
            vec![
                Arc::new(self.event_time.finish()) as ArrayRef,
                Arc::new(self.event_name.finish()),
                Arc::new(self.event_attrs.finish()),
            ],
            None,
        )?;
        let links = StructArray::try_new(
            link_fields(),
            vec![
                Arc::new(self.link_trace_id.finish()) as ArrayRef,
                Arc::new(self.link_span_id.finish()),
                Arc::new(self.link_trace_state.finish()),
                Arc::new(self.link_attrs.finish()),
            ],
            None,
        )?;
        let list = |offsets: &mut Vec<i32>, fields: Fields, values: StructArray| {
            let offsets = std::mem::replace(offsets, vec![0]);
            ListArray::try_new(
                list_field(fields),
                OffsetBuffer::new(offsets.into()),
                Arc::new(values),
                None,
            )
        };
        let events = list(&mut self.event_offsets, event_fields(), events)?;
        let links = list(&mut self.link_offsets, link_fields(), links)?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.parent.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.end.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            Arc::new(self.service.finish()),
            Arc::new(self.scope_name.finish()),
            Arc::new(self.scope_version.finish()),
            Arc::new(self.span_attrs.finish()),
            Arc::new(self.res_attrs.finish()),
            Arc::new(self.scope_attrs.finish()),
            Arc::new(events),
            Arc::new(links),
            Arc::new(self.root_service.finish()),
            Arc::new(self.root_name.finish()),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

fn push_offset(offsets: &mut Vec<i32>, n: usize) -> Result<(), BlockError> {
    let last = *offsets.last().expect("offsets start at 0");
    let next = i32::try_from(n)
        .ok()
        .and_then(|n| last.checked_add(n))
        .ok_or_else(|| BlockError::Corrupt("too many events or links in one batch".into()))?;
    offsets.push(next);
    Ok(())
}

fn string_col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a StringArray, BlockError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| BlockError::Corrupt(format!("column {name:?} is missing or not a string")))
}

fn properties() -> Result<WriterProperties, BlockError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(None)
        .set_created_by(format!("tempo-fast {} (block export)", env!("CARGO_PKG_VERSION")))
        .build())
}

/// Writes every span of `block` to `out` as plain Parquet (see the module doc), one
/// output row group per block row group. `progress(done, total, rows)` is called after
/// each row group; an error it returns stops the export.
pub fn export_block<W: Write + Send>(
    block: &BlockReader,
    out: W,
    mut progress: impl FnMut(usize, usize, u64) -> Result<(), BlockError>,
) -> Result<ExportStats, BlockError> {
    let schema = export_schema();
    let mut writer = ArrowWriter::try_new(out, schema.clone(), Some(properties()?))?;
    let total = block.row_groups()?;
    let mut stats = ExportStats { row_groups: total, ..Default::default() };
    let mut cols = Columns::new();
    progress(0, total, 0)?;
    for g in 0..total {
        for batch in block.read_row_group(g, BATCH_ROWS)? {
            cols.push(&batch?)?;
            if cols.len() >= BATCH_ROWS {
                stats.rows += cols.len() as u64;
                writer.write(&cols.finish(&schema)?)?;
            }
        }
        if cols.len() > 0 {
            stats.rows += cols.len() as u64;
            writer.write(&cols.finish(&schema)?)?;
        }
        writer.flush()?;
        progress(g + 1, total, stats.rows)?;
    }
    let mut out = writer.into_inner()?;
    out.flush().map_err(io_err("writing the export"))?;
    Ok(stats)
}

/// [`export_block`] into the file `path`, written under a temporary name and renamed
/// into place: a failed export leaves nothing behind.
pub fn export_block_to(
    block: &BlockReader,
    path: &Path,
    progress: impl FnMut(usize, usize, u64) -> Result<(), BlockError>,
) -> Result<ExportStats, BlockError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let ctx = || format!("writing {}", path.display());
    let result = (|| {
        let file = File::create(&tmp).map_err(io_err(ctx()))?;
        let mut stats = export_block(block, BufWriter::with_capacity(1 << 20, &file), progress)?;
        file.sync_all().map_err(io_err(ctx()))?;
        stats.bytes = file.metadata().map_err(io_err(ctx()))?.len();
        fs::rename(&tmp, path).map_err(io_err(ctx()))?;
        Ok(stats)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampNanosecondType};
    use arrow_array::MapArray;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::block::tests::one_chunk_block;
    use crate::block::BlockConfig;

    /// The entries of row `r` of a map column.
    fn entries(m: &MapArray, r: usize) -> Vec<(String, Option<String>)> {
        let e = m.value(r);
        let (k, v) = (e.column(0).as_string::<i32>(), e.column(1).as_string::<i32>());
        (0..e.len())
            .map(|i| (k.value(i).to_string(), v.is_valid(i).then(|| v.value(i).to_string())))
            .collect()
    }

    fn get<'a>(m: &'a [(String, Option<String>)], key: &str) -> Option<&'a str> {
        m.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.as_deref())
    }

    #[test]
    fn export_writes_plain_columns_row_group_by_row_group() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = BlockConfig { row_group_rows: 700, page_rows: 100, ..Default::default() };
        let (dir, _, meta, expected) = one_chunk_block(tmp.path(), &cfg, 11);
        assert!(meta.total_records > 2, "several row groups");
        let block = BlockReader::open(&dir).unwrap();

        let out = tmp.path().join("out.parquet");
        let mut calls = Vec::new();
        let stats = export_block_to(&block, &out, |done, total, rows| {
            calls.push((done, total, rows));
            Ok(())
        })
        .unwrap();
        assert_eq!(stats.rows, meta.total_spans);
        assert_eq!(stats.row_groups, meta.total_records as usize);
        assert_eq!(calls.len(), stats.row_groups + 1);
        assert_eq!(calls.last().unwrap(), &(stats.row_groups, stats.row_groups, stats.rows));
        assert!(!tmp.path().join("out.parquet.tmp").exists());

        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&out).unwrap()).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), stats.row_groups, "one per block row group");
        assert_eq!(reader.metadata().file_metadata().num_rows() as u64, stats.rows);
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        let (mut dedicated, mut arrays, mut errors) = (0, 0, 0);
        for batch in reader.build().unwrap() {
            let b = batch.unwrap();
            assert_eq!(b.schema().fields(), export_schema().fields());
            let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
            let (tid, sid, kind, code) = (s("trace_id"), s("span_id"), s("kind"), s("status_code"));
            let (service, message) = (s("service_name"), s("status_message"));
            let start =
                b.column_by_name("start_time").unwrap().as_primitive::<TimestampNanosecondType>();
            let end =
                b.column_by_name("end_time").unwrap().as_primitive::<TimestampNanosecondType>();
            let dur = b.column_by_name("duration_ns").unwrap().as_primitive::<Int64Type>();
            let span_attrs = b.column_by_name("span_attributes").unwrap().as_map();
            let res_attrs = b.column_by_name("resource_attributes").unwrap().as_map();
            let events = b.column_by_name("events").unwrap().as_list::<i32>();
            for r in 0..b.num_rows() {
                assert_eq!(tid.value(r).len(), 32);
                assert!(seen.insert((tid.value(r).to_string(), sid.value(r).to_string())));
                assert!(SPAN_KINDS[1..4].contains(&kind.value(r)), "{}", kind.value(r));
                assert_eq!(end.value(r) - start.value(r), dur.value(r));
                assert!(start.value(r) > 1_700_000_000_000_000_000);
                let attrs = entries(span_attrs, r);
                // dedicated columns are back under their names, with the list attributes
                assert!(
                    ["GET", "POST", "PUT", "DELETE"].contains(&get(&attrs, "http.method").unwrap())
                );
                let status: i64 = get(&attrs, "http.status_code").unwrap().parse().unwrap();
                assert!(get(&attrs, "http.route").unwrap().starts_with("/api/v1/"));
                assert!(get(&attrs, "user.id").unwrap().starts_with("user-"));
                assert!(["true", "false"].contains(&get(&attrs, "retry").unwrap()));
                dedicated += 1;
                if let Some(tags) = get(&attrs, "tags") {
                    assert_eq!(tags, r#"["a",7]"#);
                    assert_eq!(get(&attrs, "labels"), Some(r#"{"team":"core"}"#));
                    assert_eq!(get(&attrs, "blob"), Some("AAEC/g=="));
                    assert!(get(&attrs, "sample.ratio").unwrap().parse::<f64>().is_ok());
                    arrays += 1;
                }
                let res = entries(res_attrs, r);
                assert_eq!(get(&res, "service.name"), Some(service.value(r)));
                let pod = get(&res, "k8s.pod.name").unwrap();
                assert!(pod.starts_with(service.value(r)), "{pod}");
                assert_eq!(get(&res, "host.name").map(|h| h.starts_with("node-")), Some(true));
                if status >= 500 {
                    errors += 1;
                    assert_eq!(code.value(r), "STATUS_CODE_ERROR");
                    assert_eq!(message.value(r), "internal error");
                    let ev = events.value(r);
                    let ev = ev.as_struct();
                    assert_eq!(ev.len(), 1);
                    assert_eq!(ev.column(1).as_string::<i32>().value(0), "exception");
                    let ev_time = ev.column(0).as_primitive::<TimestampNanosecondType>().value(0);
                    assert_eq!(ev_time, start.value(r) + 5000);
                    let ev_attrs = entries(ev.column(2).as_map(), 0);
                    assert_eq!(get(&ev_attrs, "exception.type"), Some("TimeoutError"));
                } else {
                    assert_eq!(code.value(r), "STATUS_CODE_UNSET");
                    assert!(message.is_null(r));
                    assert_eq!(events.value(r).len(), 0);
                }
            }
        }
        let want: BTreeSet<(String, String)> = expected
            .iter()
            .flat_map(|(t, sids)| {
                sids.iter().map(move |s| {
                    (
                        hex_into(&mut String::new(), t).to_string(),
                        hex_into(&mut String::new(), s).to_string(),
                    )
                })
            })
            .collect();
        assert_eq!(seen, want, "every span once, ids as hex");
        assert!(dedicated > 0 && arrays > 0 && errors > 0);
    }

    #[test]
    fn a_failing_progress_callback_stops_the_export_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = BlockConfig { row_group_rows: 300, ..Default::default() };
        let (dir, ..) = one_chunk_block(tmp.path(), &cfg, 5);
        let block = BlockReader::open(&dir).unwrap();
        let out = tmp.path().join("out.parquet");
        let err = export_block_to(&block, &out, |done, _, _| {
            if done == 1 {
                Err(BlockError::Corrupt("stop".into()))
            } else {
                Ok(())
            }
        });
        assert!(err.is_err());
        assert!(!out.exists() && !tmp.path().join("out.parquet.tmp").exists());
        assert!(block.read_row_group(99, 10).is_err());
    }

    #[test]
    fn values_as_text() {
        let mut scratch = Vec::new();
        let t = |v: AnyValue<'_>, s: &mut Vec<u8>| value_text("k", v, s).unwrap();
        assert_eq!(t(AnyValue::Double(0.5), &mut scratch).as_deref(), Some("0.5"));
        assert_eq!(t(AnyValue::Double(f64::NAN), &mut scratch).as_deref(), Some("NaN"));
        assert_eq!(t(AnyValue::Int(-3), &mut scratch).as_deref(), Some("-3"));
        assert_eq!(t(AnyValue::Empty, &mut scratch), None);
        assert_eq!(enum_name(SPAN_KINDS, 2), "SPAN_KIND_SERVER");
        assert_eq!(enum_name(STATUS_CODES, 9), "9");
        assert_eq!(enum_name(SPAN_KINDS, -1), "-1");
    }
}
