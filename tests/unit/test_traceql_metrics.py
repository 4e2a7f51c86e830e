"""TraceQL metrics math: the Cython kernels against plain-Python ports of Tempo's Go code
(``IntervalOf``, ``Log2Bucketize``, ``Log2Quantile``), and the frontend's parameter parsing
and label rendering."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from tempo_fast_kernels import timeseries as k

from tempo_fast.frontend import metrics as m
from tempo_fast.frontend.search import SearchError

NS = 1_000_000_000


# ---- reference ports of Tempo's Go (pkg/traceql/engine_metrics.go) -------------------


def go_log2(x: float) -> float:
    frac, exp = math.frexp(x)
    if frac == 0.5:
        return float(exp - 1)
    return math.log(frac) * (1 / math.log(2)) + exp


def ref_interval(ts: int, start: int, end: int, step: int) -> int:
    if end - start == step:
        return 0 if start <= ts <= end and end != start else -1
    start -= start % step
    end = end if end % step == 0 else end + step - end % step
    if not (start < ts <= end and end != start):
        return -1
    off = ts - start
    i = off // step
    return i - 1 if i * step == off else i


def ref_quantile(p: float, buckets: list[tuple[float, int]]) -> float:
    if math.isnan(p) or p < 0 or p > 1 or not buckets:
        return 0.0
    total_count = sum(c for _, c in buckets)
    if total_count == 0:
        return 0.0
    max_samples = math.ceil(p * total_count) or 1
    total = bucket = 0
    for i, (mx, c) in enumerate(buckets):
        bucket = i
        if total + c > max_samples:
            break
        total += c
        if total == max_samples:
            return mx
    interp = (max_samples - total) / buckets[bucket][1]
    max_v = go_log2(buckets[bucket][0])
    min_v = go_log2(buckets[bucket - 1][0]) if bucket > 0 else max_v - 1
    return 2 ** (min_v + (max_v - min_v) * interp)


def quantile(p: float, values: list[float]) -> float:
    """Tempo's ``percentileHelper``: one bucket per distinct value."""
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    maxes = np.array(list(counts), dtype=np.float64)
    return k.log2_quantile(p, maxes, np.array(list(counts.values()), dtype=np.int64))


# ---- Log2Quantile / Log2Bucketize ----------------------------------------------------


def test_log2_quantile_matches_tempo_test_expectations() -> None:
    # TestQuantileOverTime (engine_metrics_test.go): durations 128/256/512 ns.
    n128, n256, n512 = 128e-9, 256e-9, 512e-9
    assert quantile(0, [n128, n256, n512]) == n128
    assert quantile(0.5, [n128, n256, n512]) == n256
    assert quantile(1, [n128, n256, n512]) == n512
    assert quantile(1, [n256] * 4) == n256
    # Interpolation inside a single bucket: one octave below its bound.
    assert quantile(0.5, [n256] * 4) == pytest.approx(2 ** (go_log2(n256) - 0.5), rel=1e-15)
    assert quantile(0, [n256] * 4) == pytest.approx(2 ** (go_log2(n256) - 0.75), rel=1e-15)
    # Out-of-range quantiles and empty histograms read 0.
    for p in (-0.1, 1.1, math.nan):
        assert quantile(p, [n256]) == 0.0
    assert k.log2_quantile(0.5, np.zeros(0), np.zeros(0, dtype=np.int64)) == 0.0


def test_log2_quantile_matches_the_go_port_on_random_histograms() -> None:
    rng = random.Random(7)
    for _ in range(500):
        exps = sorted(rng.sample(range(1, 40), rng.randint(1, 8)))
        buckets = [(2.0**e / 1e9, rng.randint(1, 50)) for e in exps]
        p = rng.choice([0.0, 0.5, 0.9, 0.95, 0.99, 1.0, rng.random()])
        maxes = np.array([b[0] for b in buckets])
        counts = np.array([b[1] for b in buckets], dtype=np.int64)
        assert k.log2_quantile(p, maxes, counts) == pytest.approx(
            ref_quantile(p, buckets), rel=1e-14
        )


