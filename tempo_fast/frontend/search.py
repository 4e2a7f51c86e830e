"""The search half of the query-frontend: ``/api/search`` parameters and limits, job
planning (recent data from the ingester, complete blocks grouped by size, newest first),
concurrent execution in the querier's worker pool, early stop at ``limit``, a result cache
for jobs over immutable blocks, and merging into Tempo's ``SearchResponse``.

Jobs run in Rust with the GIL released; Python only plans, merges the matched traces (at
most ``limit`` per job) and renders JSON.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from tempo_fast.config.model import QueryFrontendConfig
from tempo_fast.config.units import parse_duration
from tempo_fast.frontend import read_limits
from tempo_fast.frontend.read_limits import ReadOverrides
from tempo_fast.pkg.log import get_logger
from tempo_fast.querier.querier import BlockRef, Querier

_log = get_logger("frontend")

NS = 1_000_000_000
CACHE_ENTRIES = 4096
CACHE_BYTES = 64 << 20


class SearchError(Exception):
    """A request the frontend refuses: ``status`` (HTTP) and ``reason`` (the body)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class SearchParams:
    """One search: TraceQL, result limit, spans per spanset and unix-second range."""

    q: str
    limit: int
    spss: int
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class SearchLimits:
    """The frontend's search settings (Tempo's ``query_frontend.search.*``)."""

    default_limit: int = 20
    max_limit: int = 0
    default_spss: int = 3
    max_spss: int = 100
    max_duration: float = 168 * 3600.0
    max_query_bytes: int = 128 << 10
    target_bytes_per_job: int = 100 << 20
    concurrent_jobs: int = 1000
    workers: int = 20

    @classmethod
    def from_config(cls, c: QueryFrontendConfig) -> SearchLimits:
        return cls(
            default_limit=c.search_default_result_limit,
            max_limit=c.search_max_result_limit,
            default_spss=c.search_default_spans_per_span_set,
            max_spss=c.search_max_spans_per_span_set,
            max_duration=c.search_max_duration,
            max_query_bytes=c.max_query_expression_size_bytes,
            target_bytes_per_job=c.search_target_bytes_per_job,
            concurrent_jobs=c.search_concurrent_jobs,
            workers=max(1, c.max_concurrent_queries),
        )


