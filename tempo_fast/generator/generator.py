"""The metrics-generator: per-tenant span-metrics and service-graphs, collected every
``collection_interval`` into Prometheus remote write, and exposed on ``/metrics``.

The distributor hands over each accepted push as a :class:`~tempo_fast._core.SpanBatch` (the
request already decoded by the ingester); batches wait in a bounded queue for the generator's
worker thread, so ingestion never waits on metrics. A full queue drops the batch and counts its
spans (``reason="queue_full"``).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from tempo_fast._core import SpanBatch
from tempo_fast.config.generator import MetricsGeneratorConfig
from tempo_fast.generator import export
from tempo_fast.generator.hostinfo import HostInfo
from tempo_fast.generator.registry import Limits, SeriesTable
from tempo_fast.generator.remote_write import (
    RemoteWriteMetrics,
    RemoteWriter,
    RemoteWriteTarget,
    SeriesEncoder,
)
from tempo_fast.generator.servicegraphs import ServiceGraphs
from tempo_fast.generator.settings import SettingsError, TenantSettings, resolve
from tempo_fast.generator.spanmetrics import SpanMetrics
from tempo_fast.pkg.log import get_logger

_log = get_logger("metrics-generator")
MAX_QUEUED_SPANS = 500_000  # spans waiting for the worker, all tenants together
TICK = 1.0  # how often edges are expired and due collections run (seconds)


@dataclass
class TenantInstance:
    """One tenant's processors, series and counters."""

    tenant: str
    settings: TenantSettings
    limits: Limits
    processors: list[SpanMetrics | ServiceGraphs | HostInfo]
    spans_received: int = 0
    discarded: dict[str, int] = field(default_factory=dict)
    series_removed: int = 0
    collections: int = 0
    collections_failed: int = 0
    next_collection: float = 0.0
    writers: list[RemoteWriter] = field(default_factory=list)  # one per remote_write entry

    def tables(self) -> list[SeriesTable]:
        return [t for p in self.processors for t in p.tables()]

    def discard(self, reason: str, spans: int) -> None:
        if spans:
            self.discarded[reason] = self.discarded.get(reason, 0) + spans


def _instance(
    tenant: str, config: MetricsGeneratorConfig, settings: TenantSettings
) -> TenantInstance:
    limits = Limits(
        max_active_series=settings.max_active_series,
        max_cardinality_per_label=settings.max_cardinality_per_label,
        max_label_value_length=config.max_label_value_length,
        max_label_name_length=config.max_label_name_length,
    )
    processors: list[SpanMetrics | ServiceGraphs | HostInfo] = []
    if settings.span_metrics is not None:
        processors.append(SpanMetrics(settings.span_metrics, settings.ingestion_slack, limits))
    if settings.service_graphs is not None:
        processors.append(ServiceGraphs(settings.service_graphs, settings.ingestion_slack, limits))
    if settings.host_info is not None:
        processors.append(HostInfo(settings.host_info, limits))
    return TenantInstance(tenant, settings, limits, processors)


