"""hypothesis compares the Rust search engine with the reference evaluator: random trace sets
(sent as OTLP requests) and random queries over the same value pools.

Per trace the engine's spansets (as sets of span ids, with ``matched``) must equal the
reference's, as multisets: the order of spansets (e.g. from ``by()``) and of spans is free.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tempo_fast import _core
from tests.search.compare import describe, engine_result, reference_result, spansets_of, trimmed
from tests.search.data import queries, requests_of, trace_sets
from tests.search.reference import group_traces, render, trace_summary

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "search_otlp"), reason="the engine binding search_otlp is not built yet"
)

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def search(query: str, requests: Sequence[bytes], spss: int = 1000, limit: int = 0) -> list[Any]:
    """The engine's TraceSearchMetadata list."""
    return json.loads(_core.search_otlp(query, list(requests), spss, limit))


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
