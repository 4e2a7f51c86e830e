"""Tempo's streaming gRPC search, ``tempopb.StreamingQuerier/Search``, as Grafana calls it,
and its TraceQL metrics ``MetricsQueryRange`` / ``MetricsQueryInstant`` (one final message).

A grpcio (asyncio) server on an internal Unix socket, reached through the HTTP port by
:mod:`tempo_fast.frontend.port_split`. Requests and responses are raw bytes, encoded here with
:mod:`tempo_fast.pkg.protowire` from the JSON-shaped results the search service yields (field
numbers from Tempo's ``pkg/tempopb/tempo.proto``). A request is turned into ``/api/search``
parameters and parsed by the HTTP API's own code, as Tempo's frontend does. Each yielded batch
of new traces goes out as one ``SearchResponse`` (split above ``MAX_PACKET_BYTES``) with the
running ``metrics``, at most ``limit`` distinct traces a stream; a last message carries the
final metrics. Errors end the stream with the HTTP API's reason.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import orjson

from tempo_fast.frontend.search import SearchError, SearchLimits, SearchParams, parse_params
from tempo_fast.pkg import tenant as tenants
from tempo_fast.pkg.log import get_logger
from tempo_fast.pkg.metrics import Metrics
from tempo_fast.pkg.protowire import LEN, VARINT, DecodeError, Writer, fields

_log = get_logger("frontend")
SERVICE = "tempopb.StreamingQuerier"
METHOD = "Search"
ROUTE = f"/{SERVICE}/{METHOD}"
METRICS_RANGE = "MetricsQueryRange"
METRICS_INSTANT = "MetricsQueryInstant"
MAX_PACKET_BYTES = 1 << 20  # Tempo's max_grpc_streaming_packet_size
MAX_REQUEST_BYTES = 4 << 20


class SearchService(Protocol):
    """What the query-frontend's search (:class:`~tempo_fast.frontend.search.SearchFrontend`)
    offers the streaming RPC."""

    limits: SearchLimits

    def limits_for(self, tenants: list[str]) -> SearchLimits:
        """The limits of a search over ``tenants`` (their per-tenant overrides applied)."""
        ...

    def search_stream(
        self, tenants: list[str], params: SearchParams
    ) -> AsyncIterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
        """Yield ``(new traces, running metrics)`` in Tempo's JSON form until done."""
        ...


# --- SearchRequest ---------------------------------------------------------------------------


@dataclass
class SearchRequest:
    """``tempopb.SearchRequest`` (fields Grafana and Tempo's own clients fill)."""

    query: str = ""  # 8
    limit: int = 0  # 4
    spss: int = 0  # 9 SpansPerSpanSet
    start: int = 0  # 5 unix seconds
    end: int = 0  # 6
    tags: dict[str, str] = field(default_factory=dict)  # 1 map<string,string>
    min_duration_ms: int = 0  # 2
    max_duration_ms: int = 0  # 3


_UINT32 = {4: "limit", 9: "spss", 5: "start", 6: "end", 2: "min_duration_ms", 3: "max_duration_ms"}


def decode_search_request(data: bytes) -> SearchRequest:
    """Decode ``tempopb.SearchRequest``; raises :class:`DecodeError`."""
    req = SearchRequest()
    try:
        for number, wire, value in fields(data):
            if number in _UINT32 and wire == VARINT:
                setattr(req, _UINT32[number], int(value) & 0xFFFFFFFF)  # type: ignore[arg-type]
            elif number == 8 and wire == LEN:
                req.query = bytes(value).decode("utf-8")  # type: ignore[arg-type]
            elif number == 1 and wire == LEN:
                key = val = ""
                for n, w, v in fields(value):  # type: ignore[arg-type]
                    if w == LEN and n in (1, 2):
                        text = bytes(v).decode("utf-8")  # type: ignore[arg-type]
                        key, val = (text, val) if n == 1 else (key, text)
                req.tags[key] = val
    except UnicodeDecodeError as e:
        raise DecodeError("a string field is not UTF-8") from e
    return req


