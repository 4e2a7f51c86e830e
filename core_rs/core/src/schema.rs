//! The columnar span schema (format `tfparquet1`): one row per span, shared by
//! head chunks and complete blocks, so one reader serves both.
//!
//! Attributes are typed key/value lists (`List<Attr>`, order preserved) plus a
//! per-block set of dedicated columns ([`DedicatedColumn`]); an attribute stored
//! in a dedicated column is left out of its list. Trace-level values (root
//! service and name, trace start and end) are repeated on every row of a trace;
//! Parquet's run-length encoding makes that nearly free since rows are sorted by
//! trace id.
//!
//! Row semantics (what a writer must produce and a reader may rely on):
//! - `trace_id` / `span_id`: 16 / 8 bytes. `parent_span_id`: 8 bytes, null for a root.
//! - `trace_state`, `status_message`: null when empty. `flags`: null when 0.
//! - `kind`, `status_code`: the OTLP enum numbers as sent.
//! - `start_unix_nano` and `duration_nano`: end = start + duration (an end before
//!   the start is stored as duration 0).
//! - `attrs` (and every other attribute list): `{key, type, str, int, double, bool,
//!   raw}`, where `type` is an [`AttrType`] and only the field it names is set:
//!   `raw` holds the bytes of a bytes value, or the encoded `ArrayValue` /
//!   `KeyValueList` message of an array / kvlist value. [`AttrType::Empty`] sets none.
//! - `span_dedicated_NN` / `resource_dedicated_NN`: the value of the NN-th dedicated
//!   column of that scope (numbered in the order of the block's dedicated list) when
//!   the span (resource) had that attribute with the column's type; the attribute is
//!   then absent from the list. The first attribute with the name wins; later
//!   duplicates stay in the list.
//! - `resource_service_name`: the resource's `service.name` when it is a string
//!   (then absent from `resource_attrs`), else null.
//! - `events`, `links`: in the order sent. Link ids are stored as sent.
//! - Scope and resource columns repeat on every span of that scope / resource;
//!   `*_schema_url`, `scope_name`, `scope_version` are null when empty.
//! - `parent_index`: row offset of the parent within the trace's rows, -1 for a root
//!   or a span whose parent is missing. `nested_set_left/right`: DFS numbering of
//!   the trace's span tree (orphans start subtrees of their own), so `a` is an
//!   ancestor of `b` iff `a.left < b.left && b.right < a.right`.
//! - `trace_root_service` / `trace_root_name`: of the earliest span without a parent
//!   (null when the root was not received); `trace_start/end_unix_nano`: min start /
//!   max end over the trace's spans.
//! - Rows are sorted by trace id, then start time; a (span id, kind) appears once
//!   per trace.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "tfparquet1";

// Column names.
pub const TRACE_ID: &str = "trace_id";
pub const SPAN_ID: &str = "span_id";
pub const PARENT_SPAN_ID: &str = "parent_span_id";
pub const TRACE_STATE: &str = "trace_state";
pub const NAME: &str = "name";
pub const KIND: &str = "kind";
pub const START: &str = "start_unix_nano";
pub const DURATION: &str = "duration_nano";
pub const STATUS_CODE: &str = "status_code";
pub const STATUS_MESSAGE: &str = "status_message";
pub const FLAGS: &str = "flags";
pub const DROPPED_ATTRS: &str = "dropped_attributes_count";
pub const DROPPED_EVENTS: &str = "dropped_events_count";
pub const DROPPED_LINKS: &str = "dropped_links_count";
pub const ATTRS: &str = "attrs";
pub const EVENTS: &str = "events";
pub const LINKS: &str = "links";
pub const RESOURCE_SERVICE_NAME: &str = "resource_service_name";
pub const RESOURCE_ATTRS: &str = "resource_attrs";
pub const RESOURCE_DROPPED_ATTRS: &str = "resource_dropped_attributes_count";
pub const RESOURCE_SCHEMA_URL: &str = "resource_schema_url";
pub const SCOPE_NAME: &str = "scope_name";
pub const SCOPE_VERSION: &str = "scope_version";
pub const SCOPE_ATTRS: &str = "scope_attrs";
pub const SCOPE_DROPPED_ATTRS: &str = "scope_dropped_attributes_count";
pub const SCOPE_SCHEMA_URL: &str = "scope_schema_url";
pub const PARENT_INDEX: &str = "parent_index";
pub const NESTED_SET_LEFT: &str = "nested_set_left";
pub const NESTED_SET_RIGHT: &str = "nested_set_right";
pub const TRACE_ROOT_SERVICE: &str = "trace_root_service";
pub const TRACE_ROOT_NAME: &str = "trace_root_name";
pub const TRACE_START: &str = "trace_start_unix_nano";
pub const TRACE_END: &str = "trace_end_unix_nano";

