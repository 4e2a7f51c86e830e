"""Trace-by-id over the ingester and the block stores, and the block-list poller.

Complete blocks come from the local block store (the local backend, or the blocks staged for
upload) and, with an object store, from its tenant indexes: each poll opens the blocks listed
there that are not staged locally (meta, bloom and index read once; the Rust reader then
fetches only the byte ranges a lookup needs) and forgets the ones no longer listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tempo_fast.backend import BackendError, NotFoundError, ObjectStore
from tempo_fast.pkg.log import get_logger

_log = get_logger("querier")

FORMATS = ("proto_v1", "proto_v2", "json_v1", "json_v2")


class TraceSource(Protocol):
    """Recent data: the ingester (in-process now, a gRPC client when split)."""

    def find_trace(self, tenant: str, trace_id: bytes) -> Any: ...
    def search(self, tenant: str, query: Any) -> tuple[bytes, dict[str, int]]: ...
    def search_tags(self, tenant: str, request: Any) -> tuple[bytes, dict[str, int]]: ...
    def metrics(self, tenant: str, query: Any, exemplars: int) -> list[dict[str, Any]]: ...
    def complete_block_ids(self, tenant: str) -> list[str]: ...


@dataclass(frozen=True)
class BlockRef:
    """A complete block a search job may read: which block list holds it and its extent."""

    store: int
    block_id: str
    size: int
    start_ns: int
    end_ns: int


class BlockStoreCore(Protocol):
    """The surface of ``tempo_fast._core.BlockStore`` used here."""

    def poll(self) -> dict[str, int]: ...
    def find_trace(self, tenant: str, trace_id: bytes) -> tuple[Any, dict[str, int]]: ...
    def open_failures(self) -> int: ...
    def list_blocks(self, tenant: str) -> list[tuple[str, int, int, int]]: ...
    def search(self, tenant: str, query: Any, block_ids: list[str]) -> Any: ...
    def search_tags(self, tenant: str, request: Any, block_ids: list[str]) -> Any: ...
    def metrics(self, tenant: str, query: Any, block_ids: list[str], exemplars: int) -> Any: ...


class RemoteBlocksCore(Protocol):
    """The surface of ``tempo_fast._core.RemoteBlocks`` used here."""

    def open(self, tenant: str, block_id: str, store: Any) -> None: ...
    def contains(self, tenant: str, block_id: str) -> bool: ...
    def retain(self, tenant: str, keep: set[str]) -> None: ...
    def counts(self) -> dict[str, int]: ...
    def find_trace(self, tenant: str, trace_id: bytes) -> tuple[Any, dict[str, int]]: ...
    def list_blocks(self, tenant: str) -> list[tuple[str, int, int, int]]: ...
    def search(self, tenant: str, query: Any, block_ids: list[str]) -> Any: ...
    def search_tags(self, tenant: str, request: Any, block_ids: list[str]) -> Any: ...
    def metrics(self, tenant: str, query: Any, block_ids: list[str], exemplars: int) -> Any: ...


@dataclass
class ObjectStoreBlocks:
    """Blocks read from an object store: the store, the Rust block list, and which block ids
    are staged locally (those are read from disk instead)."""

    store: ObjectStore
    blocks: RemoteBlocksCore
    staged: Callable[[str], set[str]]
    open_failures: int = 0

    def poll(self) -> None:
        """Sync the open blocks with every tenant index (blocking: store reads)."""
        tenants = set(self.store.list_tenants()) | set(self.blocks.counts())
        for tenant in sorted(tenants):
            try:
                listed = {str(m.get("blockID")) for m in self.store.read_blocklist(tenant).metas}
            except NotFoundError:
                listed = set()
            keep = listed - self.staged(tenant)
            self.blocks.retain(tenant, keep)
            for block_id in sorted(keep):
                if self.blocks.contains(tenant, block_id):
                    continue
                try:
                    self.blocks.open(tenant, block_id, self.store)
                except (RuntimeError, BackendError) as e:
                    self.open_failures += 1
                    _log.error(
                        "skipping a block the store lists but that cannot be read",
                        tenant=tenant,
                        block=block_id,
                        err=str(e),
                    )


Render = Callable[[list[Any], str, int], "bytes | None"]


class Querier:
    """Finds a trace's parts in the ingester and complete blocks; renders them with Rust."""

    def __init__(
        self,
        ingester: TraceSource,
        blocks: BlockStoreCore,
        render: Render,
        poll_interval: float,
        remote: ObjectStoreBlocks | None = None,
    ) -> None:
        self._ingester = ingester
        self._blocks = blocks
        self._remote = remote
        self._render = render
        self._poll_interval = poll_interval
        self._blocklist: dict[str, int] = {}
        self._lock = threading.Lock()
        self._lookup_errors = 0
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def trace_by_id(self, tenants: list[str], trace_id: bytes, fmt: str) -> bytes | None:
        """The rendered trace (``fmt`` in :data:`FORMATS`) or None when no spans exist.

        Blocking (reads blocks): call it from a worker thread.
        """
        parts: list[Any] = []
        inspected = errors = 0
        for tenant in tenants:
            live = self._ingester.find_trace(tenant, trace_id)
            if live is not None:
                parts.append(live)
            sources = [self._blocks] + ([self._remote.blocks] if self._remote else [])
            for source in sources:
                stored, stats = source.find_trace(tenant, trace_id)
                inspected += int(stats.get("bytes_read", 0))
                errors += int(stats.get("errors", 0))
                if stored is not None:
                    parts.append(stored)
        if errors:
            with self._lock:
                self._lookup_errors += errors
        if not parts:
            return None
        return self._render(parts, fmt, inspected)

    def _stores(self) -> list[Any]:
        return [self._blocks] + ([self._remote.blocks] if self._remote else [])

    def search_recent(self, tenant: str, query: Any) -> tuple[bytes, dict[str, int]]:
        """Search what the ingester holds for ``tenant`` (blocking)."""
        return self._ingester.search(tenant, query)

    def list_blocks(self, tenant: str) -> list[BlockRef]:
        """Complete blocks of ``tenant`` a search reads, without those the ingester's own
        search covers (a block is searched once)."""
        served = set(self._ingester.complete_block_ids(tenant))
        out = []
        for i, store in enumerate(self._stores()):
            for block_id, size, start_ns, end_ns in store.list_blocks(tenant):
                if block_id not in served:
                    out.append(BlockRef(i, block_id, size, start_ns, end_ns))
        return out

    def search_blocks(
        self, tenant: str, query: Any, blocks: list[BlockRef]
    ) -> tuple[bytes, dict[str, int]]:
        """Search ``blocks`` (all from one block list) in order (blocking)."""
        store = self._stores()[blocks[0].store] if blocks else self._blocks
        body, stats = store.search(tenant, query, [b.block_id for b in blocks])
        if stats.get("errors"):
            with self._lock:
                self._lookup_errors += int(stats["errors"])
        return body, stats

    def metrics_recent(self, tenant: str, query: Any, exemplars: int) -> list[dict[str, Any]]:
        """Run a TraceQL metrics query over what the ingester holds (blocking): per leaf of
        the query, its span columns and figures."""
        return self._ingester.metrics(tenant, query, exemplars)

    def metrics_blocks(
        self, tenant: str, query: Any, blocks: list[BlockRef], exemplars: int
    ) -> list[dict[str, Any]]:
        """Run a TraceQL metrics query over ``blocks`` (all from one block list; blocking)."""
        store = self._stores()[blocks[0].store] if blocks else self._blocks
        outs: list[dict[str, Any]] = store.metrics(
            tenant, query, [b.block_id for b in blocks], exemplars
        )
        errors = int(outs[0].get("errors", 0)) if outs else 0
        if errors:
            with self._lock:
                self._lookup_errors += errors
        return outs

    def search_tags_recent(self, tenant: str, request: Any) -> tuple[bytes, dict[str, int]]:
        """Tag names or values from what the ingester holds (blocking)."""
        return self._ingester.search_tags(tenant, request)

    def search_tags_blocks(
        self, tenant: str, request: Any, blocks: list[BlockRef]
    ) -> tuple[bytes, dict[str, int]]:
        """Tag names or values from ``blocks`` (all from one block list; blocking)."""
        store = self._stores()[blocks[0].store] if blocks else self._blocks
        return store.search_tags(tenant, request, [b.block_id for b in blocks])

    def error_counts(self) -> dict[str, int]:
        """Unreadable blocks met so far: ``poll`` (blocks that could not be opened, summed
        over polls) and ``lookup`` (blocks skipped by a lookup because a read failed)."""
        remote = self._remote.open_failures if self._remote is not None else 0
        with self._lock:
            lookup = self._lookup_errors
        return {"poll": self._blocks.open_failures() + remote, "lookup": lookup}

    def poll(self) -> Mapping[str, int]:
        """Re-read the block list now (blocking)."""
        # The store first: a block whose local copy was just deleted is opened from the
        # store before the local list forgets it, so no lookup misses it in between.
        if self._remote is not None:
            self._remote.poll()
        counts = dict(self._blocks.poll())
        if self._remote is not None:
            for tenant, n in self._remote.blocks.counts().items():
                counts[tenant] = counts.get(tenant, 0) + n
        self._blocklist = counts
        return self._blocklist

    def blocklist(self) -> Mapping[str, int]:
        """Blocks per tenant as of the last poll."""
        return self._blocklist

    def request_poll(self) -> None:
        """Ask the poller to poll now; safe to call from any thread."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run_poller(self) -> None:
        """Poll every ``blocklist_poll`` and whenever :meth:`request_poll` is called."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()
            try:
                await self._loop.run_in_executor(None, self.poll)
            except Exception:
                _log.error("block list poll failed", exc=True)
