"""hypothesis throws random and mutated bytes at the Rust decoder through Python:
it answers with a result or a DecodeError, never a crash."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.e2e.jaeger_client  # noqa: F401 - makes the Jaeger exporter's generated code importable
from tempo_fast import _core
from tests.e2e.test_bad_input import valid_request
from tests.e2e.test_zipkin import zipkin_v1_thrift

SEED = valid_request(5)
REASONS = {"invalid_protobuf", "invalid_json", "invalid_thrift", "invalid_gzip", "too_large"}
# every translated encoding besides OTLP protobuf / JSON
TRANSLATED = (
    "zipkin_json",
    "zipkin_json_typed",
    "zipkin_proto",
    "zipkin_proto_typed",
    "zipkin_v1_json",
    "zipkin_v1_thrift",
    "jaeger_thrift_compact",
    "jaeger_thrift_binary",
    "jaeger_thrift_http",
    "jaeger_proto",
)


NO_RATE_LIMIT = {"rate_limit_bytes": 0}
# tight limits, so valid-but-odd requests go through the drop-and-truncate rewrite
TIGHT = {
    "rate_limit_bytes": 0,
    "max_attribute_bytes": 8,
    "max_traces_per_user": 3,
    "max_bytes_per_trace": 400,
}


def open_ingester(d: Path, limits: dict[str, int]) -> _core.Ingester:
    config = {"blocks_path": str(d / "blocks"), "fsync": "never", "limits": limits}
    ing = _core.Ingester(str(d / "wal"), config)
    ing.replay()
    return ing


@pytest.fixture(scope="module")
def ingester(tmp_path_factory: pytest.TempPathFactory) -> _core.Ingester:
    ing = open_ingester(tmp_path_factory.mktemp("fuzz"), NO_RATE_LIMIT)
    yield ing
    ing.close()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> _core.Ingester:
    ing = open_ingester(tmp_path_factory.mktemp("fuzz-limited"), TIGHT)
    yield ing
    ing.close()


def push(ing: _core.Ingester, body: bytes, **kw) -> None:
    try:
        r = ing.push("fuzz", body, **kw)
    except _core.DecodeError as e:
        assert str(e)
        assert e.reason_code in REASONS
    else:
        assert r.accepted >= 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048))
def test_random_bytes(ingester, body: bytes) -> None:
    push(ingester, body)
    push(ingester, body, encoding="json")
    push(ingester, body, gzip=True)
    for encoding in TRANSLATED:
        push(ingester, body, encoding=encoding)


@st.composite
def mutated(draw, seed: bytes = SEED) -> bytes:
    data = bytearray(seed)
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
def test_mutated_requests(ingester, limited, body: bytes) -> None:
    push(ingester, body)
    push(ingester, gzip.compress(body), gzip=True)
    push(limited, body)


def thrift_seeds() -> dict[str, bytes]:
    """A real batch as the Jaeger client's IDL-generated code writes it, per encoding."""
    from opentelemetry.exporter.jaeger.thrift.gen.agent import Agent
    from opentelemetry.exporter.jaeger.thrift.gen.jaeger import ttypes
    from thrift.protocol import TBinaryProtocol, TCompactProtocol
    from thrift.transport import TTransport

    tags = [
        ttypes.Tag(key="s", vType=ttypes.TagType.STRING, vStr="v"),
        ttypes.Tag(key="n", vType=ttypes.TagType.LONG, vLong=7),
        ttypes.Tag(key="span.kind", vType=ttypes.TagType.STRING, vStr="server"),
    ]
    span = ttypes.Span(
        traceIdLow=1,
        traceIdHigh=2,
        spanId=3,
        parentSpanId=0,
        operationName="op",
        references=[ttypes.SpanRef(refType=1, traceIdLow=1, traceIdHigh=2, spanId=9)],
        flags=1,
        startTime=1_700_000_000_000_000,
        duration=5,
        tags=tags,
        logs=[ttypes.Log(timestamp=1_700_000_000_000_001, fields=tags[:1])],
    )
    batch = ttypes.Batch(process=ttypes.Process(serviceName="svc", tags=tags), spans=[span] * 3)
    out = {}
    for name, proto in (
        ("jaeger_thrift_compact", TCompactProtocol.TCompactProtocol),
        ("jaeger_thrift_binary", TBinaryProtocol.TBinaryProtocol),
    ):
        buf = TTransport.TMemoryBuffer()
        Agent.Client(proto(buf)).emitBatch(batch)
        out[name] = buf.getvalue()
    buf = TTransport.TMemoryBuffer()
    batch.write(TBinaryProtocol.TBinaryProtocol(buf))
    out["jaeger_thrift_http"] = buf.getvalue()
    out["zipkin_v1_thrift"] = zipkin_v1_thrift(0xAB << 64 | 0xCD, [(1, 0, "a", "server")], 1)
    return out


THRIFT_SEEDS = thrift_seeds()


def test_thrift_seeds_are_accepted(ingester) -> None:
    for encoding, body in THRIFT_SEEDS.items():
        want = 1 if encoding.startswith("zipkin") else 3
        assert ingester.push("fuzz", body, encoding=encoding).accepted == want, encoding


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(THRIFT_SEEDS)), st.data())
def test_mutated_thrift_batches(ingester, limited, encoding: str, data) -> None:
    body = data.draw(mutated(THRIFT_SEEDS[encoding]))
    push(ingester, body, encoding=encoding)
    push(limited, body, encoding=encoding)


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
                        # Zipkin v1 and v2
                        "id",
                        "parentId",
                        "timestamp",
                        "duration",
                        "annotations",
                        "binaryAnnotations",
                        "endpoint",
                        "serviceName",
                        "localEndpoint",
                        "tags",
                        "type",
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
    push(ingester, json.dumps([doc]).encode(), encoding="zipkin_v1_json")


def test_limits_rewrite_a_valid_request(limited) -> None:
    r = limited.push("limits", SEED)
    assert r.accepted + r.trace_too_large + r.live_traces_exceeded == 5
    assert sum(r.truncated) > 0


def test_valid_seed_is_accepted(ingester) -> None:
    r = ingester.push("fuzz", SEED)
    assert r.accepted == 5
    assert r.response == b""
    assert len(r.lag_seconds) == 5 * 8
