"""hypothesis compares the Rust search engine with the reference evaluator: random trace sets
(sent as OTLP requests) and random queries over the same value pools.

Per trace the engine's spansets (as sets of span ids, with ``matched``) must equal the
reference's, as multisets: the order of spansets (e.g. from ``by()``) and of spans is free.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tempo_fast import _core
from tests.search.data import queries, requests_of, trace_sets
from tests.search.reference import evaluate, group_traces, render, trace_summary

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "search_otlp"), reason="the engine binding search_otlp is not built yet"
)

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
Result = dict[str, Counter[tuple[frozenset[str], int]]]


def trimmed(trace_id: bytes) -> str:
    """Tempo's traceID form: hex without leading zeros."""
    return trace_id.hex().lstrip("0") or "0"


def search(query: str, requests: Sequence[bytes], spss: int = 1000, limit: int = 0) -> list[Any]:
    """The engine's TraceSearchMetadata list."""
    return json.loads(_core.search_otlp(query, list(requests), spss, limit))


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


@SETTINGS
@given(st.data())
def test_spansets_match_reference(data: st.DataObject) -> None:
    spans = data.draw(trace_sets(), label="spans")
    requests = data.draw(requests_of(spans), label="requests")
    q = data.draw(queries(spans), label="query")
    text = render(q, minimal=data.draw(st.booleans(), label="minimal parentheses"))
    expected = reference_result(q, spans)
    got = engine_result(search(text, requests))
    assert got == expected, f"query: {text}\n{describe(spans)}"


@SETTINGS
@given(st.data())
def test_trace_metadata_matches_reference(data: st.DataObject) -> None:
    spans = data.draw(trace_sets(), label="spans")
    requests = data.draw(requests_of(spans), label="requests")
    spss = data.draw(st.integers(1, 4), label="spss")
    traces = search("{ }", requests, spss=spss)
    by_id = {trimmed(tid): tspans for tid, tspans in group_traces(spans).items()}
    assert sorted(m["traceID"] for m in traces) == sorted(by_id), describe(spans)
    for meta in traces:
        tspans = by_id[meta["traceID"]]
        want = trace_summary(tspans)
        assert meta.get("rootServiceName") == want["rootServiceName"], describe(spans)
        assert meta.get("rootTraceName") == want["rootTraceName"], describe(spans)
        assert str(meta["startTimeUnixNano"]) == want["startTimeUnixNano"], describe(spans)
        assert int(meta.get("durationMs", 0)) == want["durationMs"], describe(spans)
        stats = {
            svc: {
                "spanCount": int(v.get("spanCount", 0)),
                "errorCount": int(v.get("errorCount", 0)),
            }
            for svc, v in meta.get("serviceStats", {}).items()
        }
        assert stats == want["serviceStats"], describe(spans)
        (ss,) = spansets_of(meta)
        assert int(ss["matched"]) == len(tspans)
        assert len(ss["spans"]) == min(spss, len(tspans))
        starts = {s["span_id"].hex(): s for s in tspans}
        for sp in ss["spans"]:
            s = starts[sp["spanID"]]
            assert str(sp["startTimeUnixNano"]) == str(s["start_ns"])
            assert str(sp["durationNanos"]) == str(s["end_ns"] - s["start_ns"])


@SETTINGS
@given(st.data())
def test_limit_caps_traces(data: st.DataObject) -> None:
    spans = data.draw(trace_sets(), label="spans")
    requests = data.draw(requests_of(spans), label="requests")
    limit = data.draw(st.integers(1, 3), label="limit")
    got = search("{ }", requests, limit=limit)
    assert len(got) == min(limit, len(group_traces(spans)))
