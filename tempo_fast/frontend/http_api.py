"""Tempo's HTTP API on ``server.http_listen_port``: trace by id (v1, v2), search, tags and tag
values, echo, build info, readiness and metrics, all under ``http_api_prefix``."""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tempo_fast import __version__
from tempo_fast.frontend.grpc_streaming import search_metrics, search_responses, trace_metadata
from tempo_fast.frontend.metrics import MetricsFrontend, parse_request
from tempo_fast.frontend.search import SearchError, SearchFrontend, parse_params
from tempo_fast.frontend.summary import SummaryFrontend
from tempo_fast.frontend.tags import TagsFrontend
from tempo_fast.pkg import tenant as tenants
from tempo_fast.pkg import traceid
from tempo_fast.pkg.log import get_logger
from tempo_fast.pkg.metrics import API_VERSION, Metrics
from tempo_fast.querier.querier import Querier

_log = get_logger("frontend")
PROTOBUF = "application/protobuf"
_BUILD_DATE = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Readiness:
    """``/ready`` answers 200 once ``ready`` is set; until then 503 with ``reason``."""

    ready: bool = False
    reason: str = "starting"


def search_protobuf(result: dict[str, Any]) -> bytes:
    """A ``SearchResponse`` as one protobuf message (``Accept: application/protobuf``)."""
    traces = [trace_metadata(t) for t in result["traces"]]
    metrics = search_metrics(result["metrics"])
    return b"".join(search_responses(traces, metrics, max_bytes=1 << 62))


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)


