"""The ``metrics_generator`` section: processors, registry and remote write, as Tempo 2.10.

Scalars are read through :func:`tempo_fast.config.model.key` like every other section; the
lists and maps (buckets, dimensions, ``remote_write[]``, ``external_labels``) have parsers
here that name the offending entry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tempo_fast.config.span_filter import Mapping_, Policy, dimension_mappings, filter_policies
from tempo_fast.config.tls import TlsSettings, parse_tls
from tempo_fast.config.units import parse_duration

_GEN = "metrics_generator"
_SG = f"{_GEN}.processor.service_graphs"
_SM = f"{_GEN}.processor.span_metrics"
_HI = f"{_GEN}.processor.host_info"
INTRINSICS = ("service", "span_name", "span_kind", "status_code", "status_message")

# Prometheus remote_write keys tempo-fast acts on, and the rest of Prometheus' syntax (accepted,
# logged as ignored).
_RW_USED = {"url", "name", "remote_timeout", "headers", "basic_auth", "authorization",
            "send_exemplars", "bearer_token", "bearer_token_file", "tls_config"}  # fmt: skip
_RW_KNOWN = {
    "write_relabel_configs", "queue_config", "metadata_config", "tls_config", "proxy_url",
    "no_proxy", "proxy_from_environment", "proxy_connect_header", "follow_redirects",
    "enable_http2", "oauth2", "sigv4", "azuread", "google_iam", "round_robin_dns",
    "send_native_histograms", "protobuf_message", "http_headers",
}  # fmt: skip


def _key(path: str, parse: Any) -> Any:
    return field(metadata={"key": path, "parse": parse})


def buckets(value: object) -> tuple[float, ...]:
    """Histogram upper bounds: a non-empty, strictly increasing list of finite numbers."""
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of bucket upper bounds (seconds)")
    out: list[float] = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise ValueError(f"entry {i} ({item!r}) is not a finite number")
        if out and not item > out[-1]:
            raise ValueError(f"entry {i} ({item}) must be larger than the one before")
        out.append(float(item))
    return tuple(out)


def names(value: object) -> tuple[str, ...]:
    """A list of attribute names."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{value!r} must be a list of attribute names")
    return tuple(value)


