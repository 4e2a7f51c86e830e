"""Flushes complete blocks to the object store (``storage.trace.backend: s3``).

The Rust ingester writes each complete block into a local staging directory
(``<wal>/blocks/<tenant>/<block-id>/``). The flusher uploads every staged block it has not
uploaded yet — ``meta.json`` last, so a reader never sees half a block — then rewrites the
tenant index (``<tenant>/index.json.gz``) from a listing, which pollers read instead of
listing the bucket. A block whose upload fails stays staged and is retried with backoff on
every pass, so an outage never loses an acknowledged span. An uploaded block stays staged
(and is read from local disk) for ``complete_block_timeout``, then its local copy is deleted.
After a restart, a staged block whose ``meta.json`` is already in the store counts as
uploaded (and is kept for another ``complete_block_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from tempo_fast.backend import BackendError, NotFoundError, ObjectStore
from tempo_fast.backend.objects import META, is_block_id
from tempo_fast.pkg.log import get_logger
from tempo_fast.pkg.tenant import TenantError, validate

_log = get_logger("flusher")


@dataclass
class _Retry:
    failures: int = 0
    next_try: float = 0.0


class BlockFlusher:
    """Uploads staged blocks and keeps the tenant indexes current."""

    def __init__(
        self,
        store: ObjectStore,
        staging: str | Path,
        registry: CollectorRegistry | None = None,
        backoff_max: float = 60.0,
        keep_uploaded: float | None = None,
    ) -> None:
        self._store = store
        self._staging = Path(staging)
        self._backoff_max = backoff_max
        self._keep = keep_uploaded
        self._uploaded: dict[tuple[str, str], float] = {}  # -> when (monotonic)
        self._metas: dict[str, dict[tuple[str, str], dict]] = {}  # per tenant, for the index
        self._on_removed: list[Callable[[], None]] = []
        self._checked: set[tuple[str, str]] = set()  # asked the store once after a restart
        self._retry: dict[tuple[str, str], _Retry] = {}
        self._flushed = Counter(
            "tempo_ingester_blocks_uploaded",
            "Complete blocks uploaded to the object store.",
            ["tenant"],
            registry=registry,
        )
        self._failed = Counter(
            "tempo_ingester_flush_failures",
            "Block uploads to the object store that failed (the block is kept and retried).",
            ["tenant", "kind"],
            registry=registry,
        )

    def staged(self) -> Iterator[tuple[str, str, Path]]:
        """Every complete block in the staging directory: (tenant, block id, dir)."""
        if not self._staging.is_dir():
            return
        for tenant_dir in sorted(self._staging.iterdir()):
            try:
                tenant = validate(tenant_dir.name)
            except TenantError:
                continue
            for block_dir in sorted(tenant_dir.iterdir()):
                if is_block_id(block_dir.name) and (block_dir / META).is_file():
                    yield tenant, block_dir.name, block_dir

    def pending(self) -> list[tuple[str, str, Path]]:
        """Staged blocks not uploaded yet."""
        return [b for b in self.staged() if (b[0], b[1]) not in self._uploaded]

    def flush(self) -> int:
        """One pass: upload what is pending and due; return how many blocks were uploaded.
        Never raises for a backend failure: the block is retried on a later pass."""
        done = 0
        now = time.monotonic()
        for tenant, block_id, path in self.pending():
            key = (tenant, block_id)
            retry = self._retry.get(key)
            if retry is not None and now < retry.next_try:
                continue
            try:
                if key not in self._checked:
                    self._checked.add(key)
                    if self._already_uploaded(tenant, block_id):
                        self._uploaded[key] = time.monotonic()
                        continue
                self._store.upload_block(tenant, block_id, path)
                self._store.rebuild_blocklist(tenant, self._metas.setdefault(tenant, {}))
            except BackendError as e:
                self._failed.labels(tenant, e.kind).inc()
                retry = self._retry.setdefault(key, _Retry())
                retry.failures += 1
                delay = min(self._backoff_max, 2.0 ** min(retry.failures, 10))
                retry.next_try = time.monotonic() + delay
                _log.error(
                    "uploading a block failed; it stays on local disk and is retried",
                    tenant=tenant,
                    block=block_id,
                    retry_in=f"{delay:.0f}s",
                    err=str(e),
                )
                continue
            self._retry.pop(key, None)
            self._uploaded[key] = time.monotonic()
            self._flushed.labels(tenant).inc()
            done += 1
            _log.info("block uploaded", tenant=tenant, block=block_id)
        self._remove_uploaded()
        return done

    def on_removed(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after local copies of uploaded blocks were deleted."""
        self._on_removed.append(listener)

    def _remove_uploaded(self) -> None:
        """Delete the local copies of blocks uploaded more than ``keep_uploaded`` ago."""
        if self._keep is None:
            return
        cutoff = time.monotonic() - self._keep
        removed = 0
        for (tenant, block_id), at in list(self._uploaded.items()):
            if at > cutoff:
                continue
            try:
                shutil.rmtree(self._staging / tenant / block_id)
            except FileNotFoundError:
                pass
            except OSError as e:
                _log.warn("deleting an uploaded block's local copy failed", err=str(e))
                continue
            del self._uploaded[(tenant, block_id)]
            self._checked.discard((tenant, block_id))
            removed += 1
        if removed:
            for listener in self._on_removed:
                listener()

    def _already_uploaded(self, tenant: str, block_id: str) -> bool:
        try:
            self._store.read_meta(tenant, block_id)
        except NotFoundError:
            return False
        return True

    async def run(self, period: float) -> None:
        """Flush every ``period`` seconds (and at once when :meth:`wake` is called)."""
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        while True:
            await loop.run_in_executor(None, self.flush)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=period)
            self._wake.clear()

    def wake(self) -> None:
        """Ask the running loop for a pass now (new blocks were completed)."""
        event = getattr(self, "_wake", None)
        if event is not None:
            event.set()
