"""Remote write: the prompb encoding (decoded by an independent protobuf decoder), delivery to
a real Prometheus read back with PromQL, and the sender's retries, drops and bounded queue.

The fault cases use a tiny aiohttp server that stands in for a faulty receiver (a real
Prometheus cannot be told to answer 503, 400 or 429 on demand)."""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import cramjam
import pytest
from aiohttp import web
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from tempo_fast.generator.remote_write import (
    STALE_NAN,
    RemoteWriteMetrics,
    RemoteWriter,
    RemoteWriteTarget,
    SeriesEncoder,
)
from tests.prometheus import Prometheus
from tests.server import free_port

# -- an independent decoder: prompb's messages built from descriptors ----------------------


def _prompb() -> Any:
    f = descriptor_pb2.FileDescriptorProto(name="tf_test_prompb.proto", package="tftest")
    f.syntax = "proto3"
    T = descriptor_pb2.FieldDescriptorProto

    def msg(name: str, *fields: tuple[str, int, int, str | None, bool]) -> None:
        m = f.message_type.add(name=name)
        for fname, number, ftype, type_name, repeated in fields:
            fd = m.field.add(name=fname, number=number, type=ftype)
            fd.label = T.LABEL_REPEATED if repeated else T.LABEL_OPTIONAL
            if type_name:
                fd.type_name = f".tftest.{type_name}"

    msg("Label", ("name", 1, T.TYPE_STRING, None, False), ("value", 2, T.TYPE_STRING, None, False))
    msg(
        "Sample",
        ("value", 1, T.TYPE_DOUBLE, None, False),
        ("timestamp", 2, T.TYPE_INT64, None, False),
    )
    msg(
        "Exemplar",
        ("labels", 1, T.TYPE_MESSAGE, "Label", True),
        ("value", 2, T.TYPE_DOUBLE, None, False),
        ("timestamp", 3, T.TYPE_INT64, None, False),
    )
    msg(
        "BucketSpan",
        ("offset", 1, T.TYPE_SINT32, None, False),
        ("length", 2, T.TYPE_UINT32, None, False),
    )
    msg(
        "Histogram",
        ("count_int", 1, T.TYPE_UINT64, None, False),
        ("count_float", 2, T.TYPE_DOUBLE, None, False),
        ("sum", 3, T.TYPE_DOUBLE, None, False),
        ("schema", 4, T.TYPE_SINT32, None, False),
        ("zero_threshold", 5, T.TYPE_DOUBLE, None, False),
        ("zero_count_int", 6, T.TYPE_UINT64, None, False),
        ("negative_spans", 8, T.TYPE_MESSAGE, "BucketSpan", True),
        ("negative_deltas", 9, T.TYPE_SINT64, None, True),
        ("positive_spans", 11, T.TYPE_MESSAGE, "BucketSpan", True),
        ("positive_deltas", 12, T.TYPE_SINT64, None, True),
        ("reset_hint", 14, T.TYPE_INT32, None, False),
        ("timestamp", 15, T.TYPE_INT64, None, False),
    )
    msg(
        "TimeSeries",
        ("labels", 1, T.TYPE_MESSAGE, "Label", True),
        ("samples", 2, T.TYPE_MESSAGE, "Sample", True),
        ("exemplars", 3, T.TYPE_MESSAGE, "Exemplar", True),
        ("histograms", 4, T.TYPE_MESSAGE, "Histogram", True),
    )
    msg("WriteRequest", ("timeseries", 1, T.TYPE_MESSAGE, "TimeSeries", True))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tftest.WriteRequest"))


WriteRequest = _prompb()


def decode(payload: bytes) -> list[dict[str, Any]]:
    req = WriteRequest.FromString(payload)
    return [
        {
            "labels": [(lb.name, lb.value) for lb in ts.labels],
            "samples": [(s.value, s.timestamp) for s in ts.samples],
            "exemplars": [
                ([(lb.name, lb.value) for lb in e.labels], e.value, e.timestamp)
                for e in ts.exemplars
            ],
            "histograms": list(ts.histograms),
        }
        for ts in req.timeseries
    ]


