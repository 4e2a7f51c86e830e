"""Span-metrics ``filter_policies`` and ``dimension_mappings``, normalised to the hashable
tuples :class:`tempo_fast._core.SpanMetricsProcessor` takes.

A policy is ``{include: <match>, exclude: <match>}``; a match is ``{match_type: strict |
regex, attributes: [{key, value}, ...]}`` where a key is a scoped attribute
(``resource.x``, ``span.x``) or one of the intrinsics ``name``, ``status`` and ``kind`` (as
Tempo's ``pkg/spanfilter``). The Rust core compiles them; this module checks their shape and
asks the core to compile them once so a bad regular expression fails at load time.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tempo_fast._core import SpanMetricsProcessor

if TYPE_CHECKING:
    from tempo_fast._core import FilterBlock

Policy = tuple["FilterBlock | None", "FilterBlock | None"]
Mapping_ = tuple[str, tuple[str, ...], str]

_FILTER_INTRINSICS = ("kind", "name", "status")
# TraceQL intrinsics Tempo parses but its span filter does not support.
_OTHER_INTRINSICS = {
    "duration", "statusMessage", "childCount", "parent", "rootName", "rootServiceName",
    "traceDuration", "nestedSetLeft", "nestedSetRight", "nestedSetParent", "id", "parentID",
    "trace:id", "trace:duration", "trace:rootName", "trace:rootService", "span:id",
    "span:parentID", "span:duration", "span:statusMessage", "span:childCount",
    "event:name", "link:spanID", "link:traceID", "instrumentation:name",
    "instrumentation:version",
}  # fmt: skip


def _key(key: object) -> tuple[str, str]:
    """``(scope, name)`` of a policy attribute key, as TraceQL's ParseIdentifier reads it."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"invalid attribute: key {key!r} must be a non-empty string")
    for prefix, scope in (("resource.", "resource"), ("span.", "span")):
        if key.startswith(prefix) and len(key) > len(prefix):
            return scope, key[len(prefix) :]
    bare = key.removeprefix("span:")
    if bare in _FILTER_INTRINSICS:
        return "intrinsic", bare
    supported = " ".join(f'"{i}"' for i in _FILTER_INTRINSICS)
    if key in _OTHER_INTRINSICS:
        raise ValueError(
            f"currently unsupported intrinsic: {key}; supported intrinsics: [{supported}]"
        )
    if key.startswith("."):
        raise ValueError(
            f"currently unsupported intrinsic: none; supported intrinsics: [{supported}] "
            f"(scope {key!r} as resource{key} or span{key})"
        )
    raise ValueError(f"tag name is not valid intrinsic or scoped attribute: {key}")


def _value(value: object, key: str) -> str | int | float | bool:
    if isinstance(value, str | bool | int | float):
        return value
    raise ValueError(f"attribute {key}: value {value!r} must be a string, number or bool")


def _match(value: object, where: str) -> FilterBlock | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected match_type and attributes")
    unknown = sorted(set(map(str, value)) - {"match_type", "attributes"})
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    match_type = value.get("match_type")
    if match_type not in ("strict", "regex"):
        raise ValueError(f"invalid {where} policy: invalid match type: {match_type}")
    attrs = value.get("attributes") or []
    if not isinstance(attrs, list):
        raise ValueError(f"invalid {where} policy: attributes must be a list of key and value")
    out = []
    for i, attr in enumerate(attrs):
        if not isinstance(attr, Mapping) or set(map(str, attr)) - {"key", "value"}:
            raise ValueError(f"invalid {where} policy: attributes[{i}] must have key and value")
        try:
            scope, name = _key(attr.get("key"))
            out.append((scope, name, _value(attr.get("value"), str(attr.get("key")))))
        except ValueError as e:
            raise ValueError(f"invalid {where} policy: attributes[{i}]: {e}") from e
    return (match_type == "regex", tuple(out))  # type: ignore[return-value]


def filter_policies(value: object) -> tuple[Policy, ...]:
    """The ``filter_policies`` list, checked and compiled once by the core."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("must be a list of policies with include and/or exclude")
    out: list[Policy] = []
    for i, policy in enumerate(value):
        where = f"[{i}]"
        if not isinstance(policy, Mapping):
            raise ValueError(f"{where}: expected a mapping with include and/or exclude")
        unknown = sorted(set(map(str, policy)) - {"include", "exclude"})
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)} (include, exclude)")
        try:
            out.append((_match(policy.get("include"), "include"),
                        _match(policy.get("exclude"), "exclude")))  # fmt: skip
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from e
    policies = tuple(out)
    _compile_check(policies)
    return policies


@functools.lru_cache(maxsize=256)
def _compile_check(policies: tuple[Policy, ...]) -> None:
    """Raise ValueError when the core cannot compile ``policies`` (a bad regex). Cached:
    a tenant's settings are re-read every generator tick."""
    SpanMetricsProcessor([], [], filter_policies=list(policies))  # type: ignore[arg-type]


def dimension_mappings(value: object) -> tuple[Mapping_, ...]:
    """The ``dimension_mappings`` list: ``{name, source_labels, join}`` entries."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("must be a list of {name, source_labels, join}")
    out: list[Mapping_] = []
    for i, m in enumerate(value):
        where = f"[{i}]"
        if not isinstance(m, Mapping):
            raise ValueError(f"{where}: expected name, source_labels and join")
        unknown = sorted(set(map(str, m)) - {"name", "source_labels", "join"})
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
        name, sources, join = m.get("name"), m.get("source_labels") or [], m.get("join") or ""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}.name: must be a non-empty label name")
        if not isinstance(sources, list) or not all(isinstance(s, str) and s for s in sources):
            raise ValueError(f"{where}.source_labels: must be a list of attribute names")
        if not isinstance(join, str):
            raise ValueError(f"{where}.join: must be a string")
        out.append((name, tuple(sources), join))
    return tuple(out)