def test_log2_bucketize() -> None:
    assert k.log2_bucketize(0) == -1
    assert k.log2_bucketize(1) == -1
    assert k.log2_bucketize(2) == 2
    assert k.log2_bucketize(3) == 4
    assert k.log2_bucketize(1024) == 1024
    assert k.log2_bucketize(1025) == 2048
    assert k.log2_bucketize(2**40 + 1) == 2.0**41


# ---- per (series, step) folding ------------------------------------------------------


def columns(rng: random.Random, n: int, series: int, lo: int, hi: int):
    index = np.array([rng.randrange(series) for _ in range(n)], dtype=np.uint32)
    ts = np.array([rng.randint(lo, hi) for _ in range(n)], dtype=np.int64)
    values = np.array(
        [math.nan if rng.random() < 0.05 else rng.expovariate(1 / 3e8) for _ in range(n)]
    )
    return index, ts, values


@pytest.mark.parametrize("instant", [False, True])
def test_aggregate_matches_a_plain_python_fold(instant: bool) -> None:
    rng = random.Random(3)
    start, step = 1_000 * NS + 123, 10 * NS
    end = start + step if instant else start + 95 * NS
    steps = k.interval_count(start, end, step)
    assert steps == (1 if instant else 10)
    index, ts, values = columns(rng, 5_000, 7, start - 20 * NS, end + 20 * NS)
    shape = (7, steps)
    count, total, comp = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    lo, hi = np.full(shape, np.nan), np.full(shape, np.nan)
    kept = k.aggregate(index, ts, values, start, end, step, count, total, comp, lo, hi)
    want_n = np.zeros(shape)
    want_sum = np.zeros(shape)
    want_lo, want_hi = np.full(shape, np.nan), np.full(shape, np.nan)
    for s, t, v in zip(index.tolist(), ts.tolist(), values.tolist(), strict=True):
        i = ref_interval(t, start, end, step)
        if i < 0 or math.isnan(v):
            continue
        want_n[s, i] += 1
        want_sum[s, i] += v
        want_lo[s, i] = v if math.isnan(want_lo[s, i]) else min(want_lo[s, i], v)
        want_hi[s, i] = v if math.isnan(want_hi[s, i]) else max(want_hi[s, i], v)
    assert kept == int(want_n.sum())
    np.testing.assert_array_equal(count, want_n)
    np.testing.assert_allclose(total + comp, want_sum, rtol=1e-12)
    np.testing.assert_array_equal(lo, want_lo)
    np.testing.assert_array_equal(hi, want_hi)
    # Counts only (rate, count_over_time): NaN values do not matter.
    only = np.zeros(shape)
    k.aggregate(index, ts, None, start, end, step, only, only, only, only, only)
    in_window = [ref_interval(t, start, end, step) >= 0 for t in ts.tolist()]
    assert only.sum() == sum(in_window)


def test_interval_edges_follow_tempo() -> None:
    # Right-closed intervals over the aligned range: (start, start+step], …
    start, end, step = 10 * NS, 40 * NS, 10 * NS
    index = np.zeros(5, dtype=np.uint32)
    ts = np.array([10 * NS, 10 * NS + 1, 20 * NS, 20 * NS + 1, 40 * NS], dtype=np.int64)
    count = np.zeros((1, 3))
    k.aggregate(index, ts, None, start, end, step, count, count, count, count, count)
    assert count.tolist() == [[2.0, 1.0, 1.0]]
    for t in ts.tolist():
        assert ref_interval(t, start, end, step) in (-1, 0, 1, 2)


