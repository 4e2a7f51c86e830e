"""Grafana's streaming search: gRPC ``tempopb.StreamingQuerier/Search`` on the HTTP port of the
real server, checked against ``GET /api/search`` over the same data."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import grpc
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from tests.e2e.traces import emit_traces, trace_ids, wait_for
from tests.server import TempoServer
from tests.unit.tempopb import SearchRequest, response_dict

ROUTE = "/tempopb.StreamingQuerier/Search"
SUMMARY = ("traceID", "rootServiceName", "rootTraceName", "startTimeUnixNano", "durationMs")


def http_search(server: TempoServer, q: str, start: int, end: int) -> tuple[int, bytes]:
    query = urllib.parse.urlencode({"q": q, "start": start, "end": end, "limit": 20, "spss": 3})
    status, _, body = server.get(f"/api/search?{query}")
    return status, body


def stream_search(server: TempoServer, body: bytes) -> list[dict]:
    with grpc.insecure_channel(f"127.0.0.1:{server.http_port}") as channel:
        call = channel.unary_stream(ROUTE)
        return [response_dict(m) for m in call(body, timeout=30)]


def needs_search() -> None:
    pytest.importorskip("tempo_fast.frontend.search", reason="the search service has not landed")


def test_streaming_search_on_the_http_port(server: TempoServer) -> None:
    needs_search()
    sent = emit_traces(OTLPSpanExporter(endpoint=f"{server.otlp_http}/v1/traces"), 3, "streamed")
    want = {tid.lstrip("0") for tid in trace_ids(sent)}
    q = '{ resource.service.name = "streamed" }'
    start, end = int(time.time()) - 3600, int(time.time()) + 60

    def http_traces() -> list[dict] | None:
        status, body = http_search(server, q, start, end)
        assert status == 200, body
        traces = orjson.loads(body).get("traces", [])
        return traces if {t["traceID"] for t in traces} == want else None

    expected = wait_for(http_traces)
    assert expected, "the HTTP search finds the traces"

    request = SearchRequest(Query=q, Limit=20, SpansPerSpanSet=3, start=start, end=end)
    messages = stream_search(server, request.SerializeToString())
    latest: dict[str, dict] = {}  # a trace may come again, merged with more of it
    for message in messages:
        for trace in message.get("traces", []):
            latest[trace["traceID"]] = trace
    assert latest.keys() == want
    for trace in expected:
        got = latest[trace["traceID"]]
        assert {k: got.get(k) for k in SUMMARY} == {k: trace.get(k) for k in SUMMARY}
    final = messages[-1]["metrics"]
    assert final.get("completedJobs") == final.get("totalJobs")


def test_streaming_search_refuses_a_bad_query_as_http_does(server: TempoServer) -> None:
    needs_search()
    q = "{ .foo = "
    status, body = http_search(server, q, 0, 0)
    assert status == 400
    with pytest.raises(grpc.RpcError) as info:
        stream_search(server, SearchRequest(Query=q).SerializeToString())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == body.decode().strip()


def test_streaming_search_needs_a_tenant_with_multitenancy(tmp_path: Path) -> None:
    server = TempoServer(tmp_path / "mt", overrides={"multitenancy_enabled": True}).start()
    try:
        with pytest.raises(grpc.RpcError) as info:
            stream_search(server, SearchRequest(Query="{}").SerializeToString())
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        server.stop()
