"""Comparison helpers shared by the engine property tests and the reference self-checks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from tests.search.reference import evaluate, group_traces

Result = dict[str, Counter[tuple[frozenset[str], int]]]


def trimmed(trace_id: bytes) -> str:
    """Tempo's traceID form: hex without leading zeros."""
    return trace_id.hex().lstrip("0") or "0"


def spansets_of(meta: dict[str, Any]) -> list[dict[str, Any]]:
    sets = meta.get("spanSets")
    if sets is None:
        sets = [meta["spanSet"]] if meta.get("spanSet") else []
    return sets


def engine_result(traces: list[dict[str, Any]]) -> Result:
    out: Result = {}
    for meta in traces:
        c = out.setdefault(meta["traceID"], Counter())
        for ss in spansets_of(meta):
            ids = frozenset(sp["spanID"] for sp in ss.get("spans", []))
            c[(ids, int(ss.get("matched", 0)))] += 1
    return out


def reference_result(q: Any, spans: Sequence[dict[str, Any]]) -> Result:
    return {
        trimmed(tid): Counter((frozenset(i.hex() for i in ss.span_ids), ss.matched) for ss in sets)
        for tid, sets in evaluate(q, spans).items()
    }


def describe(spans: Sequence[dict[str, Any]]) -> str:
    """A compact listing of the data, for failure messages."""
    lines = []
    for tid, tspans in group_traces(spans).items():
        lines.append(f"trace {trimmed(tid)}")
        for s in tspans:
            lines.append(
                f"  {s['span_id'].hex()} parent={s['parent_span_id'].hex() or '-'} "
                f"{s['name']!r} svc={s['resource'].get('service.name')} kind={s['kind']} "
                f"status={s['status_code']}/{s['status_message']!r} "
                f"t={s['start_ns'] % 10**10}+{s['end_ns'] - s['start_ns']} attrs={s['attrs']} "
                f"res={s['resource']} events={[e['name'] for e in s['events']]}"
            )
    return "\n".join(lines)
