"""The generator component: tenants enabled by their overrides, the worker queue, bounded
cardinality, staleness and what a collection hands to the remote writers."""

from __future__ import annotations

import threading
import time
from typing import Any

from tempo_fast import _core
from tempo_fast.config.loader import default_yaml, load
from tempo_fast.generator.generator import Generator, GeneratorCollector
from tempo_fast.generator.spanmetrics import CALLS, LATENCY
from tempo_fast.pkg.protowire import fields
from tests.generator.test_core_generator import CLIENT, SEC, SERVER, body, span

SPAN_METRICS = {"metrics_generator": {"processors": ["span-metrics"]}}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class FakeWriter:
    """Stands in for a RemoteWriter (no HTTP here): keeps what a collection submits."""

    def __init__(self) -> None:
        self.payloads: list[tuple[bytes, int]] = []

    def submit(self, payload: bytes, samples: int) -> None:
        self.payloads.append((payload, samples))

    def series_names(self) -> list[str]:
        out = []
        for payload, _ in self.payloads:
            for _, _, ts in fields(payload):
                assert isinstance(ts, bytes)
                for n, _, label in fields(ts):
                    if n == 1:
                        assert isinstance(label, bytes)
                        kv = {k: v for k, _, v in fields(label)}
                        if kv[1] == b"__name__":
                            out.append(kv[2].decode())  # type: ignore[union-attr]
        return out


def make(overrides: dict[str, dict[str, Any]], extra: str = "") -> tuple[Generator, Clock]:
    cfg = load(default_yaml() + extra).metrics_generator
    assert cfg is not None
    clock = Clock()
    gen = Generator(cfg, lambda tenant: overrides.get(tenant, {}), clock=clock)
    return gen, clock


def batch(n: int, names: int, now_ns: int) -> _core.SpanBatch:
    spans = [
        span(i + 1, i + 1, 0, SERVER, f"op-{i % names}", now_ns - SEC, now_ns) for i in range(n)
    ]
    return _core.span_batch_from_otlp(body(({"service.name": "api"}, spans)))


def test_only_tenants_with_processors_are_generated() -> None:
    gen, clock = make({"a": SPAN_METRICS})
    now_ns = int(clock.now * 1e9)
    gen.push("a", batch(10, 2, now_ns))
    gen.push("b", batch(10, 2, now_ns))
    assert gen.drain()
    assert set(gen.instances) == {"a"}
    (table,) = gen.instances["a"].tables()
    assert sorted(k[1] for k in table.keys) == ["op-0", "op-1"]
    assert table.families[CALLS].value[: len(table)].sum() == 10


def test_absurd_cardinality_is_bounded_and_counted() -> None:
    limited = {"metrics_generator": {"processors": ["span-metrics"], "max_active_series": 100}}
    gen, clock = make({"a": limited})
    now_ns = int(clock.now * 1e9)
    for _ in range(5):  # a unique span name per span
        gen.push("a", batch(2000, 10**9, now_ns))
    assert gen.drain()
    inst = gen.instances["a"]
    (table,) = inst.tables()
    assert len(table) == 101  # the limit plus the overflow series
    assert inst.limits.active == 101 and inst.limits.limited > 0
    calls = table.families[CALLS].value[: len(table)]
    assert calls.sum() == 10_000  # every span counted once, most in the overflow series
    overflow = [
        sid for sid in range(len(table)) if ("metric_overflow", "true") in table.labels(sid)
    ]
    assert len(overflow) == 1 and calls[overflow[0]] == 10_000 - 5 * 100
    text = "".join(
        f"{s.name} {s.labels} {s.value}\n"
        for m in GeneratorCollector(gen, False).collect()
        for s in m.samples
    )
    assert "tempo_metrics_generator_registry_series_limited_total {'tenant': 'a'}" in text


