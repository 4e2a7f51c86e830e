"""The query HTTP API through the app's wiring; the Rust core is replaced by fakes.py."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import orjson
import pytest

from tempo_fast.app import App
from tests.unit.conftest import RunningApp, make_config
from tests.unit.fakes import FakeCore
from tests.unit.http_client import request

TID = bytes.fromhex("0000000000000000000000000000abcd")


def get(app: RunningApp, path: str, headers: dict[str, str] | None = None) -> object:
    return request("GET", app.url("http", path), headers=headers)


def test_echo_and_buildinfo(running: RunningApp) -> None:
    reply = get(running, "/api/echo")
    assert (reply.status, reply.text) == (200, "echo")
    info = orjson.loads(get(running, "/api/status/buildinfo").body)
    assert info["version"] == "2.10.0"
    assert info["revision"] == "tempo-fast-0.1.0"
    assert set(info) == {"version", "revision", "branch", "buildDate", "buildUser", "goVersion"}


def test_ready_after_start(running: RunningApp) -> None:
    reply = get(running, "/ready")
    assert (reply.status, reply.text) == (200, "ready")
    assert running.fake.ingester.calls == ["replay", "start"]


def test_trace_v1_json_and_protobuf(running: RunningApp) -> None:
    running.fake.ingester.traces[("single-tenant", TID)] = "live"
    running.fake.block_store.traces[("single-tenant", TID)] = "block"
    reply = get(running, "/api/traces/abcd")  # short ids are left-padded
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.body == b"json_v1|live,block|100"
    reply = get(running, "/api/traces/ABCD", {"Accept": "application/protobuf"})
    assert reply.headers["Content-Type"] == "application/protobuf"
    assert reply.body == b"proto_v1|live,block|100"


def test_trace_v2_formats(running: RunningApp) -> None:
    running.fake.block_store.traces[("single-tenant", TID)] = "block"
    assert get(running, "/api/v2/traces/abcd").body == b"json_v2|block|100"
    reply = get(running, "/api/v2/traces/abcd", {"Accept": "application/protobuf"})
    assert reply.body == b"proto_v2|block|100"


@pytest.mark.parametrize("version", ["", "/v2"])
def test_trace_not_found_is_404(running: RunningApp, version: str) -> None:
    reply = get(running, f"/api{version}/traces/1234")
    assert (reply.status, reply.text) == (404, "trace not found")


@pytest.mark.parametrize(
    "bad",
    ["xyz", "0" * 32, "a" * 33, "..%2F..%2Fetc", "%20abc", "12-34"],
)
def test_malformed_trace_id_is_400(running: RunningApp, bad: str) -> None:
    reply = get(running, f"/api/traces/{bad}")
    assert reply.status == 400
    assert reply.text.startswith("invalid trace id")


@pytest.mark.parametrize(
    "query", ["start=abc", "end=-5", "start=10&end=5", "start=1e9", "start=" + "9" * 20]
)
def test_bad_start_end_is_400(running: RunningApp, query: str) -> None:
    reply = get(running, f"/api/traces/abcd?{query}")
    assert reply.status == 400
    assert "start" in reply.text or "end" in reply.text


def test_valid_start_end_accepted(running: RunningApp) -> None:
    running.fake.block_store.traces[("single-tenant", TID)] = "block"
    assert get(running, "/api/traces/abcd?start=1700000000&end=1700003600").status == 200


def test_multitenant_reads(running_mt: RunningApp) -> None:
    running_mt.fake.block_store.traces[("a", TID)] = "from-a"
    running_mt.fake.block_store.traces[("b", TID)] = "from-b"
    assert get(running_mt, "/api/traces/abcd").status == 401
    assert get(running_mt, "/api/traces/abcd", {"X-Scope-OrgID": ".."}).status == 400
    assert get(running_mt, "/api/traces/abcd", {"X-Scope-OrgID": "a"}).body == b"json_v1|from-a|100"
    reply = get(running_mt, "/api/traces/abcd", {"X-Scope-OrgID": "b|a"})
    assert reply.body == b"json_v1|from-a,from-b|200"


def test_metrics_endpoint(running: RunningApp) -> None:
    get(running, "/api/echo")
    get(running, "/api/traces/zz")
    text = get(running, "/metrics").text
    assert 'tempo_build_info{branch="main"' in text
    labels = 'method="GET",route="api_echo",status_code="200"'
    duration = f"tempo_request_duration_seconds_count{{{labels}}}"
    assert duration in text
    assert 'tempo_query_frontend_queries_total{op="traces_v1",status="400"} 1.0' in text
    assert 'tempo_ingester_live_traces{tenant="single-tenant"} 2.0' in text
    assert 'tempodb_blocklist_length{tenant="single-tenant"} 0.0' in text


def test_unknown_path_is_404(running: RunningApp) -> None:
    assert get(running, "/api/nope").status == 404


def test_http_api_prefix(tmp_path: Path) -> None:
    app = RunningApp(make_config(tmp_path, "http_api_prefix: /tempo"))
    app.call(app.app.start())
    try:
        assert get(app, "/tempo/api/echo").status == 200
        assert get(app, "/tempo/ready").status == 200
        assert get(app, "/api/echo").status == 404
    finally:
        app.close()


def test_not_ready_during_replay(tmp_path: Path) -> None:
    app = RunningApp(make_config(tmp_path))
    gate = app.fake.replay_gate = threading.Event()
    started = asyncio.run_coroutine_threadsafe(app.app.start(), app.loop)
    try:
        deadline = time.monotonic() + 5
        while "http" not in app.app.ports and time.monotonic() < deadline:
            time.sleep(0.01)
        reply = get(app, "/ready")
        assert (reply.status, reply.text) == (503, "not ready: replaying the WAL")
        assert get(app, "/api/traces/abcd").status == 503
        gate.set()
        started.result(timeout=10)
        assert get(app, "/ready").status == 200
    finally:
        gate.set()
        app.close()


def test_immediate_poll_after_flush(running: RunningApp) -> None:
    store = running.fake.block_store
    before = store.polls
    running.app.ingester.flush()  # the hook asks the poller to re-read the block list now
    deadline = time.monotonic() + 5
    while store.polls == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.polls > before


def test_shutdown_flushes_when_configured(tmp_path: Path) -> None:
    app = RunningApp(make_config(tmp_path, "ingester: {flush_all_on_shutdown: true}"))
    app.call(app.app.start())
    app.close()
    assert app.fake.ingester.calls == ["replay", "start", "flush", "close"]


def test_shutdown_without_flush(running: RunningApp) -> None:
    running.call(running.app.stop())
    assert running.fake.ingester.calls == ["replay", "start", "close"]


def test_core_config_from_tempo_keys(tmp_path: Path) -> None:
    fake = FakeCore()
    config = make_config(tmp_path, "ingester: {trace_idle_period: 2s, max_block_duration: 1m}")
    app = RunningApp(config)
    app.app = App(config, fake.core())
    app.call(app.app.start())
    try:
        assert fake.ingester.wal_path == str(tmp_path / "wal")
        assert fake.ingester.config["trace_idle_period_ms"] == 2000
        assert fake.ingester.config["max_block_duration_ms"] == 60000
        assert fake.ingester.config["blocks_path"] == str(tmp_path / "blocks")
        assert fake.block_store.path == str(tmp_path / "blocks")
    finally:
        app.close()
