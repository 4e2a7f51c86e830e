"""Trace id parsing: 1–32 hex characters, left-padded with zeros to 16 bytes (as Tempo does)."""

from __future__ import annotations

_HEX = frozenset("0123456789abcdefABCDEF")


class TraceIDError(ValueError):
    """The trace id is not 1–32 hex characters, or is all zeros."""


def parse(text: str) -> bytes:
    """Return the 16-byte trace id spelled by ``text`` or raise :class:`TraceIDError`."""
    if not text:
        raise TraceIDError("trace id is empty")
    if len(text) > 32:
        raise TraceIDError(f"trace id is {len(text)} hex characters long, at most 32")
    if not _HEX.issuperset(text):
        raise TraceIDError("trace id has characters that are not hex digits")
    raw = bytes.fromhex(text.rjust(32, "0"))
    if not any(raw):
        raise TraceIDError("trace id is all zeros")
    return raw
