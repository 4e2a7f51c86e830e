//! The querier's lists of complete blocks and trace lookups across them (bloom
//! filter first, then the block's index): [`BlockStore`] polls a local backend from
//! disk; [`SourceBlocks`] holds blocks the control plane opened from an object store.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
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
    open_failures: AtomicU64,
}

impl BlockStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        BlockStore {
            root: root.into(),
            tenants: RwLock::new(HashMap::new()),
            open_failures: AtomicU64::new(0),
        }
    }

    /// Re-reads the block list: opens new blocks (those with a `meta.json`),
    /// forgets vanished ones. Returns the block count per tenant.
    pub fn poll(&self) -> io::Result<Vec<(String, usize)>> {
        let mut next: HashMap<String, Vec<Arc<BlockReader>>> = HashMap::new();
        let known: HashMap<String, Arc<BlockReader>> =
            self.tenants.read().values().flatten().map(|b| (b.location(), b.clone())).collect();
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
                if let Some(b) = known.get(&dir.display().to_string()) {
                    blocks.push(b.clone());
                    continue;
                }
                match BlockReader::open(&dir).and_then(|b| b.warm().map(|_| b)) {
                    Ok(b) => blocks.push(Arc::new(b)),
                    Err(e) => self.failed_open(&name, &dir.display().to_string(), &e.to_string()),
                }
            }
        }
        let counts = next.iter().map(|(t, b)| (t.clone(), b.len())).collect();
        *self.tenants.write() = next;
        Ok(counts)
    }

    /// The blocks of `tenant` as of the last poll.
    pub fn blocks(&self, tenant: &str) -> Vec<Arc<BlockReader>> {
        self.tenants.read().get(tenant).cloned().unwrap_or_default()
    }

    /// Blocks that could not be opened, summed over every poll.
    pub fn open_failures(&self) -> u64 {
        self.open_failures.load(Ordering::Relaxed)
    }

    fn failed_open(&self, tenant: &str, block: &str, err: &str) {
        self.open_failures.fetch_add(1, Ordering::Relaxed);
        log::log(
            Level::Error,
            "querier",
            &format!(
                "msg=\"skipping unreadable block\" tenant={} block={} err={}",
                log::quote(tenant),
                log::quote(block),
                log::quote(err)
            ),
        );
    }

    /// The rows of `trace_id` in every block of `tenant` (one batch per block
    /// holding it). A corrupt block is skipped and counted, never fatal.
    pub fn find_trace(&self, tenant: &str, trace_id: &TraceId) -> (Vec<RecordBatch>, LookupStats) {
        let blocks = self.tenants.read().get(tenant).cloned().unwrap_or_default();
        find_in(&blocks, trace_id)
    }
}

/// The rows of `trace_id` in `blocks` (one batch per block holding it). A corrupt or
/// unreadable block is skipped, logged and counted, never fatal.
pub fn find_in(blocks: &[Arc<BlockReader>], trace_id: &TraceId) -> (Vec<RecordBatch>, LookupStats) {
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
                        log::quote(&b.location()),
                        log::quote(&e.to_string())
                    ),
                );
            }
        }
    }
    (out, stats)
}

/// Blocks opened from sources the control plane manages (an object store's block
/// list), per tenant and block id.
#[derive(Default)]
pub struct SourceBlocks {
    tenants: RwLock<HashMap<String, HashMap<String, Arc<BlockReader>>>>,
}

impl SourceBlocks {
    /// Adds (or replaces) a block of `tenant`.
    pub fn insert(&self, tenant: &str, block_id: &str, block: Arc<BlockReader>) {
        self.tenants
            .write()
            .entry(tenant.to_string())
            .or_default()
            .insert(block_id.to_string(), block);
    }

    /// Whether `tenant` has block `block_id`.
    pub fn contains(&self, tenant: &str, block_id: &str) -> bool {
        self.tenants.read().get(tenant).is_some_and(|b| b.contains_key(block_id))
    }

    /// Forgets `tenant`'s blocks not in `keep` (gone from the block list).
    pub fn retain(&self, tenant: &str, keep: &HashSet<String>) {
        let mut g = self.tenants.write();
        if let Some(blocks) = g.get_mut(tenant) {
            blocks.retain(|id, _| keep.contains(id));
            if blocks.is_empty() {
                g.remove(tenant);
            }
        }
    }

    /// Blocks per tenant.
    pub fn counts(&self) -> Vec<(String, usize)> {
        self.tenants.read().iter().map(|(t, b)| (t.clone(), b.len())).collect()
    }

    /// The blocks of `tenant`.
    pub fn blocks(&self, tenant: &str) -> Vec<Arc<BlockReader>> {
        self.tenants.read().get(tenant).map(|b| b.values().cloned().collect()).unwrap_or_default()
    }

    /// As [`BlockStore::find_trace`].
    pub fn find_trace(&self, tenant: &str, trace_id: &TraceId) -> (Vec<RecordBatch>, LookupStats) {
        find_in(&self.blocks(tenant), trace_id)
    }
}
