"""The object-store interface for blocks, laid out as Tempo lays them out.

```
<prefix>/<tenant>/index.json.gz             tenant index: gzip JSON {created_at, meta, compacted}
<prefix>/<tenant>/<block-id>/data.parquet    spans
<prefix>/<tenant>/<block-id>/bloom-0 … bloom-N
<prefix>/<tenant>/<block-id>/index
<prefix>/<tenant>/<block-id>/meta.json       written last: a block without it is not there yet
```

Keys given to a backend are relative to its prefix (``<tenant>/<block-id>/<name>``). Every
failure is a :class:`BackendError`; its ``kind`` is a metric label and its message says what
to check.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import threading
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import orjson

META = "meta.json"
COMPACTED_META = "meta.compacted.json"
DATA = "data.parquet"
INDEX = "index"
TENANT_INDEX = "index.json.gz"
CLUSTER_SEED = "tempo_cluster_seed.json"  # Tempo keeps it at the root: not a tenant

T = TypeVar("T")

BlockMeta = dict[str, Any]
"""A block's ``meta.json`` as parsed JSON (Tempo's field names)."""

Data = bytes | bytearray | memoryview | os.PathLike[str]
"""What :meth:`ObjectStore.put` stores: bytes, or the path of a file to copy."""


class BackendError(Exception):
    """A backend operation failed; ``kind`` names the failure for metrics."""

    kind = "error"


class NotFoundError(BackendError):
    """The object does not exist (a normal answer: not counted as a failure)."""

    kind = "not_found"


class CorruptObjectError(BackendError):
    """The object exists but cannot be what it should be (bad JSON, short range)."""

    kind = "corrupt"


class BucketMissingError(BackendError):
    """The bucket does not exist."""

    kind = "bucket_missing"


class CredentialsError(BackendError):
    """The store refused the credentials, or there are none."""

    kind = "credentials"


class EndpointUnreachableError(BackendError):
    """The store could not be reached (after retrying)."""

    kind = "unreachable"


class UnavailableError(BackendError):
    """Transient errors (5xx, throttling, dropped connections, timeouts) outlasted the retries."""

    kind = "unavailable"


class BackendStats:
    """Thread-safe counters a caller can expose on /metrics.

    Names: ``requests`` (attempts, retries included), ``retries``, ``failures`` and
    ``failures_<kind>`` (errors raised to the caller, not-found excluded), ``bytes_read``,
    ``bytes_written``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def failed(self, err: BackendError) -> None:
        """Count ``err`` as raised to the caller."""
        if not isinstance(err, NotFoundError):
            with self._lock:
                self._counts["failures"] += 1
                self._counts[f"failures_{err.kind}"] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


@dataclass(frozen=True, order=True)
class ObjectInfo:
    """An object found by :meth:`ObjectStore.list_objects`."""

    key: str  # relative to the listed prefix
    size: int
    modified: float  # unix seconds


@dataclass
class TenantBlocks:
    """What a tenant's listing holds, block by block."""

    metas: list[BlockMeta] = field(default_factory=list)
    """Live blocks (``meta.json``), oldest first."""
    compacted: list[BlockMeta] = field(default_factory=list)
    """Blocks marked compacted (``meta.compacted.json``, with ``compactedTime``)."""
    incomplete: dict[str, float] = field(default_factory=dict)
    """Blocks with no meta at all (being written, or a crashed upload): id -> newest object's
    modification time."""
    unreadable: dict[str, str] = field(default_factory=dict)
    """Blocks whose meta cannot be read: id -> why."""


@dataclass(frozen=True)
class BlockList:
    """A tenant's block list, as in Tempo's tenant index."""

    metas: tuple[BlockMeta, ...]
    compacted: tuple[BlockMeta, ...] = ()
    created_at: datetime | None = None


_SEGMENT = re.compile(r"[^/\x00]+")


def check_key(key: str) -> str:
    """``key`` if it is a relative object key (``a/b/c``, no empty, ``.`` or ``..`` segment)."""
    parts = key.split("/")
    if not key or any(p in (".", "..") or not _SEGMENT.fullmatch(p) for p in parts):
        raise ValueError(f"invalid object key {key!r}")
    return key


def block_key(tenant: str, block_id: str, name: str | None = None) -> str:
    """``<tenant>/<block-id>`` or ``<tenant>/<block-id>/<name>``."""
    return f"{tenant}/{block_id}" if name is None else f"{tenant}/{block_id}/{name}"


def is_block_id(name: str) -> bool:
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def parse_meta(raw: bytes, where: str) -> BlockMeta:
    """A ``meta.json`` body; :class:`CorruptObjectError` unless it is a JSON object."""
    try:
        meta = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise CorruptObjectError(f"{where}: not JSON: {e}") from e
    if not isinstance(meta, dict):
        raise CorruptObjectError(f"{where}: not a JSON object")
    return meta


