"""Zipkin receiver through the app's wiring; the Rust core is replaced by fakes.py."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.conftest import RunningApp, make_config
from tests.unit.http_client import request

ZIPKIN = "distributor: {receivers: {zipkin: {endpoint: '127.0.0.1:0'}}}"


@pytest.fixture
def zipkin(tmp_path: Path) -> Iterator[RunningApp]:
    app = RunningApp(make_config(tmp_path, ZIPKIN))
    app.call(app.app.start())
    yield app
    app.close()


def post(app: RunningApp, path: str, body: bytes, headers: dict[str, str]) -> object:
    return request("POST", app.url("zipkin", path), body, headers)


def test_v2_json_is_pushed_and_answered_202(zipkin: RunningApp) -> None:
    reply = post(zipkin, "/api/v2/spans", b"SS", {"Content-Type": "application/json"})
    assert reply.status == 202
    assert zipkin.fake.ingester.pushes[-1][1:3] == (b"SS", "zipkin_json")
    gz = post(
        zipkin,
        "/any/path",
        gzip.compress(b"S"),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert gz.status == 202
    assert zipkin.fake.ingester.pushes[-1][3] is True  # gunzipped in Rust, under the size cap
    text = zipkin.app.metrics.exposition().decode()
    assert 'tempo_receiver_accepted_spans_total{receiver="zipkin",transport="http"} 3.0' in text


@pytest.mark.parametrize(
    ("path", "content_type", "encoding"),
    [
        ("/api/v2/spans", "application/json", "zipkin_json"),
        ("/api/v2/spans", "application/x-protobuf", "zipkin_proto"),
        ("/api/v1/spans", "application/json", "zipkin_v1_json"),
        ("/zipkin/api/v1/spans", "application/x-thrift", "zipkin_v1_thrift"),
        ("/anything", "", "zipkin_json"),
    ],
)
def test_the_path_and_content_type_pick_the_format(
    zipkin: RunningApp, path: str, content_type: str, encoding: str
) -> None:
    assert post(zipkin, path, b"S", {"Content-Type": content_type}).status == 202
    assert zipkin.fake.ingester.pushes[-1][2] == encoding


def test_parse_string_tags(tmp_path: Path) -> None:
    typed = ZIPKIN.replace("'127.0.0.1:0'", "'127.0.0.1:0', parse_string_tags: true")
    app = RunningApp(make_config(tmp_path, typed))
    app.call(app.app.start())
    try:
        post(app, "/api/v2/spans", b"S", {"Content-Type": "application/json"})
        post(app, "/api/v2/spans", b"S", {"Content-Type": "application/x-protobuf"})
        post(app, "/api/v1/spans", b"S", {})
        assert [p[2] for p in app.fake.ingester.pushes] == [
            "zipkin_json_typed",
            "zipkin_proto_typed",
            "zipkin_v1_json",
        ]
    finally:
        app.close()


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "reason"),
    [
        ("/api/v2/spans", b"BAD", {}, 400, "invalid_json"),
        ("/api/v2/spans", b"S", {"Content-Encoding": "br"}, 415, None),
        ("/api/v2/spans", b"BUSY", {}, 503, "overloaded"),
    ],
)
def test_refusals(zipkin: RunningApp, path, body, headers, status, reason) -> None:
    reply = post(zipkin, path, body, headers)
    assert reply.status == status
    assert reply.body, "the refusal says why"
    if status == 503:
        assert reply.headers["Retry-After"] == "1"
    if reason:
        text = zipkin.app.metrics.exposition().decode()
        assert f'tempo_distributor_requests_refused_total{{reason="{reason}"}}' in text
