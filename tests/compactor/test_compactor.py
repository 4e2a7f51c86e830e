"""The compactor over real blocks on the local backend: every span kept exactly once, inputs
marked compacted then deleted, retention (with a tenant override), crashed uploads cleaned,
corrupt blocks set aside without stopping the rest."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry

from tempo_fast import _core
from tempo_fast.backend import LocalBackend
from tests.compactor.conftest import TENANT, compactor, merge, request, write_blocks
from tests.e2e.traces import normalise_otlp

DAY = 86_400


def spans_found(root: Path, spans: dict[str, set[str]]) -> dict[str, set[str]]:
    """What the querier's block list answers for each trace of ``spans``."""
    blocks = _core.BlockStore(str(root))
    blocks.poll()
    found = {}
    for tid in spans:
        part, _ = blocks.find_trace(TENANT, bytes.fromhex(tid))
        if part is not None:
            body = _core.render_trace([part], "json_v1", 0)
            found[tid] = set(normalise_otlp(orjson.loads(body)["batches"]))
    return found


def test_compaction_keeps_every_span_once_and_replaces_the_inputs(tmp_path: Path) -> None:
    root = tmp_path / "blocks"
    start = (int(time.time()) - 2 * 3600) * 10**9
    reqs = [request(b, start) for b in range(4)]
    # block 2 also holds a copy of block 0's spans: they arrived twice
    ids = write_blocks(
        root, tmp_path / "wal", [[reqs[0][0]], [reqs[1][0]], [reqs[2][0], reqs[0][0]], [reqs[3][0]]]
    )
    expected = merge(*(r[1] for r in reqs))
    n_spans = sum(len(s) for s in expected.values())
    store = LocalBackend(root)
    registry = CollectorRegistry()
    c = compactor(store, tmp_path / "work", registry)

    stats = c.run_cycle()

    assert (stats.jobs, stats.blocks_in, stats.blocks_out, stats.errors) == (1, 4, 1, 0)
    assert stats.spans_out == n_spans and stats.spans_in == n_spans + len(reqs[0][1]) * 4
    found = store.scan_tenant(TENANT, {})
    (out,) = found.metas
    assert out["compactionLevel"] == 1 and out["totalSpans"] == n_spans
    assert out["totalObjects"] == len(expected)
    assert sorted(m["blockID"] for m in found.compacted) == sorted(ids)
    assert all("compactedTime" in m for m in found.compacted)
    index = store.read_blocklist(TENANT)
    assert [m["blockID"] for m in index.metas] == [out["blockID"]]
    assert len(index.compacted) == 4
    assert spans_found(root, expected) == expected
    sample = registry.get_sample_value
    assert sample("tempodb_compaction_blocks_total", {"level": "1"}) == 4
    assert sample("tempodb_compaction_objects_combined_total", {"level": "1"}) == len(reqs[0][1])
    assert sample("tempodb_compaction_spans_deduplicated_total") == len(reqs[0][1]) * 4

    # nothing more to do; after compacted_block_retention the inputs are deleted
    assert c.run_cycle().jobs == 0
    assert all((root / TENANT / i).is_dir() for i in ids)
    later = c.run_cycle(now=time.time() + 2 * 3600)
    assert later.deleted == 4
    assert not any((root / TENANT / i).exists() for i in ids)
    assert spans_found(root, expected) == expected
    assert store.read_blocklist(TENANT).compacted == ()


def test_levels_grow_as_compacted_blocks_meet_again(tmp_path: Path) -> None:
    root = tmp_path / "blocks"
    start = (int(time.time()) - 2 * 3600) * 10**9
    reqs = [request(b, start, n_traces=5) for b in range(4)]
    write_blocks(root, tmp_path / "wal", [[r[0]] for r in reqs])
    store = LocalBackend(root)
    # jobs of at most 2 blocks' traces: 4 blocks -> 2 (level 1) -> 1 (level 2)
    c = compactor(store, tmp_path / "work", max_compaction_objects=10)
    assert c.run_cycle().jobs == 2
    levels = sorted(m["compactionLevel"] for m in store.scan_tenant(TENANT, {}).metas)
    assert levels == [1, 1]
    c2 = compactor(store, tmp_path / "work")
    assert c2.run_cycle().jobs == 1
    (top,) = store.scan_tenant(TENANT, {}).metas
    assert top["compactionLevel"] == 2
    expected = merge(*(r[1] for r in reqs))
    assert spans_found(root, expected) == expected


def test_retention_marks_then_deletes_old_blocks_and_honours_tenant_overrides(
    tmp_path: Path,
) -> None:
    root = tmp_path / "blocks"
    old = (int(time.time()) - 10 * DAY) * 10**9
    (block_id,) = write_blocks(root, tmp_path / "wal", [[request(1, old)[0]]])
    store = LocalBackend(root)
    keep_longer = compactor(store, tmp_path / "work", block_retention=7 * DAY)
    keep_longer._overrides = lambda tenant: {"block_retention": 30 * DAY}
    assert keep_longer.run_cycle().marked_for_retention == 0
    c = compactor(store, tmp_path / "work", block_retention=7 * DAY)
    assert c.run_cycle().marked_for_retention == 1
    found = store.scan_tenant(TENANT, {})
    assert found.metas == [] and [m["blockID"] for m in found.compacted] == [block_id]
    assert c.run_cycle(now=time.time() + 2 * 3600).deleted == 1
    assert not (root / TENANT / block_id).exists()


def test_crashed_uploads_are_cleaned_and_corrupt_blocks_set_aside(tmp_path: Path) -> None:
    root = tmp_path / "blocks"
    start = (int(time.time()) - 2 * 3600) * 10**9
    reqs = [request(b, start) for b in range(4)]
    ids = write_blocks(root, tmp_path / "wal", [[r[0]] for r in reqs])
    tenant = root / TENANT
    # a crashed upload long ago, and one in progress now
    stale, fresh = str(uuid.uuid4()), str(uuid.uuid4())
    for name in (stale, fresh):
        (tenant / name).mkdir()
        (tenant / name / "data.parquet").write_bytes(b"PAR1")
    past = time.time() - 2 * 3600
    os.utime(tenant / stale / "data.parquet", (past, past))
    # block 0: meta.json unreadable; block 1: data truncated under a good meta
    (tenant / ids[0] / "meta.json").write_bytes(b"{not json")
    data = tenant / ids[1] / "data.parquet"
    data.write_bytes(data.read_bytes()[:100])
    store = LocalBackend(root)
    registry = CollectorRegistry()
    c = compactor(store, tmp_path / "work", registry)

    stats = c.run_cycle()

    assert stats.cleaned_incomplete == 1
    assert not (tenant / stale).exists() and (tenant / fresh).exists()
    assert stats.errors == 1, "the job with the truncated block failed"
    assert registry.get_sample_value("tempodb_compaction_errors_total") == 1
    live = {m["blockID"] for m in store.scan_tenant(TENANT, {}).metas}
    assert {ids[1], ids[2], ids[3]} <= live, "a failed job keeps its inputs"
    # the truncated block is named in the error: only it is set aside, the rest compacts
    again = c.run_cycle()
    assert again.errors == 0 and again.jobs == 1 and again.blocks_in == 2
    unreadable = registry.get_sample_value(
        "tempodb_compaction_unreadable_blocks", {"tenant": TENANT}
    )
    assert unreadable == 2
    good = merge(reqs[2][1], reqs[3][1])
    assert spans_found(root, good) == good
