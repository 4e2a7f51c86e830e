"""Which blocks to compact together: Tempo's time-window block selector.

Blocks are grouped by the compaction window their end time falls in. Inside the active
window (the last 24 hours) only blocks of the same compaction level are combined, so fresh
small blocks merge with each other before they merge into big ones; in older windows every
level is combined. A job takes 2 to 4 blocks of one group whose traces and bytes together stay
within ``max_compaction_objects`` and ``max_block_bytes``; its output is one level above its
highest input. Blocks of different dedicated-column layouts never share a job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from tempo_fast.backend import BlockMeta

ACTIVE_WINDOW = 24 * 3600.0
MIN_INPUT_BLOCKS = 2
MAX_INPUT_BLOCKS = 4

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_time(text: object) -> float | None:
    """Unix seconds of an RFC 3339 time as Go writes it (up to nanoseconds), else None."""
    m = _RFC3339.match(str(text))
    if not m:
        return None
    whole, frac, zone = m.groups()
    try:
        t = datetime.fromisoformat(whole + ("+00:00" if zone in "Zz" else zone))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


@dataclass(frozen=True)
class Job:
    """Blocks to merge, and the compaction level of the output."""

    blocks: tuple[BlockMeta, ...]
    level: int

    @property
    def block_ids(self) -> list[str]:
        return [str(b["blockID"]) for b in self.blocks]


def _int(meta: BlockMeta, key: str) -> int:
    value = meta.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def select(
    metas: Sequence[BlockMeta],
    now: float,
    window: float,
    max_objects: int,
    max_bytes: int,
    skip: frozenset[str] = frozenset(),
) -> list[Job]:
    """Every job for this cycle, most urgent first, no block in two jobs. Blocks in
    ``skip`` and blocks whose end time cannot be read are left alone."""
    active_from = (now - ACTIVE_WINDOW) // window
    groups: dict[tuple, list[tuple[tuple, BlockMeta]]] = {}
    for meta in metas:
        end = parse_time(meta.get("endTime"))
        if end is None or str(meta.get("blockID")) in skip:
            continue
        w = end // window
        level = _int(meta, "compactionLevel")
        layout = orjson.dumps(meta.get("dedicatedColumns") or [])
        if w >= active_from:
            group: tuple = (0, -w, level, layout)
            order: tuple = (end, str(meta.get("blockID")))
        else:
            group = (1, -w, 0, layout)
            order = (level, _int(meta, "size"), str(meta.get("blockID")))
        groups.setdefault(group, []).append((order, meta))
    jobs: list[Job] = []
    for group in sorted(groups):
        members = [m for _, m in sorted(groups[group], key=lambda e: e[0])]
        jobs.extend(_stripes(members, max_objects, max_bytes))
    return jobs


def _stripes(members: list[BlockMeta], max_objects: int, max_bytes: int) -> list[Job]:
    """Consecutive runs of 2–4 blocks within the limits, taken greedily."""
    jobs = []
    i = 0
    while i < len(members):
        take: list[BlockMeta] = []
        objects = size = 0
        for meta in members[i : i + MAX_INPUT_BLOCKS]:
            o, s = _int(meta, "totalObjects"), _int(meta, "size")
            if take and (objects + o > max_objects or size + s > max_bytes):
                break
            take.append(meta)
            objects, size = objects + o, size + s
        if len(take) >= MIN_INPUT_BLOCKS:
            level = max(_int(m, "compactionLevel") for m in take) + 1
            jobs.append(Job(tuple(take), level))
            i += len(take)
        else:
            i += 1
    return jobs
