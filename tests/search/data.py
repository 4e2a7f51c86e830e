"""hypothesis strategies for small trace sets (encoded as OTLP requests) and TraceQL queries over
the same value pools, so that queries match sometimes.

A span is a dict (see ``reference.py``): trace_id, span_id, parent_span_id (``b""`` for the root),
name, kind (OTLP int), status_code (0 unset, 1 ok, 2 error), status_message, start_ns, end_ns,
attrs, resource (with service.name), events ``[{name, attrs}]``, scope_name, scope_version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tests.search.reference import (
    BOOL,
    DUR,
    FLOAT,
    INT,
    KIND,
    NIL,
    OTLP_KIND,
    OTLP_STATUS,
    SPANSET_OPS,
    STR,
    Aggregate,
    Attr,
    BinOp,
    By,
    Coalesce,
    Count,
    Field,
    Filter,
    Intrinsic,
    Lit,
    Not,
    Query,
    Select,
    SpansetExpr,
    SpansetOp,
    Stage,
)

# ---------------------------------------------------------------------------------------------
# Value pools (shared by data and queries)
# ---------------------------------------------------------------------------------------------

SERVICES = ("frontend", "cart", "db")
SPAN_NAMES = ("GET /", "POST /cart", "query", "a", "ab")
STATUS_MESSAGES = ("", "boom", "Forbidden")
EVENT_NAMES = ("exception", "retry", "cache.miss")
SCOPES = (("lib-a", "1.0"), ("lib-b", "2.0"))
ENVS = ("prod", "dev")
STRINGS = ("a", "b", "ab", "ba", "x", "200", "")
INTS = (-1, 0, 1, 2, 200, 500)
FLOATS = (-0.5, 0.0, 0.5, 1.0, 1.5, 200.0)
# aggregated keys hold one type of non-negative value (see reference.py)
AGG_INTS = (0, 1, 2, 200, 500)
AGG_FLOATS = (0.0, 0.5, 1.0, 1.5, 200.0)
DURATIONS = (0, 1_000, 1_000_000, 5_000_000, 100_000_000, 1_500_000_000)
START_OFFSETS = (0, 1_000, 1_000_000, 3_000_000, 50_000_000, 1_000_000_000)
BASE_NS = 1_700_000_000_000_000_000
REGEXES = ("a.*", ".*b", "a|b", "GET.*", "[ab]+", "x?", ".*", "200|500", "ab", "db|cart", ".*e.*")

# span attribute keys and their value pools; "code" mixes types, "shared" is on resources too
MIXED = tuple(INTS) + tuple(FLOATS) + tuple(STRINGS) + (True, False)
SPAN_KEYS: dict[str, tuple[Any, ...]] = {
    "http.status": AGG_INTS,
    "ratio": AGG_FLOATS,
    "flag": (True, False),
    "label": STRINGS,
    "code": MIXED,
    "shared": ("s1", "s2"),
}
RESOURCE_KEYS: dict[str, tuple[Any, ...]] = {
    "env": ENVS,
    "shared": ("r1", "s1"),
    "res.num": INTS,
}


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@st.composite
def resources(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-3 resources, each a service with a few optional attributes."""
    names = draw(st.lists(st.sampled_from(SERVICES), min_size=1, max_size=3, unique=True))
    out = []
    for name in names:
        attrs: dict[str, Any] = {"service.name": name}
        for key, pool in RESOURCE_KEYS.items():
            if draw(st.booleans()):
                attrs[key] = draw(st.sampled_from(pool))
        out.append(attrs)
    return out


def _id(draw: st.DrawFn, nbytes: int, exclude: Sequence[bytes] = ()) -> bytes:
    lo = 1 << (nbytes * 8 - 4)  # a non-zero first hex digit
    value = draw(
        st.integers(lo, (1 << (nbytes * 8)) - 1)
        .map(lambda n: n.to_bytes(nbytes, "big"))
        .filter(lambda b: b not in exclude)
    )
    return value