// Fields of the attribute struct.
pub const ATTR_KEY: &str = "key";
pub const ATTR_TYPE: &str = "type";
pub const ATTR_STR: &str = "str";
pub const ATTR_INT: &str = "int";
pub const ATTR_DOUBLE: &str = "double";
pub const ATTR_BOOL: &str = "bool";
pub const ATTR_RAW: &str = "raw";

// Fields of the event struct.
pub const EVENT_TIME: &str = "time_unix_nano";
pub const EVENT_NAME: &str = "name";
pub const EVENT_ATTRS: &str = "attrs";
pub const EVENT_DROPPED_ATTRS: &str = "dropped_attributes_count";

// Fields of the link struct.
pub const LINK_TRACE_ID: &str = "trace_id";
pub const LINK_SPAN_ID: &str = "span_id";
pub const LINK_TRACE_STATE: &str = "trace_state";
pub const LINK_ATTRS: &str = "attrs";
pub const LINK_DROPPED_ATTRS: &str = "dropped_attributes_count";
pub const LINK_FLAGS: &str = "flags";

/// Value type tags of the attribute struct's `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AttrType {
    /// `str` holds the value.
    String = 0,
    /// `int` holds the value.
    Int = 1,
    /// `double` holds the value.
    Double = 2,
    /// `bool` holds the value.
    Bool = 3,
    /// `raw` holds the bytes.
    Bytes = 4,
    /// `raw` holds the encoded `ArrayValue` message.
    Array = 5,
    /// `raw` holds the encoded `KeyValueList` message.
    KvList = 6,
    /// An `AnyValue` with no value set.
    Empty = 7,
}

impl AttrType {
    pub fn from_u8(v: u8) -> Option<AttrType> {
        Some(match v {
            0 => AttrType::String,
            1 => AttrType::Int,
            2 => AttrType::Double,
            3 => AttrType::Bool,
            4 => AttrType::Bytes,
            5 => AttrType::Array,
            6 => AttrType::KvList,
            7 => AttrType::Empty,
            _ => return None,
        })
    }
}

/// Scope of a dedicated column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DedicatedScope {
    Span,
    Resource,
}

/// Value type of a dedicated column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DedicatedType {
    String,
    Int,
}

/// An attribute promoted to its own column, as in Tempo's `dedicatedColumns`
/// (`{"s":"resource","n":"k8s.pod.name","t":"string"}` in meta.json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedicatedColumn {
    #[serde(rename = "s", default = "default_scope")]
    pub scope: DedicatedScope,
    #[serde(rename = "n")]
    pub name: String,
    #[serde(rename = "t", default = "default_type")]
    pub typ: DedicatedType,
}

fn default_scope() -> DedicatedScope {
    DedicatedScope::Span
}

fn default_type() -> DedicatedType {
    DedicatedType::String
}

impl DedicatedColumn {
    pub fn new(scope: DedicatedScope, name: &str, typ: DedicatedType) -> Self {
        DedicatedColumn { scope, name: name.to_string(), typ }
    }
}

/// Name of the column holding the `i`-th dedicated column of `scope`.
pub fn dedicated_column_name(scope: DedicatedScope, i: usize) -> String {
    match scope {
        DedicatedScope::Span => format!("span_dedicated_{i:02}"),
        DedicatedScope::Resource => format!("resource_dedicated_{i:02}"),
    }
}