class Generator:
    """Every tenant's generator instance, the worker thread and the collection loop."""

    def __init__(
        self,
        config: MetricsGeneratorConfig,
        tenant_overrides: Callable[[str], Mapping[str, Any]],
        registry: CollectorRegistry | None = None,
        instance_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._overrides = tenant_overrides
        self._clock = clock
        self.instance_id = instance_id or socket.gethostname()
        self.instances: dict[str, TenantInstance] = {}
        self._disabled: dict[str, TenantSettings | None] = {}  # tenants with no processor
        self._lock = threading.Lock()  # instances and the queue
        self._queue: deque[tuple[str, SpanBatch]] = deque()
        self._queued = 0
        self._wake = threading.Condition(self._lock)
        self._busy = False
        self._closed = False
        self.queue_dropped = 0
        self._worker = threading.Thread(target=self._work, name="metrics-generator", daemon=True)
        self._worker.start()
        self._rw_metrics = RemoteWriteMetrics(registry)
        self._encoder = SeriesEncoder()
        self._writers: dict[str, list[RemoteWriter]] = {}  # by tenant, started on the loop
        self._writer_tasks: list[asyncio.Task[None]] = []
        self._external = sorted(config.external_labels.items())
        self._started_ms = int(clock() * 1000)
        self._warned: set[tuple[str, str]] = set()

    # -- ingestion -----------------------------------------------------------------------

    def settings(self, tenant: str) -> TenantSettings | None:
        """The tenant's settings, or None when it has no processor (or bad overrides)."""
        try:
            settings = resolve(self.config, self._overrides(tenant))
        except SettingsError as e:
            self._warn_once(tenant, str(e))
            return None
        for name in settings.unsupported:
            self._warn_once(tenant, f"processor {name} is not supported by tempo-fast; ignored")
        return settings if settings.enabled else None

    def _new_instance(self, tenant: str, settings: TenantSettings) -> TenantInstance:
        instance = _instance(tenant, self.config, settings)
        instance.writers = self._writers.get(tenant, [])
        return instance

    def _start_writers(self) -> None:
        """Remote writers for tenants that have none yet (on the event loop)."""
        cfg = self.config
        for tenant, instance in list(self.instances.items()):
            if tenant in self._writers or not cfg.remote_write:
                continue
            writers = []
            for rw in cfg.remote_write:
                headers = {**rw.headers, **instance.settings.remote_write_headers}
                if cfg.remote_write_add_org_id_header:
                    headers["X-Scope-OrgID"] = tenant
                target = RemoteWriteTarget(
                    rw.url, headers, rw.basic_auth, rw.timeout, rw.name, tls=rw.tls
                )
                writers.append(RemoteWriter(target, self._rw_metrics, tenant=tenant))
            self._writers[tenant] = instance.writers = writers
            self._writer_tasks += [
                asyncio.create_task(w.run(), name=f"remote-write-{tenant}") for w in writers
            ]

    def _warn_once(self, tenant: str, message: str) -> None:
        if (tenant, message) not in self._warned:
            self._warned.add((tenant, message))
            _log.warn("metrics-generator overrides", tenant=tenant, err=message)

    def wants(self, tenant: str) -> bool:
        """Whether ``tenant`` has a processor enabled (cached until the next collection)."""
        if tenant in self.instances:
            return True
        if tenant not in self._disabled:
            settings = self.settings(tenant)
            if settings is None:
                self._disabled[tenant] = None
                return False
            with self._lock:
                if tenant not in self.instances:
                    self.instances[tenant] = self._new_instance(tenant, settings)
            return True
        return False

    def push(self, tenant: str, batch: SpanBatch | None) -> None:
        """Queue ``batch`` for ``tenant``'s processors; never blocks."""
        if batch is None or not self.wants(tenant):
            return
        spans = batch.spans
        with self._lock:
            if self._queued + spans > MAX_QUEUED_SPANS and self._queued:
                self.queue_dropped += spans
                self.instances[tenant].discard("queue_full", spans)
                return
            self._queue.append((tenant, batch))
            self._queued += spans
            self._wake.notify()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._busy = False
                    self._wake.notify_all()
                    self._wake.wait()
                if not self._queue:
                    return
                tenant, batch = self._queue.popleft()
                self._queued -= batch.spans
                self._busy = True
                instance = self.instances.get(tenant)
            if instance is None:
                continue
            try:
                self.process(instance, batch)
            except Exception:  # a bug must not stop the worker; the batch is counted lost
                _log.error("metrics-generator batch failed", exc=True, tenant=tenant)
                instance.discard("internal_error", batch.spans)

    def process(self, instance: TenantInstance, batch: SpanBatch) -> None:
        """Run ``batch`` through the instance's processors (the worker's job; also direct
        for benchmarks)."""
        now_ns = int(self._clock() * 1e9)
        instance.spans_received += batch.spans
        for p in instance.processors:
            p.push(batch, now_ns)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued batch is processed (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(left)
        return True

    # -- collection ----------------------------------------------------------------------

    def tick(self) -> None:
        """Expire service-graph edges and run every collection that is due."""
        now = self._clock()
        now_ns = int(now * 1e9)
        for instance in list(self.instances.values()):
            for p in instance.processors:
                if isinstance(p, ServiceGraphs):
                    p.expire(now_ns)
            if now >= instance.next_collection:
                instance.next_collection = now + instance.settings.collection_interval
                self.collect(instance, now)
        self._refresh(now)

    def _refresh(self, now: float) -> None:
        """Pick up changed overrides: rebuild instances whose settings changed."""
        self._disabled.clear()
        for tenant, instance in list(self.instances.items()):
            settings = self.settings(tenant)
            if settings == instance.settings:
                continue
            with self._lock:
                if settings is None:
                    del self.instances[tenant]
                else:
                    self.instances[tenant] = self._new_instance(tenant, settings)
            _log.info("metrics-generator settings changed", tenant=tenant)

    def collect(self, instance: TenantInstance, now: float) -> None:
        """Drop stale series, then send every series to each remote-write endpoint."""
        stale_before = now - self.config.stale_duration
        for table in instance.tables():
            instance.series_removed += table.drop_stale(stale_before)
        writers = instance.writers
        if instance.settings.disable_collection or not writers:
            return
        ts_ms = int(now * 1000)
        zero_ms = max(export.end_of_previous_minute(ts_ms), self._started_ms)
        external = self._labels_for(instance.tenant)
        try:
            got = export.Collected()
            for table in instance.tables():
                export.collect(table, external, ts_ms, zero_ms, out=got)
            for payload, samples in self._encoder.batches(got.series, got.exemplars):
                for writer in writers:
                    writer.submit(payload, samples)
            instance.collections += 1
        except Exception:
            instance.collections_failed += 1
            _log.error("metrics-generator collection failed", exc=True, tenant=instance.tenant)

    def _labels_for(self, tenant: str) -> list[tuple[str, str]]:
        labels = [*self._external, ("__metrics_gen_instance", self.instance_id)]
        if self.config.inject_tenant_id_as:
            labels.append((self.config.inject_tenant_id_as, tenant))
        return labels

    async def run(self) -> None:
        """The collection loop (and the remote-write senders), until cancelled."""
        try:
            while True:
                await asyncio.sleep(TICK)
                self._start_writers()
                await asyncio.to_thread(self.tick)
        finally:
            for task in self._writer_tasks:
                task.cancel()

    async def close(self, max_wait: float | None = None) -> None:
        """Stop the worker, collect once more and flush remote writes within
        ``remote_write_flush_deadline`` (and ``max_wait``, the shutdown's own budget)."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        await asyncio.to_thread(self._worker.join, 10.0)
        now = self._clock()
        self._start_writers()
        for instance in list(self.instances.values()):
            self.collect(instance, now)
        deadline = self.config.remote_write_flush_deadline
        if max_wait is not None:
            deadline = min(deadline, max_wait)
        writers = [w for ws in self._writers.values() for w in ws]
        if writers:
            await asyncio.gather(*(w.close(deadline) for w in writers), return_exceptions=True)

    # -- exposition ----------------------------------------------------------------------

    def exposition(self, multitenant: bool) -> list[Metric]:
        """The generated series as prometheus-client metrics (``/metrics``); with several
        tenants each series carries a ``tenant`` label."""
        metrics: dict[str, Metric] = {}
        for instance in list(self.instances.values()):
            extra = list(self._external)
            if self.config.inject_tenant_id_as:
                extra.append((self.config.inject_tenant_id_as, instance.tenant))
            elif multitenant:
                extra.append(("tenant", instance.tenant))
            for table in instance.tables():
                export.exposition(table, extra, metrics)
        return list(metrics.values())


class GeneratorCollector(Collector):
    """``/metrics``: the generated series and the generator's own ``tempo_metrics_generator_*``
    counters."""

    def __init__(self, generator: Generator, multitenant: bool) -> None:
        self._gen = generator
        self._multitenant = multitenant

    def collect(self) -> Iterable[Metric]:
        gen = self._gen
        yield from gen.exposition(self._multitenant)
        received = Metric(
            "tempo_metrics_generator_spans_received", "Spans received by the generator.", "counter"
        )
        discarded = Metric(
            "tempo_metrics_generator_spans_discarded",
            "Spans the generator dropped, by reason.",
            "counter",
        )
        active = Metric("tempo_metrics_generator_registry_active_series", "Active series.", "gauge")
        limit = Metric(
            "tempo_metrics_generator_registry_max_active_series",
            "The tenant's active series limit.",
            "gauge",
        )
        limited = Metric(
            "tempo_metrics_generator_registry_series_limited",
            "New series folded into the overflow series by max_active_series.",
            "counter",
        )
        label_overflow = Metric(
            "tempo_metrics_generator_registry_label_values_limited",
            "Label values replaced by __cardinality_overflow__ (max_cardinality_per_label).",
            "counter",
        )
        removed = Metric(
            "tempo_metrics_generator_registry_series_removed", "Stale series removed.", "counter"
        )
        collections = Metric(
            "tempo_metrics_generator_registry_collections", "Collections run.", "counter"
        )
        failed = Metric(
            "tempo_metrics_generator_registry_collections_failed",
            "Collections that failed.",
            "counter",
        )
        expired = Metric(
            "tempo_metrics_generator_processor_service_graphs_expired_edges",
            "Service-graph edges that expired before both sides arrived.",
            "counter",
        )
        dropped = Metric(
            "tempo_metrics_generator_processor_service_graphs_dropped_spans",
            "Spans not paired because max_items edges were waiting.",
            "counter",
        )
        negative = Metric(
            "tempo_metrics_generator_spans_negative_duration",
            "Spans ending before they start (counted with latency 0).",
            "counter",
        )
        edges = Metric(
            "tempo_metrics_generator_processor_service_graphs_edges",
            "Service-graph edges counted.",
            "counter",
        )
        for inst in list(gen.instances.values()):
            t = {"tenant": inst.tenant}
            received.add_sample(
                "tempo_metrics_generator_spans_received_total", t, inst.spans_received
            )
            reasons = dict(inst.discarded)
            for p in inst.processors:
                if isinstance(p, SpanMetrics):
                    if p.lost_spans:
                        reasons["internal_error"] = reasons.get("internal_error", 0) + p.lost_spans
                    if p.filtered:
                        reasons["span_metrics_filtered"] = p.filtered
                    negative.add_sample(
                        "tempo_metrics_generator_spans_negative_duration_total",
                        t,
                        p.negative_duration,
                    )
                if p.outside_slack:
                    reasons["outside_metrics_ingestion_slack"] = (
                        reasons.get("outside_metrics_ingestion_slack", 0) + p.outside_slack
                    )
                if isinstance(p, ServiceGraphs):
                    expired.add_sample(
                        "tempo_metrics_generator_processor_service_graphs_expired_edges_total",
                        t,
                        p.expired_edges,
                    )
                    dropped.add_sample(
                        "tempo_metrics_generator_processor_service_graphs_dropped_spans_total",
                        t,
                        p.dropped_spans,
                    )
                    edges.add_sample(
                        "tempo_metrics_generator_processor_service_graphs_edges_total", t, p.edges
                    )
            for reason, n in reasons.items():
                discarded.add_sample(
                    "tempo_metrics_generator_spans_discarded_total", {**t, "reason": reason}, n
                )
            active.add_sample(
                "tempo_metrics_generator_registry_active_series", t, inst.limits.active
            )
            limit.add_sample(
                "tempo_metrics_generator_registry_max_active_series",
                t,
                inst.limits.max_active_series,
            )
            limited.add_sample(
                "tempo_metrics_generator_registry_series_limited_total", t, inst.limits.limited
            )
            label_overflow.add_sample(
                "tempo_metrics_generator_registry_label_values_limited_total",
                t,
                inst.limits.label_overflow,
            )
            removed.add_sample(
                "tempo_metrics_generator_registry_series_removed_total", t, inst.series_removed
            )
            collections.add_sample(
                "tempo_metrics_generator_registry_collections_total", t, inst.collections
            )
            failed.add_sample(
                "tempo_metrics_generator_registry_collections_failed_total",
                t,
                inst.collections_failed,
            )
        yield from (received, discarded, active, limit, limited, label_overflow, removed,
                    collections, failed, expired, dropped, edges, negative)  # fmt: skip
