"""Typed surface of the Rust extension `tempo_fast._core` (built from core_rs/py).

Every call that touches spans takes or returns whole request bodies or opaque
handles; the GIL is released while Rust works.
"""

from collections.abc import Callable
from typing import Any

__version__: str

class DecodeError(ValueError):
    """The body is not a valid request. ``str(e)`` is the reason; ``reason_code`` is a metric
    label: ``invalid_protobuf`` | ``invalid_json`` | ``invalid_thrift`` | ``invalid_gzip``."""

    reason_code: str

class TooLargeError(DecodeError):
    """The (decompressed) body exceeds the size limit: answer 413 / RESOURCE_EXHAUSTED.
    ``reason_code`` is ``too_large``."""

class OverloadedError(RuntimeError):
    """Live traces stayed over their memory limit while the push waited: answer 503 /
    UNAVAILABLE so the client retries later. ``reason_code`` is ``overloaded``."""

    reason_code: str

class RateLimitedError(RuntimeError):
    """The tenant is over ``rate_limit_bytes`` / ``burst_size_bytes``: answer 429 /
    RESOURCE_EXHAUSTED. ``reason_code`` is ``rate_limited``; ``spans`` were refused."""

    reason_code: str
    spans: int

class PushResult:
    accepted: int  # spans written to the WAL and the live traces
    invalid_trace_id: int  # spans dropped: trace id not 16 non-zero bytes
    invalid_span_id: int  # spans dropped: span id not 8 non-zero bytes
    trace_too_large: int  # spans dropped: their trace would pass max_bytes_per_trace
    live_traces_exceeded: int  # spans dropped: a new trace past max_traces_per_user
    truncated: tuple[int, int, int, int, int]  # attributes truncated: resource, scope,
    # span, event, link
    message: str  # OTLP partial_success.error_message, "" when nothing was rejected
    response: bytes  # ExportTraceServiceResponse protobuf ("" when fully accepted)
    lag_seconds: bytes  # float64 array (native endian): now - span end, one per accepted span
    batch: SpanBatch | None  # the accepted spans for the metrics generator; None when none

class TracePart:
    """Opaque rows of one trace from one source (live traces, head, a block)."""

    spans: int

