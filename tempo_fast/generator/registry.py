"""Series tables: each processor's distinct label sets, mapped to dense ids, with their values
held in numpy columns the Cython kernels update in place.

A table holds one label set shared by several metric families (span metrics' calls, latency and
size; the service graph's request, failed and latency families), so a batch maps its distinct
keys to ids once for all of them. Python touches each distinct key of a batch once; per-span work
is in the kernels.

Bounds: ``max_active_series`` per tenant (new series past it fold into one series per table
labelled ``metric_overflow="true"``), ``max_cardinality_per_label`` (new values past it become
``__cardinality_overflow__``), label names and values cut to Tempo's length limits, and series
idle for ``stale_duration`` removed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tempo_fast_kernels.histogram import accumulate, observe, observe_native

OVERFLOW_VALUE = "__cardinality_overflow__"
OVERFLOW_LABEL = ("metric_overflow", "true")
_MIN_CAPACITY = 64
RENUMBER_HISTORY = 4

# Native histograms as Tempo makes them (client_golang, bucket factor 1.1): schema 3 (8
# buckets per power of two, each bound 2^(1/8) ≈ 1.09 times the last), client_golang's
# default zero threshold 2^-128. The kernel keeps a dense window of bucket indices -159..112,
# (2^-20, 2^14] s ≈ 0.95 µs .. 4.5 h; values outside are clamped into the edge buckets.
NATIVE_SCHEMA = 3
NATIVE_ZERO_THRESHOLD = 2.0**-128
NATIVE_OFFSET = -159
NATIVE_WIDTH = 272
NATIVE_MAX_BUCKETS = 100  # client_golang's NativeHistogramMaxBucketNumber in Tempo
HISTOGRAM_MODES = ("classic", "native", "both")


@dataclass
class Limits:
    """Per-tenant series bounds; shared by every table of the tenant."""

    max_active_series: int = 0  # 0: no limit
    max_cardinality_per_label: int = 0  # 0: no limit
    max_label_value_length: int = 2048
    max_label_name_length: int = 1024  # names from data (target info) are cut to it
    active: int = 0  # series alive in every table of the tenant
    limited: int = 0  # new series folded into the overflow series
    label_overflow: int = 0  # label values replaced by __cardinality_overflow__
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> bool:
        """Reserve room for one new series; False when the tenant is at its limit."""
        with self.lock:
            if self.max_active_series and self.active >= self.max_active_series:
                self.limited += 1
                return False
            self.active += 1
            return True

    def release(self, n: int) -> None:
        with self.lock:
            self.active -= n


@dataclass(frozen=True)
class Family:
    """One metric family of a table: a counter, a gauge or a histogram."""

    name: str  # counters: with _total; histograms: the base name
    help: str
    bounds: tuple[float, ...] = ()  # histograms only
    # a counter exported only once non-zero (Tempo creates failed-request series on the
    # first failure)
    sparse: bool = False
    # histograms: Tempo's generate_native_histograms ("classic", "native" or "both"): which
    # series remote write gets. The classic buckets are kept in every mode (/metrics shows
    # them, as client_golang's text exposition does).
    mode: str = "classic"
    # a gauge (target info): exported as is, with no 0 sample before its first value
    gauge: bool = False

    @property
    def histogram(self) -> bool:
        return bool(self.bounds)

    @property
    def classic(self) -> bool:
        """Remote write gets the classic ``_bucket``/``_sum``/``_count`` series."""
        return self.mode != "native"

    @property
    def native(self) -> bool:
        """A native histogram is kept and remote-written (series: the bare family name)."""
        return self.histogram and self.mode != "classic"


class Columns:
    """A family's values, one row per series id."""

    def __init__(self, family: Family, capacity: int) -> None:
        self.family = family
        nb = len(family.bounds) + 1
        self.bounds = np.asarray(family.bounds, dtype=np.float64)
        self.value = np.zeros(capacity, dtype=np.float64)  # counter value or histogram sum
        self.count = np.zeros(capacity if family.histogram else 0, dtype=np.uint64)
        self.buckets = np.zeros((capacity if family.histogram else 0, nb), dtype=np.uint64)
        self.sent = np.zeros(capacity if family.sparse else 0, dtype=bool)  # sparse: exported
        # native histograms: bucket indices NATIVE_OFFSET.. per row, and the zero bucket
        rows = capacity if family.native else 0
        self.native = np.zeros((rows, NATIVE_WIDTH), dtype=np.uint64)
        self.zero = np.zeros(rows, dtype=np.uint64)

    def grow(self, capacity: int) -> None:
        self.value = _grown(self.value, capacity)
        if self.family.native:
            self.native = _grown(self.native, capacity)
            self.zero = _grown(self.zero, capacity)
        if self.family.sparse:
            self.sent = _grown(self.sent, capacity)
        if self.family.histogram:
            self.count = _grown(self.count, capacity)
            self.buckets = _grown(self.buckets, capacity)

    def keep(self, rows: np.ndarray, capacity: int) -> None:
        """Keep ``rows`` (in order) as rows 0..len(rows)-1."""
        n = len(rows)
        self.value = _kept(self.value, rows, n, capacity)
        if self.family.native:
            self.native = _kept(self.native, rows, n, capacity)
            self.zero = _kept(self.zero, rows, n, capacity)
        if self.family.sparse:
            self.sent = _kept(self.sent, rows, n, capacity)
        if self.family.histogram:
            self.count = _kept(self.count, rows, n, capacity)
            self.buckets = _kept(self.buckets, rows, n, capacity)


