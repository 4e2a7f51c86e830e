"""Stand-ins for the Rust core (``tempo_fast._core``) used by the control-plane unit tests.

They are NOT the real decoder, WAL or block reader: the Rust core has its own tests, and the
integrator's end-to-end tests run the built extension. These fakes only follow the documented
call surface (``tempo_fast/_core.pyi``) so the HTTP/gRPC/config layers can be tested alone.

Fake body format: ``BAD`` prefix -> DecodeError; ``BUSY`` prefix -> OverloadedError;
``DISKFULL`` prefix -> OSError (a failed WAL append);
otherwise each ``S`` is an accepted span,
each ``T`` a span with an invalid trace id, each ``P`` one with an invalid span id.
"""

from __future__ import annotations

import array
import gzip as gzip_module
import threading
from dataclasses import dataclass, field
from typing import Any

from tempo_fast.app import Core


class FakeDecodeError(ValueError):
    """Mirrors ``_core.DecodeError``: a ValueError with ``reason_code``."""

    def __init__(self, message: str, reason_code: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class FakeTooLargeError(FakeDecodeError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "too_large")


class FakeOverloadedError(RuntimeError):
    """Mirrors ``_core.OverloadedError`` (backpressure): a RuntimeError with ``reason_code``."""

    reason_code = "overloaded"


class FakeRateLimitedError(RuntimeError):
    """Mirrors ``_core.RateLimitedError``: ``reason_code`` and the refused ``spans``."""

    reason_code = "rate_limited"

    def __init__(self, message: str, spans: int) -> None:
        super().__init__(message)
        self.spans = spans


@dataclass
class FakePushResult:
    accepted: int
    invalid_trace_id: int
    invalid_span_id: int
    message: str
    response: bytes
    lag_seconds: bytes
    trace_too_large: int = 0
    live_traces_exceeded: int = 0
    truncated: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)


@dataclass
class FakeIngester:
    wal_path: str
    config: dict[str, object]
    pushes: list[tuple[str, bytes, str, bool, int]] = field(default_factory=list)
    traces: dict[tuple[str, bytes], str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    blocks_flushed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    replay_gate: threading.Event | None = None  # when set, replay waits for it
    limits: tuple[dict[str, int], dict[str, dict[str, int]]] | None = None

    def replay(self) -> dict[str, int]:
        self.calls.append("replay")
        if self.replay_gate is not None:
            self.replay_gate.wait(timeout=10)
        return {"segments": 1, "records": 2, "spans": 3, "torn_bytes": 0}

    def start(self) -> None:
        self.calls.append("start")

    def push(
        self,
        tenant: str,
        body: bytes,
        encoding: str = "protobuf",
        gzip: bool = False,
        max_bytes: int = 20 << 20,
    ) -> FakePushResult:
        if gzip:
            try:
                body = gzip_module.decompress(body)
            except (OSError, EOFError) as e:
                raise FakeDecodeError(f"gzip: {e}", "invalid_gzip") from None
        if len(body) > max_bytes:
            raise FakeTooLargeError(f"body of {len(body)} bytes exceeds {max_bytes}")
        if body.startswith(b"DISKFULL"):
            raise OSError(28, "write-ahead log append failed: No space left on device")
        if body.startswith(b"BUSY"):
            raise FakeOverloadedError("ingester overloaded: retry later")
        if body.startswith(b"LIMITED"):
            raise FakeRateLimitedError("RATE_LIMITED: ingestion rate limit", body.count(b"S"))
        if body.startswith(b"BAD"):
            reason = "invalid_json" if encoding in ("json", "zipkin_json") else "invalid_protobuf"
            raise FakeDecodeError(f"cannot decode {encoding} body", reason)
        with self.lock:
            self.pushes.append((tenant, body, encoding, gzip, max_bytes))
        accepted, bad_trace, bad_span = body.count(b"S"), body.count(b"T"), body.count(b"P")
        rejected = bad_trace + bad_span
        message = f"{rejected} spans rejected" if rejected else ""
        return FakePushResult(
            accepted=accepted,
            invalid_trace_id=bad_trace,
            invalid_span_id=bad_span,
            message=message,
            response=f"partial:{rejected}".encode() if rejected else b"",
            lag_seconds=array.array("d", [0.5] * accepted).tobytes(),
        )

    def try_push(
        self,
        tenant: str,
        body: bytes,
        encoding: str = "protobuf",
        gzip: bool = False,
        max_bytes: int = 20 << 20,
    ) -> FakePushResult | None:
        """As the core: None where ``push`` would wait for room (BUSY here)."""
        if body.startswith(b"BUSY"):
            return None
        self.calls.append("try_push")
        return self.push(tenant, body, encoding, gzip, max_bytes)

    def set_limits(self, defaults: dict[str, int], tenants: dict[str, dict[str, int]]) -> None:
        self.limits = (defaults, tenants)

    def find_trace(self, tenant: str, trace_id: bytes) -> str | None:
        return self.traces.get((tenant, trace_id))

    def flush(self) -> None:
        self.calls.append("flush")
        self.blocks_flushed += 1

    def stats(self) -> dict[str, Any]:
        return {
            "tenants": {"single-tenant": {"live_traces": 2, "wal_records": len(self.pushes)}},
            "global": {"blocks_flushed": self.blocks_flushed, "wal_fsyncs": 1},
        }

    def close(self) -> None:
        self.calls.append("close")


@dataclass
class FakeBlockStore:
    path: str
    traces: dict[tuple[str, bytes], str] = field(default_factory=dict)
    polls: int = 0

    def poll(self) -> dict[str, int]:
        self.polls += 1
        return {"single-tenant": len(self.traces)}

    def find_trace(self, tenant: str, trace_id: bytes) -> tuple[str | None, dict[str, int]]:
        stats = {"blocks_checked": 1, "blocks_read": 1, "bytes_read": 100, "reads": 1}
        return self.traces.get((tenant, trace_id)), stats

    def open_failures(self) -> int:
        return 0


def fake_render(parts: list[Any], fmt: str, inspected_bytes: int = 0) -> bytes | None:
    """Renders parts as ``fmt|part,part|inspected`` so tests can see what was merged."""
    if not parts:
        return None
    return f"{fmt}|{','.join(parts)}|{inspected_bytes}".encode()


@dataclass
class FakeCore:
    """Builds fakes and remembers them, so tests can look inside."""

    ingester: FakeIngester | None = None
    block_store: FakeBlockStore | None = None
    replay_gate: threading.Event | None = None

    def core(self) -> Core:
        def make_ingester(wal_path: str, config: dict[str, object]) -> FakeIngester:
            self.ingester = FakeIngester(wal_path, config, replay_gate=self.replay_gate)
            return self.ingester

        def make_block_store(path: str) -> FakeBlockStore:
            self.block_store = FakeBlockStore(path)
            return self.block_store

        return Core(make_ingester, make_block_store, fake_render)
