"""A tenant's generator settings: the global ``metrics_generator`` section refined by its
``overrides.<tenant>.metrics_generator`` tree (the legacy flat ``metrics_generator_*`` keys are
converted to that tree by the overrides module)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tempo_fast.config.generator import (
    INTRINSICS,
    MetricsGeneratorConfig,
    buckets,
    count,
    flag,
    host_identifiers,
    intrinsic_dimensions,
    metric_name,
    names,
    string_map,
)
from tempo_fast.config.span_filter import Mapping_, Policy, dimension_mappings, filter_policies
from tempo_fast.config.units import parse_duration

SPAN_METRICS = "span-metrics"
SERVICE_GRAPHS = "service-graphs"
HOST_INFO = "host-info"
_SUBPROCESSORS = {
    SPAN_METRICS: ("span-metrics-count", "span-metrics-latency", "span-metrics-size"),
    SERVICE_GRAPHS: ("service-graphs-request", "service-graphs-latency"),
}
# Processors Tempo has that tempo-fast does not run (accepted, reported once).
UNSUPPORTED = ("local-blocks", "service-graphs-connection-info")
# Series a tenant may hold when max_active_series is 0 (Tempo: unlimited). A bound keeps
# memory bounded by configuration; raise it explicitly for more.
DEFAULT_MAX_ACTIVE_SERIES = 100_000


class SettingsError(ValueError):
    """A tenant's generator overrides cannot be used; the message names the key."""


@dataclass(frozen=True)
class SpanMetricsSettings:
    buckets: tuple[float, ...]
    intrinsics: tuple[str, ...]
    dimensions: tuple[str, ...]
    dimension_mappings: tuple[Mapping_, ...] = ()
    filter_policies: tuple[Policy, ...] = ()
    enable_target_info: bool = False
    enable_instance_label: bool = True
    target_info_excluded_dimensions: tuple[str, ...] = ()
    count: bool = True
    latency: bool = True
    size: bool = True
    histograms: str = "classic"  # generate_native_histograms: classic, native or both


@dataclass(frozen=True)
class ServiceGraphSettings:
    buckets: tuple[float, ...]
    dimensions: tuple[str, ...]
    wait: float
    max_items: int
    peer_attributes: tuple[str, ...]
    database_name_attributes: tuple[str, ...]
    enable_client_server_prefix: bool
    enable_virtual_node_label: bool
    enable_messaging_system_latency_histogram: bool
    request: bool = True
    latency: bool = True
    histograms: str = "classic"  # generate_native_histograms: classic, native or both


@dataclass(frozen=True)
class HostInfoSettings:
    host_identifiers: tuple[str, ...]
    metric_name: str


@dataclass(frozen=True)
class TenantSettings:
    span_metrics: SpanMetricsSettings | None
    service_graphs: ServiceGraphSettings | None
    unsupported: tuple[str, ...]
    max_active_series: int
    max_cardinality_per_label: int
    collection_interval: float
    disable_collection: bool
    ingestion_slack: float
    remote_write_headers: Mapping[str, str]
    host_info: HostInfoSettings | None = None

    @property
    def enabled(self) -> bool:
        return any(p is not None for p in (self.span_metrics, self.service_graphs, self.host_info))