@st.composite
def trace(
    draw: st.DrawFn, trace_id: bytes, res: Sequence[dict[str, Any]], orphans: bool = True
) -> list[dict[str, Any]]:
    """One trace of 1-12 spans: a random tree, maybe without a root and with orphans (spans
    whose parent is not in the trace) unless ``orphans`` is false."""
    n = draw(st.integers(1, 12))
    ids: list[bytes] = []
    for _ in range(n):
        ids.append(_id(draw, 8, ids))
    has_root = not orphans or draw(st.sampled_from((True, True, True, False)))
    shapes = ("tree", "tree", "tree", "orphan") if orphans else ("tree",)
    spans = []
    for i in range(n):
        if i == 0 and has_root:
            parent = b""
        elif i > 0 and draw(st.sampled_from(shapes)) == "tree":
            parent = ids[draw(st.integers(0, i - 1))]
        else:
            parent = _id(draw, 8, ids)
        start = BASE_NS + draw(st.sampled_from(START_OFFSETS))
        attrs = {k: draw(st.sampled_from(p)) for k, p in SPAN_KEYS.items() if draw(st.booleans())}
        events = [
            {"name": name, "attrs": {}}
            for name in draw(st.lists(st.sampled_from(EVENT_NAMES), max_size=2))
        ]
        scope_name, scope_version = draw(st.sampled_from(SCOPES))
        spans.append(
            {
                "trace_id": trace_id,
                "span_id": ids[i],
                "parent_span_id": parent,
                "name": draw(st.sampled_from(SPAN_NAMES)),
                "kind": draw(st.sampled_from(sorted(OTLP_KIND))),
                "status_code": draw(st.sampled_from(sorted(OTLP_STATUS))),
                "status_message": draw(st.sampled_from(STATUS_MESSAGES)),
                "start_ns": start,
                "end_ns": start + draw(st.sampled_from(DURATIONS)),
                "attrs": attrs,
                "resource": draw(st.sampled_from(list(res))),
                "events": events,
                "scope_name": scope_name,
                "scope_version": scope_version,
            }
        )
    return spans


@st.composite
def trace_sets(draw: st.DrawFn, max_traces: int = 5, orphans: bool = True) -> list[dict[str, Any]]:
    """The spans of 1..max_traces traces sharing a few resources (see ``trace``)."""
    res = draw(resources())
    n = draw(st.integers(1, max_traces))
    trace_ids: list[bytes] = []
    for _ in range(n):
        trace_ids.append(_id(draw, 16, trace_ids))
    spans: list[dict[str, Any]] = []
    for tid in trace_ids:
        spans.extend(draw(trace(tid, res, orphans)))
    return spans


def _any_value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=v)


def _kvs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_any_value(v)) for k, v in attrs.items()]


def encode_request(spans: Sequence[dict[str, Any]]) -> bytes:
    """One ExportTraceServiceRequest holding spans (grouped by resource, then scope)."""
    by_res: dict[tuple, dict[tuple[str, str], list[dict[str, Any]]]] = {}
    res_of: dict[tuple, dict[str, Any]] = {}
    for s in spans:
        rkey = tuple(sorted(s["resource"].items()))
        res_of[rkey] = s["resource"]
        by_res.setdefault(rkey, {}).setdefault((s["scope_name"], s["scope_version"]), []).append(s)
    req = ExportTraceServiceRequest()
    for rkey, scopes in by_res.items():
        rs = ResourceSpans(resource=Resource(attributes=_kvs(res_of[rkey])))
        for (name, version), ss in scopes.items():
            sc = ScopeSpans(scope=InstrumentationScope(name=name, version=version))
            for s in ss:
                sc.spans.append(
                    Span(
                        trace_id=s["trace_id"],
                        span_id=s["span_id"],
                        parent_span_id=s["parent_span_id"],
                        name=s["name"],
                        kind=s["kind"],
                        start_time_unix_nano=s["start_ns"],
                        end_time_unix_nano=s["end_ns"],
                        attributes=_kvs(s["attrs"]),
                        events=[
                            Span.Event(
                                name=e["name"],
                                time_unix_nano=s["start_ns"],
                                attributes=_kvs(e["attrs"]),
                            )
                            for e in s["events"]
                        ],
                        status=Status(code=s["status_code"], message=s["status_message"]),
                    )
                )
            rs.scope_spans.append(sc)
        req.resource_spans.append(rs)
    return req.SerializeToString()


@st.composite
def requests_of(draw: st.DrawFn, spans: Sequence[dict[str, Any]]) -> list[bytes]:
    """The spans split at random over 1-3 OTLP requests (a trace may span several)."""
    k = draw(st.integers(1, 3))
    parts: list[list[dict[str, Any]]] = [[] for _ in range(k)]
    for s in spans:
        parts[draw(st.integers(0, k - 1))].append(s)
    return [encode_request(p) for p in parts if p]


# ---------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------

CMP_OPS = ("=", "!=", "<", "<=", ">", ">=")
STR_OPS = CMP_OPS + ("=~", "!~")
ARITH_OPS = ("+", "-", "*", "/")


def _lit(v: Any) -> Lit:
    if isinstance(v, bool):
        return Lit(BOOL, v)
    if isinstance(v, int):
        return Lit(INT, v)
    if isinstance(v, float):
        return Lit(FLOAT, v)
    return Lit(STR, v)


