"""OTLP/gRPC receiver: ``TraceService/Export`` served on raw bytes (no protobuf in Python).

grpcio decompresses ``grpc-encoding: gzip`` itself and enforces the receive size limit.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import grpc

from tempo_fast.config import OtlpGrpcConfig
from tempo_fast.distributor.distributor import Distributor, Refused
from tempo_fast.distributor.rpc_status import DETAILS_KEY, encode_status
from tempo_fast.pkg.netaddr import grpc_address, parse_endpoint

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
MIB = 1 << 20
MAX_QUEUED_RPCS_PER_WORKER = 8
_CODES = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "unsupported_media": grpc.StatusCode.INVALID_ARGUMENT,
    "overloaded": grpc.StatusCode.UNAVAILABLE,  # retryable: the exporter backs off
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "rate_limited": grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def abort(context: grpc.ServicerContext, e: Refused) -> None:
    """End the RPC with the refusal's status; retryable ones carry a RetryInfo hint."""
    code = _CODES[e.kind]
    if e.kind in ("rate_limited", "overloaded", "unavailable"):
        details = encode_status(code.value[0], e.message, e.retry_after)
        context.set_trailing_metadata(((DETAILS_KEY, details),))
    context.abort(code, e.message)


class OtlpGrpcReceiver:
    """A grpcio server on the OTLP gRPC endpoint; each RPC runs on the server's thread pool."""

    def __init__(
        self, distributor: Distributor, config: OtlpGrpcConfig, workers: int | None = None
    ) -> None:
        self._distributor = distributor
        self._max_bytes = config.max_recv_msg_size_mib * MIB
        self.host, self.port = parse_endpoint(config.endpoint)
        options = [
            ("grpc.max_receive_message_length", self._max_bytes),
            ("grpc.so_reuseport", 0),
        ]
        if config.max_concurrent_streams > 0:
            options.append(("grpc.max_concurrent_streams", config.max_concurrent_streams))
        workers = workers or min(32, 4 * (os.cpu_count() or 1))
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
            options=options,
            # RPCs beyond this are refused with RESOURCE_EXHAUSTED instead of queueing
            # without bound (each holds its request in memory)
            maximum_concurrent_rpcs=MAX_QUEUED_RPCS_PER_WORKER * workers,
        )
        handler = grpc.unary_unary_rpc_method_handler(self._export)  # raw bytes in and out
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
        )

    def start(self) -> int:
        """Bind and start serving; return the bound port. Raises OSError when it cannot bind."""
        address = grpc_address(self.host, self.port)
        try:
            port = self._server.add_insecure_port(address)
        except RuntimeError as e:
            raise OSError(f"cannot listen on {address}: {e}") from e
        if port == 0:
            raise OSError(f"cannot listen on {address}: address in use or not available")
        self._server.start()
        self.port = port
        return port

    def stop(self, grace: float) -> None:
        """Stop accepting RPCs and wait up to ``grace`` seconds for those in flight."""
        self._server.stop(grace).wait()

    def _export(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        tenant = None
        for key, value in context.invocation_metadata():
            if key == "x-scope-orgid":
                tenant = value if isinstance(value, str) else value.decode("latin-1")
        try:
            result = self._distributor.push(
                tenant,
                request,
                encoding="protobuf",
                gzip=False,
                max_bytes=self._max_bytes,
                transport="grpc",
            )
        except Refused as e:
            abort(context, e)
        return result.response
