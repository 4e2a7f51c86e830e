"""Zipkin receiver (``distributor.receivers.zipkin``, default ``localhost:9411``).

As the collector's: any path is accepted; v2 JSON (``/api/v2/spans``, the usual path) is
translated to OTLP in Rust and pushed like any other batch. Answers 202 with no body.
Zipkin v1 (a path containing ``api/v1/spans``) and v2 protobuf are refused with 415 and a
reason: they are not implemented yet.
"""

from __future__ import annotations

from aiohttp import web

from tempo_fast.config.model import ZipkinConfig
from tempo_fast.distributor.distributor import Distributor, Refused
from tempo_fast.distributor.http_body import push_request, refusal

RECEIVER = "zipkin"


class ZipkinReceiver:
    """Serves Zipkin span uploads; build the aiohttp app with :meth:`app`."""

    def __init__(self, distributor: Distributor, config: ZipkinConfig) -> None:
        self._distributor = distributor
        self._max_bytes = config.max_request_body_size

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_bytes)
        app.router.add_post("/{path:.*}", self.spans)
        return app

    async def spans(self, request: web.Request) -> web.StreamResponse:
        media = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        try:
            if "api/v1/spans" in request.path:
                raise self._distributor.refuse(
                    "unsupported_media",
                    "unsupported_zipkin_version",
                    "Zipkin v1 spans are not supported yet: send v2 JSON to /api/v2/spans",
                )
            if media in ("application/x-protobuf", "application/protobuf"):
                raise self._distributor.refuse(
                    "unsupported_media",
                    "unsupported_content_type",
                    "Zipkin v2 protobuf is not supported yet: send v2 JSON (application/json)",
                )
            await push_request(
                self._distributor,
                request,
                encoding="zipkin_json",
                max_bytes=self._max_bytes,
                receiver=RECEIVER,
            )
        except Refused as e:
            return refusal(e)
        return web.Response(status=202)
