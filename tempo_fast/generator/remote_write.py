"""Prometheus remote write 1.0: a hand-written prompb encoder and a bounded async sender.

Encoding (:class:`SeriesEncoder`): each series' labels are encoded once (sorted byte-wise by
name, empty values omitted, ``__name__`` required) and cached by the caller; per interval only
the samples are encoded. Consecutive items with the same labels become one ``TimeSeries`` with
several samples (the 0 sample that starts a new series, then its value). Exemplars travel in
``TimeSeries`` field 3 with one label, ``traceID``. A native histogram sample is an item whose
value is the bytes of :meth:`SeriesEncoder.histogram` (``TimeSeries`` field 4).

Sending (:class:`RemoteWriter`): one per target (and tenant). ``submit`` compresses (snappy
block format) on the calling thread and queues without blocking; the queue is bounded in
compressed bytes, the oldest request (even one being retried) giving way. ``run`` sends the
requests in order, one at a time, retrying 5xx, 429 and connection errors with exponential
backoff (30 ms doubling to 5 s, or the Retry-After the receiver asks for); any other 4xx is
not retried: its samples are counted as failed and each status is logged once with the first
line of the response. ``close(timeout)`` flushes for at most ``timeout`` seconds and drops
(and counts) what is left.

Self-metrics (:class:`RemoteWriteMetrics`, labels ``tenant`` and ``url`` on every series; the
url without credentials), after Prometheus' ``prometheus_remote_storage_*``:

- ``tempo_metrics_generator_remote_write_samples_total{outcome}``: every submitted sample ends
  in one outcome: ``sent`` (2xx), ``failed`` (refused with a non-retryable status), ``dropped``
  (queue overflow, or still queued when the writer closed).
- ``tempo_metrics_generator_remote_write_dropped_samples_total{reason}``: the ``failed`` and
  ``dropped`` samples by reason: ``queue_full``, ``shutdown``, ``http_<status>``.
- ``tempo_metrics_generator_remote_write_samples_retried_total``: samples of attempts retried.
- ``tempo_metrics_generator_remote_write_requests_total{code}``: HTTP attempts by status code,
  ``error`` for connection errors and timeouts.
- ``tempo_metrics_generator_remote_write_sent_bytes_total``: compressed bytes delivered.
- ``tempo_metrics_generator_remote_write_queue_bytes``: compressed bytes waiting (gauge).
- ``tempo_metrics_generator_remote_write_request_duration_seconds``: one histogram per attempt.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import math
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import cramjam
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tempo_fast import __version__
from tempo_fast.config.tls import TlsSettings, ssl_context
from tempo_fast.pkg.log import get_logger
from tempo_fast.pkg.protowire import Writer, encode_varint

_log = get_logger("remote-write")

USER_AGENT = f"tempo-fast/{__version__}"
PROTOCOL_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": USER_AGENT,
}
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
"""Prometheus' stale marker: a series ended (compare bits, not values: it is a NaN)."""

# (trace id hex, value, timestamp ms)
Exemplar = tuple[str, float, int]
# (encoded labels from SeriesEncoder.labels, value, timestamp ms); the value is a float
# sample or an encoded native histogram (bytes from SeriesEncoder.histogram)
SeriesSample = tuple[bytes, float | bytes, int]

_PACK_D = struct.Struct("<d").pack
_MASK64 = (1 << 64) - 1
_PAIR_CACHE = 1 << 16
_SMALL_VARINTS: list[bytes] = []


def _varint(value: int) -> bytes:
    """Unsigned varint; values below 16384 (lengths) come from a table."""
    if value < 16384:
        if not _SMALL_VARINTS:
            _SMALL_VARINTS.extend(encode_varint(v) for v in range(16384))
        return _SMALL_VARINTS[value]
    return encode_varint(value)


def label_field(name: str, value: str) -> bytes:
    """``TimeSeries.labels`` (field 1): Label{1: name, 2: value}."""
    n, v = name.encode(), value.encode()
    label = b"\x0a" + _varint(len(n)) + n + b"\x12" + _varint(len(v)) + v
    return b"\x0a" + _varint(len(label)) + label


def _zigzag(n: int) -> int:
    return ((n << 1) ^ (n >> 63)) & _MASK64


def _valid_name(name: str) -> bool:
    return (
        bool(name) and name.isascii() and not name[0].isdigit() and name.replace("_", "a").isalnum()
    )


