"""Object storage for blocks: local disk or S3, one interface (:class:`ObjectStore`)."""

from tempo_fast.backend.local import LocalBackend
from tempo_fast.backend.objects import (
    BackendError,
    BackendStats,
    BlockList,
    BlockMeta,
    BucketMissingError,
    CorruptObjectError,
    CredentialsError,
    EndpointUnreachableError,
    NotFoundError,
    ObjectInfo,
    ObjectStore,
    TenantBlocks,
    UnavailableError,
)
from tempo_fast.backend.s3 import RetryPolicy, S3Backend, S3Config

__all__ = [
    "BackendError",
    "BackendStats",
    "BlockList",
    "BlockMeta",
    "BucketMissingError",
    "CorruptObjectError",
    "CredentialsError",
    "EndpointUnreachableError",
    "LocalBackend",
    "NotFoundError",
    "ObjectInfo",
    "ObjectStore",
    "RetryPolicy",
    "S3Backend",
    "S3Config",
    "TenantBlocks",
    "UnavailableError",
]
