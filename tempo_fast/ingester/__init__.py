"""Ingester: the Rust WAL/live-traces/block-cutting core, driven from Python."""

from tempo_fast.ingester.ingester import IngesterService, core_config

__all__ = ["IngesterService", "core_config"]