def http_params(req: SearchRequest) -> dict[str, str]:
    """The ``/api/search`` parameters of a request, as Tempo's frontend rebuilds an HTTP
    search from it (zero means unset; tags as logfmt, durations in ms)."""
    query = {
        name: str(value)
        for name, value in (
            ("q", req.query),
            ("limit", req.limit),
            ("spss", req.spss),
            ("start", req.start),
            ("end", req.end),
        )
        if value
    }
    if req.tags:
        if any(not key or any(c.isspace() or c == "=" for c in key) for key in req.tags):
            raise SearchError(400, "invalid tags: a tag name is empty or has spaces or '='")
        tags = sorted(req.tags.items())
        query["tags"] = " ".join(f"{k}={orjson.dumps(v).decode()}" for k, v in tags)
    if req.min_duration_ms:
        query["minDuration"] = f"{req.min_duration_ms}ms"
    if req.max_duration_ms:
        query["maxDuration"] = f"{req.max_duration_ms}ms"
    return query


def search_params(req: SearchRequest, limits: SearchLimits) -> SearchParams:
    """The search of a request, parsed and checked exactly as ``/api/search``'s parameters;
    raises :class:`SearchError`."""
    return parse_params(http_params(req), limits)


# --- SearchResponse --------------------------------------------------------------------------


def _u64(value: Any) -> int:
    """A 64-bit integer as proto3 JSON gives it: a decimal string (or a number)."""
    return int(value) if value not in (None, "") else 0


def any_value(value: Mapping[str, Any]) -> Writer:
    """OTLP ``AnyValue`` from its JSON form; the set member is written even when zero."""
    w = Writer()
    if "stringValue" in value:
        w.string(1, value["stringValue"], always=True)
    elif "boolValue" in value:
        w.uint(2, int(bool(value["boolValue"])), always=True)
    elif "intValue" in value:
        w.uint(3, _u64(value["intValue"]), always=True)
    elif "doubleValue" in value:
        w.double(4, float(value["doubleValue"]), always=True)  # also "NaN", "Infinity"
    elif "arrayValue" in value:
        inner = Writer()
        for item in value["arrayValue"].get("values") or ():
            inner.message(1, any_value(item))
        w.message(5, inner)
    elif "kvlistValue" in value:
        inner = Writer()
        for kv in value["kvlistValue"].get("values") or ():
            inner.message(1, key_value(kv))
        w.message(6, inner)
    elif "bytesValue" in value:
        w.bytes_(7, base64.b64decode(value["bytesValue"]), always=True)
    return w


def key_value(kv: Mapping[str, Any]) -> Writer:
    w = Writer().string(1, kv.get("key", ""))
    if kv.get("value") is not None:
        w.message(2, any_value(kv["value"]))
    return w


def _attributes(w: Writer, number: int, attrs: Any) -> None:
    for kv in attrs or ():
        w.message(number, key_value(kv))


def span(s: Mapping[str, Any]) -> Writer:
    w = Writer().string(1, s.get("spanID", "")).string(2, s.get("name", ""))
    w.uint(3, _u64(s.get("startTimeUnixNano"))).uint(4, _u64(s.get("durationNanos")))
    _attributes(w, 5, s.get("attributes"))
    return w


def span_set(ss: Mapping[str, Any]) -> Writer:
    w = Writer()
    for s in ss.get("spans") or ():
        w.message(1, span(s))
    w.uint(2, int(ss.get("matched") or 0))
    _attributes(w, 3, ss.get("attributes"))
    return w


