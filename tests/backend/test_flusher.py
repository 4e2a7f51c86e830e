"""The block flusher: staged blocks go to the store (meta.json last) and into the tenant
index; a failing store keeps them staged and retried; a restart does not upload twice."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from tempo_fast.backend import S3Backend
from tempo_fast.ingester.flusher import BlockFlusher
from tests.backend.conftest import FAST_RETRY, Block, s3_config
from tests.backend.faults import FaultProxy


def staging_with(block: Block, tmp_path: Path) -> Path:
    staging = tmp_path / "staging"
    shutil.copytree(block.path, staging / block.tenant / block.block_id)
    return staging


def metric(registry: CollectorRegistry, name: str, labels: dict[str, str]) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_staged_blocks_are_uploaded_and_indexed(block: Block, tmp_path: Path, s3_store) -> None:
    registry = CollectorRegistry()
    flusher = BlockFlusher(s3_store, staging_with(block, tmp_path), registry)
    assert [(t, b) for t, b, _ in flusher.pending()] == [(block.tenant, block.block_id)]
    assert flusher.flush() == 1
    assert flusher.pending() == [] and flusher.flush() == 0
    assert s3_store.read_meta(block.tenant, block.block_id)["blockID"] == block.block_id
    index = s3_store.read_blocklist(block.tenant)
    assert [m["blockID"] for m in index.metas] == [block.block_id]
    labels = {"tenant": block.tenant}
    assert metric(registry, "tempo_ingester_blocks_uploaded_total", labels) == 1


def test_a_failing_store_keeps_the_block_and_retries(
    block: Block, tmp_path: Path, bucket: str, proxy: FaultProxy
) -> None:
    proxy.reset()
    store = S3Backend(s3_config(bucket, proxy.endpoint), retry=FAST_RETRY)
    registry = CollectorRegistry()
    staging = staging_with(block, tmp_path)
    flusher = BlockFlusher(store, staging, registry, backoff_max=0.0)
    proxy.fail(1000, 503)
    assert flusher.flush() == 0
    failed = {"tenant": block.tenant, "kind": "unavailable"}
    assert metric(registry, "tempo_ingester_flush_failures_total", failed) == 1
    assert (staging / block.tenant / block.block_id / "meta.json").is_file(), "kept locally"
    proxy.reset()
    assert flusher.flush() == 1
    assert store.read_meta(block.tenant, block.block_id)["blockID"] == block.block_id
    # a new flusher (a restart) finds it uploaded: no second upload
    puts = len(proxy.requests("PUT"))
    assert BlockFlusher(store, staging, CollectorRegistry()).flush() == 0
    assert len(proxy.requests("PUT")) == puts
    store.close()


def test_uploaded_blocks_leave_local_disk_after_complete_block_timeout(
    block: Block, tmp_path: Path, s3_store
) -> None:
    staging = staging_with(block, tmp_path)
    local = staging / block.tenant / block.block_id
    flusher = BlockFlusher(s3_store, staging, CollectorRegistry(), keep_uploaded=0.3)
    removed: list[bool] = []
    flusher.on_removed(lambda: removed.append(True))
    assert flusher.flush() == 1
    assert local.is_dir(), "kept for complete_block_timeout"
    time.sleep(0.4)
    assert flusher.flush() == 0
    assert not local.exists() and removed == [True]
    assert s3_store.read_meta(block.tenant, block.block_id)["blockID"] == block.block_id
    assert flusher.flush() == 0 and flusher.pending() == []
