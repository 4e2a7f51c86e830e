"""Tag autocomplete: ``/api/search/tags``, ``/api/v2/search/tags``, tag values v1 and v2.

Names and values come from the ingester (always) and from blocks overlapping ``start`` /
``end`` (only when both are given, as Tempo). A ``q`` narrows them to the spans it matches;
a partial ``q`` (``{resource.service.name="a" && span.x=}``) keeps its complete matchers and
never errors.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from tempo_fast.frontend.read_limits import tag_values_bounds
from tempo_fast.frontend.search import NS, SearchError, SearchFrontend
from tempo_fast.querier.querier import Querier

SCOPES = ("resource", "span", "event", "link", "instrumentation")

# Tempo's intrinsic tags, as `/api/v2/search/tags` lists them.
INTRINSICS = (
    "duration",
    "event:name",
    "event:timeSinceStart",
    "instrumentation:name",
    "instrumentation:version",
    "kind",
    "link:spanID",
    "link:traceID",
    "name",
    "rootName",
    "rootServiceName",
    "span:childCount",
    "span:duration",
    "span:id",
    "span:kind",
    "span:name",
    "span:parentID",
    "span:status",
    "span:statusMessage",
    "status",
    "statusMessage",
    "trace:duration",
    "trace:id",
    "trace:rootName",
    "trace:rootService",
    "traceDuration",
)

_MATCHER = re.compile(
    r"""(?P<attr>(?:[a-z]+:[A-Za-z]+)|(?:(?:span|resource|event|link|instrumentation)?\.[\w.\-/]+)|"""
    r"""name|status|kind|duration|statusMessage|rootName|rootServiceName|traceDuration)"""
    r"""\s*(?P<op>=~|!~|!=|>=|<=|=|>|<)\s*"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|`[^`]*`|-?[\w.:]+)"""
)


def lenient_query(q: str | None) -> tuple[str | None, list[tuple[str, str, str]]]:
    """The complete matchers of a possibly partial ``q``: ``({ m1 && m2 }, matchers)``."""
    if not q or not q.strip():
        return None, []
    matchers = [(m["attr"], m["op"], m["value"]) for m in _MATCHER.finditer(q)]
    if not matchers:
        return None, []
    return "{ " + " && ".join(f"{a} {op} {v}" for a, op, v in matchers) + " }", matchers


