"""The compactor: merges each tenant's blocks, applies retention and cleans up.

Every ``compaction_cycle``, per tenant (Tempo's ``compactor.compaction`` keys, with the
tenant's ``compaction`` overrides):

1. **List** the tenant's blocks and rewrite its tenant index from that listing, so pollers
   converge on what the store holds whoever wrote last.
2. **Retention**: a block whose end is older than ``block_retention`` is marked compacted; a
   compacted block is deleted ``compacted_block_retention`` after it was marked; a block with
   no meta at all (a crashed upload or compaction) is deleted once nothing has been written to
   it for ``compacted_block_retention`` (5 minutes at least).
3. **Compaction**: jobs from the time-window selector run one by one (at most
   ``max_time_per_tenant`` per tenant): the Rust core merges the inputs row group by row group
   into new blocks (spans that arrived twice are kept once), the outputs are uploaded
   ``meta.json`` last and listed, and only then are the inputs marked compacted. A reader
   polling at any moment sees the inputs, both, or the outputs: every trace at least once,
   and a trace-by-id lookup combines parts span by span, so exactly once.

A job that fails leaves its inputs as they were; an input that makes jobs fail is set aside
for a while and counted, never retried in a tight loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge

from tempo_fast.backend import BackendError, BlockMeta, LocalBackend, ObjectStore, TenantBlocks
from tempo_fast.backend.objects import META
from tempo_fast.compactor.selector import Job, parse_time, select
from tempo_fast.config.model import CompactorConfig
from tempo_fast.pkg.log import get_logger

_log = get_logger("compactor")

# Cycles an input block that made a job fail is left out of compaction.
QUARANTINE_CYCLES = 10
# Seconds without a write before a block with no meta counts as a crashed upload (at least).
INCOMPLETE_GRACE_MIN = 300.0


class CompactFn(Protocol):
    """``tempo_fast._core.compact_blocks``."""

    def __call__(
        self,
        inputs: list[Any],
        out_root: str,
        tenant: str,
        level: int,
        config: Mapping[str, Any],
        max_block_bytes: int,
        max_block_traces: int,
    ) -> tuple[list[str], dict[str, int]]: ...


@dataclass
class CycleStats:
    """What one cycle did (all tenants)."""

    jobs: int = 0
    blocks_in: int = 0
    blocks_out: int = 0
    spans_in: int = 0
    spans_out: int = 0
    marked_for_retention: int = 0
    deleted: int = 0
    cleaned_incomplete: int = 0
    errors: int = 0
    seconds: float = 0.0


@dataclass
class _TenantState:
    metas: dict[tuple[str, str], BlockMeta] = field(default_factory=dict)
    quarantine: dict[str, int] = field(default_factory=dict)  # block id -> cycles left


class _CompactorMetrics:
    """Tempo's compactor metrics (counters get ``_total``)."""

    _SPECS: tuple[tuple[str, type, str, str, tuple[str, ...]], ...] = (
        (
            "blocks",
            Counter,
            "tempodb_compaction_blocks",
            "Blocks compacted (inputs), by the output's level.",
            ("level",),
        ),
        (
            "objects",
            Counter,
            "tempodb_compaction_objects_written",
            "Traces written by compaction, by the output's level.",
            ("level",),
        ),
        (
            "bytes",
            Counter,
            "tempodb_compaction_bytes_written",
            "Data bytes written by compaction, by the output's level.",
            ("level",),
        ),
        (
            "combined",
            Counter,
            "tempodb_compaction_objects_combined",
            "Traces found in several input blocks and combined into one.",
            ("level",),
        ),
        (
            "spans_dropped",
            Counter,
            "tempodb_compaction_spans_deduplicated",
            "Spans that arrived more than once, dropped by compaction.",
            (),
        ),
        (
            "errors",
            Counter,
            "tempodb_compaction_errors",
            "Compaction jobs that failed (the inputs are kept).",
            (),
        ),
        (
            "marked",
            Counter,
            "tempodb_retention_marked_compacted",
            "Blocks marked compacted because they outlived block_retention.",
            (),
        ),
        (
            "deleted",
            Counter,
            "tempodb_retention_deleted",
            "Compacted blocks deleted after compacted_block_retention.",
            (),
        ),
        (
            "cleaned",
            Counter,
            "tempodb_compaction_incomplete_blocks_deleted",
            "Blocks with no meta (crashed uploads or compactions) deleted.",
            (),
        ),
        (
            "retention_errors",
            Counter,
            "tempodb_retention_errors",
            "Retention and cleanup operations that failed (retried next cycle).",
            (),
        ),
        (
            "unreadable",
            Gauge,
            "tempodb_compaction_unreadable_blocks",
            "Blocks whose meta cannot be read or that made a compaction fail, set aside.",
            ("tenant",),
        ),
        (
            "outstanding",
            Gauge,
            "tempodb_compaction_outstanding_blocks",
            "Blocks the selector would compact, as of the last cycle.",
            ("tenant",),
        ),
    )

    blocks: Counter
    objects: Counter
    bytes: Counter
    combined: Counter
    spans_dropped: Counter
    errors: Counter
    marked: Counter
    deleted: Counter
    cleaned: Counter
    retention_errors: Counter
    unreadable: Gauge
    outstanding: Gauge

    def __init__(self, registry: CollectorRegistry | None) -> None:
        for attr, kind, name, doc, labels in self._SPECS:
            setattr(self, attr, kind(name, doc, list(labels), registry=registry))


