"""TraceQL metrics in the query-frontend: ``/api/metrics/query_range`` and
``/api/metrics/query``.

Parameters, defaults, alignment and errors follow Tempo 2.10 (``pkg/api/http.go``,
``modules/frontend/metrics_query_*.go``, ``pkg/traceql/engine_metrics.go``). Jobs (the
tenant's recent data, then groups of its blocks overlapping the range) run in the search
worker pool; each returns, per bracketed pipeline of the query, the matched spans as columns
(series index, start time, value) from Rust. The Cython kernels fold those columns into
per (series, step) counts, compensated sums, minima, maxima and log2-bucket counts, merged
across jobs before any quantile is taken, so the merge is exact. Python touches each distinct
series and step, never a span.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
from tempo_fast_kernels import timeseries as ts_kernels

from tempo_fast.config import QueryFrontendConfig
from tempo_fast.frontend import read_limits
from tempo_fast.frontend.read_limits import ReadOverrides
from tempo_fast.frontend.search import JobCache, Merged, SearchError, block_groups
from tempo_fast.pkg.log import get_logger
from tempo_fast.querier.querier import BlockRef, Querier

_log = get_logger("frontend")

NS = 1_000_000_000
MS = 1_000_000
#: Tempo's ``query_frontend.metrics.max_duration`` default.
DEFAULT_MAX_DURATION_NS = 24 * 3600 * NS
#: Tempo's ``query_frontend.metrics.max_exemplars`` default (and the cap on ``exemplars``).
MAX_EXEMPLARS = 100
#: Tempo's ``query_frontend.metrics.max_intervals`` default.
MAX_INTERVALS = 10_000
#: Series (distinct ``by()`` keys) kept per query; Tempo's ``max_response_series``.
MAX_SERIES = 1000
#: Distinct (attribute, value) pairs ``compare()`` keeps.
MAX_COMPARE_VALUES = 20_000
#: Index of a key beyond the bound: the kernels skip rows past the arrays.
_DROPPED = (1 << 31) - 1
#: ``since`` default (``pkg/api`` ``defaultSince``).
DEFAULT_SINCE_NS = 3600 * NS
EXPONENTS = ts_kernels.EXPONENTS

Label = tuple[str, Any]  # (type, value): ("string", "a"), ("int", 3), ("nil", None), …


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------

_GO_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": MS, "s": NS, "m": 60 * NS}
_GO_UNITS["h"] = 3600 * NS
_GO_PART = re.compile(r"(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)")
_LEGACY_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_PROM_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)


def parse_go_duration(s: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds (ValueError when invalid)."""
    text = s
    sign = 1
    if text[:1] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise ValueError(s)
    total = 0.0
    pos = 0
    while pos < len(text):
        m = _GO_PART.match(text, pos)
        if not m or m.group(1) in ("", "."):
            raise ValueError(s)
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    return sign * round(total)


def parse_prom_duration(s: str) -> int:
    """Prometheus' ``model.ParseDuration`` in nanoseconds (ValueError when invalid)."""
    if s == "0":
        return 0
    m = _PROM_DURATION.match(s)
    if not s or not m:
        raise ValueError(s)
    y, w, d, h, mi, sec, ms = (int(g or 0) for g in m.groups())
    days = y * 365 + w * 7 + d
    return ((days * 24 + h) * 60 + mi) * 60 * NS + sec * NS + ms * MS


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)

    def frac(v: int, scale: int) -> str:
        whole, rest = divmod(v, scale)
        if not rest:
            return str(whole)
        digits = str(rest).rjust(len(str(scale)) - 1, "0").rstrip("0")
        return f"{whole}.{digits}"

    if u < NS:
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < MS:
            return f"{sign}{frac(u, 1_000)}µs"
        return f"{sign}{frac(u, MS)}ms"
    h, rest = divmod(u, 3600 * NS)
    m, rest = divmod(rest, 60 * NS)
    out = f"{h}h" if h else ""
    if h or m:
        out += f"{m}m"
    return f"{sign}{out}{frac(rest, NS)}s"