class SeriesEncoder:
    """Pre-encodes each series' labels once (sorted by name, empty values omitted,
    ``__name__`` included); per interval only samples are encoded.

    ``external_labels`` are merged into every series (a series' own label of the same name
    wins, as in Prometheus)."""

    def __init__(
        self,
        external_labels: Mapping[str, str] | None = None,
        exemplar_label: str = "traceID",
    ) -> None:
        self._external = dict(external_labels or {})
        self._pairs: dict[tuple[str, str], bytes] = {}  # (name, value) -> encoded Label field
        self._exemplar_name = exemplar_label

    def labels(self, labels: Sequence[tuple[str, str]]) -> bytes:
        """The ``TimeSeries.labels`` fields of one series; cache the result per series.

        Raises ValueError without ``__name__``, with a duplicate or invalid label name."""
        merged = dict(self._external)
        seen: set[str] = set()
        for name, value in labels:
            if name in seen:
                raise ValueError(f"duplicate label name {name!r}")
            seen.add(name)
            merged[name] = value
        if not merged.get("__name__"):
            raise ValueError("a series needs a non-empty __name__ label")
        cache = self._pairs
        parts = []
        for name in sorted(merged, key=str.encode):
            value = merged[name]
            if not value:
                continue  # empty = absent in Prometheus
            field_ = cache.get((name, value))
            if field_ is None:
                if not _valid_name(name):
                    raise ValueError(f"invalid label name {name!r}")
                if len(cache) >= _PAIR_CACHE:
                    cache.clear()  # bounded: label values may be of any cardinality
                field_ = cache[(name, value)] = label_field(name, value)
            parts.append(field_)
        return b"".join(parts)

    def exemplar(self, trace_id: str, value: float, timestamp_ms: int) -> bytes:
        """One encoded ``TimeSeries.exemplars`` field (label ``traceID``)."""
        label = Writer().string(1, self._exemplar_name).string(2, trace_id)
        ex = Writer().message(1, label).double(2, value, always=True)
        ex.uint(3, timestamp_ms, always=True)
        return bytes(Writer().message(3, ex))

    @staticmethod
    def histogram(
        count: int,
        total: float,
        schema: int,
        zero_threshold: float,
        zero_count: int,
        spans: Sequence[tuple[int, int]],
        deltas: Sequence[int],
    ) -> bytes:
        """A native histogram sample (prompb ``Histogram`` without its timestamp, which the
        request adds): integer counts, positive buckets only. ``spans`` are BucketSpan
        (offset, length) pairs, ``deltas`` the bucket counts delta-encoded (the first against
        0) across all spans, as Prometheus' ``positive_spans``/``positive_deltas``."""
        out = [
            b"\x08", _varint(count),  # 1 count_int (oneof: always written)
            b"\x19", _PACK_D(total),  # 3 sum
            b"\x20", _varint(_zigzag(schema)),  # 4 schema (sint32)
            b"\x29", _PACK_D(zero_threshold),  # 5 zero_threshold
            b"\x30", _varint(zero_count),  # 6 zero_count_int (oneof: always written)
        ]  # fmt: skip
        for offset, length in spans:  # 11 positive_spans: BucketSpan{1 sint32, 2 uint32}
            span = b"\x08" + _varint(_zigzag(offset)) + b"\x10" + _varint(length)
            out += (b"\x5a", _varint(len(span)), span)
        if deltas:  # 12 positive_deltas, packed sint64
            packed = b"".join(_varint(_zigzag(d)) for d in deltas)
            out += (b"\x62", _varint(len(packed)), packed)
        return b"".join(out)

    def request(
        self,
        series: Iterable[SeriesSample],
        exemplars: Mapping[bytes, Exemplar] | None = None,
    ) -> bytes:
        """A ``WriteRequest`` (uncompressed) of ``series``: (encoded labels, value, ms).

        Consecutive items with equal labels share one ``TimeSeries`` (their samples must be
        in timestamp order). ``exemplars`` maps encoded labels to the series' exemplar."""
        return b"".join(ts for ts, _ in self._timeseries(series, exemplars))

    def batches(
        self,
        series: Iterable[SeriesSample],
        exemplars: Mapping[bytes, Exemplar] | None = None,
        max_samples: int = 2000,
    ) -> Iterator[tuple[bytes, int]]:
        """``(WriteRequest, samples)`` pairs of at most ``max_samples`` samples each
        (Prometheus' ``max_samples_per_send``), a series never split across two."""
        parts: list[bytes] = []
        samples = 0
        for ts, n in self._timeseries(series, exemplars):
            if parts and samples + n > max_samples:
                yield b"".join(parts), samples
                parts, samples = [], 0
            parts.append(ts)
            samples += n
        if parts:
            yield b"".join(parts), samples

    def _timeseries(
        self,
        series: Iterable[SeriesSample],
        exemplars: Mapping[bytes, Exemplar] | None,
    ) -> Iterator[tuple[bytes, int]]:
        """Each ``WriteRequest.timeseries`` field, encoded, with its sample count."""
        varint = _varint
        pack = _PACK_D
        ts_cache: dict[int, tuple[bytes, bytes]] = {}
        current: bytes | None = None  # labels of the TimeSeries being built
        body: list[bytes] = []
        samples = 0
        for labels, value, ts in series:
            enc = ts_cache.get(ts)
            if enc is None:
                tail = b"\x10" + varint(ts & _MASK64)
                # Sample{1: double value, 2: int64 timestamp} as TimeSeries field 2
                enc = (b"\x12" + varint(9 + len(tail)) + b"\x09", tail)
                ts_cache[ts] = enc
            if labels is not current and labels != current:
                if current is not None:
                    yield self._close(current, body, exemplars), samples
                current, samples = labels, 0
                body = [labels]
            if value.__class__ is bytes:  # a native histogram: field 4, timestamp = field 15
                hist = value + b"\x78" + enc[1][1:]  # type: ignore[operator]
                body += (b"\x22", varint(len(hist)), hist)
            else:
                body += (enc[0], pack(value), enc[1])
            samples += 1
        if current is not None:
            yield self._close(current, body, exemplars), samples

    def _close(
        self, labels: bytes, body: list[bytes], exemplars: Mapping[bytes, Exemplar] | None
    ) -> bytes:
        if exemplars:
            ex = exemplars.get(labels)
            if ex is not None:
                body.append(self.exemplar(*ex))
        inner = b"".join(body)
        return b"\x0a" + _varint(len(inner)) + inner


