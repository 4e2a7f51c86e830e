"""The search frontend without a server: parameters and limits, job planning, merging,
early stop and the block-job cache, over a fake querier."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson
import pytest

from tempo_fast.frontend.search import (
    SearchError,
    SearchFrontend,
    SearchLimits,
    SearchParams,
    _legacy_query,
    parse_params,
)
from tempo_fast.frontend.tags import lenient_query
from tempo_fast.querier.querier import BlockRef

LIMITS = SearchLimits(target_bytes_per_job=100, workers=2)


def trace(tid: str, start: int, matched: int = 1, svc: str = "a") -> dict[str, Any]:
    return {
        "traceID": tid,
        "rootServiceName": svc,
        "startTimeUnixNano": str(start),
        "durationMs": 1,
        "spanSets": [{"spans": [], "matched": matched}],
        "serviceStats": {svc: {"spanCount": matched}},
    }


class FakeQuerier:
    """Blocks of 40 bytes each, one trace per block; the ingester holds trace "r"."""

    def __init__(self, blocks: int) -> None:
        self.blocks = [BlockRef(0, f"b{i:02d}", 40, i * 10, i * 10 + 5) for i in range(blocks)]
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    def list_blocks(self, tenant: str) -> list[BlockRef]:
        return list(self.blocks)

    def search_recent(self, tenant: str, query: Any) -> tuple[bytes, dict[str, int]]:
        return orjson.dumps([trace("r", 10**12, 2)]), {"inspected_spans": 3}

    def search_blocks(
        self, tenant: str, query: Any, blocks: list[BlockRef]
    ) -> tuple[bytes, dict[str, int]]:
        with self.lock:
            self.calls.append([b.block_id for b in blocks])
        traces = [trace(b.block_id, b.start_ns) for b in blocks] + [trace("r", 5, 1, "b")]
        return orjson.dumps(traces), {"inspected_spans": 10 * len(blocks), "inspected_bytes": 7}


class FakeQuery:
    def __init__(self, q: str, **kw: Any) -> None:
        if "bad" in q:
            raise ValueError("invalid TraceQL query: parse error at line 1, col 3: nope")
        self.canonical = q.strip()


def frontend(q: FakeQuerier) -> SearchFrontend:
    return SearchFrontend(lambda: q, LIMITS, FakeQuery)  # type: ignore[arg-type, return-value]


def test_parameters_defaults_and_limits() -> None:
    p = parse_params({"q": "{}"}, LIMITS)
    assert (p.limit, p.spss, p.start, p.end) == (20, 3, None, None)
    with pytest.raises(SearchError, match="spans per span set exceeds 100. received 101"):
        parse_params({"q": "{}", "spss": "101"}, LIMITS)
    with pytest.raises(SearchError, match="exceeds 168h0m0s"):
        parse_params({"q": "{}", "start": "0", "end": str(169 * 3600)}, LIMITS)
    with pytest.raises(SearchError, match="query is too large"):
        parse_params({"q": "{" + " " * (200 << 10) + "}"}, LIMITS)
    capped = SearchLimits(max_limit=50)
    assert parse_params({"q": "{}", "limit": "1000"}, capped).limit == 50


def test_legacy_tags_become_traceql() -> None:
    q = _legacy_query({"tags": 'service.name=cart name="GET /x"', "minDuration": "100ms"})
    assert q == (
        '{ .service.name =~ "(?i).*cart.*" && name =~ "(?i).*GET\\\\ /x.*" && duration >= 100ms }'
    )
    assert _legacy_query({}) == "{}"
    with pytest.raises(SearchError, match="greater than minDuration"):
        _legacy_query({"minDuration": "1s", "maxDuration": "10ms"})
    with pytest.raises(SearchError, match="can't specify tags and q"):
        parse_params({"q": "{}", "tags": "a=b"}, LIMITS)


def test_jobs_are_grouped_newest_first_and_merged() -> None:
    q = FakeQuerier(5)
    fe = frontend(q)
    params = SearchParams("{}", limit=0, spss=3, start=0, end=10)
    jobs = fe.plan(q, ["t"], params)  # type: ignore[arg-type]
    assert jobs[0].blocks is None
    assert [[b.block_id for b in j.blocks or []] for j in jobs[1:]] == [
        ["b04", "b03"],
        ["b02", "b01"],
        ["b00"],
    ]
    out = asyncio.run(fe.search(["t"], params))
    ids = [t["traceID"] for t in out["traces"]]
    assert ids == ["b04", "b03", "b02", "b01", "r", "b00"], "newest first"
    r = next(t for t in out["traces"] if t["traceID"] == "r")
    # trace "r" was found in the ingester and in every block job: parts combined
    assert len(r["spanSets"]) == 1 + 3
    assert r["startTimeUnixNano"] == "5"
    assert r["serviceStats"] == {"a": {"spanCount": 2}, "b": {"spanCount": 3}}
    m = out["metrics"]
    assert (m["completedJobs"], m["totalJobs"], m["totalBlocks"]) == (4, 4, 5)
    assert m["inspectedSpans"] == str(3 + 50)


def test_limit_stops_early_and_block_jobs_are_cached() -> None:
    q = FakeQuerier(40)
    fe = frontend(q)
    params = SearchParams("{}", limit=3, spss=3, start=0, end=10)
    out = asyncio.run(fe.search(["t"], params))
    assert len(out["traces"]) == 3
    assert out["metrics"]["completedJobs"] < out["metrics"]["totalJobs"]
    asyncio.run(fe.search(["t"], params))
    searched = [tuple(c) for c in q.calls]
    assert len(searched) == len(set(searched)), "a job over the same blocks comes from the cache"
    assert fe.cache.hits >= 1


def test_bad_query_is_a_400() -> None:
    fe = frontend(FakeQuerier(1))
    with pytest.raises(SearchError) as e:
        asyncio.run(fe.search(["t"], SearchParams("{ bad", limit=20, spss=3)))
    assert e.value.status == 400 and "parse error" in e.value.reason


def test_lenient_query_keeps_complete_matchers() -> None:
    q, matchers = lenient_query('{resource.service.name="a" && span.x= }')
    assert q == '{ resource.service.name = "a" }'
    assert matchers == [("resource.service.name", "=", '"a"')]
    assert lenient_query("{") == (None, [])
    q, _ = lenient_query("{ duration > 10ms && status = error && .foo =~ `b.*` }")
    assert q == "{ duration > 10ms && status = error && .foo =~ `b.*` }"


def test_job_cache_is_bounded_in_bytes() -> None:
    from tempo_fast.frontend.search import JobCache

    cache = JobCache(entries=100, max_bytes=800)
    cache.put(("big",), (b"x" * 101, {}))
    assert cache.get(("big",)) is None, "over an eighth of the bytes: not kept"
    for i in range(20):
        cache.put((i,), (b"x" * 100, {}))
    assert cache.get((0,)) is None and cache.get((19,)) is not None
    assert sum(cache.get((i,)) is not None for i in range(20)) == 8
