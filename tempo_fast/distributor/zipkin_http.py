"""Zipkin receiver (``distributor.receivers.zipkin``, default ``localhost:9411``).

As the collector's: any path is accepted. A path containing ``api/v1/spans`` is read as
Zipkin v1 (thrift with ``Content-Type: application/x-thrift``, else JSON); any other path as
v2 (protobuf with ``application/x-protobuf``, else JSON; the usual path is ``/api/v2/spans``).
The body is translated to OTLP in Rust and pushed like any other batch; the answer is 202
with no body. ``parse_string_tags`` types v2 tag values that read as numbers or booleans.
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
        self._typed = "_typed" if config.parse_string_tags else ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_bytes)
        app.router.add_post("/{path:.*}", self.spans)
        return app

    def encoding(self, request: web.Request) -> str:
        """The body's encoding, from the path's API version and the Content-Type."""
        media = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if "api/v1/spans" in request.path:
            return "zipkin_v1_thrift" if media == "application/x-thrift" else "zipkin_v1_json"
        if media == "application/x-protobuf":
            return "zipkin_proto" + self._typed
        return "zipkin_json" + self._typed

    async def spans(self, request: web.Request) -> web.StreamResponse:
        try:
            await push_request(
                self._distributor,
                request,
                encoding=self.encoding(request),
                max_bytes=self._max_bytes,
                receiver=RECEIVER,
            )
        except Refused as e:
            return refusal(e)
        return web.Response(status=202)
