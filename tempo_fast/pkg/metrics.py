"""Prometheus metrics: one registry per process, Tempo's metric names.

Counting happens once per request with the counts Rust returns, never per span; the ingestion
lag histogram takes whole buffers through the Cython kernel (:class:`BatchHistogram`).
"""

from __future__ import annotations

import array
import platform
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from tempo_fast_kernels import bucket_counts

from tempo_fast import __version__
from tempo_fast.pkg.log import get_logger

API_VERSION = "2.10.0"
LAG_BUCKETS = (0.1, 1.0, 5.0, 15.0, 60.0, 300.0, 3600.0)

_log = get_logger("metrics")


class BatchHistogram(Collector):
    """A histogram fed whole float64 buffers; per-label-set counts live in uint64 arrays."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry | None = None,
    ) -> None:
        finite = sorted(float(b) for b in buckets if b != float("inf"))
        if not finite or len(set(finite)) != len(finite):
            raise ValueError("buckets must be distinct and include at least one finite bound")
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._bounds = array.array("d", finite)
        self._series: dict[tuple[str, ...], tuple[array.array[int], list[float]]] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def observe_buffer(self, labelvalues: Sequence[str], values: Any) -> None:
        """Observe every float64 in ``values`` (bytes or any buffer, native endian)."""
        if len(labelvalues) != len(self.labelnames):
            raise ValueError(
                f"expected {len(self.labelnames)} label values, got {len(labelvalues)}"
            )
        view = memoryview(values)
        if view.format != "d":
            view = view.cast("B")
            if view.nbytes % 8:
                raise ValueError(f"buffer of {view.nbytes} bytes is not a float64 array")
            view = view.cast("d")
        if not view.nbytes:
            return
        key = tuple(labelvalues)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = (array.array("Q", bytes(8 * (len(self._bounds) + 1))), [0.0])
                self._series[key] = series
            series[1][0] += bucket_counts(view, self._bounds, series[0])

    def collect(self) -> Iterable[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            snapshot = [(k, list(counts), total[0]) for k, (counts, total) in self._series.items()]
        for labelvalues, counts, total in snapshot:
            buckets, running = [], 0
            for bound, count in zip([*self._bounds, float("inf")], counts, strict=True):
                running += count
                buckets.append((floatToGoString(bound), running))
            family.add_metric(list(labelvalues), buckets, total)
        yield family

    def describe(self) -> Iterable[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)


# stats()["tenants"][t]: (stats key, name between "tempo_ingester_" and "_total", kind, help)
_TENANT_STATS = (
    ("live_traces", "live_traces", "gauge", "Live traces held in memory."),
    ("live_bytes", "live_trace_bytes", "gauge", "Bytes of live traces in memory."),
    ("traces_created", "traces_created", "counter", "Traces created."),
    ("spans_received", "spans_received", "counter", "Spans appended to the WAL."),
    ("bytes_received", "bytes_received", "counter", "Bytes of spans received."),
    ("blocks_cut", "blocks_cut", "counter", "Blocks cut from the head."),
    ("head_chunks", "head_chunks", "gauge", "Head chunks not yet in a block."),
    ("wal_bytes_written", "wal_bytes_written", "counter", "Bytes written to the WAL."),
    ("wal_records", "wal_records", "counter", "Records appended to the WAL."),
    ("wal_segments", "wal_segments", "gauge", "WAL segment files on disk."),
)
# the same for Ingester.stats()["global"]
_GLOBAL_STATS = (
    ("wal_fsyncs", "wal_fsyncs", "counter", "WAL fsync calls."),
    ("wal_replayed_spans", "wal_replayed_spans", "counter", "Spans replayed from the WAL."),
    ("wal_torn_bytes", "wal_torn_bytes", "counter", "Torn WAL tail bytes discarded at replay."),
    ("blocks_flushed", "blocks_flushed", "counter", "Blocks flushed to the backend."),
    ("flush_failures", "failed_flushes", "counter", "Failed block flushes."),
)


def _family(name: str, kind: str, doc: str, labels: Sequence[str]) -> Any:
    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    return cls(f"tempo_ingester_{name}", doc, labels=list(labels))


class CoreStatsCollector(Collector):
    """Turns ``Ingester.stats()`` and the querier's block list into Prometheus series."""

    def __init__(
        self,
        ingester_stats: Callable[[], Mapping[str, Any]],
        blocklist: Callable[[], Mapping[str, int]],
    ) -> None:
        self._ingester_stats = ingester_stats
        self._blocklist = blocklist

    def collect(self) -> Iterable[Any]:
        try:
            stats = self._ingester_stats()
        except Exception:  # a closed or failing core must not break /metrics
            _log.error("reading ingester stats failed", exc=True)
            stats = {"tenants": {}, "global": {}}
        tenants: Mapping[str, Mapping[str, int]] = stats.get("tenants", {})
        for key, name, kind, doc in _TENANT_STATS:
            family = _family(name, kind, doc, ["tenant"])
            for tenant, values in sorted(tenants.items()):
                if key in values:
                    family.add_metric([tenant], values[key])
            yield family
        overall: Mapping[str, int] = stats.get("global", {})
        for key, name, kind, doc in _GLOBAL_STATS:
            family = _family(name, kind, doc, [])
            if key in overall:
                family.add_metric([], overall[key])
            yield family
        blocks = GaugeMetricFamily(
            "tempodb_blocklist_length", "Blocks in the block list.", labels=["tenant"]
        )
        for tenant, count in sorted(self._blocklist().items()):
            blocks.add_metric([tenant], count)
        yield blocks