def test_log2_buckets_and_quantiles_merge_exactly() -> None:
    rng = random.Random(11)
    start, step = 0, 60 * NS
    end = 10 * step
    index, ts, values = columns(rng, 20_000, 3, 1, end)
    values = np.floor(values)
    counts = np.zeros((3, 10, k.EXPONENTS), dtype=np.uint64)
    k.log2_buckets(index, ts, values, start, end, step, counts)
    # Two halves folded separately then summed equal the whole.
    a = np.zeros_like(counts)
    b = np.zeros_like(counts)
    h = len(index) // 2
    k.log2_buckets(index[:h], ts[:h], values[:h], start, end, step, a)
    k.log2_buckets(index[h:], ts[h:], values[h:], start, end, step, b)
    np.testing.assert_array_equal(a + b, counts)
    qs = np.array([0.5, 0.99])
    out = np.zeros((3, 10, 2))
    k.log2_quantiles(counts, 1e9, qs, out)
    for s in range(3):
        for t in range(10):
            buckets = [
                (2.0**e / 1e9, int(counts[s, t, e])) for e in range(k.EXPONENTS) if counts[s, t, e]
            ]
            for j, q in enumerate(qs):
                assert out[s, t, j] == pytest.approx(ref_quantile(q, buckets), rel=1e-14)
    # Bucket membership: e = ceil(log2(v)).
    for v in (2.0, 3.0, 4.0, 5.0, 1e9, 2.0**33):
        one = np.zeros((1, 1, k.EXPONENTS), dtype=np.uint64)
        k.log2_buckets(
            np.zeros(1, dtype=np.uint32),
            np.array([5], dtype=np.int64),
            np.array([v]),
            0,
            10,
            10,
            one,
        )
        assert int(np.argmax(one[0, 0])) == math.ceil(go_log2(v))


# ---- parameters and rendering --------------------------------------------------------


def test_default_step_matches_tempo() -> None:
    # TestDefaultQueryRangeStep
    assert m.default_step(0, 100 * NS) == NS
    assert m.default_step(0, 600 * NS) == 2 * NS
    assert m.default_step(0, 3600 * NS) == 15 * NS
    assert m.default_step(0, 10 * NS) == NS


