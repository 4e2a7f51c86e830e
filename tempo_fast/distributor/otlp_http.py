"""OTLP/HTTP receiver: ``POST /v1/traces`` with protobuf or JSON bodies, gzip allowed.

Errors answer with an OTLP ``google.rpc.Status`` in the request's encoding.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from tempo_fast.config import OtlpHttpConfig
from tempo_fast.distributor.distributor import Distributor, PushResult, Refused
from tempo_fast.distributor.http_body import HTTP_STATUS, gzipped, read_body, retry_headers
from tempo_fast.distributor.rpc_status import encode_status

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ENCODINGS = {PROTOBUF: "protobuf", JSON: "json"}
# google.rpc.Code per refusal kind
_CODES = {
    "invalid": 3,
    "too_large": 8,
    "unauthenticated": 16,
    "unsupported_media": 3,
    "overloaded": 14,  # UNAVAILABLE
    "unavailable": 14,
    "rate_limited": 8,  # RESOURCE_EXHAUSTED
}


class OtlpHttpReceiver:
    """Serves the OTLP/HTTP traces path; build the aiohttp app with :meth:`app`."""

    def __init__(self, distributor: Distributor, config: OtlpHttpConfig) -> None:
        self._distributor = distributor
        self._config = config
        self._max_bytes = config.max_request_body_size

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_bytes)
        app.router.add_post(self._config.traces_url_path, self.export)
        return app

    async def export(self, request: web.Request) -> web.StreamResponse:
        media = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        encoding = _ENCODINGS.get(media)
        reply_media = PROTOBUF if encoding == "protobuf" else JSON
        try:
            if encoding is None:
                raise self._distributor.refuse(
                    "unsupported_media",
                    "unsupported_content_type",
                    f"unsupported Content-Type {media or '(none)'!r}: use {PROTOBUF} or {JSON}",
                )
            gzip = gzipped(self._distributor, request)
            body = await read_body(
                self._distributor, request, self._max_bytes, "max_request_body_size"
            )
            if not body:
                return self._success(reply_media, None)
            result = await self._distributor.push_async(
                request.headers.get("X-Scope-OrgID"),
                body,
                encoding=encoding,
                gzip=gzip,
                max_bytes=self._max_bytes,
                transport="http",
            )
        except Refused as e:
            status, code = HTTP_STATUS[e.kind], _CODES[e.kind]
            headers = retry_headers(status, e.retry_after)
            hint = e.retry_after if headers else None
            if reply_media == PROTOBUF:
                payload = encode_status(code, e.message, hint)
            else:
                payload = orjson.dumps({"code": code, "message": e.message})
            return web.Response(
                status=status, body=payload, content_type=reply_media, headers=headers
            )
        return self._success(reply_media, result)

    @staticmethod
    def _success(media: str, result: PushResult | None) -> web.Response:
        if media == PROTOBUF:
            body = result.response if result is not None else b""
        else:
            rejected = (
                result.invalid_trace_id
                + result.invalid_span_id
                + result.trace_too_large
                + result.live_traces_exceeded
                if result
                else 0
            )
            partial = (
                {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": result.message}}
                if result is not None and rejected
                else {}
            )
            body = orjson.dumps(partial)
        return web.Response(status=200, body=body, content_type=media)