class Compactor:
    """Compaction, retention and cleanup of every tenant's blocks in ``store``."""

    def __init__(
        self,
        store: ObjectStore,
        cfg: CompactorConfig,
        compact: CompactFn,
        block_config: Mapping[str, Any],
        work_dir: str | Path,
        tenant_overrides: Callable[[str], Mapping[str, Any]] = lambda _: {},
        staged: Callable[[str, str], Path | None] = lambda _t, _b: None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._store = store
        self._cfg = cfg
        self._compact = compact
        self._block_config = dict(block_config)
        self._work = Path(work_dir)
        self._overrides = tenant_overrides
        self._staged = staged
        self._tenants: dict[str, _TenantState] = {}
        self._listeners: list[Callable[[], None]] = []
        self._m = _CompactorMetrics(registry)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from the compactor's thread) after the block list changed."""
        self._listeners.append(listener)

    # -- the cycle ----------------------------------------------------------------------------

    def run_cycle(self, now: float | None = None) -> CycleStats:
        """One pass over every tenant (blocking). Never raises for a store failure."""
        started = time.monotonic()
        stats = CycleStats()
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self._work)  # what a crashed job left
        try:
            tenants = self._store.list_tenants()
        except BackendError as e:
            stats.errors += 1
            _log.error("listing tenants failed; retrying next cycle", err=str(e))
            return stats
        for tenant in tenants:
            try:
                self.compact_tenant(tenant, stats, now)
            except BackendError as e:
                stats.errors += 1
                _log.error(
                    "compacting a tenant failed; retrying next cycle", tenant=tenant, err=str(e)
                )
        stats.seconds = time.monotonic() - started
        return stats

    def compact_tenant(self, tenant: str, stats: CycleStats, now: float | None = None) -> None:
        """Index, retention, cleanup and compaction of one tenant."""
        now = time.time() if now is None else now
        state = self._tenants.setdefault(tenant, _TenantState())
        found = self._store.rebuild_blocklist(tenant, state.metas)
        changed = self._retention(tenant, found, now, stats)
        overrides = self._overrides(tenant)
        window = overrides.get("compaction_window") or self._cfg.compaction_window
        state.quarantine = {b: n - 1 for b, n in state.quarantine.items() if n > 1}
        skip = frozenset(state.quarantine) | frozenset(found.unreadable)
        self._m.unreadable.labels(tenant).set(len(skip))
        for block_id, why in found.unreadable.items():
            _log.warn(
                "skipping a block whose meta cannot be read", tenant=tenant, block=block_id, err=why
            )
        live = [m for m in found.metas if not self._expired(m, tenant, now)]
        jobs = []
        if not (self._cfg.disabled or overrides.get("compaction_disabled")):
            jobs = select(
                live,
                now,
                window,
                self._cfg.max_compaction_objects,
                self._cfg.max_block_bytes,
                skip,
            )
        self._m.outstanding.labels(tenant).set(sum(len(j.blocks) for j in jobs))
        deadline = time.monotonic() + self._cfg.max_time_per_tenant
        for job in jobs:
            if time.monotonic() > deadline:
                break
            if self._run_job(tenant, job, state, stats):
                changed = True
        if changed:
            self._store.rebuild_blocklist(tenant, state.metas)
            self._notify()

    # -- retention and cleanup ----------------------------------------------------------------

    def _retention_seconds(self, tenant: str) -> float:
        return self._overrides(tenant).get("block_retention") or self._cfg.block_retention

    def _expired(self, meta: BlockMeta, tenant: str, now: float) -> bool:
        retention = self._retention_seconds(tenant)
        end = parse_time(meta.get("endTime"))
        return retention > 0 and end is not None and end < now - retention

    def _retention(self, tenant: str, found: TenantBlocks, now: float, stats: CycleStats) -> bool:
        changed = False
        grace = self._cfg.compacted_block_retention
        for meta in found.metas:
            if self._expired(meta, tenant, now) and self._try(
                "marking a block past its retention compacted",
                tenant,
                meta.get("blockID"),
                lambda m=meta: self._store.mark_compacted(tenant, m),
            ):
                self._m.marked.inc()
                stats.marked_for_retention += 1
                changed = True
        for meta in found.compacted:
            marked = parse_time(meta.get("compactedTime"))
            if marked is not None and marked < now - grace:
                block_id = str(meta.get("blockID"))
                if self._try(
                    "deleting a compacted block", tenant, block_id, self._deleter(tenant, block_id)
                ):
                    self._m.deleted.inc()
                    stats.deleted += 1
                    changed = True
        # never less than a few minutes: a block being written must not look abandoned
        abandoned = now - max(grace, INCOMPLETE_GRACE_MIN)
        for block_id, modified in found.incomplete.items():
            if modified < abandoned and self._try(
                "deleting an incomplete block",
                tenant,
                block_id,
                self._deleter(tenant, block_id),
            ):
                _log.info(
                    "deleted an incomplete block (crashed upload or compaction)",
                    tenant=tenant,
                    block=block_id,
                )
                self._m.cleaned.inc()
                stats.cleaned_incomplete += 1
                changed = True
        return changed

    def _deleter(self, tenant: str, block_id: str) -> Callable[[], object]:
        return lambda: self._store.delete(f"{tenant}/{block_id}")

    def _try(self, what: str, tenant: str, block: object, op: Callable[[], object]) -> bool:
        try:
            op()
        except BackendError as e:
            self._m.retention_errors.inc()
            _log.error(
                f"{what} failed; retrying next cycle", tenant=tenant, block=str(block), err=str(e)
            )
            return False
        return True

    # -- a job --------------------------------------------------------------------------------

    def _run_job(self, tenant: str, job: Job, state: _TenantState, stats: CycleStats) -> bool:
        local = isinstance(self._store, LocalBackend)
        # The local backend gets its outputs in place (meta.json last); S3 through a work dir.
        out_root = (
            self._store.root / tenant
            if isinstance(self._store, LocalBackend)
            else self._work / tenant
        )
        inputs: list[Any] = []
        for block_id in job.block_ids:
            path = (
                (self._store.root / tenant / block_id) if local else self._staged(tenant, block_id)
            )
            inputs.append(str(path) if path is not None else (self._store, f"{tenant}/{block_id}"))
        started = time.monotonic()
        try:
            raw, result = self._compact(
                inputs,
                str(out_root),
                tenant,
                job.level,
                self._block_config,
                self._cfg.max_block_bytes,
                self._cfg.max_compaction_objects,
            )
            outputs = [orjson.loads(m) for m in raw]
            for meta in outputs:
                block_id = str(meta["blockID"])
                self._store.upload_block(tenant, block_id, out_root / block_id)
            # The outputs are listed before the inputs go: no reader ever misses a trace.
            self._store.rebuild_blocklist(tenant, state.metas)
            for meta in job.blocks:
                self._store.mark_compacted(tenant, meta)
        except (RuntimeError, BackendError, OSError) as e:
            self._job_failed(tenant, job, state, e)
            stats.errors += 1
            return False
        finally:
            if not local:
                shutil.rmtree(out_root, ignore_errors=True)
        level = str(job.level)
        self._m.blocks.labels(level).inc(len(job.blocks))
        self._m.objects.labels(level).inc(sum(int(m.get("totalObjects", 0)) for m in outputs))
        self._m.bytes.labels(level).inc(sum(int(m.get("size", 0)) for m in outputs))
        self._m.combined.labels(level).inc(result.get("traces_combined", 0))
        self._m.spans_dropped.inc(result.get("spans_in", 0) - result.get("spans_out", 0))
        stats.jobs += 1
        stats.blocks_in += len(job.blocks)
        stats.blocks_out += len(outputs)
        stats.spans_in += result.get("spans_in", 0)
        stats.spans_out += result.get("spans_out", 0)
        _log.info(
            "compacted blocks",
            tenant=tenant,
            level=job.level,
            inputs=",".join(job.block_ids),
            outputs=",".join(str(m["blockID"]) for m in outputs),
            spans=result.get("spans_out", 0),
            seconds=f"{time.monotonic() - started:.2f}",
        )
        return True

    def _job_failed(self, tenant: str, job: Job, state: _TenantState, e: Exception) -> None:
        self._m.errors.inc()
        text = str(e)
        named = [b for b in job.block_ids if b in text]
        suspects = named if len(named) == 1 else job.block_ids
        for block_id in suspects:
            state.quarantine[block_id] = QUARANTINE_CYCLES
        _log.error(
            "compaction job failed; its blocks are kept and set aside for a while",
            tenant=tenant,
            inputs=",".join(job.block_ids),
            set_aside=",".join(suspects),
            err=text,
        )

    def _notify(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                _log.error("block list listener failed", exc=True)

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run a cycle every ``compaction_cycle`` (each in a worker thread)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                stats = await loop.run_in_executor(None, self.run_cycle)
                if stats.jobs or stats.deleted or stats.errors:
                    _log.debug("compaction cycle", **{k: v for k, v in vars(stats).items()})
            except Exception:
                _log.error("compaction cycle failed", exc=True)
            await asyncio.sleep(self._cfg.compaction_cycle)


def staged_block(staging: Path) -> Callable[[str, str], Path | None]:
    """A lookup of blocks still staged locally under ``staging`` (complete ones only)."""

    def find(tenant: str, block_id: str) -> Path | None:
        path = staging / tenant / block_id
        return path if (path / META).is_file() else None

    return find
