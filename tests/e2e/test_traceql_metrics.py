"""TraceQL metrics end to end: the reference data set sent over OTLP, then
``/api/metrics/query_range`` and ``/api/metrics/query`` through the real server, checked
against answers computed here from the sent protobuf (Tempo's step alignment, right-closed
intervals and log2-bucket quantiles, ported independently below)."""

from __future__ import annotations

import json
import math
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import FAST_CUT
from tests.e2e.test_search import Span, _post, spans_of
from tests.e2e.traces import wait_for
from tests.server import TempoServer
from tests.unit.test_traceql_metrics import go_log2
from tests.unit.test_traceql_metrics import ref_quantile as log2_quantile

sys.path.insert(0, "/work/shared/bench")
otlp_load = pytest.importorskip("otlp_load")

NS = 10**9
NOW = time.time_ns()
T0 = NOW - 10 * 60 * NS
START = T0 // NS - 60  # unix seconds
END = T0 // NS + 120
STEP = 10


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TempoServer, list[Span]]]:
    server = TempoServer(tmp_path_factory.mktemp("tqlm") / "tempo", overrides=FAST_CUT).start()
    batches, _ = otlp_load.make_batches(11, 3, 400, T0)
    bodies = [b for b, _ in batches]
    for body in bodies:
        assert _post(server, body) == 200
    yield server, spans_of(bodies)
    server.stop()


# ---- the reference: Tempo's semantics written out plainly ----------------------------


def window(start: int = START, end: int = END, step: int = STEP) -> tuple[int, int, int, int]:
    """Aligned (start, end, step) in ns and the number of intervals (Tempo's AlignRequest)."""
    s, e, st = start * NS, end * NS, step * NS
    s -= s % st
    if e % st:
        e += st - e % st
    s -= st
    return s, e, st, (e - s) // st


def interval(ts: int, w: tuple[int, int, int, int]) -> int:
    s, e, st, _ = w
    if not (s < ts <= e):
        return -1
    off = ts - s
    i = off // st
    return i - 1 if i * st == off else i


