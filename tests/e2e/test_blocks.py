"""Complete blocks are open formats: Parquet that pyarrow reads, Tempo-named meta.json."""

from __future__ import annotations

import json

import grpc
import pyarrow.parquet as pq

from tests.e2e.test_bad_input import EXPORT
from tests.e2e.test_crash_safety import request
from tests.e2e.traces import wait_for
from tests.server import TempoServer

FIELDS = {
    "format",
    "blockID",
    "tenantID",
    "startTime",
    "endTime",
    "totalObjects",
    "size",
    "compactionLevel",
    "encoding",
    "totalRecords",
    "bloomShards",
    "footerSize",
    "dedicatedColumns",
}


def test_block_layout_and_pyarrow(fast_server: TempoServer) -> None:
    spans = 0
    with grpc.insecure_channel(fast_server.otlp_grpc) as ch:
        call = ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        for b in range(5):
            body, expected = request(b)
            call(body, timeout=10)
            spans += sum(len(v) for v in expected.values())
    tenant_dir = fast_server.data / "blocks" / "single-tenant"
    metas = wait_for(
        lambda: list(tenant_dir.glob("*/meta.json")) if tenant_dir.is_dir() else [], timeout=30
    )
    assert metas
    total_rows = 0
    for meta_path in metas:
        meta = json.loads(meta_path.read_text())
        assert meta.keys() >= FIELDS
        assert meta["format"] == "tfparquet1"
        assert meta["tenantID"] == "single-tenant"
        assert meta["blockID"] == meta_path.parent.name
        block = meta_path.parent
        assert (block / "index").is_file()
        assert (block / "bloom-0").is_file()
        table = pq.read_table(block / "data.parquet")
        total_rows += table.num_rows
        ids = table.column("trace_id").to_pylist()
        assert ids == sorted(ids), "rows are sorted by trace id"
        assert meta["totalRecords"] == pq.ParquetFile(block / "data.parquet").num_row_groups
    assert total_rows == spans
