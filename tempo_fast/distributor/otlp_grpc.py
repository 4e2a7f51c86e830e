"""OTLP/gRPC receiver: ``TraceService/Export``, answered with the ``ExportTraceServiceResponse``
(partial success when spans were dropped)."""

from __future__ import annotations

from tempo_fast.config import OtlpGrpcConfig
from tempo_fast.distributor.distributor import Distributor
from tempo_fast.distributor.grpc_receiver import GrpcReceiver, Rpc

OTLP_EXPORT = Rpc(
    service="opentelemetry.proto.collector.trace.v1.TraceService",
    method="Export",
    encoding="protobuf",
    receiver="otlp",
    reply=lambda result: result.response,
)


def otlp_grpc_receiver(distributor: Distributor, config: OtlpGrpcConfig) -> GrpcReceiver:
    return GrpcReceiver(
        distributor,
        OTLP_EXPORT,
        config.endpoint,
        config.max_recv_msg_size_mib,
        config.max_concurrent_streams,
    )
