"""A minimal protobuf wire-format reader and writer (no generated code).

Enough for the few small messages Python encodes or decodes itself (the streaming search
RPC's request and responses); span data never goes through here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT, I64, LEN, I32 = 0, 1, 2, 5
_MASK64 = (1 << 64) - 1


class DecodeError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def encode_varint(value: int) -> bytes:
    """A base-128 varint (a negative int64 as its two's complement: ten bytes)."""
    value &= _MASK64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_varint = encode_varint


class Writer:
    """Appends fields to a message; ``bytes(w)`` is the encoding."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def __bytes__(self) -> bytes:
        return bytes(self._buf)

    def __len__(self) -> int:
        return len(self._buf)

    def uint(self, field: int, value: int, *, always: bool = False) -> Writer:
        """A varint field (uint32/uint64/int64/bool); zero is omitted unless ``always``."""
        if value or always:
            self._buf += _varint(field << 3 | VARINT)
            self._buf += _varint(value)
        return self

    def double(self, field: int, value: float, *, always: bool = False) -> Writer:
        if value or always:
            self._buf += _varint(field << 3 | I64)
            self._buf += struct.pack("<d", value)
        return self

    def bytes_(self, field: int, value: bytes, *, always: bool = False) -> Writer:
        """A length-delimited field (bytes, or an encoded sub-message)."""
        if value or always:
            self._buf += _varint(field << 3 | LEN)
            self._buf += _varint(len(value))
            self._buf += value
        return self

    def string(self, field: int, value: str, *, always: bool = False) -> Writer:
        return self.bytes_(field, value.encode("utf-8"), always=always)

    def raw(self, data: bytes) -> Writer:
        """Append already-encoded fields."""
        self._buf += data
        return self

    def message(self, field: int, value: Writer | bytes) -> Writer:
        """A sub-message field, written even when empty (it is present)."""
        return self.bytes_(field, bytes(value), always=True)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise DecodeError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("varint longer than 10 bytes")


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field number, wire type, value)``: an int for varint and fixed-width
    fields (their raw little-endian bits), bytes for length-delimited ones."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise DecodeError("field number 0")
        value: int | bytes
        if wire == VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == LEN:
            size, pos = _read_varint(data, pos)
            if pos + size > end:
                raise DecodeError(f"field {field}: length {size} past the end")
            value, pos = data[pos : pos + size], pos + size
        elif wire in (I64, I32):
            width = 8 if wire == I64 else 4
            if pos + width > end:
                raise DecodeError(f"field {field}: truncated fixed-width value")
            value, pos = int.from_bytes(data[pos : pos + width], "little"), pos + width
        else:
            raise DecodeError(f"field {field}: unsupported wire type {wire}")
        yield field, wire, value
