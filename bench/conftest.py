"""Benchmarks run only when asked: ``make bench`` (or ``pytest bench``), never in ``make test``."""

from __future__ import annotations

import pytest

from bench.harness import LOADGEN


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not LOADGEN.is_file():
        skip = pytest.mark.skip(reason=f"reference load generator missing: {LOADGEN}")
        for item in items:
            if "loadgen" in item.keywords:
                item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "loadgen: needs shared/bench/otlp_load.py")