def _processors(value: Any) -> set[str]:
    """Tempo's ListToMap: a list of names or a map keyed by name."""
    if value is None:
        return set()
    if isinstance(value, Mapping):
        value = list(value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"processors: {value!r} must be a list of processor names")
    known = {
        *_SUBPROCESSORS, *(s for subs in _SUBPROCESSORS.values() for s in subs), HOST_INFO,
        *UNSUPPORTED,
    }  # fmt: skip
    unknown = sorted(set(value) - known)
    if unknown:
        raise SettingsError(
            f"processors: unknown processor(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    return set(value)


def _enabled_subs(processor: str, chosen: set[str]) -> tuple[bool, ...] | None:
    """Which sub-processors run: all when the processor is named, the named ones otherwise."""
    subs = _SUBPROCESSORS[processor]
    if processor in chosen:
        return tuple(True for _ in subs)
    picked = tuple(s in chosen for s in subs)
    return picked if any(picked) else None


def _histogram_mode(value: Any) -> str:
    """Tempo's ``generate_native_histograms``: ``classic``, ``native`` or ``both``."""
    if value not in ("classic", "native", "both"):
        raise ValueError(f"{value!r} must be one of classic, native, both")
    return str(value)


def _get(tree: Mapping[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _parsed(tree: Mapping[str, Any], path: str, parse: Any, default: Any) -> Any:
    value = _get(tree, path)
    if value is None or value == [] or value == {}:
        return default
    try:
        return parse(value)
    except ValueError as e:
        raise SettingsError(f"metrics_generator.{path}: {e}") from e


def _processor_setting(
    tree: Mapping[str, Any], section: str, cfg: Any, key: str, parse: Any
) -> Any:
    """``processor.<section>.<key>`` from the tenant's tree, else the global config's."""
    return _parsed(tree, f"processor.{section}.{key}", parse, getattr(cfg, key))


def resolve(config: MetricsGeneratorConfig, overrides: Mapping[str, Any]) -> TenantSettings:
    """The settings for a tenant whose resolved overrides tree is ``overrides``."""
    tree = overrides.get("metrics_generator") or {}
    chosen = _processors(tree.get("processors"))
    histograms = _parsed(tree, "generate_native_histograms", _histogram_mode, "classic")
    span_metrics = None
    subs = _enabled_subs(SPAN_METRICS, chosen)
    if subs:
        sm_cfg = config.span_metrics

        def sm(key: str, parse: Any) -> Any:
            return _processor_setting(tree, "span_metrics", sm_cfg, key, parse)

        intrinsic = _parsed(
            tree, "processor.span_metrics.intrinsic_dimensions", intrinsic_dimensions,
            dict(sm_cfg.intrinsic_dimensions),
        )  # fmt: skip
        span_metrics = SpanMetricsSettings(
            buckets=sm("histogram_buckets", buckets),
            intrinsics=tuple(n for n in INTRINSICS if intrinsic.get(n)),
            dimensions=sm("dimensions", names),
            dimension_mappings=sm("dimension_mappings", dimension_mappings),
            filter_policies=sm("filter_policies", filter_policies),
            enable_target_info=sm("enable_target_info", flag),
            enable_instance_label=sm("enable_instance_label", flag),
            target_info_excluded_dimensions=sm("target_info_excluded_dimensions", names),
            count=subs[0],
            latency=subs[1],
            size=subs[2],
            histograms=histograms,
        )
    service_graphs = None
    subs = _enabled_subs(SERVICE_GRAPHS, chosen)
    if subs:
        sg_cfg = config.service_graphs

        def sg(key: str, parse: Any) -> Any:
            return _processor_setting(tree, "service_graphs", sg_cfg, key, parse)

        service_graphs = ServiceGraphSettings(
            buckets=sg("histogram_buckets", buckets),
            dimensions=sg("dimensions", names),
            wait=sg_cfg.wait,
            max_items=sg_cfg.max_items,
            peer_attributes=sg("peer_attributes", names),
            database_name_attributes=sg_cfg.database_name_attributes,
            enable_client_server_prefix=sg("enable_client_server_prefix", flag),
            enable_virtual_node_label=sg("enable_virtual_node_label", flag),
            enable_messaging_system_latency_histogram=sg(
                "enable_messaging_system_latency_histogram", flag
            ),
            request=subs[0],
            latency=subs[1],
            histograms=histograms,
        )
    interval = _parsed(tree, "collection_interval", parse_duration, config.collection_interval)
    if interval <= 0:
        raise SettingsError("metrics_generator.collection_interval: must be longer than 0s")
    host_info = None
    if HOST_INFO in chosen:
        hi_cfg = config.host_info
        host_info = HostInfoSettings(
            host_identifiers=_processor_setting(
                tree, "host_info", hi_cfg, "host_identifiers", host_identifiers
            ),
            metric_name=_processor_setting(tree, "host_info", hi_cfg, "metric_name", metric_name),
        )
    return TenantSettings(
        span_metrics=span_metrics,
        service_graphs=service_graphs,
        host_info=host_info,
        unsupported=tuple(sorted(chosen & set(UNSUPPORTED))),
        max_active_series=_parsed(tree, "max_active_series", count, 0) or DEFAULT_MAX_ACTIVE_SERIES,
        max_cardinality_per_label=_parsed(tree, "max_cardinality_per_label", count, 0),
        collection_interval=interval,
        disable_collection=_parsed(tree, "disable_collection", flag, False),
        ingestion_slack=_parsed(
            tree, "ingestion_time_range_slack", parse_duration, config.ingestion_slack
        ),
        remote_write_headers=_parsed(tree, "remote_write_headers", string_map, {}),
    )