def _typed(literal: str) -> dict[str, str]:
    if literal[:1] in ('"', "`"):
        value = orjson.loads(literal) if literal[0] == '"' else literal[1:-1]
        return {"type": "string", "value": value}
    if literal in ("true", "false"):
        return {"type": "bool", "value": literal}
    if re.fullmatch(r"-?\d+", literal):
        return {"type": "int", "value": literal}
    if re.fullmatch(r"-?\d+\.\d*", literal):
        return {"type": "float", "value": literal}
    if re.fullmatch(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", literal):
        return {"type": "duration", "value": literal}
    return {"type": "keyword", "value": literal}


def _range(query: Mapping[str, str]) -> tuple[int, int] | None:
    start, end = query.get("start"), query.get("end")
    if not start or not end:
        return None
    if not (start.isdigit() and end.isdigit()):
        raise SearchError(400, f"invalid start {start!r} or end {end!r}: expected unix seconds")
    return int(start), int(end)


def _limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit", "")
    if not raw:
        return 0
    if not raw.isdigit():
        raise SearchError(400, f"invalid limit {raw!r}: expected an integer")
    return int(raw)


class TagsFrontend:
    """Runs tag jobs in the search frontend's worker pool and merges their answers."""

    def __init__(
        self, search: SearchFrontend, querier: Callable[[], Querier | None], request: Any
    ) -> None:
        self._search = search
        self._querier = querier
        self._request = request

    async def _collect(
        self, tenants: list[str], query: Mapping[str, str], **target: Any
    ) -> tuple[list[Any], dict[str, Any]]:
        querier = self._querier()
        if querier is None:
            raise SearchError(503, "not ready: the querier is starting")
        rng = _range(query)
        q, _ = lenient_query(query.get("q"))
        start_ns, end_ns = (rng[0] * NS, rng[1] * NS + NS - 1) if rng else (0, 0)
        # per tenant: max_bytes_per_tag_values_query and max_blocks_per_tag_values_query
        bounds = {t: tag_values_bounds(t, self._search.read_overrides) for t in tenants}
        requests = {}
        try:
            for max_bytes in set(b for b, _ in bounds.values()):
                requests[max_bytes] = self._request(
                    q=q, start_ns=start_ns, end_ns=end_ns, max_bytes=max_bytes, **target
                )
        except ValueError as e:
            raise SearchError(400, str(e)) from None

        def run() -> tuple[list[Any], dict[str, Any]]:
            parts, inspected, blocks = [], 0, 0
            for tenant in tenants:
                max_bytes, max_blocks = bounds[tenant]
                req = requests[max_bytes]
                body, stats = querier.search_tags_recent(tenant, req)
                parts.append(orjson.loads(body))
                inspected += int(stats.get("inspected_bytes", 0))
                if rng is None:
                    continue
                lo, hi = rng[0] * NS, (rng[1] + 1) * NS
                refs = [
                    b for b in querier.list_blocks(tenant) if b.start_ns <= hi and b.end_ns >= lo
                ]
                if max_blocks:  # the newest ones
                    refs = sorted(refs, key=lambda b: b.end_ns, reverse=True)[:max_blocks]
                for store in {b.store for b in refs}:
                    group = [b for b in refs if b.store == store]
                    body, stats = querier.search_tags_blocks(tenant, req, group)
                    parts.append(orjson.loads(body))
                    inspected += int(stats.get("inspected_bytes", 0))
                    blocks += len(group)
            metrics = {"inspectedBytes": str(inspected), "totalBlocks": blocks}
            return parts, metrics

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._search.pool, run)

    async def names_v2(self, tenants: list[str], query: Mapping[str, str]) -> dict[str, Any]:
        scope = query.get("scope", "") or "all"
        if scope not in (*SCOPES, "intrinsic", "all", "none"):
            raise SearchError(400, f"invalid scope {scope!r}")
        wanted = list(SCOPES) if scope in ("all", "none") else [s for s in SCOPES if s == scope]
        limit = _limit(query)
        merged: dict[str, set[str]] = {s: set() for s in wanted}
        metrics: dict[str, Any] = {}
        if wanted:
            parts, metrics = await self._collect(tenants, query, scopes=wanted)
            for part in parts:
                for s, names in part.items():
                    merged.setdefault(s, set()).update(names)
        scopes = [
            {"name": s, "tags": sorted(merged[s])[: limit or None]} for s in wanted if merged[s]
        ]
        if scope in ("all", "none", "intrinsic"):
            scopes.append({"name": "intrinsic", "tags": list(INTRINSICS)})
        return {"scopes": scopes, "metrics": metrics}

    async def names_v1(self, tenants: list[str], query: Mapping[str, str]) -> dict[str, Any]:
        scope = query.get("scope", "") or "all"
        v2 = await self.names_v2(tenants, {**query, "scope": scope})
        names: set[str] = set()
        for s in v2["scopes"]:
            if s["name"] != "intrinsic" or scope == "intrinsic":
                names.update(s["tags"])
        limit = _limit(query)
        return {"tagNames": sorted(names)[: limit or None], "metrics": v2["metrics"]}

    async def values_v2(
        self, tenants: list[str], tag: str, query: Mapping[str, str]
    ) -> dict[str, Any]:
        _, matchers = lenient_query(query.get("q"))
        for attr, op, literal in matchers:
            if attr == tag and op == "=":  # already pinned by the query: that value only
                return {"tagValues": [_typed(literal)], "metrics": {}}
        parts, metrics = await self._collect(tenants, query, tag=tag)
        seen: dict[tuple[str, str], dict[str, str]] = {}
        for part in parts:
            for v in part:
                seen.setdefault((v["type"], v["value"]), v)
        values = sorted(seen.values(), key=lambda v: (v["type"], v["value"]))
        limit = _limit(query)
        return {"tagValues": values[: limit or None], "metrics": metrics}

    async def values_v1(
        self, tenants: list[str], name: str, query: Mapping[str, str]
    ) -> dict[str, Any]:
        tag = name if name in INTRINSICS or name.startswith(".") else "." + name
        if re.search(r"[\s{}()\"]", tag):
            raise SearchError(400, f"invalid tag name {name!r}")
        v2 = await self.values_v2(tenants, tag, query)
        return {"tagValues": [v["value"] for v in v2["tagValues"]], "metrics": v2["metrics"]}
