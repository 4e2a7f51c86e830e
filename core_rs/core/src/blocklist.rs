//! The querier's list of complete blocks in a local backend, polled from disk,
//! and trace lookups across them (bloom filter first, then the block's index).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use parking_lot::RwLock;

use crate::block::BlockReader;
use crate::ingester::valid_tenant;
use crate::log::{self, Level};
use crate::model::TraceId;

/// Figures of one lookup.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LookupStats {
    pub blocks_checked: u64,
    pub blocks_read: u64,
    pub bytes_read: u64,
    pub reads: u64,
    pub errors: u64,
}

/// Complete blocks per tenant, as of the last [`BlockStore::poll`].
pub struct BlockStore {
    root: PathBuf,
    tenants: RwLock<HashMap<String, Vec<Arc<BlockReader>>>>,
}

impl BlockStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        BlockStore { root: root.into(), tenants: RwLock::new(HashMap::new()) }
    }

    /// Re-reads the block list: opens new blocks (those with a `meta.json`),
    /// forgets vanished ones. Returns the block count per tenant.
    pub fn poll(&self) -> io::Result<Vec<(String, usize)>> {
        let mut next: HashMap<String, Vec<Arc<BlockReader>>> = HashMap::new();
        let known: HashMap<PathBuf, Arc<BlockReader>> = self
            .tenants
            .read()
            .values()
            .flatten()
            .map(|b| (b.dir().to_path_buf(), b.clone()))
            .collect();
        let tenants = match fs::read_dir(&self.root) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        for tenant in tenants.flatten() {
            let name = tenant.file_name().to_string_lossy().into_owned();
            if !valid_tenant(&name) || !tenant.path().is_dir() {
                continue;
            }
            let blocks = next.entry(name.clone()).or_default();
            for entry in fs::read_dir(tenant.path())?.flatten() {
                let dir = entry.path();
                if !dir.join("meta.json").is_file() {
                    continue; // being written, or a crashed upload
                }
                if let Some(b) = known.get(&dir) {
                    blocks.push(b.clone());
                    continue;
                }
                match BlockReader::open(&dir).and_then(|b| b.warm().map(|_| b)) {
                    Ok(b) => blocks.push(Arc::new(b)),
                    Err(e) => log::log(
                        Level::Error,
                        "querier",
                        &format!(
                            "msg=\"skipping unreadable block\" tenant={} block={} err={}",
                            log::quote(&name),
                            log::quote(&dir.display().to_string()),
                            log::quote(&e.to_string())
                        ),
                    ),
                }
            }
        }
        let counts = next.iter().map(|(t, b)| (t.clone(), b.len())).collect();
        *self.tenants.write() = next;
        Ok(counts)
    }

    /// The rows of `trace_id` in every block of `tenant` (one batch per block
    /// holding it). A corrupt block is skipped and counted, never fatal.
    pub fn find_trace(&self, tenant: &str, trace_id: &TraceId) -> (Vec<RecordBatch>, LookupStats) {
        let blocks = self.tenants.read().get(tenant).cloned().unwrap_or_default();
        let mut stats = LookupStats::default();
        let mut out = Vec::new();
        for b in blocks {
            stats.blocks_checked += 1;
            if !b.might_contain(trace_id) {
                continue;
            }
            stats.blocks_read += 1;
            match b.find_trace_with_stats(trace_id) {
                Ok((batch, read)) => {
                    stats.bytes_read += read.bytes;
                    stats.reads += read.reads;
                    out.extend(batch);
                }
                Err(e) => {
                    stats.errors += 1;
                    log::log(
                        Level::Error,
                        "querier",
                        &format!(
                            "msg=\"block read failed\" block={} err={}",
                            log::quote(&b.dir().display().to_string()),
                            log::quote(&e.to_string())
                        ),
                    );
                }
            }
        }
        (out, stats)
    }
}
