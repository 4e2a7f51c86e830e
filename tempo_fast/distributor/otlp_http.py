"""OTLP/HTTP receiver: ``POST /v1/traces`` with protobuf or JSON bodies, gzip allowed.

Bodies arrive raw (aiohttp's own decompression is off) so the Rust gunzip enforces the size
cap on the decompressed bytes. Errors answer with an OTLP ``google.rpc.Status`` in the
request's encoding.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from tempo_fast.config import OtlpHttpConfig
from tempo_fast.distributor.distributor import Distributor, PushResult, Refused

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ENCODINGS = {PROTOBUF: "protobuf", JSON: "json"}
# (HTTP status, google.rpc.Code) per refusal kind
_STATUS = {
    "invalid": (400, 3),
    "too_large": (413, 8),
    "unauthenticated": (401, 16),
    "unsupported_media": (415, 3),
    "overloaded": (503, 14),  # UNAVAILABLE: OTLP/HTTP clients retry 503, honouring Retry-After
    "unavailable": (503, 14),
}
RETRY_AFTER_SECONDS = "1"
_CHUNK = 1 << 16


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_status(code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` protobuf: field 1 int32 code, field 2 string message."""
    text = message.encode("utf-8")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


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
            gzip = self._content_encoding(request)
            body = await self._read_body(request)
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
            status, code = _STATUS[e.kind]
            if reply_media == PROTOBUF:
                payload = encode_status(code, e.message)
            else:
                payload = orjson.dumps({"code": code, "message": e.message})
            headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
            return web.Response(
                status=status, body=payload, content_type=reply_media, headers=headers
            )
        return self._success(reply_media, result)

    def _content_encoding(self, request: web.Request) -> bool:
        value = request.headers.get("Content-Encoding", "").strip().lower()
        if value in ("", "identity"):
            return False
        if value == "gzip":
            return True
        raise self._distributor.refuse(
            "unsupported_media",
            "unsupported_content_encoding",
            f"unsupported Content-Encoding {value!r}: use gzip or none",
        )

    async def _read_body(self, request: web.Request) -> bytes:
        too_large = f"request body larger than max_request_body_size ({self._max_bytes} bytes)"
        if request.content_length is not None and request.content_length > self._max_bytes:
            raise self._distributor.refuse("too_large", "too_large", too_large)
        chunks, size = [], 0
        async for chunk in request.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > self._max_bytes:
                raise self._distributor.refuse("too_large", "too_large", too_large)
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _success(media: str, result: PushResult | None) -> web.Response:
        if media == PROTOBUF:
            body = result.response if result is not None else b""
        else:
            rejected = result.invalid_trace_id + result.invalid_span_id if result else 0
            partial = (
                {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": result.message}}
                if result is not None and rejected
                else {}
            )
            body = orjson.dumps(partial)
        return web.Response(status=200, body=body, content_type=media)