class Ingester:
    """Per-tenant WAL, live traces, head chunks and block cutting (all in Rust).

    ``config`` keys (all optional): ``fsync`` ("always" | "interval" | "never"),
    ``fsync_interval_ms``, ``trace_idle_period_ms``, ``max_trace_live_ms``,
    ``flush_check_period_ms``, ``max_block_duration_ms``, ``max_block_bytes``,
    ``complete_block_timeout_ms``, ``max_live_bytes``, ``blocks_path`` (where complete
    blocks are written: the local backend's path), ``row_group_spans``, ``bloom_fp``,
    ``bloom_shard_bytes``, ``dedicated_columns`` (a list of (scope, name, type) triples),
    ``limits`` (the default limits, a dict as for :meth:`set_limits`).
    """

    def __init__(self, wal_path: str, config: dict[str, object]) -> None: ...
    def replay(self) -> dict[str, int]:
        """Replay the WAL (call once, before serving).

        Returns {"segments", "records", "spans", "torn_bytes"}."""
    def start(self) -> None:
        """Start the background sweep (idle traces -> head chunks -> blocks)."""
    def push(
        self,
        tenant: str,
        body: bytes,
        encoding: str = "protobuf",
        gzip: bool = False,
        max_bytes: int = 20 << 20,
    ) -> PushResult:
        """Decode, validate and append one request. ``encoding``: "protobuf" | "json" |
        "zipkin_json" | "zipkin_proto" (``_typed`` suffix: the receiver's parse_string_tags) |
        "zipkin_v1_json" | "zipkin_v1_thrift" | "jaeger_thrift_compact" | "jaeger_thrift_binary" |
        "jaeger_thrift_http" | "jaeger_proto".
        Returns only after the WAL append. Raises DecodeError / TooLargeError,
        RateLimitedError, or OverloadedError when live traces stay over their memory
        limit (backpressure). Spans over the per-trace limits are dropped and counted;
        long attributes are truncated."""
    def try_push(
        self,
        tenant: str,
        body: bytes,
        encoding: str = "protobuf",
        gzip: bool = False,
        max_bytes: int = 20 << 20,
    ) -> PushResult | None:
        """``push`` that never waits for room: None where ``push`` would wait for the cut
        (backpressure), with nothing appended. For the event loop's thread."""
    def set_limits(self, defaults: dict[str, int], tenants: dict[str, dict[str, int]]) -> None:
        """Replace every tenant's limits. Dict keys (missing ones keep Tempo's defaults,
        0 disables): ``rate_limit_bytes``, ``burst_size_bytes``, ``max_traces_per_user``,
        ``max_bytes_per_trace``, ``max_attribute_bytes``."""
    def search(self, tenant: str, query: SearchQuery) -> tuple[bytes, dict[str, int]]:
        """Search live traces, head chunks and completed blocks (as ``BlockStore.search``)."""
    def search_tags(self, tenant: str, request: TagRequest) -> tuple[bytes, dict[str, int]]:
        """Tag names or values from everything the ingester holds."""
    def metrics(self, tenant: str, query: MetricsQuery, exemplars: int = 0) -> list[dict[str, Any]]:
        """A TraceQL metrics query over everything the ingester holds (see ``metrics_otlp``)."""
    def complete_block_ids(self, tenant: str) -> list[str]:
        """Completed blocks the ingester still serves (its searches cover them)."""
    def find_trace(self, tenant: str, trace_id: bytes) -> TracePart | None:
        """Spans of ``trace_id`` (16 bytes) held by the ingester (live, head, unflushed)."""
    def flush(self) -> None:
        """Cut every live trace and head into blocks now (shutdown, /flush)."""
    def stats(self) -> dict[str, object]:
        """{"tenants": {tenant: {"live_traces", "live_bytes", "traces_created",
        "spans_received", "bytes_received", "blocks_cut", "head_chunks",
        "wal_bytes_written", "wal_records", "wal_segments"}},
        (gauges: live_traces, live_bytes, wal_segments; the rest are counters),
        "global": {"wal_fsyncs", "wal_replayed_spans", "wal_torn_bytes",
        "blocks_flushed", "flush_failures"}} — all ints; counters are monotonic."""
    def close(self) -> None: ...

class BlockStore:
    """The querier's view of complete blocks under a local backend path."""

    def __init__(self, path: str) -> None: ...
    def poll(self) -> dict[str, int]:
        """Re-read the block list: {tenant: number of blocks}."""
    def find_trace(self, tenant: str, trace_id: bytes) -> tuple[TracePart | None, dict[str, int]]:
        """Spans of ``trace_id`` in complete blocks, and read stats
        {"blocks_checked", "blocks_read", "bytes_read", "reads", "errors"}."""
    def open_failures(self) -> int:
        """Blocks that could not be opened, summed over every poll."""
    def list_blocks(self, tenant: str) -> list[tuple[str, int, int, int]]:
        """``(block id, size, start unix ns, end unix ns)`` of every block of ``tenant``."""
    def metrics(
        self, tenant: str, query: MetricsQuery, block_ids: list[str], exemplars: int = 0
    ) -> list[dict[str, Any]]:
        """A TraceQL metrics query over blocks ``block_ids`` (see ``metrics_otlp``)."""
    def search(
        self, tenant: str, query: SearchQuery, block_ids: list[str]
    ) -> tuple[bytes, dict[str, int]]:
        """Search blocks ``block_ids`` in order: (JSON list of Tempo TraceSearchMetadata,
        {"inspected_spans", "inspected_traces", "inspected_bytes", "blocks", "block_bytes",
        "errors"})."""
    def search_tags(
        self, tenant: str, request: TagRequest, block_ids: list[str]
    ) -> tuple[bytes, dict[str, int]]:
        """Tag names (JSON ``{scope: [names]}``) or values (JSON ``[{type, value}]``)."""

