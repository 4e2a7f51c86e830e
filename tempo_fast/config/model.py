"""Typed configuration: the values tempo-fast's components use, under Tempo 2.10's key names.

Each field names its dotted Tempo key and how to parse it; defaults come from the Tempo key
tree (``tempo_keys.yaml``), so Tempo's defaults hold unless a field says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tempo_fast.config.generator import MetricsGeneratorConfig
from tempo_fast.config.units import parse_duration, parse_size
from tempo_fast.overrides.overrides import OverridesConfig

LOG_LEVELS = ("debug", "info", "warn", "error")


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _port(value: object) -> int:
    port = _int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is outside 0-65535")
    return port


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _str(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a string")
    return str(value)


def _choice(*allowed: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = _str(value)
        if text not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return text

    return parse


def _prefix(value: object) -> str:
    text = _str(value).rstrip("/")
    if text and not text.startswith("/"):
        raise ValueError(f"{text!r} must start with a slash, e.g. /tempo")
    return text


def _url_path(value: object) -> str:
    text = _str(value)
    return text if text.startswith("/") else "/" + text


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than 0s")
    return seconds


def _probability(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    if not 0 < value < 1:
        raise ValueError(f"{value!r} must be between 0 and 1 (exclusive)")
    return float(value)


def _positive_size(value: object) -> int:
    size = parse_size(value)
    if size <= 0:
        raise ValueError(f"{value!r} must be larger than 0")
    return size


# At most this many dedicated columns per scope (the Rust core's bound).
MAX_DEDICATED_PER_SCOPE = 32


@dataclass(frozen=True)
class DedicatedColumn:
    """An attribute stored in a column of its own (Tempo's ``parquet_dedicated_columns``)."""

    scope: str  # span | resource
    name: str
    type: str  # string | int


def _dedicated_columns(value: object) -> tuple[DedicatedColumn, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("must be a list of {scope, name, type} entries")
    out: list[DedicatedColumn] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ValueError(f"entry {i} is not a mapping")
        unknown = set(item) - {"scope", "name", "type", "options"}
        if unknown:
            raise ValueError(f"entry {i}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        column = DedicatedColumn(
            scope=_str(item.get("scope") or "span"),
            name=_str(item.get("name")),
            type=_str(item.get("type") or "string"),
        )
        if column.scope not in ("span", "resource"):
            raise ValueError(f"entry {i}: scope {column.scope!r} is not span or resource")
        if column.type not in ("string", "int"):
            raise ValueError(f"entry {i}: type {column.type!r} is not string or int")
        if not column.name:
            raise ValueError(f"entry {i}: name is empty")
        if any(c.scope == column.scope and c.name == column.name for c in out):
            raise ValueError(f"entry {i}: {column.scope}.{column.name} is listed twice")
        out.append(column)
    for scope in ("span", "resource"):
        if sum(c.scope == scope for c in out) > MAX_DEDICATED_PER_SCOPE:
            raise ValueError(f"more than {MAX_DEDICATED_PER_SCOPE} {scope} columns")
    return tuple(out)


def key(path: str, parse: Callable[[Any], Any]) -> Any:
    """A dataclass field read from Tempo key ``path`` with ``parse``."""
    return field(metadata={"key": path, "parse": parse})


@dataclass(frozen=True)
class ServerConfig:
    http_listen_address: str = key("server.http_listen_address", _str)
    http_listen_port: int = key("server.http_listen_port", _port)
    log_level: str = key("server.log_level", _choice(*LOG_LEVELS))
    log_format: str = key("server.log_format", _choice("logfmt", "json"))
    graceful_shutdown_timeout: float = key("server.graceful_shutdown_timeout", parse_duration)
    http_server_write_timeout: float = key("server.http_server_write_timeout", parse_duration)


_GRPC = "distributor.receivers.otlp.protocols.grpc"
_HTTP = "distributor.receivers.otlp.protocols.http"


@dataclass(frozen=True)
class OtlpGrpcConfig:
    endpoint: str = key(f"{_GRPC}.endpoint", _str)
    max_recv_msg_size_mib: int = key(f"{_GRPC}.max_recv_msg_size_mib", _int)
    max_concurrent_streams: int = key(f"{_GRPC}.max_concurrent_streams", _int)


@dataclass(frozen=True)
class OtlpHttpConfig:
    endpoint: str = key(f"{_HTTP}.endpoint", _str)
    max_request_body_size: int = key(f"{_HTTP}.max_request_body_size", parse_size)
    traces_url_path: str = key(f"{_HTTP}.traces_url_path", _url_path)


_ZIPKIN = "distributor.receivers.zipkin"


@dataclass(frozen=True)
class ZipkinConfig:
    endpoint: str = key(f"{_ZIPKIN}.endpoint", _str)
    max_request_body_size: int = key(f"{_ZIPKIN}.max_request_body_size", parse_size)
    parse_string_tags: bool = key(f"{_ZIPKIN}.parse_string_tags", _bool)


_JAEGER = "distributor.receivers.jaeger.protocols"


@dataclass(frozen=True)
class JaegerGrpcConfig:
    endpoint: str = key(f"{_JAEGER}.grpc.endpoint", _str)
    max_recv_msg_size_mib: int = key(f"{_JAEGER}.grpc.max_recv_msg_size_mib", _int)


@dataclass(frozen=True)
class JaegerThriftHttpConfig:
    endpoint: str = key(f"{_JAEGER}.thrift_http.endpoint", _str)
    max_request_body_size: int = key(f"{_JAEGER}.thrift_http.max_request_body_size", parse_size)


def _udp(protocol: str) -> dict[str, Any]:
    return {
        "endpoint": key(f"{_JAEGER}.{protocol}.endpoint", _str),
        "queue_size": key(f"{_JAEGER}.{protocol}.queue_size", _int),
        "max_packet_size": key(f"{_JAEGER}.{protocol}.max_packet_size", _int),
    }


@dataclass(frozen=True)
class JaegerUdpConfig:
    """An agent UDP listener (``thrift_compact`` or ``thrift_binary``)."""

    endpoint: str
    queue_size: int
    max_packet_size: int


@dataclass(frozen=True)
class JaegerCompactConfig(JaegerUdpConfig):
    endpoint: str = _udp("thrift_compact")["endpoint"]
    queue_size: int = _udp("thrift_compact")["queue_size"]
    max_packet_size: int = _udp("thrift_compact")["max_packet_size"]


@dataclass(frozen=True)
class JaegerBinaryConfig(JaegerUdpConfig):
    endpoint: str = _udp("thrift_binary")["endpoint"]
    queue_size: int = _udp("thrift_binary")["queue_size"]
    max_packet_size: int = _udp("thrift_binary")["max_packet_size"]


@dataclass(frozen=True)
class DistributorConfig:
    """Receivers; each runs only when its section is present, as in Tempo."""

    otlp_grpc: OtlpGrpcConfig | None
    otlp_http: OtlpHttpConfig | None
    zipkin: ZipkinConfig | None = None
    jaeger_grpc: JaegerGrpcConfig | None = None
    jaeger_thrift_http: JaegerThriftHttpConfig | None = None
    jaeger_thrift_compact: JaegerCompactConfig | None = None
    jaeger_thrift_binary: JaegerBinaryConfig | None = None
    # Default of overrides ``ingestion.max_attribute_bytes`` (0: no truncation).
    max_attribute_bytes: int = 2048
    # Seconds of the retry hint of a rate-limited push (0: Tempo's default of no hint; the
    # receivers then hint 1s).
    retry_after_on_resource_exhausted: float = 0.0


@dataclass(frozen=True)
class IngesterConfig:
    trace_idle_period: float = key("ingester.trace_idle_period", parse_duration)
    trace_live_period: float = key("ingester.trace_live_period", parse_duration)
    flush_check_period: float = key("ingester.flush_check_period", _positive_duration)
    max_block_duration: float = key("ingester.max_block_duration", parse_duration)
    max_block_bytes: int = key("ingester.max_block_bytes", parse_size)
    complete_block_timeout: float = key("ingester.complete_block_timeout", parse_duration)
    flush_all_on_shutdown: bool = key("ingester.flush_all_on_shutdown", _bool)
    # Tempo 3's live-store cap on a tenant's live trace bytes; None: tempo-fast's 64 MiB
    max_live_traces_bytes: int | None = None


@dataclass(frozen=True)
class StorageConfig:
    backend: str = key("storage.trace.backend", _str)
    local_path: str = key("storage.trace.local.path", _str)
    wal_path: str = key("storage.trace.wal.path", _str)
    wal_fsync: str = key("storage.trace.wal.fsync", _choice("always", "interval", "never"))
    wal_fsync_interval: float = key("storage.trace.wal.fsync_interval", _positive_duration)
    blocklist_poll: float = key("storage.trace.blocklist_poll", _positive_duration)
    bloom_filter_false_positive: float = key(
        "storage.trace.block.bloom_filter_false_positive", _probability
    )
    bloom_filter_shard_size_bytes: int = key(
        "storage.trace.block.bloom_filter_shard_size_bytes", _positive_size
    )
    dedicated_columns: tuple[DedicatedColumn, ...] = key(
        "storage.trace.block.parquet_dedicated_columns", _dedicated_columns
    )
    s3_bucket: str = key("storage.trace.s3.bucket", _str)
    s3_endpoint: str = key("storage.trace.s3.endpoint", _str)
    s3_region: str = key("storage.trace.s3.region", _str)
    s3_access_key: str = key("storage.trace.s3.access_key", _str)
    s3_secret_key: str = field(
        repr=False, metadata={"key": "storage.trace.s3.secret_key", "parse": _str}
    )
    s3_insecure: bool = key("storage.trace.s3.insecure", _bool)
    s3_prefix: str = key("storage.trace.s3.prefix", _str)
    s3_forcepathstyle: bool = key("storage.trace.s3.forcepathstyle", _bool)
    s3_part_size: int = key("storage.trace.s3.part_size", parse_size)

    @property
    def blocks_path(self) -> str:
        """Where complete blocks are written: the local backend itself, or with ``s3`` a
        staging directory under the WAL (as Tempo's ingester keeps them) they are uploaded
        from."""
        if self.backend == "local":
            return self.local_path
        return self.wal_path.rstrip("/") + "/blocks"


@dataclass(frozen=True)
class CompactorConfig:
    disabled: bool = key("compactor.disabled", _bool)
    compaction_window: float = key("compactor.compaction.compaction_window", _positive_duration)
    max_compaction_objects: int = key("compactor.compaction.max_compaction_objects", _int)
    max_block_bytes: int = key("compactor.compaction.max_block_bytes", parse_size)
    block_retention: float = key("compactor.compaction.block_retention", parse_duration)
    compacted_block_retention: float = key(
        "compactor.compaction.compacted_block_retention", parse_duration
    )
    compaction_cycle: float = key("compactor.compaction.compaction_cycle", _positive_duration)
    max_time_per_tenant: float = key("compactor.compaction.max_time_per_tenant", _positive_duration)


_SEARCH = "query_frontend.search"


@dataclass(frozen=True)
class QueryFrontendConfig:
    multi_tenant_queries_enabled: bool = key("query_frontend.multi_tenant_queries_enabled", _bool)
    max_query_expression_size_bytes: int = key(
        "query_frontend.max_query_expression_size_bytes", parse_size
    )
    search_concurrent_jobs: int = key(f"{_SEARCH}.concurrent_jobs", _int)
    search_target_bytes_per_job: int = key(f"{_SEARCH}.target_bytes_per_job", parse_size)
    search_default_result_limit: int = key(f"{_SEARCH}.default_result_limit", _int)
    search_max_result_limit: int = key(f"{_SEARCH}.max_result_limit", _int)
    search_max_duration: float = key(f"{_SEARCH}.max_duration", parse_duration)
    search_default_spans_per_span_set: int = key(f"{_SEARCH}.default_spans_per_span_set", _int)
    search_max_spans_per_span_set: int = key(f"{_SEARCH}.max_spans_per_span_set", _int)
    metrics_max_duration: float = key("query_frontend.metrics.max_duration", parse_duration)
    metrics_max_exemplars: int = key("query_frontend.metrics.max_exemplars", _int)
    metrics_max_intervals: int = key("query_frontend.metrics.max_intervals", _int)
    metrics_target_bytes_per_job: int = key(
        "query_frontend.metrics.target_bytes_per_job", parse_size
    )
    # The querier's worker pool: jobs run at most this many at a time.
    max_concurrent_queries: int = key("querier.max_concurrent_queries", _int)


@dataclass(frozen=True)
class Config:
    """What tempo-fast's components read from a Tempo-style configuration file."""

    target: str
    multitenancy_enabled: bool
    http_api_prefix: str
    server: ServerConfig
    distributor: DistributorConfig
    ingester: IngesterConfig
    storage: StorageConfig
    query_frontend: QueryFrontendConfig
    compactor: CompactorConfig
    overrides: OverridesConfig = field(default_factory=OverridesConfig)
    # None only for a Config built by hand (tests); the loader always sets it.
    metrics_generator: MetricsGeneratorConfig | None = None
    # Serve gRPC ``tempopb.StreamingQuerier`` on the HTTP port (h2c), as Tempo's
    # ``stream_over_http_enabled``. Tempo defaults it to false; tempo-fast to true, so that
    # Grafana's streaming search works without extra configuration.
    stream_over_http_enabled: bool = True
    ignored: tuple[str, ...] = ()  # keys Tempo knows that were set but tempo-fast does not use


# Top-level scalars read straight from the tree (``auth_enabled`` is the old alias).
TOP_LEVEL = {
    "target": _str,
    "multitenancy_enabled": _bool,
    "auth_enabled": _bool,
    "http_api_prefix": _prefix,
    "stream_over_http_enabled": _bool,
}
RECEIVER_SECTIONS = {
    "otlp_grpc": (_GRPC, OtlpGrpcConfig),
    "otlp_http": (_HTTP, OtlpHttpConfig),
    "zipkin": (_ZIPKIN, ZipkinConfig),
    "jaeger_grpc": (f"{_JAEGER}.grpc", JaegerGrpcConfig),
    "jaeger_thrift_http": (f"{_JAEGER}.thrift_http", JaegerThriftHttpConfig),
    "jaeger_thrift_compact": (f"{_JAEGER}.thrift_compact", JaegerCompactConfig),
    "jaeger_thrift_binary": (f"{_JAEGER}.thrift_binary", JaegerBinaryConfig),
}