def test_durations_and_floats_print_as_go() -> None:
    assert m.go_duration(24 * 3600 * NS) == "24h0m0s"
    assert m.go_duration(60 * NS) == "1m0s"
    assert m.go_duration(1_500_000) == "1.5ms"
    assert m.go_duration(2_000) == "2µs"
    assert m.go_duration(90 * NS + NS // 2) == "1m30.5s"
    assert m.parse_go_duration("1m30.5s") == 90 * NS + NS // 2
    assert m.parse_step("30s") == m.parse_step("30") == 30 * NS
    with pytest.raises(ValueError, match='cannot parse "abc" to a valid duration'):
        m.parse_step("abc")
    assert m.parse_prom_duration("1h30m") == 5400 * NS
    assert m.go_float(0.5) == "0.5"
    assert m.go_float(1e6) == "1e+06"
    assert m.go_float(123456.0) == "123456"
    assert m.go_float(0.000001024) == "1.024e-06"
    assert m.go_float(0.001) == "0.001"
    assert m.prom_value(("float", 1.0)) == "1.0"
    assert m.prom_labels([("span.foo", ("string", "bar")), ("p", ("float", 0.0))]) == (
        '{p="0.0", "span.foo"="bar"}'
    )
    assert m.prom_labels([("__name__", ("string", "rate"))]) == '{__name__="rate"}'


def test_timestamps_accept_seconds_nanoseconds_and_rfc3339() -> None:
    assert m.parse_timestamp("1700000000", 0) == 1_700_000_000 * NS
    assert m.parse_timestamp("1700000000123456789", 0) == 1_700_000_000_123_456_789
    assert m.parse_timestamp("1700000000.5", 0) == 1_700_000_000 * NS + NS // 2
    assert m.parse_timestamp("2023-11-14T22:13:20Z", 0) == 1_700_000_000 * NS
    assert m.parse_timestamp("", 42) == 42


def test_request_errors_are_tempos() -> None:
    limits = m.MetricsLimits()
    now = 1_700_000_000 * NS

    def err(**q: str) -> str:
        with pytest.raises(SearchError) as e:
            m.parse_request(q, limits, instant=False, now_ns=now)
        assert e.value.status == 400
        return e.value.reason

    assert err(q="{} | rate()", start="200", end="100") == "end must be greater than start"
    assert err(q="{} | rate()", start="0", end=str(3 * 86400)) == (
        "metrics query time range exceeds the maximum allowed duration of 24h0m0s"
    )
    assert err(q="{} | rate()", start="0", end="50000", step="1s") == (
        "step of 1s is too small, minimum step for given range is 5s"
    )
    assert err(q="{} | rate()", step="soon") == 'cannot parse "soon" to a valid duration'
    req = m.parse_request({"q": "{} | rate()"}, limits, instant=False, now_ns=now)
    assert (req.start, req.end, req.step) == (now - 3600 * NS, now, 15 * NS)
    assert req.exemplars == m.MAX_EXEMPLARS
    req = m.parse_request({"query": "x", "since": "5m"}, limits, instant=True, now_ns=now)
    assert (req.q, req.end - req.start, req.step, req.exemplars) == ("x", 300 * NS, 300 * NS, 0)
    aligned = m.align(m.MetricsRequest("q", 1005 * NS, 1095 * NS, 10 * NS, 0))
    assert (aligned.start, aligned.end) == (990 * NS, 1100 * NS)


def test_topk_keeps_the_highest_series_per_step() -> None:
    series = [
        m.Series([("a", ("string", str(i)))], np.array(v, dtype=np.float64))
        for i, v in enumerate([[1, 5, math.nan], [3, 1, 2], [2, 2, 1]])
    ]
    top = m.top_bottom(series, 1, True)
    got = {s.labels[0][1][1]: s.values.tolist() for s in top}
    assert set(got) == {"0", "1"}
    assert got["1"][0] == 3 and math.isnan(got["1"][1]) and got["1"][2] == 2
    assert math.isnan(got["0"][0]) and got["0"][1] == 5
    bottom = m.top_bottom(series, 1, False)
    assert {s.labels[0][1][1] for s in bottom} == {"0", "1", "2"}


def job_out(keys: list[tuple], index: list[int], ts: list[int]) -> dict:
    empty = np.zeros(0)
    return {
        "keys": keys,
        "key_names": [],
        "index": np.array(index, dtype=np.uint32).tobytes(),
        "ts": np.array(ts, dtype=np.int64).tobytes(),
        "values": b"",
        "ex_index": empty.astype(np.uint32).tobytes(),
        "ex_ts": empty.astype(np.int64).tobytes(),
        "ex_value": empty.tobytes(),
        "ex_trace": [],
        "ex_span": [],
    }


def test_jobs_merge_by_key_and_the_series_bound_makes_it_partial() -> None:
    req = m.MetricsRequest("q", 0, 30 * NS, 10 * NS, 0)
    leaf = m.LeafAccumulator({"func": "count_over_time", "by": ["x"]}, req, 3, max_keys=2)
    a, b, c = ("string", "a"), ("string", "b"), ("string", "c")
    leaf.add(job_out([(a,), (b,)], [0, 1, 1], [5 * NS, 15 * NS, 25 * NS]))
    leaf.add(job_out([(b,), (c,), (a,)], [0, 1, 2, 2], [5 * NS, 5 * NS, 5 * NS, 30 * NS]))
    got = {s.labels[0][1][1]: s.values.tolist() for s in leaf.series()}
    assert got == {"a": [2.0, 0.0, 1.0], "b": [1.0, 1.0, 1.0]}
    assert leaf.partial
    # Nil by() values are dropped from the labels; all nil keeps the first as nil.
    leaf = m.LeafAccumulator({"func": "count_over_time", "by": ["x", "y"]}, req, 3)
    nil = ("nil", None)
    leaf.add(job_out([(nil, nil), (a, nil)], [0, 1], [5 * NS, 5 * NS]))
    labels = sorted(s.key for s in leaf.series())
    assert labels == ['{x="<nil>"}', '{x="a"}']


def test_limits_come_from_query_frontend_metrics_config() -> None:
    from tempo_fast.config.loader import default_yaml, load

    cfg = load(default_yaml() + "query_frontend: {metrics: {max_duration: 2h, max_exemplars: 5}}")
    limits = m.MetricsLimits.from_config(cfg.query_frontend)
    assert (limits.max_duration_ns, limits.max_exemplars) == (2 * 3600 * 10**9, 5)
    assert m.MetricsLimits.from_config(load(default_yaml()).query_frontend) == m.MetricsLimits()
    now = 10**18
    with pytest.raises(SearchError, match="exceeds the maximum allowed duration of 2h0m0s"):
        m.parse_request({"q": "{} | rate()", "since": "3h"}, limits, instant=False, now_ns=now)
    req = m.parse_request(
        {"q": "{} | rate()", "exemplars": "50"}, limits, instant=False, now_ns=now
    )
    assert req.exemplars == 5