def stamps(w: tuple[int, int, int, int]) -> list[str]:
    s, _, st, n = w
    return [str((s + (i + 1) * st) // 10**6) for i in range(n)]


def grouped(
    spans: list[Span], key: Any, w: tuple[int, int, int, int]
) -> dict[Any, list[list[Span]]]:
    out: dict[Any, list[list[Span]]] = {}
    for s in spans:
        i = interval(s.start, w)
        if i >= 0:
            out.setdefault(key(s), [[] for _ in range(w[3])])[i].append(s)
    return out


# ---- client --------------------------------------------------------------------------


def query(server: TempoServer, path: str = "/api/metrics/query_range", **params: Any) -> Any:
    status, _, body = server.get(path + "?" + urllib.parse.urlencode(params))
    assert status == 200, body
    return json.loads(body)


def series_by(result: dict[str, Any], label: str) -> dict[Any, dict[str, Any]]:
    out = {}
    for s in result.get("series", []):
        labels = {kv["key"]: next(iter(kv["value"].values())) for kv in s["labels"]}
        out[labels.get(label)] = s
    return out


def values(s: dict[str, Any]) -> dict[str, float]:
    # gogo jsonpb leaves out a zero value
    return {x["timestampMs"]: x.get("value", 0.0) for x in s.get("samples", [])}


def range_params(q: str, **extra: Any) -> dict[str, Any]:
    return {"q": q, "start": START, "end": END, "step": f"{STEP}s", **extra}


# ---- tests ---------------------------------------------------------------------------


def test_count_and_rate_by_service(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    w = window()
    want = grouped(spans, lambda s: s.service, w)
    got = query(server, **range_params("{} | count_over_time() by (resource.service.name)"))
    by_svc = series_by(got, "resource.service.name")
    assert set(by_svc) == set(want)
    for svc, per_step in want.items():
        s = by_svc[svc]
        assert s["labels"] == [{"key": "resource.service.name", "value": {"stringValue": svc}}]
        assert s["promLabels"] == f'{{"resource.service.name"="{svc}"}}'
        assert values(s) == {t: float(len(x)) for t, x in zip(stamps(w), per_step, strict=True)}
    rate = series_by(
        query(server, **range_params("{} | rate() by (resource.service.name)")),
        "resource.service.name",
    )
    for svc, per_step in want.items():
        assert values(rate[svc]) == pytest.approx(
            {t: len(x) / STEP for t, x in zip(stamps(w), per_step, strict=True)}
        )
    assert [s["promLabels"] for s in got["series"]] == sorted(
        s["promLabels"] for s in got["series"]
    )
    m = got["metrics"]
    assert m["completedJobs"] == m["totalJobs"] >= 1
    assert int(m["inspectedSpans"]) >= len(spans)


def test_typed_labels(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    q = "{} | count_over_time() by (span.http.status_code, kind)"
    got = query(server, "/api/metrics/query", q=q, start=START, end=END)
    want: dict[tuple[str, str], int] = {}
    kinds = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
    for s in spans:
        if START * NS < s.start <= END * NS:
            k = (str(s.attrs["http.status_code"]), kinds[s.kind])
            want[k] = want.get(k, 0) + 1
    seen = {}
    for s in got["series"]:
        code, kind = s["labels"]
        assert code["key"] == "span.http.status_code" and kind["key"] == "kind"
        seen[(code["value"]["intValue"], kind["value"]["stringValue"])] = s.get("value", 0.0)
        assert s["promLabels"] == (
            f'{{kind="{kind["value"]["stringValue"]}", '
            f'"span.http.status_code"="{code["value"]["intValue"]}"}}'
        )
    assert seen == {k: float(v) for k, v in want.items()}


def test_ungrouped_filter_and_default_step(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    got = query(server, q="{ status = error } | count_over_time()", start=START, end=END)
    (only,) = got["series"]
    assert only["labels"] == [{"key": "__name__", "value": {"stringValue": "count_over_time"}}]
    assert only["promLabels"] == '{__name__="count_over_time"}'
    w = window(step=1)  # 180 s / 240 points: the default step is 1s
    errors = [s for s in spans if s.status == 2]
    assert errors
    assert sum(values(only).values()) == len([s for s in errors if interval(s.start, w) >= 0])
    assert len(only["samples"]) == w[3]


@pytest.mark.parametrize("fn", ["min", "max", "avg", "sum"])
def test_over_time_functions_on_duration(loaded: tuple[TempoServer, list[Span]], fn: str) -> None:
    server, spans = loaded
    w = window()
    want = grouped(spans, lambda s: s.service, w)
    got = series_by(
        query(
            server, **range_params(f"{{}} | {fn}_over_time(duration) by (resource.service.name)")
        ),
        "resource.service.name",
    )
    agg = {"min": min, "max": max, "sum": math.fsum, "avg": lambda d: math.fsum(d) / len(d)}[fn]
    for svc, per_step in want.items():
        expect = {
            t: agg([(s.end - s.start) / NS for s in x])
            for t, x in zip(stamps(w), per_step, strict=True)
            if x
        }
        assert values(got[svc]) == pytest.approx(expect, rel=1e-12)


def test_quantiles_interpolate_in_log2_buckets(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    w = window()
    want = grouped(spans, lambda s: s.service, w)
    got = query(
        server,
        **range_params("{} | quantile_over_time(duration, .5, .99) by (resource.service.name)"),
    )
    assert len(got["series"]) == 2 * len(want)
    for s in got["series"]:
        labels = {kv["key"]: kv["value"] for kv in s["labels"]}
        svc = labels["resource.service.name"]["stringValue"]
        p = labels["p"]["doubleValue"]
        expect = {}
        for t, x in zip(stamps(w), want[svc], strict=True):
            counts: dict[float, int] = {}
            for sp in x:
                d = sp.end - sp.start
                if d >= 2:
                    b = 2.0 ** math.ceil(go_log2(d)) / NS
                    counts[b] = counts.get(b, 0) + 1
            expect[t] = log2_quantile(p, sorted(counts.items()))  # 0 for an empty step
        assert values(s) == pytest.approx(expect, rel=1e-12)


def test_histogram_buckets(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    w = window()
    got = query(server, **range_params("{} | histogram_over_time(duration)"))
    want: dict[float, list[int]] = {}
    for s in spans:
        i = interval(s.start, w)
        d = s.end - s.start
        if i >= 0 and d >= 2:
            b = 2.0 ** math.ceil(go_log2(d)) / NS
            want.setdefault(b, [0] * w[3])[i] += 1
    got_b = {s["labels"][0]["value"]["doubleValue"]: s for s in got["series"]}
    assert {s["labels"][0]["key"] for s in got["series"]} == {"__bucket"}
    assert set(got_b) == set(want)
    for b, counts in want.items():
        assert values(got_b[b]) == {t: float(c) for t, c in zip(stamps(w), counts, strict=True)}


def test_topk_and_comparison_filter(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    w = window()
    want = grouped(spans, lambda s: s.service, w)
    got = query(
        server, **range_params("{} | count_over_time() by (resource.service.name) | topk(2)")
    )
    for i, t in enumerate(stamps(w)):
        ranked = sorted((len(v[i]) for v in want.values()), reverse=True)
        here = sorted((values(s)[t] for s in got["series"] if t in values(s)), reverse=True)
        assert here == [float(c) for c in ranked[: len(here)]]
        assert len(here) == min(2, len(ranked))
    got = query(server, **range_params("{} | count_over_time() by (resource.service.name) > 20"))
    for s in got["series"]:
        assert all(v > 20 for v in values(s).values())


def test_arithmetic_between_queries(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    w = window()
    q = "({ status = error } | count_over_time()) / ({} | count_over_time())"
    (ratio,) = query(server, **range_params(q))["series"]
    total = [0] * w[3]
    errors = [0] * w[3]
    for s in spans:
        if (i := interval(s.start, w)) >= 0:
            total[i] += 1
            errors[i] += s.status == 2
    expect = {t: e / n for t, e, n in zip(stamps(w), errors, total, strict=True) if n}
    assert values(ratio) == pytest.approx(expect)


def test_compare_baseline_and_selection(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    w = window()
    got = query(server, **range_params("{} | compare({ status = error })"))
    sel: dict[tuple[str, str, Any], dict[str, float]] = {}
    for s in got["series"]:
        labels = [(kv["key"], next(iter(kv["value"].values()))) for kv in s["labels"]]
        sel[(labels[0][1], labels[1][0], labels[1][1])] = values(s)
    errors = [x for x in spans if x.status == 2]
    ok = [x for x in spans if x.status != 2]

    def counts(xs: list[Span]) -> dict[str, float]:
        per = [0] * w[3]
        for x in xs:
            if (i := interval(x.start, w)) >= 0:
                per[i] += 1
        return {t: float(c) for t, c in zip(stamps(w), per, strict=True)}

    assert sel[("selection", "status", "error")] == counts(errors)
    assert sel[("baseline", "status", "unset")] == counts(ok)
    assert sel[("selection_total", "status", "nil")] == counts(errors)
    assert sel[("baseline_total", "resource.service.name", "nil")] == counts(ok)
    # A selection window: only errors starting in [lo, hi) are the selection.
    lo, hi = T0 + 20 * NS, T0 + 40 * NS
    got = query(server, **range_params(f"{{}} | compare({{ status = error }}, 10, {lo}, {hi})"))
    windowed = {
        s["labels"][1]["value"].get("stringValue"): values(s)
        for s in got["series"]
        if s["labels"][0]["value"].get("stringValue") == "selection"
        and s["labels"][1]["key"] == "status"
    }
    assert windowed == {"error": counts([x for x in errors if lo <= x.start < hi])}
    # Ten values at most per attribute and side; user.id has more: flagged.
    user_ids = [k for k in sel if k[0] == "baseline" and k[1] == "span.user.id"]
    assert len(user_ids) == 10
    assert ("__too_many_values__", "span.user.id", "nil") in sel


def test_instant_query(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    got = query(
        server,
        "/api/metrics/query",
        q="{} | count_over_time() by (resource.service.name)",
        start=START,
        end=END,
    )
    want: dict[str, int] = {}
    for s in spans:
        if START * NS < s.start <= END * NS:
            want[s.service] = want.get(s.service, 0) + 1
    got_v = {s["labels"][0]["value"]["stringValue"]: s.get("value", 0.0) for s in got["series"]}
    assert got_v == {k: float(v) for k, v in want.items()}
    assert all("promLabels" in s for s in got["series"])


def test_exemplars_point_at_sent_traces(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    ids = {s.trace.lstrip("0") for s in spans}
    got = query(
        server,
        **range_params(
            "{} | quantile_over_time(duration, .9) by (resource.service.name)", exemplars=6
        ),
    )
    ex = [e for s in got["series"] for e in s.get("exemplars", [])]
    assert 0 < len(ex) <= 6
    for e in ex:
        labels = {kv["key"]: kv["value"]["stringValue"] for kv in e["labels"]}
        assert labels["trace:id"] in ids
        assert isinstance(e["timestampMs"], str) and e.get("value", 0) > 0
    got = query(server, **range_params("{} | rate()", exemplars=3))
    ex = got["series"][0].get("exemplars", [])
    assert 0 < len(ex) <= 3
    samples = values(got["series"][0])
    assert all(
        e.get("value", 0.0) in samples.values() for e in ex
    )  # a rate exemplar reads its sample


def test_blocks_answer_the_same(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, spans = loaded
    blocks = server.data / "blocks" / "single-tenant"
    wait_for(lambda: list(blocks.glob("*/meta.json")) if blocks.is_dir() else [], timeout=30)
    w = window()
    want = grouped(spans, lambda s: s.service, w)
    expect = {
        svc: {t: float(len(x)) for t, x in zip(stamps(w), per, strict=True)}
        for svc, per in want.items()
    }

    def answered() -> bool:
        got = query(server, **range_params("{} | count_over_time() by (resource.service.name)"))
        return {k: values(s) for k, s in series_by(got, "resource.service.name").items()} == expect

    wait_for(answered, timeout=30)
    got = query(server, **range_params("{} | count_over_time() by (resource.service.name)"))
    assert got["metrics"]["totalBlocks"] >= 0


@pytest.mark.parametrize(
    "params,needle",
    [
        ({"q": "{}"}, "not a metrics query"),
        ({"q": "{ .a = } | rate()"}, "invalid TraceQL query: parse error"),
        ({"q": "{} | rate()", "step": "soon"}, 'cannot parse "soon" to a valid duration'),
        ({"q": "{} | rate()", "start": "200", "end": "100"}, "end must be greater than start"),
        (
            {"q": "{} | rate()", "start": "0", "end": str(3 * 86400)},
            "metrics query time range exceeds the maximum allowed duration of 24h0m0s",
        ),
        (
            {"q": "{} | rate()", "start": "0", "end": "50000", "step": "1s"},
            "step of 1s is too small",
        ),
    ],
)
def test_bad_requests_are_400(
    loaded: tuple[TempoServer, list[Span]], params: dict[str, str], needle: str
) -> None:
    server, _ = loaded
    status, _, body = server.get("/api/metrics/query_range?" + urllib.parse.urlencode(params))
    assert status == 400
    assert needle in body.decode()


def test_queries_are_counted(loaded: tuple[TempoServer, list[Span]]) -> None:
    server, _ = loaded
    server.get("/api/metrics/query_range?q=%7B%7D")
    _, _, body = server.get("/metrics")
    lines = [
        x
        for x in body.decode().splitlines()
        if x.startswith("tempo_query_frontend_queries_total") and 'op="metrics"' in x
    ]
    assert any('status="400"' in x and float(x.split()[-1]) >= 1 for x in lines)
    assert any('status="200"' in x for x in lines)


def _decode(data: bytes) -> dict[int, list]:
    from tempo_fast.pkg.protowire import fields

    out: dict[int, list] = {}
    for number, _, value in fields(data):
        out.setdefault(number, []).append(value)
    return out


def test_streaming_grpc_answers_as_http(loaded: tuple[TempoServer, list[Span]]) -> None:
    import struct

    import grpc

    from tempo_fast.pkg.protowire import Writer

    server, _ = loaded
    q = "{} | count_over_time() by (resource.service.name)"
    want = query(server, **range_params(q))
    body = Writer().string(1, q).uint(2, START * NS).uint(3, END * NS).uint(4, STEP * NS)
    with grpc.insecure_channel(f"127.0.0.1:{server.http_port}") as channel:
        call = channel.unary_stream("/tempopb.StreamingQuerier/MetricsQueryRange")
        (message,) = list(call(bytes(body), timeout=30))
        got: dict[str, dict[str, float]] = {}
        for series in _decode(message)[1]:
            s = _decode(series)
            label = _decode(s[1][0])
            assert label[1][0] == b"resource.service.name"
            svc = _decode(label[2][0])[1][0].decode()  # AnyValue.string_value
            got[svc] = {}
            for sample in s.get(2, []):
                f = _decode(sample)
                value = struct.unpack("<d", struct.pack("<Q", f[1][0]))[0] if 1 in f else 0.0
                got[svc][str(f[2][0])] = value
        assert got == {k: values(v) for k, v in series_by(want, "resource.service.name").items()}
        instant = channel.unary_stream("/tempopb.StreamingQuerier/MetricsQueryInstant")
        body = Writer().string(1, "{}").uint(2, START * NS).uint(3, END * NS)
        with pytest.raises(grpc.RpcError) as info:
            list(instant(bytes(body), timeout=30))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == "not a metrics query"
