"""The S3 backend (AWS or compatible: MinIO, moto …) over boto3, with our own retries.

botocore's retries are off: every call goes through :meth:`S3Backend._call`, which retries
transient errors (5xx, throttling, dropped or reset connections, timeouts) with exponential
backoff and jitter, within ``RetryPolicy.max_attempts`` and ``RetryPolicy.deadline``, and
turns everything else into a :class:`~tempo_fast.backend.objects.BackendError` that says
what to check.
"""

from __future__ import annotations

import http.client
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import boto3
import urllib3
from botocore import exceptions as bexc
from botocore.config import Config

from tempo_fast.backend.objects import (
    COMPACTED_META,
    META,
    BackendError,
    BucketMissingError,
    CorruptObjectError,
    CredentialsError,
    Data,
    EndpointUnreachableError,
    NotFoundError,
    ObjectInfo,
    ObjectStore,
    UnavailableError,
    check_key,
)
from tempo_fast.pkg.log import get_logger

T = TypeVar("T")
log = get_logger("backend")

DEFAULT_PART_SIZE = 16 << 20  # minio-go's minimum part size, what Tempo uses for part_size 0
_DELETE_BATCH = 1000

_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "TooManyRequests",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
}
# dropped, reset or timed-out connections, however deep in the HTTP stack they surface
_TRANSIENT_IO = (
    bexc.HTTPClientError,
    bexc.IncompleteReadError,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)
_AUTH_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "InvalidSecurity",
    "InvalidClientTokenId",
    "AllAccessDisabled",
    "AccountProblem",
}


@dataclass(frozen=True)
class S3Config:
    """``storage.trace.s3`` under Tempo 2.10's key names.

    ``endpoint`` is ``host:port`` (``https://`` unless ``insecure``; a URL is used as given;
    empty means AWS). Path-style addressing is used when ``forcepathstyle`` is set or the
    endpoint is not AWS's (as minio-go's automatic lookup does). Empty keys fall back to
    boto3's credential chain (environment, profile, instance role).
    """

    bucket: str
    endpoint: str = ""
    region: str = ""
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    insecure: bool = False
    prefix: str = ""
    forcepathstyle: bool = False
    part_size: int = 0  # multipart part size in bytes; 0: 16 MiB

    @property
    def endpoint_url(self) -> str | None:
        if not self.endpoint:
            return None
        if "://" in self.endpoint:
            return self.endpoint
        return f"{'http' if self.insecure else 'https'}://{self.endpoint}"

    @property
    def path_style(self) -> bool:
        return self.forcepathstyle or bool(self.endpoint and "amazonaws.com" not in self.endpoint)