def _int_param(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise SearchError(400, f"invalid {name} {raw!r}: expected an integer") from None
    if value < 0:
        raise SearchError(400, f"invalid {name} {raw!r}: must not be negative")
    return value


_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_LOGFMT = re.compile(r'\s*([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


def _legacy_query(query: Mapping[str, str]) -> str:
    """The TraceQL equivalent of the legacy ``tags`` / ``minDuration`` / ``maxDuration``
    search: each tag a case-insensitive substring match, ``name`` the span name."""
    conds = []
    tags = query.get("tags", "")
    pos = 0
    while pos < len(tags):
        m = _LOGFMT.match(tags, pos)
        if not m:
            if tags[pos:].strip():
                raise SearchError(400, f"invalid tags {tags!r}: expected logfmt key=value pairs")
            break
        key, value = m.group(1), m.group(2)
        if value.startswith('"'):
            value = orjson.loads(value)
        pattern = "(?i).*" + re.escape(value) + ".*"
        lhs = "name" if key == "name" else "." + orjson.dumps(key).decode()
        if key == "name" or re.fullmatch(r"[A-Za-z0-9_.:/-]+", key):
            lhs = "name" if key == "name" else "." + key
        conds.append(f"{lhs} =~ {orjson.dumps(pattern).decode()}")
        pos = m.end()
    bounds = {}
    for name, op in (("minDuration", ">="), ("maxDuration", "<=")):
        raw = query.get(name)
        if raw:
            if not _GO_DURATION.match(raw):
                raise SearchError(400, f"invalid {name} {raw!r}: expected a duration such as 100ms")
            bounds[name] = parse_duration(raw)
            conds.append(f"duration {op} {raw}")
    if bounds.get("maxDuration", float("inf")) < bounds.get("minDuration", 0.0):
        raise SearchError(400, "invalid maxDuration: must be greater than minDuration")
    return "{ " + " && ".join(conds) + " }" if conds else "{}"


def parse_params(query: Mapping[str, str], limits: SearchLimits) -> SearchParams:
    """``/api/search``'s parameters, checked against the limits (a :class:`SearchError`
    with status 400 says what is wrong)."""
    q = query.get("q")
    if q and q.strip() and query.get("tags"):
        raise SearchError(400, "invalid request: can't specify tags and q in the same query")
    if q is None or q.strip() == "":
        q = _legacy_query(query)
    if len(q.encode()) > limits.max_query_bytes > 0:
        raise SearchError(
            400,
            f"query is too large: {len(q.encode())} bytes, the limit is {limits.max_query_bytes}"
            " (query_frontend.max_query_expression_size_bytes)",
        )
    limit = _int_param(query, "limit") or limits.default_limit
    if limits.max_limit > 0:
        limit = min(limit, limits.max_limit)
    spss = _int_param(query, "spss") or limits.default_spss
    if limits.max_spss > 0 and spss > limits.max_spss:
        raise SearchError(400, f"spans per span set exceeds {limits.max_spss}. received {spss}")
    start, end = _int_param(query, "start"), _int_param(query, "end")
    if start is not None and end is not None:
        if start > end:
            raise SearchError(400, f"invalid start {start} after end {end}")
        if limits.max_duration > 0 and end - start > limits.max_duration:
            raise SearchError(
                400,
                f"range specified by start and end exceeds {_hours(limits.max_duration)}."
                f" received start={start} end={end}",
            )
    return SearchParams(q=q, limit=limit, spss=spss, start=start, end=end)


def _hours(seconds: float) -> str:
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m}m{s}s"


@dataclass
class Job:
    """One unit of work: the tenant's recent data, or a group of its blocks."""

    tenant: str
    blocks: list[BlockRef] | None = None  # None: the ingester

    @property
    def bytes(self) -> int:
        return sum(b.size for b in self.blocks or ())


@dataclass
class Merged:
    """Traces found so far, by trace id, and the running metrics."""

    traces: dict[str, dict[str, Any]] = field(default_factory=dict)
    inspected_traces: int = 0
    inspected_bytes: int = 0
    inspected_spans: int = 0
    completed_jobs: int = 0
    total_jobs: int = 0
    total_blocks: int = 0
    total_block_bytes: int = 0

    def add(self, body: bytes, stats: Mapping[str, int]) -> list[dict[str, Any]]:
        """Merge one job's answer; returns the traces it added or changed."""
        self.inspected_traces += int(stats.get("inspected_traces", 0))
        self.inspected_bytes += int(stats.get("inspected_bytes", 0))
        self.inspected_spans += int(stats.get("inspected_spans", 0))
        self.completed_jobs += 1
        changed = []
        for t in orjson.loads(body):
            old = self.traces.get(t["traceID"])
            if old is None:
                self.traces[t["traceID"]] = t
            else:
                _combine(old, t)
                t = old
            changed.append(t)
        return changed

    def metrics(self) -> dict[str, Any]:
        return {
            "inspectedTraces": self.inspected_traces,
            "inspectedBytes": str(self.inspected_bytes),
            "inspectedSpans": str(self.inspected_spans),
            "totalBlocks": self.total_blocks,
            "completedJobs": self.completed_jobs,
            "totalJobs": self.total_jobs,
            "totalBlockBytes": str(self.total_block_bytes),
        }

    def response(self, limit: int) -> dict[str, Any]:
        return {"traces": newest(self.traces.values(), limit), "metrics": self.metrics()}


def newest(traces: Any, limit: int) -> list[dict[str, Any]]:
    """Traces newest first (by start time), at most ``limit`` (0: all)."""
    out = sorted(traces, key=lambda t: int(t.get("startTimeUnixNano", "0")), reverse=True)
    return out[:limit] if limit > 0 else out


def _combine(into: dict[str, Any], t: Mapping[str, Any]) -> None:
    """Fold another part of a trace into ``into`` (Tempo's metadata combiner)."""
    start_a, start_b = int(into.get("startTimeUnixNano", "0")), int(t.get("startTimeUnixNano", "0"))
    end_a = start_a + int(into.get("durationMs", 0)) * 1_000_000
    end_b = start_b + int(t.get("durationMs", 0)) * 1_000_000
    start = min(start_a, start_b)
    into["startTimeUnixNano"] = str(start)
    duration_ms = (max(end_a, end_b) - start) // 1_000_000
    if duration_ms:
        into["durationMs"] = duration_ms
    if into.get("rootServiceName", "").startswith("<") and not t.get(
        "rootServiceName", ""
    ).startswith("<"):
        into["rootServiceName"] = t["rootServiceName"]
    if "rootTraceName" not in into and "rootTraceName" in t:
        into["rootTraceName"] = t["rootTraceName"]
    into["spanSets"] = into.get("spanSets", []) + list(t.get("spanSets", []))
    if into["spanSets"]:
        into["spanSet"] = into["spanSets"][0]
    stats = into.setdefault("serviceStats", {})
    for svc, s in t.get("serviceStats", {}).items():
        cur = stats.setdefault(svc, {})
        for k in ("spanCount", "errorCount"):
            if s.get(k):
                cur[k] = cur.get(k, 0) + s[k]


def block_groups(
    querier: Querier, tenant: str, lo: int, hi: int, target_bytes: int
) -> list[list[BlockRef]]:
    """``tenant``'s blocks overlapping ``[lo, hi]`` (unix ns), newest first, in groups from
    one block list of up to ``target_bytes`` (a larger block alone)."""
    blocks = [b for b in querier.list_blocks(tenant) if b.start_ns <= hi and b.end_ns >= lo]
    blocks.sort(key=lambda b: (b.end_ns, b.block_id), reverse=True)
    groups: list[list[BlockRef]] = []
    group: list[BlockRef] = []
    for b in blocks:
        if group and (
            b.store != group[0].store or sum(x.size for x in group) + b.size > target_bytes
        ):
            groups.append(group)
            group = []
        group.append(b)
    if group:
        groups.append(group)
    return groups


class JobCache:
    """Answers of jobs over complete blocks (immutable), least recently used evicted, bounded
    in entries and bytes; an answer larger than an eighth of the bytes is not kept."""

    def __init__(self, entries: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES) -> None:
        self._entries = entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._data: OrderedDict[tuple[Any, ...], tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> Any:
        """The answer kept for ``key``, or None."""
        with self._lock:
            v = self._data.get(key)
            if v is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return v[0]

    def put(self, key: tuple[Any, ...], value: Any, size: int | None = None) -> None:
        """Keep ``value`` (a search answer ``(body, figures)``, sized by its body, or any
        answer of ``size`` bytes)."""
        if size is None:
            size = len(value[0])
        if size > self._max_bytes // 8:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._data[key] = (value, size)
            self._bytes += size
            while len(self._data) > self._entries or self._bytes > self._max_bytes:
                _, evicted = self._data.popitem(last=False)
                self._bytes -= evicted[1]


class SearchFrontend:
    """Plans, runs and merges searches over one process's querier."""

    def __init__(
        self,
        querier: Callable[[], Querier | None],
        limits: SearchLimits,
        compile_query: Callable[..., Any],
        read_overrides: ReadOverrides = read_limits.none,
    ) -> None:
        self._querier = querier
        self.limits = limits
        self._compile = compile_query
        self.read_overrides = read_overrides
        self.pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="search")
        self.cache = JobCache()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def limits_for(self, tenants: list[str]) -> SearchLimits:
        """The limits of a search over ``tenants``: their ``max_search_duration`` overrides."""
        base = self.limits.max_duration
        d = read_limits.max_range(base, tenants, self.read_overrides, "max_search_duration")
        return self.limits if d == base else dataclasses.replace(self.limits, max_duration=d)

    def compile(self, params: SearchParams) -> Any:
        """The compiled query; a bad query is a 400 with Tempo's message."""
        start_ns = (params.start or 0) * NS
        end_ns = (params.end or 0) * NS + (NS - 1 if params.end else 0)
        try:
            return self._compile(
                params.q, limit=params.limit, spss=params.spss, start_ns=start_ns, end_ns=end_ns
            )
        except ValueError as e:
            raise SearchError(400, str(e)) from None

    def plan(self, querier: Querier, tenants: list[str], params: SearchParams) -> list[Job]:
        """The jobs of a search: each tenant's recent data first, then its blocks overlapping
        the range (only with ``start``/``end``, as Tempo), newest first, grouped up to
        ``target_bytes_per_job``."""
        jobs = [Job(t) for t in tenants]
        if params.start is None or params.end is None:
            return jobs
        lo, hi = params.start * NS, (params.end + 1) * NS
        for tenant in tenants:
            for group in block_groups(querier, tenant, lo, hi, self.limits.target_bytes_per_job):
                jobs.append(Job(tenant, group))
        return jobs

    def _run(
        self, querier: Querier, job: Job, query: Any, qkey: tuple[Any, ...]
    ) -> tuple[bytes, dict[str, int]]:
        if job.blocks is None:
            return querier.search_recent(job.tenant, query)
        key = (job.tenant, tuple(b.block_id for b in job.blocks), *qkey)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        out = querier.search_blocks(job.tenant, query, job.blocks)
        self.cache.put(key, out)
        return out

    async def search(self, tenants: list[str], params: SearchParams) -> dict[str, Any]:
        """The whole ``SearchResponse`` (as a JSON-ready dict)."""
        merged = Merged()
        async for _ in self._stream(tenants, params, merged):
            pass
        return merged.response(params.limit)

    async def search_stream(
        self, tenants: list[str], params: SearchParams
    ) -> AsyncIterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
        """Partial results as jobs finish: ``(traces new or changed, running metrics)``."""
        merged = Merged()
        async for changed in self._stream(tenants, params, merged):
            yield changed, merged.metrics()

    async def _stream(
        self, tenants: list[str], params: SearchParams, merged: Merged
    ) -> AsyncIterator[list[dict[str, Any]]]:
        querier = self._querier()
        if querier is None:
            raise SearchError(503, "not ready: the querier is starting")
        query = self.compile(params)
        qkey = (getattr(query, "canonical", params.q), params.limit, params.spss)
        qkey += (params.start, params.end)
        loop = asyncio.get_running_loop()
        jobs = await loop.run_in_executor(self.pool, self.plan, querier, tenants, params)
        merged.total_jobs = len(jobs)
        merged.total_blocks = sum(len(j.blocks or ()) for j in jobs)
        merged.total_block_bytes = sum(j.bytes for j in jobs)
        started = time.perf_counter()
        pending: set[asyncio.Future[tuple[bytes, dict[str, int]]]] = set()
        queue = list(jobs)
        in_flight = max(1, min(self.limits.concurrent_jobs, self.limits.workers))
        try:
            while queue or pending:
                while queue and len(pending) < in_flight:
                    job = queue.pop(0)
                    fut = loop.run_in_executor(self.pool, self._run, querier, job, query, qkey)
                    pending.add(fut)
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for fut in done:
                    body, stats = fut.result()
                    yield merged.add(body, stats)
                if params.limit > 0 and len(merged.traces) >= params.limit:
                    break  # enough traces: the rest is cancelled
        finally:
            for fut in pending:
                fut.cancel()
        _log.debug(
            "search",
            jobs=len(jobs),
            completed=merged.completed_jobs,
            traces=len(merged.traces),
            took=round(time.perf_counter() - started, 4),
        )