class QuerierErrorsCollector(Collector):
    """Unreadable blocks the querier skipped (``Querier.error_counts()``)."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Any]:
        counts = self._counts()
        poll = CounterMetricFamily(
            "tempodb_blocklist_poll_errors",
            "Blocks the block list could not open (corrupt or unreadable), summed over polls.",
            labels=[],
        )
        poll.add_metric([], counts.get("poll", 0))
        yield poll
        lookup = CounterMetricFamily(
            "tempo_querier_block_read_errors",
            "Blocks a trace lookup skipped because reading them failed.",
            labels=[],
        )
        lookup.add_metric([], counts.get("lookup", 0))
        yield lookup


class BackendStatsCollector(Collector):
    """The object store's counters (``BackendStats.snapshot()``) as ``tempodb_backend_*``."""

    def __init__(self, snapshot: Callable[[], Mapping[str, int]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Any]:
        counts = self._snapshot()
        simple = (
            ("requests", "Object store requests (retries included)."),
            ("retries", "Object store requests retried after a transient error."),
            ("bytes_read", "Bytes read from the object store."),
            ("bytes_written", "Bytes written to the object store."),
        )
        for key, doc in simple:
            family = CounterMetricFamily(f"tempodb_backend_{key}", doc, labels=[])
            family.add_metric([], counts.get(key, 0))
            yield family
        failures = CounterMetricFamily(
            "tempodb_backend_failures",
            "Object store operations that failed after retries, by kind.",
            labels=["kind"],
        )
        for key, n in sorted(counts.items()):
            if key.startswith("failures_"):
                failures.add_metric([key.removeprefix("failures_")], n)
        yield failures


class Metrics:
    """Every metric the control plane writes, on its own registry."""

    def __init__(self) -> None:
        disable_created_metrics()
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.build_info = Gauge(
            "tempo_build_info",
            "Build information: Tempo API level and tempo-fast revision.",
            ["version", "revision", "branch", "goversion"],
            registry=r,
        )
        self.build_info.labels(
            API_VERSION, f"tempo-fast-{__version__}", "main", f"python{platform.python_version()}"
        ).set(1)
        self.spans_received = Counter(
            "tempo_distributor_spans_received", "Spans received.", ["tenant"], registry=r
        )
        self.bytes_received = Counter(
            "tempo_distributor_bytes_received", "Request bytes received.", ["tenant"], registry=r
        )
        self.discarded_spans = Counter(
            "tempo_discarded_spans", "Spans dropped, by reason.", ["tenant", "reason"], registry=r
        )
        self.attributes_truncated = Counter(
            "tempo_distributor_attributes_truncated",
            "Attribute keys or values truncated to max_attribute_bytes, by tenant and scope.",
            ["tenant", "scope"],
            registry=r,
        )
        self.requests_refused = Counter(
            "tempo_distributor_requests_refused",
            "Push requests refused whole, by reason.",
            ["reason"],
            registry=r,
        )
        self.receiver_accepted = Counter(
            "tempo_receiver_accepted_spans",
            "Spans accepted by a receiver.",
            ["receiver", "transport"],
            registry=r,
        )
        self.receiver_refused = Counter(
            "tempo_receiver_refused_spans",
            "Spans refused by a receiver.",
            ["receiver", "transport"],
            registry=r,
        )
        self.request_duration = Histogram(
            "tempo_request_duration_seconds",
            "Time spent serving HTTP API requests.",
            ["method", "route", "status_code"],
            registry=r,
        )
        self.queries = Counter(
            "tempo_query_frontend_queries", "Queries served.", ["op", "status"], registry=r
        )
        self.bytes_inspected = Counter(
            "tempo_query_frontend_bytes_inspected",
            "Bytes read by searches and tag queries.",
            ["op"],
            registry=r,
        )
        self.ingestion_lag = BatchHistogram(
            "tempo_distributor_span_ingestion_lag_seconds",
            "Time from span end to ingestion.",
            ["tenant"],
            LAG_BUCKETS,
            registry=r,
        )

    def watch_core(
        self,
        ingester_stats: Callable[[], Mapping[str, Any]],
        blocklist: Callable[[], Mapping[str, int]],
    ) -> None:
        """Expose the Rust core's counters (read at scrape time)."""
        self.registry.register(CoreStatsCollector(ingester_stats, blocklist))

    def watch_querier(self, error_counts: Callable[[], Mapping[str, int]]) -> None:
        """Expose the querier's unreadable-block counts (read at scrape time)."""
        self.registry.register(QuerierErrorsCollector(error_counts))

    def watch_backend(self, snapshot: Callable[[], Mapping[str, int]]) -> None:
        """Expose the object store's counters (read at scrape time)."""
        self.registry.register(BackendStatsCollector(snapshot))

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
