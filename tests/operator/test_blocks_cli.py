"""`tempo-fast blocks list | show | lookup | export` against a local backend of real blocks
(written by the Rust ingester): what they print is what was sent."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.operator.conftest import OTHER, RESOURCES, TENANT, Backend, Run, write_config

KINDS = {2: "SPAN_KIND_SERVER", 3: "SPAN_KIND_CLIENT"}


def meta(backend: Backend, tenant: str, block_id: str) -> dict:
    return json.loads((backend.root / tenant / block_id / "meta.json").read_text())


def test_list_shows_every_block_with_its_meta(backend: Backend, run: Run) -> None:
    code, out, err = run("blocks", "list", "-config.file", str(backend.config))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "TENANT", "BLOCK", "START", "(UTC)", "END", "(UTC)",
        "SPANS", "TRACES", "SIZE", "LEVEL", "STATE",
    ]  # fmt: skip
    rows = {line.split()[1]: line.split() for line in lines[1:-1]}
    for tenant, ids in backend.blocks.items():
        for block_id in ids:
            m = meta(backend, tenant, block_id)
            row = rows[block_id]
            assert row[0] == tenant and row[-1] == "complete"
            assert row[2:4] == [m["startTime"][:10], m["startTime"][11:19]]
            assert (int(row[6]), int(row[7]), int(row[-2])) == (
                m["totalSpans"],
                m["totalObjects"],
                m["compactionLevel"],
            )
    assert rows[backend.compacted][-1] == "compacted"
    assert rows[backend.incomplete][-1] == "incomplete"
    assert rows[backend.incomplete][2:8] == ["-"] * 6
    spans = sum(len(v) for v in backend.sent.values())
    assert lines[-1].startswith(f"3 complete blocks, {spans} spans, ")
    assert lines[-1].endswith("(and 1 compacted, 1 incomplete)")
    assert err == "", "no progress lines for a quick listing off a terminal"


def test_list_json_for_one_tenant(backend: Backend, run: Run) -> None:
    code, out, _ = run(
        "blocks", "list", "-tenant", OTHER, "-json", f"-config.file={backend.config}"
    )
    assert code == 0
    docs = orjson.loads(out)
    assert [(d["tenant"], d["blockID"], d["state"]) for d in docs] == [
        (OTHER, backend.blocks[OTHER][0], "complete")
    ]
    assert docs[0]["meta"] == meta(backend, OTHER, backend.blocks[OTHER][0])
    assert docs[0]["meta"]["totalSpans"] == len(backend.sent[OTHER])


def test_show_prints_meta_json(backend: Backend, run: Run) -> None:
    block_id = backend.blocks[TENANT][1]
    code, out, _ = run("blocks", "show", TENANT, block_id, "-config.file", str(backend.config))
    assert code == 0
    assert json.loads(out) == meta(backend, TENANT, block_id)
    assert out.startswith('{\n  "format"'), "pretty-printed"
    code, out, err = run(
        "blocks", "show", TENANT, backend.compacted, f"-config.file={backend.config}"
    )
    assert code == 0 and json.loads(out)["blockID"] == backend.blocks[TENANT][0]
    assert "compacted" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", TENANT, "00000000-0000-0000-0000-0000000000ff"], "tempo-fast blocks list"),
        (["show", TENANT, "00000000-0000-0000-0000-000000000002"], "has no meta.json yet"),
        (["export", TENANT, "00000000-0000-0000-0000-000000000001", "x.parquet"], "compacted"),
        (["lookup", "xyz"], "hex digits"),
        (["lookup", "00000000000000000000000000000abc"], "not found in the blocks of any of 2"),
    ],
)
def test_failures_say_what_to_do_and_exit_1(
    backend: Backend, run: Run, argv: list[str], message: str
) -> None:
    code, _, err = run("blocks", *argv, "-config.file", str(backend.config))
    assert code == 1
    assert err.startswith("tempo-fast: error: ") and message in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ["blocks", "nope"],
        ["blocks", "show", "t"],
        ["blocks", "list", "-json=maybe"],
        ["blocks", "list", "-x"],
    ],
)
def test_usage_errors_exit_2(run: Run, argv: list[str]) -> None:
    code, _, err = run(*argv)
    assert code == 2 and "tempo-fast blocks -help" in err


def test_help(run: Run) -> None:
    for argv in (["blocks"], ["blocks", "-help"], ["blocks", "export", "-h"]):
        code, out, _ = run(*argv)
        assert code == 0 and "lookup <trace-id>" in out
    code, out, _ = run("-help")
    assert code == 0 and "tempo-fast blocks" in out


def test_broken_config_exits_1(tmp_path: Path, run: Run) -> None:
    bad = write_config(tmp_path / "bad.yaml", {"backend": "s3", "s3": {"endpoint": "x:1"}})
    code, _, err = run("blocks", "list", "-config.file", str(bad))
    assert code == 1 and "storage.trace.s3.bucket" in err


def test_lookup_finds_a_trace_across_blocks(backend: Backend, run: Run) -> None:
    tid = backend.split_trace.hex()
    code, out, err = run("blocks", "lookup", tid, "-config.file", str(backend.config))
    assert code == 0, err
    assert out.startswith(f"trace {tid}: tenant {TENANT}, 2 blocks")
    sent = backend.spans_of(backend.split_trace)
    per_block = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()[2:4]}
    assert per_block == {b: 3 for b in backend.blocks[TENANT]}
    assert f"spans: {len(sent)} (after de-duplication), errors: 1" in out
    assert "services: api, db" in out and "root: GET /orders (api)" in out
    assert "duration: 10.0ms" in out


def test_lookup_skips_unreadable_blocks_with_a_warning(
    backend: Backend, run: Run, tmp_path: Path
) -> None:
    root = tmp_path / "blocks"
    shutil.copytree(backend.root, root)
    broken = root / TENANT / backend.blocks[TENANT][0] / "data.parquet"
    broken.write_bytes(broken.read_bytes()[:100])
    config = write_config(tmp_path / "t.yaml", {"backend": "local", "local": {"path": str(root)}})
    code, out, err = run("blocks", "lookup", backend.split_trace.hex(), "-config.file", str(config))
    assert code == 0
    assert f"tenant {TENANT}, 1 block\n" in out and backend.blocks[TENANT][1] in out
    assert f"warning: block {TENANT}/{backend.blocks[TENANT][0]}" in err


def test_lookup_json_is_the_trace_as_sent(backend: Backend, run: Run) -> None:
    sent = backend.spans_of(backend.split_trace)
    code, out, _ = run(
        "blocks", "lookup", backend.split_trace.hex(), "-tenant", TENANT, "-json",
        "-config.file", str(backend.config),
    )  # fmt: skip
    assert code == 0
    doc = orjson.loads(out)
    got = {}
    for rs in doc["resourceSpans"]:
        service = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}["service.name"]
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                got[base64.b64decode(s["spanId"])] = (s["name"], service["stringValue"])
    assert got == {s.span_id: (s.name, s.service) for s in sent}
    # the other tenant does not have it
    code, _, err = run(
        "blocks", "lookup", backend.split_trace.hex(), "-tenant", OTHER,
        "-config.file", str(backend.config),
    )  # fmt: skip
    assert code == 1 and f"tenant {OTHER}" in err


def _text(v: object) -> str:
    """How the export spells an attribute value."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def test_export_is_plain_parquet_with_what_was_sent(
    backend: Backend, run: Run, tmp_path: Path
) -> None:
    block_id = backend.blocks[TENANT][0]
    out_path = tmp_path / "spans.parquet"
    code, _, err = run(
        "blocks", "export", TENANT, block_id, str(out_path), "-config.file", str(backend.config)
    )
    assert code == 0, err
    assert f"to {out_path}" in err
    table = pq.read_table(out_path)
    m = meta(backend, TENANT, block_id)
    assert table.num_rows == m["totalSpans"]
    assert pq.ParquetFile(out_path).num_row_groups == m["totalRecords"]
    schema = table.schema
    assert schema.field("trace_id").type == pa.string()
    assert schema.field("start_time").type == pa.timestamp("ns", tz="UTC")
    assert schema.field("duration_ns").type == pa.int64()
    assert schema.field("span_attributes").type == pa.map_(pa.string(), pa.string())
    rows = table.cast(pa.schema([pa.field(f.name, _plain(f.type)) for f in schema])).to_pylist()
    sent = {(s.trace_id.hex(), s.span_id.hex()): s for s in backend.sent[TENANT]}
    assert len(rows) == len({(r["trace_id"], r["span_id"]) for r in rows})
    with_root = {r["trace_id"] for r in rows if r["parent_span_id"] is None}
    for r in rows:
        s = sent[(r["trace_id"], r["span_id"])]
        assert r["parent_span_id"] == (s.parent.hex() or None)
        assert (r["name"], r["kind"], r["service_name"]) == (s.name, KINDS[s.kind], s.service)
        assert (r["start_time"], r["end_time"], r["duration_ns"]) == (
            s.start,
            s.end,
            s.end - s.start,
        )
        error = s.status == 2
        assert r["status_code"] == ("STATUS_CODE_ERROR" if error else "STATUS_CODE_UNSET")
        assert r["status_message"] == (s.message or None)
        assert (r["scope_name"], r["scope_version"]) == ("op-test", "1.2.3")
        # dedicated columns (http.method, http.status_code; k8s.*) are folded back
        assert dict(r["span_attributes"]) == {k: _text(v) for k, v in s.attrs.items()}
        resource = {k: _text(v) for k, v in RESOURCES[s.service].items()}
        assert dict(r["resource_attributes"]) == resource
        assert r["events"] == [
            {"time": t, "name": n, "attributes": [(k, _text(v)) for k, v in a.items()]}
            for t, n, a in s.events
        ]
        assert r["links"] == [
            {
                "trace_id": t.hex(),
                "span_id": i.hex(),
                "trace_state": None,
                "attributes": [(k, _text(v)) for k, v in a.items()],
            }
            for t, i, a in s.links
        ]
        root = ("api", "GET /orders") if r["trace_id"] in with_root else (None, None)
        assert (r["trace_root_service"], r["trace_root_name"]) == root
    assert {r["trace_id"] for r in rows} >= {backend.split_trace.hex()}

    # an existing file is kept unless -force
    code, _, err = run(
        "blocks", "export", TENANT, block_id, str(out_path), "-config.file", str(backend.config)
    )
    assert code == 1 and "-force" in err


def _plain(t: pa.DataType) -> pa.DataType:
    """``t`` with timestamps as int64 nanoseconds (Python's datetime stops at microseconds)."""
    if pa.types.is_timestamp(t):
        return pa.int64()
    if pa.types.is_list(t):
        f = t.value_field
        return pa.list_(pa.field(f.name, _plain(f.type), f.nullable))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _plain(f.type), f.nullable) for f in t])
    return t
