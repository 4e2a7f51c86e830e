"""The span-metrics processor: RED metrics per service, span name, kind and status.

The Rust core turns a batch into distinct label keys plus per-span columns; this maps the keys to
series ids once per batch and lets the kernels count, bucket and sum.
"""

from __future__ import annotations

import numpy as np

from tempo_fast._core import SpanBatch, SpanMetricsBatch, SpanMetricsProcessor
from tempo_fast.generator.registry import Family, Limits, SeriesTable
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
            families.append(
                Family(LATENCY, "Latency of the spans in seconds.", settings.buckets,
                       mode=settings.histograms)
            )  # fmt: skip
        if settings.size:
            families.append(Family(SIZE, "Total size of the spans in bytes."))
        self.table = SeriesTable(self._core.label_names, families, limits)
        self.outside_slack = 0
        self.negative_duration = 0
        self.lost_spans = 0
        # key id (stable across batches, from the core) -> series id, -1 unknown; and the
        # key's labels, to find its series again after stale series are renumbered
        self._key_series = np.full(1024, -1, dtype=np.int64)
        self._key_labels: list[tuple[str, ...] | None] = [None] * 1024
        self._generation = (-1, -1)  # (core generation, table generation)

    def push(self, batch: SpanBatch, now_ns: int) -> int:
        """Process one batch; returns the spans counted."""
        out = self._core.process(batch, now_ns)
        self.outside_slack += out.outside_slack
        self.negative_duration += out.negative_duration
        index = np.frombuffer(out.index, dtype=np.uint32)
        if not len(index):
            return 0
        used = np.frombuffer(out.key_ids, dtype=np.uint32)
        table = self.table
        now = now_ns / 1e9
        with table.lock:
            series = self._series(out, used, now)
            if series[0] < 0:
                return 0
            table.last_seen[series] = now
            key_series = self._key_series
            if CALLS in table.families:
                table.count(CALLS, index, key_series)
            if LATENCY in table.families:
                table.add(LATENCY, index, key_series, np.frombuffer(out.latency, np.float64))
                table.set_exemplars(
                    series,
                    np.frombuffer(out.exemplar_trace_ids, np.uint8).reshape(-1, 16),
                    np.frombuffer(out.exemplar_latency, np.float64),
                    np.frombuffer(out.exemplar_time_ms, np.int64),
                )
            if SIZE in table.families:
                table.add(SIZE, index, key_series, np.frombuffer(out.size, dtype=np.float64))
        return len(index)

    def _series(self, out: SpanMetricsBatch, used: np.ndarray, now: float) -> np.ndarray:
        """Series ids of the batch's keys (``used``), creating series for new keys. Python
        work is per new key only. Call with the table lock held."""
        table = self.table
        generation = (out.generation, table.generation)
        if generation != self._generation:  # ids renumbered on either side: map afresh
            if generation[0] != self._generation[0]:
                self._key_labels = [None] * len(self._key_labels)
            self._key_series[:] = -1
            self._generation = generation
        if out.new_keys:
            top = max(k for k, _ in out.new_keys)
            if top >= len(self._key_series):
                size = max(2 * len(self._key_series), top + 1)
                grown = np.full(size, -1, dtype=np.int64)
                grown[: len(self._key_series)] = self._key_series
                self._key_series = grown
                self._key_labels += [None] * (size - len(self._key_labels))
            for k, labels in out.new_keys:
                self._key_labels[k] = labels
        series = self._key_series[used]
        missing = np.flatnonzero(series < 0)
        if len(missing):
            kids = used[missing]
            labels = [self._key_labels[k] for k in kids]
            if any(lab is None for lab in labels):
                # ids handed out in a batch that never reached here (it failed): start over,
                # the next batch brings every key with its labels; this one's spans are lost
                self._core.reset_keys()
                self.lost_spans += len(np.frombuffer(out.index, dtype=np.uint32))
                return np.full(len(used), -1, dtype=np.int64)
            found = table.ids(labels, now)  # type: ignore[arg-type]
            self._key_series[kids] = found
            series[missing] = found
        return series
