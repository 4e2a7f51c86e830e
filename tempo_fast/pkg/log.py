"""Structured logging in Tempo's style (logfmt by default, or JSON), quiet unless asked.

At ``info`` only start-up, shutdown and errors are logged; per-request lines are ``debug``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

import orjson

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_ROOT = "tempo_fast"


def _logfmt_value(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and not any(c in text for c in ' "=\\\n\t') and text.isprintable():
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _timestamp(record: logging.LogRecord) -> str:
    ms = int(record.msecs)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{ms:03d}Z"


def _record_fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "level": record.levelname.lower().replace("warning", "warn"),
        "ts": _timestamp(record),
        "component": record.name.removeprefix(_ROOT + ".") if record.name != _ROOT else "main",
        "msg": record.getMessage(),
    }
    fields.update(getattr(record, "fields", {}))
    if record.exc_info and record.exc_info[1] is not None:
        fields["err"] = repr(record.exc_info[1])
    return fields


class LogfmtFormatter(logging.Formatter):
    """``level=info ts=… component=… msg="…" key=value`` lines."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _record_fields(record).items())


class JSONFormatter(logging.Formatter):
    """One JSON object per line, same fields as logfmt."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(_record_fields(record), default=str).decode()


class Logger:
    """A component logger taking structured fields: ``log.info("msg", key=value)``."""

    def __init__(self, component: str) -> None:
        self._logger = logging.getLogger(f"{_ROOT}.{component}")

    def _log(self, level: int, msg: str, fields: dict[str, Any], exc: bool = False) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, msg, extra={"fields": fields}, exc_info=exc)

    def debug(self, msg: str, **fields: Any) -> None:
        self._log(logging.DEBUG, msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._log(logging.INFO, msg, fields)

    def warn(self, msg: str, **fields: Any) -> None:
        self._log(logging.WARNING, msg, fields)

    def error(self, msg: str, exc: bool = False, **fields: Any) -> None:
        self._log(logging.ERROR, msg, fields, exc)

    def enabled(self, level: str) -> bool:
        return self._logger.isEnabledFor(LEVELS[level])


def get_logger(component: str) -> Logger:
    return Logger(component)


def setup(level: str = "info", fmt: str = "logfmt", stream: TextIO | None = None) -> None:
    """Send tempo-fast's logs to ``stream`` (stderr) at ``level`` in ``fmt`` (logfmt|json)."""
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    if fmt not in ("logfmt", "json"):
        raise ValueError(f"unknown log format {fmt!r}: use logfmt or json")
    root = logging.getLogger(_ROOT)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else LogfmtFormatter())
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    root.propagate = False
