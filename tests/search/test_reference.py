"""The reference TraceQL evaluator on hand-built traces, with answers from Tempo's docs and code.

The trace (T1):

    R  frontend "GET /"       server  unset  100ms  http.status=200 shared="s1"
    ├─ A  cart "POST /cart"   client  error    5ms  http.status=500 code="200"
    │  └─ B  db "query"       intern. error    1ms  code=200, event "exception"
    └─ C  cart "query"        server  ok       1ms  code=1.0 flag=true, event "retry"
    O  db "query" (orphan: parent not in the trace) error 1ms code=1
    └─ O2 db "a"              intern. error    1ms

Resources: frontend {shared="r1"}, cart {env="prod"}, db {}.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.search.compare import engine_result, reference_result
from tests.search.data import (
    decode_requests,
    field_exprs,
    filters,
    queries,
    requests_of,
    trace_sets,
)
from tests.search.reference import (
    BOOL,
    DUR,
    FLOAT,
    INT,
    NIL,
    ROOT_NOT_YET_RECEIVED,
    STR,
    STRUCTURAL,
    Aggregate,
    Attr,
    BinOp,
    By,
    Coalesce,
    Count,
    Filter,
    Intrinsic,
    Lit,
    Not,
    Query,
    SpansetOp,
    V,
    binary,
    evaluate,
    render,
    render_duration,
    search_metadata,
    trace_summary,
    validate,
)

MS = 1_000_000
T1 = bytes.fromhex("1a" + "00" * 14 + "01")
T2 = bytes.fromhex("2b" + "00" * 15)
LABELS = ("R", "A", "B", "C", "O", "O2", "X", "Y")
ID = {label: bytes([0x10 + i]) + bytes(7) for i, label in enumerate(LABELS)}
LABEL = {v: k for k, v in ID.items()}
FRONTEND = {"service.name": "frontend", "shared": "r1"}
CART = {"service.name": "cart", "env": "prod"}
DB = {"service.name": "db"}


def span(
    label: str,
    parent: str | bytes,
    res: dict[str, Any],
    name: str,
    kind: int,
    status: int,
    start_ms: int,
    dur_ms: int,
    trace_id: bytes = T1,
    attrs: dict[str, Any] | None = None,
    events: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "span_id": ID[label],
        "parent_span_id": ID[parent] if isinstance(parent, str) else parent,
        "name": name,
        "kind": kind,
        "status_code": status,
        "status_message": "",
        "start_ns": 1_000 * MS + start_ms * MS,
        "end_ns": 1_000 * MS + (start_ms + dur_ms) * MS,
        "attrs": attrs or {},
        "resource": res,
        "events": [{"name": e, "attrs": {}} for e in events],
        "scope_name": "lib",
        "scope_version": "1",
    }


SPANS = [
    span("R", b"", FRONTEND, "GET /", 2, 0, 0, 100, attrs={"http.status": 200, "shared": "s1"}),
    span("A", "R", CART, "POST /cart", 3, 2, 1, 5, attrs={"http.status": 500, "code": "200"}),
    span("B", "A", DB, "query", 1, 2, 2, 1, attrs={"code": 200}, events=("exception",)),
    span("C", "R", CART, "query", 2, 1, 3, 1, attrs={"code": 1.0, "flag": True}, events=("retry",)),
    span("O", bytes.fromhex("77" * 8), DB, "query", 1, 2, 4, 1, attrs={"code": 1}),
    span("O2", "O", DB, "a", 1, 2, 5, 1),
]
# a trace without a root span
ROOTLESS = [
    span("X", bytes.fromhex("66" * 8), CART, "a", 1, 0, 0, 3, trace_id=T2),
    span("Y", "X", CART, "b", 1, 0, 1, 1, trace_id=T2),
]


def s(v: str) -> Lit:
    return Lit(STR, v)


def i(v: int) -> Lit:
    return Lit(INT, v)


def ms(v: int) -> Lit:
    return Lit(DUR, v * MS)


def f(expr: Any = None) -> Filter:
    return Filter(expr)


def eq(lhs: Any, rhs: Any, op: str = "=") -> BinOp:
    return BinOp(op, lhs, rhs)


NAME, STATUS, DURATION = Intrinsic("name"), Intrinsic("status"), Intrinsic("duration")
SERVICE = Attr("resource", "service.name")
ERROR = eq(STATUS, Lit("status", "error"))


def result(q: Any, spans: list[dict[str, Any]] = SPANS) -> list[tuple[set[str], int]]:
    """Per spanset of the first trace: the matched labels and the matched count."""
    out = evaluate(q, spans)
    return sorted(
        (({LABEL[x] for x in ss.span_ids}, ss.matched) for sets in out.values() for ss in sets),
        key=lambda p: sorted(p[0]),
    )


def labels(q: Any, spans: list[dict[str, Any]] = SPANS) -> set[str]:
    r = result(q, spans)
    assert len(r) <= 1, r
    return r[0][0] if r else set()


CASES = [
    # intrinsics
    (f(ERROR), {"A", "B", "O", "O2"}),
    (f(eq(DURATION, ms(2), ">")), {"R", "A"}),
    (f(eq(Intrinsic("duration", scoped=True), ms(1))), {"B", "C", "O", "O2"}),
    (f(eq(Intrinsic("kind"), Lit("kind", "server"))), {"R", "C"}),
    (f(eq(NAME, s("GET"), "=~")), set()),  # regexes are fully anchored
    (f(eq(NAME, s("GET.*"), "=~")), {"R"}),
    (f(eq(NAME, s("q.*|a"), "!~")), {"R", "A"}),
    (f(eq(NAME, s("b"), ">")), {"B", "C", "O"}),  # bytewise: "GET /" < "b"
    (f(eq(Intrinsic("traceDuration"), ms(50), ">")), {"R", "A", "B", "C", "O", "O2"}),
    (f(eq(Intrinsic("rootServiceName"), s("frontend"))), {"R", "A", "B", "C", "O", "O2"}),
    (f(eq(Intrinsic("rootName", scoped=True), s("GET /"))), {"R", "A", "B", "C", "O", "O2"}),
    (f(eq(Intrinsic("statusMessage"), s(""))), {"R", "A", "B", "C", "O", "O2"}),
    (f(eq(Intrinsic("span:id"), s(ID["C"].hex()))), {"C"}),
    (f(eq(Intrinsic("trace:id"), s(T1.hex()))), {"R", "A", "B", "C", "O", "O2"}),
    (f(eq(Intrinsic("event:name"), s("exception"))), {"B"}),
    (f(eq(Intrinsic("event:name"), s("exception"), "!=")), {"C"}),  # some other event
    # attributes and the type rules
    (f(eq(Attr("", "code"), i(200))), {"B"}),  # A's code is the string "200"
    (f(eq(Attr("", "code"), s("200"))), {"A"}),
    (f(eq(Attr("", "code"), i(200), "!=")), {"C", "O"}),  # string vs int is false, missing too
    (f(eq(Attr("span", "code"), i(1))), {"C", "O"}),  # 1.0 = 1
    (f(eq(Attr("", "code"), i(0), ">")), {"B", "C", "O"}),
    (f(Not(eq(Attr("", "code"), i(200)))), {"R", "A", "C", "O", "O2"}),  # !false is true
    (f(eq(Attr("", "shared"), s("s1"))), {"R"}),
    (f(eq(Attr("", "shared"), s("r1"))), set()),  # the span attribute shadows the resource one
    (f(eq(Attr("resource", "shared"), s("r1"))), {"R"}),
    (f(eq(Attr("span", "env"), s("prod"))), set()),
    (f(eq(Attr("", "env"), s("prod"))), {"A", "C"}),
    (f(eq(Attr("", "flag"), Lit(BOOL, True))), {"C"}),
    (f(eq(Attr("", "flag"), i(1))), set()),
    (f(eq(Attr("span", "missing"), Lit(NIL))), {"R", "A", "B", "C", "O", "O2"}),
    (f(eq(Attr("", "flag"), Lit(NIL), "!=")), {"C"}),
    (f(eq(Attr("", "code"), Lit(NIL))), {"R", "O2"}),
    # arithmetic
    (f(eq(BinOp("/", Attr("", "code"), i(2)), i(100))), {"B"}),
    (f(eq(BinOp("+", Attr("", "code"), i(1)), i(2))), {"C", "O"}),
    (f(eq(BinOp("*", DURATION, i(2)), ms(10), ">=")), {"R", "A"}),
    (f(eq(BinOp("-", Attr("span", "http.status"), Attr("", "missing")), i(0), ">")), set()),
    # && || ! inside a filter
    (f(BinOp("&&", ERROR, eq(SERVICE, s("db")))), {"B", "O", "O2"}),
    (f(BinOp("||", eq(NAME, s("a")), eq(Attr("", "flag"), Lit(BOOL, True)))), {"C", "O2"}),
    (f(Not(BinOp("||", ERROR, eq(SERVICE, s("frontend"))))), {"C"}),
    # spanset operators
    (SpansetOp("&&", f(ERROR), f(eq(STATUS, Lit("status", "ok")))), {"A", "B", "C", "O", "O2"}),
    (SpansetOp("&&", f(ERROR), f(eq(NAME, s("nope")))), set()),
    (SpansetOp("||", f(eq(NAME, s("a"))), f(eq(NAME, s("nope")))), {"O2"}),
    # structural (the orphan O and its child O2 take part in no relation)
    (SpansetOp(">>", f(eq(SERVICE, s("frontend"))), f(ERROR)), {"A", "B"}),
    (SpansetOp(">", f(eq(NAME, s("GET /"))), f()), {"A", "C"}),
    (SpansetOp("<", f(ERROR), f()), {"R", "A"}),
    (SpansetOp("<<", f(eq(Attr("", "flag"), Lit(BOOL, True))), f()), {"R"}),
    (SpansetOp("~", f(eq(NAME, s("POST /cart"))), f()), {"C"}),
    (SpansetOp("~", f(), f(eq(SERVICE, s("db")))), set()),
    (SpansetOp("!<", f(), f(eq(SERVICE, s("db")))), {"B", "O", "O2"}),  # docs: leaf spans
    (SpansetOp("!<", f(ERROR), f(ERROR)), {"B", "O", "O2"}),  # docs: last error of a cascade
    (SpansetOp("!>", f(ERROR), f(ERROR)), {"A", "O", "O2"}),
    (SpansetOp("!>>", f(eq(NAME, s("nope"))), f(ERROR)), {"A", "B", "O", "O2"}),
    (SpansetOp("!~", f(), f()), {"R", "B", "O", "O2"}),
    (SpansetOp(">>", f(eq(NAME, s("GET /"))), f(eq(NAME, s("nope")))), set()),
    (SpansetOp("&>", f(eq(NAME, s("GET /"))), f(eq(SERVICE, s("db")))), set()),
    (SpansetOp("&>>", f(eq(NAME, s("GET /"))), f(eq(SERVICE, s("db")))), {"R", "B"}),
    (SpansetOp("&<", f(eq(SERVICE, s("db"))), f()), {"A", "B"}),
    (SpansetOp("&<<", f(eq(NAME, s("query"))), f(ERROR)), {"A", "B"}),
    (SpansetOp("&~", f(eq(NAME, s("POST /cart"))), f()), {"A", "C"}),
    (SpansetOp(">", SpansetOp("&&", f(ERROR), f()), f(eq(SERVICE, s("db")))), {"B"}),
    # pipelines
    (Query(f(ERROR), (Count(">", i(3)),)), {"A", "B", "O", "O2"}),
    (Query(f(ERROR), (Count(">", i(4)),)), set()),
    (Query(f(), (Aggregate("avg", DURATION, ">", ms(18)),)), {"R", "A", "B", "C", "O", "O2"}),
    (Query(f(), (Aggregate("avg", DURATION, ">", ms(19)),)), set()),
    (Query(f(), (Aggregate("max", DURATION, "=", ms(100)),)), {"R", "A", "B", "C", "O", "O2"}),
    (Query(f(), (Aggregate("min", DURATION, "=", ms(1)),)), {"R", "A", "B", "C", "O", "O2"}),
    (Query(f(), (Aggregate("sum", Attr("span", "http.status"), "=", i(700)),)), set(LABELS[:6])),
    (
        Query(f(), (Aggregate("avg", Attr("span", "http.status"), "=", Lit(FLOAT, 350.0)),)),
        set(LABELS[:6]),
    ),
    (Query(f(), (Aggregate("sum", Attr("span", "missing"), ">", i(0)),)), set()),
]


@pytest.mark.parametrize(
    ("query", "expected"), CASES, ids=lambda c: render(c) if not isinstance(c, set) else ""
)
def test_case(query: Any, expected: set[str]) -> None:
    got = result(query)
    assert labels(query) == expected, render(query)
    if got:
        assert got[0][1] == len(expected)


def test_by_splits_and_coalesce_merges() -> None:
    q = Query(f(), (By(SERVICE), Count(">", i(1))))
    assert result(q) == [({"A", "C"}, 2), ({"B", "O", "O2"}, 3)]
    assert result(Query(f(), (By(SERVICE), Coalesce()))) == [(set(LABELS[:6]), 6)]
    # nil is a group of its own; int 200 and string "200" are different groups
    groups = result(Query(f(), (By(Attr("", "code")),)))
    assert sorted(len(g) for g, _ in groups) == [1, 1, 1, 1, 2]


def test_rootless_trace() -> None:
    assert labels(f(eq(Intrinsic("rootName"), s(""))), ROOTLESS) == {"X", "Y"}
    assert labels(SpansetOp(">", f(), f()), ROOTLESS) == set()
    assert labels(SpansetOp("!>", f(), f()), ROOTLESS) == {"X", "Y"}
    summary = trace_summary(ROOTLESS)
    assert summary["rootServiceName"] == ROOT_NOT_YET_RECEIVED
    assert summary["rootTraceName"] is None


def test_trace_summary() -> None:
    summary = trace_summary(SPANS)
    assert summary["traceID"] == T1.hex().lstrip("0")
    assert summary["rootServiceName"] == "frontend"
    assert summary["rootTraceName"] == "GET /"
    assert summary["durationMs"] == 100
    assert summary["serviceStats"]["db"] == {"spanCount": 3, "errorCount": 3}


def test_several_traces() -> None:
    out = evaluate(f(eq(NAME, s("a"))), SPANS + ROOTLESS)
    assert {tid: [LABEL[x] for ss in sets for x in ss.span_ids] for tid, sets in out.items()} == {
        T1: ["O2"],
        T2: ["X"],
    }


@pytest.mark.parametrize(
    ("op", "a", "b", "want"),
    [
        ("=", V(INT, 1), V(FLOAT, 1.0), True),
        ("!=", V(STR, "1"), V(INT, 1), False),
        ("!=", V(NIL), V(INT, 1), False),
        ("=", V(NIL), V(NIL), False),  # Tempo's parse test: `{ nil = nil }` is false
        ("/", V(INT, -7), V(INT, 2), V(INT, -3)),  # Go truncates toward zero
        ("%", V(INT, -7), V(INT, 2), V(INT, -1)),
        ("+", V(INT, 1), V(FLOAT, 0.5), V(FLOAT, 1.5)),
        ("+", V(DUR, 2), V(DUR, 3), V(FLOAT, 5.0)),  # durations meet in the float catch-all
        ("+", V(STR, "a"), V(INT, 1), False),
        ("<", V(BOOL, False), V(BOOL, True), False),  # bool has no order
        ("=", V(DUR, 1_000_000), V(INT, 1_000_000), True),
        ("=~", V(STR, "abc"), V(STR, "b"), False),
        ("=~", V(STR, "abc"), V(STR, ".*b.*"), True),
    ],
)
def test_binary(op: str, a: V, b: V, want: Any) -> None:
    expected = V(BOOL, want) if isinstance(want, bool) else want
    assert binary(op, a, b) == expected


def test_render() -> None:
    a, b, c = eq(NAME, s("x")), eq(Attr("span", "http.status"), i(200)), ERROR
    q = Query(
        SpansetOp(">>", f(BinOp("&&", BinOp("||", a, b), c)), f()),
        (By(SERVICE), Count(">", i(1))),
    )
    assert render(q, minimal=True) == (
        '{ name = "x" || span.http.status = 200 && status = error } >> { } '
        "| by(resource.service.name) | count() > 1"
    )
    assert render(q) == (
        '{ (((name = "x") || (span.http.status = 200)) && (status = error)) } >> { } '
        "| by(resource.service.name) | count() > 1"
    )
    # `&&` and `||` share one precedence level in Tempo's grammar: the right operand needs parens
    assert render(f(BinOp("||", a, BinOp("&&", b, c))), minimal=True) == (
        '{ name = "x" || (span.http.status = 200 && status = error) }'
    )
    assert render(SpansetOp("&&", f(a), SpansetOp(">", f(b), f())), minimal=True) == (
        '{ name = "x" } && { span.http.status = 200 } > { }'
    )
    assert render(f(eq(Attr("", "x"), Lit(NIL), "!="))) == "{ (.x != nil) }"
    assert render(f(eq(Intrinsic("rootServiceName", scoped=True), Lit(FLOAT, 1.0)))) == (
        "{ (trace:rootService = 1.0) }"
    )
    assert [render_duration(n) for n in (0, 1_500_000, 2_000_000_000, 7)] == [
        "0ns",
        "1500us",
        "2s",
        "7ns",
    ]


# ---------------------------------------------------------------------------------------------
# Self-checks of the reference on generated data (no engine needed)
# ---------------------------------------------------------------------------------------------

SELF = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ids(q: Any, spans: list[dict[str, Any]]) -> set[tuple[bytes, bytes]]:
    """(trace id, span id) of every matched span: span ids are unique within a trace only."""
    return {(t, x) for t, sets in evaluate(q, spans).items() for ss in sets for x in ss.span_ids}


@SELF
@given(st.data())
def test_filter_and_its_negation_partition_the_spans(data: st.DataObject) -> None:
    spans = data.draw(trace_sets())
    ids = sorted({x["span_id"].hex() for x in spans})
    tids = sorted({x["trace_id"].hex() for x in spans})
    expr = data.draw(field_exprs(ids, tids))
    yes, no = _ids(Filter(expr), spans), _ids(Filter(Not(expr)), spans)
    assert yes.isdisjoint(no)
    assert yes | no == {(x["trace_id"], x["span_id"]) for x in spans}


@SELF
@given(st.data(), st.sampled_from(STRUCTURAL))
def test_structural_and_negated_split_the_right_side(data: st.DataObject, op: str) -> None:
    spans = data.draw(trace_sets())
    ids = sorted({x["span_id"].hex() for x in spans})
    tids = sorted({x["trace_id"].hex() for x in spans})
    lhs, rhs = data.draw(filters(ids, tids)), data.draw(filters(ids, tids))
    pos, neg = _ids(SpansetOp(op, lhs, rhs), spans), _ids(SpansetOp("!" + op, lhs, rhs), spans)
    union = _ids(SpansetOp("&" + op, lhs, rhs), spans)
    assert pos.isdisjoint(neg)
    assert pos | neg == _ids(rhs, spans)
    assert pos <= union <= pos | _ids(lhs, spans)


def _field_exprs(q: Query) -> list[Any]:
    out: list[Any] = []

    def walk(e: Any) -> None:
        if isinstance(e, Filter) and e.expr is not None:
            out.append(e.expr)
        elif isinstance(e, SpansetOp):
            walk(e.lhs)
            walk(e.rhs)

    walk(q.head)
    return out


def test_validate_rejects_what_tempo_rejects() -> None:
    with pytest.raises(ValueError):
        validate(eq(Attr("resource", "code"), Lit(BOOL, True), "<="))
    with pytest.raises(ValueError):
        validate(eq(NAME, i(3)))
    with pytest.raises(ValueError):
        validate(eq(STATUS, Lit("status", "ok"), ">"))
    validate(eq(Attr("", "code"), i(3), "<="))
    validate(eq(BinOp("+", Attr("", "code"), i(1)), ms(5), ">"))


@SELF
@given(st.data())
def test_generated_queries_render_and_evaluate(data: st.DataObject) -> None:
    spans = data.draw(trace_sets())
    q = data.draw(queries(spans))
    assert "{" in render(q) and "{" in render(q, minimal=True)
    for e in _field_exprs(q):
        validate(e)  # the generator only writes queries Tempo accepts
    evaluate(q, spans)
    requests = data.draw(requests_of(spans))
    decoded = [ExportTraceServiceRequest.FromString(r) for r in requests]
    assert sum(
        len(ss.spans) for r in decoded for rs in r.resource_spans for ss in rs.scope_spans
    ) == len(spans)


@SELF
@given(st.data())
def test_the_comparison_harness_on_a_reference_backed_engine(data: st.DataObject) -> None:
    """The property tests' comparison, run against the reference itself over decoded requests."""
    spans = data.draw(trace_sets())
    requests = data.draw(requests_of(spans))
    q = data.draw(queries(spans))
    decoded = decode_requests(requests)
    got = engine_result(search_metadata(q, decoded, spss=1000))
    assert got == reference_result(q, spans)
    for meta in search_metadata(Filter(), decoded, spss=2):
        assert len(meta["spanSets"][0]["spans"]) <= 2