MIXED_LITS = st.sampled_from([_lit(v) for v in MIXED])
DUR_LITS = st.sampled_from([Lit(DUR, d) for d in DURATIONS + (2_000_000, 1_000_000_000)])
NUM_LITS = st.sampled_from([_lit(v) for v in INTS + FLOATS])


def _str_cmp(pool: Sequence[str]) -> st.SearchStrategy[tuple[str, Lit]]:
    eq = st.tuples(st.sampled_from(CMP_OPS), st.sampled_from(pool).map(lambda s: Lit(STR, s)))
    rx = st.tuples(
        st.sampled_from(("=~", "!~")), st.sampled_from(REGEXES).map(lambda s: Lit(STR, s))
    )
    return st.one_of(eq, rx)


def _intrinsic(name: str) -> st.SearchStrategy[Intrinsic]:
    return st.booleans().map(lambda scoped: Intrinsic(name, scoped))


def _attr(
    keys: Sequence[str], scopes: Sequence[str] = ("span", "resource", "")
) -> st.SearchStrategy:
    return st.builds(Attr, st.sampled_from(scopes), st.sampled_from(keys))


ATTR_KEYS = tuple(SPAN_KEYS) + tuple(RESOURCE_KEYS) + ("service.name", "missing")


@st.composite
def comparison(draw: st.DrawFn, span_ids: Sequence[str], trace_ids: Sequence[str]) -> Field:
    """One atom: an intrinsic or attribute compared to a literal (sometimes of another type)."""
    kind = draw(
        st.sampled_from(
            (
                "name",
                "status",
                "kind",
                "duration",
                "statusMessage",
                "root",
                "traceDuration",
                "ids",
                "attr",
                "attr",
                "attr",
                "nil",
                "arith",
            )
        )
    )
    if kind == "name":
        op, lit = draw(_str_cmp(SPAN_NAMES))
        return BinOp(op, draw(_intrinsic("name")), lit)
    if kind == "statusMessage":
        op, lit = draw(_str_cmp(STATUS_MESSAGES))
        return BinOp(op, draw(_intrinsic("statusMessage")), lit)
    if kind == "root":
        which = draw(st.sampled_from(("rootName", "rootServiceName")))
        op, lit = draw(_str_cmp(SPAN_NAMES + SERVICES))
        return BinOp(op, draw(_intrinsic(which)), lit)
    if kind == "status":
        lit = Lit("status", draw(st.sampled_from(("ok", "error", "unset"))))
        return BinOp(draw(st.sampled_from(("=", "!="))), draw(_intrinsic("status")), lit)
    if kind == "kind":
        lit = Lit(KIND, draw(st.sampled_from(sorted(OTLP_KIND.values()))))
        return BinOp(draw(st.sampled_from(("=", "!="))), draw(_intrinsic("kind")), lit)
    if kind in ("duration", "traceDuration"):
        lit = draw(st.one_of(DUR_LITS, DUR_LITS, NUM_LITS))
        return BinOp(draw(st.sampled_from(CMP_OPS)), draw(_intrinsic(kind)), lit)
    if kind == "ids":
        which = draw(st.sampled_from(("span:id", "trace:id")))
        pool = list(span_ids if which == "span:id" else trace_ids)
        pool.append("1" * (16 if which == "span:id" else 32))  # matches nothing
        lit = Lit(STR, draw(st.sampled_from(pool)))
        return BinOp(draw(st.sampled_from(("=", "!="))), Intrinsic(which), lit)
    if kind == "nil":
        return BinOp(draw(st.sampled_from(("=", "!="))), draw(_attr(ATTR_KEYS)), Lit(NIL))
    if kind == "arith":
        num_keys = ("http.status", "ratio", "code", "res.num")
        lhs = draw(st.one_of(_attr(num_keys), _intrinsic("duration")))
        op = draw(st.sampled_from(ARITH_OPS))
        rhs = draw(st.sampled_from([_lit(v) for v in (1, 2, -1, 0.5, 2.0)]))
        if op != "/" and draw(st.booleans()):
            rhs = draw(_attr(num_keys))
        value = BinOp(op, lhs, rhs)
        return BinOp(draw(st.sampled_from(CMP_OPS)), value, draw(st.one_of(NUM_LITS, DUR_LITS)))
    # attribute against a literal; the literal type often differs from the stored one
    attr = draw(_attr(ATTR_KEYS))
    if draw(st.booleans()):
        op, lit = draw(_str_cmp(STRINGS + SERVICES + ENVS + ("s1", "r1")))
        return BinOp(op, attr, lit)
    lit = draw(MIXED_LITS)
    ops = ("=", "!=") if lit.t == BOOL else CMP_OPS  # bools have no order: Tempo answers 400
    return BinOp(draw(st.sampled_from(ops)), attr, lit)


