"""Trace-by-id over the ingester and the block store, and the block-list poller."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tempo_fast.pkg.log import get_logger

_log = get_logger("querier")

FORMATS = ("proto_v1", "proto_v2", "json_v1", "json_v2")


class TraceSource(Protocol):
    """Recent data: the ingester (in-process now, a gRPC client when split)."""

    def find_trace(self, tenant: str, trace_id: bytes) -> Any: ...


class BlockStoreCore(Protocol):
    """The surface of ``tempo_fast._core.BlockStore`` used here."""

    def poll(self) -> dict[str, int]: ...
    def find_trace(self, tenant: str, trace_id: bytes) -> tuple[Any, dict[str, int]]: ...


Render = Callable[[list[Any], str, int], "bytes | None"]


class Querier:
    """Finds a trace's parts in the ingester and complete blocks; renders them with Rust."""

    def __init__(
        self, ingester: TraceSource, blocks: BlockStoreCore, render: Render, poll_interval: float
    ) -> None:
        self._ingester = ingester
        self._blocks = blocks
        self._render = render
        self._poll_interval = poll_interval
        self._blocklist: dict[str, int] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def trace_by_id(self, tenants: list[str], trace_id: bytes, fmt: str) -> bytes | None:
        """The rendered trace (``fmt`` in :data:`FORMATS`) or None when no spans exist.

        Blocking (reads blocks): call it from a worker thread.
        """
        parts: list[Any] = []
        inspected = 0
        for tenant in tenants:
            live = self._ingester.find_trace(tenant, trace_id)
            if live is not None:
                parts.append(live)
            stored, stats = self._blocks.find_trace(tenant, trace_id)
            inspected += int(stats.get("bytes_read", 0))
            if stored is not None:
                parts.append(stored)
        if not parts:
            return None
        return self._render(parts, fmt, inspected)

    def poll(self) -> Mapping[str, int]:
        """Re-read the block list now (blocking)."""
        self._blocklist = dict(self._blocks.poll())
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
