"""Native (exponential) histograms end to end: spans in over OTLP with
``generate_native_histograms: both``, remote-written to a real Prometheus started with
``--enable-feature=native-histograms``, read back with the PromQL Grafana sends when
``serviceMapUseNativeHistograms`` is on (the family name without ``_bucket``).

Expected values come from the sent durations: counts exact, sums to float rounding, and
quantiles inside the native bucket (schema 3, or the lower schema a series with more than
100 populated buckets is reduced to) that holds the exact quantile.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from tests.e2e.test_metrics_generator import (
    WAIT,
    Sent,
    _span_metrics_expected,
    eventually,
    exact_quantile,
    send_traces,
    vector,
)
from tests.kernels.test_native_histogram import go_key
from tests.prometheus import Prometheus
from tests.server import TempoServer

LATENCY = "traces_spanmetrics_latency"
SERVER_SECONDS = "traces_service_graph_request_server_seconds"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sent, Prometheus]]:
    prometheus = Prometheus(extra_flags=["--enable-feature=native-histograms"]).start()
    data = tmp_path_factory.mktemp("native")
    server = TempoServer(
        data / "tempo",
        overrides={
            "metrics_generator": {
                "registry": {"collection_interval": "1s"},
                "storage": {
                    "path": str(data / "generator"),
                    "remote_write": [{"url": prometheus.write_url, "send_exemplars": True}],
                },
                "processor": {"service_graphs": {"wait": f"{WAIT}s"}},
            },
            "overrides": {
                "defaults": {
                    "metrics_generator": {
                        "processors": ["service-graphs", "span-metrics"],
                        "generate_native_histograms": "both",
                    }
                }
            },
        },
    ).start()
    sent = send_traces(server, seed=23, traces=300)
    try:
        yield sent, prometheus
    finally:
        server.stop()
        prometheus.close()


def series_schema(values: list[float]) -> int:
    """The schema a series of these values is sent with: 3, one less per halving needed to
    get to at most 100 populated buckets."""
    schema = 3
    keys = {go_key(v, 3) for v in values if v > 2.0**-128}
    while len(keys) > 100:
        keys = {(k + 1) >> 1 for k in keys}
        schema -= 1
    return schema


def bucket_around(v: float, schema: int) -> tuple[float, float]:
    k = go_key(v, schema)
    width = 2.0**-schema
    return 2.0 ** ((k - 1) * width), 2.0 ** (k * width)


def values_of(sent: Sent, name: str) -> tuple[list[float], int]:
    """The durations of the spans named ``name`` and the coarsest schema among their
    series (``sum`` merges series at the lowest schema)."""
    groups = [v for k, v in _span_metrics_expected(sent).items() if k[1] == name]
    return [v for g in groups for v in g], min(series_schema(g) for g in groups)


def test_native_series_exist_beside_the_classic_ones(
    generated: tuple[Sent, Prometheus],
) -> None:
    sent, prom = generated

    def present() -> None:
        names = {s["__name__"] for s in prom.series([LATENCY, SERVER_SECONDS,
                                                     f"{LATENCY}_bucket"])}  # fmt: skip
        assert names == {LATENCY, SERVER_SECONDS, f"{LATENCY}_bucket"}

    eventually(present, timeout=WAIT + 30)


@pytest.mark.parametrize("name", ["cart.get", "GET /cart"])
def test_counts_sums_and_quantiles(generated: tuple[Sent, Prometheus], name: str) -> None:
    sent, prom = generated
    values, schema = values_of(sent, name)
    sel = f'{LATENCY}{{span_name="{name}"}}'

    def counted() -> None:
        got = vector(prom, f"histogram_count(sum({sel}))")
        assert list(got.values()) == [float(len(values))]

    eventually(counted, timeout=WAIT + 30)
    (total,) = vector(prom, f"histogram_sum(sum({sel}))").values()
    assert total == pytest.approx(math.fsum(values), rel=1e-9)
    # the classic _count agrees
    (classic,) = vector(prom, f'sum({LATENCY}_count{{span_name="{name}"}})').values()
    assert classic == len(values)
    at = time.time()
    (rate_n,) = vector(prom, f"histogram_count(sum(rate({sel}[5m])))", at).values()
    (rate_s,) = vector(prom, f"histogram_sum(sum(rate({sel}[5m])))", at).values()
    assert rate_n > 0
    assert rate_s / rate_n == pytest.approx(math.fsum(values) / len(values), rel=1e-9)
    for q in (0.5, 0.95, 0.99):
        (got,) = vector(prom, f"histogram_quantile({q}, sum(rate({sel}[5m])))", at).values()
        lo, hi = bucket_around(exact_quantile(q, values), schema)
        assert lo * (1 - 1e-12) <= got <= hi * (1 + 1e-12), (q, got, lo, hi, schema)
        assert hi / lo <= 2 ** (2.0**-schema) * (1 + 1e-12)


def test_service_graph_native_quantile_as_grafana_asks(generated: tuple[Sent, Prometheus]) -> None:
    sent, prom = generated
    eventually(lambda: test_native_series_exist_beside_the_classic_ones(generated))
    values = [e[4] for e in sent.edges if e[:2] == ("frontend", "cart")]
    sel = f'{SERVER_SECONDS}{{client="frontend",server="cart"}}'

    def counted() -> None:
        got = vector(prom, f"histogram_count(sum({sel}))")
        assert list(got.values()) == [float(len(values))]

    eventually(counted, timeout=WAIT + 30)
    got = vector(prom, f"histogram_quantile(0.95, sum(rate({sel}[5m])))")
    (value,) = got.values()
    lo, hi = bucket_around(exact_quantile(0.95, values), series_schema(values))
    assert lo * (1 - 1e-12) <= value <= hi * (1 + 1e-12)

    # Grafana's node-graph query with native histograms (the family without _bucket): a
    # histogram per edge that has server spans
    def edges() -> None:
        rows = prom.query(f"sum by (client, server) (rate({SERVER_SECONDS}[5m]))")
        got_edges = {(r["metric"]["client"], r["metric"]["server"]) for r in rows}
        assert got_edges == {(c, s) for c, s, *_ in sent.edges}  # virtual nodes after wait
        assert all(float(r["histogram"][1]["count"]) > 0 for r in rows)

    eventually(edges, timeout=WAIT + 30)
