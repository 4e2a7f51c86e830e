"""Span-metrics ``filter_policies`` and ``dimension_mappings`` end to end: spans in over OTLP
through the real server, series out to a real Prometheus, counted exactly as the policies
say; the spans left out show in ``tempo_metrics_generator_spans_discarded_total``."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from opentelemetry.proto.common.v1 import common_pb2 as cp
from opentelemetry.proto.trace.v1 import trace_pb2 as tp

from tests.e2e.test_metrics_generator import eventually, vector
from tests.prometheus import Prometheus
from tests.server import TempoServer

SOURCE = "span-filters"
ROUTES = ["/cart", "/pay", "/healthz", "/ready"]
METHODS = ["GET", "POST"]


def attr(k: str, v: str | int) -> cp.KeyValue:
    if isinstance(v, int):
        return cp.KeyValue(key=k, value=cp.AnyValue(int_value=v))
    return cp.KeyValue(key=k, value=cp.AnyValue(string_value=v))


def server_span(i: int, now: int) -> tp.Span:
    """A 1 ms server span of a trace of its own, ending ``now``."""
    return tp.Span(trace_id=random.randbytes(16), span_id=(i + 1).to_bytes(8, "big"),
                   name="work", kind=tp.Span.SPAN_KIND_SERVER,
                   start_time_unix_nano=now - 1_000_000, end_time_unix_nano=now)  # fmt: skip


def post(server: TempoServer, req: ts.ExportTraceServiceRequest) -> None:
    status, _, _ = server.post(
        "/v1/traces", req.SerializeToString(), {"Content-Type": "application/x-protobuf"}
    )
    assert status == 200


def start(
    tmp_path: Path,
    prometheus: Prometheus,
    source: str,
    global_: dict[str, Any] | None = None,
    tenant: dict[str, Any] | None = None,
    processors: tuple[str, ...] = ("span-metrics",),
) -> TempoServer:
    """A server remote-writing span metrics every second, labelled ``source``; the
    span_metrics settings ``global_`` in the config, ``tenant`` in the default overrides."""
    generator: dict[str, Any] = {"processors": list(processors)}
    if tenant:
        generator["processor"] = {"span_metrics": tenant}
    return TempoServer(
        tmp_path / "tempo",
        overrides={
            "metrics_generator": {
                "registry": {"collection_interval": "1s", "external_labels": {"source": source}},
                "storage": {
                    "path": str(tmp_path / "gen"),
                    "remote_write": [{"url": prometheus.write_url}],
                },
                "processor": {"span_metrics": global_ or {}},
            },
            "overrides": {"defaults": {"metrics_generator": generator}},
        },
    ).start()


def test_filters_and_mappings_reach_prometheus(tmp_path: Path, prometheus: Prometheus) -> None:
    span_metrics = {
        "intrinsic_dimensions": {"span_kind": False, "status_code": False},
        "dimension_mappings": [
            {"name": "endpoint", "source_labels": ["http.method", "http.route"], "join": " "}
        ],
        "filter_policies": [
            {
                "include": {"match_type": "strict", "attributes": [
                    {"key": "kind", "value": "SPAN_KIND_SERVER"},
                    {"key": "resource.deployment.environment", "value": "prod"}]},
                "exclude": {"match_type": "regex", "attributes": [
                    {"key": "span.http.route", "value": "^/(healthz|ready)$"}]},
            }
        ],
    }  # fmt: skip
    # the tenant's overrides carry the span-metrics settings
    server = start(tmp_path, prometheus, SOURCE, tenant=span_metrics)
    try:
        rng = random.Random(7)
        now = time.time_ns()
        want: Counter[tuple[str, str]] = Counter()  # (service, endpoint) of counted spans
        left_out = 0
        req = ts.ExportTraceServiceRequest()
        for i in range(300):
            env = rng.choice(["prod", "staging"])
            service = rng.choice(["cart", "checkout"])
            rs = req.resource_spans.add()
            rs.resource.attributes.extend(
                [attr("service.name", service), attr("deployment.environment", env)]
            )
            kind = rng.choice([tp.Span.SPAN_KIND_SERVER, tp.Span.SPAN_KIND_CLIENT])
            method, route = rng.choice(METHODS), rng.choice(ROUTES)
            span = tp.Span(
                trace_id=rng.randbytes(16), span_id=(i + 1).to_bytes(8, "big"), name="handler",
                kind=kind, start_time_unix_nano=now - 5_000_000, end_time_unix_nano=now,
                attributes=[attr("http.method", method), attr("http.route", route),
                            attr("http.status_code", 200)],
            )  # fmt: skip
            rs.scope_spans.add().spans.append(span)
            counted = (
                kind == tp.Span.SPAN_KIND_SERVER
                and env == "prod"
                and route not in ("/healthz", "/ready")
            )
            if counted:
                want[(service, f"{method} {route}")] += 1
            else:
                left_out += 1
        status, _, _ = server.post(
            "/v1/traces", req.SerializeToString(), {"Content-Type": "application/x-protobuf"}
        )
        assert status == 200
        assert want and left_out

        def series() -> None:
            got = vector(
                prometheus,
                f'sum by (service, endpoint) (traces_spanmetrics_calls_total{{source="{SOURCE}"}})',
            )
            assert {
                (dict(k)["service"], dict(k)["endpoint"]): int(v) for k, v in got.items()
            } == dict(want)

        eventually(series)
        text = server.metrics()
        line = (
            'tempo_metrics_generator_spans_discarded_total{reason="span_metrics_filtered",'
            'tenant="single-tenant"}'
        )
        assert f"{line} {float(left_out)}" in text
    finally:
        server.stop()


def test_target_info_joins_span_metrics_in_prometheus(
    tmp_path: Path, prometheus: Prometheus
) -> None:
    source = "target-info"
    # the global span_metrics section carries them
    global_ = {"enable_target_info": True, "target_info_excluded_dimensions": ["secret.token"]}
    server = start(tmp_path, prometheus, source, global_=global_)
    try:
        now = time.time_ns()
        req = ts.ExportTraceServiceRequest()
        pods = {("shop", "cart", "cart-0"): 3, ("shop", "cart", "cart-1"): 2, ("", "batch", ""): 4}
        for (ns, svc, inst), n in pods.items():
            rs = req.resource_spans.add()
            attrs = [attr("service.name", svc), attr("k8s.pod.name", f"{svc}-{inst or 'x'}"),
                     attr("secret.token", "hidden")]  # fmt: skip
            if ns:
                attrs.append(attr("service.namespace", ns))
            if inst:
                attrs.append(attr("service.instance.id", inst))
            rs.resource.attributes.extend(attrs)
            for i in range(n):
                rs.scope_spans.add().spans.append(server_span(i, now))
        post(server, req)

        def joined() -> None:
            # Grafana's way of adding resource attributes to span metrics
            got = vector(
                prometheus,
                f"sum by (job, instance, k8s_pod_name) (traces_spanmetrics_calls_total"
                f'{{source="{source}"}} * on (job, instance) group_left(k8s_pod_name) '
                f'traces_target_info{{source="{source}"}})',
            )
            assert {tuple(v for _, v in k): int(n) for k, n in got.items()} == {
                ("cart-0", "shop/cart", "cart-cart-0"): 3,
                ("cart-1", "shop/cart", "cart-cart-1"): 2,
                ("batch", "batch-x"): 4,  # no instance on either side
            }
            info = prometheus.query(f'traces_target_info{{source="{source}", job="batch"}}')
            (series,) = info
            assert series["metric"]["k8s_pod_name"] == "batch-x"
            assert "secret_token" not in series["metric"] and "instance" not in series["metric"]
            assert series["value"][1] == "1"

        eventually(joined)
    finally:
        server.stop()


def test_host_info_reaches_prometheus(tmp_path: Path, prometheus: Prometheus) -> None:
    source = "host-info"
    server = start(tmp_path, prometheus, source, processors=("host-info",))
    try:
        now = time.time_ns()
        req = ts.ExportTraceServiceRequest()
        for i, attrs in enumerate(
            [{"k8s.node.name": "node-1", "host.id": "i-1"}, {"host.id": "i-2"}, {"other": "x"}]
        ):
            rs = req.resource_spans.add()
            rs.resource.attributes.extend([attr(k, v) for k, v in attrs.items()])
            rs.scope_spans.add().spans.append(server_span(i, now))
        post(server, req)

        def hosts() -> None:
            got = prometheus.query(f'traces_host_info{{source="{source}"}}')
            assert {
                (r["metric"]["grafana_host_id"], r["metric"]["host_source"], r["value"][1])
                for r in got
            } == {("node-1", "k8s.node.name", "1"), ("i-2", "host.id", "1")}

        eventually(hosts)
        assert "traces_host_info{" in server.metrics()
    finally:
        server.stop()
