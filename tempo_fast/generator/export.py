"""Turning series tables into Prometheus remote-write requests and ``/metrics`` samples.

Remote write: each series' labels (its own, the external ones) are sorted and encoded once, in
three pieces around the places ``__name__`` and ``le`` go; per collection only the family name,
``le`` and the sample are spliced in. Histograms become ``_bucket{le}`` (cumulative),
``_sum`` and ``_count`` series. A series sent for the first time is preceded by a 0 sample at the
end of the previous minute, as Tempo does, so ``rate()`` sees its first increment. The
``WriteRequest`` itself is built by :class:`~tempo_fast.generator.remote_write.SeriesEncoder`.

Native histograms (a family's ``mode`` ``native`` or ``both``, Tempo's
``generate_native_histograms``): one series named as the family (``traces_spanmetrics_latency``)
carrying a prompb ``Histogram`` per collection: schema 3, or lower when more than 100 buckets
are populated (client_golang's ``NativeHistogramMaxBucketNumber``: buckets merged pairwise, as
its resolution reduction does). In ``native`` mode the classic ``_bucket``/``_sum``/``_count``
series are not sent (Tempo sends only the native series); ``both`` sends both. A new native
series also starts with an empty histogram at the end of the previous minute (Tempo does not do
that for native series; without it ``rate()`` loses the first interval).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from prometheus_client.metrics_core import Metric

from tempo_fast.generator.registry import (
    NATIVE_MAX_BUCKETS,
    NATIVE_OFFSET,
    NATIVE_SCHEMA,
    NATIVE_ZERO_THRESHOLD,
    Columns,
    SeriesTable,
)
from tempo_fast.generator.remote_write import Exemplar as WireExemplar
from tempo_fast.generator.remote_write import SeriesEncoder, SeriesSample, label_field

_MIN_SCHEMA = -4
_EMPTY_NATIVE = SeriesEncoder.histogram(0, 0.0, NATIVE_SCHEMA, NATIVE_ZERO_THRESHOLD, 0, (), ())


def le_text(bound: float) -> str:
    """Prometheus' shortest form of a bucket bound (``0.1``, ``12.8``, ``+Inf``, ``1``)."""
    if bound == float("inf"):
        return "+Inf"
    text = repr(float(bound))
    return text[:-2] if text.endswith(".0") else text


def end_of_previous_minute(ts_ms: int) -> int:
    return ts_ms - ts_ms % 60_000 - 1


@dataclass(frozen=True)
class Segments:
    """A series' encoded labels, split where ``__name__`` and ``le`` sort in."""

    before_name: bytes
    before_le: bytes
    after_le: bytes


def segments(labels: Sequence[tuple[str, str]]) -> Segments:
    """Encode ``labels`` (any order; empty values and reserved names left out) in three parts."""
    pairs = sorted((n, v) for n, v in labels if v and n not in ("__name__", "le"))
    names = [n for n, _ in pairs]
    i = bisect.bisect_left(names, "__name__")
    j = bisect.bisect_left(names, "le")
    enc = [label_field(n, v) for n, v in pairs]
    return Segments(b"".join(enc[:i]), b"".join(enc[i:j]), b"".join(enc[j:]))


def native_buckets(
    row: np.ndarray,
    offset: int = NATIVE_OFFSET,
    schema: int = NATIVE_SCHEMA,
    max_buckets: int = NATIVE_MAX_BUCKETS,
) -> tuple[int, list[tuple[int, int]], list[int]]:
    """(schema, spans, deltas) of a native histogram's dense bucket window ``row`` (bucket
    index ``offset + j`` in column j). While more than ``max_buckets`` buckets are populated
    the schema drops by one, bucket k merging into (k + 1) >> 1 (client_golang's
    ``doubleBucketWidth``). Spans bridge gaps of up to 2 empty buckets (as client_golang)."""
    cols = np.flatnonzero(row)
    keys = cols.astype(np.int64) + offset
    counts = row[cols].astype(np.int64)
    while len(keys) > max_buckets and schema > _MIN_SCHEMA:
        keys = (keys + 1) >> 1
        first = np.flatnonzero(np.diff(keys, prepend=keys[0] - 1))
        keys, counts = keys[first], np.add.reduceat(counts, first)
        schema -= 1
    spans: list[tuple[int, int]] = []
    deltas: list[int] = []
    prev_key, prev_count = 0, 0
    for k, c in zip(keys.tolist(), counts.tolist(), strict=True):
        gap = k - prev_key - 1
        if spans and gap <= 2:
            spans[-1] = (spans[-1][0], spans[-1][1] + gap + 1)
            for _ in range(gap):
                deltas.append(-prev_count)
                prev_count = 0
        else:
            spans.append((k - prev_key - 1 if spans else k, 1))
        deltas.append(c - prev_count)
        prev_key, prev_count = k, c
    return schema, spans, deltas