@dataclass(frozen=True)
class RetryPolicy:
    """How transient errors are retried (ours: Tempo 2.10 has no keys for it)."""

    max_attempts: int = 8  # attempts per operation, the first included
    backoff_initial: float = 0.2  # seconds; doubles per attempt, up to backoff_max
    backoff_max: float = 2.0
    deadline: float = 30.0  # no retry starts after this many seconds of an operation
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): exponential, half jittered."""
        step = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
        return step / 2 + random.uniform(0, step / 2)


class S3Backend(ObjectStore):
    """Objects in an S3 bucket under ``<prefix>/``."""

    def __init__(
        self, cfg: S3Config, *, retry: RetryPolicy | None = None, concurrency: int = 16
    ) -> None:
        super().__init__(concurrency=concurrency)
        if not cfg.bucket:
            raise ValueError("storage.trace.s3.bucket is required")
        self.cfg = cfg
        self.retry = retry or RetryPolicy()
        self.prefix = cfg.prefix.strip("/")
        self.part_size = cfg.part_size or DEFAULT_PART_SIZE
        self._where = cfg.endpoint_url or "AWS S3"
        session = boto3.session.Session()
        self.client: Any = session.client(
            "s3",
            endpoint_url=cfg.endpoint_url,
            aws_access_key_id=cfg.access_key or None,
            aws_secret_access_key=cfg.secret_key or None,
            config=Config(
                region_name=cfg.region or "us-east-1",
                signature_version="s3v4",
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=self.retry.connect_timeout,
                read_timeout=self.retry.read_timeout,
                max_pool_connections=max(10, 2 * concurrency),
                s3={"addressing_style": "path" if cfg.path_style else "virtual"},
                # S3-compatible stores do not all know the newer default checksums
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def close(self) -> None:
        super().close()
        self.client.close()

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    # -- retries and errors -------------------------------------------------------------------

    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        """``fn()``, retrying transient errors; other errors become a BackendError."""
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self.stats.add("requests")
            try:
                return fn()
            except Exception as e:
                transient, err = self._classify(op, key, e)
                if err is None:
                    raise
                elapsed = time.monotonic() - start
                delay = self.retry.backoff(attempt)
                if (
                    transient
                    and attempt < self.retry.max_attempts
                    and elapsed + delay < self.retry.deadline
                ):
                    self.stats.add("retries")
                    log.debug("s3 retry", op=op, key=key, attempt=attempt, err=str(e))
                    time.sleep(delay)
                    continue
                if transient:
                    err.args = (
                        f"{err.args[0]} (gave up after {attempt} attempts, {elapsed:.1f}s)",
                    )
                self.stats.failed(err)
                if not isinstance(err, NotFoundError):
                    log.warn("s3 request failed", op=op, key=key, err=str(err))
                raise err from e

    def _classify(self, op: str, key: str, e: Exception) -> tuple[bool, BackendError | None]:
        """(transient?, the error to raise) for ``e``; (False, None) if it is not the store's."""
        what = f"S3 {op} {key!r} in bucket {self.cfg.bucket!r} at {self._where}"
        if isinstance(e, bexc.ClientError):
            return self._classify_response(what, e)
        if isinstance(e, bexc.SSLError):
            return False, EndpointUnreachableError(
                f"{what}: TLS failed ({e}): check storage.trace.s3.endpoint and insecure"
            )
        if isinstance(e, bexc.ConnectionError):
            return True, EndpointUnreachableError(
                f"{what}: cannot connect ({e}): check storage.trace.s3.endpoint, insecure "
                "(http or https) and that the service is up"
            )
        if isinstance(e, _TRANSIENT_IO):
            return True, UnavailableError(f"{what}: connection failed ({e})")
        if isinstance(e, bexc.NoCredentialsError | bexc.PartialCredentialsError):
            return False, CredentialsError(
                f"{what}: no credentials: set storage.trace.s3.access_key and secret_key "
                "(or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
            )
        if isinstance(e, bexc.BotoCoreError):
            return False, BackendError(f"{what}: {e}")
        return False, None

    def _classify_response(
        self, what: str, e: bexc.ClientError
    ) -> tuple[bool, BackendError | None]:
        error = e.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        detail = f"{status} {code}: {error.get('Message', '')}".strip()
        if code == "NoSuchBucket":
            return False, BucketMissingError(
                f"{what}: the bucket does not exist: check storage.trace.s3.bucket, endpoint "
                "and region, or create the bucket"
            )
        if code in _AUTH_CODES or status == 403:
            return False, CredentialsError(
                f"{what}: credentials refused ({detail}): check storage.trace.s3.access_key "
                "and secret_key, and that they may use the bucket"
            )
        if code in ("NoSuchKey", "NotFound", "404") or status == 404:
            return False, NotFoundError(f"{what}: no such object")
        if code == "InvalidRange" or status == 416:
            return False, CorruptObjectError(f"{what}: range past the end of the object")
        if status >= 500 or status == 429 or code in _TRANSIENT_CODES:
            return True, UnavailableError(f"{what}: the service kept failing ({detail})")
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed") or status == 301:
            return False, BackendError(f"{what}: {detail}: check storage.trace.s3.region")
        return False, BackendError(f"{what}: {detail}")

    # -- primitives ---------------------------------------------------------------------------

    def put(self, key: str, data: Data) -> None:
        full = self._full(check_key(key))
        if isinstance(data, bytes | bytearray | memoryview):
            body = bytes(data)
            self._call(
                "put",
                key,
                partial(self.client.put_object, Bucket=self.cfg.bucket, Key=full, Body=body),
            )
            self.stats.add("bytes_written", len(body))
            return
        size = os.path.getsize(data)
        if size > self.part_size:
            self._put_multipart(key, full, data, size)
        else:
            self._call("put", key, partial(self._put_file, full, data, size))
        self.stats.add("bytes_written", size)

    def _put_file(self, full: str, path: os.PathLike[str], size: int) -> None:
        with open(path, "rb") as f:
            self.client.put_object(Bucket=self.cfg.bucket, Key=full, Body=f, ContentLength=size)

    def _put_multipart(self, key: str, full: str, path: os.PathLike[str], size: int) -> None:
        bucket = self.cfg.bucket
        created = self._call(
            "create_multipart_upload",
            key,
            partial(self.client.create_multipart_upload, Bucket=bucket, Key=full),
        )
        upload_id = created["UploadId"]
        try:
            parts = []
            with open(path, "rb") as f:
                for number, offset in enumerate(range(0, size, self.part_size), start=1):
                    length = min(self.part_size, size - offset)
                    etag = self._call(
                        "upload_part",
                        key,
                        partial(self._upload_part, f, full, upload_id, number, offset, length),
                    )
                    parts.append({"PartNumber": number, "ETag": etag})
            self._call(
                "complete_multipart_upload",
                key,
                partial(
                    self.client.complete_multipart_upload,
                    Bucket=bucket,
                    Key=full,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                ),
            )
        except BaseException:
            try:  # best effort: a bucket lifecycle rule cleans up what this misses
                self.client.abort_multipart_upload(Bucket=bucket, Key=full, UploadId=upload_id)
            except Exception as abort_err:
                log.debug("s3 abort multipart failed", key=key, err=str(abort_err))
            raise

    def _upload_part(
        self, f: Any, full: str, upload_id: str, number: int, offset: int, length: int
    ) -> str:
        f.seek(offset)
        body = f.read(length)
        resp = self.client.upload_part(
            Bucket=self.cfg.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=body
        )
        return str(resp["ETag"])

    def get(self, key: str) -> bytes:
        full = self._full(check_key(key))
        data = self._call("get", key, partial(self._get, full, None))
        self.stats.add("bytes_read", len(data))
        return data

    def _get(self, full: str, byte_range: str | None) -> bytes:
        kwargs = {"Range": byte_range} if byte_range else {}
        resp = self.client.get_object(Bucket=self.cfg.bucket, Key=full, **kwargs)
        body = resp["Body"]  # (its context manager yields the raw urllib3 stream: not used)
        try:
            return bytes(body.read())
        finally:
            body.close()

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"invalid range {offset}+{length}")
        full = self._full(check_key(key))
        if length == 0:
            return b""
        rng = f"bytes={offset}-{offset + length - 1}"
        data = self._call("get_range", key, partial(self._get, full, rng))
        self.stats.add("bytes_read", len(data))
        if len(data) != length:
            err = CorruptObjectError(
                f"{key}: asked for {length} bytes at {offset}, got {len(data)}"
            )
            self.stats.failed(err)
            raise err
        return data

    def list_dir(self, prefix: str) -> list[str]:
        base = self._full(check_key(prefix)) + "/" if prefix else self._full("")
        names = self._call("list", prefix, partial(self._list, base, "/"))
        return sorted({p[len(base) :].rstrip("/") for p in names})

    def _list(self, base: str, delimiter: str | None) -> list[str]:
        """Common prefixes under ``base`` (with a delimiter), else every key under it."""
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs: dict[str, str] = {"Bucket": self.cfg.bucket, "Prefix": base}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        out: list[str] = []
        for page in paginator.paginate(**kwargs):
            if delimiter:
                out.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
            else:
                out.extend(o["Key"] for o in page.get("Contents", []))
        return out

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        base = self._full(check_key(prefix)) + "/"
        found = self._call("list", prefix, partial(self._list_info, base))
        return sorted(ObjectInfo(k[len(base) :], size, mtime) for k, size, mtime in found)

    def _list_info(self, base: str) -> list[tuple[str, int, float]]:
        paginator = self.client.get_paginator("list_objects_v2")
        out: list[tuple[str, int, float]] = []
        for page in paginator.paginate(Bucket=self.cfg.bucket, Prefix=base):
            for o in page.get("Contents", []):
                out.append((o["Key"], int(o.get("Size", 0)), o["LastModified"].timestamp()))
        return out

    def delete(self, key: str) -> int:
        full = self._full(check_key(key))
        found = self._call("list", key, partial(self._list, full, None))
        keys = [k for k in found if k == full or k.startswith(full + "/")]
        metas = [k for k in keys if k.rsplit("/", 1)[-1] in (META, COMPACTED_META)]
        rest = [k for k in keys if k.rsplit("/", 1)[-1] not in (META, COMPACTED_META)]
        for batch_keys in (metas, rest):
            for i in range(0, len(batch_keys), _DELETE_BATCH):
                chunk = batch_keys[i : i + _DELETE_BATCH]
                self._call("delete", key, partial(self._delete_batch, chunk))
        return len(keys)

    def _delete_batch(self, keys: list[str]) -> None:
        resp = self.client.delete_objects(
            Bucket=self.cfg.bucket,
            Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
        )
        errors = resp.get("Errors") or []
        if errors:
            first = errors[0]
            raise bexc.ClientError(
                {"Error": {"Code": first.get("Code", ""), "Message": first.get("Message", "")}},
                "DeleteObjects",
            )