def parse_timestamp(value: str, default: int) -> int:
    """Tempo's ``parseTimestamp``: unix seconds (10 digits or fewer, or with a fraction),
    unix nanoseconds or RFC3339; empty gives ``default``."""
    if value == "":
        return default
    if "." in value:
        try:
            t = float(value)
        except ValueError:
            pass
        else:
            whole = math.trunc(t)
            return whole * NS + round(round((t - whole) * 1000) / 1000 * NS)
    try:
        n = int(value)
    except ValueError:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None
        if dt.tzinfo is None:
            raise ValueError(f'parsing time "{value}": missing time zone') from None
        return int(dt.timestamp()) * NS + dt.microsecond * 1_000
    return n * NS if len(value) <= 10 else n


def parse_step(value: str) -> int:
    """Tempo's ``parseSecondsOrDuration``: float seconds or a Go duration, in ns."""
    try:
        return round(float(value) * NS)
    except ValueError:
        pass
    try:
        return parse_go_duration(value)
    except ValueError:
        raise ValueError(f'cannot parse "{value}" to a valid duration') from None


def default_step(start: int, end: int) -> int:
    """Tempo's ``DefaultQueryRangeStep``: about 240 points, 5s then 1s multiples, >= 1s."""
    baseline = (end - start) // 240
    interval = baseline // (5 * NS) * (5 * NS)
    if interval < 5 * NS:
        interval = baseline // NS * NS
    return NS if interval < NS else interval


@dataclass(frozen=True)
class MetricsLimits:
    """``query_frontend.metrics`` settings (Tempo's defaults)."""

    max_duration_ns: int = DEFAULT_MAX_DURATION_NS
    max_exemplars: int = MAX_EXEMPLARS
    max_intervals: int = MAX_INTERVALS
    target_bytes_per_job: int = 100 << 20
    # Distinct by() keys kept per query (``max_response_series``); more make the answer
    # PARTIAL. compare() keys are (attribute, value) pairs: a larger bound.
    max_series: int = MAX_SERIES
    max_compare_values: int = MAX_COMPARE_VALUES

    @classmethod
    def from_config(cls, qf: QueryFrontendConfig) -> MetricsLimits:
        """``query_frontend.metrics.{max_duration, max_exemplars, max_intervals,
        target_bytes_per_job}`` (0 max_duration: no limit)."""
        return cls(
            max_duration_ns=int(qf.metrics_max_duration * 1e9),
            max_exemplars=qf.metrics_max_exemplars,
            max_intervals=qf.metrics_max_intervals,
            target_bytes_per_job=qf.metrics_target_bytes_per_job,
        )


@dataclass(frozen=True)
class MetricsRequest:
    """One metrics query: unix-ns range (``end - start == step`` for an instant query)."""

    q: str
    start: int
    end: int
    step: int
    exemplars: int
    instant: bool = False


