"""hypothesis throws random and mutated bytes at the Rust decoder through Python:
it answers with a result or a DecodeError, never a crash."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tempo_fast import _core
from tests.e2e.test_bad_input import valid_request

SEED = valid_request(5)


@pytest.fixture(scope="module")
def ingester(tmp_path_factory: pytest.TempPathFactory) -> _core.Ingester:
    d: Path = tmp_path_factory.mktemp("fuzz")
    ing = _core.Ingester(str(d / "wal"), {"blocks_path": str(d / "blocks"), "fsync": "never"})
    ing.replay()
    yield ing
    ing.close()


def push(ing: _core.Ingester, body: bytes, **kw) -> None:
    try:
        r = ing.push("fuzz", body, **kw)
    except _core.DecodeError as e:
        assert str(e)
        assert e.reason_code in {"invalid_protobuf", "invalid_json", "invalid_gzip", "too_large"}
    else:
        assert r.accepted >= 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048))
def test_random_bytes(ingester, body: bytes) -> None:
    push(ingester, body)
    push(ingester, body, encoding="json")
    push(ingester, body, encoding="zipkin_json")
    push(ingester, body, gzip=True)


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(SEED)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 16))]
    return bytes(data)


@settings(max_examples=500, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated())
def test_mutated_requests(ingester, body: bytes) -> None:
    push(ingester, body)
    push(ingester, gzip.compress(body), gzip=True)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda c: (
            st.lists(c, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "resourceSpans",
                        "scopeSpans",
                        "spans",
                        "traceId",
                        "spanId",
                        "name",
                        "attributes",
                        "key",
                        "value",
                        "stringValue",
                        "intValue",
                        "kind",
                        "startTimeUnixNano",
                        "events",
                        "links",
                        "status",
                        "resource",
                    ]
                ),
                c,
                max_size=4,
            )
        ),
        max_leaves=30,
    )
)
def test_random_json_shapes(ingester, doc) -> None:
    # The stdlib encoder: any integer size, and NaN/Infinity (invalid JSON) come out too.
    push(ingester, json.dumps(doc).encode(), encoding="json")
    push(ingester, json.dumps([doc]).encode(), encoding="zipkin_json")


def test_valid_seed_is_accepted(ingester) -> None:
    r = ingester.push("fuzz", SEED)
    assert r.accepted == 5
    assert r.response == b""
    assert len(r.lag_seconds) == 5 * 8