def test_stale_series_are_dropped_and_come_back_from_zero() -> None:
    gen, clock = make({"a": SPAN_METRICS}, "metrics_generator: {registry: {stale_duration: 1m}}")
    now_ns = int(clock.now * 1e9)
    gen.push("a", batch(10, 2, now_ns))
    assert gen.drain()
    inst = gen.instances["a"]
    clock.now += 120
    gen.collect(inst, clock.now)
    (table,) = inst.tables()
    assert len(table) == 0 and inst.series_removed == 2 and inst.limits.active == 0
    now_ns = int(clock.now * 1e9)
    gen.push("a", batch(3, 1, now_ns))
    assert gen.drain()
    assert len(table) == 1 and table.families[CALLS].value[0] == 3
    hist = table.families[LATENCY]
    assert hist.count[0] == 3 and hist.buckets[0].sum() == 3


def test_collection_sends_every_series_with_a_zero_sample_first() -> None:
    gen, clock = make({"a": SPAN_METRICS})
    now_ns = int(clock.now * 1e9)
    gen.push("a", batch(10, 2, now_ns))
    assert gen.drain()
    inst = gen.instances["a"]
    writer = FakeWriter()
    inst.writers = [writer]  # type: ignore[list-item]
    clock.now += 1  # after the generator started: the 0 samples go at its start time
    gen.collect(inst, clock.now)
    names = writer.series_names()
    # per series: calls, 15 latency buckets, sum, count, size
    assert len(names) == 2 * (1 + 15 + 2 + 1)
    assert names.count("traces_spanmetrics_calls_total") == 2
    assert sum(s for _, s in writer.payloads) == 2 * 2 * 19  # each with its 0 sample
    writer.payloads.clear()
    clock.now += 15
    gen.collect(inst, clock.now)
    assert sum(s for _, s in writer.payloads) == 2 * 19


def test_queue_is_bounded_and_drops_are_counted(monkeypatch: Any) -> None:
    from tempo_fast.generator import generator as module

    monkeypatch.setattr(module, "MAX_QUEUED_SPANS", 15)
    gen, clock = make({"a": SPAN_METRICS})
    now_ns = int(clock.now * 1e9)
    release, taken = threading.Event(), threading.Event()
    real = gen.process

    def slow(instance: Any, b: Any) -> None:  # the worker stalls on its first batch
        taken.set()
        release.wait(10)
        real(instance, b)

    gen.process = slow  # type: ignore[method-assign]
    b = batch(10, 1, now_ns)
    gen.push("a", b)
    assert taken.wait(10)
    for _ in range(19):  # one fits in the queue (10 <= 15 spans), the rest are dropped
        gen.push("a", b)
    release.set()
    assert gen.drain()
    inst = gen.instances["a"]
    assert inst.spans_received == 20 and inst.discarded == {"queue_full": 180}
    (table,) = inst.tables()
    assert table.families[CALLS].value[0] == 20


def test_series_survive_renumbering_and_overflow_keys_follow_it() -> None:
    limited = {"metrics_generator": {"processors": ["span-metrics"], "max_active_series": 2}}
    gen, clock = make({"a": limited}, "metrics_generator: {registry: {stale_duration: 1m}}")
    inst = gen.instances.setdefault("a", gen._new_instance("a", gen.settings("a")))  # type: ignore[arg-type]
    (sm,) = inst.processors
    (table,) = inst.tables()
    t0 = int(clock.now * 1e9)
    old = _core.span_batch_from_otlp(
        body(({"service.name": "api"}, [span(1, 1, 0, SERVER, "old", t0 - SEC, t0)]))
    )
    gen.process(inst, old)
    clock.now += 90  # "old" goes stale; then two keys, then a third that overflows
    now_ns = int(clock.now * 1e9)
    gen.process(inst, batch(4, 2, now_ns))  # op-0, op-1: op-1 overflows (limit 2 with "old")
    gen.collect(inst, clock.now + 1)  # "old" removed: ids renumbered
    assert [k[1] for k in table.keys if k[1]] == ["op-0"]
    gen.process(inst, batch(4, 2, now_ns))  # same keys again: no key is new to the core
    again = _core.span_batch_from_otlp(
        body(({"service.name": "api"}, [span(2, 2, 0, SERVER, "old", now_ns - SEC, now_ns)]))
    )
    gen.process(inst, again)  # the stale key again: no room now (op-0 and the overflow)
    calls = table.families[CALLS].value
    by_name = {k[1] or "overflow": calls[i] for i, k in enumerate(table.keys)}
    assert by_name == {"op-0": 4.0, "overflow": 5.0}
    assert sm.lost_spans == 0


