"""``/api/metrics/summary`` end to end: server spans of the reference data set grouped by an
attribute; counts and errors exact, P50–P99 within the sketch's 1% of the exact quantiles
computed here from the sent spans."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.e2e.test_metrics_generator import eventually
from tests.e2e.test_search import T0, Span, _post, otlp_load, spans_of
from tests.server import TempoServer


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TempoServer, list[Span]]]:
    server = TempoServer(tmp_path_factory.mktemp("summary") / "tempo").start()
    batches, _ = otlp_load.make_batches(5, 3, 400, T0)
    bodies = [b for b, _ in batches]
    for body in bodies:
        assert _post(server, body) == 200
    yield server, spans_of(bodies)
    server.stop()


def summary(server: TempoServer, **params: Any) -> tuple[int, Any]:
    status, _, body = server.get("/api/metrics/summary?" + urllib.parse.urlencode(params))
    return status, json.loads(body) if status == 200 else body.decode()


def test_server_spans_by_service(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    want: dict[str, list[Span]] = {}
    for s in spans:
        if s.kind == 2:  # server spans only, as Tempo's summary
            want.setdefault(s.service, []).append(s)

    def answered() -> dict[str, Any]:
        status, got = summary(server, q="{}", groupBy="resource.service.name")
        assert status == 200, got
        by = {e["series"][0]["value"]["s"]: e for e in got["summaries"]}
        assert set(by) == set(want)
        return by

    by = eventually(answered)
    for svc, group in want.items():
        e = by[svc]
        assert e["series"][0]["key"] == "resource.service.name"
        assert e["series"][0]["value"]["type"] == 5
        assert int(e["spanCount"]) == len(group)
        errors = sum(s.status == 2 for s in group)
        assert int(e.get("errorSpanCount", 0)) == errors
        assert e["rate"] == pytest.approx(len(group) / 3600)
        durations = np.array([s.end - s.start for s in group], dtype=np.float64)
        for field, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
            exact = np.quantile(durations, q, method="lower")
            assert int(e[field]) == pytest.approx(exact, rel=0.01), (svc, field)


def test_filter_and_two_group_by_attributes(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    want: dict[tuple[str, int], int] = {}
    for s in spans:
        if s.kind == 2 and s.attrs.get("http.method") == "GET":
            key = (s.service, s.attrs["http.status_code"])
            want[key] = want.get(key, 0) + 1
    status, got = summary(
        server,
        q='{ span.http.method = "GET" }',
        groupBy="resource.service.name,span.http.status_code",
    )
    assert status == 200, got
    seen = {}
    for e in got["summaries"]:
        svc, code = e["series"]
        assert (svc["key"], code["key"]) == ("resource.service.name", "span.http.status_code")
        assert code["value"]["type"] == 3
        seen[(svc["value"]["s"], int(code["value"]["n"]))] = int(e["spanCount"])
    assert seen == want
    counts = [int(e["spanCount"]) for e in got["summaries"]]
    assert counts == sorted(counts, reverse=True)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"q": "{}"}, "groupBy is required"),
        ({"q": "{ .a = }", "groupBy": "name"}, "invalid TraceQL query"),
        ({"q": "{}", "groupBy": "name", "start": "20", "end": "10"}, "end must be greater"),
    ],
)
def test_bad_requests_are_400(
    loaded: tuple[TempoServer, list[Span]], params: dict[str, str], reason: str
) -> None:
    status, body = summary(loaded[0], **params)
    assert status == 400 and reason in body
