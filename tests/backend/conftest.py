"""Fixtures: a real block, moto's S3 server (a separate process) behind a fault proxy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tempo_fast import _core
from tempo_fast.backend import LocalBackend, ObjectStore, RetryPolicy, S3Backend, S3Config
from tests.backend.faults import FaultProxy
from tests.backend.motoserver import MotoServer
from tests.e2e.test_crash_safety import request

# Quick retries so fault tests take milliseconds, not seconds.
FAST_RETRY = RetryPolicy(
    max_attempts=6,
    backoff_initial=0.01,
    backoff_max=0.05,
    deadline=5.0,
    connect_timeout=1.0,
    read_timeout=2.0,
)


@dataclass(frozen=True)
class Block:
    tenant: str
    block_id: str
    path: Path


@pytest.fixture(scope="session")
def block(tmp_path_factory: pytest.TempPathFactory) -> Block:
    """A complete block written by the Rust core (several bloom shards)."""
    root = tmp_path_factory.mktemp("block")
    ing = _core.Ingester(
        str(root / "wal"),
        {"blocks_path": str(root / "blocks"), "fsync": "never", "bloom_shard_bytes": 64},
    )
    ing.replay()
    for b in range(4):
        ing.push("tenant-a", request(b, n_traces=50)[0])
    ing.flush()
    ing.close()
    (path,) = (root / "blocks" / "tenant-a").iterdir()
    return Block("tenant-a", path.name, path)


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    p = FaultProxy(("127.0.0.1", moto.port)).start()
    yield p
    p.stop()


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    name = f"tf-{uuid.uuid4().hex[:12]}"
    moto.client().create_bucket(Bucket=name)
    return name


def s3_config(bucket: str, endpoint: str, **kw: object) -> S3Config:
    args: dict[str, object] = {
        "endpoint": endpoint,
        "insecure": True,
        "region": "us-east-1",
        "access_key": "testing",
        "secret_key": "testing",
        "prefix": "pfx/tempo",
        "forcepathstyle": True,
    }
    args.update(kw)
    return S3Config(bucket=bucket, **args)  # type: ignore[arg-type]


@pytest.fixture
def s3_store(bucket: str, proxy: FaultProxy) -> Iterator[S3Backend]:
    """An S3 backend on moto, through the fault proxy (transparent until told otherwise)."""
    proxy.reset()
    store = S3Backend(s3_config(bucket, proxy.endpoint), retry=FAST_RETRY)
    yield store
    store.close()
    proxy.reset()


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[LocalBackend]:
    store = LocalBackend(tmp_path / "store")
    yield store
    store.close()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]