def test_filter_policies_and_dimension_mappings_shape_the_series() -> None:
    sm = {"processors": ["span-metrics"], "processor": {"span_metrics": {
        "intrinsic_dimensions": {"span_kind": False, "status_code": False},
        "dimension_mappings": [{"name": "endpoint", "source_labels": ["http.method", "http.route"],
                                "join": " "}],
        "filter_policies": [{
            "include": {"match_type": "strict", "attributes": [
                {"key": "kind", "value": "SPAN_KIND_SERVER"}]},
            "exclude": {"match_type": "regex", "attributes": [{"key": "name", "value": "^health"}]},
        }],
    }}}  # fmt: skip
    gen, clock = make({"a": {"metrics_generator": sm}})
    now = int(clock.now * 1e9)
    spans = [
        span(1, 1, 0, SERVER, "GET /cart", now - SEC, now, http_method="GET", http_route="/cart"),
        span(1, 2, 1, CLIENT, "SELECT", now - SEC, now, http_method="GET"),
        span(2, 1, 0, SERVER, "healthz", now - SEC, now),
        span(3, 1, 0, SERVER, "POST /pay", now - SEC, now, http_method="POST", http_route="/pay"),
        span(4, 1, 0, SERVER, "GET /cart", now - SEC, now, http_method="GET", http_route="/cart"),
    ]
    gen.push("a", _core.span_batch_from_otlp(body(({"service.name": "shop"}, spans))))
    assert gen.drain()
    (table,) = gen.instances["a"].tables()
    assert table.label_names == ("service", "span_name", "endpoint")
    calls = table.families[CALLS].value
    got = {table.keys[sid]: int(calls[sid]) for sid in range(len(table))}
    assert got == {("shop", "GET /cart", "GET /cart"): 2, ("shop", "POST /pay", "POST /pay"): 1}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in GeneratorCollector(gen, False).collect()
        for s in m.samples
    }
    key = ("tempo_metrics_generator_spans_discarded_total",
           (("reason", "span_metrics_filtered"), ("tenant", "a")))  # fmt: skip
    assert samples[key] == 2


def test_host_info_marks_each_host_seen() -> None:
    gen, clock = make({"a": {"metrics_generator": {"processors": ["host-info"]}}})
    now = int(clock.now * 1e9)
    old = now - 3600 * SEC  # host-info counts every resource, whatever its spans' times
    body_ = body(
        ({"service.name": "a", "k8s.node.name": "node-1", "host.id": "h1"},
         [span(1, 1, 0, SERVER, "op", old - SEC, old)]),
        ({"service.name": "b", "host.id": "h2"}, [span(2, 1, 0, SERVER, "op", now - SEC, now)]),
        ({"service.name": "c"}, [span(3, 1, 0, SERVER, "op", now - SEC, now)]),
    )  # fmt: skip
    gen.push("a", _core.span_batch_from_otlp(body_))
    assert gen.drain()
    (table,) = gen.instances["a"].tables()
    assert sorted(table.keys) == [("h2", "host.id"), ("node-1", "k8s.node.name")]
    assert table.families["traces_host_info"].value[: len(table)].tolist() == [1.0, 1.0]