def trace_metadata(t: Mapping[str, Any]) -> bytes:
    """``TraceSearchMetadata`` from one trace of a search result."""
    w = Writer().string(1, t.get("traceID", ""))
    w.string(2, t.get("rootServiceName", "")).string(3, t.get("rootTraceName", ""))
    w.uint(4, _u64(t.get("startTimeUnixNano"))).uint(5, int(t.get("durationMs") or 0))
    if t.get("spanSet") is not None:
        w.message(6, span_set(t["spanSet"]))
    for ss in t.get("spanSets") or ():
        w.message(7, span_set(ss))
    for service, stats in (t.get("serviceStats") or {}).items():
        value = Writer().uint(1, int(stats.get("spanCount") or 0))
        value.uint(2, int(stats.get("errorCount") or 0))
        w.message(8, Writer().string(1, service, always=True).message(2, value))
    return bytes(w)


_METRICS = (  # SearchMetrics: (field, JSON name)
    (1, "inspectedTraces"),
    (2, "inspectedBytes"),
    (3, "totalBlocks"),
    (4, "completedJobs"),
    (5, "totalJobs"),
    (6, "totalBlockBytes"),
    (7, "inspectedSpans"),
)


def search_metrics(m: Mapping[str, Any]) -> bytes:
    """``SearchMetrics`` from the JSON ``metrics`` object (unknown keys are not encoded)."""
    w = Writer()
    for number, name in _METRICS:
        w.uint(number, _u64(m.get(name)))
    return bytes(w)


def search_responses(
    traces: list[bytes], metrics: bytes, max_bytes: int = MAX_PACKET_BYTES
) -> Iterator[bytes]:
    """``SearchResponse`` messages carrying ``traces`` (encoded ``TraceSearchMetadata``),
    each at most ``max_bytes`` unless one trace alone is larger, each with ``metrics``."""
    tail = bytes(Writer().message(2, metrics))
    w, count = Writer(), 0
    for t in traces:
        entry = bytes(Writer().message(1, t))
        if count and len(w) + len(entry) + len(tail) > max_bytes:
            yield bytes(w) + tail
            w, count = Writer(), 0
        w.raw(entry)
        count += 1
    if count or not traces:
        yield bytes(w) + tail


# --- TraceQL metrics -------------------------------------------------------------------------


def metrics_params(data: bytes, *, instant: bool) -> dict[str, str]:
    """``tempopb.QueryRangeRequest`` (query 1, start 2, end 3, step 4 in unix ns, exemplars
    16) or ``QueryInstantRequest`` (query 1, start 2, end 3) as ``/api/metrics/*``
    parameters; raises :class:`DecodeError`."""
    out: dict[str, str] = {}
    names = (
        {2: "start", 3: "end"} if instant else {2: "start", 3: "end", 4: "step", 16: "exemplars"}
    )
    for number, wire, value in fields(data):
        if number == 1 and wire == LEN:
            assert isinstance(value, bytes)
            out["q"] = value.decode("utf-8", "replace")
        elif number in names and wire == VARINT and value:
            out[names[number]] = f"{value}ns" if number == 4 else str(value)
    return out


def _sample(number: int, value: float, ts_ms: Any, w: Writer) -> None:
    w.message(number, Writer().double(1, float(value)).uint(2, _u64(ts_ms)))


def metrics_response(result: Mapping[str, Any], *, instant: bool) -> bytes:
    """``QueryRangeResponse`` (series 1: labels 1, samples 2 (value 1, timestamp_ms 2),
    exemplars 4 (labels 1, value 2, timestamp_ms 3); metrics 2; status 3; message 4) or
    ``QueryInstantResponse`` (series 1: labels 1, value 2) from the JSON answer."""
    w = Writer()
    for s in result.get("series") or ():
        ts = Writer()
        _attributes(ts, 1, s.get("labels"))
        if instant:
            ts.double(2, float(s.get("value", 0.0)))
        for sample in s.get("samples") or ():
            _sample(2, sample.get("value", 0.0), sample.get("timestampMs"), ts)
        for e in s.get("exemplars") or ():
            ex = Writer()
            _attributes(ex, 1, e.get("labels"))
            ex.double(2, float(e.get("value", 0.0))).uint(3, _u64(e.get("timestampMs")))
            ts.message(4, ex)
        w.message(1, ts)
    w.message(2, search_metrics(result.get("metrics") or {}))
    if result.get("status") == "PARTIAL":
        w.uint(3, 1).string(4, result.get("message", ""))
    return bytes(w)