/// The dedicated columns every block gets unless configured otherwise (Tempo's
/// vParquet5 defaults that fit OpenTelemetry's HTTP conventions).
pub fn default_dedicated_columns() -> Vec<DedicatedColumn> {
    use DedicatedScope::*;
    use DedicatedType::*;
    vec![
        DedicatedColumn::new(Span, "http.method", String),
        DedicatedColumn::new(Span, "http.status_code", Int),
        DedicatedColumn::new(Span, "http.url", String),
        DedicatedColumn::new(Span, "http.route", String),
        DedicatedColumn::new(Span, "http.request.method", String),
        DedicatedColumn::new(Span, "http.response.status_code", Int),
        DedicatedColumn::new(Span, "url.path", String),
        DedicatedColumn::new(Span, "server.address", String),
        DedicatedColumn::new(Resource, "k8s.cluster.name", String),
        DedicatedColumn::new(Resource, "k8s.namespace.name", String),
        DedicatedColumn::new(Resource, "k8s.pod.name", String),
        DedicatedColumn::new(Resource, "k8s.container.name", String),
    ]
}

/// The struct type of one attribute.
pub fn attr_struct_fields() -> Fields {
    Fields::from(vec![
        Field::new(ATTR_KEY, DataType::Utf8, false),
        Field::new(ATTR_TYPE, DataType::UInt8, false),
        Field::new(ATTR_STR, DataType::Utf8, true),
        Field::new(ATTR_INT, DataType::Int64, true),
        Field::new(ATTR_DOUBLE, DataType::Float64, true),
        Field::new(ATTR_BOOL, DataType::Boolean, true),
        Field::new(ATTR_RAW, DataType::Binary, true),
    ])
}

/// `List<Attr>`: the type of every attribute-list column.
pub fn attr_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Struct(attr_struct_fields()), false)))
}

pub fn event_struct_fields() -> Fields {
    Fields::from(vec![
        Field::new(EVENT_TIME, DataType::UInt64, false),
        Field::new(EVENT_NAME, DataType::Utf8, false),
        Field::new(EVENT_ATTRS, attr_list_type(), false),
        Field::new(EVENT_DROPPED_ATTRS, DataType::UInt32, false),
    ])
}

pub fn link_struct_fields() -> Fields {
    Fields::from(vec![
        // Link ids are stored as sent (OTLP does not validate them), so any length round-trips.
        Field::new(LINK_TRACE_ID, DataType::Binary, false),
        Field::new(LINK_SPAN_ID, DataType::Binary, false),
        Field::new(LINK_TRACE_STATE, DataType::Utf8, true),
        Field::new(LINK_ATTRS, attr_list_type(), false),
        Field::new(LINK_DROPPED_ATTRS, DataType::UInt32, false),
        Field::new(LINK_FLAGS, DataType::UInt32, true),
    ])
}

fn dedicated_type(t: DedicatedType) -> DataType {
    match t {
        DedicatedType::String => DataType::Utf8,
        DedicatedType::Int => DataType::Int64,
    }
}

