"""Shared fixtures: a running tempo-fast server per test (or per module), a real Prometheus."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.prometheus import Prometheus
from tests.server import TempoServer

FAST_CUT = {
    "ingester": {
        "trace_idle_period": "1s",
        "flush_check_period": "1s",
        "max_block_duration": "3s",
    }
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TempoServer]:
    s = TempoServer(tmp_path / "tempo").start()
    yield s
    s.stop()


@pytest.fixture
def fast_server(tmp_path: Path) -> Iterator[TempoServer]:
    """A server that cuts traces into blocks within seconds."""
    s = TempoServer(tmp_path / "tempo", overrides=FAST_CUT).start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def prometheus() -> Iterator[Prometheus]:
    """A real Prometheus receiving remote writes, shared by the session (tests keep apart by
    label values)."""
    p = Prometheus().start()
    yield p
    p.close()
