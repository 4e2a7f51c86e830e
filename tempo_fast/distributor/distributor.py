"""The shared push path of every receiver: resolve the tenant, hand the whole body to the
ingester, count.

The ingester client decodes and validates in Rust (GIL released) and returns counts; nothing
here looks at individual spans.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol

from tempo_fast.pkg import tenant as tenants
from tempo_fast.pkg.log import get_logger
from tempo_fast.pkg.metrics import Metrics

Kind = Literal[
    "invalid",
    "too_large",
    "unauthenticated",
    "unsupported_media",
    "overloaded",
    "unavailable",
    "rate_limited",
]
RECEIVER = "otlp"
# refusal kind per reason_code; every other reason is bad input
_KINDS: dict[str, Kind] = {
    "too_large": "too_large",
    "overloaded": "overloaded",
    "rate_limited": "rate_limited",
}
# spans dropped from an accepted push, by tempo_discarded_spans_total reason
_DISCARDED = ("invalid_trace_id", "invalid_span_id", "trace_too_large", "live_traces_exceeded")
_SCOPES = ("resource", "scope", "span", "event", "link")
_log = get_logger("distributor")
# Request bytes queued for or inside the push pool at most; past it, pushes are refused at
# once (503, retry later) so a flood cannot grow memory without bound.
MAX_INFLIGHT_BYTES = 256 << 20
# Smaller bodies (not gzip) are pushed on the event loop's own thread when the ingester can
# take them without waiting: a thread hand-off costs more than the push itself.
INLINE_MAX_BYTES = 64 << 10


class PushResult(Protocol):
    """What ``Ingester.push`` returns (see ``tempo_fast._core.PushResult``)."""

    accepted: int
    invalid_trace_id: int
    invalid_span_id: int
    trace_too_large: int
    live_traces_exceeded: int
    truncated: tuple[int, int, int, int, int]
    message: str
    response: bytes
    lag_seconds: bytes
    batch: Any  # the accepted spans (SpanBatch) for the metrics-generator, or None


class IngesterClient(Protocol):
    """The ingester as the distributor sees it: in-process now, a gRPC client when split."""

    def push(
        self,
        tenant: str,
        body: bytes,
        encoding: str = "protobuf",
        gzip: bool = False,
        max_bytes: int = 20 << 20,
    ) -> PushResult: ...

    def try_push(
        self,
        tenant: str,
        body: bytes,
        encoding: str = "protobuf",
        gzip: bool = False,
        max_bytes: int = 20 << 20,
    ) -> PushResult | None:
        """``push`` that returns None instead of waiting for room (nothing appended)."""
        ...


class Refused(Exception):
    """A push refused whole. ``reason`` is the metric label, ``kind`` picks the status code,
    ``retry_after`` (seconds) is the hint a retryable refusal carries."""

    def __init__(self, kind: Kind, reason: str, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.kind = kind
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class Distributor:
    """Receives whole OTLP requests from the receivers and pushes them to the ingester."""

    def __init__(
        self,
        ingester: IngesterClient,
        metrics: Metrics,
        multitenancy: bool,
        workers: int | None = None,
        retry_after: float = 1.0,
        max_inflight_bytes: int = MAX_INFLIGHT_BYTES,
        inline_max_bytes: int = INLINE_MAX_BYTES,
        forward: Callable[[str, Any], None] | None = None,
    ) -> None:
        self._ingester = ingester
        # the metrics-generator's queue: (tenant, accepted spans); must not block
        self._forward = forward
        self._metrics = metrics
        self._multitenancy = multitenancy
        self._retry_after = retry_after
        self._max_inflight = max_inflight_bytes
        self._inline_max = inline_max_bytes
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max_workers=workers or min(32, 4 * (os.cpu_count() or 1)),
            thread_name_prefix="push",
        )

    def refuse(self, kind: Kind, reason: str, message: str) -> Refused:
        """Count a whole-request refusal and return the exception to raise."""
        self._metrics.requests_refused.labels(reason).inc()
        _log.debug("push refused", reason=reason, err=message)
        return Refused(kind, reason, message, self._retry_after)

    def push(
        self,
        tenant_header: str | None,
        body: bytes,
        *,
        encoding: str,
        gzip: bool,
        max_bytes: int,
        transport: str,
        receiver: str = RECEIVER,
    ) -> PushResult:
        """Push one request (blocking until it is in the WAL); raise :class:`Refused`."""
        result = self._push(
            self._ingester.push, tenant_header, body, encoding, gzip, max_bytes, receiver, transport
        )
        assert result is not None
        return result

    def _push(
        self,
        call: Callable[[str, bytes, str, bool, int], PushResult | None],
        tenant_header: str | None,
        body: bytes,
        encoding: str,
        gzip: bool,
        max_bytes: int,
        receiver: str,
        transport: str,
    ) -> PushResult | None:
        """Resolve the tenant, ``call`` the ingester, count; None when ``call`` declined."""
        try:
            tenant = tenants.resolve(tenant_header, self._multitenancy)
        except tenants.TenantError as e:
            kind: Kind = "unauthenticated" if e.missing else "invalid"
            raise self.refuse(kind, "invalid_tenant", e.reason) from None
        try:
            result = call(tenant, body, encoding, gzip, max_bytes)
        except OSError as e:  # the WAL append failed (disk full, I/O error): nothing was acked
            _log.error("push failed", tenant=tenant, err=str(e))
            raise self.refuse("unavailable", "wal_append_failed", f"{e}; retry later") from None
        except (ValueError, RuntimeError) as e:
            # _core.DecodeError / TooLargeError / OverloadedError carry reason_code
            reason = getattr(e, "reason_code", None)
            if reason is None:
                raise
            if reason == "rate_limited":
                self._metrics.discarded_spans.labels(tenant, reason).inc(getattr(e, "spans", 0))
            raise self.refuse(_KINDS.get(reason, "invalid"), reason, str(e)) from None
        if result is not None:
            self._count(tenant, len(body), result, receiver, transport)
            if self._forward is not None and result.accepted:
                self._forward(tenant, result.batch)
        return result

    async def push_async(
        self,
        tenant_header: str | None,
        body: bytes,
        *,
        encoding: str,
        gzip: bool,
        max_bytes: int,
        transport: str,
        receiver: str = RECEIVER,
    ) -> PushResult:
        """:meth:`push` on the distributor's thread pool (small bodies right here, when the
        ingester takes them without waiting); refused as overloaded when the requests in
        flight already hold ``max_inflight_bytes``."""
        size = len(body)
        if size <= self._inline_max and not gzip:
            result = self._push(
                self._ingester.try_push,
                tenant_header,
                body,
                encoding,
                gzip,
                max_bytes,
                receiver,
                transport,
            )
            if result is not None:
                return result
        with self._inflight_lock:
            # one request alone may exceed the bound; it just cannot join others past it
            full = bool(self._inflight) and self._inflight + size > self._max_inflight
            if not full:
                self._inflight += size
        if full:
            raise self.refuse(
                "overloaded",
                "overloaded",
                f"distributor busy: {self._max_inflight} bytes of requests in flight; retry later",
            )
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._pool,
                lambda: self.push(
                    tenant_header,
                    body,
                    encoding=encoding,
                    gzip=gzip,
                    max_bytes=max_bytes,
                    transport=transport,
                    receiver=receiver,
                ),
            )
        finally:
            with self._inflight_lock:
                self._inflight -= size

    def close(self) -> None:
        """Wait for in-flight pushes, then release the thread pool."""
        self._pool.shutdown(wait=True)

    def _count(
        self, tenant: str, size: int, result: PushResult, receiver: str, transport: str
    ) -> None:
        m = self._metrics
        dropped = {reason: getattr(result, reason) for reason in _DISCARDED}
        rejected = sum(dropped.values())
        m.spans_received.labels(tenant).inc(result.accepted + rejected)
        m.bytes_received.labels(tenant).inc(size)
        m.receiver_accepted.labels(receiver, transport).inc(result.accepted)
        if rejected:
            m.receiver_refused.labels(receiver, transport).inc(rejected)
            for reason, count in dropped.items():
                if count:
                    m.discarded_spans.labels(tenant, reason).inc(count)
            _log.debug("spans discarded", tenant=tenant, err=result.message)
        if any(result.truncated):
            for scope, count in zip(_SCOPES, result.truncated, strict=True):
                if count:
                    m.attributes_truncated.labels(tenant, scope).inc(count)
        m.ingestion_lag.observe_buffer((tenant,), result.lag_seconds)
