"""The compactor against moto's S3 (through the fault proxy): inputs read by ranged GETs, the
outputs uploaded meta.json last, the inputs marked compacted; a store that fails mid-job
keeps every input and the next cycle finishes; queriers polling the index see each trace."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from tempo_fast import _core
from tempo_fast.backend import S3Backend
from tempo_fast.compactor import staged_block
from tempo_fast.querier.querier import ObjectStoreBlocks
from tests.backend.conftest import FAST_RETRY, s3_config
from tests.backend.faults import FaultProxy
from tests.compactor.conftest import TENANT, compactor, merge, request, write_blocks


def test_compaction_in_s3_survives_a_failing_store(
    tmp_path: Path, bucket: str, proxy: FaultProxy
) -> None:
    proxy.reset()
    store = S3Backend(s3_config(bucket, proxy.endpoint), retry=FAST_RETRY)
    start = (int(time.time()) - 2 * 3600) * 10**9
    reqs = [request(b, start) for b in range(3)]
    staging = tmp_path / "staging"
    ids = write_blocks(staging, tmp_path / "wal", [[r[0]] for r in reqs])
    for block_id in ids:
        store.upload_block(TENANT, block_id, staging / TENANT / block_id)
    store.rebuild_blocklist(TENANT, {})
    expected = merge(*(r[1] for r in reqs))
    registry = CollectorRegistry()
    c = compactor(store, tmp_path / "work", registry)

    # uploads of the output's data fail: the job fails, the inputs stay listed
    proxy.fail(10_000, 503, match=lambda method, path: method == "PUT" and "data.parquet" in path)
    failed = c.run_cycle()
    assert failed.jobs == 0 and failed.errors == 1
    assert registry.get_sample_value("tempodb_compaction_errors_total") == 1
    proxy.reset()
    found = store.scan_tenant(TENANT, {})
    assert sorted(m["blockID"] for m in found.metas) == sorted(ids)

    # the store is back: a new compactor (the old one set the inputs aside) finishes
    c = compactor(store, tmp_path / "work")
    stats = c.run_cycle()
    assert (stats.jobs, stats.blocks_in, stats.blocks_out) == (1, 3, 1)
    assert proxy.requests("GET"), "inputs were read from the store"
    index = store.read_blocklist(TENANT)
    (out,) = index.metas
    assert out["compactionLevel"] == 1 and len(index.compacted) == 3
    assert not (tmp_path / "work" / TENANT).exists(), "the work dir is cleaned"

    # a querier polling the index answers every trace, every span once
    remote = ObjectStoreBlocks(store, _core.RemoteBlocks(), lambda tenant: set())
    remote.poll()
    assert remote.blocks.counts() == {TENANT: 1}
    for tid, spans in expected.items():
        part, _ = remote.blocks.find_trace(TENANT, bytes.fromhex(tid))
        assert part is not None and part.spans == len(spans)
    store.close()


def test_staged_inputs_are_read_from_local_disk(
    tmp_path: Path, bucket: str, proxy: FaultProxy
) -> None:
    proxy.reset()
    store = S3Backend(s3_config(bucket, proxy.endpoint), retry=FAST_RETRY)
    start = (int(time.time()) - 2 * 3600) * 10**9
    staging = tmp_path / "staging"
    ids = write_blocks(staging, tmp_path / "wal", [[request(b, start)[0]] for b in range(2)])
    for block_id in ids:
        store.upload_block(TENANT, block_id, staging / TENANT / block_id)
    c = compactor(store, tmp_path / "work")
    c._staged = staged_block(staging)
    proxy.reset()
    assert c.run_cycle().jobs == 1
    data_gets = [r for r in proxy.requests("GET") if r.path.endswith("data.parquet")]
    assert data_gets == [], "staged blocks are not downloaded"
    store.close()
