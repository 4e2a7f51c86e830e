"""Wires the components for ``-target=all``: one process, components behind small interfaces.

Order: HTTP API (answers ``/ready`` 503 meanwhile) -> ingester (WAL replay, sweep) -> block
list -> OTLP receivers -> ready. SIGTERM/SIGINT stop it gracefully: not ready, stop the
receivers (in-flight pushes finish), flush if configured, close the ingester, stop the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tempo_fast import __version__
from tempo_fast.backend import LocalBackend, ObjectStore, S3Backend, S3Config
from tempo_fast.compactor import Compactor, staged_block
from tempo_fast.compactor.compactor import CompactFn
from tempo_fast.config import Config, StorageConfig
from tempo_fast.distributor import Distributor
from tempo_fast.distributor.distributor import INLINE_MAX_BYTES
from tempo_fast.distributor.grpc_receiver import GrpcReceiver
from tempo_fast.distributor.jaeger import JaegerThriftHttpReceiver, jaeger_grpc_receiver
from tempo_fast.distributor.jaeger_agent import JaegerAgentReceiver
from tempo_fast.distributor.otlp_grpc import otlp_grpc_receiver
from tempo_fast.distributor.otlp_http import OtlpHttpReceiver
from tempo_fast.distributor.zipkin_http import ZipkinReceiver
from tempo_fast.frontend import HttpApi, Readiness
from tempo_fast.frontend.grpc_streaming import StreamingQuerier, StreamingServer
from tempo_fast.frontend.metrics import MetricsFrontend, MetricsLimits
from tempo_fast.frontend.port_split import SplitSite
from tempo_fast.frontend.search import SearchFrontend, SearchLimits
from tempo_fast.frontend.tags import TagsFrontend
from tempo_fast.generator.generator import Generator, GeneratorCollector
from tempo_fast.ingester import IngesterService, core_config
from tempo_fast.ingester.flusher import BlockFlusher
from tempo_fast.overrides import Overrides
from tempo_fast.pkg import log
from tempo_fast.pkg.log import get_logger
from tempo_fast.pkg.metrics import Metrics
from tempo_fast.pkg.netaddr import EndpointError, parse_endpoint
from tempo_fast.querier import Querier
from tempo_fast.querier.querier import ObjectStoreBlocks

_log = get_logger("app")


def staged_blocks(staging: Path, tenant: str) -> set[str]:
    """Block ids of ``tenant`` staged on local disk (read from there, not the store)."""
    try:
        return {p.name for p in (staging / tenant).iterdir() if (p / "meta.json").is_file()}
    except OSError:
        return set()


def s3_config(storage: StorageConfig) -> S3Config:
    """The object store's settings from ``storage.trace.s3``."""
    return S3Config(
        bucket=storage.s3_bucket,
        endpoint=storage.s3_endpoint,
        region=storage.s3_region,
        access_key=storage.s3_access_key,
        secret_key=storage.s3_secret_key,
        insecure=storage.s3_insecure,
        prefix=storage.s3_prefix,
        forcepathstyle=storage.s3_forcepathstyle,
        part_size=storage.s3_part_size,
    )


class StartupError(Exception):
    """Start-up failed; the message says what to do next."""


@dataclass(frozen=True)
class Core:
    """Constructors of the Rust core (``tempo_fast._core``); tests pass stand-ins."""

    ingester: Callable[[str, dict[str, object]], Any]
    block_store: Callable[[str], Any]
    render_trace: Callable[[list[Any], str, int], bytes | None]
    remote_blocks: Callable[[], Any] | None = None
    compact_blocks: CompactFn | None = None
    search_query: Callable[..., Any] | None = None
    tag_request: Callable[..., Any] | None = None
    metrics_query: Callable[..., Any] | None = None
    # the metrics-generator's Rust processors are present (stand-ins leave it off)
    metrics_generator: bool = False

    @classmethod
    def rust(cls) -> Core:
        try:
            from tempo_fast import _core
        except ImportError as e:
            raise StartupError(
                f"the Rust extension tempo_fast._core is not installed ({e}): "
                "build it with `pip install ./ext .`"
            ) from e
        return cls(
            _core.Ingester,
            _core.BlockStore,
            _core.render_trace,
            _core.RemoteBlocks,
            _core.compact_blocks,
            _core.SearchQuery,
            _core.TagRequest,
            _core.MetricsQuery,
            metrics_generator=True,
        )


