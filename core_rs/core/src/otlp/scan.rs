//! Indexes and validates an `ExportTraceServiceRequest` without copying it.

use std::sync::Arc;

use super::view::{ResourceHead, ScopeHead, SpanView};
use super::DecodeError;
use crate::model::{Rejected, Request, ResourceRef, ScopeRef, Slice, SpanRef};
use crate::pb::{PbError, Reader, Value};

fn at(path: impl FnOnce() -> String) -> impl FnOnce(PbError) -> DecodeError {
    move |e| DecodeError::Protobuf(format!("{}: {e}", path()))
}

/// Validates every message of the request (structure, UTF-8, nesting depth) and
/// indexes its valid spans. Spans with an invalid trace or span id are left out
/// and counted in [`Request::rejected`]; anything else invalid refuses the request.
pub fn scan(buf: Arc<[u8]>) -> Result<Request, DecodeError> {
    let mut req = Request {
        buf: buf.clone(),
        resources: Vec::new(),
        scopes: Vec::new(),
        spans: Vec::new(),
        rejected: Rejected::default(),
    };
    let mut r = Reader::new(&buf);
    while let Some(f) = r.next_field().map_err(at(|| "request".to_string()))? {
        if let (1, Value::Bytes { data, offset }) = (f.number, f.value) {
            resource_spans(data, offset, &mut req)?;
        }
    }
    Ok(req)
}

/// A `schema_url` field (number 3 of ResourceSpans and ScopeSpans), which must be UTF-8.
fn schema_url(
    data: &[u8],
    offset: usize,
    path: impl FnOnce() -> String,
) -> Result<Slice, DecodeError> {
    std::str::from_utf8(data)
        .map_err(|_| PbError::InvalidUtf8 { field: 3 })
        .map_err(at(|| format!("{}.schema_url", path())))?;
    Ok(Slice::new(offset, data.len()))
}

fn resource_spans(buf: &[u8], base: usize, req: &mut Request) -> Result<(), DecodeError> {
    let ri = req.resources.len();
    let path = || format!("resource_spans[{ri}]");
    req.resources.push(ResourceRef::default());
    let mut r = Reader::with_base(buf, base);
    let mut si = 0;
    while let Some(f) = r.next_field().map_err(at(path))? {
        match (f.number, f.value) {
            (1, Value::Bytes { data, offset }) => {
                ResourceHead::parse(data).map_err(at(|| format!("{}.resource", path())))?;
                req.resources[ri].resource = Slice::new(offset, data.len());
            }
            (2, Value::Bytes { data, offset }) => {
                scope_spans(data, offset, ri, si, req)?;
                si += 1;
            }
            (3, Value::Bytes { data, offset }) => {
                req.resources[ri].schema_url = schema_url(data, offset, path)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn scope_spans(
    buf: &[u8],
    base: usize,
    ri: usize,
    si: usize,
    req: &mut Request,
) -> Result<(), DecodeError> {
    let path = || format!("resource_spans[{ri}].scope_spans[{si}]");
    let sc = req.scopes.len() as u32;
    req.scopes.push(ScopeRef { resource: ri as u32, ..Default::default() });
    let mut r = Reader::with_base(buf, base);
    let mut n = 0;
    while let Some(f) = r.next_field().map_err(at(path))? {
        match (f.number, f.value) {
            (1, Value::Bytes { data, offset }) => {
                ScopeHead::parse(data).map_err(at(|| format!("{}.scope", path())))?;
                req.scopes[sc as usize].scope = Slice::new(offset, data.len());
            }
            (2, Value::Bytes { data, offset }) => {
                let s = SpanView::parse(data).map_err(at(|| format!("{}.spans[{n}]", path())))?;
                n += 1;
                if let Some(span) = valid_span(&s, sc, offset, &mut req.rejected) {
                    req.spans.push(span);
                }
            }
            (3, Value::Bytes { data, offset }) => {
                req.scopes[sc as usize].schema_url = schema_url(data, offset, path)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The span's index entry, or None (counted) when its ids are invalid: a trace id
/// must be 16 bytes and a span id 8 bytes, neither all zero; a parent span id is
/// empty or 8 bytes.
fn valid_span(
    s: &SpanView<'_>,
    scope: u32,
    offset: usize,
    rejected: &mut Rejected,
) -> Option<SpanRef> {
    let Ok(trace_id) = <[u8; 16]>::try_from(s.trace_id) else {
        rejected.invalid_trace_id += 1;
        return None;
    };
    if trace_id == [0; 16] {
        rejected.invalid_trace_id += 1;
        return None;
    }
    let span_id = match <[u8; 8]>::try_from(s.span_id) {
        Ok(id) if id != [0; 8] && (s.parent_span_id.is_empty() || s.parent_span_id.len() == 8) => {
            id
        }
        _ => {
            rejected.invalid_span_id += 1;
            return None;
        }
    };
    Some(SpanRef {
        scope,
        msg: Slice::new(offset, s.msg.len()),
        trace_id,
        span_id,
        start_unix_nano: s.start_unix_nano,
        end_unix_nano: s.end_unix_nano,
        parent_span_id: s.parent_span_id.try_into().unwrap_or([0; 8]),
        kind: s.kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn indexes_a_generated_request() {
        let (body, n) = testdata::request(7, 200);
        let req = scan(Arc::from(body)).unwrap();
        assert_eq!(req.spans.len(), n);
        assert_eq!(req.rejected, Rejected::default());
        for s in &req.spans {
            let v = SpanView::parse(s.msg.get(&req.buf)).unwrap();
            assert_eq!(v.trace_id, s.trace_id);
            assert_eq!(v.span_id, s.span_id);
            let scope = req.scope_of(s);
            assert!(!scope.scope.is_empty());
            assert!(!req.resource_of(s).resource.is_empty());
        }
    }

    #[test]
    fn bad_ids_are_rejected_per_span() {
        let body = testdata::request_with_ids(&[
            (vec![1; 16], vec![1; 8], vec![]),
            (vec![0; 16], vec![2; 8], vec![]),
            (vec![1; 15], vec![3; 8], vec![]),
            (vec![1; 16], vec![0; 8], vec![]),
            (vec![1; 16], vec![4; 7], vec![]),
            (vec![1; 16], vec![5; 8], vec![1; 3]),
            (vec![1; 16], vec![6; 8], vec![1; 8]),
        ]);
        let req = scan(Arc::from(body)).unwrap();
        assert_eq!(req.spans.len(), 2);
        assert_eq!(req.rejected, Rejected { invalid_trace_id: 2, invalid_span_id: 3 });
    }

    #[test]
    fn truncation_anywhere_is_an_error_never_a_panic() {
        let (body, _) = testdata::request(3, 20);
        for cut in 1..body.len() {
            let _ = scan(Arc::from(&body[..cut]));
        }
        let err = scan(Arc::from(&body[..body.len() - 3])).unwrap_err();
        assert_eq!(err.reason_code(), "invalid_protobuf");
        assert!(err.to_string().contains("unexpected end"), "{err}");
    }

    #[test]
    fn errors_name_the_message_path() {
        use crate::pb::{put_bytes_field, put_message};
        let mut body = Vec::new();
        put_message(&mut body, 1, |rs| {
            put_message(rs, 2, |ss| {
                put_message(ss, 2, |s| put_bytes_field(s, 5, b"ok"));
                put_message(ss, 2, |s| put_bytes_field(s, 5, &[0xc3, 0x28]));
            })
        });
        let err = scan(Arc::from(body)).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid protobuf: resource_spans[0].scope_spans[0].spans[1]: field 5 is not valid UTF-8"
        );
    }
}
