"""Request bodies of the HTTP receivers: Content-Encoding and a size-capped read.

Bodies arrive raw (aiohttp's own decompression is off) so the Rust gunzip enforces the size
cap on the decompressed bytes too.
"""

from __future__ import annotations

from aiohttp import web

from tempo_fast.distributor.distributor import Distributor, Refused

_CHUNK = 1 << 16
# (HTTP status) per refusal kind, shared by every HTTP receiver
HTTP_STATUS = {
    "invalid": 400,
    "too_large": 413,
    "unauthenticated": 401,
    "unsupported_media": 415,
    "overloaded": 503,  # clients retry 503 and 429, honouring Retry-After
    "unavailable": 503,
    "rate_limited": 429,
}


def retry_headers(status: int, retry_after: float = 1.0) -> dict[str, str] | None:
    """``Retry-After`` (whole seconds, at least 1) on 429 and 503 answers."""
    if status not in (429, 503):
        return None
    return {"Retry-After": str(max(1, round(retry_after)))}


def gzipped(distributor: Distributor, request: web.Request) -> bool:
    """Whether the body is gzip (``Content-Encoding``); refuse any other encoding."""
    value = request.headers.get("Content-Encoding", "").strip().lower()
    if value in ("", "identity"):
        return False
    if value == "gzip":
        return True
    raise distributor.refuse(
        "unsupported_media",
        "unsupported_content_encoding",
        f"unsupported Content-Encoding {value!r}: use gzip or none",
    )


def refusal(e: Refused) -> web.Response:
    """The plain-text answer to a refused push (Zipkin and Jaeger receivers)."""
    status = HTTP_STATUS[e.kind]
    return web.Response(status=status, text=e.message, headers=retry_headers(status, e.retry_after))


async def push_request(
    distributor: Distributor, request: web.Request, *, encoding: str, max_bytes: int, receiver: str
) -> None:
    """Read the body (gzip allowed, capped at ``max_bytes``) and push it for the request's
    tenant; an empty body pushes nothing. Raises :class:`Refused`."""
    gzip = gzipped(distributor, request)
    body = await read_body(distributor, request, max_bytes, "max_request_body_size")
    if body:
        await distributor.push_async(
            request.headers.get("X-Scope-OrgID"),
            body,
            encoding=encoding,
            gzip=gzip,
            max_bytes=max_bytes,
            transport="http",
            receiver=receiver,
        )


async def read_body(
    distributor: Distributor, request: web.Request, max_bytes: int, setting: str
) -> bytes:
    """The whole body, refused as too large past ``max_bytes`` (named ``setting``)."""
    too_large = f"request body larger than {setting} ({max_bytes} bytes)"
    if request.content_length is not None and request.content_length > max_bytes:
        raise distributor.refuse("too_large", "too_large", too_large)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise distributor.refuse("too_large", "too_large", too_large)
        chunks.append(chunk)
    return b"".join(chunks)
