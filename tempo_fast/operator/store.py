"""The object store an operator command reads, from the server's own configuration, and
what it holds: blocks complete, compacted or still being written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from tempo_fast.backend import (
    BlockMeta,
    CorruptObjectError,
    LocalBackend,
    NotFoundError,
    ObjectStore,
    S3Backend,
)
from tempo_fast.backend.objects import COMPACTED_META, block_key, parse_meta
from tempo_fast.config import Config


class CommandError(Exception):
    """The command failed; the message says what to do next (exit code 1)."""


def open_store(cfg: Config) -> tuple[ObjectStore, str]:
    """The configured backend and a description of it for messages."""
    st = cfg.storage
    if st.backend == "s3":
        from tempo_fast.app import s3_config

        s3 = s3_config(st)
        try:
            store = S3Backend(s3)
        except ValueError as e:
            raise CommandError(f"{e}: set it in the -config.file the server uses") from e
        where = f"s3://{s3.bucket}/{s3.prefix.strip('/')}".rstrip("/")
        return store, f"{where} ({s3.endpoint_url or 'AWS S3'})"
    return LocalBackend(st.local_path), f"local backend {st.local_path}"


State = Literal["complete", "compacted", "incomplete", "corrupt"]


@dataclass(frozen=True)
class BlockInfo:
    """One block directory in the store: its state and, unless incomplete, its meta."""

    tenant: str
    block_id: str
    state: State
    meta: BlockMeta | None = None
    error: str = ""


def block_info(store: ObjectStore, tenant: str, block_id: str) -> BlockInfo:
    """The block's ``meta.json``, else its ``meta.compacted.json``, else incomplete."""
    try:
        return BlockInfo(tenant, block_id, "complete", store.read_meta(tenant, block_id))
    except NotFoundError:
        pass
    except CorruptObjectError as e:
        return BlockInfo(tenant, block_id, "corrupt", error=str(e))
    key = block_key(tenant, block_id, COMPACTED_META)
    try:
        return BlockInfo(tenant, block_id, "compacted", parse_meta(store.get(key), key))
    except NotFoundError:
        return BlockInfo(tenant, block_id, "incomplete")
    except CorruptObjectError as e:
        return BlockInfo(tenant, block_id, "corrupt", error=str(e))


def tenants(store: ObjectStore, tenant: str | None) -> list[str]:
    """``[tenant]`` when given, else every tenant in the store."""
    return [tenant] if tenant else store.list_tenants()


def block_ids(store: ObjectStore, tenant_list: list[str]) -> list[tuple[str, str]]:
    """Every (tenant, block id) of the tenants, in order."""
    return [(t, b) for t in tenant_list for b in store.list_blocks(t)]


def read_infos(
    store: ObjectStore,
    ids: list[tuple[str, str]],
    on_done: Callable[[BlockInfo], None],
    workers: int = 8,
) -> list[BlockInfo]:
    """:func:`block_info` of every block, a few at a time (one or two GETs each), calling
    ``on_done`` as each arrives; the result keeps the order of ``ids``."""

    def each() -> Iterator[BlockInfo]:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="meta") as pool:
            yield from pool.map(lambda tb: block_info(store, *tb), ids)

    infos = []
    for info in each():
        on_done(info)
        infos.append(info)
    return infos
