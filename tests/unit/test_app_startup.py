"""Start-up failures give one clear message (the Rust core is replaced by fakes.py)."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import threading
from pathlib import Path

import pytest

from tempo_fast.app import App, StartupError, run
from tempo_fast.pkg import log
from tests.unit.conftest import make_config
from tests.unit.fakes import FakeCore


def storage(wal: Path) -> str:
    return f"storage: {{trace: {{wal: {{path: {wal}}}}}}}"


def start_and_stop(app: App) -> None:
    async def go() -> None:
        try:
            await app.start()
        finally:
            await app.stop()

    asyncio.run(go())


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = make_config(
            tmp_path, f"server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}"
        )
        with pytest.raises(StartupError, match=f"127.0.0.1:{port} for the HTTP API.*in use"):
            start_and_stop(App(config, FakeCore().core()))


def test_grpc_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = make_config(
            tmp_path,
            "distributor: {receivers: {otlp: {protocols: {grpc: {endpoint: "
            f'"127.0.0.1:{port}"}}}}}}}}}}',
        )
        fake = FakeCore()
        with pytest.raises(StartupError, match=f"{port} for OTLP gRPC"):
            start_and_stop(App(config, fake.core()))
        assert fake.ingester.calls[-1] == "close"  # a failed start still closes the ingester


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_data_dir(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    config = make_config(tmp_path, storage(locked / "wal"))
    with pytest.raises(StartupError, match="storage.trace.wal.path"):
        start_and_stop(App(config, FakeCore().core()))


def test_data_path_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config = make_config(tmp_path, storage(blocker / "wal"))
    with pytest.raises(StartupError, match="cannot write to storage.trace.wal.path"):
        start_and_stop(App(config, FakeCore().core()))


def test_bad_endpoint(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, "distributor: {receivers: {otlp: {protocols: {http: {endpoint: nowhere}}}}}"
    )
    with pytest.raises(StartupError, match="protocols.http: endpoint 'nowhere' is not host:port"):
        start_and_stop(App(config, FakeCore().core()))


def test_logfmt_lines() -> None:
    stream = io.StringIO()
    log.setup("info", "logfmt", stream)
    logger = log.get_logger("test")
    logger.debug("hidden")
    logger.info("started", port=3200, path="a b", quote='x"y')
    line = stream.getvalue().strip()
    assert "hidden" not in line
    assert line.startswith("level=info ts=")
    assert 'component=test msg=started port=3200 path="a b" quote="x\\"y"' in line
    stream = io.StringIO()
    log.setup("debug", "json", stream)
    log.get_logger("test").debug("hello", n=1)
    assert '"msg":"hello","n":1' in stream.getvalue()
    log.setup("info")


def test_run_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    fake = FakeCore()
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        run(make_config(tmp_path, "ingester: {flush_all_on_shutdown: true}"), fake.core())
    finally:
        timer.cancel()
    assert fake.ingester.calls == ["replay", "start", "flush", "close"]


def test_ignored_keys_logged_once(tmp_path: Path) -> None:
    stream = io.StringIO()
    log.setup("info", "logfmt", stream)
    try:
        start_and_stop(
            App(make_config(tmp_path, "memberlist: {join_members: [a]}"), FakeCore().core())
        )
    finally:
        log.setup("info")
    lines = [line for line in stream.getvalue().splitlines() if "ignoring" in line]
    assert len(lines) == 1
    assert "level=warn" in lines[0] and "keys=memberlist.join_members" in lines[0]
