"""A grpcio server for one trace-push RPC, served on raw bytes (no protobuf in Python).

grpcio decompresses ``grpc-encoding: gzip`` itself and enforces the receive size limit.
The OTLP ``TraceService/Export`` and Jaeger ``CollectorService/PostSpans`` receivers are
instances of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc

from tempo_fast.distributor.distributor import Distributor, PushResult, Refused
from tempo_fast.distributor.rpc_status import DETAILS_KEY, encode_status
from tempo_fast.pkg.netaddr import grpc_address, parse_endpoint

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


@dataclass(frozen=True)
class Rpc:
    """The RPC a receiver serves and how its bodies are read and answered."""

    service: str
    method: str
    encoding: str  # the ingester's body encoding
    receiver: str  # the ``receiver`` metric label
    reply: Callable[[PushResult], bytes]


class GrpcReceiver:
    """A grpcio server on ``endpoint``; each RPC runs on the server's thread pool."""

    def __init__(
        self,
        distributor: Distributor,
        rpc: Rpc,
        endpoint: str,
        max_recv_msg_size_mib: int,
        max_concurrent_streams: int = 0,
        workers: int | None = None,
    ) -> None:
        self._distributor = distributor
        self._rpc = rpc
        self._max_bytes = max_recv_msg_size_mib * MIB
        self.host, self.port = parse_endpoint(endpoint)
        options = [
            ("grpc.max_receive_message_length", self._max_bytes),
            ("grpc.so_reuseport", 0),
        ]
        if max_concurrent_streams > 0:
            options.append(("grpc.max_concurrent_streams", max_concurrent_streams))
        workers = workers or min(32, 4 * (os.cpu_count() or 1))
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{rpc.receiver}-grpc"),
            options=options,
            # RPCs beyond this are refused with RESOURCE_EXHAUSTED instead of queueing
            # without bound (each holds its request in memory)
            maximum_concurrent_rpcs=MAX_QUEUED_RPCS_PER_WORKER * workers,
        )
        handler = grpc.unary_unary_rpc_method_handler(self._call)  # raw bytes in and out
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(rpc.service, {rpc.method: handler}),)
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

    def _call(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        tenant = None
        for key, value in context.invocation_metadata():
            if key == "x-scope-orgid":
                tenant = value if isinstance(value, str) else value.decode("latin-1")
        try:
            result = self._distributor.push(
                tenant,
                request,
                encoding=self._rpc.encoding,
                gzip=False,
                max_bytes=self._max_bytes,
                transport="grpc",
                receiver=self._rpc.receiver,
            )
        except Refused as e:
            abort(context, e)
        return self._rpc.reply(result)
