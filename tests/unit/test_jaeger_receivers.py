"""Jaeger receivers (gRPC, thrift HTTP, agent UDP) through the app's wiring; the Rust core is
replaced by fakes.py, so these check transport, status codes and accounting."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.unit.conftest import RunningApp, make_config
from tests.unit.http_client import request

JAEGER = """
distributor:
  receivers:
    jaeger:
      protocols:
        grpc: {endpoint: '127.0.0.1:0'}
        thrift_http: {endpoint: '127.0.0.1:0'}
        thrift_compact: {endpoint: '127.0.0.1:0', max_packet_size: 100}
        thrift_binary: {endpoint: '127.0.0.1:0'}
"""
THRIFT = {"Content-Type": "application/x-thrift"}


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[RunningApp]:
    app = RunningApp(make_config(tmp_path, JAEGER))
    app.call(app.app.start())
    yield app
    app.close()


def metrics(app: RunningApp) -> str:
    return app.app.metrics.exposition().decode()


def wait_for_pushes(app: RunningApp, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(app.fake.ingester.pushes) < n and time.monotonic() < deadline:
        time.sleep(0.02)


def test_thrift_http_is_pushed_and_answered_202(jaeger: RunningApp) -> None:
    reply = request("POST", jaeger.url("jaeger_thrift_http", "/api/traces"), b"SS", THRIFT)
    assert reply.status == 202
    assert jaeger.fake.ingester.pushes[-1][1:3] == (b"SS", "jaeger_thrift_http")
    other = {"Content-Type": "application/vnd.apache.thrift.binary"}
    url = jaeger.url("jaeger_thrift_http", "/api/traces")
    assert request("POST", url, b"S", other).status == 202
    accepted = 'tempo_receiver_accepted_spans_total{receiver="jaeger",transport="http"} 3.0'
    assert accepted in metrics(jaeger)


def test_thrift_http_refusals(jaeger: RunningApp) -> None:
    url = jaeger.url("jaeger_thrift_http", "/api/traces")
    reply = request("POST", url, b"S", {"Content-Type": "application/json"})
    assert reply.status == 400
    assert b"Unsupported content type" in reply.body
    assert request("POST", url, b"BAD", THRIFT).status == 400
    assert request("POST", url, b"LIMITEDS", THRIFT).status == 429
    text = metrics(jaeger)
    assert 'tempo_distributor_requests_refused_total{reason="unsupported_content_type"} 1.0' in text


def test_grpc_post_spans(jaeger: RunningApp) -> None:
    target = f"127.0.0.1:{jaeger.app.ports['jaeger_grpc']}"
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary("/jaeger.api_v2.CollectorService/PostSpans")
        assert call(b"SSS", timeout=10) == b""
        with pytest.raises(grpc.RpcError) as info:
            call(b"BAD", timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert jaeger.fake.ingester.pushes[-1][1:3] == (b"SSS", "jaeger_proto")


def test_agent_udp_datagrams(jaeger: RunningApp) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"SS", ("127.0.0.1", jaeger.app.ports["jaeger_thrift_compact"]))
        s.sendto(b"S", ("127.0.0.1", jaeger.app.ports["jaeger_thrift_binary"]))
        s.sendto(b"S" * 101, ("127.0.0.1", jaeger.app.ports["jaeger_thrift_compact"]))
        s.sendto(b"BAD", ("127.0.0.1", jaeger.app.ports["jaeger_thrift_binary"]))
    wait_for_pushes(jaeger, 2)
    time.sleep(0.2)
    encodings = sorted(p[2] for p in jaeger.fake.ingester.pushes)
    assert encodings == ["jaeger_thrift_binary", "jaeger_thrift_compact"]
    text = metrics(jaeger)
    assert 'tempo_distributor_requests_refused_total{reason="too_large"} 1.0' in text
    assert 'tempo_distributor_requests_refused_total{reason="invalid_protobuf"} 1.0' in text
    udp = '{receiver="jaeger",transport="udp_thrift_compact"} 2.0'
    assert "tempo_receiver_accepted_spans_total" + udp in text
