//! OTLP trace requests: decoding, validation and the export response.
//!
//! - [`scan`] indexes and validates an `ExportTraceServiceRequest` protobuf buffer
//!   without copying it ([`crate::model::Request`]).
//! - [`json_to_protobuf`] translates OTLP/JSON into that protobuf form,
//!   [`zipkin_json_to_protobuf`] Zipkin v2 JSON, [`zipkin_proto_to_protobuf`] Zipkin v2
//!   protobuf, [`zipkin_v1_json_to_protobuf`] and [`zipkin_v1_thrift_to_protobuf`]
//!   Zipkin v1, [`jaeger_agent_to_protobuf`],
//!   [`jaeger_thrift_to_protobuf`] and [`jaeger_proto_to_protobuf`] Jaeger's thrift
//!   and protobuf batches.
//! - [`gunzip`] inflates a gzip body with a cap on the inflated size.
//! - [`view`] holds the borrowed message views every stage shares.

mod jaeger;
mod json;
pub mod rewrite;
mod scan;
pub mod view;
mod zipkin;

use std::io::Read;

use crate::pb::{put_bytes_field, put_message, put_varint_field};

pub use rewrite::{long_attributes, rewrite, Truncated};
pub use scan::scan;

/// Why a request body was refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid protobuf: {0}")]
    Protobuf(String),
    #[error("invalid OTLP JSON: {0}")]
    Json(String),
    #[error("invalid Zipkin v2 JSON: {0}")]
    ZipkinJson(String),
    #[error("invalid Zipkin v2 protobuf: {0}")]
    ZipkinProto(String),
    #[error("invalid Zipkin v1 JSON: {0}")]
    ZipkinV1Json(String),
    #[error("invalid Zipkin v1 thrift: {0}")]
    ZipkinV1Thrift(String),
    #[error("invalid Jaeger thrift: {0}")]
    Thrift(String),
    #[error("invalid gzip body: {0}")]
    Gzip(String),
    #[error("request body larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
}

impl DecodeError {
    /// The `reason` label of `tempo_distributor_requests_refused_total`.
    pub fn reason_code(&self) -> &'static str {
        match self {
            DecodeError::Protobuf(_) | DecodeError::ZipkinProto(_) => "invalid_protobuf",
            DecodeError::Json(_) | DecodeError::ZipkinJson(_) | DecodeError::ZipkinV1Json(_) => {
                "invalid_json"
            }
            DecodeError::ZipkinV1Thrift(_) => "invalid_thrift",
            DecodeError::Gzip(_) => "invalid_gzip",
            DecodeError::Thrift(_) => "invalid_thrift",
            DecodeError::TooLarge { .. } => "too_large",
        }
    }
}

/// Inflates a gzip body (concatenated members too); refuses it once the inflated
/// size passes `max_bytes`, without inflating further.
pub fn gunzip(body: &[u8], max_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max_bytes));
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(max_bytes as u64 + 1);
    dec.read_to_end(&mut out).map_err(|e| DecodeError::Gzip(e.to_string()))?;
    if out.len() > max_bytes {
        return Err(DecodeError::TooLarge { limit: max_bytes });
    }
    Ok(out)
}

/// OTLP/JSON `ExportTraceServiceRequest` to its protobuf encoding.
pub fn json_to_protobuf(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    json::json_to_protobuf(body).map_err(DecodeError::Json)
}

/// Zipkin v2 JSON spans to an OTLP `ExportTraceServiceRequest` protobuf.
/// `parse_string_tags` types tag values that read as numbers or booleans.
pub fn zipkin_json_to_protobuf(
    body: &[u8],
    parse_string_tags: bool,
) -> Result<Vec<u8>, DecodeError> {
    zipkin::zipkin_v2_json(body, parse_string_tags).map_err(DecodeError::ZipkinJson)
}

/// Zipkin v2 protobuf `ListOfSpans` to an OTLP `ExportTraceServiceRequest` protobuf.
/// `parse_string_tags` as for [`zipkin_json_to_protobuf`].
pub fn zipkin_proto_to_protobuf(
    body: &[u8],
    parse_string_tags: bool,
) -> Result<Vec<u8>, DecodeError> {
    zipkin::zipkin_v2_proto(body, parse_string_tags).map_err(DecodeError::ZipkinProto)
}

/// Zipkin v1 JSON spans to an OTLP `ExportTraceServiceRequest` protobuf.
pub fn zipkin_v1_json_to_protobuf(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    zipkin::zipkin_v1_json_to_otlp(body).map_err(DecodeError::ZipkinV1Json)
}

/// Zipkin v1 thrift (a TBinaryProtocol list of `Span`) to an OTLP protobuf.
pub fn zipkin_v1_thrift_to_protobuf(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    zipkin::zipkin_v1_thrift_to_otlp(body).map_err(DecodeError::ZipkinV1Thrift)
}

/// A Jaeger agent UDP datagram (`emitBatch`, thrift compact or binary) to OTLP protobuf.
pub fn jaeger_agent_to_protobuf(datagram: &[u8], compact: bool) -> Result<Vec<u8>, DecodeError> {
    jaeger::jaeger_agent_to_otlp(datagram, compact).map_err(DecodeError::Thrift)
}

/// A Jaeger collector thrift `Batch` (HTTP `/api/traces`) to OTLP protobuf.
pub fn jaeger_thrift_to_protobuf(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    jaeger::jaeger_thrift_batch_to_otlp(body).map_err(DecodeError::Thrift)
}

/// A Jaeger gRPC `PostSpansRequest` to OTLP protobuf.
pub fn jaeger_proto_to_protobuf(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    jaeger::jaeger_proto_to_otlp(body).map_err(|e| DecodeError::Protobuf(format!("jaeger: {e}")))
}

/// The `ExportTraceServiceResponse`: empty when everything was accepted, else
/// `partial_success { rejected_spans, error_message }`.
pub fn export_response(rejected: u64, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if rejected == 0 && message.is_empty() {
        return out;
    }
    put_message(&mut out, 1, |o| {
        if rejected > 0 {
            put_varint_field(o, 1, rejected);
        }
        if !message.is_empty() {
            put_bytes_field(o, 2, message.as_bytes());
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_caps_the_inflated_size() {
        let body = gz(&vec![0u8; 10_000]);
        assert_eq!(gunzip(&body, 10_000).unwrap().len(), 10_000);
        assert_eq!(gunzip(&body, 9_999), Err(DecodeError::TooLarge { limit: 9_999 }));
        assert_eq!(gunzip(b"not gzip", 100).unwrap_err().reason_code(), "invalid_gzip");
        let mut two = gz(b"ab");
        two.extend(gz(b"cd"));
        assert_eq!(gunzip(&two, 100).unwrap(), b"abcd");
    }

    #[test]
    fn export_response_shapes() {
        assert!(export_response(0, "").is_empty());
        assert_eq!(export_response(2, "x"), vec![0x0a, 0x05, 0x08, 0x02, 0x12, 0x01, b'x']);
    }
}
