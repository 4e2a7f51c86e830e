"""Tempo 2.10 overrides trees: both layouts, validation, and the limits the core enforces.

An overrides tree is Tempo's ``Overrides`` mapping, either in the current layout
(``ingestion: {rate_limit_bytes: ...}``, ``global: {max_bytes_per_trace: ...}``) or in the
legacy flat one (``ingestion_rate_limit_bytes: ...``), which is converted. A tenant's tree is
merged over the defaults key by key, so a tenant inherits every limit it does not set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tempo_fast.config.units import parse_duration

# Sections of the current layout.
SECTIONS = (
    "ingestion",
    "read",
    "compaction",
    "metrics_generator",
    "forwarders",
    "global",
    "storage",
    "cost_attribution",
)
# Legacy flat key -> path in the current layout (metrics_generator_* keys are mapped by rule).
LEGACY = {
    "ingestion_rate_strategy": ("ingestion", "rate_strategy"),
    "ingestion_rate_limit_bytes": ("ingestion", "rate_limit_bytes"),
    "ingestion_burst_size_bytes": ("ingestion", "burst_size_bytes"),
    "ingestion_tenant_shard_size": ("ingestion", "tenant_shard_size"),
    "ingestion_max_attribute_bytes": ("ingestion", "max_attribute_bytes"),
    "max_traces_per_user": ("ingestion", "max_traces_per_user"),
    "max_global_traces_per_user": ("ingestion", "max_global_traces_per_user"),
    "max_bytes_per_trace": ("global", "max_bytes_per_trace"),
    "max_bytes_per_tag_values_query": ("read", "max_bytes_per_tag_values_query"),
    "max_blocks_per_tag_values_query": ("read", "max_blocks_per_tag_values_query"),
    "max_search_duration": ("read", "max_search_duration"),
    "max_metrics_duration": ("read", "max_metrics_duration"),
    "unsafe_query_hints": ("read", "unsafe_query_hints"),
    "block_retention": ("compaction", "block_retention"),
    "compaction_window": ("compaction", "compaction_window"),
    "compaction_disabled": ("compaction", "compaction_disabled"),
    "forwarders": ("forwarders",),
    "parquet_dedicated_columns": ("storage", "parquet_dedicated_columns"),
}
_GENERATOR_PREFIXES = (
    ("metrics_generator_processor_service_graphs_", ("processor", "service_graphs")),
    ("metrics_generator_processor_span_metrics_", ("processor", "span_metrics")),
    ("metrics_generator_processor_local_blocks_", ("processor", "local_blocks")),
    ("metrics_generator_processor_host_info_", ("processor", "host_info")),
    ("metrics_generator_forwarder_", ("forwarder",)),
    ("metrics_generator_", ()),
)

# The limits the Rust core enforces: core key -> (path in the tree, Tempo's default).
CORE_LIMITS: dict[str, tuple[tuple[str, str], int]] = {
    "rate_limit_bytes": (("ingestion", "rate_limit_bytes"), 15_000_000),
    "burst_size_bytes": (("ingestion", "burst_size_bytes"), 20_000_000),
    "max_traces_per_user": (("ingestion", "max_traces_per_user"), 10_000),
    "max_attribute_bytes": (("ingestion", "max_attribute_bytes"), 2048),
    "max_bytes_per_trace": (("global", "max_bytes_per_trace"), 5_000_000),
}
# The per-tenant read limits the query-frontend applies: its name -> path in the tree.
READ_DURATIONS = {
    "max_search_duration": ("read", "max_search_duration"),
    "max_metrics_duration": ("read", "max_metrics_duration"),
}
READ_INTS = {
    "max_bytes_per_tag_values_query": ("read", "max_bytes_per_tag_values_query"),
    "max_blocks_per_tag_values_query": ("read", "max_blocks_per_tag_values_query"),
}
_INTS = {path for path, _ in CORE_LIMITS.values()} | {
    ("ingestion", "max_global_traces_per_user"),
    ("ingestion", "tenant_shard_size"),
    *READ_INTS.values(),
}
_DURATIONS = {
    ("compaction", "block_retention"),
    ("compaction", "compaction_window"),
    *READ_DURATIONS.values(),
}


class OverridesError(ValueError):
    """An overrides tree cannot be used; the message names the key."""


def _legacy_path(key: str) -> tuple[str, ...] | None:
    if key in LEGACY:
        return LEGACY[key]
    for prefix, path in _GENERATOR_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return ("metrics_generator", *path, key[len(prefix) :])
    return None


def normalize(tree: Any, where: str) -> dict[str, Any]:
    """``tree`` in the current layout (legacy keys converted), validated; ``where`` prefixes
    error messages (e.g. ``overrides.defaults``)."""
    if tree is None:
        return {}
    if not isinstance(tree, Mapping):
        raise OverridesError(f"{where}: expected a mapping of overrides, got {tree!r}")
    legacy = [k for k in tree if k not in SECTIONS and _legacy_path(str(k)) is not None]
    current = [k for k in tree if k in SECTIONS and k != "forwarders"]
    if legacy and current:
        raise OverridesError(
            f"{where}: mixes the legacy layout ({legacy[0]}) with the current one "
            f"({current[0]}); use one"
        )
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = str(key)
        if name in SECTIONS:
            path: tuple[str, ...] = (name,)
        else:
            legacy_path = _legacy_path(name)
            if legacy_path is None:
                raise OverridesError(f"{where}.{name}: unknown override")
            path = legacy_path
        _set(out, path, value)
    for section in SECTIONS:
        if section in out and section != "forwarders" and not isinstance(out[section], Mapping):
            raise OverridesError(f"{where}.{section}: expected a mapping")
    _check(out, where)
    return out


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = value


def _check(tree: Mapping[str, Any], where: str) -> None:
    for path in _INTS:
        found, value = lookup(tree, path)
        if found and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise OverridesError(
                f"{where}.{'.'.join(path)}: {value!r} is not a non-negative integer"
            )
    found, strategy = lookup(tree, ("ingestion", "rate_strategy"))
    if found and strategy not in ("local", "global"):
        raise OverridesError(
            f"{where}.ingestion.rate_strategy: {strategy!r} is not local or global"
        )
    for path in _DURATIONS:
        found, value = lookup(tree, path)
        if found:
            try:
                parse_duration(value)
            except ValueError as e:
                raise OverridesError(f"{where}.{'.'.join(path)}: {e}") from None


def lookup(tree: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    """``(found, value)`` of ``path`` in ``tree``."""
    node: Any = tree
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base`` key by key (mappings recursively, anything else replaced)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def unused_overrides(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[str]:
    """Dotted paths of ``tree`` that tempo-fast does not act on (yet)."""
    used = {path for path, _ in CORE_LIMITS.values()} | {
        ("ingestion", "rate_strategy"),
        ("ingestion", "max_global_traces_per_user"),
        *COMPACTION.values(),
        *READ_DURATIONS.values(),
        *READ_INTS.values(),
        *GENERATOR,
    }
    out = []
    for key, value in tree.items():
        path = (*prefix, str(key))
        if path in used:
            continue
        if isinstance(value, Mapping) and value:
            out.extend(unused_overrides(value, path))
        else:
            out.append(".".join(path))
    return out


# The per-tenant metrics-generator overrides tempo_fast.generator.settings reads.
_SM = ("metrics_generator", "processor", "span_metrics")
_SG = ("metrics_generator", "processor", "service_graphs")
GENERATOR = {
    *(("metrics_generator", k) for k in (
        "processors", "max_active_series", "max_cardinality_per_label", "collection_interval",
        "disable_collection", "ingestion_time_range_slack", "remote_write_headers",
        "generate_native_histograms",
    )),
    *((*_SM, k) for k in (
        "histogram_buckets", "dimensions", "intrinsic_dimensions", "dimension_mappings",
        "filter_policies", "enable_target_info", "enable_instance_label",
        "target_info_excluded_dimensions",
    )),
    *(("metrics_generator", "processor", "host_info", k)
      for k in ("host_identifiers", "metric_name")),
    *((*_SG, k) for k in (
        "histogram_buckets", "dimensions", "peer_attributes", "enable_client_server_prefix",
        "enable_virtual_node_label", "enable_messaging_system_latency_histogram",
    )),
}  # fmt: skip

# The per-tenant compaction overrides the compactor reads: its name -> path in the tree.
COMPACTION = {
    "block_retention": ("compaction", "block_retention"),
    "compaction_window": ("compaction", "compaction_window"),
    "compaction_disabled": ("compaction", "compaction_disabled"),
}


def compaction_overrides(tree: Mapping[str, Any]) -> dict[str, Any]:
    """The tenant's compaction overrides that are set: ``block_retention`` and
    ``compaction_window`` in seconds (0 means the compactor's own), ``compaction_disabled``."""
    out: dict[str, Any] = {}
    for name, path in COMPACTION.items():
        found, value = lookup(tree, path)
        if not found or value is None:
            continue
        out[name] = bool(value) if name == "compaction_disabled" else parse_duration(value)
    return out


def read_overrides(tree: Mapping[str, Any]) -> dict[str, float | int]:
    """The tenant's read limits that are set: durations in seconds, the tag-values bounds as
    integers (validated when the tree was loaded). Tempo's meaning: 0 is "the frontend's
    setting" for the durations and "no limit" for the tag-values bounds."""
    out: dict[str, float | int] = {}
    for name, path in READ_DURATIONS.items():
        found, value = lookup(tree, path)
        if found and value is not None:
            out[name] = parse_duration(value)
    for name, path in READ_INTS.items():
        found, value = lookup(tree, path)
        if found and value is not None:
            out[name] = int(value)
    return out


def core_limits(tree: Mapping[str, Any]) -> dict[str, int]:
    """The limits dict ``_core.Ingester.set_limits`` takes, from a resolved tree.

    One process holds every live trace, so ``max_global_traces_per_user`` (when set) caps
    ``max_traces_per_user`` as Tempo's limiter does with a single ingester.
    """
    out = {}
    for key, (path, default) in CORE_LIMITS.items():
        found, value = lookup(tree, path)
        out[key] = int(value) if found and value is not None else default
    found, global_traces = lookup(tree, ("ingestion", "max_global_traces_per_user"))
    if found and global_traces:
        local = out["max_traces_per_user"]
        out["max_traces_per_user"] = min(local, global_traces) if local else global_traces
    return out
