"""The service-graphs processor: request counts, failures and latencies per edge between
services, from client/server (and producer/consumer) span pairs.

Pairing across batches happens in the Rust store; completed edges come back as distinct keys
plus per-edge columns, counted here through the kernels.
"""

from __future__ import annotations

import numpy as np

from tempo_fast._core import EdgeBatch, ServiceGraphStore, SpanBatch
from tempo_fast.generator.registry import Family, Limits, SeriesTable
from tempo_fast.generator.settings import ServiceGraphSettings

REQUEST = "traces_service_graph_request_total"
FAILED = "traces_service_graph_request_failed_total"
SERVER = "traces_service_graph_request_server_seconds"
CLIENT = "traces_service_graph_request_client_seconds"
MESSAGING = "traces_service_graph_request_messaging_system_seconds"


class ServiceGraphs:
    """``service-graphs`` for one tenant."""

    name = "service-graphs"

    def __init__(self, settings: ServiceGraphSettings, slack: float, limits: Limits) -> None:
        self.settings = settings
        self.store = ServiceGraphStore(
            wait_seconds=settings.wait,
            max_items=settings.max_items,
            dimensions=list(settings.dimensions),
            enable_client_server_prefix=settings.enable_client_server_prefix,
            enable_virtual_node_label=settings.enable_virtual_node_label,
            enable_messaging_system_latency_histogram=(
                settings.enable_messaging_system_latency_histogram
            ),
            peer_attributes=list(settings.peer_attributes),
            database_name_attributes=list(settings.database_name_attributes),
            slack_seconds=slack,
        )
        families = []
        if settings.request:
            families += [
                Family(REQUEST, "Total count of requests between two nodes."),
                Family(FAILED, "Total count of failed requests between two nodes.", sparse=True),
            ]
        if settings.latency:
            families += [
                Family(SERVER, "Time for a request between two nodes as seen from the server.",
                       settings.buckets, mode=settings.histograms),
                Family(CLIENT, "Time for a request between two nodes as seen from the client.",
                       settings.buckets, mode=settings.histograms),
            ]  # fmt: skip
            if settings.enable_messaging_system_latency_histogram:
                families.append(
                    Family(MESSAGING, "Time between publisher and consumer for services "
                           "communicating through a messaging system.", settings.buckets,
                           mode=settings.histograms)
                )  # fmt: skip
        self.table = SeriesTable(self.store.label_names, families, limits)
        self.dropped_spans = 0
        self.expired_edges = 0
        self.outside_slack = 0
        self.edges = 0

    def tables(self) -> list[SeriesTable]:
        return [self.table]

    def push(self, batch: SpanBatch, now_ns: int) -> int:
        """Pair the batch's spans; count the edges they complete. Returns edges counted."""
        return self._count(self.store.push(batch, now_ns), now_ns)

    def expire(self, now_ns: int) -> int:
        """Expire edges past ``wait`` (virtual-node edges are counted)."""
        return self._count(self.store.expire(now_ns), now_ns)

    def _count(self, out: EdgeBatch, now_ns: int) -> int:
        self.dropped_spans += out.dropped_spans
        self.expired_edges += out.expired_edges
        self.outside_slack += out.outside_slack
        index = np.frombuffer(out.index, dtype=np.uint32)
        if not len(index):
            return 0
        table = self.table
        with table.lock:
            series = table.ids(out.keys, now_ns / 1e9)
            if REQUEST in table.families:
                table.count(REQUEST, index, series)
                failed = np.frombuffer(out.failed, dtype=np.uint8).astype(np.float64)
                table.add(FAILED, index, series, failed)
            if SERVER in table.families:
                table.add(SERVER, index, series, np.frombuffer(out.server_seconds, np.float64))
                table.add(CLIENT, index, series, np.frombuffer(out.client_seconds, np.float64))
                if MESSAGING in table.families:
                    # NaN (not a messaging edge) is skipped by the kernel
                    table.add(
                        MESSAGING, index, series, np.frombuffer(out.messaging_seconds, np.float64)
                    )
            # an exemplar per key: its last edge's server latency (Tempo observes the latency
            # histograms with the trace id)
            last = np.zeros(len(out.keys), dtype=np.int64)
            np.maximum.at(last, index.astype(np.int64), np.arange(len(index), dtype=np.int64))
            server = np.frombuffer(out.server_seconds, dtype=np.float64)
            traces = np.frombuffer(
                b"".join(bytes.fromhex(t) for t in out.exemplar_trace_ids), dtype=np.uint8
            ).reshape(-1, 16)
            times = np.full(len(series), now_ns // 1_000_000, dtype=np.int64)
            table.set_exemplars(series, traces, server[last], times)
        self.edges += len(index)
        return len(index)
