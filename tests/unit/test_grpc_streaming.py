"""Streaming gRPC search: request decoding, response encoding (checked against the protobuf
runtime), message splitting, and the RPC's statuses through a real grpcio client."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from tempo_fast.frontend.grpc_streaming import (
    ROUTE,
    StreamingQuerier,
    StreamingServer,
    decode_search_request,
    grpc_code,
    http_params,
    search_metrics,
    search_params,
    search_responses,
    trace_metadata,
)
from tempo_fast.frontend.search import SearchError, SearchLimits, SearchParams
from tempo_fast.pkg.metrics import Metrics
from tempo_fast.pkg.protowire import DecodeError, Writer
from tests.unit.tempopb import SearchRequest, response_dict

TRACE: dict[str, Any] = {
    "traceID": "2f3e0cee77ae5dc9c17ade3689eb2e54",
    "rootServiceName": "shop-backend",
    "rootTraceName": "GET /cart",
    "startTimeUnixNano": "1700000000123456789",
    "durationMs": 1234,
    "spanSet": {
        "spans": [
            {
                "spanID": "00000000000000aa",
                "name": "db",
                "startTimeUnixNano": "1700000000123456790",
                "durationNanos": "18446744073709551615",
                "attributes": [
                    {"key": "s", "value": {"stringValue": "v"}},
                    {"key": "empty", "value": {"stringValue": ""}},
                    {"key": "i", "value": {"intValue": "-5"}},
                    {"key": "zero", "value": {"intValue": "0"}},
                    {"key": "d", "value": {"doubleValue": 1.5}},
                    {"key": "b", "value": {"boolValue": False}},
                    {"key": "a", "value": {"arrayValue": {"values": [{"intValue": "1"}]}}},
                    {
                        "key": "kv",
                        "value": {
                            "kvlistValue": {"values": [{"key": "x", "value": {"boolValue": True}}]}
                        },
                    },
                    {"key": "raw", "value": {"bytesValue": "AAE="}},
                ],
            }
        ],
        "matched": 7,
    },
    "spanSets": [
        {"spans": [{"spanID": "00000000000000aa", "startTimeUnixNano": "1"}], "matched": 1},
        {
            "spans": [],
            "matched": 3,
            "attributes": [{"key": "by(span.foo)", "value": {"stringValue": "bar"}}],
        },
    ],
    "serviceStats": {
        "shop-backend": {"spanCount": 5, "errorCount": 1},
        "db": {"spanCount": 2},
    },
}
METRICS = {
    "inspectedTraces": 3100,
    "inspectedBytes": "3811736",
    "totalBlocks": 13,
    "completedJobs": 4,
    "totalJobs": 9,
    "totalBlockBytes": "99",
    "inspectedSpans": "123456789012",
}


def test_response_round_trips_through_the_protobuf_runtime() -> None:
    data = next(search_responses([trace_metadata(TRACE)], search_metrics(METRICS)))
    trace = copy.deepcopy(TRACE)
    del trace["spanSets"][1]["spans"]  # proto3 JSON drops empty repeated fields
    expected = {"traces": [trace], "metrics": METRICS}
    assert response_dict(data) == expected


def test_zero_and_missing_fields_are_omitted() -> None:
    minimal = {"traceID": "1", "durationMs": 0, "rootServiceName": ""}
    data = next(search_responses([trace_metadata(minimal)], search_metrics({})))
    assert response_dict(data) == {"traces": [{"traceID": "1"}], "metrics": {}}
    assert data == b"\n\x03\n\x011" + b"\x12\x00", "metrics is present even when empty"


def test_unknown_metrics_are_not_encoded() -> None:
    data = search_metrics({"backendReads": "5", "additionalMetrics": {"x": "1"}, "totalJobs": 2})
    assert data == bytes(Writer().uint(5, 2))


def test_responses_split_above_the_packet_size() -> None:
    traces = [trace_metadata({**TRACE, "traceID": f"{i:032x}"}) for i in range(10)]
    metrics = search_metrics(METRICS)
    one = len(next(search_responses(traces[:1], metrics)))
    messages = list(search_responses(traces, metrics, max_bytes=3 * one))
    assert len(messages) == 4  # 3 + 3 + 3 + 1
    assert all(len(m) <= 3 * one for m in messages)
    decoded = [response_dict(m) for m in messages]
    assert [t["traceID"] for d in decoded for t in d["traces"]] == [f"{i:032x}" for i in range(10)]
    assert all(d["metrics"] == METRICS for d in decoded)
    # a trace larger than the limit goes alone; no traces: one message with the metrics
    assert len(list(search_responses(traces[:2], metrics, max_bytes=10))) == 2
    assert [response_dict(m) for m in search_responses([], metrics)] == [{"metrics": METRICS}]


LIMITS = SearchLimits()


def test_decode_search_request_as_grafana_fills_it() -> None:
    body = SearchRequest(
        Query='{ resource.service.name = "a" }', Limit=50, SpansPerSpanSet=5, start=100, end=200
    ).SerializeToString()
    req = decode_search_request(body)
    assert (req.query, req.limit, req.spss, req.start, req.end) == (
        '{ resource.service.name = "a" }',
        50,
        5,
        100,
        200,
    )
    assert search_params(req, LIMITS) == SearchParams(
        q='{ resource.service.name = "a" }', limit=50, spss=5, start=100, end=200
    )


def test_zero_is_unset_and_defaults_come_from_the_limits() -> None:
    req = decode_search_request(b"")
    assert http_params(req) == {}
    limits = SearchLimits(default_limit=7, default_spss=2)
    assert search_params(req, limits) == SearchParams(q="{}", limit=7, spss=2)


def test_legacy_fields_become_http_parameters() -> None:
    body = SearchRequest(
        Tags={"service.name": "shop", "http.method": 'G"ET x'}, MinDurationMs=10, MaxDurationMs=20
    ).SerializeToString()
    req = decode_search_request(body)
    assert req.tags == {"service.name": "shop", "http.method": 'G"ET x'}
    assert (req.min_duration_ms, req.max_duration_ms) == (10, 20)
    assert http_params(req) == {
        "tags": 'http.method="G\\"ET x" service.name="shop"',
        "minDuration": "10ms",
        "maxDuration": "20ms",
    }
    assert search_params(req, LIMITS).q == (  # the HTTP API's legacy translation
        r'{ .http.method =~ "(?i).*G\"ET\\ x.*" && .service.name =~ "(?i).*shop.*"'
        " && duration >= 10ms && duration <= 20ms }"
    )
    with pytest.raises(SearchError) as info:
        http_params(decode_search_request(SearchRequest(Tags={"a b": "c"}).SerializeToString()))
    assert info.value.status == 400


def test_invalid_requests_fail_as_the_http_api_does() -> None:
    req = decode_search_request(SearchRequest(start=200, end=100).SerializeToString())
    with pytest.raises(SearchError) as info:
        search_params(req, LIMITS)
    assert (info.value.status, info.value.reason) == (400, "invalid start 200 after end 100")
    req = decode_search_request(SearchRequest(SpansPerSpanSet=1000).SerializeToString())
    with pytest.raises(SearchError, match="spans per span set exceeds 100. received 1000"):
        search_params(req, LIMITS)


@pytest.mark.parametrize("body", [b"\x0a\x05ab", b"\x20", b"\x42\x02\xff\xfe", b"\x00\x01"])
def test_undecodable_requests(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_search_request(body)


def test_unknown_fields_are_skipped() -> None:
    body = bytes(Writer().uint(10, 1).string(11, "x").double(12, 1.0).string(8, "{}"))
    assert decode_search_request(body).query == "{}"


def test_http_statuses_map_to_grpc_codes() -> None:
    assert grpc_code(400) == grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_code(401) == grpc.StatusCode.UNAUTHENTICATED
    assert grpc_code(422) == grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_code(429) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert grpc_code(503) == grpc.StatusCode.UNAVAILABLE
    assert grpc_code(500) == grpc.StatusCode.INTERNAL


# --- through a real grpcio server and client ---------------------------------------------------

Item = tuple[list[dict[str, Any]], dict[str, Any]]


class FakeSearch:
    """Yields ``items`` (or runs ``script``); records calls and whether it was closed."""

    def __init__(
        self,
        items: list[Item] | None = None,
        script: Callable[[], AsyncIterator[Item]] | None = None,
    ) -> None:
        self.limits = SearchLimits()
        self.items = items or []
        self.script = script
        self.calls: list[tuple[list[str], SearchParams]] = []
        self.closed = asyncio.Event()

    def close(self) -> None:
        pass

    def limits_for(self, tenants: list[str]) -> SearchLimits:
        return self.limits

    async def search_stream(self, tenants: list[str], params: SearchParams) -> AsyncIterator[Item]:
        self.calls.append((tenants, params))
        try:
            if self.script is not None:
                async for item in self.script():
                    yield item
            for item in self.items:
                yield item
        finally:
            self.closed.set()


def run_rpc(
    service: FakeSearch | None,
    body: bytes,
    metadata: tuple[tuple[str, str], ...] = (),
    *,
    multitenancy: bool = False,
    timeout: float = 0.0,
    client: Callable[[grpc.aio.UnaryStreamMultiCallable], Awaitable[Any]] | None = None,
    metrics: Metrics | None = None,
) -> Any:
    """Serve one StreamingQuerier and call Search; the messages, or what ``client`` returns."""

    async def go() -> Any:
        querier = StreamingQuerier(
            lambda: service,
            multitenancy=multitenancy,
            multi_tenant_queries=True,
            request_timeout=timeout,
            metrics=metrics,
        )
        server = StreamingServer(querier)
        path = await server.start()
        try:
            async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
                call = channel.unary_stream(ROUTE)
                if client is not None:
                    return await client(call)
                return [m async for m in call(body, metadata=metadata, timeout=10)]
        finally:
            await server.stop(1)

    return asyncio.run(go())


def rpc_error(*args: Any, **kwargs: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        run_rpc(*args, **kwargs)
    return info.value


GRAFANA = SearchRequest(Query="{}", Limit=20, SpansPerSpanSet=3, start=1, end=2)


def test_at_most_limit_traces_a_stream() -> None:
    items = [
        ([{"traceID": "a"}, {"traceID": "b"}], {"completedJobs": 1}),
        ([{"traceID": "c"}, {"traceID": "a", "durationMs": 5}], {"completedJobs": 2}),
    ]
    body = SearchRequest(Limit=2).SerializeToString()
    messages = [response_dict(m) for m in run_rpc(FakeSearch(items), body)]
    assert [m.get("traces") for m in messages] == [
        [{"traceID": "a"}, {"traceID": "b"}],
        [{"traceID": "a", "durationMs": 5}],  # an update of one sent; "c" is over the limit
        None,
    ]


def test_streams_each_batch_then_the_final_metrics() -> None:
    t1, t2 = {"traceID": "a1"}, {"traceID": "b2"}
    items = [
        ([t1], {"completedJobs": 1, "totalJobs": 3}),
        ([], {"completedJobs": 1, "totalJobs": 3}),  # nothing new: not sent
        ([], {"completedJobs": 2, "totalJobs": 3}),
        ([t2], {"completedJobs": 3, "totalJobs": 3, "inspectedBytes": "10"}),
    ]
    service = FakeSearch(items)
    metrics = Metrics()
    messages = run_rpc(service, GRAFANA.SerializeToString(), metrics=metrics)
    assert [response_dict(m) for m in messages] == [
        {"traces": [t1], "metrics": {"completedJobs": 1, "totalJobs": 3}},
        {"metrics": {"completedJobs": 2, "totalJobs": 3}},
        {"traces": [t2], "metrics": {"completedJobs": 3, "totalJobs": 3, "inspectedBytes": "10"}},
        {"metrics": {"completedJobs": 3, "totalJobs": 3, "inspectedBytes": "10"}},
    ]
    assert service.calls == [(["single-tenant"], SearchParams("{}", 20, 3, 1, 2))]
    assert len(metrics.request_duration.collect()[0].samples) > 0
    text = metrics.exposition().decode()
    assert (
        'tempo_request_duration_seconds_count{method="gRPC",'
        'route="/tempopb.StreamingQuerier/Search",status_code="success"} 1.0'
    ) in text


def test_empty_result_is_one_message() -> None:
    messages = run_rpc(FakeSearch([]), GRAFANA.SerializeToString())
    assert [response_dict(m) for m in messages] == [{"metrics": {}}]


def test_tenant_from_metadata() -> None:
    service = FakeSearch([])
    run_rpc(service, b"", (("x-scope-orgid", "team-a|team-b"),), multitenancy=True)
    assert service.calls[0][0] == ["team-a", "team-b"]


def test_missing_tenant_is_unauthenticated() -> None:
    err = rpc_error(FakeSearch([]), b"", multitenancy=True)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "X-Scope-OrgID" in (err.details() or "")


def test_bad_tenant_is_invalid_argument() -> None:
    err = rpc_error(FakeSearch([]), b"", (("x-scope-orgid", "a/b"),), multitenancy=True)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_query_is_invalid_argument_with_the_reason() -> None:
    reason = "invalid TraceQL query: parse error at line 1, col 14: syntax error: unexpected $end"

    async def refuse() -> AsyncIterator[Item]:
        raise SearchError(400, reason)
        yield  # pragma: no cover - makes it a generator

    err = rpc_error(FakeSearch(script=refuse), SearchRequest(Query="{ .a = ").SerializeToString())
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, reason)


def test_error_after_results_ends_the_stream_with_the_status() -> None:
    async def fail_late() -> AsyncIterator[Item]:
        yield [{"traceID": "a"}], {"completedJobs": 1}
        raise SearchError(503, "querier unavailable")

    got: list[bytes] = []

    async def client(call: grpc.aio.UnaryStreamMultiCallable) -> None:
        async for m in call(b"", timeout=10):
            got.append(m)

    err = rpc_error(FakeSearch(script=fail_late), b"", client=client)
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert [response_dict(m)["traces"] for m in got] == [[{"traceID": "a"}]]


def test_invalid_request_is_refused_before_searching() -> None:
    service = FakeSearch([])
    err = rpc_error(service, SearchRequest(start=5, end=4).SerializeToString())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "invalid start 5 after end 4"
    err = rpc_error(service, b"\x42\x05ab")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.details() or "").startswith("cannot decode SearchRequest")
    assert service.calls == []


def test_not_ready_is_unavailable() -> None:
    err = rpc_error(None, b"")
    assert err.code() == grpc.StatusCode.UNAVAILABLE


def test_a_bug_is_internal_and_the_server_keeps_serving() -> None:
    async def crash() -> AsyncIterator[Item]:
        raise RuntimeError("boom")
        yield  # pragma: no cover

    err = rpc_error(FakeSearch(script=crash), b"")
    assert (err.code(), err.details()) == (grpc.StatusCode.INTERNAL, "internal error: boom")


def test_timeout_is_deadline_exceeded() -> None:
    async def slow() -> AsyncIterator[Item]:
        await asyncio.sleep(30)
        yield [], {}

    service = FakeSearch(script=slow)
    err = rpc_error(service, b"", timeout=0.2)
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert service.closed.is_set()


def test_client_cancel_closes_the_search() -> None:
    started = asyncio.Event()

    async def endless() -> AsyncIterator[Item]:
        n = 0
        while True:
            n += 1
            started.set()
            yield [{"traceID": f"{n:x}"}], {"completedJobs": n}
            await asyncio.sleep(0.01)

    service = FakeSearch(script=endless)

    async def client(call: grpc.aio.UnaryStreamMultiCallable) -> bool:
        stream = call(b"", timeout=10)
        await stream.read()
        stream.cancel()
        await asyncio.wait_for(service.closed.wait(), 5)
        return True

    assert run_rpc(service, b"", client=client)
