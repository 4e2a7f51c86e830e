"""``GET /api/metrics/summary``: RED figures of server spans grouped by attributes (Tempo's
deprecated metrics-summary API), for users without Prometheus.

``q`` selects spans (any TraceQL filter), ``groupBy`` names one or more comma-separated
attributes or intrinsics; ``start``/``end`` (unix seconds, optional) widen the default of the
last hour of recent data to the blocks in that range too. The span scan is the TraceQL metrics
scan (Rust): ``{q} | min_over_time(duration) by (<groupBy>, kind, status)``; the latencies of
each group go into a relative-error sketch (Cython, DDSketch-style, ≤1% error) for its
P50/P90/P95/P99. Answer: Tempo's ``SpanMetricsSummaryResponse`` JSON (``spanCount``,
``errorSpanCount``, ``series`` of ``{key, value: TraceQLStatic}``, ``p50``…``p99`` in
nanoseconds as strings) plus ``rate``, spans per second over the range.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from tempo_fast_kernels.sketch import SketchSet

from tempo_fast.frontend.metrics import (
    MetricsFrontend,
    MetricsJob,
    MetricsRequest,
    parse_timestamp,
)
from tempo_fast.frontend.search import SearchError, block_groups

HOUR_NS = 3600 * 10**9
QUANTILES = (("p99", 0.99), ("p95", 0.95), ("p90", 0.90), ("p50", 0.50))
# TraceQLStatic type numbers (Tempo's enum_statics.go)
_TYPES = {"nil": 0, "int": 3, "float": 4, "string": 5, "bool": 6}


def static(label: tuple[str, Any]) -> dict[str, Any]:
    """A label value as Tempo's ``TraceQLStatic`` JSON (zero fields left out)."""
    typ, value = label
    out: dict[str, Any] = {}
    if _TYPES.get(typ):
        out["type"] = _TYPES[typ]
    if typ == "int" and value:
        out["n"] = str(value)
    elif typ == "float" and value:
        out["f"] = value
    elif typ == "string" and value:
        out["s"] = value
    elif typ == "bool" and value:
        out["b"] = True
    return out


class SummaryFrontend:
    """Runs the summary's scan as TraceQL metrics jobs and folds them into sketches."""

    def __init__(self, metrics: MetricsFrontend) -> None:
        self._metrics = metrics

    def request(
        self, params: Mapping[str, str], now_ns: int, tenants: list[str] | None = None
    ) -> tuple[MetricsRequest, list[str], bool]:
        """The metrics request for ``params``, the group-by names and whether blocks are read
        too (400s raised)."""
        q = (params.get("q") or "").strip() or "{}"
        group_by = [g.strip() for g in (params.get("groupBy") or "").split(",") if g.strip()]
        if not group_by:
            raise SearchError(400, "groupBy is required, e.g. groupBy=resource.service.name")
        ranged = bool(params.get("start") or params.get("end"))
        try:
            end = parse_timestamp(params.get("end", ""), now_ns)
            start = parse_timestamp(params.get("start", ""), end - HOUR_NS)
        except ValueError as e:
            raise SearchError(400, f"invalid start or end: {e}") from None
        if end <= start:
            raise SearchError(400, "end must be greater than start")
        limit = self._metrics.limits_for(tenants or []).max_duration_ns
        if limit and end - start > limit:
            raise SearchError(400, "summary time range exceeds the maximum allowed duration")
        by = ", ".join([*group_by, "kind", "status"])
        mq = f"{q} | min_over_time(duration) by ({by})"
        return MetricsRequest(mq, start, end, end - start, 0, instant=True), group_by, ranged

    async def summary(self, tenants: list[str], params: Mapping[str, str]) -> dict[str, Any]:
        req, names, ranged = self.request(params, time.time_ns(), tenants)
        frontend = self._metrics
        querier = frontend._querier()
        if querier is None:
            raise SearchError(503, "not ready: the querier is starting")
        query = frontend.compile(req)
        jobs = [MetricsJob(t) for t in tenants]
        if ranged:
            target = frontend.limits.target_bytes_per_job
            for tenant in tenants:
                for group in block_groups(querier, tenant, req.start, req.end, target):
                    jobs.append(MetricsJob(tenant, group))
        loop = asyncio.get_running_loop()

        def run(job: MetricsJob) -> dict[str, Any]:
            if job.blocks is None:
                return querier.metrics_recent(job.tenant, query, 0)[0]
            return querier.metrics_blocks(job.tenant, query, job.blocks, 0)[0]

        outs = await asyncio.gather(*(loop.run_in_executor(frontend.pool, run, j) for j in jobs))
        return await loop.run_in_executor(frontend.pool, fold, outs, names, req.end - req.start)


def fold(outs: list[Mapping[str, Any]], names: list[str], range_ns: int) -> dict[str, Any]:
    """Per group: span and error counts and latency quantiles of its server spans."""
    groups: dict[tuple[Any, ...], int] = {}
    sketch = SketchSet()
    counts: list[int] = []
    errors: list[int] = []
    for out in outs:
        keys = out["keys"]
        if not keys:
            continue
        key_group = np.full(len(keys), -1, dtype=np.int64)
        is_error = np.zeros(len(keys), dtype=bool)
        for i, key in enumerate(keys):
            kind, status = key[-2][1], key[-1][1]
            if kind != "server":  # Tempo's summary counts server spans only
                continue
            g = groups.setdefault(tuple(key[:-2]), len(groups))
            if g == len(counts):
                counts.append(0)
                errors.append(0)
            key_group[i] = g
            is_error[i] = status == "error"
        index = np.frombuffer(out["index"], dtype=np.uint32)
        values = np.frombuffer(out["values"], dtype=np.float64)
        sketch.add(index, key_group, values)
        per_key = np.bincount(index, minlength=len(keys))
        for i in np.flatnonzero((key_group >= 0) & (per_key > 0)):
            g = int(key_group[i])
            counts[g] += int(per_key[i])
            if is_error[i]:
                errors[g] += int(per_key[i])
    summaries = []
    for key, g in groups.items():
        entry: dict[str, Any] = {"spanCount": str(counts[g])}
        if errors[g]:
            entry["errorSpanCount"] = str(errors[g])
        entry["series"] = [
            {"key": name, "value": static(label)} for name, label in zip(names, key, strict=True)
        ]
        for field, q in QUANTILES:
            seconds = sketch.quantile(g, q)
            if seconds == seconds:
                entry[field] = str(round(seconds * 1e9))
        entry["rate"] = counts[g] / (range_ns / 1e9)
        summaries.append(entry)
    summaries.sort(key=lambda e: -int(e["spanCount"]))
    return {"summaries": summaries}