def _unix_seconds(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPBadRequest(text=f"invalid {name} {raw!r}: expected unix epoch seconds")
    return int(raw)


class HttpApi:
    """Builds the aiohttp application of the query API. ``querier`` may be set once the
    ingester has replayed its WAL; until then trace lookups answer 503."""

    def __init__(
        self,
        querier: Querier | None,
        metrics: Metrics,
        readiness: Readiness,
        *,
        prefix: str,
        multitenancy: bool,
        multi_tenant_queries: bool,
        request_timeout: float,
        search: SearchFrontend | None = None,
        tags: TagsFrontend | None = None,
        traceql_metrics: MetricsFrontend | None = None,
    ) -> None:
        self.querier = querier
        self.search = search
        self.tags = tags
        self.traceql_metrics = traceql_metrics
        self._metrics = metrics
        self._readiness = readiness
        self._prefix = prefix
        self._multitenancy = multitenancy
        self._multi_tenant_queries = multi_tenant_queries
        self._timeout = request_timeout
        self._routes: dict[str, str] = {}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._instrument])
        self._add(app, "/api/traces/{trace_id}", "api_traces_traceid", self.trace_v1)
        self._add(app, "/api/v2/traces/{trace_id}", "api_v2_traces_traceid", self.trace_v2)
        self._add(app, "/api/search", "api_search", self.search_traces)
        self._add(app, "/api/search/tags", "api_search_tags", self.tag_names_v1)
        self._add(app, "/api/v2/search/tags", "api_v2_search_tags", self.tag_names_v2)
        self._add(app, "/api/search/tag/{name}/values", "api_search_tag_values", self.values_v1)
        self._add(app, "/api/v2/search/tag/{name}/values", "api_v2_tag_values", self.values_v2)
        self._add(app, "/api/metrics/query_range", "api_metrics_query_range", self.query_range)
        self._add(app, "/api/metrics/query", "api_metrics_query", self.query_instant)
        self._add(app, "/api/metrics/summary", "api_metrics_summary", self.metrics_summary)
        self._add(app, "/api/echo", "api_echo", self.echo)
        self._add(app, "/api/status/buildinfo", "api_status_buildinfo", self.buildinfo)
        self._add(app, "/ready", "ready", self.ready)
        self._add(app, "/metrics", "metrics", self.metrics)
        return app

    def _add(self, app: web.Application, path: str, route: str, handler: Handler) -> None:
        resource = app.router.add_resource(self._prefix + path, name=route)
        resource.add_route("GET", handler)
        self._routes[resource.canonical] = route

    @web.middleware
    async def _instrument(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        info = request.match_info.route.resource
        route = self._routes.get(info.canonical, "other") if info is not None else "other"
        status = 500
        try:
            async with asyncio.timeout(self._timeout or None):
                response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        except TimeoutError:
            status = 503
            _log.error("request timed out", route=route, timeout_s=self._timeout)
            return _text(503, "request timed out (server.http_server_write_timeout)")
        except Exception as e:  # a bug or a broken block: answer with the reason, keep serving
            status = 500
            _log.error("request failed", route=route, err=str(e), exc=True)
            return _text(500, f"internal error: {e}")
        finally:
            elapsed = time.perf_counter() - start
            self._metrics.request_duration.labels(request.method, route, str(status)).observe(
                elapsed
            )
            _log.debug("request", method=request.method, route=route, status=status, took=elapsed)

    async def trace_v1(self, request: web.Request) -> web.StreamResponse:
        return await self._trace(request, "v1")

    async def trace_v2(self, request: web.Request) -> web.StreamResponse:
        return await self._trace(request, "v2")

    async def _trace(self, request: web.Request, version: str) -> web.StreamResponse:
        op = f"traces_{version}"
        try:
            trace_id = traceid.parse(request.match_info["trace_id"])
            start, end = _unix_seconds(request, "start"), _unix_seconds(request, "end")
            if start is not None and end is not None and start > end:
                raise web.HTTPBadRequest(text=f"invalid start {start} after end {end}")
            ids = tenants.resolve_query(
                request.headers.get(tenants.HEADER),
                self._multitenancy,
                self._multi_tenant_queries,
            )
        except traceid.TraceIDError as e:
            return self._answer(op, _text(400, f"invalid trace id: {e}"))
        except tenants.TenantError as e:
            return self._answer(op, _text(401 if e.missing else 400, e.reason))
        except web.HTTPBadRequest as e:
            return self._answer(op, _text(400, e.text or "bad request"))
        if self.querier is None:
            return self._answer(op, _text(503, f"not ready: {self._readiness.reason}"))
        protobuf = PROTOBUF in request.headers.get("Accept", "")
        fmt = f"{'proto' if protobuf else 'json'}_{version}"
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(None, self.querier.trace_by_id, ids, trace_id, fmt)
        if body is None:
            return self._answer(op, _text(404, "trace not found"))
        content_type = PROTOBUF if protobuf else "application/json"
        return self._answer(op, web.Response(body=body, content_type=content_type))

    def _tenants(self, request: web.Request) -> list[str]:
        try:
            return tenants.resolve_query(
                request.headers.get(tenants.HEADER),
                self._multitenancy,
                self._multi_tenant_queries,
            )
        except tenants.TenantError as e:
            raise SearchError(401 if e.missing else 400, e.reason) from None

    async def search_traces(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/search``: TraceQL (or legacy tag) search, Tempo's SearchResponse."""
        op = "search"
        if self.search is None or self.querier is None:
            return self._answer(op, _text(503, f"not ready: {self._readiness.reason}"))
        try:
            ids = self._tenants(request)
            params = parse_params(request.query, self.search.limits_for(ids))
            result = await self.search.search(ids, params)
        except SearchError as e:
            return self._answer(op, _text(e.status, e.reason))
        self._metrics.bytes_inspected.labels(op).inc(int(result["metrics"]["inspectedBytes"]))
        if PROTOBUF in request.headers.get("Accept", ""):
            return self._answer(
                op, web.Response(body=search_protobuf(result), content_type=PROTOBUF)
            )
        body = orjson.dumps(result)
        return self._answer(op, web.Response(body=body, content_type="application/json"))

    async def query_range(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/metrics/query_range``: TraceQL metrics, Tempo's QueryRangeResponse."""
        return await self._metrics_query(request, instant=False)

    async def query_instant(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/metrics/query``: one value per series over the range."""
        return await self._metrics_query(request, instant=True)

    async def metrics_summary(self, request: web.Request) -> web.Response:
        """``GET /api/metrics/summary``: span count, errors, rate and P50–P99 of server spans
        per ``groupBy`` value (Tempo's SpanMetricsSummaryResponse, plus ``rate``)."""
        op = "metrics_summary"
        frontend = self.traceql_metrics
        if frontend is None or self.querier is None:
            return self._answer(op, _text(503, f"not ready: {self._readiness.reason}"))
        try:
            ids = self._tenants(request)
            result = await SummaryFrontend(frontend).summary(ids, request.query)
        except SearchError as e:
            return self._answer(op, _text(e.status, e.reason))
        body = orjson.dumps(result)
        return self._answer(op, web.Response(body=body, content_type="application/json"))

    async def _metrics_query(self, request: web.Request, *, instant: bool) -> web.Response:
        op = "metrics"
        frontend = self.traceql_metrics
        if frontend is None or self.querier is None:
            return self._answer(op, _text(503, f"not ready: {self._readiness.reason}"))
        try:
            ids = self._tenants(request)
            req = parse_request(request.query, frontend.limits_for(ids), instant=instant)
            result = await frontend.query(ids, req)
        except SearchError as e:
            return self._answer(op, _text(e.status, e.reason))
        self._metrics.bytes_inspected.labels(op).inc(int(result["metrics"]["inspectedBytes"]))
        body = orjson.dumps(result)
        return self._answer(op, web.Response(body=body, content_type="application/json"))

    async def _tags(
        self, request: web.Request, op: str, call: Callable[..., Awaitable[Any]], *args: Any
    ) -> web.Response:
        if self.tags is None or self.querier is None:
            return self._answer(op, _text(503, f"not ready: {self._readiness.reason}"))
        try:
            ids = self._tenants(request)
            result = await call(ids, *args, request.query)
        except SearchError as e:
            return self._answer(op, _text(e.status, e.reason))
        inspected = int(result.get("metrics", {}).get("inspectedBytes", 0))
        self._metrics.bytes_inspected.labels(op).inc(inspected)
        body = orjson.dumps(result)
        return self._answer(op, web.Response(body=body, content_type="application/json"))

    async def tag_names_v1(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/search/tags``: ``{"tagNames": [...]}``."""
        return await self._tags(request, "search_tags", self._call("names_v1"))

    async def tag_names_v2(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/v2/search/tags``: names grouped by scope, intrinsics included."""
        return await self._tags(request, "search_tags_v2", self._call("names_v2"))

    async def values_v1(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/search/tag/{name}/values``: ``{"tagValues": ["a", ...]}``."""
        name = request.match_info["name"]
        return await self._tags(request, "search_tag_values", self._call("values_v1"), name)

    async def values_v2(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/v2/search/tag/{tag}/values``: typed values, narrowed by ``q``."""
        name = request.match_info["name"]
        return await self._tags(request, "search_tag_values_v2", self._call("values_v2"), name)

    def _call(self, method: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any) -> Any:
            assert self.tags is not None
            return await getattr(self.tags, method)(*args)

        return call

    def _answer(self, op: str, response: web.Response) -> web.Response:
        self._metrics.queries.labels(op, str(response.status)).inc()
        return response

    async def echo(self, request: web.Request) -> web.StreamResponse:
        return _text(200, "echo")

    async def buildinfo(self, request: web.Request) -> web.StreamResponse:
        info = {
            "version": API_VERSION,
            "revision": f"tempo-fast-{__version__}",
            "branch": "main",
            "buildDate": _BUILD_DATE,
            "buildUser": "tempo-fast",
            "goVersion": f"python{platform.python_version()}",
        }
        return web.Response(body=orjson.dumps(info), content_type="application/json")

    async def ready(self, request: web.Request) -> web.StreamResponse:
        if self._readiness.ready:
            return _text(200, "ready")
        return _text(503, f"not ready: {self._readiness.reason}")

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        body = self._metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})
