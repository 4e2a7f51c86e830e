"""Wraps ``_core.Ingester``: replay at start, background sweep, flush on shutdown, close.

It is also the in-process ingester client the distributor and querier call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tempo_fast.config import Config, IngesterConfig
from tempo_fast.pkg.log import get_logger

_log = get_logger("ingester")


class IngesterCore(Protocol):
    """The surface of ``tempo_fast._core.Ingester`` used here."""

    def replay(self) -> dict[str, int]: ...
    def start(self) -> None: ...
    def push(
        self, tenant: str, body: bytes, encoding: str = ..., gzip: bool = ..., max_bytes: int = ...
    ) -> Any: ...
    def try_push(
        self, tenant: str, body: bytes, encoding: str = ..., gzip: bool = ..., max_bytes: int = ...
    ) -> Any: ...
    def find_trace(self, tenant: str, trace_id: bytes) -> Any: ...
    def search(self, tenant: str, query: Any) -> Any: ...
    def search_tags(self, tenant: str, request: Any) -> Any: ...
    def metrics(self, tenant: str, query: Any, exemplars: int = ...) -> Any: ...
    def complete_block_ids(self, tenant: str) -> list[str]: ...
    def flush(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def core_config(config: Config) -> dict[str, object]:
    """The ``_core.Ingester`` config dict for ``config`` (durations in milliseconds)."""
    ing = config.ingester
    live_cap = ing.max_live_traces_bytes
    live = {} if live_cap is None else {"max_live_bytes": live_cap}
    return {
        **live,
        "trace_idle_period_ms": _ms(ing.trace_idle_period),
        "max_trace_live_ms": _ms(ing.trace_live_period),
        "flush_check_period_ms": _ms(ing.flush_check_period),
        "max_block_duration_ms": _ms(ing.max_block_duration),
        "max_block_bytes": ing.max_block_bytes,
        "complete_block_timeout_ms": _ms(ing.complete_block_timeout),
        "blocks_path": config.storage.blocks_path,
        "fsync": config.storage.wal_fsync,
        "fsync_interval_ms": _ms(config.storage.wal_fsync_interval),
        "bloom_fp": config.storage.bloom_filter_false_positive,
        "bloom_shard_bytes": config.storage.bloom_filter_shard_size_bytes,
        "dedicated_columns": [(c.scope, c.name, c.type) for c in config.storage.dedicated_columns],
    }


class IngesterService:
    """Lifecycle of the Rust ingester plus the in-process ingester client interface."""

    def __init__(self, core: IngesterCore, config: IngesterConfig) -> None:
        self._core = core
        self._config = config
        self._on_flush: list[Callable[[], None]] = []
        self._closed = False

    def replay(self) -> dict[str, int]:
        """Replay the WAL (before serving) and log what was recovered."""
        figures = self._core.replay()
        _log.info("WAL replayed", **figures)
        return figures

    def start(self) -> None:
        self._core.start()

    def push(
        self,
        tenant: str,
        body: bytes,
        encoding: str = "protobuf",
        gzip: bool = False,
        max_bytes: int = 20 << 20,
    ) -> Any:
        return self._core.push(tenant, body, encoding, gzip, max_bytes)

    def try_push(
        self,
        tenant: str,
        body: bytes,
        encoding: str = "protobuf",
        gzip: bool = False,
        max_bytes: int = 20 << 20,
    ) -> Any:
        return self._core.try_push(tenant, body, encoding, gzip, max_bytes)

    def find_trace(self, tenant: str, trace_id: bytes) -> Any:
        return self._core.find_trace(tenant, trace_id)

    def search(self, tenant: str, query: Any) -> tuple[bytes, dict[str, int]]:
        """Search live traces, head chunks and completed blocks (blocking)."""
        return self._core.search(tenant, query)  # type: ignore[no-any-return]

    def search_tags(self, tenant: str, request: Any) -> tuple[bytes, dict[str, int]]:
        """Tag names or values from live traces, head chunks and completed blocks."""
        return self._core.search_tags(tenant, request)  # type: ignore[no-any-return]

    def metrics(self, tenant: str, query: Any, exemplars: int) -> list[dict[str, Any]]:
        """A TraceQL metrics query over live traces, head chunks and completed blocks."""
        return self._core.metrics(tenant, query, exemplars)  # type: ignore[no-any-return]

    def complete_block_ids(self, tenant: str) -> list[str]:
        """Completed blocks this ingester serves (its searches cover them)."""
        return list(self._core.complete_block_ids(tenant))

    def stats(self) -> Mapping[str, Any]:
        return self._core.stats()

    def on_blocks_flushed(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after the ingester has written new complete blocks."""
        self._on_flush.append(hook)

    async def watch_flushes(self) -> None:
        """Every ``flush_check_period``, fire the hooks if new blocks were flushed."""
        seen = self._blocks_flushed()
        while True:
            await asyncio.sleep(self._config.flush_check_period)
            now = self._blocks_flushed()
            if now != seen:
                seen = now
                self._fire()

    def flush(self) -> None:
        """Cut every live trace and head into blocks now."""
        self._core.flush()
        self._fire()

    def shutdown(self) -> None:
        """Flush when ``flush_all_on_shutdown`` is set, then close the core (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._config.flush_all_on_shutdown:
            _log.info("flushing all traces to the backend before shutdown")
            self._core.flush()
        self._core.close()

    def _blocks_flushed(self) -> int:
        return int(self._core.stats().get("global", {}).get("blocks_flushed", 0))

    def _fire(self) -> None:
        for hook in self._on_flush:
            hook()