def bits(v: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", v))[0])


# -- encoding ------------------------------------------------------------------------------


def test_labels_sorted_bytewise_and_empty_omitted() -> None:
    enc = SeriesEncoder(external_labels={"__metrics_gen_instance": "host-1", "cluster": ""})
    labels = enc.labels(
        [
            ("span_name", "GET /"),
            ("service", "api"),
            ("status_message", ""),
            ("__name__", "traces_spanmetrics_calls_total"),
            ("Zeta", "upper"),  # 'Z' < '_' < 'a' byte-wise
            ("le", "0.5"),
        ]
    )
    (ts,) = decode(enc.request([(labels, 1.0, 1000)]))
    assert ts["labels"] == [
        ("Zeta", "upper"),
        ("__metrics_gen_instance", "host-1"),
        ("__name__", "traces_spanmetrics_calls_total"),
        ("le", "0.5"),
        ("service", "api"),
        ("span_name", "GET /"),
    ]


def test_series_labels_win_over_external_labels() -> None:
    enc = SeriesEncoder(external_labels={"service": "ext", "env": "prod"})
    (ts,) = decode(enc.request([(enc.labels([("__name__", "m"), ("service", "own")]), 1, 1)]))
    assert ts["labels"] == [("__name__", "m"), ("env", "prod"), ("service", "own")]


@pytest.mark.parametrize(
    "labels, message",
    [
        ([("a", "1")], "__name__"),
        ([("__name__", "")], "__name__"),
        ([("__name__", "m"), ("a", "1"), ("a", "2")], "duplicate"),
        ([("__name__", "m"), ("http.method", "GET")], "invalid"),
        ([("__name__", "m"), ("1abc", "x")], "invalid"),
    ],
)
def test_bad_labels_refused(labels: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SeriesEncoder().labels(labels)


_FIRST = "abcxyzABCXYZ_"
names = st.builds(
    str.__add__, st.sampled_from(_FIRST), st.text(alphabet=_FIRST + "0189", max_size=12)
).filter(lambda n: n != "__name__")
label_sets = st.dictionaries(names, st.text(max_size=8), max_size=5)
values = st.floats(allow_nan=True, allow_infinity=True)
timestamps = st.integers(min_value=-(2**62), max_value=2**62)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=6),
            label_sets,
            st.lists(st.tuples(values, timestamps), min_size=1, max_size=3),
        ),
        max_size=8,
    )
)
def test_request_round_trip(series: list[tuple[str, dict[str, str], list]]) -> None:
    enc = SeriesEncoder()
    items, expected = [], []
    for name, labels, samples in series:
        encoded = enc.labels([("__name__", name), *labels.items()])
        want = sorted((k, v) for k, v in {"__name__": name, **labels}.items() if v)
        want.sort(key=lambda kv: kv[0].encode())
        if expected and expected[-1][0] == want:  # consecutive equal labels: one TimeSeries
            expected[-1][1].extend(samples)
        else:
            expected.append((want, list(samples)))
        items += [(encoded, v, t) for v, t in samples]
    got = decode(enc.request(items))
    assert [ts["labels"] for ts in got] == [w for w, _ in expected]
    for ts, (_, samples) in zip(got, expected, strict=True):
        assert [(bits(v), t) for v, t in ts["samples"]] == [(bits(v), t) for v, t in samples]
        assert ts["exemplars"] == []


def test_exemplars_and_stale_marker() -> None:
    enc = SeriesEncoder()
    a = enc.labels([("__name__", "lat_bucket"), ("le", "0.5")])
    b = enc.labels([("__name__", "lat_count")])
    trace = uuid.uuid4().hex
    got = decode(enc.request([(a, 3, 2000), (b, STALE_NAN, 2000)], {a: (trace, 0.25, 1999)}))
    assert got[0]["exemplars"] == [([("traceID", trace)], 0.25, 1999)]
    assert got[1]["exemplars"] == []
    assert bits(got[1]["samples"][0][0]) == 0x7FF0000000000002