/// The span schema for a block with the given dedicated columns.
///
/// Dedicated columns are numbered per scope in the order they appear in `dedicated`.
pub fn span_schema(dedicated: &[DedicatedColumn]) -> SchemaRef {
    let mut fields = vec![
        Field::new(TRACE_ID, DataType::FixedSizeBinary(16), false),
        Field::new(SPAN_ID, DataType::FixedSizeBinary(8), false),
        Field::new(PARENT_SPAN_ID, DataType::FixedSizeBinary(8), true),
        Field::new(TRACE_STATE, DataType::Utf8, true),
        Field::new(NAME, DataType::Utf8, false),
        Field::new(KIND, DataType::Int32, false),
        Field::new(START, DataType::UInt64, false),
        Field::new(DURATION, DataType::UInt64, false),
        Field::new(STATUS_CODE, DataType::Int32, false),
        Field::new(STATUS_MESSAGE, DataType::Utf8, true),
        Field::new(FLAGS, DataType::UInt32, true),
        Field::new(DROPPED_ATTRS, DataType::UInt32, false),
        Field::new(DROPPED_EVENTS, DataType::UInt32, false),
        Field::new(DROPPED_LINKS, DataType::UInt32, false),
        Field::new(ATTRS, attr_list_type(), false),
    ];
    for (i, d) in dedicated.iter().filter(|d| d.scope == DedicatedScope::Span).enumerate() {
        fields.push(Field::new(
            dedicated_column_name(DedicatedScope::Span, i),
            dedicated_type(d.typ),
            true,
        ));
    }
    fields.extend([
        Field::new(
            EVENTS,
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(event_struct_fields()),
                false,
            ))),
            false,
        ),
        Field::new(
            LINKS,
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(link_struct_fields()),
                false,
            ))),
            false,
        ),
        Field::new(RESOURCE_SERVICE_NAME, DataType::Utf8, true),
        Field::new(RESOURCE_ATTRS, attr_list_type(), false),
    ]);
    for (i, d) in dedicated.iter().filter(|d| d.scope == DedicatedScope::Resource).enumerate() {
        fields.push(Field::new(
            dedicated_column_name(DedicatedScope::Resource, i),
            dedicated_type(d.typ),
            true,
        ));
    }
    fields.extend([
        Field::new(RESOURCE_DROPPED_ATTRS, DataType::UInt32, false),
        Field::new(RESOURCE_SCHEMA_URL, DataType::Utf8, true),
        Field::new(SCOPE_NAME, DataType::Utf8, true),
        Field::new(SCOPE_VERSION, DataType::Utf8, true),
        Field::new(SCOPE_ATTRS, attr_list_type(), false),
        Field::new(SCOPE_DROPPED_ATTRS, DataType::UInt32, false),
        Field::new(SCOPE_SCHEMA_URL, DataType::Utf8, true),
        Field::new(PARENT_INDEX, DataType::Int32, false),
        Field::new(NESTED_SET_LEFT, DataType::Int32, false),
        Field::new(NESTED_SET_RIGHT, DataType::Int32, false),
        Field::new(TRACE_ROOT_SERVICE, DataType::Utf8, true),
        Field::new(TRACE_ROOT_NAME, DataType::Utf8, true),
        Field::new(TRACE_START, DataType::UInt64, false),
        Field::new(TRACE_END, DataType::UInt64, false),
    ]);
    let meta = serde_json::to_string(dedicated).expect("dedicated columns serialise");
    Arc::new(Schema::new_with_metadata(
        fields,
        std::collections::HashMap::from([(DEDICATED_METADATA_KEY.to_string(), meta)]),
    ))
}

/// Schema metadata key holding the block's dedicated columns as JSON, so every
/// `RecordBatch` (and the Parquet file's embedded Arrow schema) describes itself.
pub const DEDICATED_METADATA_KEY: &str = "tempo_fast.dedicated_columns";

/// The dedicated columns a schema was built with (none when the metadata is absent).
pub fn dedicated_from_schema(schema: &Schema) -> Vec<DedicatedColumn> {
    schema
        .metadata()
        .get(DEDICATED_METADATA_KEY)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedicated_columns_are_numbered_per_scope() {
        let s = span_schema(&default_dedicated_columns());
        assert!(s.field_with_name("span_dedicated_00").is_ok());
        assert!(s.field_with_name("span_dedicated_07").is_ok());
        assert!(s.field_with_name("resource_dedicated_03").is_ok());
        assert_eq!(s.field_with_name("span_dedicated_01").unwrap().data_type(), &DataType::Int64);
        assert_eq!(dedicated_from_schema(&s), default_dedicated_columns());
    }

    #[test]
    fn dedicated_column_json_matches_tempo() {
        let d: DedicatedColumn = serde_json::from_str(r#"{"n":"ip"}"#).unwrap();
        assert_eq!(d.scope, DedicatedScope::Span);
        assert_eq!(d.typ, DedicatedType::String);
        let s = serde_json::to_string(&DedicatedColumn::new(
            DedicatedScope::Resource,
            "ip",
            DedicatedType::Int,
        ))
        .unwrap();
        assert_eq!(s, r#"{"s":"resource","n":"ip","t":"int"}"#);
    }
}
