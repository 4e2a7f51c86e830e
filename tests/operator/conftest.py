"""Real blocks for the operator commands, written by the Rust ingester (no server needed):
two tenants, a trace split across two blocks, every attribute kind, dedicated columns,
events and links; plus a compacted and an incomplete block beside them."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tempo_fast import _core

T0 = 1_700_000_000_000_000_000
TENANT, OTHER = "tenant-a", "tenant-b"


def kv(key: str, value: object) -> KeyValue:
    v = AnyValue()
    if isinstance(value, bool):
        v.bool_value = value
    elif isinstance(value, int):
        v.int_value = value
    elif isinstance(value, float):
        v.double_value = value
    elif isinstance(value, bytes):
        v.bytes_value = value
    elif isinstance(value, list):
        v.array_value.values.extend(kv("", x).value for x in value)
    elif isinstance(value, dict):
        v.kvlist_value.values.extend(kv(k, x) for k, x in value.items())
    else:
        v.string_value = str(value)
    return KeyValue(key=key, value=v)


@dataclass
class SentSpan:
    trace_id: bytes
    span_id: bytes
    parent: bytes
    name: str
    service: str
    kind: int
    start: int
    end: int
    attrs: dict[str, object]
    status: int = 0
    message: str = ""
    events: list[tuple[int, str, dict[str, object]]] = field(default_factory=list)
    links: list[tuple[bytes, bytes, dict[str, object]]] = field(default_factory=list)


RESOURCES = {
    "api": {"service.name": "api", "k8s.pod.name": "api-7d9f", "host.name": "node-1"},
    "db": {"service.name": "db", "k8s.namespace.name": "data", "replicas": 3},
}


def request(spans: Sequence[SentSpan]) -> bytes:
    req = ts.ExportTraceServiceRequest()
    for service, attrs in RESOURCES.items():
        mine = [s for s in spans if s.service == service]
        if not mine:
            continue
        rs = req.resource_spans.add()
        rs.resource.attributes.extend(kv(k, v) for k, v in attrs.items())
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = "op-test", "1.2.3"
        for s in mine:
            span = ss.spans.add()
            span.trace_id, span.span_id, span.parent_span_id = s.trace_id, s.span_id, s.parent
            span.name, span.kind = s.name, s.kind
            span.start_time_unix_nano, span.end_time_unix_nano = s.start, s.end
            span.attributes.extend(kv(k, v) for k, v in s.attrs.items())
            if s.status:
                span.status.CopyFrom(Status(code=s.status, message=s.message))
            for t, name, attrs in s.events:
                ev = span.events.add(time_unix_nano=t, name=name)
                ev.attributes.extend(kv(k, v) for k, v in attrs.items())
            for tid, sid, attrs in s.links:
                ln = span.links.add(trace_id=tid, span_id=sid)
                ln.attributes.extend(kv(k, v) for k, v in attrs.items())
    return req.SerializeToString()


def trace(n: int, spans: int) -> list[SentSpan]:
    """Trace ``n``: an api root (SERVER) and ``spans - 1`` children alternating api and db."""
    tid = (0xA0 << 120 | n).to_bytes(16, "big")
    out = []
    for i in range(spans):
        service = "api" if i % 2 == 0 else "db"
        attrs: dict[str, object] = {
            "http.method": "GET",  # a dedicated string column
            "http.status_code": 200 + i,  # a dedicated int column
            "user.id": f"user-{n}",
            "retry": i % 3 == 0,
            "ratio": 0.25,
            "tags": ["a", 7],
            "labels": {"team": "core"},
            "blob": b"\x00\x01\xfe",
        }
        out.append(
            SentSpan(
                trace_id=tid,
                span_id=(n << 16 | i + 1).to_bytes(8, "big"),
                parent=b"" if i == 0 else (n << 16 | 1).to_bytes(8, "big"),
                name="GET /orders" if i == 0 else f"step-{i}",
                service=service,
                kind=Span.SPAN_KIND_SERVER if i == 0 else Span.SPAN_KIND_CLIENT,
                start=T0 + n * 1_000_000_000 + i * 1000,
                end=T0 + n * 1_000_000_000 + (10_000_000 if i == 0 else i * 1000 + 500),
                attrs=attrs,
                status=Status.STATUS_CODE_ERROR if i == 1 else 0,
                message="boom" if i == 1 else "",
                events=[(T0 + n * 1_000_000_000 + 7, "retrying", {"attempt": 2})] if i == 1 else [],
                links=[(b"\x11" * 16, b"\x22" * 8, {"link.kind": "follows"})] if i == 2 else [],
            )
        )
    return out


@dataclass(frozen=True)
class Backend:
    root: Path  # storage.trace.local.path
    config: Path  # a config file naming it
    sent: dict[str, list[SentSpan]]  # tenant -> spans
    blocks: dict[str, list[str]]  # tenant -> complete block ids
    compacted: str  # a block of TENANT with only meta.compacted.json
    incomplete: str  # a block of TENANT with no meta at all
    split_trace: bytes  # a trace of TENANT whose spans are in two blocks

    def spans_of(self, trace_id: bytes) -> list[SentSpan]:
        return [s for spans in self.sent.values() for s in spans if s.trace_id == trace_id]


def write_config(path: Path, storage: dict[str, object]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"storage": {"trace": storage}}))
    return path


def ingest(root: Path, batches: Sequence[tuple[str, Sequence[SentSpan]]]) -> None:
    """Each batch pushed and cut into a block of its own."""
    ing = _core.Ingester(str(root / "wal"), {"blocks_path": str(root / "blocks"), "fsync": "never"})
    ing.replay()
    for tenant, spans in batches:
        ing.push(tenant, request(spans))
        ing.flush()
    ing.close()


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    root = tmp_path_factory.mktemp("operator")
    first = [s for n in range(1, 6) for s in trace(n, 4)]
    split = trace(9, 6)
    second = [s for n in range(6, 9) for s in trace(n, 3)]
    other = trace(20, 5)
    ingest(root, [(TENANT, first + split[:3]), (TENANT, second + split[3:]), (OTHER, other)])
    blocks_dir = root / "blocks"
    blocks = {t: sorted(p.name for p in (blocks_dir / t).iterdir()) for t in (TENANT, OTHER)}
    assert len(blocks[TENANT]) == 2 and len(blocks[OTHER]) == 1
    # a compacted block (as a compactor leaves it) and one still being uploaded
    src = blocks_dir / TENANT / blocks[TENANT][0]
    compacted = str(uuid.UUID(int=1))
    shutil.copytree(src, blocks_dir / TENANT / compacted)
    (blocks_dir / TENANT / compacted / "meta.json").rename(
        blocks_dir / TENANT / compacted / "meta.compacted.json"
    )
    incomplete = str(uuid.UUID(int=2))
    (blocks_dir / TENANT / incomplete).mkdir()
    shutil.copy(src / "data.parquet", blocks_dir / TENANT / incomplete / "data.parquet")
    config = write_config(
        root / "tempo.yaml",
        {
            "backend": "local",
            "local": {"path": str(blocks_dir)},
            "wal": {"path": str(root / "wal")},
        },
    )
    return Backend(
        root=blocks_dir,
        config=config,
        sent={TENANT: first + split + second, OTHER: other},
        blocks=blocks,
        compacted=compacted,
        incomplete=incomplete,
        split_trace=split[0].trace_id,
    )


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """``tempo-fast <argv>`` in-process: (exit code, stdout, stderr)."""
    from tempo_fast import cli

    def go(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return go