def _check_writable(path: str, key: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise StartupError(
            f"cannot write to {key} {path!r} ({e.strerror or e}): "
            "choose a writable directory or fix its permissions"
        ) from e


def _listen_error(what: str, host: str, port: int, error: OSError) -> StartupError:
    where = f"{host or '0.0.0.0'}:{port}"
    if error.errno == errno.EADDRINUSE or "in use" in str(error):
        hint = "address already in use: stop the other process or choose another port"
    else:
        hint = f"{error.strerror or error}: check the address"
    return StartupError(f"cannot listen on {where} for {what}: {hint}")


class App:
    """Every component of ``-target=all`` in one process."""

    def __init__(self, config: Config, core: Core | None = None) -> None:
        self.config = config
        self._core = core or Core.rust()
        self.metrics = Metrics()
        self.readiness = Readiness()
        self.ingester: IngesterService | None = None
        self.querier: Querier | None = None
        self.distributor: Distributor | None = None
        self.overrides: Overrides | None = None
        self.flusher: BlockFlusher | None = None
        self.compactor: Compactor | None = None
        self.generator: Generator | None = None
        self._api: HttpApi | None = None
        self._grpc: dict[str, GrpcReceiver] = {}
        self._udp: dict[str, JaegerAgentReceiver] = {}
        self._runners: dict[str, web.AppRunner] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        """Start every component; raise :class:`StartupError` with a clear message."""
        cfg = self.config
        if cfg.ignored:
            _log.warn(
                "ignoring configuration keys tempo-fast does not implement",
                keys=",".join(cfg.ignored),
            )
        _check_writable(cfg.storage.wal_path, "storage.trace.wal.path")
        blocks_key = "storage.trace.local.path" if cfg.storage.backend == "local" else "wal"
        _check_writable(cfg.storage.blocks_path, blocks_key)
        self.readiness.reason = "replaying the WAL"
        self.ports["http"] = await self._serve_api()
        loop = asyncio.get_running_loop()
        try:
            core_ingester = self._core.ingester(cfg.storage.wal_path, core_config(cfg))
            self.ingester = IngesterService(core_ingester, cfg.ingester)
            await loop.run_in_executor(None, self.ingester.replay)
            self.ingester.start()
            blocks = self._core.block_store(cfg.storage.blocks_path)
        except (OSError, ValueError, RuntimeError) as e:
            raise StartupError(f"cannot open the WAL or block store: {e}") from e
        self.overrides = Overrides(cfg.overrides, core_ingester.set_limits, self.metrics.registry)
        self.overrides.start()
        store = S3Backend(s3_config(cfg.storage)) if cfg.storage.backend == "s3" else None
        remote = None
        if store is not None and self._core.remote_blocks is not None:
            staging = Path(cfg.storage.blocks_path)
            remote = ObjectStoreBlocks(
                store, self._core.remote_blocks(), lambda t: staged_blocks(staging, t)
            )
        self.querier = Querier(
            self.ingester, blocks, self._core.render_trace, cfg.storage.blocklist_poll, remote
        )
        await loop.run_in_executor(None, self.querier.poll)
        assert self._api is not None
        self._api.querier = self.querier
        self.ingester.on_blocks_flushed(self.querier.request_poll)
        if store is not None:
            self.metrics.watch_backend(store.stats.snapshot)
            self.flusher = BlockFlusher(
                store,
                cfg.storage.blocks_path,
                self.metrics.registry,
                keep_uploaded=cfg.ingester.complete_block_timeout,
            )
            self.flusher.on_removed(self.querier.request_poll)
            self.ingester.on_blocks_flushed(self.flusher.wake)
            period = cfg.ingester.flush_check_period
            self._tasks.append(asyncio.create_task(self.flusher.run(period), name="block-flusher"))
        self._start_compactor(store)
        self.metrics.watch_core(self.ingester.stats, self.querier.blocklist)
        self.metrics.watch_querier(self.querier.error_counts)
        self._tasks += [
            asyncio.create_task(self.querier.run_poller(), name="blocklist-poller"),
            asyncio.create_task(self.ingester.watch_flushes(), name="flush-watcher"),
            asyncio.create_task(self.overrides.watch(), name="overrides-reloader"),
        ]
        if cfg.metrics_generator is not None and self._core.metrics_generator:
            self.generator = Generator(
                cfg.metrics_generator, self.overrides.tree, self.metrics.registry
            )
            self.metrics.registry.register(
                GeneratorCollector(self.generator, cfg.multitenancy_enabled)
            )
            self._tasks.append(asyncio.create_task(self.generator.run(), name="metrics-generator"))
        self.distributor = Distributor(
            self.ingester,
            self.metrics,
            cfg.multitenancy_enabled,
            retry_after=cfg.distributor.retry_after_on_resource_exhausted or 1.0,
            # with fsync "always" a push waits for the disk: never on the event loop
            inline_max_bytes=0 if cfg.storage.wal_fsync == "always" else INLINE_MAX_BYTES,
            forward=self.generator.push if self.generator is not None else None,
        )
        await self._serve_receivers()
        self.readiness.ready = True
        self.readiness.reason = ""
        _log.info("tempo-fast started", version=__version__, **self.ports)

    def _start_compactor(self, store: ObjectStore | None) -> None:
        """Compaction and retention over the backend (the local path, or the bucket)."""
        cfg, compact = self.config, self._core.compact_blocks
        if compact is None or self.querier is None or self.overrides is None:
            return
        staged = staged_block(Path(cfg.storage.blocks_path)) if store is not None else None
        self.compactor = Compactor(
            store if store is not None else LocalBackend(cfg.storage.local_path),
            cfg.compactor,
            compact,
            core_config(cfg),
            Path(cfg.storage.wal_path) / "compactor",
            tenant_overrides=self.overrides.compaction,
            staged=staged or (lambda _t, _b: None),
            registry=self.metrics.registry,
        )
        self.compactor.on_change(self.querier.request_poll)
        self._tasks.append(asyncio.create_task(self.compactor.run(), name="compactor"))

    async def stop(self) -> None:
        """Graceful stop; safe to call after a failed or partial start."""
        self.readiness.ready = False
        self.readiness.reason = "shutting down"
        grace = self.config.server.graceful_shutdown_timeout
        loop = asyncio.get_running_loop()
        for receiver in self._grpc.values():
            await loop.run_in_executor(None, receiver.stop, grace)
        self._grpc.clear()
        for udp in self._udp.values():
            await udp.stop()
        self._udp.clear()
        for name in ("otlp_http", "zipkin", "jaeger_thrift_http"):
            if name in self._runners:
                await self._runners.pop(name).cleanup()
        if self.distributor is not None:
            await loop.run_in_executor(None, self.distributor.close)
        if self.generator is not None:  # last collection and remote-write flush
            await self.generator.close(max_wait=grace / 2)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.ingester is not None:
            await loop.run_in_executor(None, self.ingester.shutdown)
        if self.flusher is not None:  # upload what the shutdown flush completed
            await loop.run_in_executor(None, self.flusher.flush)
        for runner in self._runners.values():
            await runner.cleanup()
        self._runners.clear()
        if self._api is not None and self._api.search is not None:
            self._api.search.close()
        _log.info("tempo-fast stopped")

    def _read_overrides(self, tenant: str) -> dict[str, float | int]:
        """The tenant's read limits (none until the overrides are loaded)."""
        return self.overrides.read(tenant) if self.overrides is not None else {}

    async def _serve_api(self) -> int:
        """The HTTP API; with ``stream_over_http_enabled`` also gRPC ``StreamingQuerier`` on
        the same port (an internal grpcio server on a Unix socket behind a :class:`SplitSite`)."""
        cfg = self.config
        search = tags = traceql_metrics = None
        if self._core.search_query is not None:
            search = SearchFrontend(
                lambda: self.querier,
                SearchLimits.from_config(cfg.query_frontend),
                self._core.search_query,
                read_overrides=self._read_overrides,
            )
            if self._core.tag_request is not None:
                tags = TagsFrontend(search, lambda: self.querier, self._core.tag_request)
            if self._core.metrics_query is not None:
                traceql_metrics = MetricsFrontend(
                    lambda: self.querier,
                    search.pool,
                    self._core.metrics_query,
                    MetricsLimits.from_config(cfg.query_frontend),
                    cache=search.cache,
                    read_overrides=self._read_overrides,
                )
        self._api = HttpApi(
            None,
            self.metrics,
            self.readiness,
            prefix=cfg.http_api_prefix,
            multitenancy=cfg.multitenancy_enabled,
            multi_tenant_queries=cfg.query_frontend.multi_tenant_queries_enabled,
            request_timeout=cfg.server.http_server_write_timeout,
            search=search,
            tags=tags,
            traceql_metrics=traceql_metrics,
        )
        host, port = cfg.server.http_listen_address, cfg.server.http_listen_port
        if not cfg.stream_over_http_enabled:
            return await self._serve("http", self._api.app(), host, port, "the HTTP API")
        streaming = StreamingServer(
            StreamingQuerier(
                lambda: self._api.search if self._api is not None else None,
                multitenancy=cfg.multitenancy_enabled,
                multi_tenant_queries=cfg.query_frontend.multi_tenant_queries_enabled,
                request_timeout=cfg.server.http_server_write_timeout,
                metrics=self.metrics,
                metrics_service=lambda: (
                    self._api.traceql_metrics if self._api is not None else None
                ),
            )
        )
        try:
            grpc_path = await streaming.start()
        except OSError as e:
            raise StartupError(f"cannot start the streaming gRPC server: {e}") from e
        grace = cfg.server.graceful_shutdown_timeout

        def site(runner: web.AppRunner) -> web.BaseSite:
            return SplitSite(runner, host, port, grpc_path, drain=lambda: streaming.stop(grace))

        return await self._serve("http", self._api.app(), host, port, "the HTTP API", site)

    async def _serve_receivers(self) -> None:
        assert self.distributor is not None
        d, receivers = self.distributor, self.config.distributor
        if receivers.otlp_grpc is not None:
            config = receivers.otlp_grpc
            self._serve_grpc(
                "otlp_grpc",
                "otlp.protocols.grpc",
                lambda: otlp_grpc_receiver(d, config),
                "OTLP gRPC",
            )
        if receivers.jaeger_grpc is not None:
            jaeger = receivers.jaeger_grpc
            self._serve_grpc(
                "jaeger_grpc",
                "jaeger.protocols.grpc",
                lambda: jaeger_grpc_receiver(d, jaeger),
                "Jaeger gRPC",
            )
        for name, compact in (("jaeger_thrift_compact", True), ("jaeger_thrift_binary", False)):
            udp_config = getattr(receivers, name)
            if udp_config is not None:
                await self._serve_udp(name, JaegerAgentReceiver(d, udp_config, compact))
        if receivers.jaeger_thrift_http is not None:
            app = JaegerThriftHttpReceiver(d, receivers.jaeger_thrift_http).app()
            await self._serve_receiver(
                "jaeger_thrift_http",
                "jaeger.protocols.thrift_http",
                receivers.jaeger_thrift_http.endpoint,
                app,
                "Jaeger thrift HTTP",
            )
        if receivers.otlp_http is not None:
            app = OtlpHttpReceiver(self.distributor, receivers.otlp_http).app()
            await self._serve_receiver(
                "otlp_http", "otlp.protocols.http", receivers.otlp_http.endpoint, app, "OTLP HTTP"
            )
        if receivers.zipkin is not None:
            app = ZipkinReceiver(self.distributor, receivers.zipkin).app()
            await self._serve_receiver("zipkin", "zipkin", receivers.zipkin.endpoint, app, "Zipkin")

    def _serve_grpc(self, name: str, key: str, make: Callable[[], GrpcReceiver], what: str) -> None:
        """Start a gRPC receiver (config key ``distributor.receivers.<key>``)."""
        try:
            receiver = make()
        except EndpointError as e:
            raise StartupError(f"distributor.receivers.{key}: {e}") from e
        try:
            self.ports[name] = receiver.start()
        except OSError as e:
            raise _listen_error(what, receiver.host, receiver.port, e) from e
        self._grpc[name] = receiver

    async def _serve_udp(self, name: str, receiver: JaegerAgentReceiver) -> None:
        try:
            self.ports[name] = await receiver.start()
        except OSError as e:
            what = f"Jaeger agent UDP ({name})"
            raise _listen_error(what, receiver.host, receiver.port, e) from e
        self._udp[name] = receiver

    async def _serve_receiver(
        self, name: str, key: str, endpoint: str, app: web.Application, what: str
    ) -> None:
        """Serve an HTTP receiver on ``endpoint`` (config key ``distributor.receivers.<key>``)."""
        try:
            host, port = parse_endpoint(endpoint)
        except EndpointError as e:
            raise StartupError(f"distributor.receivers.{key}: {e}") from e
        self.ports[name] = await self._serve(name, app, host, port, what)

    async def _serve(
        self,
        name: str,
        app: web.Application,
        host: str,
        port: int,
        what: str,
        make_site: Callable[[web.AppRunner], web.BaseSite] | None = None,
    ) -> int:
        runner = web.AppRunner(
            app,
            access_log=None,
            auto_decompress=False,
            shutdown_timeout=self.config.server.graceful_shutdown_timeout,
        )
        await runner.setup()
        site = (
            make_site(runner)
            if make_site is not None
            else web.TCPSite(runner, host or None, port, reuse_address=True)
        )
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise _listen_error(what, host, port, e) from e
        self._runners[name] = runner
        return int(runner.addresses[-1][1])


async def serve(config: Config, core: Core | None = None) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully. Raises :class:`StartupError`."""
    app = App(config, core)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
        await stop.wait()
        _log.info("shutting down")
    finally:
        await app.stop()


def run(config: Config, core: Core | None = None) -> None:
    """Blocking entry point: set up logging from ``server.log_*``, then :func:`serve` (on
    uvloop when installed) until SIGTERM/SIGINT. Raises :class:`StartupError`."""
    log.setup(config.server.log_level, config.server.log_format)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config, core))
    else:
        uvloop.run(serve(config, core))