def compact_blocks(
    inputs: list[str | tuple[object, str]],
    out_root: str,
    tenant: str,
    level: int,
    config: dict[str, object],
    max_block_bytes: int,
    max_block_traces: int,
) -> tuple[list[str], dict[str, int]]:
    """Merge input blocks (a directory, or ``(store, "<tenant>/<block-id>")`` read through the
    store) into new blocks of ``level`` under ``out_root/<block-id>/``, closing an output at
    ``max_block_bytes`` data bytes or ``max_block_traces`` traces. Returns the outputs'
    ``meta.json`` texts and {"spans_in", "spans_out", "traces_combined", "bytes_read"}."""

class RemoteBlocks:
    """Blocks opened from an object store (the control plane's ``ObjectStore``)."""

    def __init__(self) -> None: ...
    def open(self, tenant: str, block_id: str, store: object, warm: bool = True) -> None:
        """Read the block's meta, bloom filter and index through ``store.get`` /
        ``get_range`` / ``get_ranges`` (and its Parquet footer when ``warm``)."""
    def contains(self, tenant: str, block_id: str) -> bool: ...
    def retain(self, tenant: str, keep: set[str]) -> None: ...
    def counts(self) -> dict[str, int]: ...
    def find_trace(self, tenant: str, trace_id: bytes) -> tuple[TracePart | None, dict[str, int]]:
        """As :meth:`BlockStore.find_trace`."""
    def list_blocks(self, tenant: str) -> list[tuple[str, int, int, int]]:
        """``(block id, size, start unix ns, end unix ns)`` of every block of ``tenant``."""
    def metrics(
        self, tenant: str, query: MetricsQuery, block_ids: list[str], exemplars: int = 0
    ) -> list[dict[str, Any]]:
        """A TraceQL metrics query over blocks ``block_ids`` (see ``metrics_otlp``)."""
    def search(
        self, tenant: str, query: SearchQuery, block_ids: list[str]
    ) -> tuple[bytes, dict[str, int]]:
        """Search blocks ``block_ids`` in order: (JSON list of Tempo TraceSearchMetadata,
        {"inspected_spans", "inspected_traces", "inspected_bytes", "blocks", "block_bytes",
        "errors"})."""
    def search_tags(
        self, tenant: str, request: TagRequest, block_ids: list[str]
    ) -> tuple[bytes, dict[str, int]]:
        """Tag names (JSON ``{scope: [names]}``) or values (JSON ``[{type, value}]``)."""

def export_block(
    tenant: str,
    block_id: str,
    store: object,
    path: str,
    progress: Callable[[int, int, int], object] | None = None,
) -> dict[str, int]:
    """Write the block's spans to ``path`` as plain Parquet (hex ids, enum names, UTC
    timestamps, ``MAP<string, string>`` attributes), one row group at a time;
    ``progress(done, total, rows)`` after each. Returns {"rows", "row_groups", "bytes"}."""

def render_trace(parts: list[TracePart], fmt: str, inspected_bytes: int = 0) -> bytes | None:
    """Merge and de-duplicate parts into one trace. ``fmt``: "proto_v1" (tempopb.Trace),
    "proto_v2" (TraceByIDResponse), "json_v1" ({"batches": ...}), "json_v2"
    ({"trace": ..., "metrics": ...}). None when there are no spans."""

def set_log_level(level: str) -> None:
    """The Rust side's log level: "debug" | "info" | "warn" | "error"."""

class SearchQuery:
    """A compiled TraceQL search; raises ValueError with Tempo's HTTP 400 body."""

    canonical: str
    def __init__(
        self, q: str, limit: int = 20, spss: int = 3, start_ns: int = 0, end_ns: int = 0
    ) -> None: ...

