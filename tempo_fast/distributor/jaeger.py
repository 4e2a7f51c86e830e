"""Jaeger collector receivers: gRPC ``jaeger.api_v2.CollectorService/PostSpans`` (default
``localhost:14250``) and thrift over HTTP, ``POST /api/traces`` (``localhost:14268``).

As the collector's: the HTTP path takes a thrift binary ``Batch`` with Content-Type
``application/x-thrift`` (or ``application/vnd.apache.thrift.binary``), gzip allowed, and
answers 202; another content type or a body that is not a batch is a 400 with the reason.
Translation to OTLP happens in Rust.
"""

from __future__ import annotations

from aiohttp import web

from tempo_fast.config.model import JaegerGrpcConfig, JaegerThriftHttpConfig
from tempo_fast.distributor.distributor import Distributor, Refused
from tempo_fast.distributor.grpc_receiver import GrpcReceiver, Rpc
from tempo_fast.distributor.http_body import push_request, refusal

RECEIVER = "jaeger"
THRIFT_TYPES = ("application/x-thrift", "application/vnd.apache.thrift.binary")
POST_SPANS = Rpc(
    service="jaeger.api_v2.CollectorService",
    method="PostSpans",
    encoding="jaeger_proto",
    receiver=RECEIVER,
    reply=lambda _: b"",  # PostSpansResponse is empty
)


def jaeger_grpc_receiver(distributor: Distributor, config: JaegerGrpcConfig) -> GrpcReceiver:
    return GrpcReceiver(distributor, POST_SPANS, config.endpoint, config.max_recv_msg_size_mib)


class JaegerThriftHttpReceiver:
    """Serves ``POST /api/traces``; build the aiohttp app with :meth:`app`."""

    def __init__(self, distributor: Distributor, config: JaegerThriftHttpConfig) -> None:
        self._distributor = distributor
        self._max_bytes = config.max_request_body_size

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_bytes)
        app.router.add_post("/api/traces", self.traces)
        return app

    async def traces(self, request: web.Request) -> web.StreamResponse:
        media = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        try:
            if media not in THRIFT_TYPES:
                raise self._distributor.refuse(
                    "invalid",
                    "unsupported_content_type",
                    f"Unsupported content type: {media or '(none)'}: use {THRIFT_TYPES[0]}",
                )
            await push_request(
                self._distributor,
                request,
                encoding="jaeger_thrift_http",
                max_bytes=self._max_bytes,
                receiver=RECEIVER,
            )
        except Refused as e:
            return refusal(e)
        return web.Response(status=202)
