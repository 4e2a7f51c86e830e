//! tempo_core: the pure-Rust core of tempo-fast.
//!
//! - [`otlp`]: zero-copy OTLP protobuf indexing and validation, OTLP JSON translation.
//! - [`model`]: the indexed request and span references every stage shares.
//! - [`schema`]: the columnar span schema of head chunks and blocks.
//! - [`columnar`]: builds Arrow record batches from span references.
//! - [`block`]: Parquet block writing, reading, bloom filters and block metadata.
//! - [`render`]: turns a trace's rows into OTLP protobuf and Tempo's JSON.
//! - [`wal`]: the crash-safe append-only write-ahead log.
//! - [`live`]: live traces grouped by trace id.
//! - [`traceql`]: the TraceQL lexer, parser, validator and canonical printer.
//! - [`search`]: TraceQL search over blocks, head chunks and live traces.
//! - [`generator`]: the metrics generator's span-metrics keys and service-graph edge store.
//! - [`ingester`]: per-tenant instances tying WAL, live traces, head chunks and block cuts.
//!
//! No Python here: the pyo3 layer lives in `core_rs/py`.

pub mod block;
pub mod blocklist;
pub mod columnar;
pub mod generator;
pub mod ingester;
pub mod limits;
pub mod live;
pub mod log;
pub mod model;
pub mod otlp;
pub mod pb;
pub mod render;
pub mod schema;
pub mod search;
#[doc(hidden)]
pub mod testdata;
pub mod traceql;
pub mod wal;