def test_batches_split_between_series() -> None:
    enc = SeriesEncoder()
    items = []
    for i in range(50):
        labels = enc.labels([("__name__", "m"), ("i", str(i))])
        items += [(labels, 0.0, 1000), (labels, float(i), 2000)]  # the 0 sample, then the value
    batches = list(enc.batches(items, max_samples=7))
    assert all(n <= 7 and n % 2 == 0 for _, n in batches)
    assert sum(n for _, n in batches) == 100
    assert b"".join(p for p, _ in batches) == enc.request(items)
    assert [len(decode(p)) for p, _ in batches] == [n // 2 for _, n in batches]


def test_snappy_block_format() -> None:
    enc = SeriesEncoder()
    payload = enc.request([(enc.labels([("__name__", "m")]), 1.0, 1)] * 10)
    compressed = bytes(cramjam.snappy.compress_raw(payload))
    # block format starts with the uncompressed length as a varint (framed starts 0xff "sNaPpY")
    assert compressed[0] == len(payload) and not compressed.startswith(b"\xff\x06\x00\x00sNaPpY")
    assert bytes(cramjam.snappy.decompress_raw(compressed)) == payload


def test_target_url_without_credentials() -> None:
    target = RemoteWriteTarget(url="https://u:p@prom.example:9090/api/v1/write")
    assert target.safe_url == "https://prom.example:9090/api/v1/write"


# -- a real Prometheus ---------------------------------------------------------------------


def writer_for(url: str, **kw: Any) -> tuple[RemoteWriter, CollectorRegistry]:
    registry = CollectorRegistry()
    target = RemoteWriteTarget(url=url, headers={"X-Scope-OrgID": "t1"}, timeout=5.0)
    return RemoteWriter(target, RemoteWriteMetrics(registry), tenant="t1", **kw), registry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """The sum of the writer's samples called ``name`` carrying ``labels``."""
    full = f"tempo_metrics_generator_remote_write_{name}"
    want = {"tenant": "t1", **labels}
    return sum(
        s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == full and want.items() <= s.labels.items()
    )


async def deliver(writer: RemoteWriter, payloads: list[tuple[bytes, int]], flush: float = 10):
    task = asyncio.create_task(writer.run())
    for payload, n in payloads:
        writer.submit(payload, n)
    await writer.close(flush)
    await task


BUCKETS = (0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096)
BUCKETS += (8.192, 16.384)


def test_counters_reach_prometheus(prometheus: Prometheus) -> None:
    run = uuid.uuid4().hex[:12]
    enc = SeriesEncoder(external_labels={"__metrics_gen_instance": "gen-1"})
    now_ms = int(time.time() * 1000)
    t0 = now_ms - 60_000
    series = []
    for i, svc in enumerate(["api", "db", "web"]):
        labels = enc.labels(
            [
                ("__name__", "traces_spanmetrics_calls_total"),
                ("run", run),
                ("service", svc),
                ("span_kind", "SPAN_KIND_SERVER"),
                ("status_message", ""),
            ]
        )
        series += [(labels, 0.0, t0), (labels, 10.0 * (i + 1), now_ms)]
    writer, registry = writer_for(prometheus.write_url)
    asyncio.run(deliver(writer, list(enc.batches(series, max_samples=4))))
    assert sample(registry, "samples_total", outcome="sent") == 6
    assert sample(registry, "requests_total", code="204") == 2

    got = prometheus.series(f'{{run="{run}"}}')
    assert sorted(got, key=lambda s: s["service"]) == [
        {
            "__name__": "traces_spanmetrics_calls_total",
            "__metrics_gen_instance": "gen-1",
            "run": run,
            "service": svc,
            "span_kind": "SPAN_KIND_SERVER",
        }
        for svc in ["api", "db", "web"]
    ]
    at = now_ms / 1000
    assert (
        prometheus.scalar(f'traces_spanmetrics_calls_total{{run="{run}",service="db"}}', at) == 20
    )
    # the 0 sample one minute earlier lets increase() see the first increment
    total = prometheus.scalar(
        f'sum(increase(traces_spanmetrics_calls_total{{run="{run}"}}[2m]))', at
    )
    assert total is not None and math.isclose(total, 60.0)
    raw = prometheus.query(f'traces_spanmetrics_calls_total{{run="{run}",service="web"}}[2m]', at)
    assert [float(v) for _, v in raw[0]["values"]] == [0.0, 30.0]


def test_histogram_and_exemplars_reach_prometheus(prometheus: Prometheus) -> None:
    run = uuid.uuid4().hex[:12]
    enc = SeriesEncoder()
    now_ms = int(time.time() * 1000)
    # 1000 observations: 1 ms .. 1 s, uniform
    observations = [(i + 1) / 1000 for i in range(1000)]
    base = [("run", run), ("service", "api")]
    items, exemplars = [], {}
    trace = uuid.uuid4().hex
    for bound in (*BUCKETS, math.inf):
        le = "+Inf" if bound == math.inf else repr(bound)
        labels = enc.labels([("__name__", "traces_spanmetrics_latency_bucket"), ("le", le), *base])
        items.append((labels, float(sum(v <= bound for v in observations)), now_ms))
        if bound == 0.512:
            exemplars[labels] = (trace, 0.5, now_ms - 10)
    for suffix, value in (("sum", sum(observations)), ("count", float(len(observations)))):
        labels = enc.labels([("__name__", f"traces_spanmetrics_latency_{suffix}"), *base])
        items.append((labels, value, now_ms))
    writer, registry = writer_for(prometheus.write_url)
    asyncio.run(deliver(writer, [(enc.request(items, exemplars), len(items))]))
    assert sample(registry, "samples_total", outcome="sent") == 17

    at = now_ms / 1000
    sel = f'{{run="{run}"}}'
    assert len(prometheus.series(f"traces_spanmetrics_latency_bucket{sel}")) == 15
    assert prometheus.scalar(f"traces_spanmetrics_latency_count{sel}", at) == 1000
    assert (
        prometheus.scalar(f'traces_spanmetrics_latency_bucket{{run="{run}",le="0.064"}}', at) == 64
    )
    for q in (0.5, 0.95, 0.99):
        got = prometheus.scalar(
            f"histogram_quantile({q}, sum by (le) (traces_spanmetrics_latency_bucket{sel}))", at
        )
        # exact quantile q, within the bucket that holds it (linear interpolation inside)
        exact = q
        lo = max([b for b in BUCKETS if b < exact], default=0.0)
        hi = min(b for b in BUCKETS if b >= exact)
        assert got is not None and lo <= got <= hi, (q, got)
    (found,) = prometheus.query_exemplars(f"traces_spanmetrics_latency_bucket{sel}")
    assert found["seriesLabels"]["le"] == "0.512"
    (ex,) = found["exemplars"]
    assert ex["labels"] == {"traceID": trace}
    assert float(ex["value"]) == 0.5
    assert math.isclose(float(ex["timestamp"]), (now_ms - 10) / 1000)


def test_out_of_order_refused_by_prometheus_not_retried(prometheus: Prometheus) -> None:
    """A real 400: Prometheus refuses a sample older than the series' last one."""
    run = uuid.uuid4().hex[:12]
    enc = SeriesEncoder()
    labels = enc.labels([("__name__", "m_total"), ("run", run)])
    now_ms = int(time.time() * 1000)
    writer, registry = writer_for(prometheus.write_url)
    payloads = [
        (enc.request([(labels, 2.0, now_ms)]), 1),
        (enc.request([(labels, 1.0, now_ms - 5000)]), 1),
    ]
    asyncio.run(deliver(writer, payloads))
    assert sample(registry, "samples_total", outcome="sent") == 1
    assert sample(registry, "samples_total", outcome="failed") == 1
    assert sample(registry, "dropped_samples_total", reason="http_400") == 1
    assert sample(registry, "requests_total", code="400") == 1


# -- a faulty receiver (aiohttp stand-in) --------------------------------------------------


class FakeReceiver:
    """Answers from a script of (status, headers, body), then 200; records each request."""

    def __init__(self, script: list[tuple[int, dict[str, str], str]] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/write"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            (time.monotonic(), dict(request.headers), bytes(cramjam.snappy.decompress_raw(body)))
        )
        if self.script:
            status, headers, text = self.script.pop(0)
            return web.Response(status=status, headers=headers, text=text)
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/write", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@asynccontextmanager
async def receiver(script: list[tuple[int, dict[str, str], str]] | None = None):
    r = FakeReceiver(script)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


def payload(i: int, n: int = 1) -> bytes:
    enc = SeriesEncoder()
    return enc.request(
        [
            (enc.labels([("__name__", "m"), ("i", str(i)), ("j", str(j))]), 1.0, 1000)
            for j in range(n)
        ]
    )


def run_async(fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(fn())  # type: ignore[arg-type]


def test_headers_and_basic_auth() -> None:
    async def main() -> None:
        async with receiver() as r:
            registry = CollectorRegistry()
            target = RemoteWriteTarget(
                url=r.url,
                headers={"X-Scope-OrgID": "tenant-7", "Content-Type": "text/plain"},
                basic_auth=("user", "secret"),
            )
            writer = RemoteWriter(target, RemoteWriteMetrics(registry))
            await deliver(writer, [(payload(1), 1)])
            ((_, headers, body),) = r.requests
            assert headers["Content-Encoding"] == "snappy"
            assert headers["Content-Type"] == "application/x-protobuf"  # not overridable
            assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
            assert headers["User-Agent"].startswith("tempo-fast/")
            assert headers["X-Scope-OrgID"] == "tenant-7"
            assert headers["Authorization"] == "Basic dXNlcjpzZWNyZXQ="
            assert body == payload(1)

    run_async(main)


def test_retry_on_503_then_success() -> None:
    async def main() -> None:
        async with receiver([(503, {}, "busy"), (503, {}, "busy")]) as r:
            writer, registry = writer_for(r.url)
            await deliver(writer, [(payload(1, 5), 5), (payload(2, 3), 3)])
            assert len(r.requests) == 4
            assert [body for _, _, body in r.requests[2:]] == [payload(1, 5), payload(2, 3)]
            assert (
                r.requests[0][2] == r.requests[1][2] == r.requests[2][2]
            )  # same request, in order
            gaps = [b[0] - a[0] for a, b in zip(r.requests, r.requests[1:3], strict=False)]
            assert gaps[0] >= 0.025 and gaps[1] >= 0.05  # 30 ms, then 60 ms
            assert sample(registry, "requests_total", code="503") == 2
            assert sample(registry, "requests_total", code="200") == 2
            assert sample(registry, "samples_retried_total") == 10
            assert sample(registry, "samples_total", outcome="sent") == 8
            assert sample(registry, "samples_total", outcome="dropped") == 0

    run_async(main)


def test_no_retry_on_400_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        script = [(400, {}, "out of order sample\nsecond line")] * 3
        async with receiver(script) as r:
            writer, registry = writer_for(r.url)
            await deliver(writer, [(payload(i, 2), 2) for i in range(4)])
            assert len(r.requests) == 4  # three refused, none retried, then the last accepted
            assert sample(registry, "samples_total", outcome="failed") == 6
            assert sample(registry, "dropped_samples_total", reason="http_400") == 6
            assert sample(registry, "samples_total", outcome="sent") == 2
            assert sample(registry, "samples_retried_total") == 0

    with caplog.at_level(logging.WARNING, logger="tempo_fast"):
        run_async(main)
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1
    assert refused[0].fields["status"] == 400  # type: ignore[attr-defined]
    assert refused[0].fields["body"] == "out of order sample"  # type: ignore[attr-defined]


def test_429_honours_retry_after() -> None:
    async def main() -> None:
        async with receiver([(429, {"Retry-After": "1"}, "slow down")]) as r:
            writer, registry = writer_for(r.url)
            await deliver(writer, [(payload(1), 1)])
            assert len(r.requests) == 2
            assert r.requests[1][0] - r.requests[0][0] >= 0.95  # not the 30 ms backoff
            assert sample(registry, "requests_total", code="429") == 1
            assert sample(registry, "samples_total", outcome="sent") == 1

    run_async(main)


def test_endpoint_down_bounded_queue_then_recovery() -> None:
    async def main() -> None:
        r = FakeReceiver()  # not started yet: connection refused
        one = max(len(cramjam.snappy.compress_raw(payload(i, 20))) for i in range(10, 30))
        writer, registry = writer_for(r.url, max_queue_bytes=one * 5 + one // 2, backoff_max=0.1)
        task = asyncio.create_task(writer.run())
        for i in range(10, 30):
            writer.submit(payload(i, 20), 20)
            assert writer.queued_bytes <= writer.max_queue_bytes
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        assert sample(registry, "requests_total", code="error") >= 2
        assert sample(registry, "queue_bytes") <= writer.max_queue_bytes
        dropped = sample(registry, "dropped_samples_total", reason="queue_full")
        assert dropped == 15 * 20  # five requests fit: the oldest fifteen gave way
        await r.start()  # the receiver comes up: the queue drains, in order
        try:
            await writer.close(10)
            await task
        finally:
            await r.stop()
        assert sample(registry, "samples_total", outcome="sent") == 5 * 20
        assert sample(registry, "samples_total", outcome="dropped") == 15 * 20
        assert [body for _, _, body in r.requests] == [payload(i, 20) for i in range(25, 30)]
        assert sample(registry, "queue_bytes") == 0

    run_async(main)


def test_close_deadline_drops_and_counts() -> None:
    async def main() -> None:
        writer, registry = writer_for(f"http://127.0.0.1:{free_port()}/api/v1/write")
        task = asyncio.create_task(writer.run())
        for i in range(3):
            writer.submit(payload(i, 4), 4)
        t0 = time.monotonic()
        await writer.close(0.5)
        await task
        assert time.monotonic() - t0 < 2.0
        assert sample(registry, "dropped_samples_total", reason="shutdown") == 12
        assert sample(registry, "samples_total", outcome="dropped") == 12
        writer.submit(payload(9), 1)  # after close: dropped, counted
        assert sample(registry, "dropped_samples_total", reason="shutdown") == 13

    run_async(main)


def test_submit_from_other_threads() -> None:
    async def main() -> None:
        async with receiver() as r:
            writer, registry = writer_for(r.url)
            task = asyncio.create_task(writer.run())
            loop = asyncio.get_running_loop()
            await asyncio.gather(
                *(loop.run_in_executor(None, writer.submit, payload(i), 1) for i in range(50))
            )
            await writer.close(10)
            await task
            assert len(r.requests) == 50
            assert sample(registry, "samples_total", outcome="sent") == 50

    run_async(main)


def test_native_histogram_sample() -> None:
    enc = SeriesEncoder()
    labels = enc.labels([("__name__", "traces_spanmetrics_latency"), ("service", "a")])
    empty = SeriesEncoder.histogram(0, 0.0, 3, 2.0**-128, 0, (), ())
    full = SeriesEncoder.histogram(9, 1.25, 3, 2.0**-128, 2, [(-80, 2), (3, 1)], [3, -2, 3])
    (ts,) = decode(enc.request([(labels, empty, 59_999), (labels, full, 61_000)]))
    assert ts["samples"] == [] and len(ts["histograms"]) == 2
    h0, h1 = ts["histograms"]
    assert (h0.timestamp, h0.count_int, h0.schema, h0.zero_count_int) == (59_999, 0, 3, 0)
    assert not h0.positive_spans
    assert h1.timestamp == 61_000 and h1.count_int == 9 and h1.sum == 1.25
    assert h1.schema == 3 and h1.zero_threshold == 2.0**-128 and h1.zero_count_int == 2
    assert [(s.offset, s.length) for s in h1.positive_spans] == [(-80, 2), (3, 1)]
    assert list(h1.positive_deltas) == [3, -2, 3] and h1.reset_hint == 0
    # a batch counts a histogram as one sample
    assert [n for _, n in enc.batches([(labels, empty, 1), (labels, full, 2)])] == [2]
