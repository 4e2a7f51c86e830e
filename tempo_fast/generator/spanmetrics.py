"""The span-metrics processor: RED metrics per service, span name, kind and status.

The Rust core turns a batch into distinct label keys plus per-span columns; this maps the keys to
series ids once per batch and lets the kernels count, bucket and sum.
"""

from __future__ import annotations

import numpy as np

from tempo_fast._core import SpanBatch, SpanMetricsProcessor
from tempo_fast.generator.registry import Exemplar, Family, Limits, SeriesTable
from tempo_fast.generator.settings import SpanMetricsSettings

CALLS = "traces_spanmetrics_calls_total"
LATENCY = "traces_spanmetrics_latency"
SIZE = "traces_spanmetrics_size_total"


class SpanMetrics:
    """``span-metrics`` for one tenant."""

    name = "span-metrics"

    def __init__(self, settings: SpanMetricsSettings, slack: float, limits: Limits) -> None:
        self.settings = settings
        self._core = SpanMetricsProcessor(
            list(settings.intrinsics), list(settings.dimensions), slack_seconds=slack
        )
        families = []
        if settings.count:
            families.append(Family(CALLS, "Total count of the spans."))
        if settings.latency:
            families.append(Family(LATENCY, "Latency of the spans in seconds.", settings.buckets))
        if settings.size:
            families.append(Family(SIZE, "Total size of the spans in bytes."))
        self.table = SeriesTable(self._core.label_names, families, limits)
        self.outside_slack = 0
        self.negative_duration = 0

    def push(self, batch: SpanBatch, now_ns: int) -> int:
        """Process one batch; returns the spans counted."""
        out = self._core.process(batch, now_ns)
        self.outside_slack += out.outside_slack
        self.negative_duration += out.negative_duration
        index = np.frombuffer(out.index, dtype=np.uint32)
        if not len(index):
            return 0
        table = self.table
        with table.lock:
            series = table.ids(out.keys, now_ns / 1e9)
            if CALLS in table.families:
                table.count(CALLS, index, series)
            if LATENCY in table.families:
                latency = np.frombuffer(out.latency, dtype=np.float64)
                table.add(LATENCY, index, series, latency)
                values = np.frombuffer(out.exemplar_latency, dtype=np.float64)
                times = np.frombuffer(out.exemplar_time_ms, dtype=np.int64)
                exemplars = table.exemplars
                for k, trace_id in enumerate(out.exemplar_trace_ids):
                    exemplars[series[k]] = Exemplar(trace_id, float(values[k]), int(times[k]))
            if SIZE in table.families:
                table.add(SIZE, index, series, np.frombuffer(out.size, dtype=np.float64))
        return len(index)
