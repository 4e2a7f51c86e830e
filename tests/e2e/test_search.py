"""``/api/search`` end to end: the reference data set sent over OTLP, then TraceQL queries
through the real server, checked against answers computed here from the sent protobuf."""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts

from tests.conftest import FAST_CUT
from tests.e2e.traces import wait_for
from tests.server import TempoServer

sys.path.insert(0, "/work/shared/bench")
otlp_load = pytest.importorskip("otlp_load")

NOW = time.time_ns()
T0 = NOW - 10 * 60 * 10**9  # ten minutes ago: inside any range the tests ask for


@dataclass
class Span:
    trace: str
    span_id: str
    parent: str
    name: str
    kind: int
    status: int
    start: int
    end: int
    service: str
    attrs: dict[str, Any] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def spans_of(bodies: list[bytes]) -> list[Span]:
    out = []
    for body in bodies:
        req = ts.ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            res = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append(
                        Span(
                            trace=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent=s.parent_span_id.hex(),
                            name=s.name,
                            kind=s.kind,
                            status=s.status.code,
                            start=s.start_time_unix_nano,
                            end=s.end_time_unix_nano,
                            service=res["service.name"],
                            attrs={kv.key: _value(kv.value) for kv in s.attributes},
                            events=[e.name for e in s.events],
                        )
                    )
    return out


def by_trace(spans: list[Span]) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = {}
    for s in spans:
        out.setdefault(s.trace, []).append(s)
    return out


def filter_query(pred: Callable[[Span], bool], traces: dict[str, list[Span]]) -> dict[str, int]:
    """Trace id (trimmed hex) -> matched span count, for a single spanset filter."""
    out = {}
    for tid, spans in traces.items():
        n = sum(pred(s) for s in spans)
        if n:
            out[tid.lstrip("0") or "0"] = n
    return out


def frontend_error_children(traces: dict[str, list[Span]]) -> dict[str, int]:
    """``{ resource.service.name = "svc-frontend" } > { status = error }``."""
    out = {}
    for tid, spans in traces.items():
        by_id = {s.span_id: s for s in spans}
        n = sum(
            1
            for s in spans
            if s.status == 2 and s.parent in by_id and by_id[s.parent].service == "svc-frontend"
        )
        if n:
            out[tid.lstrip("0") or "0"] = n
    return out


QUERIES: list[tuple[str, Callable[[dict[str, list[Span]]], dict[str, int]]]] = [
    (
        "{ span.http.status_code = 500 }",
        lambda t: filter_query(lambda s: s.attrs["http.status_code"] == 500, t),
    ),
    (
        '{ resource.service.name = "svc-cart" && duration > 100ms }',
        lambda t: filter_query(lambda s: s.service == "svc-cart" and s.end - s.start > 10**8, t),
    ),
    (
        '{ .user.id =~ "user-1.*5" }',
        lambda t: filter_query(
            lambda s: re.fullmatch("user-1.*5", s.attrs["user.id"]) is not None, t
        ),
    ),
    (
        '{ name = "db.query redis" && kind = client }',
        lambda t: filter_query(lambda s: s.name == "db.query redis" and s.kind == 3, t),
    ),
    ('{ event:name = "exception" }', lambda t: filter_query(lambda s: "exception" in s.events, t)),
    (
        '{ resource.service.name = "svc-frontend" } > { status = error }',
        frontend_error_children,
    ),
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TempoServer, list[Span]]]:
    server = TempoServer(tmp_path_factory.mktemp("search") / "tempo", overrides=FAST_CUT).start()
    batches, _ = otlp_load.make_batches(7, 3, 400, T0)
    bodies = [b for b, _ in batches]
    for body in bodies:
        assert _post(server, body) == 200
    yield server, spans_of(bodies)
    server.stop()


