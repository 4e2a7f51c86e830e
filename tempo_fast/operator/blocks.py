"""``tempo-fast blocks list | show | lookup | export``: what is in the backend, read the way
the querier reads it (the Rust block reader through the store's ranged GETs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from tempo_fast.backend import CorruptObjectError, NotFoundError, ObjectStore
from tempo_fast.operator.progress import Progress
from tempo_fast.operator.store import (
    BlockInfo,
    CommandError,
    block_ids,
    block_info,
    read_infos,
    tenants,
)
from tempo_fast.operator.table import format_table, human_bytes, human_duration, short_time
from tempo_fast.pkg import traceid


@dataclass
class Ctx:
    store: ObjectStore
    where: str  # the backend, for messages
    out: TextIO
    err: TextIO


def _json(doc: object) -> str:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()


def _no_block(ctx: Ctx, tenant: str, block_id: str) -> CommandError:
    return CommandError(
        f"no block {block_id} for tenant {tenant} in {ctx.where}: "
        "list blocks with `tempo-fast blocks list`"
    )


# -- list ---------------------------------------------------------------------------------


def _sort_key(b: BlockInfo) -> tuple[str, int, str, str]:
    order = {"complete": 0, "compacted": 1, "corrupt": 2, "incomplete": 3}[b.state]
    return (b.tenant, order, str((b.meta or {}).get("startTime", "")), b.block_id)


def _row(b: BlockInfo) -> list[str]:
    m = b.meta or {}

    def num(key: str) -> str:
        v = m.get(key)
        return str(v) if isinstance(v, int) else "-"

    size = m.get("size")
    return [
        b.tenant,
        b.block_id,
        short_time(m.get("startTime")),
        short_time(m.get("endTime")),
        num("totalSpans"),
        num("totalObjects"),
        human_bytes(size if isinstance(size, int) else None),
        num("compactionLevel"),
        b.state,
    ]


HEADERS = [
    "TENANT",
    "BLOCK",
    "START (UTC)",
    "END (UTC)",
    "SPANS",
    "TRACES",
    "SIZE",
    "LEVEL",
    "STATE",
]


def list_blocks(ctx: Ctx, tenant: str | None, as_json: bool) -> int:
    ids = block_ids(ctx.store, tenants(ctx.store, tenant))
    with Progress("reading block metas", len(ids), ctx.err) as p:
        infos = read_infos(ctx.store, ids, lambda _: p.advance())
    infos.sort(key=_sort_key)
    if as_json:
        docs = [
            {"tenant": b.tenant, "blockID": b.block_id, "state": b.state, "meta": b.meta}
            | ({"error": b.error} if b.error else {})
            for b in infos
        ]
        print(_json(docs), file=ctx.out)
        return 0
    if not infos:
        scope = f"tenant {tenant}" if tenant else "any tenant"
        print(f"no blocks for {scope} in {ctx.where}", file=ctx.err)
        return 0
    ctx.out.write(format_table(HEADERS, [_row(b) for b in infos], right={4, 5, 6, 7}))
    for b in infos:
        if b.error:
            print(f"warning: {b.tenant}/{b.block_id}: {b.error}", file=ctx.err)
    complete = [b for b in infos if b.state == "complete"]
    spans = sum(int((b.meta or {}).get("totalSpans", 0)) for b in complete)
    size = sum(int((b.meta or {}).get("size", 0)) for b in complete)
    others = {s: sum(b.state == s for b in infos) for s in ("compacted", "incomplete", "corrupt")}
    extra = ", ".join(f"{n} {s}" for s, n in others.items() if n)
    print(
        f"{len(complete)} complete blocks, {spans} spans, {human_bytes(size)}"
        + (f" (and {extra})" if extra else ""),
        file=ctx.out,
    )
    return 0


# -- show ---------------------------------------------------------------------------------


def show_block(ctx: Ctx, tenant: str, block_id: str) -> int:
    info = block_info(ctx.store, tenant, block_id)
    if info.state == "incomplete":
        if block_id in ctx.store.list_blocks(tenant):
            raise CommandError(
                f"block {block_id} of tenant {tenant} in {ctx.where} has no meta.json yet: "
                "it is still being written or its upload failed"
            )
        raise _no_block(ctx, tenant, block_id)
    if info.state == "corrupt":
        raise CommandError(info.error)
    if info.state == "compacted":
        print(f"block {block_id} is compacted (meta.compacted.json)", file=ctx.err)
    print(_json(info.meta), file=ctx.out)
    return 0


# -- lookup -------------------------------------------------------------------------------


@dataclass
class Found:
    tenant: str
    blocks: list[tuple[str, int]] = field(default_factory=list)  # (block id, spans)
    parts: list[Any] = field(default_factory=list)


def _find(ctx: Ctx, trace: bytes, ids: list[tuple[str, str]]) -> tuple[dict[str, Found], int]:
    """Every block holding ``trace``, per tenant; and how many blocks failed to read."""
    from tempo_fast import _core

    found: dict[str, Found] = {}
    errors = 0
    with Progress("searching blocks", len(ids), ctx.err) as p:
        for tenant, block_id in ids:
            p.advance(note=f"{sum(len(f.blocks) for f in found.values())} hits")
            blocks = _core.RemoteBlocks()
            try:
                ctx.store.read_meta(tenant, block_id)
            except NotFoundError:
                continue  # compacted, or still being written: not searched by the querier
            except CorruptObjectError as e:
                errors += 1
                print(f"warning: block {tenant}/{block_id}: {e}", file=ctx.err)
                continue
            try:
                blocks.open(tenant, block_id, ctx.store, warm=False)
                part, stats = blocks.find_trace(tenant, trace)
            except (RuntimeError, OSError) as e:
                part, stats = None, {"errors": 1, "message": str(e)}
            if stats.get("errors"):
                errors += 1
                why = stats.get("message", "read failed (see the log line above)")
                print(f"warning: block {tenant}/{block_id}: {why}", file=ctx.err)
            if part is not None:
                f = found.setdefault(tenant, Found(tenant))
                f.blocks.append((block_id, part.spans))
                f.parts.append(part)
    return found, errors


def summarize(otlp: dict[str, Any]) -> dict[str, Any]:
    """Spans, services, root span, time range and errors of a trace in OTLP JSON."""
    spans, services, errors = 0, set(), 0
    start, end = None, None
    root: tuple[int, str, str] | None = None
    for rs in otlp.get("resourceSpans", []):
        attrs = rs.get("resource", {}).get("attributes", [])
        service = next(
            (a["value"].get("stringValue", "") for a in attrs if a["key"] == "service.name"), ""
        )
        if service:
            services.add(service)
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                spans += 1
                t0, t1 = int(s.get("startTimeUnixNano", 0)), int(s.get("endTimeUnixNano", 0))
                start = t0 if start is None else min(start, t0)
                end = t1 if end is None else max(end, t1)
                if s.get("status", {}).get("code") == "STATUS_CODE_ERROR":
                    errors += 1
                if not s.get("parentSpanId") and (root is None or t0 < root[0]):
                    root = (t0, s.get("name", ""), service)
    return {
        "spans": spans,
        "services": sorted(services),
        "root_name": root[1] if root else None,
        "root_service": root[2] if root else None,
        "start_unix_nano": start or 0,
        "duration_ns": (end - start) if start is not None and end is not None else 0,
        "errors": errors,
    }


def _otlp(parts: list[Any]) -> dict[str, Any]:
    from tempo_fast import _core

    raw = _core.render_trace(parts, "json_v1")
    return {"resourceSpans": orjson.loads(raw)["batches"] if raw else []}


def lookup(ctx: Ctx, trace_hex: str, tenant: str | None, as_json: bool) -> int:
    try:
        trace = traceid.parse(trace_hex)
    except traceid.TraceIDError as e:
        raise CommandError(f"{e}: give the trace id as up to 32 hex digits") from e
    tenant_list = tenants(ctx.store, tenant)
    found, errors = _find(ctx, trace, block_ids(ctx.store, tenant_list))
    if not found:
        scope = f"tenant {tenant}" if tenant else f"any of {len(tenant_list)} tenants"
        msg = f"trace {trace.hex()} not found in the blocks of {scope} in {ctx.where}"
        if errors:
            msg += f" ({errors} blocks could not be read: see the warnings)"
        raise CommandError(
            msg + "; a trace still in an ingester (not yet in a block) is only on the server's "
            "/api/traces/<id>"
        )
    for f in found.values():
        otlp = _otlp(f.parts)
        if as_json:
            print(orjson.dumps(otlp).decode(), file=ctx.out)
            continue
        s = summarize(otlp)
        n = len(f.blocks)
        print(f"trace {trace.hex()}: tenant {f.tenant}, {n} block{'s' * (n != 1)}", file=ctx.out)
        rows = [[block_id, str(n)] for block_id, n in f.blocks]
        ctx.out.write(format_table(["BLOCK", "SPANS"], rows, right={1}))
        print(
            f"spans: {s['spans']} (after de-duplication), errors: {s['errors']}\n"
            f"services: {', '.join(s['services']) or '-'}\n"
            f"root: {s['root_name'] or '(not received)'}"
            + (f" ({s['root_service']})" if s["root_service"] else "")
            + f"\nduration: {human_duration(s['duration_ns'])}",
            file=ctx.out,
        )
    return 0


# -- export -------------------------------------------------------------------------------


def export(ctx: Ctx, tenant: str, block_id: str, out_path: str, force: bool) -> int:
    from tempo_fast import _core

    info = block_info(ctx.store, tenant, block_id)
    if info.state == "compacted":
        raise CommandError(
            f"block {block_id} of tenant {tenant} is compacted: its spans are in the block "
            "that replaced it (`tempo-fast blocks list`)"
        )
    if info.state == "corrupt":
        raise CommandError(info.error)
    if info.state == "incomplete":
        raise _no_block(ctx, tenant, block_id)
    path = Path(out_path)
    if path.exists() and not force:
        raise CommandError(f"{path} exists: remove it or pass -force to overwrite it")
    if not path.parent.is_dir():
        raise CommandError(f"{path.parent} is not a directory: create it first")
    with Progress("exporting row groups", None, ctx.err) as p:
        try:
            stats = _core.export_block(
                tenant,
                block_id,
                ctx.store,
                str(path),
                lambda done, total, rows: p.update(done, total, note=f"{rows} spans"),
            )
        except (RuntimeError, OSError) as e:
            raise CommandError(f"export of {tenant}/{block_id} failed: {e}") from e
    groups = stats["row_groups"]
    print(
        f"wrote {stats['rows']} spans in {groups} row group{'s' * (groups != 1)} to {path} "
        f"({human_bytes(stats['bytes'])})",
        file=ctx.err,
    )
    return 0