def parse_request(
    query: Mapping[str, str], limits: MetricsLimits, *, instant: bool, now_ns: int | None = None
) -> MetricsRequest:
    """The request's parameters as Tempo reads them (a 400 :class:`SearchError` says what
    is wrong): ``q`` (or ``query``), ``start``/``end``/``since``, ``step``, ``exemplars``."""
    q = query.get("q") or query.get("query") or ""
    now = time.time_ns() if now_ns is None else now_ns
    since = DEFAULT_SINCE_NS
    if query.get("since"):
        try:
            since = parse_prom_duration(query["since"])
        except ValueError:
            raise SearchError(
                400,
                f"could not parse 'since' parameter: not a valid duration string: "
                f'"{query["since"]}"',
            ) from None
    try:
        end = parse_timestamp(query.get("end", ""), now)
    except ValueError as e:
        raise SearchError(400, f"could not parse 'end' parameter: {e}") from None
    try:
        start = parse_timestamp(query.get("start", ""), min(end, now) - since)
    except ValueError as e:
        raise SearchError(400, f"could not parse 'start' parameter: {e}") from None
    if instant:
        step = end - start
    elif query.get("step"):
        try:
            step = parse_step(query["step"])
        except ValueError as e:
            raise SearchError(400, str(e)) from None
    else:
        step = default_step(start, end)
    exemplars = limits.max_exemplars
    if query.get("exemplars"):
        try:
            exemplars = int(query["exemplars"])
        except ValueError:
            raise SearchError(400, f"invalid exemplars: {query['exemplars']!r}") from None
        exemplars = max(0, min(exemplars, limits.max_exemplars))
    if instant:
        exemplars = 0  # Tempo: instant queries compute no exemplars
    # validateQueryRangeReq (before alignment)
    if start > end:
        raise SearchError(400, "end must be greater than start")
    if limits.max_duration_ns > 0 and end - start > limits.max_duration_ns:
        raise SearchError(
            400,
            "metrics query time range exceeds the maximum allowed duration of "
            + go_duration(limits.max_duration_ns),
        )
    if (
        not instant
        and limits.max_intervals
        and (step <= 0 or (end - start) // step > limits.max_intervals)
    ):
        minimum = (end - start) // limits.max_intervals
        raise SearchError(
            400,
            f"step of {go_duration(max(step, 0))} is too small, minimum step for given range is "
            f"{go_duration(minimum)}",
        )
    return MetricsRequest(q, start, end, step, exemplars, instant)


def align(req: MetricsRequest) -> MetricsRequest:
    """Tempo's ``AlignRequest``: start and end to the step, plus one leading step."""
    if req.instant or req.end - req.start == req.step:
        return req
    start, end = ts_kernels.align(req.start, req.end, req.step)
    if start > req.step:
        start -= req.step
    return MetricsRequest(req.q, start, end, req.step, req.exemplars, req.instant)


# --------------------------------------------------------------------------------------
# Labels (Tempo's Static encodings)
# --------------------------------------------------------------------------------------


def go_float(f: float) -> str:
    """Go's ``strconv.FormatFloat(f, 'g', -1, 64)`` (shortest digits; exponent form below
    1e-4 and from 1e6)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    _, digit_tuple, exponent = Decimal(repr(abs(f))).as_tuple()
    assert isinstance(exponent, int)
    all_digits = "".join(map(str, digit_tuple)).lstrip("0")
    x = len(all_digits) + exponent - 1  # decimal exponent of the leading digit
    digits = all_digits.rstrip("0") or "0"
    sign = "-" if f < 0 else ""
    if x < -4 or x >= 6:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{m}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if x < 0:
        return f"{sign}0.{'0' * (-x - 1)}{digits}"
    if len(digits) <= x + 1:
        return f"{sign}{digits}{'0' * (x + 1 - len(digits))}"
    return f"{sign}{digits[: x + 1]}.{digits[x + 1 :]}"


def any_value(v: Label) -> dict[str, Any]:
    """OTLP ``AnyValue`` JSON (gogo jsonpb) of a label value; nil reads ``"nil"``."""
    typ, val = v
    if typ == "string":
        return {"stringValue": val}
    if typ == "int":
        return {"intValue": str(val)}
    if typ == "float":
        return {"doubleValue": val if math.isfinite(val) else str(val)}
    if typ == "bool":
        return {"boolValue": val}
    return {"stringValue": "nil"}


def prom_value(v: Label) -> str:
    """Tempo's ``Labels.String()`` rendering of one value."""
    typ, val = v
    if typ == "nil":
        return "<nil>"
    if typ == "string":
        return "<nil>" if val == "nil" else "<empty>" if val == "" else val
    if typ == "int":
        return str(val)
    if typ == "float":
        text = go_float(val)
        return text if "e" in text or "." in text else text + ".0"
    if typ == "bool":
        return "true" if val else "false"
    return str(val)


def prom_labels(labels: list[tuple[str, Label]]) -> str:
    """Prometheus' ``labels.String()`` of the series labels: sorted by name, names outside
    the legacy charset quoted (Prometheus 3)."""
    parts = {}
    for name, v in labels:
        parts[name] = prom_value(v)

    def quote(text: str) -> str:
        return orjson.dumps(text).decode()

    body = ", ".join(
        f"{k if _LEGACY_NAME.match(k) else quote(k)}={quote(parts[k])}" for k in sorted(parts)
    )
    return "{" + body + "}"


# --------------------------------------------------------------------------------------
# Accumulation across jobs
# --------------------------------------------------------------------------------------


@dataclass
class Series:
    """One output series: labels, one value per step (NaN: no sample), exemplars."""

    labels: list[tuple[str, Label]]
    values: np.ndarray
    exemplars: list[tuple[int, float, str, str]] = field(default_factory=list)  # ts ns, value

    @property
    def key(self) -> str:
        return prom_labels(self.labels)


class LeafAccumulator:
    """Per (series, step) state of one bracketed pipeline, merged over jobs."""

    def __init__(
        self, spec: Mapping[str, Any], req: MetricsRequest, steps: int, max_keys: int = 0
    ) -> None:
        self.func: str = spec["func"]
        self.by: list[str] = list(spec["by"])
        self.quantiles: list[float] = list(spec.get("quantiles") or [])
        self.scale: float = float(spec.get("bucket_scale", 1.0))
        self.top_n: int = int(spec.get("top_n", 10))
        self.req = req
        self.steps = steps
        self.keys: dict[tuple[Any, ...], int] = {}
        self.key_list: list[tuple[Any, ...]] = []
        self.rows = 0
        self.cap = 0
        self.count = np.zeros((0, steps))
        self.total = np.zeros((0, steps))
        self.comp = np.zeros((0, steps))
        self.minimum = np.zeros((0, steps))
        self.maximum = np.zeros((0, steps))
        self.buckets = np.zeros((0, steps, EXPONENTS), dtype=np.uint64)
        self.exemplars: list[tuple[int, int, float, str, str]] = []
        self.lock = threading.Lock()
        self.max_keys = max_keys  # 0: no bound
        self.partial = False
        self.maxed: set[str] = set()  # compare(): attributes over top N in some job

    @property
    def bucketed(self) -> bool:
        return self.func in ("quantile_over_time", "histogram_over_time")

    @property
    def stride(self) -> int:
        return 2 if self.func == "compare" else 1

    def _grow(self, rows: int) -> None:
        if rows <= self.cap:
            return
        cap = max(rows, 2 * self.cap, 16)
        extra = cap - self.cap

        def pad(a: np.ndarray, fill: float) -> np.ndarray:
            more = np.full((extra, *a.shape[1:]), fill, dtype=a.dtype)
            return np.ascontiguousarray(np.concatenate([a, more]))

        if self.bucketed:
            self.buckets = pad(self.buckets, 0)
        else:
            self.count = pad(self.count, 0.0)
            if self.func not in ("rate", "count_over_time"):
                self.total = pad(self.total, 0.0)
                self.comp = pad(self.comp, 0.0)
                self.minimum = pad(self.minimum, math.nan)
                self.maximum = pad(self.maximum, math.nan)
        self.cap = cap

    def add(self, out: Mapping[str, Any]) -> None:
        """Fold one job's answer for this leaf (thread-safe)."""
        with self.lock:
            keys = out["keys"]
            names = out.get("key_names") or []
            self.maxed.update(out.get("maxed") or ())
            mapping = np.empty(len(keys), dtype=np.uint32)
            for i, k in enumerate(keys):
                key = (names[i], *k) if names else tuple(k)
                row = self.keys.get(key)
                if row is None:
                    if self.max_keys and len(self.key_list) >= self.max_keys:
                        self.partial = True
                        mapping[i] = _DROPPED
                        continue
                    row = self.keys[key] = len(self.key_list)
                    self.key_list.append(key)
                mapping[i] = row
            self.rows = len(self.key_list) * self.stride
            self._grow(self.rows)
            index = np.frombuffer(out["index"], dtype=np.uint32)
            if self.stride == 2:
                index = mapping[index >> 1] * 2 + (index & 1)
            elif len(index):
                index = mapping[index]
            index = np.ascontiguousarray(index, dtype=np.uint32)
            stamps = np.frombuffer(out["ts"], dtype=np.int64)
            values = np.frombuffer(out["values"], dtype=np.float64) if out["values"] else None
            r = self.req
            if not len(index):
                pass
            elif self.bucketed:
                assert values is not None
                ts_kernels.log2_buckets(index, stamps, values, r.start, r.end, r.step, self.buckets)
            elif values is None:
                dummy = self.count
                ts_kernels.aggregate(
                    index,
                    stamps,
                    None,
                    r.start,
                    r.end,
                    r.step,
                    self.count,
                    dummy,
                    dummy,
                    dummy,
                    dummy,
                )
            else:
                ts_kernels.aggregate(
                    index,
                    stamps,
                    values,
                    r.start,
                    r.end,
                    r.step,
                    self.count,
                    self.total,
                    self.comp,
                    self.minimum,
                    self.maximum,
                )
            ex_index = np.frombuffer(out["ex_index"], dtype=np.uint32)  # a few: loop
            ex_ts = np.frombuffer(out["ex_ts"], dtype=np.int64)
            ex_value = np.frombuffer(out["ex_value"], dtype=np.float64)
            for j in range(len(ex_index)):
                i = int(ex_index[j])
                row = (i & 1) if self.stride == 2 else int(mapping[i])  # compare: the side
                if row >= self.rows:
                    continue
                self.exemplars.append(
                    (row, int(ex_ts[j]), float(ex_value[j]), out["ex_trace"][j], out["ex_span"][j])
                )

    # ----------------------------------------------------------------------------------

    def _labels(self, key: tuple[Any, ...]) -> list[tuple[str, Label]]:
        """Tempo's ``labelsFor``: nils dropped; all nil keeps the first as nil."""
        labels = [(n, v) for n, v in zip(self.by, key, strict=False) if v[0] != "nil"]
        return labels

    def series(self) -> list[Series]:
        """The leaf's series (Tempo's first stage, merged)."""
        n = len(self.key_list)
        step_s = self.req.step / NS
        out: list[Series] = []
        if self.func == "compare":
            return self._compare()
        if self.bucketed:
            return self._bucketed()
        if not self.by and n == 0 and self.func in ("rate", "count_over_time"):
            # Tempo's ungrouped aggregator always has its series: zeros without spans.
            zeros = np.zeros(self.steps)
            return [Series([("__name__", ("string", self.func))], zeros)]
        for row in range(n):
            count = self.count[row]
            if self.func == "rate":
                values = count / step_s
            elif self.func == "count_over_time":
                values = count.copy()
            elif self.func == "min_over_time":
                values = self.minimum[row].copy()
            elif self.func == "max_over_time":
                values = self.maximum[row].copy()
            else:
                with np.errstate(invalid="ignore", divide="ignore"):
                    s = self.total[row] + self.comp[row]
                    values = np.where(
                        count > 0, s if self.func == "sum_over_time" else s / count, np.nan
                    )
            labels = self._labels(self.key_list[row]) if self.by else []
            if not self.by:
                labels = [("__name__", ("string", self.func))]
            elif not labels:
                labels = [(self.by[0], ("nil", None))]
            out.append(Series(labels, values))
        self._attach(out, lambda row, value: row)
        return out

    def _attach(self, out: list[Series], pick: Callable[[int, float], int | None]) -> None:
        """Exemplars onto their series, at most ``exemplars`` spread over the steps."""
        limit = self.req.exemplars
        if not limit or not self.exemplars:
            return
        per_step: dict[int, list[tuple[int, int, float, str, str]]] = {}
        for e in sorted(self.exemplars, key=lambda e: e[1]):
            per_step.setdefault(self._interval(e[1]), []).append(e)
        chosen = []
        while len(chosen) < limit and any(per_step.values()):
            for k in sorted(per_step):
                if per_step[k] and len(chosen) < limit:
                    chosen.append(per_step[k].pop(0))
        for row, ts, value, trace, span in chosen:
            target = pick(row, value)
            if target is None or target >= len(out):
                continue
            out[target].exemplars.append((ts, value, trace, span))

    def _interval(self, ts: int) -> int:
        r = self.req
        if r.end - r.start == r.step:
            return 0
        return max(0, (ts - r.start - 1) // r.step)

    def _bucketed(self) -> list[Series]:
        out: list[Series] = []
        n = len(self.key_list)
        buckets = self.buckets[:n]
        if self.func == "histogram_over_time":
            index: dict[tuple[int, int], int] = {}
            for row in range(n):
                present = np.nonzero(buckets[row].sum(axis=0))[0]
                base = self._labels(self.key_list[row])
                for e in present:
                    label = ("__bucket", ("float", math.ldexp(1.0, int(e)) / self.scale))
                    index[(row, int(e))] = len(out)
                    out.append(Series(base + [label], buckets[row, :, e].astype(np.float64)))

            def pick(row: int, value: float) -> int | None:
                if math.isnan(value) or value < 2:
                    return None
                e = int(math.log2(ts_kernels.log2_bucketize(int(value))))
                return index.get((row, e))

            self._attach(out, pick)
            return out
        qs = np.asarray(self.quantiles, dtype=np.float64)
        values = np.zeros((n, self.steps, len(qs)))
        if n:
            ts_kernels.log2_quantiles(np.ascontiguousarray(buckets), self.scale, qs, values)
        for row in range(n):
            base = self._labels(self.key_list[row])
            for j, q in enumerate(self.quantiles):
                out.append(Series(base + [("p", ("float", q))], values[row, :, j]))
        # Exemplars go to the smallest quantile whose overall value is at least theirs.
        total = buckets.sum(axis=(0, 1), dtype=np.uint64).reshape(1, 1, EXPONENTS)
        overall = np.zeros((1, 1, len(qs)))
        if len(qs):
            ts_kernels.log2_quantiles(np.ascontiguousarray(total), self.scale, qs, overall)
        thresholds = overall[0, 0]

        def pick_q(row: int, value: float) -> int | None:
            j = next((i for i, t in enumerate(thresholds) if value <= t), len(qs) - 1)
            return row * len(qs) + j

        self._attach(out, pick_q)
        return out

    def _compare(self) -> list[Series]:
        """Tempo's ``BaselineAggregator.Results`` over the merged job answers (each job's
        top N values per attribute and side, and its totals): the top N values of each
        attribute per side, its totals, and an error series for an attribute with more than
        N values in a job or overall."""
        out: list[Series] = []
        counts = self.total + self.comp  # per (key * 2 + side, step)
        by_attr: dict[str, list[int]] = {}
        for k, key in enumerate(self.key_list):
            by_attr.setdefault(key[0], []).append(k)
        maxed = set(self.maxed)
        totals: dict[tuple[int, str], Series] = {}
        for side, sel in (("baseline", 0), ("selection", 1)):
            for name, ks in by_attr.items():
                rows = [k * 2 + sel for k in ks if self.key_list[k][1][0] != "nil"]
                present = [r for r in rows if self.count[r].sum() > 0]
                if len(present) > self.top_n:
                    maxed.add(name)
                ranked = sorted(present, key=lambda r: -float(counts[r].sum()))
                for r in ranked[: self.top_n]:
                    labels = [("__meta_type", ("string", side)), (name, self.key_list[r // 2][1])]
                    out.append(Series(labels, counts[r].copy()))
                total = [k * 2 + sel for k in ks if self.key_list[k][1][0] == "nil"]
                if total and self.count[total[0]].sum() > 0:
                    labels = [("__meta_type", ("string", f"{side}_total")), (name, ("nil", None))]
                    totals[(sel, name)] = Series(labels, counts[total[0]].copy())
                    out.append(totals[(sel, name)])
        for name in sorted(maxed):
            labels = [("__meta_error", ("string", "__too_many_values__")), (name, ("nil", None))]
            out.append(Series(labels, np.full(self.steps, np.nan)))
        limit = self.req.exemplars
        for row, ts, value, trace, span in self.exemplars[: min(limit, MAX_EXEMPLARS)]:
            for (sel, _), s in totals.items():
                if sel == row & 1:
                    s.exemplars.append((ts, value, trace, span))
        return out


# --------------------------------------------------------------------------------------
# Second stage, math, rendering
# --------------------------------------------------------------------------------------


def top_bottom(series: list[Series], k: int, top: bool) -> list[Series]:
    """Tempo's ``processTopK`` / ``processBottomK``: per step, the k highest (lowest)
    series keep their value there; the rest of their steps read NaN."""
    if len(series) <= k:
        return series
    steps = len(series[0].values) if series else 0
    kept: dict[int, Series] = {}
    for i in range(steps):
        cands = [(s.values[i], j) for j, s in enumerate(series) if not math.isnan(s.values[i])]
        cands.sort(key=lambda c: (-c[0] if top else c[0], c[1]))
        for _, j in cands[:k]:
            if j not in kept:
                src = series[j]
                kept[j] = Series(src.labels, np.full(steps, np.nan), src.exemplars)
            kept[j].values[i] = series[j].values[i]
    return [kept[j] for j in sorted(kept)]


_CMP: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def second_stages(series: list[Series], stages: list[Mapping[str, Any]]) -> list[Series]:
    for st in stages:
        if "topk" in st:
            series = top_bottom(series, int(st["topk"]), True)
        elif "bottomk" in st:
            series = top_bottom(series, int(st["bottomk"]), False)
        else:
            cmp = _CMP[st["op"]]
            for s in series:
                with np.errstate(invalid="ignore"):
                    s.values = np.where(cmp(s.values, float(st["value"])), s.values, np.nan)
    return series


_MATH: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
}


def math_series(op: str, lhs: list[Series], rhs: list[Series]) -> list[Series]:
    """Arithmetic between two series sets, matching series by labels (a lone unlabelled
    ``__name__`` series on either side matches every series of the other)."""

    def strip(s: Series) -> str:
        return prom_labels([lbl for lbl in s.labels if lbl[0] != "__name__"])

    right = {strip(s): s for s in rhs}
    out = []
    for s in lhs:
        other = right.get(strip(s))
        if other is None and len(rhs) == 1 and strip(rhs[0]) == "{}":
            other = rhs[0]
        if other is None and len(lhs) == 1 and strip(s) == "{}" and len(rhs) == 1:
            other = rhs[0]
        if other is None:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            values = _MATH[op](s.values, other.values)
        values = np.where(np.isfinite(values), values, np.nan)
        labels = other.labels if strip(s) == "{}" and strip(other) != "{}" else s.labels
        out.append(Series(labels, values))
    return out


def _value(obj: dict[str, Any], v: float) -> dict[str, Any]:
    """``obj`` with ``value`` set, left out when 0 (gogo jsonpb omits zero scalars)."""
    if v != 0:
        obj["value"] = float(v)
    return obj


def render_series(s: Series, req: MetricsRequest) -> dict[str, Any] | None:
    """A ``TimeSeries`` JSON object (gogo jsonpb), None without samples."""
    start = req.start if req.instant else ts_kernels.align(req.start, req.end, req.step)[0]
    samples = [
        _value({"timestampMs": str((start + (i + 1) * req.step) // MS)}, v)
        for i, v in enumerate(s.values.tolist())
        if not math.isnan(v)
    ]
    labels = [{"key": k, "value": any_value(v)} for k, v in s.labels]
    if not samples and s.labels and s.labels[0][0] != "__meta_error":
        return None
    out: dict[str, Any] = {"labels": labels}
    if samples:
        out["samples"] = samples
    exemplars = []
    for ts, value, trace, _span in sorted(s.exemplars):
        i = 0 if req.instant else (ts - start - 1) // req.step
        if i < 0 or i >= len(s.values) or math.isnan(s.values[i]):
            continue
        if math.isnan(value):
            value = float(s.values[i])  # Tempo's attachExemplars
        exemplars.append(
            _value(
                {
                    # Tempo fetches only the trace id for exemplars (ExemplarMetaConditions),
                    # hex without leading zeros (util.TraceIDToHexString).
                    "labels": [{"key": "trace:id", "value": {"stringValue": trace.lstrip("0")}}],
                    "timestampMs": str(ts // MS),
                },
                value,
            )
        )
    if exemplars:
        out["exemplars"] = exemplars
    out["promLabels"] = prom_labels(s.labels)
    return out


# --------------------------------------------------------------------------------------
# The frontend
# --------------------------------------------------------------------------------------


@dataclass
class MetricsJob:
    tenant: str
    blocks: list[BlockRef] | None = None


class MetricsFrontend:
    """Plans, runs and merges TraceQL metrics queries over one process's querier."""

    def __init__(
        self,
        querier: Callable[[], Querier | None],
        pool: Any,
        compile_query: Callable[..., Any],
        limits: MetricsLimits | None = None,
        cache: JobCache | None = None,
        read_overrides: ReadOverrides = read_limits.none,
    ) -> None:
        self._querier = querier
        self.pool = pool
        self._compile = compile_query
        self.limits = limits or MetricsLimits()
        self.cache = cache if cache is not None else JobCache()
        self.read_overrides = read_overrides

    def limits_for(self, tenants: list[str]) -> MetricsLimits:
        """The limits of a query over ``tenants``: their ``max_metrics_duration`` overrides."""
        base = self.limits.max_duration_ns / 1e9
        d = read_limits.max_range(base, tenants, self.read_overrides, "max_metrics_duration")
        if d == base:
            return self.limits
        return dataclasses.replace(self.limits, max_duration_ns=int(d * 1e9))

    def compile(self, req: MetricsRequest) -> Any:
        try:
            return self._compile(req.q, start_ns=req.start, end_ns=req.end, step_ns=req.step)
        except ValueError as e:
            raise SearchError(400, str(e)) from None

    def plan(self, querier: Querier, tenants: list[str], req: MetricsRequest) -> list[MetricsJob]:
        jobs = [MetricsJob(t) for t in tenants]
        target = self.limits.target_bytes_per_job
        for tenant in tenants:
            # A block's end is kept to the second: its last second counts (Tempo adds 1s).
            for group in block_groups(querier, tenant, req.start - NS, req.end, target):
                jobs.append(MetricsJob(tenant, group))
        return jobs

    def _run(
        self,
        querier: Querier,
        job: MetricsJob,
        query: Any,
        req: MetricsRequest,
        leaves: list[LeafAccumulator],
        figures: Merged,
        lock: threading.Lock,
    ) -> None:
        if job.blocks is None:
            outs = querier.metrics_recent(job.tenant, query, req.exemplars)
        else:
            # Blocks are immutable: a job's answer depends only on them and the request.
            key = ("metrics", job.tenant, tuple(b.block_id for b in job.blocks))
            key += (query.canonical, req.start, req.end, req.step, req.exemplars)
            outs = self.cache.get(key)
            if outs is None:
                outs = querier.metrics_blocks(job.tenant, query, job.blocks, req.exemplars)
                size = sum(
                    len(o[c]) for o in outs for c in ("index", "ts", "values", "ex_ts")
                ) + sum(64 * len(o["keys"]) for o in outs)
                self.cache.put(key, outs, size)
        for leaf, out in zip(leaves, outs, strict=True):
            leaf.add(out)
        with lock:
            for out in outs:  # each leaf of a math query scans the job again
                figures.inspected_bytes += int(out.get("inspected_bytes", 0))
                figures.inspected_spans += int(out.get("inspected_spans", 0))
                figures.inspected_traces += int(out.get("inspected_traces", 0))
            figures.completed_jobs += 1

    async def query(self, tenants: list[str], raw: MetricsRequest) -> dict[str, Any]:
        """The whole ``QueryRangeResponse`` (or ``QueryInstantResponse``) as a JSON dict."""
        querier = self._querier()
        if querier is None:
            raise SearchError(503, "not ready: the querier is starting")
        if raw.step <= 0 and not raw.instant:
            raise SearchError(400, "step must be greater than 0")
        req = align(raw)
        query = self.compile(req)
        if req.end <= req.start:
            raise SearchError(400, "end must be greater than start")
        steps = ts_kernels.interval_count(req.start, req.end, req.step)
        tree = orjson.loads(query.tree)
        lim = self.limits
        leaves = [
            LeafAccumulator(
                spec,
                req,
                steps,
                lim.max_compare_values if spec["func"] == "compare" else lim.max_series,
            )
            for spec in query.leaves
        ]
        figures = Merged()
        loop = asyncio.get_running_loop()
        jobs = await loop.run_in_executor(self.pool, self.plan, querier, tenants, req)
        figures.total_jobs = len(jobs)
        figures.total_blocks = sum(len(j.blocks or ()) for j in jobs)
        figures.total_block_bytes = sum(sum(b.size for b in j.blocks or ()) for j in jobs)
        lock = threading.Lock()
        started = time.perf_counter()
        await asyncio.gather(
            *(
                loop.run_in_executor(
                    self.pool, self._run, querier, j, query, req, leaves, figures, lock
                )
                for j in jobs
            )
        )
        series = await loop.run_in_executor(self.pool, self._evaluate, tree, leaves)
        rendered = [r for s in series if (r := render_series(s, req)) is not None]
        rendered.sort(key=lambda r: r["promLabels"])
        _log.debug(
            "metrics query",
            jobs=len(jobs),
            series=len(rendered),
            took=round(time.perf_counter() - started, 4),
        )
        out: dict[str, Any] = {}
        if raw.instant:
            instant = [
                _value(
                    {"labels": r["labels"], "promLabels": r["promLabels"]},
                    r["samples"][0].get("value", 0.0),
                )
                for r in rendered
                if r.get("samples")
            ]
            if instant:
                out["series"] = instant
        elif rendered:
            out["series"] = rendered
        if any(leaf.partial for leaf in leaves):
            out["status"] = "PARTIAL"
            out["message"] = (
                f"Response exceeds maximum series limit of {lim.max_series}, a partial response"
                " is returned. Warning: the accuracy of each individual value is not guaranteed."
            )
        out["metrics"] = figures.metrics()
        return out

    def _evaluate(self, node: Mapping[str, Any], leaves: list[LeafAccumulator]) -> list[Series]:
        if "leaf" in node:
            series = leaves[node["leaf"]].series()
        else:
            series = math_series(
                node["op"], self._evaluate(node["lhs"], leaves), self._evaluate(node["rhs"], leaves)
            )
        return second_stages(series, node.get("second") or [])
