//! The compactor's one call into the core: merge blocks into new ones.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tempo_core::block::{compact, BlockConfig, BlockReader, CompactLimits};

use crate::{block_config, runtime, PySource};

/// Where an input block is read from: a local directory, or `(store, "<tenant>/<block-id>")`
/// read through the store's `get` / `get_range` / `get_ranges`.
enum Input {
    Dir(PathBuf),
    Store(Py<PyAny>, String),
}

fn input(obj: &Bound<'_, PyAny>) -> PyResult<Input> {
    if let Ok(t) = obj.cast::<PyTuple>() {
        let (store, prefix): (Py<PyAny>, String) = t.extract()?;
        return Ok(Input::Store(store, prefix));
    }
    match obj.extract::<PathBuf>() {
        Ok(p) => Ok(Input::Dir(p)),
        Err(_) => Err(PyValueError::new_err(
            "an input block is a directory path or a (store, '<tenant>/<block-id>') tuple",
        )),
    }
}

/// Merges the `inputs` blocks of `tenant` into new blocks of compaction level `level`
/// under `out_root/<block-id>/` (each complete, `meta.json` last), closing an output at
/// `max_block_bytes` data bytes or `max_block_traces` traces. `config` holds the block
/// layout keys of the core config. Returns the outputs' `meta.json` texts and the stats
/// (`spans_in`, `spans_out`, `traces_combined`, `bytes_read`). The GIL is released.
#[pyfunction]
#[pyo3(signature = (inputs, out_root, tenant, level, config, max_block_bytes, max_block_traces))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn compact_blocks<'py>(
    py: Python<'py>,
    inputs: Vec<Bound<'py, PyAny>>,
    out_root: PathBuf,
    tenant: &str,
    level: u32,
    config: &Bound<'py, PyDict>,
    max_block_bytes: u64,
    max_block_traces: u64,
) -> PyResult<(Vec<String>, Bound<'py, PyDict>)> {
    let mut cfg = BlockConfig::default();
    block_config(config, &mut cfg)?;
    let inputs = inputs.iter().map(input).collect::<PyResult<Vec<_>>>()?;
    let limits = CompactLimits {
        max_block_bytes: max_block_bytes.max(1),
        max_block_traces: max_block_traces.max(1),
    };
    let done = py
        .detach(|| {
            let readers = inputs
                .into_iter()
                .map(|i| {
                    let r = match i {
                        Input::Dir(dir) => BlockReader::open(&dir)?,
                        Input::Store(store, prefix) => {
                            BlockReader::open_source(Arc::new(PySource { store, prefix }))?
                        }
                    };
                    Ok(Arc::new(r))
                })
                .collect::<Result<Vec<_>, tempo_core::block::BlockError>>()?;
            compact(&readers, &out_root, tenant, level, &cfg, limits)
        })
        .map_err(runtime)?;
    let metas = done
        .blocks
        .iter()
        .map(|m| serde_json::to_string(m).map_err(runtime))
        .collect::<PyResult<Vec<_>>>()?;
    let stats = PyDict::new(py);
    stats.set_item("spans_in", done.merge.rows_in)?;
    stats.set_item("spans_out", done.merge.rows_out)?;
    stats.set_item("traces_combined", done.merge.traces_combined)?;
    stats.set_item("bytes_read", done.bytes_read)?;
    Ok((metas, stats))
}