def count(value: object) -> int:
    """A non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a non-negative integer")
    return value


def _text(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def flag(value: object) -> bool:
    """true or false (YAML booleans only)."""
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def intrinsic_dimensions(value: object) -> dict[str, bool]:
    """Which intrinsic labels span metrics carry (Tempo's defaults for the ones not set)."""
    out = {"service": True, "span_name": True, "span_kind": True, "status_code": True,
           "status_message": False}  # fmt: skip
    if value is None or value == "<any>":
        return out
    if not isinstance(value, Mapping):
        raise ValueError("must map intrinsic names to true or false")
    for name, on in value.items():
        if name not in out:
            raise ValueError(f"unknown intrinsic dimension {name!r} (one of {', '.join(out)})")
        out[str(name)] = flag(on)
    return out


def string_map(value: object) -> dict[str, str]:
    """``external_labels`` and ``headers``: string keys to string values."""
    if value is None or value == "<any>":
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{value!r} must be a mapping of names to values")
    out = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise ValueError(f"{k}: {v!r} is not a string")
        out[str(k)] = str(v)
    return out


@dataclass(frozen=True)
class RemoteWriteEndpoint:
    """One ``metrics_generator.storage.remote_write[]`` entry (Prometheus syntax)."""

    url: str
    name: str = ""
    timeout: float = 30.0
    headers: Mapping[str, str] = field(default_factory=dict)
    basic_auth: tuple[str, str] | None = None
    tls: TlsSettings | None = None
    send_exemplars: bool = True
    ignored: tuple[str, ...] = ()


def _secret(auth: Mapping[str, Any], key: str, where: str) -> str:
    """``key`` or the contents of ``key_file``."""
    if auth.get(f"{key}_file"):
        try:
            with open(str(auth[f"{key}_file"]), encoding="utf-8") as f:
                return f.read().strip()
        except OSError as e:
            raise ValueError(f"{where}.{key}_file: cannot read: {e.strerror or e}") from e
    return str(auth.get(key) or "")


def remote_write(value: object) -> tuple[RemoteWriteEndpoint, ...]:
    """The ``remote_write`` list."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("must be a list of endpoints, each with a url")
    out = []
    for i, item in enumerate(value):
        where = f"[{i}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: expected a mapping with a url")
        unknown = sorted(set(map(str, item)) - _RW_USED - _RW_KNOWN)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
        url = str(item.get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{where}.url: {url!r} is not an http(s) URL")
        headers = string_map(item.get("headers"))
        basic = None
        if item.get("basic_auth") is not None:
            auth = item["basic_auth"]
            if not isinstance(auth, Mapping):
                raise ValueError(f"{where}.basic_auth: expected username and password")
            basic = (str(auth.get("username") or ""), _secret(auth, "password", where))
        if item.get("authorization") is not None:
            auth = item["authorization"]
            if not isinstance(auth, Mapping):
                raise ValueError(f"{where}.authorization: expected type and credentials")
            kind = str(auth.get("type") or "Bearer")
            headers["Authorization"] = f"{kind} {_secret(auth, 'credentials', where)}"
        if item.get("bearer_token") or item.get("bearer_token_file"):
            if "Authorization" in headers or basic is not None:
                raise ValueError(f"{where}: at most one of basic_auth, authorization, bearer_token")
            headers["Authorization"] = f"Bearer {_secret(item, 'bearer_token', where)}"
        tls = None
        if item.get("tls_config") is not None:
            tls = parse_tls(item["tls_config"], f"{where}.tls_config")
        timeout = parse_duration(item.get("remote_timeout") or "30s")
        if timeout <= 0:
            raise ValueError(f"{where}.remote_timeout: must be longer than 0s")
        out.append(
            RemoteWriteEndpoint(
                url=url,
                name=str(item.get("name") or ""),
                timeout=timeout,
                headers=headers,
                basic_auth=basic,
                tls=tls,
                send_exemplars=flag(item.get("send_exemplars", True)),
                ignored=tuple(f"{where}.{k}" for k in map(str, item) if k in _RW_KNOWN)
                + (tls.ignored if tls else ()),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class ServiceGraphsConfig:
    wait: float = _key(f"{_SG}.wait", parse_duration)
    max_items: int = _key(f"{_SG}.max_items", count)
    histogram_buckets: tuple[float, ...] = _key(f"{_SG}.histogram_buckets", buckets)
    dimensions: tuple[str, ...] = _key(f"{_SG}.dimensions", names)
    enable_client_server_prefix: bool = _key(f"{_SG}.enable_client_server_prefix", flag)
    enable_messaging_system_latency_histogram: bool = _key(
        f"{_SG}.enable_messaging_system_latency_histogram", flag
    )
    peer_attributes: tuple[str, ...] = _key(f"{_SG}.peer_attributes", names)
    enable_virtual_node_label: bool = _key(f"{_SG}.enable_virtual_node_label", flag)
    database_name_attributes: tuple[str, ...] = _key(f"{_SG}.database_name_attributes", names)


@dataclass(frozen=True)
class SpanMetricsConfig:
    histogram_buckets: tuple[float, ...] = _key(f"{_SM}.histogram_buckets", buckets)
    intrinsic_dimensions: Mapping[str, bool] = _key(
        f"{_SM}.intrinsic_dimensions", intrinsic_dimensions
    )
    dimensions: tuple[str, ...] = _key(f"{_SM}.dimensions", names)
    dimension_mappings: tuple[Mapping_, ...] = _key(f"{_SM}.dimension_mappings", dimension_mappings)
    filter_policies: tuple[Policy, ...] = _key(f"{_SM}.filter_policies", filter_policies)
    enable_target_info: bool = _key(f"{_SM}.enable_target_info", flag)
    enable_instance_label: bool = _key(f"{_SM}.enable_instance_label", flag)
    target_info_excluded_dimensions: tuple[str, ...] = _key(
        f"{_SM}.target_info_excluded_dimensions", names
    )


def metric_name(value: object) -> str:
    """A Prometheus metric name."""
    if not isinstance(value, str) or not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", value):
        raise ValueError(f"{value!r} is not a valid metric name")
    return value


def host_identifiers(value: object) -> tuple[str, ...]:
    """host-info's attribute names, at least one (Tempo's check)."""
    out = names(value)
    if not out:
        raise ValueError("at least one value must be provided in host_identifiers")
    return out


@dataclass(frozen=True)
class HostInfoConfig:
    host_identifiers: tuple[str, ...] = _key(f"{_HI}.host_identifiers", host_identifiers)
    metric_name: str = _key(f"{_HI}.metric_name", metric_name)


@dataclass(frozen=True)
class MetricsGeneratorConfig:
    """The global ``metrics_generator`` settings; each tenant's overrides refine them."""

    collection_interval: float = _key(f"{_GEN}.registry.collection_interval", parse_duration)
    stale_duration: float = _key(f"{_GEN}.registry.stale_duration", parse_duration)
    external_labels: Mapping[str, str] = _key(f"{_GEN}.registry.external_labels", string_map)
    inject_tenant_id_as: str = _key(f"{_GEN}.registry.inject_tenant_id_as", _text)
    max_label_name_length: int = _key(f"{_GEN}.registry.max_label_name_length", count)
    max_label_value_length: int = _key(f"{_GEN}.registry.max_label_value_length", count)
    remote_write: tuple[RemoteWriteEndpoint, ...] = _key(
        f"{_GEN}.storage.remote_write", remote_write
    )
    remote_write_add_org_id_header: bool = _key(
        f"{_GEN}.storage.remote_write_add_org_id_header", flag
    )
    remote_write_flush_deadline: float = _key(
        f"{_GEN}.storage.remote_write_flush_deadline", parse_duration
    )
    ingestion_slack: float = _key(f"{_GEN}.metrics_ingestion_time_range_slack", parse_duration)
    # built by the loader from their own keys
    service_graphs: ServiceGraphsConfig = field(metadata={"section": ServiceGraphsConfig})
    span_metrics: SpanMetricsConfig = field(metadata={"section": SpanMetricsConfig})
    host_info: HostInfoConfig = field(metadata={"section": HostInfoConfig})