@dataclass(frozen=True)
class RemoteWriteTarget:
    """One ``metrics_generator.storage.remote_write[]`` entry."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)  # + X-Scope-OrgID from the caller
    basic_auth: tuple[str, str] | None = None
    timeout: float = 30.0
    name: str = ""
    tls: TlsSettings | None = None

    @property
    def safe_url(self) -> str:
        """The url without credentials (for labels and logs)."""
        parts = urlsplit(self.url)
        if "@" not in parts.netloc:
            return self.url
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class RemoteWriteMetrics:
    """The sender's self-metrics (see the module docstring), on ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        prefix: str = "tempo_metrics_generator_remote_write",
    ) -> None:
        base = ["tenant", "url"]

        def counter(name: str, doc: str, *extra: str) -> Counter:
            return Counter(f"{prefix}_{name}", doc, [*base, *extra], registry=registry)

        self.samples = counter(
            "samples",
            "Samples submitted for remote write, by final outcome (sent, failed, dropped).",
            "outcome",
        )
        self.dropped = counter(
            "dropped_samples",
            "Samples not delivered, by reason (queue_full, shutdown, http_<status>).",
            "reason",
        )
        self.retried = counter("samples_retried", "Samples of remote-write attempts retried.")
        self.requests = counter(
            "requests", "Remote-write HTTP attempts by status code (error: no response).", "code"
        )
        self.sent_bytes = counter(
            "sent_bytes", "Compressed bytes of delivered remote-write requests."
        )
        self.queue_bytes = Gauge(
            f"{prefix}_queue_bytes",
            "Compressed bytes of remote-write requests waiting to be sent.",
            base,
            registry=registry,
        )
        self.duration = Histogram(
            f"{prefix}_request_duration_seconds",
            "Duration of one remote-write HTTP attempt.",
            base,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )


