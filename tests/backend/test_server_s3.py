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
from tests.server import TempoServer


def test_blocks_reach_the_bucket(
    moto: MotoServer, bucket: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("TF_TEST_S3_SECRET", "testing")
    server = TempoServer(
        tmp_path / "tempo",
        overrides={
            "ingester": {
                "trace_idle_period": "1s",
                "flush_check_period": "1s",
                "max_block_duration": "2s",
            },
            "storage": {
                "trace": {
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
    ).start()
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
        assert "tempo_ingester_blocks_uploaded_total" in server.metrics()
    finally:
        server.stop()
