"""Blocks written by the Rust core, and a compactor over them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry

from tempo_fast import _core
from tempo_fast.backend import ObjectStore
from tempo_fast.compactor import Compactor
from tempo_fast.config.model import CompactorConfig
from tests.e2e import test_crash_safety as crash_safety

TENANT = "tenant-a"
BLOCK_CONFIG = {"row_group_spans": 200, "bloom_shard_bytes": 256}

CONFIG = CompactorConfig(
    disabled=False,
    compaction_window=3600.0,
    max_compaction_objects=6_000_000,
    max_block_bytes=100 << 30,
    block_retention=0.0,  # off unless a test sets it
    compacted_block_retention=3600.0,
    compaction_cycle=30.0,
    max_time_per_tenant=300.0,
)

Spans = dict[str, set[str]]


def request(batch: int, start_ns: int, n_traces: int = 30) -> tuple[bytes, Spans]:
    """Traces of ``batch`` (ids from the batch number) starting at ``start_ns``."""
    return crash_safety.request(batch, n_traces, 4, start_ns)


def write_blocks(root: Path, wal: Path, batches: Iterable[Iterable[bytes]]) -> list[str]:
    """One complete block per item of ``batches`` (each a list of OTLP bodies) under
    ``root/<tenant>/``; returns their ids in order."""
    ing = _core.Ingester(str(wal), {"blocks_path": str(root), "fsync": "never", **BLOCK_CONFIG})
    ing.replay()
    ids: list[str] = []
    tenant_dir = root / TENANT
    for bodies in batches:
        for body in bodies:
            ing.push(TENANT, body)
        ing.flush()
        new = sorted(p.name for p in tenant_dir.iterdir() if p.is_dir() and p.name not in ids)
        assert len(new) == 1, new
        ids += new
    ing.close()
    return ids


def merge(*spans: Spans) -> Spans:
    out: Spans = {}
    for s in spans:
        for tid, ids in s.items():
            out.setdefault(tid, set()).update(ids)
    return out


def compactor(
    store: ObjectStore, work: Path, registry: CollectorRegistry | None = None, **cfg: object
) -> Compactor:
    return Compactor(
        store,
        dataclasses.replace(CONFIG, **cfg),  # type: ignore[arg-type]
        _core.compact_blocks,
        BLOCK_CONFIG,
        work,
        registry=registry or CollectorRegistry(),
    )
