"""Array attributes in TraceQL, end to end: a comparison or regex holds for an array when it
holds for any element (Tempo's semantics), over recent data and over blocks; the returned
attribute is the array; tag values list the elements."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from opentelemetry.proto.common.v1 import common_pb2 as cp
from opentelemetry.proto.trace.v1 import trace_pb2 as tp

from tests.conftest import FAST_CUT
from tests.e2e.traces import wait_for
from tests.server import TempoServer


def array(*items: str | int) -> cp.AnyValue:
    values = [
        cp.AnyValue(int_value=i) if isinstance(i, int) else cp.AnyValue(string_value=i)
        for i in items
    ]
    return cp.AnyValue(array_value=cp.ArrayValue(values=values))


# trace number -> the span's attributes
SPANS: dict[int, dict[str, cp.AnyValue]] = {
    1: {"tags": array("red", "green"), "codes": array(200, 404)},
    2: {"tags": array("blue"), "codes": array(500)},
    3: {"tags": cp.AnyValue(string_value="red")},  # a scalar
    4: {"tags": array()},  # an empty array
}
QUERIES = {
    '{ span.tags = "red" }': {1, 3},
    '{ span.tags != "red" }': {1, 2},  # an element differs (green); scalar red does not
    '{ span.tags =~ "gr.*" }': {1},
    '{ span.tags !~ "red" }': {1, 2},
    "{ span.codes >= 500 }": {2},
    "{ span.codes = 404 }": {1},
    '{ .tags = "blue" }': {2},
    "{ span.tags != nil }": {1, 2, 3, 4},
}


def trace_id(n: int) -> str:
    return f"{n:032x}"


@pytest.fixture(scope="module")
def arrays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TempoServer]:
    server = TempoServer(tmp_path_factory.mktemp("arrays") / "tempo", overrides=FAST_CUT).start()
    now = time.time_ns()
    req = ts.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(cp.KeyValue(key="service.name", value=cp.AnyValue(
        string_value="arrays")))  # fmt: skip
    for n, attrs in SPANS.items():
        rs.scope_spans.add().spans.append(
            tp.Span(trace_id=bytes.fromhex(trace_id(n)), span_id=n.to_bytes(8, "big"),
                    name="op", kind=2, start_time_unix_nano=now - 10**9,
                    end_time_unix_nano=now - 10**8,
                    attributes=[cp.KeyValue(key=k, value=v) for k, v in attrs.items()])
        )  # fmt: skip
    status, _, _ = server.post(
        "/v1/traces", req.SerializeToString(), {"Content-Type": "application/x-protobuf"}
    )
    assert status == 200
    yield server
    server.stop()


def search(server: TempoServer, **params: Any) -> set[int]:
    status, _, body = server.get("/api/search?" + urllib.parse.urlencode(params))
    assert status == 200, body
    return {int(t["traceID"], 16) for t in json.loads(body)["traces"]}


@pytest.mark.parametrize("q", list(QUERIES))
def test_recent_data(arrays: TempoServer, q: str) -> None:
    assert search(arrays, q=q, limit=100) == QUERIES[q]


def test_blocks(arrays: TempoServer) -> None:
    blocks = arrays.data / "blocks" / "single-tenant"
    wait_for(lambda: list(blocks.glob("*/meta.json")) if blocks.is_dir() else [], timeout=30)
    now = int(time.time())
    for q, want in QUERIES.items():
        wait_for(lambda q=q, want=want: search(arrays, q=q, limit=100, start=now - 600,
                                                end=now + 60) == want, timeout=30)  # fmt: skip


def test_returned_attribute_and_tag_values(arrays: TempoServer) -> None:
    status, _, body = arrays.get("/api/search?" + urllib.parse.urlencode(
        {"q": '{ span.tags = "green" }', "limit": 10}))  # fmt: skip
    assert status == 200
    (trace,) = json.loads(body)["traces"]
    (span,) = trace["spanSets"][0]["spans"]
    assert span["attributes"] == [{"key": "tags", "value": {"arrayValue": {"values": [
        {"stringValue": "red"}, {"stringValue": "green"}]}}}]  # fmt: skip
    status, _, body = arrays.get("/api/v2/search/tag/span.tags/values")
    assert status == 200
    values = {(v["type"], v["value"]) for v in json.loads(body)["tagValues"]}
    assert values == {("string", "red"), ("string", "green"), ("string", "blue")}