def native_sample(row: np.ndarray, zero: int, count: int, total: float) -> bytes:
    """A series' native histogram, encoded (:meth:`SeriesEncoder.histogram`)."""
    schema, spans, deltas = native_buckets(row)
    return SeriesEncoder.histogram(count, total, schema, NATIVE_ZERO_THRESHOLD, zero, spans, deltas)


class FamilyWire:
    """The encoded ``__name__`` (and ``le``) labels of one family's exported series."""

    def __init__(self, columns: Columns) -> None:
        fam = columns.family
        if fam.histogram:
            self.bucket = label_field("__name__", fam.name + "_bucket")
            self.sum = label_field("__name__", fam.name + "_sum")
            self.count = label_field("__name__", fam.name + "_count")
            bounds = [*fam.bounds, float("inf")]
            self.les = [label_field("le", le_text(b)) for b in bounds]
            self.native = label_field("__name__", fam.name)
        else:
            self.name = label_field("__name__", fam.name)


@dataclass
class Collected:
    """A table's samples for :meth:`SeriesEncoder.batches`: (encoded labels, value, ms), a new
    series' 0 sample right before its value; exemplars by encoded labels."""

    series: list[SeriesSample] = field(default_factory=list)
    exemplars: dict[bytes, WireExemplar] = field(default_factory=dict)

    def add(self, labels: bytes, value: float, ts_ms: int, zero_ms: int | None) -> None:
        if zero_ms is not None:
            self.series.append((labels, 0.0, zero_ms))
        self.series.append((labels, value, ts_ms))

    def add_native(self, labels: bytes, hist: bytes, ts_ms: int, zero_ms: int | None) -> None:
        """A native histogram sample (encoded), after an empty one at ``zero_ms``."""
        if zero_ms is not None:
            self.series.append((labels, _EMPTY_NATIVE, zero_ms))
        self.series.append((labels, hist, ts_ms))


def _table_segments(table: SeriesTable, external: Sequence[tuple[str, str]]) -> list[Segments]:
    """The table's per-series label pieces, cached on the table (rebuilt after compaction)."""
    cache: list[Segments] = table.wire
    for sid in range(len(cache), len(table.keys)):
        labels = table.labels(sid)
        own = {n for n, _ in labels}
        cache.append(segments([*labels, *((n, v) for n, v in external if n not in own)]))
    return cache