def _post(server: TempoServer, body: bytes) -> int:
    req = urllib.request.Request(
        server.otlp_http + "/v1/traces",
        data=body,
        headers={"Content-Type": "application/x-protobuf"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return int(r.status)


def search(server: TempoServer, **params: Any) -> tuple[int, Any]:
    status, _, body = server.get("/api/search?" + urllib.parse.urlencode(params))
    return status, (json.loads(body) if status == 200 else body.decode())


def matched(result: dict[str, Any]) -> dict[str, int]:
    return {t["traceID"]: sum(s["matched"] for s in t["spanSets"]) for t in result["traces"]}


@pytest.mark.parametrize("q,expect", QUERIES, ids=[q for q, _ in QUERIES])
def test_recent_data_answers_like_the_reference(
    loaded: tuple[TempoServer, list[Span]], q: str, expect: Callable[..., dict[str, int]]
) -> None:
    server, spans = loaded
    want = expect(by_trace(spans))
    assert want, "the query matches something in the data set"
    status, got = search(server, q=q, limit=100_000, spss=100)
    assert status == 200, got
    assert matched(got) == want
    for t in got["traces"]:
        assert not t["traceID"].startswith("0")
        for ss in t["spanSets"]:
            assert len(ss["spans"]) == min(ss["matched"], 100)
            for sp in ss["spans"]:
                assert re.fullmatch("[0-9a-f]{16}", sp["spanID"])
                assert isinstance(sp["startTimeUnixNano"], str)
                assert isinstance(sp["durationNanos"], str)


def test_blocks_answer_with_a_time_range(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    blocks = server.data / "blocks" / "single-tenant"
    wait_for(lambda: list(blocks.glob("*/meta.json")) if blocks.is_dir() else [], timeout=30)
    start, end = T0 // 10**9 - 60, NOW // 10**9 + 60
    for q, expect in QUERIES:
        want = expect(by_trace(spans))

        def answered(q: str = q, want: dict[str, int] = want) -> bool:
            status, got = search(server, q=q, limit=100_000, spss=3, start=start, end=end)
            return status == 200 and matched(got) == want

        wait_for(answered, timeout=30)
    status, got = search(server, q="{}", limit=100_000, start=start, end=end)
    assert status == 200
    assert len(got["traces"]) == len(by_trace(spans))
    assert got["metrics"]["completedJobs"] == got["metrics"]["totalJobs"]
    assert int(got["metrics"]["inspectedSpans"]) >= len(spans)


def test_limit_newest_first_and_metadata(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    traces = by_trace(spans)
    status, got = search(server, q='{ resource.service.name = "svc-frontend" }', limit=5)
    assert status == 200
    assert len(got["traces"]) == 5
    starts = [int(t["startTimeUnixNano"]) for t in got["traces"]]
    assert starts == sorted(starts, reverse=True)
    for t in got["traces"]:
        full = traces[t["traceID"].rjust(32, "0")]
        root = next(s for s in full if not s.parent)
        assert t["rootServiceName"] == root.service
        assert t["rootTraceName"] == root.name
        assert int(t["startTimeUnixNano"]) == min(s.start for s in full)
        assert t["durationMs"] == (max(s.end for s in full) - min(s.start for s in full)) // 10**6
        stats = t["serviceStats"]
        assert sum(v["spanCount"] for v in stats.values()) == len(full)
        assert len(t["spanSets"][0]["spans"]) <= 3


def test_returned_attributes_follow_the_query(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, _ = loaded
    status, got = search(server, q='{ name =~ "db.*" && span.http.status_code >= 500 }', limit=3)
    assert status == 200
    span = got["traces"][0]["spanSets"][0]["spans"][0]
    assert span["name"].startswith("db.query")
    attrs = {a["key"]: a["value"] for a in span["attributes"]}
    assert attrs["http.status_code"] == {"intValue": "500"}
    status, got = search(server, q="{ status = error } | by(resource.service.name)", limit=3)
    assert status == 200
    ss = got["traces"][0]["spanSets"][0]
    assert ss["attributes"][0]["key"] == "by(resource.service.name)"
    assert "stringValue" in ss["attributes"][0]["value"]


@pytest.mark.parametrize(
    "params,status,needle",
    [
        ({"q": "{ .a = }"}, 400, "parse error at line 1, col 8"),
        ({"q": "{} | rate()"}, 400, "metrics"),
        ({"q": "{}", "spss": "1000"}, 400, "spans per span set exceeds 100"),
        ({"q": "{}", "start": "100", "end": "10"}, 400, "start"),
        ({"q": "{}", "start": "0", "end": str(400 * 3600)}, 400, "exceeds"),
        ({"q": "{}", "limit": "x"}, 400, "limit"),
        ({"tags": 'name="zzz-none"', "minDuration": "5x"}, 400, "minDuration"),
    ],
)
def test_bad_requests_are_400_with_a_reason(
    loaded: tuple[TempoServer, list[Span]], params: dict[str, str], status: int, needle: str
) -> None:
    server, _ = loaded
    got_status, body = search(server, **params)
    assert got_status == status
    assert needle in body


def test_legacy_tag_search(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    want = filter_query(
        lambda s: s.service == "svc-cart" and s.end - s.start >= 5 * 10**8, by_trace(spans)
    )
    status, got = search(
        server, tags="service.name=svc-cart", minDuration="500ms", limit=100_000, spss=100
    )
    assert status == 200
    assert matched(got) == want


def test_metrics_count_bad_queries(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, _ = loaded
    search(server, q="{ .a = }")
    _, _, body = server.get("/metrics")
    line = next(
        x
        for x in body.decode().splitlines()
        if x.startswith("tempo_query_frontend_queries_total")
        and 'op="search"' in x
        and 'status="400"' in x
    )
    assert float(line.split()[-1]) >= 1


def get_json(server: TempoServer, path: str, **params: Any) -> Any:
    status, _, body = server.get(path + ("?" + urllib.parse.urlencode(params) if params else ""))
    assert status == 200, body
    return json.loads(body)


def test_tag_names_v1_and_v2(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, _ = loaded
    v2 = get_json(server, "/api/v2/search/tags")
    scopes = {s["name"]: set(s["tags"]) for s in v2["scopes"]}
    assert {"service.name", "k8s.pod.name", "host.name"} <= scopes["resource"]
    assert {"http.status_code", "http.method", "user.id", "retry"} <= scopes["span"]
    assert {"exception.type"} <= scopes["event"]
    assert {"duration", "name", "status", "kind", "rootServiceName"} <= scopes["intrinsic"]
    only_span = get_json(server, "/api/v2/search/tags", scope="span")
    assert [s["name"] for s in only_span["scopes"]] == ["span"]
    v1 = get_json(server, "/api/search/tags")
    assert {"service.name", "http.method"} <= set(v1["tagNames"])
    assert "duration" not in v1["tagNames"]
    assert "duration" in get_json(server, "/api/search/tags", scope="intrinsic")["tagNames"]
    status, _, body = server.get("/api/v2/search/tags?scope=bogus")
    assert status == 400


def test_tag_values_are_typed_and_filtered(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    services = {s.service for s in spans}
    got = get_json(server, "/api/v2/search/tag/resource.service.name/values")
    assert {(v["type"], v["value"]) for v in got["tagValues"]} == {("string", s) for s in services}
    codes = get_json(server, "/api/v2/search/tag/span.http.status_code/values")
    want_codes = {str(s.attrs["http.status_code"]) for s in spans}
    assert {(v["type"], v["value"]) for v in codes["tagValues"]} == {("int", c) for c in want_codes}
    status = get_json(server, "/api/v2/search/tag/status/values")
    assert {v["value"] for v in status["tagValues"]} == {"unset", "error"}
    assert {v["type"] for v in status["tagValues"]} == {"keyword"}
    # A partial query narrows the values and never errors.
    q = '{ resource.service.name = "svc-cart" && span.db.system = "redis" && span.x= }'
    got = get_json(server, "/api/v2/search/tag/span.http.method/values", q=q)
    want = {
        s.attrs["http.method"]
        for s in spans
        if s.service == "svc-cart" and s.attrs["db.system"] == "redis"
    }
    assert {v["value"] for v in got["tagValues"]} == want
    pinned = get_json(server, "/api/v2/search/tag/resource.service.name/values", q=q)
    assert pinned["tagValues"] == [{"type": "string", "value": "svc-cart"}]
    v1 = get_json(server, "/api/search/tag/service.name/values")
    assert set(v1["tagValues"]) == services
    limited = get_json(server, "/api/v2/search/tag/resource.service.name/values", limit=3)
    assert len(limited["tagValues"]) == 3


def test_search_answers_protobuf_when_asked(loaded: tuple[TempoServer, list[Span]]) -> None:
    from tests.unit.tempopb import response_dict

    server, _ = loaded
    path = "/api/search?" + urllib.parse.urlencode({"q": "{ status = error }", "limit": 5})
    status, headers, body = server.get(path, headers={"Accept": "application/protobuf"})
    assert status == 200 and headers["Content-Type"].startswith("application/protobuf")
    got = response_dict(body)
    want = search(server, q="{ status = error }", limit=5)[1]
    assert [t["traceID"] for t in got["traces"]] == [t["traceID"] for t in want["traces"]]