# --- the RPC ---------------------------------------------------------------------------------

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def grpc_code(http_status: int) -> grpc.StatusCode:
    """The gRPC status of an HTTP API error status."""
    if http_status in _CODES:
        return _CODES[http_status]
    return grpc.StatusCode.INVALID_ARGUMENT if http_status < 500 else grpc.StatusCode.INTERNAL


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _abort_for(e: SearchError | TimeoutError) -> _Abort:
    """The end of a stream for a refused request or one past the server's write timeout."""
    if isinstance(e, SearchError):
        return _Abort(grpc_code(e.status), e.reason)
    return _Abort(
        grpc.StatusCode.DEADLINE_EXCEEDED, "request timed out (server.http_server_write_timeout)"
    )


class StreamingQuerier:
    """The ``Search`` handler; ``service()`` is None until the search service is ready."""

    def __init__(
        self,
        service: Callable[[], SearchService | None],
        *,
        multitenancy: bool,
        multi_tenant_queries: bool,
        request_timeout: float = 0.0,
        metrics: Metrics | None = None,
        max_packet_bytes: int = MAX_PACKET_BYTES,
        metrics_service: Callable[[], Any] | None = None,
    ) -> None:
        self._service = service
        self._metrics_service = metrics_service
        self._multitenancy = multitenancy
        self._multi_tenant_queries = multi_tenant_queries
        self._timeout = request_timeout
        self._metrics = metrics
        self._max_packet = max_packet_bytes

    def handler(self) -> grpc.GenericRpcHandler:
        search = grpc.unary_stream_rpc_method_handler(self.search)  # raw bytes in and out
        methods = {METHOD: search}
        if self._metrics_service is not None:
            methods[METRICS_RANGE] = grpc.unary_stream_rpc_method_handler(self.metrics_range)
            methods[METRICS_INSTANT] = grpc.unary_stream_rpc_method_handler(self.metrics_instant)
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    async def metrics_range(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        """``MetricsQueryRange``: one final ``QueryRangeResponse`` (Grafana merges the
        messages of a stream; one is enough)."""
        async for message in self._metrics_query(request, context, instant=False):
            yield message

    async def metrics_instant(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        """``MetricsQueryInstant``: one final ``QueryInstantResponse``."""
        async for message in self._metrics_query(request, context, instant=True):
            yield message

    async def _metrics_query(
        self, request: bytes, context: grpc.aio.ServicerContext, *, instant: bool
    ) -> AsyncIterator[bytes]:
        from tempo_fast.frontend.metrics import parse_request

        started, outcome = time.perf_counter(), "success"
        route = f"/{SERVICE}/{METRICS_INSTANT if instant else METRICS_RANGE}"
        try:
            ids = self._tenants(context)
            service = self._metrics_service() if self._metrics_service else None
            if service is None:
                raise _Abort(grpc.StatusCode.UNAVAILABLE, "not ready: metrics are starting")
            try:
                params = metrics_params(request, instant=instant)
                req = parse_request(params, service.limits_for(ids), instant=instant)
                async with asyncio.timeout(self._timeout or None):
                    result = await service.query(ids, req)
            except DecodeError as e:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot decode request: {e}") from e
            except (SearchError, TimeoutError) as e:
                raise _abort_for(e) from e
            yield metrics_response(result, instant=instant)
        except _Abort as e:
            outcome = "error"
            await context.abort(e.code, e.message)
        except asyncio.CancelledError:
            outcome = "cancel"
            raise
        finally:
            if self._metrics is not None:
                elapsed = time.perf_counter() - started
                self._metrics.request_duration.labels("gRPC", route, outcome).observe(elapsed)

    def _tenants(self, context: grpc.aio.ServicerContext) -> list[str]:
        header = None
        for key, value in context.invocation_metadata() or ():
            if key == "x-scope-orgid":
                header = value if isinstance(value, str) else value.decode("latin-1")
        try:
            return tenants.resolve_query(header, self._multitenancy, self._multi_tenant_queries)
        except tenants.TenantError as e:
            raise _Abort(grpc_code(401 if e.missing else 400), e.reason) from e

    async def search(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        started, outcome = time.perf_counter(), "success"
        try:
            async for message in self._search(request, context):
                yield message
        except _Abort as e:
            outcome = "error"
            _log.debug("streaming search refused", code=e.code.name, reason=e.message)
            await context.abort(e.code, e.message)
        except asyncio.CancelledError:
            outcome = "cancel"  # the client went away
            raise
        finally:
            if self._metrics is not None:
                elapsed = time.perf_counter() - started
                self._metrics.request_duration.labels("gRPC", ROUTE, outcome).observe(elapsed)

    async def _search(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        ids = self._tenants(context)
        service = self._service()
        if service is None:
            raise _Abort(grpc.StatusCode.UNAVAILABLE, "not ready: the search service is starting")
        try:
            params = search_params(decode_search_request(request), service.limits_for(ids))
        except DecodeError as e:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"cannot decode SearchRequest: {e}"
            ) from e
        except SearchError as e:
            raise _Abort(grpc_code(e.status), e.reason) from e
        last, sent = b"", set[str]()
        try:
            async with asyncio.timeout(self._timeout or None):
                stream = service.search_stream(ids, params)
                async with contextlib.aclosing(stream):  # type: ignore[type-var]
                    async for new_traces, running in stream:
                        # at most ``limit`` traces a stream, first come (Tempo's combiner);
                        # a trace sent before may come again, updated
                        encoded = []
                        for t in new_traces:
                            tid = t.get("traceID", "")
                            if tid not in sent and 0 < params.limit <= len(sent):
                                continue
                            sent.add(tid)
                            encoded.append(trace_metadata(t))
                        metrics = search_metrics(running)
                        if not encoded and metrics == last:
                            continue
                        last = metrics
                        for message in search_responses(encoded, metrics, self._max_packet):
                            yield message
        except (SearchError, TimeoutError) as e:
            raise _abort_for(e) from e
        except (asyncio.CancelledError, _Abort):
            raise
        except Exception as e:  # a bug or a broken block: end with the reason, keep serving
            _log.error("streaming search failed", err=str(e), exc=True)
            raise _Abort(grpc.StatusCode.INTERNAL, f"internal error: {e}") from e
        yield bytes(Writer().message(2, last))  # the final metrics


class StreamingServer:
    """A grpcio asyncio server for :class:`StreamingQuerier` on a Unix socket in a private
    temporary directory (no TCP port: nothing another listener could be refused)."""

    def __init__(self, querier: StreamingQuerier) -> None:
        self._server = grpc.aio.server(
            handlers=(querier.handler(),),
            options=[("grpc.max_receive_message_length", MAX_REQUEST_BYTES)],
        )
        self._dir: str | None = None
        self.path = ""

    async def start(self) -> str:
        """Bind and start; return the socket's path. Raises OSError when it cannot bind."""
        self._dir = tempfile.mkdtemp(prefix="tempo-fast-grpc-")
        path = os.path.join(self._dir, "grpc.sock")
        try:
            if not self._server.add_insecure_port(f"unix:{path}"):
                raise RuntimeError(f"grpcio refused unix:{path}")
        except RuntimeError as e:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise OSError(f"cannot bind the internal gRPC server: {e}") from e
        await self._server.start()
        self.path = path
        return path

    async def stop(self, grace: float) -> None:
        """Refuse new RPCs; let those in flight finish for up to ``grace`` seconds."""
        await self._server.stop(grace)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
