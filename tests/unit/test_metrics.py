"""Metrics: the core-stats collector fed a fake stats dict, and BatchHistogram exposition."""

from __future__ import annotations

import array

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tempo_fast.pkg.metrics import BatchHistogram, Metrics

STATS = {
    "tenants": {
        "t1": {
            "live_traces": 5,
            "live_bytes": 1000,
            "traces_created": 9,
            "spans_received": 50,
            "bytes_received": 5000,
            "blocks_cut": 1,
            "head_chunks": 2,
            "wal_bytes_written": 4096,
            "wal_records": 7,
            "wal_segments": 3,
        },
    },
    "global": {
        "wal_fsyncs": 11,
        "wal_replayed_spans": 12,
        "wal_torn_bytes": 13,
        "blocks_flushed": 14,
        "flush_failures": 15,
    },
}


def exposition(m: Metrics) -> dict[str, float]:
    series = {}
    for line in m.exposition().decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            series[name] = float(value)
    return series


def test_core_stats_collector() -> None:
    m = Metrics()
    m.watch_core(lambda: STATS, lambda: {"t1": 4, "t2": 0})
    s = exposition(m)
    assert s['tempo_ingester_live_traces{tenant="t1"}'] == 5
    assert s['tempo_ingester_traces_created_total{tenant="t1"}'] == 9
    assert s['tempo_ingester_bytes_received_total{tenant="t1"}'] == 5000
    assert s['tempo_ingester_wal_bytes_written_total{tenant="t1"}'] == 4096
    assert s['tempo_ingester_wal_records_total{tenant="t1"}'] == 7
    assert s['tempo_ingester_wal_segments{tenant="t1"}'] == 3
    assert s["tempo_ingester_wal_fsyncs_total"] == 11
    assert s["tempo_ingester_wal_replayed_spans_total"] == 12
    assert s["tempo_ingester_wal_torn_bytes_total"] == 13
    assert s["tempo_ingester_blocks_flushed_total"] == 14
    assert s["tempo_ingester_failed_flushes_total"] == 15
    assert s['tempodb_blocklist_length{tenant="t2"}'] == 0


def test_failing_stats_do_not_break_scrape() -> None:
    def broken() -> dict:
        raise RuntimeError("closed")

    m = Metrics()
    m.watch_core(broken, dict)
    assert "tempo_build_info" in m.exposition().decode()


def test_batch_histogram() -> None:
    registry = CollectorRegistry()
    h = BatchHistogram("lag_seconds", "Lag.", ["tenant"], [1, 5], registry)
    h.observe_buffer(["a"], array.array("d", [0.5, 1.0, 3.0, 100.0]).tobytes())
    h.observe_buffer(["a"], array.array("d", [float("nan"), 2.0]))
    h.observe_buffer(["b"], b"")
    text = generate_latest(registry).decode()
    assert 'lag_seconds_bucket{le="1.0",tenant="a"} 2.0' in text
    assert 'lag_seconds_bucket{le="5.0",tenant="a"} 4.0' in text
    assert 'lag_seconds_bucket{le="+Inf",tenant="a"} 5.0' in text
    assert 'lag_seconds_count{tenant="a"} 5.0' in text
    assert 'lag_seconds_sum{tenant="a"} 106.5' in text
    assert 'tenant="b"' not in text


def test_batch_histogram_rejects_bad_input() -> None:
    h = BatchHistogram("x", "X.", ["tenant"], [1])
    with pytest.raises(ValueError, match="float64"):
        h.observe_buffer(["a"], b"1234567")
    with pytest.raises(ValueError, match="label values"):
        h.observe_buffer([], b"")
    with pytest.raises(ValueError, match="distinct"):
        BatchHistogram("y", "Y.", [], [1, 1])