class MetricsQuery:
    """A compiled TraceQL metrics query over spans starting in ``(start_ns, end_ns]``;
    raises ValueError with Tempo's HTTP 400 body (``not a metrics query`` for a search)."""

    tree: str  # JSON: {"leaf": i, "second": [...]} or {"op", "lhs", "rhs", "second"}
    canonical: str
    leaves: list[dict[str, Any]]  # func, by, quantiles, bucket_scale (+ top_n, compare_*)
    def __init__(self, q: str, start_ns: int = 0, end_ns: int = 0, step_ns: int = 0) -> None: ...

class TagRequest:
    """Tag names of ``scopes`` or the values of ``tag`` (a TraceQL identifier), over the spans
    ``q`` matches (an unparsable ``q`` filters nothing)."""

    def __init__(
        self,
        scopes: list[str] | None = None,
        tag: str | None = None,
        q: str | None = None,
        start_ns: int = 0,
        end_ns: int = 0,
        max_bytes: int = 1 << 20,
    ) -> None: ...

def search_otlp(q: str, requests: list[bytes], spss: int = 3, limit: int = 0) -> bytes:
    """Search OTLP request bodies in memory; JSON list of TraceSearchMetadata."""

# ---------------------------------------------------------------- metrics generator
# Columns are little-endian bytes for numpy.frombuffer: u32 index, f64 seconds/sizes,
# i64 milliseconds, u8 flags. Keys are distinct label-value tuples, first-seen order.

class SpanBatch:
    """The accepted spans of one push (shares the request buffer with the ingester)."""

    spans: int  # number of spans

def host_ids(batch: SpanBatch, identifiers: list[str]) -> list[tuple[str, str]]:
    """host-info: the batch's distinct (host id, identifier attribute) pairs; per resource the
    first of ``identifiers`` holding a non-empty string."""

def span_batch_from_otlp(body: bytes) -> SpanBatch:
    """A SpanBatch from a protobuf ExportTraceServiceRequest (tests and benches).
    Raises DecodeError for an invalid body."""

class SpanMetricsBatch:
    """One batch's span-metrics columns. Keys have ids stable across batches (until the
    ``generation`` changes); only keys not handed out before come with their labels."""

    new_keys: list[tuple[int, tuple[str, ...]]]  # (key id, label values) of new keys
    generation: int  # changes when earlier key ids stop meaning anything
    key_ids: bytes  # u32 per distinct key of the batch (the exemplar columns follow it)
    index: bytes  # u32 per kept span: its key id
    latency: bytes  # f64 per kept span: (end - start) seconds, 0.0 when negative
    size: bytes  # f64 per kept span: the span's protobuf message length
    exemplar_trace_ids: bytes  # 16 bytes per key_ids entry: the trace id of its last span
    exemplar_latency: bytes  # f64 per key_ids entry: that span's latency seconds
    exemplar_time_ms: bytes  # i64 per key_ids entry: that span's end time, unix ms
    outside_slack: int  # spans dropped: end outside now ± slack
    filtered: int  # spans the filter policies left out
    negative_duration: int  # kept spans whose end precedes their start
    # with target_info: per resource with a counted span, its traces_target_info labels
    # ((name, value) pairs sorted by name)
    target_info: list[tuple[tuple[str, str], ...]]

# filter_policies as the config module normalises them: (include, exclude), each None or
# (regex, [(scope "resource" | "span" | "intrinsic", name, value), ...])
FilterBlock = tuple[bool, list[tuple[str, str, str | int | float | bool]]]

