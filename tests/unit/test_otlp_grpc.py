"""OTLP/gRPC receiver through the app's wiring; the Rust core is replaced by fakes.py."""

from __future__ import annotations

import grpc
import pytest

from tests.unit.conftest import RunningApp

PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def export(
    app: RunningApp,
    body: bytes,
    metadata: tuple[tuple[str, str], ...] = (),
    compression: grpc.Compression = grpc.Compression.NoCompression,
) -> bytes:
    target = f"127.0.0.1:{app.app.ports['otlp_grpc']}"
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(PATH)  # raw bytes: no serializers
        return call(body, metadata=metadata, compression=compression, timeout=10)


def test_export_raw_bytes(running: RunningApp) -> None:
    assert export(running, b"SS") == b""
    assert running.fake.ingester.pushes == [("single-tenant", b"SS", "protobuf", False, 4 << 20)]
    assert export(running, b"ST") == b"partial:1"


def test_gzip_is_decompressed_by_grpcio(running: RunningApp) -> None:
    assert export(running, b"SSS", compression=grpc.Compression.Gzip) == b""
    assert running.fake.ingester.pushes[-1][1] == b"SSS"


def test_decode_error_is_invalid_argument(running: RunningApp) -> None:
    with pytest.raises(grpc.RpcError) as info:
        export(running, b"BAD")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "cannot decode protobuf body"


def test_overload_is_unavailable(running: RunningApp) -> None:
    with pytest.raises(grpc.RpcError) as info:
        export(running, b"BUSY")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # OTLP exporters retry it
    assert "retry" in info.value.details()
    text = running.app.metrics.exposition().decode()
    assert 'tempo_distributor_requests_refused_total{reason="overloaded"} 1.0' in text


def test_wal_failure_is_unavailable(running: RunningApp) -> None:
    with pytest.raises(grpc.RpcError) as info:
        export(running, b"DISKFULL")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "No space left" in info.value.details()
    text = running.app.metrics.exposition().decode()
    assert 'tempo_distributor_requests_refused_total{reason="wal_append_failed"} 1.0' in text
    assert export(running, b"S") == b"", "the receiver keeps serving"


def test_over_receive_limit_is_resource_exhausted(running: RunningApp) -> None:
    with pytest.raises(grpc.RpcError) as info:
        export(running, b"S" * ((4 << 20) + 1))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_tenant_metadata(running_mt: RunningApp) -> None:
    with pytest.raises(grpc.RpcError) as info:
        export(running_mt, b"S")
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as info:
        export(running_mt, b"S", (("x-scope-orgid", "a" * 151),))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "151" in info.value.details()
    export(running_mt, b"S", (("x-scope-orgid", "tenant-1"),))
    assert running_mt.fake.ingester.pushes[-1][0] == "tenant-1"


def test_grpc_metrics(running: RunningApp) -> None:
    export(running, b"SSP")
    text = running.app.metrics.exposition().decode()
    assert 'tempo_receiver_accepted_spans_total{receiver="otlp",transport="grpc"} 2.0' in text
    assert 'tempo_receiver_refused_spans_total{receiver="otlp",transport="grpc"} 1.0' in text