class _Request:
    __slots__ = ("body", "samples", "cancelled")

    def __init__(self, body: bytes, samples: int) -> None:
        self.body = body
        self.samples = samples
        self.cancelled = False  # pushed out of the queue while being sent


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class RemoteWriter:
    """Bounded async send queue for one target: snappy block format + protocol headers,
    retries of 5xx/429/connection errors with exponential backoff (``backoff_min`` doubling
    to ``backoff_max``, or Retry-After up to ``retry_after_max``), no retry of other 4xx;
    queue bounded in compressed bytes (oldest dropped, counted). Requests go out in
    submission order, one at a time (Prometheus rejects out-of-order samples)."""

    def __init__(
        self,
        target: RemoteWriteTarget,
        metrics: RemoteWriteMetrics,
        max_queue_bytes: int = 64 << 20,
        *,
        tenant: str = "",
        backoff_min: float = 0.03,
        backoff_max: float = 5.0,
        retry_after_max: float = 300.0,
    ) -> None:
        self.target = target
        self.max_queue_bytes = max_queue_bytes
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self._tenant = tenant
        url = target.safe_url
        base = (tenant, url)
        self._m = metrics
        self._base = base
        self._sent = metrics.samples.labels(*base, "sent")
        self._failed = metrics.samples.labels(*base, "failed")
        self._dropped = metrics.samples.labels(*base, "dropped")
        self._retried = metrics.retried.labels(*base)
        self._sent_bytes = metrics.sent_bytes.labels(*base)
        self._queue_gauge = metrics.queue_bytes.labels(*base)
        self._duration = metrics.duration.labels(*base)
        self._lock = threading.Lock()
        self._queue: collections.deque[_Request] = collections.deque()
        self._queued_bytes = 0
        self._inflight: _Request | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._done: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._close_at = math.inf  # loop time after which nothing is retried
        self._closed = False
        self._cancelled_by_close = False
        self._logged_status: set[int] = set()
        self._last_drop_log = -math.inf
        self._failing = False

    # -- producer side (any thread) --------------------------------------------------------

    def submit(self, payload: bytes, samples: int) -> None:
        """Queue one uncompressed ``WriteRequest`` of ``samples`` samples. Thread-safe, never
        blocks: compresses on the calling thread; pushes out the oldest when full."""
        body = bytes(cramjam.snappy.compress_raw(payload))
        if self._closed:
            self._drop(samples, "shutdown")
            return
        req = _Request(body, samples)
        overflow = 0
        with self._lock:
            if len(body) > self.max_queue_bytes:
                overflow = samples
            else:
                self._queue.append(req)
                self._queued_bytes += len(body)
                while self._queued_bytes > self.max_queue_bytes:
                    if self._inflight is not None and not self._inflight.cancelled:
                        # the oldest is the one being sent: the sender counts its outcome
                        self._inflight.cancelled = True
                        self._queued_bytes -= len(self._inflight.body)
                        continue
                    old = self._queue.popleft()
                    self._queued_bytes -= len(old.body)
                    overflow += old.samples
            queued = self._queued_bytes
        self._queue_gauge.set(queued)
        if overflow:
            self._drop(overflow, "queue_full")
        self._notify()

    def _notify(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed
            loop.call_soon_threadsafe(wake.set)

    def _drop(self, samples: int, reason: str) -> None:
        outcome = self._failed if reason.startswith("http_") else self._dropped
        outcome.inc(samples)
        self._m.dropped.labels(*self._base, reason).inc(samples)
        if reason.startswith("http_"):
            return  # logged once per status by the sender
        now = time.monotonic()
        if now - self._last_drop_log >= 30.0:
            self._last_drop_log = now
            _log.warn(
                "remote write dropped samples",
                url=self.target.safe_url,
                tenant=self._tenant,
                reason=reason,
                samples=samples,
            )

    @property
    def queued_bytes(self) -> int:
        """Compressed bytes waiting (the request being sent included until it ends)."""
        return self._queued_bytes

    # -- sender (event loop) ---------------------------------------------------------------

    async def run(self) -> None:
        """The sender loop; returns once :meth:`close` has flushed (or given up)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._task = asyncio.current_task()
        headers = {**self.target.headers, **PROTOCOL_HEADERS}
        if self.target.basic_auth:
            headers["Authorization"] = aiohttp.encode_basic_auth(*self.target.basic_auth)
        timeout = aiohttp.ClientTimeout(total=self.target.timeout)
        tls = self.target.tls
        connector = aiohttp.TCPConnector(ssl=ssl_context(tls)) if tls else None
        try:
            async with aiohttp.ClientSession(
                headers=headers, timeout=timeout, auto_decompress=False, connector=connector
            ) as session:
                while True:
                    with self._lock:
                        req = self._queue.popleft() if self._queue else None
                        self._inflight = req
                    if req is None:
                        if self._closing:
                            break
                        await self._wake.wait()
                        self._wake.clear()
                        continue
                    try:
                        await self._send(session, req)
                    except asyncio.CancelledError:  # close's deadline, or the owner
                        self._drop(req.samples, "queue_full" if req.cancelled else "shutdown")
                        raise
                    finally:
                        with self._lock:
                            self._inflight = None
                            if not req.cancelled:
                                self._queued_bytes -= len(req.body)
                            queued = self._queued_bytes
                        self._queue_gauge.set(queued)
        except asyncio.CancelledError:
            if not self._cancelled_by_close:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # close gave up on the flush: a normal end for the owner
        finally:
            self._done.set()

    async def _send(self, session: aiohttp.ClientSession, req: _Request) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            if req.cancelled:
                self._drop(req.samples, "queue_full")
                return
            if loop.time() >= self._close_at:
                self._drop(req.samples, "shutdown")
                return
            status, retry_after, reason = await self._attempt(session, req.body)
            if status is not None and 200 <= status < 300:
                self._sent.inc(req.samples)
                self._sent_bytes.inc(len(req.body))
                if self._failing:
                    self._failing = False
                    _log.info("remote write recovered", url=self.target.safe_url)
                return
            if status is not None and status != 429 and not 500 <= status < 600:
                self._refused(status, reason, req.samples)
                return
            if req.cancelled:
                self._drop(req.samples, "queue_full")
                return
            if retry_after is not None:
                delay = min(retry_after, self.retry_after_max)
            else:
                delay = min(self.backoff_max, self.backoff_min * 2**attempt)
            attempt += 1
            if not self._failing:
                self._failing = True
                _log.warn(
                    "remote write failed, retrying",
                    url=self.target.safe_url,
                    tenant=self._tenant,
                    status=status if status is not None else "error",
                    err=reason,
                    retry_in=round(delay, 3),
                )
            if loop.time() + delay >= self._close_at:
                self._drop(req.samples, "shutdown")
                return
            self._retried.inc(req.samples)
            await self._sleep(delay, req)

    async def _attempt(
        self, session: aiohttp.ClientSession, body: bytes
    ) -> tuple[int | None, float | None, str]:
        """One POST: (status or None, Retry-After seconds, first line of an error body)."""
        t0 = time.perf_counter()
        try:
            tls = self.target.tls
            server_name = tls.server_name if tls and tls.server_name else None
            async with session.post(
                self.target.url, data=body, server_hostname=server_name
            ) as resp:
                status = resp.status
                text = ""
                if status >= 300:
                    raw = await resp.content.read(4096)
                    text = raw.decode("utf-8", "replace").strip().split("\n", 1)[0]
                else:
                    await resp.read()
                retry = _retry_after(resp.headers.get("Retry-After")) if status >= 429 else None
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            self._m.requests.labels(*self._base, "error").inc()
            self._duration.observe(time.perf_counter() - t0)
            return None, None, repr(e)
        self._duration.observe(time.perf_counter() - t0)
        self._m.requests.labels(*self._base, str(status)).inc()
        return status, retry, text

    def _refused(self, status: int, reason: str, samples: int) -> None:
        self._drop(samples, f"http_{status}")
        if status not in self._logged_status:
            self._logged_status.add(status)
            _log.error(
                "remote write refused, not retried",
                url=self.target.safe_url,
                tenant=self._tenant,
                status=status,
                body=reason,
            )

    async def _sleep(self, delay: float, req: _Request) -> None:
        """Wait ``delay`` seconds, or less when the request is pushed out or close starts."""
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + delay
        while not req.cancelled and not self._closing:
            remaining = end - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return
        if req.cancelled or loop.time() >= end:
            return
        # closing: keep retrying until the close deadline, no longer
        remaining = min(end, self._close_at) - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def close(self, deadline: float) -> None:
        """Flush what is queued for at most ``deadline`` seconds, then stop: what is left is
        dropped (counted, reason ``shutdown``). Later submissions are dropped the same way."""
        loop = asyncio.get_running_loop()
        self._closing = True
        self._close_at = loop.time() + deadline
        if self._task is None:
            await asyncio.sleep(0)  # a run() task created just before gets to start
        if self._task is not None and self._done is not None and not self._done.is_set():
            self._notify()
            try:
                await asyncio.wait_for(asyncio.shield(self._done.wait()), deadline)
            except TimeoutError:
                self._cancelled_by_close = True
                self._task.cancel()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._done.wait(), 5.0)
        self._closed = True
        with self._lock:
            left = list(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
        samples = sum(r.samples for r in left)
        self._queue_gauge.set(0)
        if samples:
            self._drop(samples, "shutdown")