def _grown(a: np.ndarray, capacity: int, fill: float = 0) -> np.ndarray:
    out = np.full((capacity, *a.shape[1:]), fill, dtype=a.dtype)
    out[: len(a)] = a
    return out


def _kept(a: np.ndarray, rows: np.ndarray, n: int, capacity: int, fill: float = 0) -> np.ndarray:
    out = np.full((capacity, *a.shape[1:]), fill, dtype=a.dtype)
    out[:n] = a[rows]
    return out


class SeriesTable:
    """The series of one label set and the families that share it. Thread-safe: updates hold
    ``lock``; readers (collection, exposition) take it too."""

    def __init__(
        self,
        label_names: Sequence[str],
        families: Sequence[Family],
        limits: Limits,
    ) -> None:
        self.label_names = tuple(label_names)
        self.families = {f.name: Columns(f, _MIN_CAPACITY) for f in families}
        self.limits = limits
        self.lock = threading.Lock()
        self._ids: dict[tuple[str, ...], int] = {}
        self.keys: list[tuple[str, ...]] = []  # by id
        self.generation = 0  # moves on when ids are renumbered (stale series removed)
        # the last renumberings: (generation before, old id -> new id or -1)
        self.renumbered: list[tuple[int, np.ndarray]] = []
        self.wire: list[Any] = []  # by id: encoded labels, filled by the exporter
        self.last_seen = np.zeros(_MIN_CAPACITY, dtype=np.float64)
        self.exported = np.zeros(_MIN_CAPACITY, dtype=bool)  # has been sent once
        # each series' latest exemplar: value (NaN: none), time (unix ms), trace id bytes
        self.ex_value = np.full(_MIN_CAPACITY, np.nan)
        self.ex_time = np.zeros(_MIN_CAPACITY, dtype=np.int64)
        self.ex_trace = np.zeros((_MIN_CAPACITY, 16), dtype=np.uint8)
        self._label_values: list[set[str]] = [set() for _ in self.label_names]
        self._overflow_id = -1

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def capacity(self) -> int:
        return len(self.last_seen)

    def ids(self, keys: Sequence[tuple[str, ...]], now: float) -> np.ndarray:
        """Series id per key (creating series as the limits allow), marked seen at ``now``.
        Call with ``lock`` held."""
        out = np.empty(len(keys), dtype=np.int64)
        known = self._ids
        for i, key in enumerate(keys):
            sid = known.get(key)
            if sid is None:
                sid = self._create(key)
            out[i] = sid
        self.last_seen[out] = now
        return out

    def _create(self, key: tuple[str, ...]) -> int:
        cleaned = self._clean(key)
        sid = self._ids.get(cleaned)
        if sid is None:
            sid = self._add(cleaned) if self.limits.take() else self._overflow()
        if len(self._ids) < 4 * max(self.limits.max_active_series, 1 << 16):
            self._ids[key] = sid  # remember the raw key too (bounded)
        return sid

    def _clean(self, key: tuple[str, ...]) -> tuple[str, ...]:
        """Values cut to the length limit; past ``max_cardinality_per_label`` distinct values
        of a label, new values become ``__cardinality_overflow__``."""
        limits = self.limits
        n = limits.max_label_value_length
        out = [v[:n] if n and len(v) > n else v for v in key]
        cap = limits.max_cardinality_per_label
        if cap:
            for i, v in enumerate(out):
                seen = self._label_values[i]
                if v not in seen:
                    if len(seen) >= cap:
                        out[i] = OVERFLOW_VALUE
                        limits.label_overflow += 1
                    else:
                        seen.add(v)
        return tuple(out)

    def _add(self, key: tuple[str, ...]) -> int:
        sid = len(self.keys)
        if sid >= self.capacity:
            capacity = 2 * self.capacity
            self.last_seen = _grown(self.last_seen, capacity)
            self.exported = _grown(self.exported, capacity)
            self.ex_value = _grown(self.ex_value, capacity, np.nan)
            self.ex_time = _grown(self.ex_time, capacity)
            self.ex_trace = _grown(self.ex_trace, capacity)
            for columns in self.families.values():
                columns.grow(capacity)
        self.keys.append(key)
        self._ids[key] = sid
        return sid

    def _overflow(self) -> int:
        if self._overflow_id < 0:
            self.limits.active += 1  # the overflow series itself is one active series
            self._overflow_id = self._add(("",) * len(self.label_names) + ("true",))
        return self._overflow_id

    @property
    def overflow_id(self) -> int:
        """The overflow series' id, -1 while there is none."""
        return self._overflow_id

    def labels(self, sid: int) -> list[tuple[str, str]]:
        """The series' label pairs (empty values left out, as Prometheus treats them)."""
        key = self.keys[sid]
        pairs = [(n, v) for n, v in zip(self.label_names, key, strict=False) if v]
        if len(key) > len(self.label_names):
            pairs.append(OVERFLOW_LABEL)
        return pairs

    def add(self, family: str, index: np.ndarray, series: np.ndarray, values: np.ndarray) -> None:
        """Observe ``values[i]`` into series ``series[index[i]]`` (histograms) or add it
        (counters). Call with ``lock`` held."""
        columns = self.families[family]
        if columns.family.histogram:
            observe(index, series, values, columns.bounds, columns.buckets, columns.value,
                    columns.count)  # fmt: skip
            if columns.family.native:  # sums and counts: kept by observe above
                observe_native(index, series, values, NATIVE_SCHEMA, NATIVE_ZERO_THRESHOLD,
                               NATIVE_OFFSET, columns.native, columns.zero, None, None)  # fmt: skip
        else:
            accumulate(index, series, values, columns.value)

    def set(self, family: str, keys: Sequence[tuple[str, ...]], now: float) -> None:
        """Series ``keys`` seen at ``now``, their gauge at 1 (info metrics). Call with
        ``lock`` held."""
        sids = self.ids(keys, now)  # first: it may grow the columns
        self.families[family].value[sids] = 1.0

    def count(self, family: str, index: np.ndarray, series: np.ndarray) -> None:
        """Add 1 per entry of ``index`` to a counter family."""
        accumulate(index, series, None, self.families[family].value)

    def set_exemplars(
        self, series: np.ndarray, trace_ids: np.ndarray, values: np.ndarray, times: np.ndarray
    ) -> None:
        """Each series' latest exemplar (``trace_ids``: n×16 bytes). Call with ``lock`` held."""
        self.ex_trace[series] = trace_ids
        self.ex_value[series] = values
        self.ex_time[series] = times

    def exemplar(self, sid: int) -> tuple[str, float, int] | None:
        """(trace id hex, value, time ms) of the series' exemplar, if it has one."""
        value = float(self.ex_value[sid])
        if value != value:
            return None
        return self.ex_trace[sid].tobytes().hex(), value, int(self.ex_time[sid])

    def drop_stale(self, before: float) -> int:
        """Remove series last seen before ``before``; returns how many."""
        with self.lock:
            n = len(self.keys)
            alive = self.last_seen[:n] >= before
            if alive.all():
                return 0
            rows = np.flatnonzero(alive)
            capacity = max(_MIN_CAPACITY, 2 * len(rows))
            self.keys = [self.keys[r] for r in rows]
            self.ex_value = _kept(self.ex_value, rows, len(rows), capacity, np.nan)
            self.ex_time = _kept(self.ex_time, rows, len(rows), capacity)
            self.ex_trace = _kept(self.ex_trace, rows, len(rows), capacity)
            self.wire = [self.wire[r] for r in rows if r < len(self.wire)]
            if len(self.wire) < len(rows):
                self.wire = []  # a gap: let the exporter rebuild it
            self.last_seen = _kept(self.last_seen, rows, len(rows), capacity)
            self.exported = _kept(self.exported, rows, len(rows), capacity)
            for columns in self.families.values():
                columns.keep(rows, capacity)
            overflow = self._overflow_id
            self._overflow_id = -1
            if overflow >= 0 and alive[overflow]:
                self._overflow_id = int(np.searchsorted(rows, overflow))
            self._ids = {key: i for i, key in enumerate(self.keys)}
            remap = np.full(n, -1, dtype=np.int64)
            remap[rows] = np.arange(len(rows), dtype=np.int64)
            history = self.renumbered[-(RENUMBER_HISTORY - 1) :]
            self.renumbered = [*history, (self.generation, remap)]
            self.generation += 1
            self._label_values = [
                {k[i] for k in self.keys if i < len(k)} for i in range(len(self.label_names))
            ]
            removed = n - len(rows)
        self.limits.release(removed)
        return removed


class InfoTable(SeriesTable):
    """Series whose label names vary (``traces_target_info``): a key is the series' sorted
    (name, value) pairs. Values are cut to the length limit; the per-label cardinality limit
    does not apply (there are no fixed labels to count values of)."""

    def __init__(self, families: Sequence[Family], limits: Limits) -> None:
        super().__init__((), families, limits)

    def _clean(self, key: tuple[str, ...]) -> tuple[str, ...]:
        """Names and values cut to their length limits (a name that then repeats keeps its
        last value)."""
        nn, nv = self.limits.max_label_name_length, self.limits.max_label_value_length
        if not any((nn and len(k) > nn) or (nv and len(v) > nv) for k, v in key):  # type: ignore[misc]
            return key
        cut = {k[:nn] if nn else k: v[:nv] if nv else v for k, v in key}  # type: ignore[misc]
        return tuple(sorted(cut.items()))  # type: ignore[arg-type]

    def labels(self, sid: int) -> list[tuple[str, str]]:
        if sid == self.overflow_id:
            return [OVERFLOW_LABEL]
        return [(k, v) for k, v in self.keys[sid] if v]  # type: ignore[misc]
