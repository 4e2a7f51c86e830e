"""Remote-write encoding of series tables: sorted labels, histogram series, zero samples."""

from __future__ import annotations

import struct

import numpy as np

from tempo_fast.generator import export, registry
from tempo_fast.generator.registry import Family, Limits, SeriesTable
from tempo_fast.generator.remote_write import SeriesEncoder
from tempo_fast.pkg.protowire import fields

CALLS = Family("traces_spanmetrics_calls_total", "calls")
FAILED = Family("failed_total", "failed", sparse=True)
LATENCY = Family("traces_spanmetrics_latency", "latency", (0.1, 1.0))


def decode(got: export.Collected) -> list[tuple[dict[str, str], list[tuple[float, int]], list]]:
    """The ``WriteRequest`` of ``got`` as (labels, samples, exemplars) per time series,
    checking the labels are sorted and unique."""
    out = []
    for num, _, ts_bytes in fields(SeriesEncoder().request(got.series, got.exemplars)):
        assert num == 1 and isinstance(ts_bytes, bytes)
        labels, samples, exemplars = [], [], []
        for n, _, v in fields(ts_bytes):
            assert isinstance(v, bytes)
            if n == 1:
                kv = {k: val.decode() for k, _, val in fields(v)}  # type: ignore[union-attr]
                labels.append((kv[1], kv[2]))
            elif n == 2:
                d = dict((k, val) for k, _, val in fields(v))
                samples.append((struct.unpack("<d", d[1].to_bytes(8, "little"))[0], d[2]))
            elif n == 3:
                exemplars.append(v)
        names = [k for k, _ in labels]
        assert names == sorted(names) and len(set(names)) == len(names)
        out.append((dict(labels), samples, exemplars))
    return out


def test_le_text_is_prometheus_shortest_form() -> None:
    assert [export.le_text(b) for b in (0.1, 12.8, 1.0, 0.002, float("inf"))] == [
        "0.1", "12.8", "1", "0.002", "+Inf",
    ]  # fmt: skip


def test_counters_and_histograms_become_prometheus_series() -> None:
    t = SeriesTable(("service", "Zone", "span_name"), [CALLS, FAILED, LATENCY], Limits())
    with t.lock:
        ids = t.ids([("a", "eu", "x")], now=1.0)
        index = np.zeros(3, dtype=np.uint32)
        t.count(CALLS.name, index, ids)
        t.add(LATENCY.name, index, ids, np.array([0.05, 0.5, 5.0]))
        t.set_exemplars(ids, np.full((1, 16), 0xAB, np.uint8), np.array([0.5]), np.array([1234]))
    external = [("cluster", "c1"), ("service", "ignored-own-label-wins")]
    got = decode(export.collect(t, external, ts_ms=120_500, zero_ts_ms=119_999))
    by_name = {(lab["__name__"], lab.get("le")): (lab, s, e) for lab, s, e in got}
    lab, samples, _ = by_name[("traces_spanmetrics_calls_total", None)]
    assert lab == {
        "__name__": "traces_spanmetrics_calls_total",
        "Zone": "eu",
        "cluster": "c1",
        "service": "a",
        "span_name": "x",
    }
    assert samples == [(0.0, 119_999), (3.0, 120_500)]  # zero sample first, then the value
    assert ("failed_total", None) not in by_name  # sparse counter still 0
    buckets = {le: s[-1][0] for (n, le), (_, s, _) in by_name.items() if n.endswith("_bucket")}
    assert buckets == {"0.1": 1.0, "1": 2.0, "+Inf": 3.0}
    assert by_name[("traces_spanmetrics_latency_sum", None)][1][-1][0] == 5.55
    assert by_name[("traces_spanmetrics_latency_count", None)][1][-1][0] == 3.0
    assert len(by_name[("traces_spanmetrics_latency_bucket", "1")][2]) == 1  # the exemplar
    assert not by_name[("traces_spanmetrics_latency_bucket", "0.1")][2]
    # second collection: no zero sample any more
    got = decode(export.collect(t, external, ts_ms=121_500, zero_ts_ms=119_999))
    assert all(len(s) == 1 for _, s, _ in got)


def test_sparse_counter_gets_its_zero_sample_when_it_first_appears() -> None:
    t = SeriesTable(("service",), [CALLS, FAILED], Limits())
    with t.lock:
        ids = t.ids([("a",)], now=1.0)
        t.count(CALLS.name, np.zeros(1, dtype=np.uint32), ids)
    export.collect(t, [], ts_ms=60_500, zero_ts_ms=59_999)
    with t.lock:
        t.count(FAILED.name, np.zeros(1, dtype=np.uint32), ids)
    got = decode(export.collect(t, [], ts_ms=61_500, zero_ts_ms=59_999))
    failed = [s for lab, s, _ in got if lab["__name__"] == "failed_total"]
    assert failed == [[(0.0, 59_999), (1.0, 61_500)]]


def test_end_of_previous_minute() -> None:
    assert export.end_of_previous_minute(125_000) == 119_999


def expand(h) -> tuple[int, dict[int, int]]:  # noqa: ANN001  (a decoded prompb Histogram)
    """(schema, {bucket index: count}) of a decoded native histogram."""
    out, key, count = {}, 0, 0
    deltas = iter(h.positive_deltas)
    for i, span in enumerate(h.positive_spans):
        key += span.offset if i == 0 else span.offset + 1
        for j in range(span.length):
            count += next(deltas)
            if count:
                out[key + j] = count
        key += span.length - 1
    return h.schema, out


