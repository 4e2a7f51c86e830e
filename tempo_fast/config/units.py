"""Go-syntax durations (``5s``, ``1h30m``, ``500ms``) and byte sizes (``500MB``, ``100KiB``)."""

from __future__ import annotations

import re

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_PART = re.compile(r"(\d+(?:\.\d*)?)\s*([kmgt]i?b|b)?", re.IGNORECASE)


def parse_duration(value: object) -> float:
    """Seconds in a Go duration string (``1h30m``, ``500ms``, ``0``)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value == 0:
            return 0.0
        raise ValueError(f"duration {value!r} needs a unit: use Go syntax such as 30s, 5m, 500ms")
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration")
    text = value.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match:
            raise ValueError(
                f"{value!r} is not a duration: use Go syntax such as 30s, 5m, 1h30m, 500ms"
            )
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not text:
        raise ValueError("empty duration")
    return total


def parse_size(value: object) -> int:
    """Bytes in an int or a size string (``500MB`` = 500·10⁶, ``100KiB`` = 102400, ``1MiB512B``)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size {value} is negative")
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a size")
    text = value.strip()
    pos, total = 0, 0.0
    while pos < len(text):
        match = _SIZE_PART.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"{value!r} is not a size: use bytes or e.g. 500MB, 100KiB, 1GiB")
        total += float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()]
        pos = match.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return int(total)