def _go_time(t: datetime) -> str:
    """``t`` as Go's time.Time marshals to JSON (RFC 3339, trailing zeros trimmed)."""
    t = t.astimezone(UTC)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        s += f".{t.microsecond:06d}".rstrip("0")
    return s + "Z"


def encode_blocklist(
    metas: Iterable[BlockMeta], compacted: Iterable[BlockMeta] = (), now: datetime | None = None
) -> bytes:
    """Tempo's tenant index: gzip (member ``index.json``) of ``{created_at, meta, compacted}``."""
    doc = {
        "created_at": _go_time(now or datetime.now(UTC)),
        "meta": list(metas),
        "compacted": list(compacted),
    }
    buf = io.BytesIO()
    with gzip.GzipFile(filename="index.json", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(orjson.dumps(doc))
    return buf.getvalue()


def decode_blocklist(raw: bytes, where: str) -> BlockList:
    """Inverse of :func:`encode_blocklist`; :class:`CorruptObjectError` on a bad object."""
    try:
        doc = orjson.loads(gzip.decompress(raw))
        created = doc.get("created_at")
        return BlockList(
            metas=tuple(doc.get("meta") or ()),
            compacted=tuple(doc.get("compacted") or ()),
            created_at=datetime.fromisoformat(created) if created else None,
        )
    except (OSError, EOFError, ValueError, AttributeError, TypeError) as e:
        raise CorruptObjectError(f"{where}: not a tenant index: {e}") from e


def _upload_order(name: str) -> tuple[int, str, int]:
    """data.parquet first, then the rest in natural order (bloom-2 before bloom-10)."""
    if name == DATA:
        return (0, "", 0)
    base, _, num = name.rpartition("-")
    return (1, base, int(num)) if base and num.isdigit() else (1, name, -1)


class ObjectStore(ABC):
    """Blocks and tenant indexes in an object store.

    Subclasses implement the primitives (:meth:`put`, :meth:`get`, :meth:`get_range`,
    :meth:`list_dir`, :meth:`delete`); the block operations are built on them. Thread-safe.
    """

    def __init__(self, *, concurrency: int = 16) -> None:
        self.stats = BackendStats()
        self._concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- primitives ---------------------------------------------------------------------------

    @abstractmethod
    def put(self, key: str, data: Data) -> None:
        """Store ``data`` (bytes, or a file's path) at ``key``, replacing any object there."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object; :class:`NotFoundError` if there is none."""

    @abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``; :class:`CorruptObjectError` past the end."""

    @abstractmethod
    def list_dir(self, prefix: str) -> list[str]:
        """Names of the "directories" one level beneath ``prefix`` ("" is the root), sorted."""

    @abstractmethod
    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """Every object under ``prefix/`` (keys relative to it), sorted by key."""

    @abstractmethod
    def delete(self, key: str) -> int:
        """Delete the object ``key`` and every object under ``key/`` (``meta.json`` first, so
        a reader stops seeing a block before its data goes). Returns how many were deleted."""

    # -- built on them ------------------------------------------------------------------------

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Several ``(offset, length)`` ranges of ``key``, fetched concurrently, in order."""
        if len(ranges) <= 1:
            return [self.get_range(key, off, n) for off, n in ranges]
        pool = self._executor()
        futures: list[Future[bytes]] = [pool.submit(self.get_range, key, o, n) for o, n in ranges]
        try:
            return [f.result() for f in futures]
        finally:
            for f in futures:
                f.cancel()

    def list_tenants(self) -> list[str]:
        """Tenants with anything stored, sorted."""
        return [t for t in self.list_dir("") if t != CLUSTER_SEED]

    def list_blocks(self, tenant: str) -> list[str]:
        """Ids of the tenant's blocks, sorted. This includes blocks still being uploaded or
        compacted (no ``meta.json``): :meth:`read_meta` raises :class:`NotFoundError` for them."""
        return [b for b in self.list_dir(check_key(tenant)) if is_block_id(b)]

    def read_meta(self, tenant: str, block_id: str) -> BlockMeta:
        """The block's ``meta.json``; :class:`NotFoundError` for an incomplete or compacted
        block, :class:`CorruptObjectError` for a bad one."""
        key = block_key(tenant, block_id, META)
        return self._parsed(parse_meta, self.get(key), key)

    def upload_block(
        self, tenant: str, block_id: str, local_dir: str | os.PathLike[str]
    ) -> BlockMeta:
        """Upload a complete local block: ``data.parquet`` first, then the other files
        concurrently, and ``meta.json`` last, so a reader never sees half a block. An upload
        that fails leaves no ``meta.json``; calling again finishes it. Returns the meta."""
        src = Path(local_dir)
        meta_path = src / META
        if not meta_path.is_file():
            raise ValueError(f"{src} is not a complete block: it has no {META}")
        raw_meta = meta_path.read_bytes()
        meta = parse_meta(raw_meta, str(meta_path))
        if (meta.get("tenantID"), meta.get("blockID")) != (tenant, block_id):
            raise ValueError(
                f"{meta_path} is block {meta.get('tenantID')}/{meta.get('blockID')}, "
                f"not {tenant}/{block_id}"
            )
        names = sorted(
            (
                p.name
                for p in src.iterdir()
                if p.is_file() and p.name != META and not p.name.endswith(".tmp")
            ),
            key=_upload_order,
        )
        if names and names[0] == DATA:
            self.put(block_key(tenant, block_id, DATA), src / DATA)
            names = names[1:]
        pool = self._executor()
        futures = [pool.submit(self.put, block_key(tenant, block_id, n), src / n) for n in names]
        try:
            for f in futures:
                f.result()
        finally:
            for f in futures:
                f.cancel()
        self.put(block_key(tenant, block_id, META), raw_meta)
        return meta

    def scan_tenant(self, tenant: str, cache: dict[tuple[str, str], BlockMeta]) -> TenantBlocks:
        """The tenant's blocks from one listing, each meta read once: ``cache`` keeps them
        by (block id, meta file name), since a meta file never changes."""
        by_block: dict[str, dict[str, float]] = {}
        for obj in self.list_objects(check_key(tenant)):
            block_id, sep, name = obj.key.partition("/")
            if sep and is_block_id(block_id):
                by_block.setdefault(block_id, {})[name] = obj.modified
        out = TenantBlocks()
        for key in [k for k in cache if k[0] not in by_block]:
            del cache[key]
        for block_id, names in sorted(by_block.items()):
            # Both metas: being marked compacted (its replacement is already stored).
            name = COMPACTED_META if COMPACTED_META in names else META if META in names else None
            if name is None:
                out.incomplete[block_id] = max(names.values())
                continue
            meta = cache.get((block_id, name))
            if meta is None:
                try:
                    key = block_key(tenant, block_id, name)
                    meta = self._parsed(parse_meta, self.get(key), key)
                except NotFoundError:
                    continue  # marked compacted or deleted since the listing
                except CorruptObjectError as e:
                    out.unreadable[block_id] = str(e)
                    continue
                cache[(block_id, name)] = meta
            (out.metas if name == META else out.compacted).append(meta)
        out.metas.sort(key=lambda m: (str(m.get("startTime", "")), str(m.get("blockID", ""))))
        return out

    def mark_compacted(self, tenant: str, meta: BlockMeta, now: datetime | None = None) -> None:
        """Mark a block compacted as Tempo does: ``meta.compacted.json`` (the meta plus
        ``compactedTime``) is written, then ``meta.json`` deleted, so readers stop listing it
        while its data stays for queries already under way."""
        block_id = str(meta["blockID"])
        compacted = {**meta, "compactedTime": _go_time(now or datetime.now(UTC))}
        self.put(block_key(tenant, block_id, COMPACTED_META), orjson.dumps(compacted))
        self.delete(block_key(tenant, block_id, META))

    def rebuild_blocklist(
        self, tenant: str, cache: dict[tuple[str, str], BlockMeta]
    ) -> TenantBlocks:
        """Write the tenant index from a fresh listing (so concurrent writers converge on
        what the store holds) and return what the listing found."""
        found = self.scan_tenant(tenant, cache)
        self.write_blocklist(tenant, found.metas, found.compacted)
        return found

    def write_blocklist(
        self, tenant: str, metas: Iterable[BlockMeta], compacted: Iterable[BlockMeta] = ()
    ) -> None:
        """Write ``<tenant>/index.json.gz``; an empty list deletes it (as Tempo does)."""
        metas, compacted = list(metas), list(compacted)
        key = f"{check_key(tenant)}/{TENANT_INDEX}"
        if not metas and not compacted:
            self.delete(key)
            return
        self.put(key, encode_blocklist(metas, compacted))

    def read_blocklist(self, tenant: str) -> BlockList:
        """The tenant index; :class:`NotFoundError` if none was written."""
        key = f"{check_key(tenant)}/{TENANT_INDEX}"
        return self._parsed(decode_blocklist, self.get(key), key)

    def _parsed(self, parse: Callable[[bytes, str], T], raw: bytes, key: str) -> T:
        try:
            return parse(raw, key)
        except CorruptObjectError as e:
            self.stats.failed(e)
            raise

    # -- lifecycle ----------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._concurrency, thread_name_prefix="backend"
                )
            return self._pool

    def close(self) -> None:
        """Stop the worker threads (idempotent)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