def collect(
    table: SeriesTable,
    external: Sequence[tuple[str, str]],
    ts_ms: int,
    zero_ts_ms: int,
    exemplars: bool = True,
    out: Collected | None = None,
) -> Collected:
    """Every series of ``table`` at ``ts_ms`` (added to ``out``). A series exported for the
    first time gets a 0 sample at ``zero_ts_ms`` first (when that is earlier). Counters of a
    family marked sparse (failed requests) are left out while 0, as Tempo only creates them on
    the first failure."""
    with table.lock:
        n = len(table.keys)
        segs = list(_table_segments(table, external)[:n])
        fresh = ~table.exported[:n]
        table.exported[:n] = True
        snap = [(c, c.value[:n].copy(), c.count[:n].copy(), c.buckets[:n].copy(),
                 _mark_sent(c, n)) for c in table.families.values()]  # fmt: skip
        natives = {c.family.name: (c.native[:n].copy(), c.zero[:n].tolist())
                   for c in table.families.values() if c.family.native}  # fmt: skip
        exs = [table.exemplar(sid) for sid in range(n)] if exemplars else [None] * n
    out = out if out is not None else Collected()
    zero = zero_ts_ms if zero_ts_ms < ts_ms else None
    for columns, value, count, buckets, unsent in snap:
        wire = FamilyWire(columns)
        if columns.family.native:
            native, zeros = natives[columns.family.name]
            for sid in range(n):
                s = segs[sid]
                labels = s.before_name + wire.native + s.before_le + s.after_le
                hist = native_sample(native[sid], zeros[sid], int(count[sid]), float(value[sid]))
                out.add_native(labels, hist, ts_ms, zero if fresh[sid] else None)
                if exs[sid] is not None:
                    out.exemplars[labels] = exs[sid]  # type: ignore[assignment]
            if not columns.family.classic:
                continue  # native only: Tempo sends no classic series
        if columns.family.histogram:
            cum = np.cumsum(buckets, axis=1).tolist()
            bounds = columns.family.bounds
            for sid in range(n):
                s = segs[sid]
                first = zero if fresh[sid] else None
                ex = exs[sid]
                ex_bucket = -1 if ex is None else bisect.bisect_left(bounds, ex[1])
                row = cum[sid]
                for j, le in enumerate(wire.les):
                    labels = s.before_name + wire.bucket + s.before_le + le + s.after_le
                    out.add(labels, float(row[j]), ts_ms, first)
                    if j == ex_bucket:
                        out.exemplars[labels] = ex  # type: ignore[assignment]
                tail = s.before_le + s.after_le
                out.add(s.before_name + wire.sum + tail, float(value[sid]), ts_ms, first)
                out.add(s.before_name + wire.count + tail, float(count[sid]), ts_ms, first)
        else:
            sparse, gauge = columns.family.sparse, columns.family.gauge
            for sid in range(n):
                if sparse and not value[sid]:
                    continue
                s = segs[sid]
                first = zero if (unsent[sid] if sparse else fresh[sid]) and not gauge else None
                labels = s.before_name + wire.name + s.before_le + s.after_le
                out.add(labels, float(value[sid]), ts_ms, first)
    return out


def _mark_sent(columns: Columns, n: int) -> np.ndarray:
    """For a sparse family: which rows have not been exported yet (and mark the non-zero ones
    exported). Call with the table lock held."""
    if not columns.family.sparse:
        return np.zeros(0, dtype=bool)
    unsent = ~columns.sent[:n]
    columns.sent[:n] |= columns.value[:n] != 0
    return unsent


def exposition(
    table: SeriesTable, extra: Sequence[tuple[str, str]], metrics: dict[str, Metric]
) -> None:
    """Add the table's samples to ``metrics`` (family name -> prometheus-client Metric)."""
    with table.lock:
        n = len(table.keys)
        labels = [dict(table.labels(sid)) for sid in range(n)]
        snap = [(c.family, c.value[:n].copy(), c.count[:n].copy(), c.buckets[:n].copy())
                for c in table.families.values()]  # fmt: skip
    for lab in labels:
        lab.update((k, v) for k, v in extra if k not in lab)
    for fam, value, count, buckets in snap:
        if fam.histogram:
            metric = metrics.setdefault(fam.name, Metric(fam.name, fam.help, "histogram"))
            cum = np.cumsum(buckets, axis=1)
            les = [le_text(b) for b in (*fam.bounds, float("inf"))]
            for sid in range(n):
                for j, le in enumerate(les):
                    metric.add_sample(
                        fam.name + "_bucket", {**labels[sid], "le": le}, float(cum[sid, j])
                    )
                metric.add_sample(fam.name + "_sum", labels[sid], float(value[sid]))
                metric.add_sample(fam.name + "_count", labels[sid], float(count[sid]))
        else:
            kind = "gauge" if fam.gauge else "counter"
            base = fam.name if fam.gauge else fam.name.removesuffix("_total")
            metric = metrics.setdefault(base, Metric(base, fam.help, kind))
            for sid in range(n):
                if fam.sparse and not value[sid]:
                    continue
                metric.add_sample(fam.name, labels[sid], float(value[sid]))
