"""The metrics-generator on the reference data set: spans per CPU-second through span-metrics
and service-graphs together (Rust keys and pairing, Python key→series mapping, Cython
bucketing), the collection that encodes every series for remote write, and memory per active
series. Bar: at least 1,000,000 spans per CPU-second.

Batches are decoded once up front (``span_batch_from_otlp``), as the ingester hands them over
already decoded; the figure is the generator's own work.
"""

from __future__ import annotations

import gc
import resource
import time

import cramjam
import pytest

from bench.harness import env_int, loadgen_module, report, spread
from tempo_fast import _core
from tempo_fast.config.loader import default_yaml, load
from tempo_fast.generator import export
from tempo_fast.generator.generator import Generator
from tempo_fast.generator.remote_write import SeriesEncoder

pytestmark = pytest.mark.loadgen

BOTH = {"metrics_generator": {"processors": ["span-metrics", "service-graphs"],
                              "ingestion_time_range_slack": "0s"}}  # fmt: skip


# A filter that reads span attributes and intrinsics, and a mapping joining two of them.
FILTERED = {"metrics_generator": {
    **BOTH["metrics_generator"],
    "processor": {"span_metrics": {
        "dimension_mappings": [{"name": "endpoint", "source_labels": ["http.method", "http.route"],
                                "join": " "}],
        "filter_policies": [{
            "include": {"match_type": "strict", "attributes": [
                {"key": "kind", "value": "SPAN_KIND_SERVER"}]},
            "exclude": {"match_type": "regex", "attributes": [
                {"key": "span.http.route", "value": "search$"}]},
        }],
    }},
}}  # fmt: skip


def generator(config_extra: str = "", overrides: dict | None = None) -> Generator:
    cfg = load(default_yaml() + config_extra).metrics_generator
    assert cfg is not None
    return Generator(cfg, lambda _tenant: overrides or BOTH)


TARGET_INFO = {"metrics_generator": {
    **BOTH["metrics_generator"],
    "processor": {"span_metrics": {"enable_target_info": True}},
}}  # fmt: skip
VARIANTS = {"plain": None, "filter_and_mapping": FILTERED, "target_info": TARGET_INFO}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_generator_throughput(benchmark, variant: str) -> None:
    gen_mod = loadgen_module()
    raw, _ = gen_mod.make_batches(1, env_int("BENCH_GEN_BATCHES", 200), 1000, time.time_ns())
    batches = [_core.span_batch_from_otlp(body) for body, _ in raw]
    spans = sum(b.spans for b in batches)
    cpu_rates, wall_rates, first_pass = [], [], []
    gen = generator(overrides=VARIANTS[variant])
    assert gen.wants("bench")
    instance = gen.instances["bench"]

    def one_pass() -> tuple[float, float]:
        c0, w0 = time.process_time(), time.perf_counter()
        for b in batches:
            gen.process(instance, b)
        return spans / (time.process_time() - c0), spans / (time.perf_counter() - w0)

    # the first pass creates every series (Python per new key); later passes are the
    # steady state of a running generator, where keys are known
    first_pass.append(one_pass()[0])

    def run() -> None:
        cpu, wall = one_pass()
        cpu_rates.append(cpu)
        wall_rates.append(wall)

    benchmark.pedantic(run, rounds=env_int("BENCH_ROUNDS", 5), iterations=1)
    report(
        benchmark,
        f"generator span-metrics + service-graphs ({variant})",
        {
            "spans_per_round": spans,
            "series": sum(len(t) for t in instance.tables()),
            "first_pass_spans_per_cpu_s": first_pass[0],
            "spans_per_cpu_s": spread(cpu_rates),
            "spans_per_wall_s": spread(wall_rates),
        },
    )


def _synthetic_series(n: int) -> list[_core.SpanBatch]:
    """Batches whose spans have ``n`` distinct span names (one series each)."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
    from opentelemetry.proto.common.v1 import common_pb2 as cp
    from opentelemetry.proto.trace.v1 import trace_pb2 as tp

    now = time.time_ns()
    out = []
    for start in range(0, n, 10_000):
        req = ts.ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.append(
            cp.KeyValue(key="service.name", value=cp.AnyValue(string_value="svc"))
        )
        spans = rs.scope_spans.add().spans
        for i in range(start, min(n, start + 10_000)):
            spans.append(
                tp.Span(
                    trace_id=(i + 1).to_bytes(16, "big"),
                    span_id=(i + 1).to_bytes(8, "big"),
                    name=f"op-{i}",
                    kind=1,
                    start_time_unix_nano=now,
                    end_time_unix_nano=now + 1_000_000 * (i % 100),
                )  # fmt: skip
            )
        out.append(_core.span_batch_from_otlp(req.SerializeToString()))
    return out


def test_memory_and_remote_write_per_series(benchmark) -> None:
    n = env_int("BENCH_GEN_SERIES", 100_000)
    batches = _synthetic_series(n)
    figures: dict[str, object] = {}

    def run() -> None:
        gc.collect()
        before = _rss_kib()
        gen = generator()
        gen._overrides = lambda _t: {"metrics_generator": {  # span metrics only: one table
            "processors": ["span-metrics"], "ingestion_time_range_slack": "0s",
            "max_active_series": n + 10}}  # fmt: skip
        assert gen.wants("mem")
        instance = gen.instances["mem"]
        for b in batches:
            gen.process(instance, b)
        gc.collect()
        after = _rss_kib()
        (table,) = instance.tables()
        figures["active_series"] = len(table)
        figures["bytes_per_series_rss"] = (after - before) * 1024 / len(table)
        now_ms = int(time.time() * 1000)
        export.collect(table, [("cluster", "a")], now_ms, 0)  # the first: with 0 samples
        t0 = time.process_time()
        got = export.collect(table, [("cluster", "a")], now_ms + 15_000, 0)  # steady state
        payloads = list(SeriesEncoder().batches(got.series, got.exemplars))
        encode_s = time.process_time() - t0
        raw = sum(len(p) for p, _ in payloads)
        compressed = sum(len(bytes(cramjam.snappy.compress_raw(p))) for p, _ in payloads)
        exported = sum(n for _, n in payloads)  # one sample per exported series
        figures["exported_series_per_interval"] = exported
        figures["encode_us_per_exported_series"] = encode_s * 1e6 / exported
        figures["rw_bytes_per_exported_series_raw"] = raw / exported
        figures["rw_bytes_per_exported_series_snappy"] = compressed / exported
        figures["rw_bytes_per_span_metrics_series_snappy"] = compressed / len(table)

    benchmark.pedantic(run, rounds=1, iterations=1)
    report(benchmark, "generator memory and remote write", figures)


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
