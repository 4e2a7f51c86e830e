"""Every operation of the object-store interface, on local disk and on S3 (moto)."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tempo_fast.backend import (
    CorruptObjectError,
    LocalBackend,
    NotFoundError,
    ObjectStore,
)
from tests.backend.conftest import Block


def test_put_get_and_ranges(store: ObjectStore, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 40
    store.put("t1/obj/bytes", payload)
    src = tmp_path / "src.bin"
    src.write_bytes(payload[::-1])
    store.put("t1/obj/file", src)

    assert store.get("t1/obj/bytes") == payload
    assert store.get("t1/obj/file") == payload[::-1]
    assert store.get_range("t1/obj/bytes", 1000, 300) == payload[1000:1300]
    assert store.get_range("t1/obj/bytes", 5, 0) == b""
    ranges = [(i * 97 % 9000, 1 + i * 13) for i in range(20)]
    assert store.get_ranges("t1/obj/bytes", ranges) == [payload[o : o + n] for o, n in ranges]
    assert store.get_ranges("t1/obj/bytes", []) == []

    store.put("t1/obj/bytes", b"replaced")
    assert store.get("t1/obj/bytes") == b"replaced"
    with pytest.raises(NotFoundError):
        store.get("t1/obj/missing")
    with pytest.raises(NotFoundError):
        store.get_range("t1/obj/missing", 0, 4)
    with pytest.raises(CorruptObjectError):
        store.get_range("t1/obj/bytes", 4, 100)  # past the end
    with pytest.raises(FileNotFoundError):
        store.put("t1/obj/x", tmp_path / "no-such-file")

    stats = store.stats.snapshot()
    assert stats["bytes_written"] == 2 * len(payload) + len(b"replaced")
    assert stats["bytes_read"] >= 2 * len(payload)
    assert stats.get("failures_corrupt") == 1
    assert "failures_not_found" not in stats, "a missing object is an answer, not a failure"


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "a/./b", "a/"])
def test_invalid_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        store.put(key, b"x")


def test_block_upload_list_read_delete(store: ObjectStore, block: Block) -> None:
    assert store.list_tenants() == []
    assert store.list_blocks(block.tenant) == []

    meta = store.upload_block(block.tenant, block.block_id, block.path)
    local_meta = json.loads((block.path / "meta.json").read_text())
    assert meta == local_meta
    assert meta["bloomShards"] >= 2

    other = str(uuid.uuid4())
    store.put(f"tenant-b/{other}/meta.json", b"{}")
    store.put("tenant-b/not-a-block/x", b"")
    assert store.list_tenants() == ["tenant-a", "tenant-b"]
    assert store.list_blocks("tenant-a") == [block.block_id]
    assert store.list_blocks("tenant-b") == [other]
    assert store.read_meta(block.tenant, block.block_id) == local_meta

    names = sorted(p.name for p in block.path.iterdir())
    assert names == sorted(
        ["data.parquet", "index", "meta.json"] + [f"bloom-{i}" for i in range(meta["bloomShards"])]
    )
    for name in names:
        key = f"{block.tenant}/{block.block_id}/{name}"
        assert store.get(key) == (block.path / name).read_bytes(), name

    # What a Parquet reader fetches: the footer, then two column chunks, concurrently.
    data = (block.path / "data.parquet").read_bytes()
    footer = meta["footerSize"]
    md = pq.ParquetFile(block.path / "data.parquet").metadata.row_group(0)
    chunks = [(md.column(i).file_offset, 64) for i in range(2)]
    got = store.get_ranges(
        f"{block.tenant}/{block.block_id}/data.parquet", [(len(data) - 8 - footer, footer)] + chunks
    )
    assert got == [data[len(data) - 8 - footer : -8]] + [data[o : o + n] for o, n in chunks]

    assert store.delete(f"{block.tenant}/{block.block_id}") == len(names)
    assert store.list_blocks(block.tenant) == []
    with pytest.raises(NotFoundError):
        store.read_meta(block.tenant, block.block_id)
    assert store.delete(f"{block.tenant}/{block.block_id}") == 0
    assert store.delete(f"tenant-b/{other}/meta.json") == 1


def test_upload_refuses_an_incomplete_block(
    store: ObjectStore, block: Block, tmp_path: Path
) -> None:
    half = tmp_path / block.block_id
    half.mkdir()
    (half / "data.parquet").write_bytes((block.path / "data.parquet").read_bytes())
    with pytest.raises(ValueError, match="no meta.json"):
        store.upload_block(block.tenant, block.block_id, half)
    with pytest.raises(ValueError, match="not tenant-x/"):
        store.upload_block("tenant-x", block.block_id, block.path)
    assert store.list_tenants() == []


def test_blocklist_is_tempos_tenant_index(store: ObjectStore, block: Block) -> None:
    with pytest.raises(NotFoundError):
        store.read_blocklist("tenant-a")
    meta = json.loads((block.path / "meta.json").read_text())
    compacted = {**meta, "blockID": str(uuid.uuid4()), "compactedTime": "2024-05-01T10:00:00Z"}
    before = datetime.now(UTC).replace(microsecond=0)
    store.write_blocklist("tenant-a", [meta], [compacted])

    bl = store.read_blocklist("tenant-a")
    assert bl.metas == (meta,)
    assert bl.compacted == (compacted,)
    assert bl.created_at is not None and before <= bl.created_at <= datetime.now(UTC)

    raw = store.get("tenant-a/index.json.gz")
    assert raw[3] & 0x08 and raw[10:21] == b"index.json\x00", "gzip member named index.json"
    doc = json.loads(gzip.decompress(raw))
    assert set(doc) == {"created_at", "meta", "compacted"}
    assert doc["created_at"].endswith("Z")
    assert store.list_blocks("tenant-a") == [], "the index is not a block"
    assert store.list_tenants() == ["tenant-a"]

    store.write_blocklist("tenant-a", [])  # empty: the index is deleted, as Tempo does
    with pytest.raises(NotFoundError):
        store.read_blocklist("tenant-a")


def test_corrupt_meta_and_index(store: ObjectStore) -> None:
    bid = str(uuid.uuid4())
    store.put(f"t/{bid}/meta.json", b"{not json")
    with pytest.raises(CorruptObjectError, match="meta.json"):
        store.read_meta("t", bid)
    store.put(f"t/{bid}/meta.json", b"[1, 2]")
    with pytest.raises(CorruptObjectError, match="not a JSON object"):
        store.read_meta("t", bid)
    store.put("t/index.json.gz", b"plain text")
    with pytest.raises(CorruptObjectError, match="tenant index"):
        store.read_blocklist("t")
    assert store.stats.get("failures_corrupt") == 3


def test_local_upload_in_place_is_a_no_op(block: Block) -> None:
    store = LocalBackend(block.path.parent.parent)
    before = {p.name: p.stat().st_mtime_ns for p in block.path.iterdir()}
    meta = store.upload_block(block.tenant, block.block_id, block.path)
    assert meta["blockID"] == block.block_id
    assert {p.name: p.stat().st_mtime_ns for p in block.path.iterdir()} == before
    assert store.list_blocks(block.tenant) == [block.block_id]
