//! The `host-info` processor's lookup (Tempo's `hostinfo`): per resource, the first
//! configured host identifier attribute holding a non-empty string.

use super::attrs::{scan_attrs, KeySet};
use crate::model::Request;
use crate::otlp::view::AnyValue;

/// The distinct `(host id, identifier attribute)` pairs of the request's resources, in
/// first-seen order. `identifiers` are tried in order for each resource.
pub fn host_ids(req: &Request, identifiers: &[String]) -> Vec<(String, String)> {
    let mut keys = KeySet::default();
    for id in identifiers {
        keys.slot(id);
    }
    let mut found = keys.found();
    let mut out: Vec<(String, String)> = Vec::new();
    for r in &req.resources {
        scan_attrs(r.resource.get(&req.buf), 1, &keys, &mut found);
        let hit = identifiers.iter().enumerate().find_map(|(slot, id)| match found.value(slot) {
            Some(AnyValue::Str(s)) if !s.is_empty() => Some((s.to_string(), id.clone())),
            _ => None,
        });
        if let Some(pair) = hit {
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    out
}
