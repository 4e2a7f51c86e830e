"""The span-metrics processor: RED metrics per service, span name, kind and status.

The Rust core turns a batch into distinct label keys plus per-span columns; this maps the keys to
series ids once per batch and lets the kernels count, bucket and sum.
"""

from __future__ import annotations

import numpy as np

from tempo_fast._core import SpanBatch, SpanMetricsBatch, SpanMetricsProcessor
from tempo_fast.generator.registry import Family, InfoTable, Limits, SeriesTable
from tempo_fast.generator.settings import SpanMetricsSettings

CALLS = "traces_spanmetrics_calls_total"
LATENCY = "traces_spanmetrics_latency"
SIZE = "traces_spanmetrics_size_total"
TARGET_INFO = "traces_target_info"


class SpanMetrics:
    """``span-metrics`` for one tenant."""

    name = "span-metrics"

    def __init__(self, settings: SpanMetricsSettings, slack: float, limits: Limits) -> None:
        self.settings = settings
        # keys the core remembers: room for every series the tenant may have and as many
        # again (overflowing or gone stale), so memory stays bounded by max_active_series
        max_keys = 2 * limits.max_active_series + 4096 if limits.max_active_series else 1 << 20
        self._core = SpanMetricsProcessor(
            list(settings.intrinsics),
            list(settings.dimensions),
            slack_seconds=slack,
            max_keys=max_keys,
            dimension_mappings=[(n, list(s), j) for n, s, j in settings.dimension_mappings],
            filter_policies=list(settings.filter_policies),
            target_info=settings.enable_target_info,
            instance_label=settings.enable_instance_label,
            target_info_excluded=list(settings.target_info_excluded_dimensions),
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
        # enable_target_info: one traces_target_info series per resource label set
        self.info = (
            InfoTable([Family(TARGET_INFO, "Target metadata.", gauge=True)], limits)
            if settings.enable_target_info
            else None
        )
        self.outside_slack = 0
        self.filtered = 0  # spans the filter policies left out
        self.negative_duration = 0
        self.lost_spans = 0
        # key id (stable across batches, from the core) -> series id, -1 unknown; and the
        # labels of keys with a series of their own (not the overflow series), to find it
        # again after it went stale and the core still knows the key
        self._key_series = np.full(1024, -1, dtype=np.int64)
        self._key_labels: dict[int, tuple[str, ...]] = {}
        self._core_generation = -1
        self._table_generation = 0

    def tables(self) -> list[SeriesTable]:
        return [self.table] if self.info is None else [self.table, self.info]

    def push(self, batch: SpanBatch, now_ns: int) -> int:
        """Process one batch; returns the spans counted."""
        out = self._core.process(batch, now_ns)
        if out.target_info and self.info is not None:
            with self.info.lock:
                self.info.set(TARGET_INFO, out.target_info, now_ns / 1e9)  # type: ignore[arg-type]
        self.outside_slack += out.outside_slack
        self.filtered += out.filtered
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
        if out.generation != self._core_generation:  # the core renumbered its keys
            self._key_series[:] = -1
            self._key_labels.clear()
            self._core_generation = out.generation
            self._table_generation = table.generation
        elif table.generation != self._table_generation:
            self._follow_renumbering()
        if out.new_keys:
            top = max(k for k, _ in out.new_keys)
            if top >= len(self._key_series):
                size = max(2 * len(self._key_series), top + 1)
                grown = np.full(size, -1, dtype=np.int64)
                grown[: len(self._key_series)] = self._key_series
                self._key_series = grown
        series = self._key_series[used]
        missing = np.flatnonzero(series < 0)
        if len(missing):
            kids = used[missing].tolist()
            fresh = dict(out.new_keys)
            labels = [fresh.get(k) or self._key_labels.get(k) for k in kids]
            if any(lab is None for lab in labels):
                # a known key whose series is gone and whose labels were not kept (it was in
                # the overflow series), or ids from a batch that never got here: start over;
                # the next batch brings every key with its labels, this one's spans are lost
                self._core.reset_keys()
                self.lost_spans += len(np.frombuffer(out.index, dtype=np.uint32))
                return np.full(len(used), -1, dtype=np.int64)
            found = table.ids(labels, now)  # type: ignore[arg-type]
            self._key_series[kids] = found
            series[missing] = found
            overflow = table.overflow_id
            for k, lab, sid in zip(kids, labels, found.tolist(), strict=True):
                if sid != overflow:
                    self._key_labels[k] = lab  # type: ignore[assignment]
        return series

    def _follow_renumbering(self) -> None:
        """Map key series through the table's renumberings since last seen (or forget them
        when too many happened meanwhile: keys with labels find their series again)."""
        table, ks = self.table, self._key_series
        steps = [remap for gen, remap in table.renumbered if gen >= self._table_generation]
        if not steps or table.renumbered[0][0] > self._table_generation:
            ks[:] = -1
        else:
            for remap in steps:
                known = np.flatnonzero(ks >= 0)
                ks[known] = remap[ks[known]]
        self._table_generation = table.generation