def field_exprs(span_ids: Sequence[str], trace_ids: Sequence[str]) -> st.SearchStrategy[Field]:
    """Boolean field expressions: atoms combined with &&, || and !."""
    atom = comparison(span_ids, trace_ids)
    return st.recursive(
        atom,
        lambda inner: st.one_of(
            st.builds(BinOp, st.sampled_from(("&&", "||")), inner, inner),
            st.builds(Not, inner),
        ),
        max_leaves=4,
    )


@st.composite
def filters(draw: st.DrawFn, span_ids: Sequence[str], trace_ids: Sequence[str]) -> Filter:
    """``{ }`` or ``{ expr }``, sometimes with one event:name test joined at the top."""
    if draw(st.integers(0, 9)) == 0:
        return Filter(None)
    expr = draw(field_exprs(span_ids, trace_ids))
    if draw(st.integers(0, 5)) == 0:
        op, lit = draw(_str_cmp(EVENT_NAMES))
        ev = BinOp(op, Intrinsic("event:name"), lit)
        expr = BinOp(draw(st.sampled_from(("&&", "||"))), ev, expr) if draw(st.booleans()) else ev
    return Filter(expr)


def spanset_exprs(
    span_ids: Sequence[str], trace_ids: Sequence[str]
) -> st.SearchStrategy[SpansetExpr]:
    """Filters combined with spanset operators (&&, ||, structural, negated, union)."""
    return st.recursive(
        filters(span_ids, trace_ids),
        lambda inner: st.builds(SpansetOp, st.sampled_from(SPANSET_OPS), inner, inner),
        max_leaves=3,
    )


AGG_FIELDS = (
    Intrinsic("duration"),
    Attr("span", "http.status"),
    Attr("", "http.status"),
    Attr("span", "ratio"),
)
BY_FIELDS = (
    Attr("resource", "service.name"),
    Attr("span", "label"),
    Attr("", "code"),
    Attr("", "shared"),
    Intrinsic("name"),
    Intrinsic("status"),
)


@st.composite
def stages(draw: st.DrawFn) -> Stage:
    """One pipeline stage."""
    kind = draw(st.sampled_from(("count", "agg", "by", "coalesce", "select")))
    if kind == "count":
        return Count(draw(st.sampled_from(CMP_OPS)), Lit(INT, draw(st.integers(0, 3))))
    if kind == "agg":
        fn = draw(st.sampled_from(("avg", "min", "max", "sum")))
        f = draw(st.sampled_from(AGG_FIELDS))
        if f == Intrinsic("duration"):
            value = draw(DUR_LITS)
        else:
            value = draw(st.sampled_from([_lit(v) for v in AGG_INTS + AGG_FLOATS]))
        return Aggregate(fn, f, draw(st.sampled_from(CMP_OPS)), value)
    if kind == "by":
        return By(draw(st.sampled_from(BY_FIELDS)))
    if kind == "coalesce":
        return Coalesce()
    fields = draw(st.lists(st.sampled_from(BY_FIELDS + AGG_FIELDS), min_size=1, max_size=2))
    return Select(tuple(fields))


@st.composite
def queries(draw: st.DrawFn, spans: Sequence[dict[str, Any]]) -> Query:
    """A query over the pools, with span:id / trace:id literals drawn from the given data."""
    span_ids = sorted({s["span_id"].hex() for s in spans})
    trace_ids = sorted({s["trace_id"].hex() for s in spans})
    head = draw(spanset_exprs(span_ids, trace_ids))
    return Query(head, tuple(draw(st.lists(stages(), max_size=2))))


def _py_value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    return getattr(v, which) if which else None


def decode_requests(requests: Sequence[bytes]) -> list[dict[str, Any]]:
    """The span dicts carried by OTLP requests (the inverse of ``requests_of``)."""
    spans = []
    for raw in requests:
        req = ExportTraceServiceRequest.FromString(raw)
        for rs in req.resource_spans:
            res = {kv.key: _py_value(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append(
                        {
                            "trace_id": s.trace_id,
                            "span_id": s.span_id,
                            "parent_span_id": s.parent_span_id,
                            "name": s.name,
                            "kind": s.kind,
                            "status_code": s.status.code,
                            "status_message": s.status.message,
                            "start_ns": s.start_time_unix_nano,
                            "end_ns": s.end_time_unix_nano,
                            "attrs": {kv.key: _py_value(kv.value) for kv in s.attributes},
                            "resource": res,
                            "events": [
                                {
                                    "name": e.name,
                                    "attrs": {kv.key: _py_value(kv.value) for kv in e.attributes},
                                }
                                for e in s.events
                            ],
                            "scope_name": ss.scope.name,
                            "scope_version": ss.scope.version,
                        }
                    )
    return spans
