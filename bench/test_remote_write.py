"""Remote write: bytes per series per collection interval (uncompressed WriteRequest and snappy
block), and encode time per series, for 10,000 counter series and for 10,000 span-metrics
latency histograms (Tempo's 14 default buckets + ``+Inf``: 15 ``_bucket`` series, ``_sum`` and
``_count``, so 17 exported series per histogram). Labels as the span-metrics processor's
(``service``, ``span_name``, ``span_kind``, ``status_code``, ``__metrics_gen_instance``), one
exemplar per histogram. Requests are cut at 2,000 samples (Prometheus'
``max_samples_per_send``) and, for comparison, sent as one request. Each round is one interval
with new values; figures are median and spread over rounds."""

from __future__ import annotations

import random
import time

import cramjam

from bench.harness import env_int, report, spread
from tempo_fast.generator.remote_write import SeriesEncoder

BUCKETS = [0.002 * 2**k for k in range(14)]
KINDS = ["SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_INTERNAL"]
STATUS = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]


def _key(i: int) -> list[tuple[str, str]]:
    return [
        ("service", f"service-{i % 50}"),
        ("span_name", f"GET /api/v1/resource-{i // 50}/{{id}}"),
        ("span_kind", KINDS[i % 3]),
        ("status_code", STATUS[(i // 3) % 3]),
    ]


def _measure(
    enc: SeriesEncoder,
    intervals: list[tuple[list[tuple[bytes, float, int]], dict]],
    per: dict[str, int],
) -> dict[str, dict[str, float]]:
    """Figures per unit (``per``: unit name -> count) over the given intervals."""
    figures: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        for unit, n in per.items():
            figures.setdefault(f"{name}_per_{unit}", []).append(value / n)

    for items, exemplars in intervals:
        t0 = time.perf_counter()
        batches = list(enc.batches(items, exemplars, max_samples=2000))
        t1 = time.perf_counter()
        compressed = [bytes(cramjam.snappy.compress_raw(p)) for p, _ in batches]
        t2 = time.perf_counter()
        whole = enc.request(items, exemplars)
        whole_c = bytes(cramjam.snappy.compress_raw(whole))
        add("encode_us", (t1 - t0) * 1e6)
        add("compress_us", (t2 - t1) * 1e6)
        add("bytes_uncompressed", sum(len(p) for p, _ in batches))
        add("bytes_snappy", sum(map(len, compressed)))
        add("bytes_snappy_one_request", len(whole_c))
    return {name: spread(vals) for name, vals in figures.items()}


def test_remote_write_counters(benchmark) -> None:
    n, rounds = env_int("BENCH_RW_SERIES", 10_000), env_int("BENCH_ROUNDS", 5)
    rng = random.Random(1)
    enc = SeriesEncoder(external_labels={"__metrics_gen_instance": "generator-0"})
    t0 = time.perf_counter()
    labels = [
        enc.labels([("__name__", "traces_spanmetrics_calls_total"), *_key(i)]) for i in range(n)
    ]
    label_us = (time.perf_counter() - t0) * 1e6 / n
    totals = [0.0] * n
    intervals = []
    now_ms = int(time.time() * 1000)
    for r in range(rounds):
        for i in range(n):
            totals[i] += rng.randint(0, 300)
        ts = now_ms + r * 15_000
        intervals.append(([(labels[i], totals[i], ts) for i in range(n)], {}))
    figures: dict = {}
    benchmark.pedantic(
        lambda: figures.update(_measure(enc, intervals, {"series": n})), rounds=1, iterations=1
    )
    report(
        benchmark,
        "remote write counters",
        {"series": n, "intervals": rounds, "label_encode_us_per_series": label_us, **figures},
    )


def test_remote_write_histograms(benchmark) -> None:
    n, rounds = env_int("BENCH_RW_HISTOGRAMS", 10_000), env_int("BENCH_ROUNDS", 5)
    rng = random.Random(2)
    enc = SeriesEncoder(external_labels={"__metrics_gen_instance": "generator-0"})
    name = "traces_spanmetrics_latency"
    les = [repr(b) for b in BUCKETS] + ["+Inf"]
    t0 = time.perf_counter()
    series = [
        (
            [enc.labels([("__name__", f"{name}_bucket"), ("le", le), *_key(i)]) for le in les],
            enc.labels([("__name__", f"{name}_sum"), *_key(i)]),
            enc.labels([("__name__", f"{name}_count"), *_key(i)]),
        )
        for i in range(n)
    ]
    exported = n * (len(les) + 2)
    label_us = (time.perf_counter() - t0) * 1e6 / exported
    counts = [[0] * len(les) for _ in range(n)]  # cumulative
    sums = [0.0] * n
    intervals = []
    now_ms = int(time.time() * 1000)
    for r in range(rounds):
        ts = now_ms + r * 15_000
        items, exemplars = [], {}
        for i, (buckets, sum_labels, count_labels) in enumerate(series):
            for _ in range(rng.randint(0, 30)):
                v = rng.lognormvariate(-3, 1.5)
                sums[i] += v
                for j, b in enumerate(BUCKETS):
                    if v <= b:
                        counts[i][j] += 1
                counts[i][-1] += 1
            items += [(lb, float(c), ts) for lb, c in zip(buckets, counts[i], strict=True)]
            items += [(sum_labels, sums[i], ts), (count_labels, float(counts[i][-1]), ts)]
            exemplars[buckets[rng.randrange(len(les))]] = (f"{rng.getrandbits(128):032x}", 0.1, ts)
        intervals.append((items, exemplars))
    figures: dict = {}
    benchmark.pedantic(
        lambda: figures.update(
            _measure(enc, intervals, {"exported_series": exported, "histogram": n})
        ),
        rounds=1,
        iterations=1,
    )
    report(
        benchmark,
        "remote write histograms",
        {
            "histograms": n,
            "exported_series": exported,
            "intervals": rounds,
            "label_encode_us_per_exported_series": label_us,
            **figures,
        },
    )
