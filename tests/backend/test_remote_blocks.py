"""Blocks read from the object store by the Rust reader through the store's ranged GETs:
a lookup reads only the bloom filter, index, footer and the pages it needs; a corrupt block
the index lists is skipped, counted, and never breaks the others."""

from __future__ import annotations

import re

import orjson
import pyarrow.parquet as pq

from tempo_fast import _core
from tempo_fast.backend import S3Backend
from tempo_fast.querier.querier import ObjectStoreBlocks
from tests.backend.conftest import FAST_RETRY, Block, s3_config
from tests.backend.faults import FaultProxy


def test_lookups_read_ranges_and_skip_corrupt_blocks(
    block: Block, bucket: str, proxy: FaultProxy
) -> None:
    proxy.reset()
    store = S3Backend(s3_config(bucket, proxy.endpoint), retry=FAST_RETRY)
    meta = store.upload_block(block.tenant, block.block_id, block.path)
    bad_id = "00000000-0000-4000-8000-000000000bad"
    bad_meta = {**meta, "blockID": bad_id}
    store.put(f"{block.tenant}/{bad_id}/data.parquet", b"PAR1 truncated")
    store.put(f"{block.tenant}/{bad_id}/meta.json", b"{not json")
    store.write_blocklist(block.tenant, [meta, bad_meta])

    remote = ObjectStoreBlocks(store, _core.RemoteBlocks(), lambda tenant: set())
    remote.poll()
    assert remote.open_failures == 1
    assert remote.blocks.counts() == {block.tenant: 1}

    ids = pq.read_table(block.path / "data.parquet", columns=["trace_id"]).column(0)
    trace_id = ids[len(ids) // 2].as_py()
    proxy.reset()
    part, stats = remote.blocks.find_trace(block.tenant, trace_id)
    assert part is not None and part.spans >= 1
    gets = proxy.requests("GET")
    size = (block.path / "data.parquet").stat().st_size
    assert stats["bytes_read"] < size, "only the pages that can hold the trace"
    assert len(gets) == stats["reads"] and stats["errors"] == 0
    assert remote.blocks.find_trace(block.tenant, b"\x01" * 16)[0] is None

    # a block dropped from the index is forgotten at the next poll
    store.write_blocklist(block.tenant, [bad_meta])
    remote.poll()
    assert remote.blocks.counts() == {}
    store.close()


def test_search_reads_only_the_query_columns(block: Block, bucket: str, proxy: FaultProxy) -> None:
    proxy.reset()
    store = S3Backend(s3_config(bucket, proxy.endpoint), retry=FAST_RETRY)
    meta = store.upload_block(block.tenant, block.block_id, block.path)
    store.write_blocklist(block.tenant, [meta])
    remote = ObjectStoreBlocks(store, _core.RemoteBlocks(), lambda tenant: set())
    remote.poll()
    table = pq.read_table(block.path / "data.parquet", columns=["trace_id", "name"])
    pattern = re.compile("b1-t1.-s2")
    want = {
        t.as_py().hex().lstrip("0")
        for t, n in zip(*table.columns, strict=True)
        if pattern.fullmatch(n.as_py())
    }
    assert want

    proxy.reset()
    ids = [b[0] for b in remote.blocks.list_blocks(block.tenant)]
    assert ids == [block.block_id]
    query = _core.SearchQuery('{ name =~ "b1-t1.-s2" }', limit=0, spss=3)
    body, stats = remote.blocks.search(block.tenant, query, ids)
    got = {t["traceID"] for t in orjson.loads(body)}
    assert got == want
    md = pq.ParquetFile(block.path / "data.parquet").metadata
    unread = sum(
        md.row_group(g).column(c).total_compressed_size
        for g in range(md.num_row_groups)
        for c in range(md.num_columns)
        if md.row_group(g).column(c).path_in_schema.split(".")[0]
        in ("attrs", "resource_attrs", "events", "links", "scope_attrs")
    )
    size = (block.path / "data.parquet").stat().st_size
    assert 0 < stats["inspected_bytes"] <= size - unread, "only the columns the query reads"
    assert stats["errors"] == 0
    gets = proxy.requests("GET")
    rows = pq.ParquetFile(block.path / "data.parquet").metadata.num_row_groups
    assert len(gets) <= rows * 2, "column chunks close together are read in one request"
    store.close()
