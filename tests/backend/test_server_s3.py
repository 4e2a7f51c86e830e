"""The running binary with ``storage.trace.backend: s3`` on moto: spans pushed over OTLP end
up as blocks in the bucket (meta.json last, listed in the tenant index, secrets from
``${VAR}``), and trace by id keeps answering meanwhile."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

from tests.backend.motoserver import MotoServer
from tests.e2e.traces import emit_traces, trace_ids, wait_for
from tests.server import TempoServer, deep_merge


def s3_server(data: Path, moto: MotoServer, bucket: str) -> TempoServer:
    """A server whose backend is ``bucket`` on moto (secret key from ``${TF_TEST_S3_SECRET}``)."""
    return TempoServer(
        data,
        overrides={
            "ingester": {
                "trace_idle_period": "1s",
                "flush_check_period": "1s",
                "max_block_duration": "2s",
            },
            "storage": {
                "trace": {
                    "blocklist_poll": "1s",
                    "backend": "s3",
                    "s3": {
                        "bucket": bucket,
                        "endpoint": moto.endpoint,
                        "insecure": True,
                        "region": "us-east-1",
                        "access_key": "testing",
                        "secret_key": "${TF_TEST_S3_SECRET}",
                        "prefix": "tempo",
                        "forcepathstyle": True,
                    },
                }
            },
        },
        extra_args=["-config.expand-env=true"],
    )


def test_blocks_reach_the_bucket_and_another_server_reads_them(
    moto: MotoServer, bucket: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("TF_TEST_S3_SECRET", "testing")
    server = s3_server(tmp_path / "a", moto, bucket).start()
    try:
        sent = emit_traces(OTLPSpanExporter(endpoint=server.otlp_grpc, insecure=True), n_traces=3)
        client = moto.client()

        def indexed() -> list[dict]:
            try:
                obj = client.get_object(Bucket=bucket, Key="tempo/single-tenant/index.json.gz")
            except client.exceptions.NoSuchKey:
                return []
            return orjson.loads(gzip.decompress(obj["Body"].read()))["meta"]

        metas = wait_for(indexed, timeout=30)
        assert metas, server.log()
        block_id = metas[0]["blockID"]
        listing = client.list_objects_v2(Bucket=bucket, Prefix=f"tempo/single-tenant/{block_id}/")
        keys = {o["Key"].rsplit("/", 1)[1] for o in listing["Contents"]}
        assert {"meta.json", "data.parquet", "index"} <= keys
        assert any(k.startswith("bloom-") for k in keys)
        assert metas[0]["tenantID"] == "single-tenant"
        for tid in trace_ids(sent):
            assert server.get(f"/api/traces/{tid}")[0] == 200
        text = server.metrics()
        assert "tempo_ingester_blocks_uploaded_total" in text
        assert "tempodb_backend_bytes_written_total" in text
        # another process sharing the bucket (its own WAL, nothing staged) reads the blocks
        # from the store by byte range
        other = s3_server(tmp_path / "b", moto, bucket).start()
        try:
            for tid in trace_ids(sent):
                status, _, body = wait_for(lambda t=tid: ok(other.get(f"/api/traces/{t}")), 20)
                mine = [s for s in sent if f"{s.context.trace_id:032x}" == tid]
                got = {
                    span["spanId"]
                    for b in orjson.loads(body)["batches"]
                    for ss in b["scopeSpans"]
                    for span in ss["spans"]
                }
                assert len(got) == len(mine)
            assert 'tempodb_blocklist_length{tenant="single-tenant"}' in other.metrics()
        finally:
            other.stop()
    finally:
        server.stop()


def ok(reply: tuple[int, dict, bytes]) -> tuple[int, dict, bytes] | None:
    return reply if reply[0] == 200 else None


def test_the_server_compacts_the_bucket(
    moto: MotoServer, bucket: str, tmp_path: Path, monkeypatch
) -> None:
    """Blocks uploaded by the flusher are compacted in the bucket (inputs read from the staged
    copies), the index lists the output, and every trace still reads back whole."""
    monkeypatch.setenv("TF_TEST_S3_SECRET", "testing")
    server = s3_server(tmp_path / "a", moto, bucket)
    server.overrides = deep_merge(
        server.overrides,
        {"compactor": {"compaction": {"compaction_cycle": "1s"}}},
    )
    server.start()
    client = moto.client()

    def index() -> dict:
        try:
            obj = client.get_object(Bucket=bucket, Key="tempo/single-tenant/index.json.gz")
        except client.exceptions.NoSuchKey:
            return {"meta": [], "compacted": []}
        return orjson.loads(gzip.decompress(obj["Body"].read()))

    try:
        sent = []

        def listed() -> set[str]:
            i = index()
            return {str(m["blockID"]) for m in i["meta"] + i["compacted"]}

        for _ in range(3):  # three rounds, three blocks (emit_traces shuts its exporter down)
            # a new block id, not a count: while the compactor marks its inputs, an index
            # may list a block both as live and as compacted
            before = listed()
            exporter = OTLPSpanExporter(endpoint=server.otlp_grpc, insecure=True)
            sent += emit_traces(exporter, n_traces=3)
            assert wait_for(lambda b=before: listed() - b, 30), server.log()

        # the output is listed first, the inputs marked compacted just after
        def compacted() -> bool:
            idx = index()
            merged = any(m["compactionLevel"] >= 1 for m in idx["meta"])
            return merged and len(idx["compacted"]) >= 2

        assert wait_for(compacted, 30), server.log()
        for tid in trace_ids(sent):
            status, _, body = server.get(f"/api/traces/{tid}")
            assert status == 200
            got = [
                span["spanId"]
                for b in orjson.loads(body)["batches"]
                for ss in b["scopeSpans"]
                for span in ss["spans"]
            ]
            mine = [s for s in sent if f"{s.context.trace_id:032x}" == tid]
            assert len(got) == len(set(got)) == len(mine)
        assert "tempodb_compaction_blocks_total" in server.metrics()
    finally:
        server.stop()
