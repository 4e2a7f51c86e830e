"""A plain-Python reference TraceQL evaluator (search queries, not metrics), the test oracle for
the Rust engine.

It is written from Tempo's documented semantics and its source (grafana/tempo, read for facts):
``pkg/traceql/ast_execute.go`` (BinaryOperation.execute, binOp, Aggregate/Group/Coalesce and
SpansetOperation.evaluate), ``pkg/traceql/ast.go`` (Static.Equals/NotEquals/compare, divideBy,
sumInto), ``pkg/traceql/enum_statics.go`` (isMatchingOperand), ``pkg/traceql/enum_operators.go``
(binaryTypeValid), ``tempodb/encoding/vparquet4/block_traceql.go`` (span.AttributeFor, ChildOf,
DescendantOf, SiblingOf), ``tempodb/encoding/vparquet4/nested_set_model.go`` and
``docs/sources/tempo/traceql/construct-traceql-queries.md``.

Rules relied on (each from the files above):

* Two-valued logic. A comparison whose operand types do not fit yields ``false``, never an
  error and never "unknown": ``isMatchingOperand`` (same type, both numeric int/float/duration,
  or either side nil) and then ``binaryTypeValid`` (bool: && || = !=; numbers: arithmetic and
  all comparisons; string: = != =~ !~ < <= > >=; nil/status/kind: = != only). So a string
  attribute compared to an int is false for every operator *including* ``!=``, and ``!`` of such a
  comparison is true.
* A missing attribute is nil; ``Static.Equals`` and ``Static.NotEquals`` are both false when
  either side is nil, and every other operator rejects nil: any comparison with a missing
  attribute is false (``!=`` too). ``attr != nil`` is "exists"; ``attr = nil`` is "does not
  exist" (the docs; the parser rewrites both to OpExists / OpNotExists).
* int op int stays int (Go: ``/`` truncates toward zero, ``%`` takes the dividend's sign); any
  other numeric mix is computed on float64 (durations as nanoseconds) and yields a float. Int vs
  float equality compares as floats (``1 = 1.0`` is true). Strings compare bytewise.
* ``=~`` / ``!~`` are fully anchored (Go RE2; Python ``re.fullmatch`` on the simple patterns the
  generator uses).
* Unscoped ``.x``: the span attribute wins over the resource attribute of the same name
  (AttributeFor: span, then resource); if the span's value has the wrong type the comparison is
  false, there is no fall-back to the resource value.
* Intrinsics: ``statusMessage`` is always present (``""`` when unset); ``rootName`` /
  ``rootServiceName`` are ``""`` for a trace without a root span; ``traceDuration`` is
  max(end) - min(start) over the trace; ``span:id`` / ``trace:id`` are lower-case hex strings.
  ``event:name`` is existential: a span matches if the filter holds for some one of its events
  (the fetch layer collects the matching events); with no events it is nil.
* Structure comes from the nested-set model built at ingest (nested_set_model.go): only spans
  reachable from a root (a span whose parent id is empty) get bounds. An orphan (parent id not in
  the trace) and its whole subtree have left = right = parent = 0 and are never a parent, child,
  ancestor, descendant or sibling of anything; the negated operators (``!>`` ...) therefore always
  keep them. Roots share nested-set parent -1, so two roots of one trace are siblings. A span is
  not its own sibling.
* ``A op B`` for a structural op keeps the right-hand spans related to some left-hand span;
  ``A !op B`` keeps the right-hand spans related to none (all of them if A matched nothing);
  ``A &op B`` keeps both sides' spans that take part in a relation. If B matched nothing there
  is no result at all. ``&&`` / ``||`` between spansets keep the union of both sides' spans when
  both / either matched.
* Pipelines: ``by(f)`` splits every spanset into groups by the value of f (nil is a group of its
  own; int 1 and float 1.0 are different groups); ``coalesce()`` merges all spansets of a trace
  into one; ``select()`` changes no match. ``count()`` counts spans; ``avg/min/max/sum(f)`` skip
  nil values and drop the spanset when all are nil; avg of ints is a float, avg of durations is a
  duration (integer division), the sum keeps the type of the first non-nil value.
* Each resulting spanset reports ``matched`` = its number of spans (before ``spss`` trims the
  list).

Assumptions of this reference (the generator in ``data.py`` keeps to them): span ids are unique
within a trace; a trace has at most one root; trace and span ids have a non-zero first hex digit
(so the trimmed hex form equals the full one); aggregated keys hold one numeric type of
non-negative values; ``event:name`` appears at most once per filter and never under ``!``;
regexes use the common RE2/Python subset; no integer division by zero. Spans inside a spanset
are reported in start-time order, but the comparison in the tests is by sets of span ids.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Union

# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

NIL, INT, FLOAT, STR, BOOL, DUR, STATUS, KIND = (
    "nil",
    "int",
    "float",
    "string",
    "bool",
    "duration",
    "status",
    "kind",
)
NUMERIC = {INT, FLOAT, DUR}
# Tempo's StaticType enum order, used by Static.compare for values of unrelated types
_TYPE_ORDER = {NIL: 0, INT: 3, FLOAT: 4, STR: 5, BOOL: 6, DUR: 11, STATUS: 12, KIND: 13}
# Tempo's internal Status enum (enum_statics.go), only needed for `status = <int>`
_STATUS_ENUM = {"error": 0, "ok": 1, "unset": 2}
OTLP_STATUS = {0: "unset", 1: "ok", 2: "error"}
OTLP_KIND = {
    0: "unspecified",
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
}


class V(NamedTuple):
    """A typed value (Tempo's Static)."""

    t: str
    v: Any = None


V_NIL = V(NIL)
V_TRUE = V(BOOL, True)
V_FALSE = V(BOOL, False)


def value_of(x: Any) -> V:
    """The typed value of an attribute value from the data model."""
    if x is None:
        return V_NIL
    if isinstance(x, bool):
        return V(BOOL, x)
    if isinstance(x, int):
        return V(INT, x)
    if isinstance(x, float):
        return V(FLOAT, x)
    if isinstance(x, str):
        return V(STR, x)
    raise TypeError(f"unsupported attribute value {x!r}")


def _float(a: V) -> float:
    return float(a.v) if a.t in NUMERIC else math.nan


def _equals(a: V, b: V) -> bool:
    """Static.Equals (ast.go)."""
    if a.t == NIL or b.t == NIL:
        return False
    if a.t in (INT, DUR):
        if b.t in (INT, DUR):
            return a.v == b.v
        if b.t == STATUS:
            return a.t == INT and a.v == _STATUS_ENUM[b.v]
        if b.t == FLOAT:
            return float(a.v) == b.v
        return False
    if a.t == STATUS:
        if b.t == STATUS:
            return a.v == b.v
        if b.t == INT:
            return _STATUS_ENUM[a.v] == b.v
        return False
    if a.t == FLOAT:
        return a.v == _float(b)
    return a.t == b.t and a.v == b.v


def _not_equals(a: V, b: V) -> bool:
    """Static.NotEquals: false when either side is nil."""
    if a.t == NIL or b.t == NIL:
        return False
    return not _equals(a, b)


def _matching(a: str, b: str) -> bool:
    """StaticType.isMatchingOperand (enum_statics.go)."""
    return a == b or (a in NUMERIC and b in NUMERIC) or NIL in (a, b)


_OPS_BY_TYPE = {
    BOOL: {"&&", "||", "=", "!="},
    INT: {"+", "-", "*", "/", "%", "^", "=", "!=", ">", ">=", "<", "<="},
    STR: {"=", "!=", "=~", "!~", ">", ">=", "<", "<="},
    NIL: {"=", "!="},
    STATUS: {"=", "!="},
    KIND: {"=", "!="},
}
_OPS_BY_TYPE[FLOAT] = _OPS_BY_TYPE[DUR] = _OPS_BY_TYPE[INT]


def _valid(op: str, a: str, b: str) -> bool:
    """Operator.binaryTypesValid (enum_operators.go)."""
    return op in _OPS_BY_TYPE[a] and op in _OPS_BY_TYPE[b]


def _go_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _go_mod(a: int, b: int) -> int:
    return a - _go_div(a, b) * b


def _fdiv(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


_CMP = {
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
}


def binary(op: str, a: V, b: V) -> V:
    """BinaryOperation.execute for two evaluated operands (ast_execute.go)."""
    if not _matching(a.t, b.t) or not _valid(op, a.t, b.t):
        return V_FALSE
    if a.t == STR and b.t == STR:
        if op in _CMP:
            return V(BOOL, _CMP[op](a.v.encode(), b.v.encode()))
        if op in ("=~", "!~"):
            hit = re.fullmatch(b.v, a.v, flags=re.DOTALL) is not None
            return V(BOOL, hit if op == "=~" else not hit)
    elif a.t == INT and b.t == INT:
        x, y = a.v, b.v
        if op == "+":
            return V(INT, x + y)
        if op == "-":
            return V(INT, x - y)
        if op == "*":
            return V(INT, x * y)
        if op == "/":
            return V(INT, _go_div(x, y))
        if op == "%":
            return V(INT, _go_mod(x, y))
        if op in _CMP:
            return V(BOOL, _CMP[op](x, y))
        if op == "^":
            # intPow(rhs, lhs) in ast_execute.go: Tempo raises the right operand to the left one
            return V(INT, y**x if x >= 0 else 1)
    elif a.t == BOOL and b.t == BOOL:
        if op == "&&":
            return V(BOOL, a.v and b.v)
        if op == "||":
            return V(BOOL, a.v or b.v)
    # the float catch-all
    x, y = _float(a), _float(b)
    if op == "+":
        return V(FLOAT, x + y)
    if op == "-":
        return V(FLOAT, x - y)
    if op == "*":
        return V(FLOAT, x * y)
    if op == "/":
        return V(FLOAT, _fdiv(x, y))
    if op == "%":
        return V(FLOAT, math.fmod(x, y) if y != 0 else math.nan)
    if op == "^":
        return V(FLOAT, math.pow(x, y))
    if op in _CMP:
        return V(BOOL, _CMP[op](x, y))
    if op == "=":
        return V(BOOL, _equals(a, b))
    if op == "!=":
        return V(BOOL, _not_equals(a, b))
    raise ValueError(f"unexpected operator {op}")


def scalar_compare(op: str, a: V, b: V) -> bool:
    """binOp (ast_execute.go): an aggregate's value against a literal in a scalar filter."""
    if not _matching(a.t, b.t) or not _valid(op, a.t, b.t):
        return False
    if op in _CMP:
        return _CMP[op](_float(a), _float(b))
    if op == "=":
        return _equals(a, b)
    if op == "!=":
        return _not_equals(a, b)
    if a.t == BOOL and b.t == BOOL and op in ("&&", "||"):
        return (a.v and b.v) if op == "&&" else (a.v or b.v)
    raise ValueError(f"unexpected operator {op}")


def _group_key(a: V) -> tuple[str, Any]:
    """Static.MapKey: the type is part of the key (int 1 and float 1.0 are different groups)."""
    if a.t == FLOAT:
        return (a.t, math.copysign(1.0, a.v), a.v)  # bitwise: -0.0 differs from 0.0
    return (a.t, a.v)


def _compare(a: V, b: V) -> int:
    """Static.compare for min()/max(): numerically across numeric types, else by type order.

    (Tempo compares two floats by their int64 bit patterns, which misorders negative floats;
    the generator aggregates non-negative values only, where both agree.)
    """
    if a.t != b.t:
        if a.t in NUMERIC and b.t in NUMERIC:
            x, y = _float(a), _float(b)
        else:
            x, y = _TYPE_ORDER[a.t], _TYPE_ORDER[b.t]
    else:
        x, y = a.v, b.v
        if a.t == STR:
            x, y = x.encode(), y.encode()
    return (x > y) - (x < y)


# ---------------------------------------------------------------------------------------------
# AST
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lit:
    """A literal: ``V`` type name and Python value (durations in ns, status/kind by name)."""

    t: str
    v: Any = None


@dataclass(frozen=True)
class Attr:
    """``span.x`` / ``resource.x`` / unscoped ``.x`` (scope ``""``)."""

    scope: str
    name: str


INTRINSICS = (
    "name",
    "status",
    "kind",
    "duration",
    "statusMessage",
    "rootName",
    "rootServiceName",
    "traceDuration",
    "span:id",
    "trace:id",
    "event:name",
)
# the scoped spelling of the classic unscoped intrinsics
SCOPED_ALIAS = {
    "name": "span:name",
    "status": "span:status",
    "kind": "span:kind",
    "duration": "span:duration",
    "statusMessage": "span:statusMessage",
    "rootName": "trace:rootName",
    "rootServiceName": "trace:rootService",
    "traceDuration": "trace:duration",
}


@dataclass(frozen=True)
class Intrinsic:
    """An intrinsic by its canonical name (``INTRINSICS``); ``scoped`` renders the alias."""

    name: str
    scoped: bool = False


@dataclass(frozen=True)
class BinOp:
    """A binary field expression: arithmetic, comparison, ``&&`` / ``||``."""

    op: str
    lhs: Field
    rhs: Field


@dataclass(frozen=True)
class Not:
    """``!(expr)``."""

    expr: Field


Field = Union[Lit, Attr, Intrinsic, BinOp, Not]  # noqa: UP007 - used at runtime


@dataclass(frozen=True)
class Filter:
    """``{ expr }``; ``{ }`` when expr is None."""

    expr: Field | None = None


STRUCTURAL = (">", ">>", "<", "<<", "~")
SPANSET_OPS = (
    ("&&", "||")
    + STRUCTURAL
    + tuple("!" + o for o in STRUCTURAL)
    + tuple("&" + o for o in STRUCTURAL)
)


@dataclass(frozen=True)
class SpansetOp:
    """``lhs op rhs`` for spanset operators (``&&``, ``||``, structural and their forms)."""

    op: str
    lhs: SpansetExpr
    rhs: SpansetExpr


SpansetExpr = Union[Filter, SpansetOp]  # noqa: UP007


@dataclass(frozen=True)
class Count:
    """``count() op value``."""

    op: str
    value: Lit


@dataclass(frozen=True)
class Aggregate:
    """``fn(field) op value`` for fn in avg, min, max, sum."""

    fn: str
    field: Field
    op: str
    value: Lit


@dataclass(frozen=True)
class By:
    """``by(field)``."""

    field: Field


@dataclass(frozen=True)
class Coalesce:
    """``coalesce()``."""


@dataclass(frozen=True)
class Select:
    """``select(fields...)``."""

    fields: tuple[Field, ...]


Stage = Union[Count, Aggregate, By, Coalesce, Select]  # noqa: UP007


@dataclass(frozen=True)
class Query:
    """A spanset expression followed by pipeline stages."""

    head: SpansetExpr
    stages: tuple[Stage, ...] = ()


_INTRINSIC_TYPES = {
    "name": STR,
    "status": STATUS,
    "kind": KIND,
    "duration": DUR,
    "statusMessage": STR,
    "rootName": STR,
    "rootServiceName": STR,
    "traceDuration": DUR,
    "span:id": STR,
    "trace:id": STR,
    "event:name": STR,
}
ATTRIBUTE = "attribute"  # Tempo's TypeAttribute: known only per span
_BOOLEAN_OPS = {"&&", "||", "=", "!=", "<", "<=", ">", ">=", "=~", "!~"}


def implied_type(e: Field) -> str:
    """The static type Tempo's validator sees (BinaryOperation.impliedType)."""
    if isinstance(e, Lit):
        return e.t
    if isinstance(e, Attr):
        return ATTRIBUTE
    if isinstance(e, Intrinsic):
        return _INTRINSIC_TYPES[e.name]
    if isinstance(e, Not):
        return implied_type(e.expr)
    if e.op in _BOOLEAN_OPS:
        return BOOL
    t = implied_type(e.lhs)
    return t if t != ATTRIBUTE else implied_type(e.rhs)


def validate(e: Field) -> None:
    """Tempo's static check of a field expression; raises ValueError as Tempo answers 400."""
    if isinstance(e, Not):
        validate(e.expr)
        if implied_type(e.expr) not in (BOOL, ATTRIBUTE):
            raise ValueError("! needs a boolean")
    if not isinstance(e, BinOp) or _nil_test(e) is not None:
        return
    validate(e.lhs)
    validate(e.rhs)
    a, b = implied_type(e.lhs), implied_type(e.rhs)
    if ATTRIBUTE in (a, b):
        ok = all(t == ATTRIBUTE or e.op in _OPS_BY_TYPE[t] for t in (a, b))
    else:
        ok = _matching(a, b) and _valid(e.op, a, b)
    if not ok:
        raise ValueError(f"illegal operation for the given types: {e}")


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

_DUR_UNITS = (
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
)
# Tempo's grammar (expr.y), lowest first: `&&` and `||` share one level, left-associative
_PREC = {"&&": 1, "||": 1}
_PREC.update({o: 2 for o in ("=", "!=", "<", "<=", ">", ">=", "=~", "!~") + SPANSET_OPS[2:]})
_PREC.update({"+": 3, "-": 3, "*": 5, "/": 5, "%": 5, "^": 6})
_NOT_PREC = 4


def render_duration(ns: int) -> str:
    """A duration literal (``1500ms``, ``2s``, ``7ns``)."""
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    for unit, size in _DUR_UNITS:
        if ns and ns % size == 0:
            return f"{sign}{ns // size}{unit}"
    return f"{sign}{ns}ns"


def render_lit(lit: Lit) -> str:
    """A literal in TraceQL syntax."""
    if lit.t == NIL:
        return "nil"
    if lit.t == BOOL:
        return "true" if lit.v else "false"
    if lit.t == INT:
        return str(lit.v)
    if lit.t == FLOAT:
        text = repr(float(lit.v))
        return text if ("." in text or "e" in text or "n" in text) else text + ".0"
    if lit.t == STR:
        return '"' + lit.v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if lit.t == DUR:
        return render_duration(lit.v)
    if lit.t in (STATUS, KIND):
        return lit.v
    raise ValueError(f"bad literal {lit!r}")


def render_field(e: Field, minimal: bool = False) -> str:
    """A field expression; fully parenthesised unless ``minimal`` (then by Tempo precedence)."""
    if isinstance(e, Lit):
        return render_lit(e)
    if isinstance(e, Attr):
        return f"{e.scope}.{e.name}" if e.scope else f".{e.name}"
    if isinstance(e, Intrinsic):
        return SCOPED_ALIAS.get(e.name, e.name) if e.scoped else e.name
    if isinstance(e, Not):
        return f"!({render_field(e.expr, minimal)})"
    if isinstance(e, BinOp):
        lhs, rhs = render_field(e.lhs, minimal), render_field(e.rhs, minimal)
        if not minimal:
            return f"({lhs} {e.op} {rhs})"
        p = _PREC[e.op]
        if _prec_of(e.lhs) < p or (e.op == "^" and _prec_of(e.lhs) == p):
            lhs = f"({lhs})"
        if _prec_of(e.rhs) < p or (e.op != "^" and _prec_of(e.rhs) == p):
            rhs = f"({rhs})"
        return f"{lhs} {e.op} {rhs}"
    raise TypeError(e)


def _prec_of(e: Field) -> int:
    if isinstance(e, BinOp):
        return _PREC[e.op]
    if isinstance(e, Not):
        return _NOT_PREC
    return 99


def render_spanset(e: SpansetExpr, minimal: bool = False) -> str:
    """A spanset expression."""
    if isinstance(e, Filter):
        return "{ }" if e.expr is None else "{ " + render_field(e.expr, minimal) + " }"
    lhs, rhs = render_spanset(e.lhs, minimal), render_spanset(e.rhs, minimal)
    if not minimal:
        if isinstance(e.lhs, SpansetOp):
            lhs = f"({lhs})"
        if isinstance(e.rhs, SpansetOp):
            rhs = f"({rhs})"
        return f"{lhs} {e.op} {rhs}"
    p = _PREC[e.op]
    if isinstance(e.lhs, SpansetOp) and _PREC[e.lhs.op] < p:
        lhs = f"({lhs})"
    if isinstance(e.rhs, SpansetOp) and _PREC[e.rhs.op] <= p:
        rhs = f"({rhs})"
    return f"{lhs} {e.op} {rhs}"


def render_stage(s: Stage, minimal: bool = False) -> str:
    """A pipeline stage."""
    if isinstance(s, Count):
        return f"count() {s.op} {render_lit(s.value)}"
    if isinstance(s, Aggregate):
        return f"{s.fn}({render_field(s.field, minimal)}) {s.op} {render_lit(s.value)}"
    if isinstance(s, By):
        return f"by({render_field(s.field, minimal)})"
    if isinstance(s, Coalesce):
        return "coalesce()"
    if isinstance(s, Select):
        return "select(" + ", ".join(render_field(f, minimal) for f in s.fields) + ")"
    raise TypeError(s)


def render(q: Query | SpansetExpr, minimal: bool = False) -> str:
    """The TraceQL text of a query."""
    if not isinstance(q, Query):
        q = Query(q)
    return " | ".join(
        [render_spanset(q.head, minimal)] + [render_stage(s, minimal) for s in q.stages]
    )


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@dataclass
class Spanset:
    """One resulting spanset: matched span ids (start-time order) and the matched count."""

    span_ids: list[bytes]
    matched: int
    attrs: dict[str, Any] = field(default_factory=dict)


class _Trace:
    """One trace's spans (sorted by start time) with its structure and trace-level intrinsics."""

    def __init__(self, spans: Sequence[dict[str, Any]]) -> None:
        self.spans = sorted(spans, key=lambda s: (s["start_ns"], s["span_id"]))
        by_id = {s["span_id"]: i for i, s in enumerate(self.spans)}
        roots = [i for i, s in enumerate(self.spans) if not s["parent_span_id"]]
        self.parent: list[int | None] = [
            None if not s["parent_span_id"] else by_id.get(s["parent_span_id"]) for s in self.spans
        ]
        children: dict[int, list[int]] = {}
        for i, p in enumerate(self.parent):
            if p is not None:
                children.setdefault(p, []).append(i)
        # reachable from a root, with its ancestors; everything else has no nested-set bounds
        self.ancestors: dict[int, frozenset[int]] = {}
        stack = [(r, frozenset()) for r in roots]
        while stack:
            i, anc = stack.pop()
            if i in self.ancestors:
                continue
            self.ancestors[i] = anc
            stack.extend((c, anc | {i}) for c in children.get(i, []))
        # nested-set parent: -1 for roots, the parent's index otherwise, None when unreachable
        self.ns_parent = {i: (-1 if i in roots else self.parent[i]) for i in self.ancestors}
        root = self.spans[roots[0]] if roots else None
        self.root_name = root["name"] if root else ""
        self.root_service = _service(root) if root else ""
        self.start = min(s["start_ns"] for s in self.spans)
        self.end = max(s["end_ns"] for s in self.spans)

    def related(self, op: str, x: int, y: int) -> bool:
        """Whether left span x and right span y stand in the base structural relation ``op``."""
        if x not in self.ancestors or y not in self.ancestors:
            return False
        if op == ">":
            return self.parent[y] == x
        if op == "<":
            return self.parent[x] == y
        if op == ">>":
            return x in self.ancestors[y]
        if op == "<<":
            return y in self.ancestors[x]
        if op == "~":
            return x != y and self.ns_parent[x] == self.ns_parent[y]
        raise ValueError(op)


def _service(span: dict[str, Any]) -> str:
    svc = span.get("resource", {}).get("service.name")
    return svc if isinstance(svc, str) else ""


def _uses_event(e: Field | None) -> bool:
    if isinstance(e, Intrinsic):
        return e.name == "event:name"
    if isinstance(e, BinOp):
        return _uses_event(e.lhs) or _uses_event(e.rhs)
    if isinstance(e, Not):
        return _uses_event(e.expr)
    return False


def _nil_test(e: BinOp) -> tuple[Attr | Intrinsic, bool] | None:
    """``x != nil`` / ``x = nil`` (either side): the operand and whether it asks for existence."""
    if e.op not in ("=", "!="):
        return None
    for a, b in ((e.lhs, e.rhs), (e.rhs, e.lhs)):
        if isinstance(b, Lit) and b.t == NIL and isinstance(a, Attr | Intrinsic):
            return a, e.op == "!="
    return None


class _Eval:
    def __init__(self, trace: _Trace) -> None:
        self.tr = trace

    # -- field expressions ---------------------------------------------------------------------

    def field(self, e: Field, i: int, event: V) -> V:
        if isinstance(e, Lit):
            return V(e.t, e.v)
        if isinstance(e, Attr):
            return self.attr(e, i)
        if isinstance(e, Intrinsic):
            return self.intrinsic(e.name, i, event)
        if isinstance(e, Not):
            v = self.field(e.expr, i, event)
            if v.t != BOOL:
                raise ValueError(f"! expects a boolean, got {v}")
            return V(BOOL, not v.v)
        if isinstance(e, BinOp):
            nil = _nil_test(e)
            if nil is not None:
                operand, exists = nil
                present = self.field(operand, i, event).t != NIL
                return V(BOOL, present == exists)
            return binary(e.op, self.field(e.lhs, i, event), self.field(e.rhs, i, event))
        raise TypeError(e)

    def attr(self, a: Attr, i: int) -> V:
        s = self.tr.spans[i]
        span_attrs, res_attrs = s.get("attrs", {}), s.get("resource", {})
        if a.scope in ("span", "") and a.name in span_attrs:
            return value_of(span_attrs[a.name])
        if a.scope in ("resource", "") and a.name in res_attrs:
            return value_of(res_attrs[a.name])
        return V_NIL

    def intrinsic(self, name: str, i: int, event: V) -> V:
        s = self.tr.spans[i]
        if name == "name":
            return V(STR, s["name"])
        if name == "status":
            return V(STATUS, OTLP_STATUS[s["status_code"]])
        if name == "kind":
            return V(KIND, OTLP_KIND[s["kind"]])
        if name == "duration":
            return V(DUR, s["end_ns"] - s["start_ns"])
        if name == "statusMessage":
            return V(STR, s.get("status_message", ""))
        if name == "rootName":
            return V(STR, self.tr.root_name)
        if name == "rootServiceName":
            return V(STR, self.tr.root_service)
        if name == "traceDuration":
            return V(DUR, self.tr.end - self.tr.start)
        if name == "span:id":
            return V(STR, s["span_id"].hex())
        if name == "trace:id":
            return V(STR, s["trace_id"].hex())
        if name == "event:name":
            return event
        raise ValueError(f"unknown intrinsic {name}")

    def matches(self, e: Field | None, i: int) -> bool:
        if e is None:
            return True
        if _uses_event(e):
            events = self.tr.spans[i].get("events", [])
            bindings = [V(STR, ev["name"]) for ev in events] or [V_NIL]
        else:
            bindings = [V_NIL]
        return any(self.field(e, i, b) == V_TRUE for b in bindings)

    # -- spansets -------------------------------------------------------------------------------

    def spanset(self, e: SpansetExpr, inp: list[list[int]]) -> list[list[int]]:
        out: list[list[int]] = []
        if isinstance(e, Filter):
            for ss in inp:
                hit = [i for i in ss if self.matches(e.expr, i)]
                if hit:
                    out.append(hit)
            return out
        for ss in inp:
            lhs = self.spanset(e.lhs, [ss])
            rhs = self.spanset(e.rhs, [ss])
            if e.op in ("&&", "||"):
                ok = (lhs and rhs) if e.op == "&&" else (lhs or rhs)
                if ok:
                    out.append(_unique(lhs + rhs))
                continue
            if not rhs:
                continue
            if len(lhs) > 1 or len(rhs) > 1:
                raise ValueError("spanset operators need one spanset per trace (use coalesce())")
            left = lhs[0] if lhs else []
            hit = self.structural(e.op, left, rhs[0])
            if hit:
                out.append(hit)
        return out

    def structural(self, op: str, left: list[int], right: list[int]) -> list[int]:
        rel = self.tr.related
        base = op.lstrip("!&")
        if op.startswith("!"):
            return [y for y in right if not any(rel(base, x, y) for x in left)]
        ys = [y for y in right if any(rel(base, x, y) for x in left)]
        if op.startswith("&"):
            xs = [x for x in left if any(rel(base, x, y) for y in right)]
            return _unique([ys, xs])
        return ys

    # -- pipeline stages ------------------------------------------------------------------------

    def stage(self, s: Stage, inp: list[list[int]]) -> list[list[int]]:
        if isinstance(s, Select):
            return inp
        if isinstance(s, Coalesce):
            return [[i for ss in inp for i in ss]]
        if isinstance(s, By):
            out = []
            for ss in inp:
                groups: dict[Any, list[int]] = {}
                for i in ss:
                    groups.setdefault(_group_key(self.field(s.field, i, V_NIL)), []).append(i)
                out.extend(groups.values())
            return out
        if isinstance(s, Count):
            lit = V(s.value.t, s.value.v)
            return [ss for ss in inp if scalar_compare(s.op, V(INT, len(ss)), lit)]
        if isinstance(s, Aggregate):
            lit = V(s.value.t, s.value.v)
            out = []
            for ss in inp:
                val = self.aggregate(s.fn, s.field, ss)
                if val is not None and scalar_compare(s.op, val, lit):
                    out.append(ss)
            return out
        raise TypeError(s)

    def aggregate(self, fn: str, e: Field, ss: list[int]) -> V | None:
        vals = [v for v in (self.field(e, i, V_NIL) for i in ss) if v.t != NIL]
        if not vals:
            return None
        if fn in ("min", "max"):
            best = vals[0]
            for v in vals[1:]:
                c = _compare(v, best)
                if (fn == "max" and c > 0) or (fn == "min" and c < 0):
                    best = v
            return best
        first = vals[0]
        total = first.v
        if first.t in NUMERIC:
            total = sum(v.v for v in vals if v.t == first.t)  # sumInto skips other types
        if fn == "sum":
            return V(first.t, total)
        if fn == "avg":
            n = len(vals)
            if first.t == INT:
                return V(FLOAT, float(total % (1 << 64)) / n)  # float64(uint64(sum)) / n
            if first.t == DUR:
                return V(DUR, _go_div(total, n))
            if first.t == FLOAT:
                return V(FLOAT, total / n)
            return first
        raise ValueError(f"unknown aggregate {fn}")


def _unique(spansets: Iterable[list[int]]) -> list[int]:
    seen: dict[int, None] = {}
    for ss in spansets:
        for i in ss:
            seen.setdefault(i, None)
    return list(seen)


def group_traces(spans: Iterable[dict[str, Any]]) -> dict[bytes, list[dict[str, Any]]]:
    """Spans grouped by trace id."""
    out: dict[bytes, list[dict[str, Any]]] = {}
    for s in spans:
        out.setdefault(s["trace_id"], []).append(s)
    return out


def evaluate_trace(q: Query | SpansetExpr, spans: Sequence[dict[str, Any]]) -> list[Spanset]:
    """The spansets the query yields for one trace (empty list: the trace does not match)."""
    if not isinstance(q, Query):
        q = Query(q)
    if not spans:
        return []
    tr = _Trace(spans)
    ev = _Eval(tr)
    result = ev.spanset(q.head, [list(range(len(tr.spans)))])
    for stage in q.stages:
        if not result:
            break
        result = ev.stage(stage, result)
    out = []
    for ss in result:
        ordered = sorted(ss, key=lambda i: i)  # indices follow start-time order
        out.append(Spanset([tr.spans[i]["span_id"] for i in ordered], len(ss)))
    return out


def evaluate(q: Query | SpansetExpr, spans: Iterable[dict[str, Any]]) -> dict[bytes, list[Spanset]]:
    """Per matching trace id, the spansets the query yields."""
    out = {}
    for tid, tspans in group_traces(spans).items():
        res = evaluate_trace(q, tspans)
        if res:
            out[tid] = res
    return out


ROOT_NOT_YET_RECEIVED = "<root span not yet received>"


def trace_summary(spans: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Tempo's TraceSearchMetadata fields for one trace (without spanSets)."""
    tr = _Trace(spans)
    stats: dict[str, dict[str, int]] = {}
    for s in tr.spans:
        st = stats.setdefault(_service(s), {"spanCount": 0, "errorCount": 0})
        st["spanCount"] += 1
        st["errorCount"] += s["status_code"] == 2
    has_root = any(not s["parent_span_id"] for s in tr.spans)
    return {
        "traceID": tr.spans[0]["trace_id"].hex().lstrip("0") or "0",
        "rootServiceName": tr.root_service if has_root else ROOT_NOT_YET_RECEIVED,
        "rootTraceName": tr.root_name if has_root else None,
        "startTimeUnixNano": str(tr.start),
        "durationMs": (tr.end - tr.start) // 1_000_000,
        "serviceStats": stats,
    }


def search_metadata(
    q: Query | SpansetExpr, spans: Iterable[dict[str, Any]], spss: int = 3, limit: int = 0
) -> list[dict[str, Any]]:
    """Tempo's /api/search ``traces`` for the query (traces in no particular order)."""
    out = []
    for tspans in group_traces(spans).values():
        sets = evaluate_trace(q, tspans)
        if not sets:
            continue
        by_id = {s["span_id"]: s for s in tspans}
        meta = trace_summary(tspans)
        if meta["rootTraceName"] is None:
            del meta["rootTraceName"]
        meta["spanSets"] = [
            {
                "spans": [
                    {
                        "spanID": x.hex(),
                        "startTimeUnixNano": str(by_id[x]["start_ns"]),
                        "durationNanos": str(by_id[x]["end_ns"] - by_id[x]["start_ns"]),
                    }
                    for x in ss.span_ids[:spss]
                ],
                "matched": ss.matched,
            }
            for ss in sets
        ]
        out.append(meta)
        if limit and len(out) >= limit:
            break
    return out
