"""Shared fixtures: a running App wired with the fake core (see fakes.py), on free ports."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tempo_fast.app import App
from tempo_fast.config import Config, load
from tests.unit.fakes import FakeCore


def _merge(base: dict, extra: dict) -> dict:
    for name, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(name), dict):
            _merge(base[name], value)
        else:
            base[name] = value
    return base


def make_config(tmp_path: Path, extra: str = "") -> Config:
    """A config on free loopback ports under ``tmp_path``, deep-merged with YAML ``extra``."""
    base = {
        "server": {"http_listen_address": "127.0.0.1", "http_listen_port": 0},
        "distributor": {
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": "127.0.0.1:0"},
                        "http": {"endpoint": "127.0.0.1:0", "max_request_body_size": 1000},
                    }
                }
            }
        },
        "storage": {
            "trace": {
                "backend": "local",
                "local": {"path": str(tmp_path / "blocks")},
                "wal": {"path": str(tmp_path / "wal")},
            }
        },
    }
    return load(yaml.safe_dump(_merge(base, yaml.safe_load(extra) or {})))


class RunningApp:
    """An App started on its own event loop thread (the fake core stands in for Rust)."""

    def __init__(self, config: Config) -> None:
        self.fake = FakeCore()
        self.app = App(config, self.fake.core())
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)  # type: ignore[arg-type]

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.app.ports[name]}{path}"

    def close(self) -> None:
        self.call(self.app.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningApp]:
    app = RunningApp(make_config(tmp_path))
    app.call(app.app.start())
    yield app
    app.close()


@pytest.fixture
def running_mt(tmp_path: Path) -> Iterator[RunningApp]:
    app = RunningApp(make_config(tmp_path, "multitenancy_enabled: true"))
    app.call(app.app.start())
    yield app
    app.close()