def test_native_histograms_by_mode() -> None:
    from tests.generator.test_remote_write import decode as decode_pb
    from tests.kernels.test_native_histogram import go_key

    values = [0.0, 0.0005, 0.001, 0.001, 0.0011, 0.5, 2.0, 3.5, 1e-9, 1e6]
    for mode in ("classic", "native", "both"):
        fam = Family("traces_spanmetrics_latency", "latency", (0.1, 1.0), mode=mode)
        t = SeriesTable(("service",), [CALLS, fam], Limits())
        with t.lock:
            ids = t.ids([("a",)], now=1.0)
            t.add(fam.name, np.zeros(len(values), np.uint32), ids, np.array(values))
            t.count(CALLS.name, np.zeros(len(values), np.uint32), ids)
        got = export.collect(t, [], ts_ms=120_500, zero_ts_ms=119_999)
        series = decode_pb(SeriesEncoder().request(got.series, got.exemplars))
        names = {dict(s["labels"])["__name__"] for s in series}
        classic = {f"{fam.name}_bucket", f"{fam.name}_sum", f"{fam.name}_count"}
        assert (classic <= names) == (mode != "native")
        assert (fam.name in names) == (mode != "classic")
        if mode == "classic":
            continue
        (native,) = [s for s in series if dict(s["labels"])["__name__"] == fam.name]
        assert native["samples"] == []
        zero, last = native["histograms"]
        assert (zero.timestamp, zero.count_int, zero.schema) == (119_999, 0, 3)
        assert last.timestamp == 120_500 and last.count_int == len(values)
        assert last.sum == sum(values) and last.zero_count_int == 1
        want: dict[int, int] = {}
        for v in values[1:]:  # clamped into the window -159..112
            k = min(max(go_key(v, 3), -159), 112)
            want[k] = want.get(k, 0) + 1
        assert expand(last) == (3, want)


def test_native_buckets_reduce_resolution_past_100_buckets() -> None:
    from tests.kernels.test_native_histogram import go_key

    row = np.zeros(registry.NATIVE_WIDTH, dtype=np.uint64)
    values = [2.0 ** (k / 8) * 0.99 for k in range(-100, 50)]  # 150 populated buckets
    for v in values:
        row[go_key(v, 3) - registry.NATIVE_OFFSET] += 1
    schema, spans, deltas = export.native_buckets(row)
    assert schema == 2  # 75 buckets at schema 2
    h = type("H", (), {"schema": schema, "positive_deltas": deltas,
                       "positive_spans": [type("S", (), {"offset": o, "length": n})()
                                          for o, n in spans]})()  # fmt: skip
    want: dict[int, int] = {}
    for v in values:
        want[go_key(v, 2)] = want.get(go_key(v, 2), 0) + 1
    assert expand(h) == (2, want)
    # gaps of up to two empty buckets stay inside a span
    row[:] = 0
    row[[0, 3, 7]] = [1, 2, 3]
    assert export.native_buckets(row)[1:] == ([(-159, 4), (3, 1)], [1, -1, 0, 2, 1])


def test_target_info_gauges_have_no_zero_sample_and_go_stale() -> None:
    info = registry.InfoTable([Family("traces_target_info", "info", gauge=True)], Limits(1000))
    a = (("instance", "cart-0"), ("job", "shop/cart"), ("k8s_pod_name", "p"), ("x", ""))
    b = (("job", "batch"), ("region", "eu"))
    with info.lock:
        info.set("traces_target_info", [a, b, a], now=100.0)
    got = decode(export.collect(info, [("cluster", "c1")], 60_000, 0))
    assert sorted(((labels, samples) for labels, samples, _ in got), key=str) == sorted([
        ({"__name__": "traces_target_info", "cluster": "c1", "instance": "cart-0",
          "job": "shop/cart", "k8s_pod_name": "p"}, [(1.0, 60_000)]),
        ({"__name__": "traces_target_info", "cluster": "c1", "job": "batch", "region": "eu"},
         [(1.0, 60_000)]),
    ], key=str)  # fmt: skip
    metrics: dict = {}
    export.exposition(info, [], metrics)
    (metric,) = metrics.values()
    assert metric.type == "gauge" and len(metric.samples) == 2
    with info.lock:
        info.set("traces_target_info", [b], now=200.0)
    assert info.drop_stale(150.0) == 1
    assert [dict(info.labels(sid)) for sid in range(len(info))] == [
        {"job": "batch", "region": "eu"}
    ]
    many = [(("job", f"svc-{i}"), ("pod", "p")) for i in range(200)]  # past the initial capacity
    with info.lock:
        info.set("traces_target_info", many, now=300.0)
    assert info.families["traces_target_info"].value[: len(info)].tolist() == [1.0] * 201
    assert info.drop_stale(250.0) == 1 and len(info) == 200


def test_target_info_label_names_and_values_are_cut_to_their_limits() -> None:
    limits = Limits(100, max_label_value_length=5, max_label_name_length=8)
    info = registry.InfoTable([Family("traces_target_info", "info", gauge=True)], limits)
    key = (("a" * 20, "first"), ("a" * 9, "second-long"), ("job", "svc"))
    with info.lock:
        info.set("traces_target_info", [key], now=1.0)
    assert info.labels(0) == [("aaaaaaaa", "secon"), ("job", "svc")]
