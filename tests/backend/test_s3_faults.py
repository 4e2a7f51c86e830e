"""S3 under faults: moto (a real S3 server process) behind a fault-injecting proxy, restarts
of moto (the bucket is gone), and moto's auth switch for credentials that stop working."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tempo_fast.backend import (
    BackendError,
    BucketMissingError,
    CredentialsError,
    EndpointUnreachableError,
    NotFoundError,
    RetryPolicy,
    S3Backend,
    UnavailableError,
)
from tests.backend.conftest import FAST_RETRY, Block, s3_config
from tests.backend.faults import FaultProxy, Match
from tests.backend.motoserver import MotoServer, free_port


def on(method: str, fragment: str = "") -> Match:
    """A proxy fault match: ``method`` requests whose path contains ``fragment``."""
    return lambda m, p: m == method and fragment in p


def test_meta_json_is_uploaded_last(s3_store: S3Backend, proxy: FaultProxy, block: Block) -> None:
    meta = s3_store.upload_block(block.tenant, block.block_id, block.path)
    puts = [r.path.rsplit("/", 1)[-1] for r in proxy.requests("PUT")]
    assert puts[0] == "data.parquet"
    assert puts[-1] == "meta.json"
    assert sorted(puts) == sorted(p.name for p in block.path.iterdir())
    assert all(r.path.startswith(f"/{s3_store.cfg.bucket}/pfx/tempo/tenant-a/") for r in proxy.log)
    assert s3_store.read_meta(block.tenant, block.block_id) == meta

    proxy.reset()  # deleting goes the other way: meta.json first, in a batch of its own
    assert s3_store.delete(f"{block.tenant}/{block.block_id}") == len(puts)
    assert [r.path.split("?")[-1] for r in proxy.requests("POST")] == ["delete", "delete"]


def test_failed_upload_leaves_no_block_to_read(
    s3_store: S3Backend, proxy: FaultProxy, block: Block
) -> None:
    proxy.fail(100, 500, match=on("PUT", "/bloom-1"))  # a bloom shard cannot be written
    with pytest.raises(UnavailableError, match="bloom-1.*gave up after 6 attempts"):
        s3_store.upload_block(block.tenant, block.block_id, block.path)
    assert not any(r.path.endswith("/meta.json") for r in proxy.log)
    with pytest.raises(NotFoundError):
        s3_store.read_meta(block.tenant, block.block_id)
    assert s3_store.list_blocks(block.tenant) == [block.block_id], "visible for clean-up"
    stats = s3_store.stats.snapshot()
    assert stats["failures_unavailable"] == 1
    assert stats["retries"] >= 5

    proxy.reset()  # the store recovers: uploading again completes the block
    s3_store.upload_block(block.tenant, block.block_id, block.path)
    assert s3_store.read_meta(block.tenant, block.block_id)["blockID"] == block.block_id


def test_5xx_bursts_are_retried(s3_store: S3Backend, proxy: FaultProxy) -> None:
    proxy.fail(3, 503, match=on("PUT"))
    s3_store.put("t/a/obj", b"hello")
    proxy.fail(2, 500, match=on("GET"))
    proxy.fail(1, 429, match=on("GET"))
    assert s3_store.get("t/a/obj") == b"hello"
    proxy.fail(2, 503, match=on("GET"))
    assert s3_store.list_tenants() == ["t"]
    assert proxy.pending() == 0
    stats = s3_store.stats.snapshot()
    assert stats["retries"] == 8
    assert stats.get("failures", 0) == 0
    assert [r.status for r in proxy.requests("PUT")] == [503, 503, 503, 200]


def test_dropped_connections_are_retried(s3_store: S3Backend, proxy: FaultProxy) -> None:
    payload = os.urandom(200_000)
    proxy.drop(2, match=on("PUT"))  # reset before any response
    s3_store.put("t/a/big", payload)
    proxy.drop(2, match=on("GET"))  # reset half-way through the body
    assert s3_store.get("t/a/big") == payload
    proxy.drop(1, match=on("GET"))
    assert s3_store.get_range("t/a/big", 1000, 50_000) == payload[1000:51_000]
    assert proxy.pending() == 0
    assert s3_store.stats.get("retries") == 5
    assert [r.status for r in proxy.requests("GET")][:3] == [-1, -1, 200]


def test_slow_responses_time_out_and_are_retried(bucket: str, proxy: FaultProxy) -> None:
    retry = RetryPolicy(max_attempts=4, backoff_initial=0.01, read_timeout=0.5, deadline=5)
    with S3Backend(s3_config(bucket, proxy.endpoint), retry=retry) as store:
        proxy.reset()
        store.put("t/a/obj", b"slow")
        proxy.delay(1, 1.0, match=on("GET"))
        t0 = time.monotonic()
        assert store.get("t/a/obj") == b"slow"
        assert 0.5 <= time.monotonic() - t0 < 1.5
        assert store.stats.get("retries") == 1


def test_persistent_5xx_gives_up_within_the_deadline(bucket: str, proxy: FaultProxy) -> None:
    retry = RetryPolicy(max_attempts=1000, backoff_initial=0.05, backoff_max=0.2, deadline=1.0)
    with S3Backend(s3_config(bucket, proxy.endpoint), retry=retry) as store:
        proxy.reset()
        proxy.fail(10_000, 503)
        t0 = time.monotonic()
        with pytest.raises(UnavailableError, match=r"503 SlowDown.*gave up after \d+ attempts"):
            store.get("t/a/obj")
        assert time.monotonic() - t0 < 1.5
        stats = store.stats.snapshot()
        assert stats["failures"] == stats["failures_unavailable"] == 1
        assert stats["retries"] == stats["requests"] - 1 >= 3
    proxy.reset()


def test_get_ranges_are_concurrent_and_ordered(s3_store: S3Backend, proxy: FaultProxy) -> None:
    payload = os.urandom(64 * 1024)
    s3_store.put("t/a/data", payload)
    ranges = [(i * 4096 + 7, 1000 + i) for i in range(12)]
    proxy.delay(12, 0.3, match=on("GET"))
    t0 = time.monotonic()
    got = s3_store.get_ranges("t/a/data", ranges)
    elapsed = time.monotonic() - t0
    assert got == [payload[o : o + n] for o, n in ranges]
    # one after another would take 3.6 s; the margin absorbs a loaded 2-core machine
    assert elapsed < 2.0, f"12 ranges of 0.3 s each took {elapsed:.2f}s: not concurrent"

    proxy.fail(2, 503, match=on("GET"))  # a failing range is retried; order still holds
    proxy.drop(1, match=on("GET"))
    assert s3_store.get_ranges("t/a/data", ranges) == got


def test_multipart_upload_with_a_failing_part(
    bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    payload = os.urandom(11 << 20)
    big.write_bytes(payload)
    cfg = s3_config(bucket, proxy.endpoint, part_size=5 << 20)
    with S3Backend(cfg, retry=FAST_RETRY) as store:
        proxy.reset()
        proxy.fail(1, 503, match=on("PUT", "partNumber=2"))
        store.put("t/a/data.parquet", big)
        parts = [r for r in proxy.requests("PUT") if "partNumber=" in r.path]
        assert [r.status for r in parts] == [200, 503, 200, 200]
        assert (
            store.get_range("t/a/data.parquet", (5 << 20) - 10, 20)
            == payload[(5 << 20) - 10 : (5 << 20) + 10]
        )
        assert store.get("t/a/data.parquet") == payload
    proxy.reset()


def test_prefixes_keep_stores_apart(bucket: str, moto: MotoServer) -> None:
    with (
        S3Backend(s3_config(bucket, moto.endpoint, prefix="")) as root,
        S3Backend(s3_config(bucket, moto.endpoint, prefix="/deep/er/")) as deep,
    ):
        root.put("t1/x/y", b"1")
        assert deep.list_tenants() == []
        deep.put("t2/x/y", b"2")
        assert deep.list_tenants() == ["t2"]
        assert root.list_tenants() == ["deep", "t1"]
        assert root.get("deep/er/t2/x/y") == b"2"
        assert deep.delete("t2") == 1
        assert root.get("t1/x/y") == b"1"


def _empty_and_delete(moto: MotoServer, bucket: str) -> None:
    admin = moto.client()
    for obj in admin.list_objects_v2(Bucket=bucket).get("Contents", []):
        admin.delete_object(Bucket=bucket, Key=obj["Key"])
    admin.delete_bucket(Bucket=bucket)


def test_deleted_bucket_is_a_clear_error_and_recovers(
    s3_store: S3Backend, moto: MotoServer, bucket: str
) -> None:
    s3_store.put("t/a/obj", b"x")
    _empty_and_delete(moto, bucket)
    for op in (lambda: s3_store.put("t/a/obj", b"y"), lambda: s3_store.get("t/a/obj")):
        with pytest.raises(BucketMissingError, match=rf"{bucket}.*check storage.trace.s3.bucket"):
            op()
    with pytest.raises(BucketMissingError):
        s3_store.list_tenants()
    stats = s3_store.stats.snapshot()
    assert stats["failures_bucket_missing"] == 3
    assert stats.get("retries", 0) == 0, "a missing bucket is not retried"

    moto.client().create_bucket(Bucket=bucket)
    s3_store.put("t/a/obj", b"z")
    assert s3_store.get("t/a/obj") == b"z"


@pytest.fixture
def own_moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.close()


def test_moto_restart_unreachable_then_bucket_gone_then_recovery(own_moto: MotoServer) -> None:
    own_moto.client().create_bucket(Bucket="tempo-traces")
    retry = RetryPolicy(max_attempts=50, backoff_initial=0.02, backoff_max=0.1, deadline=0.5)
    with S3Backend(s3_config("tempo-traces", own_moto.endpoint), retry=retry) as store:
        store.put("t/a/obj", b"x")
        own_moto.stop()
        with pytest.raises(
            EndpointUnreachableError, match=r"cannot connect.*check storage.trace.s3.endpoint"
        ):
            store.get("t/a/obj")
        assert store.stats.get("retries") >= 3, "connection refused is retried until the deadline"

        own_moto.start()  # back, empty: the bucket is gone
        with pytest.raises(BucketMissingError, match="the bucket does not exist"):
            store.get("t/a/obj")

        own_moto.client().create_bucket(Bucket="tempo-traces")
        with pytest.raises(NotFoundError):
            store.get("t/a/obj")
        store.put("t/a/obj", b"again")
        assert store.get("t/a/obj") == b"again"
        assert store.stats.get("failures_unreachable") == 1


def test_endpoint_that_never_answers() -> None:
    cfg = s3_config("b", f"127.0.0.1:{free_port()}")
    retry = RetryPolicy(max_attempts=3, backoff_initial=0.01)
    with S3Backend(cfg, retry=retry) as store, pytest.raises(EndpointUnreachableError) as e:
        store.list_tenants()
    assert "gave up after 3 attempts" in str(e.value)
    assert isinstance(e.value, BackendError)


def test_credentials_that_stop_working_and_come_back() -> None:
    # moto checks credentials (against its IAM, where "testing" is unknown) after 3 actions
    server = MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}).start()
    try:
        server.client().create_bucket(Bucket="tempo-traces")  # action 1
        with S3Backend(s3_config("tempo-traces", server.endpoint), retry=FAST_RETRY) as store:
            store.put("t/a/obj", b"x")  # action 2
            assert store.get("t/a/obj") == b"x"  # action 3
            with pytest.raises(
                CredentialsError,
                match=r"refused \(403 InvalidAccessKeyId.*check storage.trace.s3.access_key",
            ):
                store.get("t/a/obj")
            with pytest.raises(CredentialsError):
                store.put("t/a/obj", b"y")
            stats = store.stats.snapshot()
            assert stats["failures_credentials"] == 2
            assert stats.get("retries", 0) == 0, "refused credentials are not retried"

            server.post("/moto-api/reset-auth", b"inf")  # the credentials work again
            assert store.get("t/a/obj") == b"x"
    finally:
        server.close()