class SpanMetricsProcessor:
    """Span-metrics label values per span (Tempo's span-metrics processor).

    ``intrinsics``: an ordered subset of "service", "span_name", "span_kind",
    "status_code", "status_message" (ValueError otherwise); ``dimensions``: attribute
    names, looked up in resource attributes first then span attributes ("" when
    missing). ``slack_seconds`` 0 disables the ingestion time range check.
    ``dimension_mappings``: (name, source attributes, join) labels after the dimensions;
    ``filter_policies``: Tempo's span filter (ValueError when invalid)."""

    label_names: list[str]  # intrinsics, then sanitised dimension and mapping labels
    # (``__`` prefix on a clash with an intrinsic name; labels that coincide share one
    # column, valued from the last of them)
    def __init__(
        self,
        intrinsics: list[str],
        dimensions: list[str],
        slack_seconds: float = 30.0,
        max_keys: int = 1 << 20,  # key ids remembered before a new generation starts
        dimension_mappings: list[tuple[str, list[str], str]] = ...,
        filter_policies: list[tuple[FilterBlock | None, FilterBlock | None]] = ...,
        target_info: bool = False,  # enable_target_info: job/instance labels, target_info
        instance_label: bool = True,  # enable_instance_label
        target_info_excluded: list[str] = ...,  # target_info_excluded_dimensions
    ) -> None: ...
    def process(self, batch: SpanBatch, now_ns: int) -> SpanMetricsBatch: ...
    def reset_keys(self) -> None:
        """Forget every key id: the next batch hands out all its keys again."""

class EdgeBatch:
    keys: list[tuple[str, ...]]  # distinct label-value tuples (len(label_names) each)
    index: bytes  # u32 per edge: position in keys
    server_seconds: bytes  # f64 per edge
    client_seconds: bytes  # f64 per edge
    failed: bytes  # u8 per edge: 1 when either side has status ERROR
    messaging_seconds: bytes  # f64 per edge: consumer start - producer end; NaN when not
    # a messaging edge, the histogram is disabled or the difference is not positive
    exemplar_trace_ids: list[str]  # per key: 32-hex trace id of its last edge
    dropped_spans: int  # spans refused because max_items edges were waiting
    expired_edges: int  # edges that expired unpaired (virtual-node edges included)
    outside_slack: int  # spans dropped: end outside now ± slack

class ServiceGraphStore:
    """Service-graph edges waiting for their other half (Tempo's service-graphs
    processor); thread-safe, the GIL released in push and expire."""

    label_names: list[str]  # client, server, connection_type, (virtual_node), dimensions
    # (client_X and server_X pairs with enable_client_server_prefix)
    def __init__(
        self,
        wait_seconds: float = 10.0,
        max_items: int = 10000,
        dimensions: list[str] = ...,
        enable_client_server_prefix: bool = False,
        enable_virtual_node_label: bool = False,
        enable_messaging_system_latency_histogram: bool = False,
        peer_attributes: list[str] = ...,  # ["peer.service", "db.name", "db.system"]
        database_name_attributes: list[str] = ...,  # ["db.namespace", "db.name", "db.system"]
        slack_seconds: float = 30.0,
    ) -> None: ...
    def push(self, batch: SpanBatch, now_ns: int) -> EdgeBatch:
        """Edges completed by this batch."""
    def expire(self, now_ns: int) -> EdgeBatch:
        """Edges waiting wait_seconds or longer: virtual-node edges emitted, the rest
        dropped (all counted in expired_edges)."""
    def __len__(self) -> int: ...

def metrics_otlp(
    query: MetricsQuery, requests: list[bytes], exemplars: int = 0
) -> list[dict[str, Any]]:
    """Run a metrics query over OTLP request bodies in memory. Per leaf: ``keys`` (tuples of
    ``(type, value)`` labels), ``key_names`` and ``maxed`` (``compare()``: per attribute and
    side its top N values and totals, counts per step), columns as bytes ``index``
    (u32), ``ts`` (i64 ns), ``values`` (f64), exemplar columns ``ex_index``, ``ex_ts``,
    ``ex_value``, ``ex_trace``, ``ex_span``, and figures (``spans``, ``inspected_*``)."""
