"""``google.rpc.Status`` bytes, optionally carrying a ``google.rpc.RetryInfo`` detail.

The OTLP/HTTP receiver answers errors with this message; the gRPC receivers send it as
``grpc-status-details-bin`` so exporters see the retry hint of a RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

RETRY_INFO_TYPE = b"type.googleapis.com/google.rpc.RetryInfo"
DETAILS_KEY = "grpc-status-details-bin"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def retry_info(seconds: float) -> bytes:
    """``RetryInfo{retry_delay: Duration{seconds, nanos}}``."""
    whole = int(seconds)
    nanos = round((seconds - whole) * 1e9)
    duration = (b"\x08" + _varint(whole) if whole else b"") + (
        b"\x10" + _varint(nanos) if nanos else b""
    )
    return _field(1, duration)


def encode_status(code: int, message: str, retry_after: float | None = None) -> bytes:
    """``Status{code=1, message=2, details=3 (Any)}``; a RetryInfo detail with ``retry_after``."""
    out = b"\x08" + _varint(code) + _field(2, message.encode("utf-8"))
    if retry_after is not None:
        any_ = _field(1, RETRY_INFO_TYPE) + _field(2, retry_info(retry_after))
        out += _field(3, any_)
    return out
