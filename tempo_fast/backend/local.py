"""The local-disk backend (``storage.trace.local.path``): one file per object.

Writes go to a hidden temporary file, are fsynced and renamed into place, so a reader sees
an object whole or not at all.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from tempo_fast.backend.objects import (
    COMPACTED_META,
    META,
    BackendError,
    BlockMeta,
    CorruptObjectError,
    Data,
    NotFoundError,
    ObjectInfo,
    ObjectStore,
    check_key,
    parse_meta,
)

_COPY_CHUNK = 1 << 20


class LocalBackend(ObjectStore):
    """Objects as files under ``path`` (``<path>/<tenant>/<block-id>/<name>``)."""

    def __init__(self, path: str | os.PathLike[str], *, concurrency: int = 8) -> None:
        super().__init__(concurrency=concurrency)
        self.root = Path(path)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _fail(self, op: str, key: str, e: OSError) -> BackendError:
        err: BackendError
        if isinstance(e, FileNotFoundError) and op != "put":
            err = NotFoundError(f"{key}: no such object in {self.root}")
        else:
            err = BackendError(
                f"local backend: {op} {key}: {e}: check storage.trace.local.path "
                f"({self.root}): permissions and free space"
            )
        self.stats.failed(err)
        return err

    def put(self, key: str, data: Data) -> None:
        dest = self._path(key)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        self.stats.add("requests")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                if isinstance(data, bytes | bytearray | memoryview):
                    out.write(data)
                else:
                    with open(data, "rb") as src:
                        shutil.copyfileobj(src, out, _COPY_CHUNK)
                size = out.tell()
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
            _fsync_dir(dest.parent)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            if not isinstance(data, bytes | bytearray | memoryview) and not os.path.exists(data):
                raise  # the source file is missing: the caller's error, not the store's
            raise self._fail("put", key, e) from e
        self.stats.add("bytes_written", size)

    def get(self, key: str) -> bytes:
        self.stats.add("requests")
        try:
            data = self._path(key).read_bytes()
        except OSError as e:
            raise self._fail("get", key, e) from e
        self.stats.add("bytes_read", len(data))
        return data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"invalid range {offset}+{length}")
        self.stats.add("requests")
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
            try:
                data = os.pread(fd, length, offset)
            finally:
                os.close(fd)
        except OSError as e:
            raise self._fail("get_range", key, e) from e
        self.stats.add("bytes_read", len(data))
        if len(data) != length:
            err = CorruptObjectError(
                f"{key}: asked for {length} bytes at {offset}, the object ends {len(data)} in"
            )
            self.stats.failed(err)
            raise err
        return data

    def list_dir(self, prefix: str) -> list[str]:
        path = self._path(prefix) if prefix else self.root
        self.stats.add("requests")
        try:
            with os.scandir(path) as it:
                return sorted(e.name for e in it if e.is_dir())
        except FileNotFoundError:
            return []
        except OSError as e:
            raise self._fail("list", prefix, e) from e

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        base = self._path(prefix)
        self.stats.add("requests")
        out: list[ObjectInfo] = []
        try:
            for dirpath, _, files in os.walk(base):
                rel = Path(dirpath).relative_to(base)
                for name in files:
                    try:
                        st = os.stat(os.path.join(dirpath, name))
                    except FileNotFoundError:
                        continue
                    key = name if rel == Path(".") else f"{rel.as_posix()}/{name}"
                    out.append(ObjectInfo(key, st.st_size, st.st_mtime))
        except OSError as e:
            raise self._fail("list", prefix, e) from e
        return sorted(out)

    def delete(self, key: str) -> int:
        path = self._path(key)
        self.stats.add("requests")
        try:
            if path.is_dir():
                removed = 0
                for name in (META, COMPACTED_META):
                    if (path / name).is_file():
                        (path / name).unlink()
                        removed += 1
                removed += sum(len(files) for _, _, files in os.walk(path))
                shutil.rmtree(path)
                return removed
            path.unlink()
            return 1
        except FileNotFoundError:
            return 0
        except OSError as e:
            raise self._fail("delete", key, e) from e

    def upload_block(
        self, tenant: str, block_id: str, local_dir: str | os.PathLike[str]
    ) -> BlockMeta:
        dest = self._path(f"{tenant}/{block_id}")
        if dest.is_dir() and Path(local_dir).exists() and dest.samefile(local_dir):
            # The block was written in place (the ingester's blocks_path is this store).
            meta_path = dest / META
            if not meta_path.is_file():
                raise ValueError(f"{dest} is not a complete block: it has no {META}")
            return parse_meta(meta_path.read_bytes(), str(meta_path))
        return super().upload_block(tenant, block_id, local_dir)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
