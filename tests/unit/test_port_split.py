"""The HTTP port splitter: HTTP/1.1 to aiohttp, h2c to the internal grpcio server, slow and
silent clients, disconnects, shutdown; and the app's wiring of ``stream_over_http_enabled``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web

from tempo_fast.frontend.grpc_streaming import ROUTE, StreamingQuerier, StreamingServer
from tempo_fast.frontend.port_split import PREFACE, SplitSite, listen, sniff
from tests.unit.conftest import RunningApp, make_config
from tests.unit.http_client import request
from tests.unit.tempopb import SearchRequest, response_dict
from tests.unit.test_grpc_streaming import FakeSearch, Item

SETTINGS_FRAME = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # empty SETTINGS, stream 0


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=f"{request.method} {await request.text()}")


class Split:
    """A running aiohttp app and StreamingQuerier behind one :class:`SplitSite`."""

    def __init__(self, service: FakeSearch | None, sniff_timeout: float) -> None:
        self.service = service
        self.sniff_timeout = sniff_timeout
        self.port = 0

    async def __aenter__(self) -> Split:
        app = web.Application()
        app.router.add_route("*", "/x", hello)
        self.runner = web.AppRunner(app, shutdown_timeout=5)
        await self.runner.setup()
        querier = StreamingQuerier(
            lambda: self.service, multitenancy=False, multi_tenant_queries=False
        )
        self.grpc = StreamingServer(querier)
        grpc_path = await self.grpc.start()
        site = SplitSite(
            self.runner,
            "127.0.0.1",
            0,
            grpc_path,
            drain=lambda: self.grpc.stop(5),
            sniff_timeout=self.sniff_timeout,
        )
        await site.start()
        self.port = self.runner.addresses[-1][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    async def get(self, path: str = "/x", method: str = "GET", data: bytes = b"") -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"http://127.0.0.1:{self.port}{path}", data=data) as resp,
        ):
            return f"{resp.status} {await resp.text()}"

    async def search(self, body: bytes = b"") -> list[dict[str, Any]]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            call = channel.unary_stream(ROUTE)
            return [response_dict(m) async for m in call(body, timeout=10)]

    async def raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


def run(scenario: Any, service: FakeSearch | None = None, sniff_timeout: float = 5.0) -> Any:
    async def go() -> Any:
        async with Split(service, sniff_timeout) as split:
            return await scenario(split)

    return asyncio.run(go())


ITEMS: list[Item] = [([{"traceID": "a1"}], {"completedJobs": 1, "totalJobs": 1})]
EXPECTED = [
    {"traces": [{"traceID": "a1"}], "metrics": {"completedJobs": 1, "totalJobs": 1}},
    {"metrics": {"completedJobs": 1, "totalJobs": 1}},
]


def test_http_and_grpc_share_the_port() -> None:
    async def scenario(split: Split) -> list[Any]:
        return [
            await split.get(),
            await split.search(SearchRequest(Query="{}").SerializeToString()),
            await split.get(method="POST", data=b"body"),  # starts with P, like the preface
            await split.search(),
        ]

    http1, grpc1, post, grpc2 = run(scenario, FakeSearch(ITEMS * 1))
    assert (http1, post) == ("200 GET ", "200 POST body")
    assert grpc1 == EXPECTED
    assert grpc2 == EXPECTED


def test_blocking_grpc_client() -> None:
    def call(port: int) -> list[bytes]:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            return list(channel.unary_stream(ROUTE)(b"", timeout=10))

    async def scenario(split: Split) -> list[bytes]:
        return await asyncio.get_running_loop().run_in_executor(None, call, split.port)

    assert [response_dict(m) for m in run(scenario, FakeSearch(ITEMS))] == EXPECTED


def test_slow_preface_is_still_grpc() -> None:
    async def scenario(split: Split) -> bytes:
        reader, writer = await split.raw()
        for part in (PREFACE[:2], PREFACE[2:10], PREFACE[10:]):
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(SETTINGS_FRAME)
        frame = await asyncio.wait_for(reader.readexactly(9), 5)
        writer.close()
        return frame

    frame = run(scenario)
    assert frame[3] in (0x4, 0x8), "the gRPC server answers with HTTP/2 frames"


def test_slow_http_request_goes_to_aiohttp() -> None:
    async def scenario(split: Split) -> bytes:
        reader, writer = await split.raw()
        for part in (b"P", b"OS", b"T /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"):
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.05)
        status = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        return status

    assert run(scenario) == b"HTTP/1.1 200 OK\r\n"


def test_not_quite_the_preface_goes_to_aiohttp() -> None:
    async def scenario(split: Split) -> bytes:
        reader, writer = await split.raw()
        writer.write(b"PRIX /x HTTP/1.1\r\nHost: a\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        return status

    assert run(scenario) == b"HTTP/1.0 400 Bad Request\r\n"  # aiohttp's answer


def test_silent_client_is_dropped_after_the_timeout() -> None:
    async def scenario(split: Split) -> bytes:
        reader, writer = await split.raw()
        data = await asyncio.wait_for(reader.read(), 5)  # EOF once the splitter gives up
        writer.close()
        return data

    assert run(scenario, sniff_timeout=0.2) == b""


def test_disconnects_do_not_disturb_the_server() -> None:
    async def scenario(split: Split) -> str:
        for opening in (b"", b"PRI * HTTP/2", PREFACE, b"GET /x HT"):
            _, writer = await split.raw()
            writer.write(opening)
            await writer.drain()
            writer.transport.abort()  # a reset
        await asyncio.sleep(0.1)
        await split.search()
        return await split.get()

    assert run(scenario, FakeSearch([])) == "200 GET "


def test_shutdown_lets_a_stream_in_flight_finish() -> None:
    async def slow() -> AsyncIterator[Item]:
        for n in range(1, 4):
            yield [{"traceID": f"{n}"}], {"completedJobs": n, "totalJobs": 3}
            await asyncio.sleep(0.1)

    async def go() -> tuple[list[dict[str, Any]], bool]:
        split = Split(FakeSearch(script=slow), 5.0)
        await split.__aenter__()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{split.port}") as channel:
            stream = channel.unary_stream(ROUTE)(b"", timeout=10)
            first = await stream.read()
            stopping = asyncio.create_task(split.__aexit__())
            await asyncio.sleep(0.05)
            rest = []
            while (m := await stream.read()) is not grpc.aio.EOF:
                rest.append(m)
            await asyncio.wait_for(stopping, 10)
        refused = False
        try:
            await split.raw()
        except OSError:
            refused = True
        return [response_dict(m) for m in [first, *rest]], refused

    messages, refused = asyncio.run(go())
    assert [t["traceID"] for m in messages for t in m.get("traces", [])] == ["1", "2", "3"]
    assert messages[-1] == {"metrics": {"completedJobs": 3, "totalJobs": 3}}
    assert refused, "the port is closed after shutdown"


def test_port_in_use_is_an_os_error() -> None:
    async def go() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            runner = web.AppRunner(web.Application())
            await runner.setup()
            site = SplitSite(runner, "127.0.0.1", taken.getsockname()[1], 1)
            try:
                with pytest.raises(OSError):
                    await site.start()
            finally:
                await runner.cleanup()

    asyncio.run(go())


def test_listen_on_every_address() -> None:
    with listen("", 0) as sock:
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    with listen("localhost", 0) as sock:
        assert sock.getsockname()[0] in ("127.0.0.1", "::1")


def test_sniff_reports_eof() -> None:
    async def go() -> bool | None:
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            b.close()
            return await sniff(a, 1.0)

    assert asyncio.run(go()) is None


# --- through the app ------------------------------------------------------------------------


def set_search(app: RunningApp, service: FakeSearch) -> FakeSearch:
    """Stand in for the app's search frontend (the fake core has no search engine)."""
    assert app.app._api is not None
    app.app._api.search = service  # type: ignore[assignment]
    return service


def app_search(app: RunningApp, body: bytes = b"", metadata: tuple[Any, ...] = ()) -> list[Any]:
    with grpc.insecure_channel(f"127.0.0.1:{app.app.ports['http']}") as channel:
        call = channel.unary_stream(ROUTE)
        return [response_dict(m) for m in call(body, metadata=metadata, timeout=10)]


def test_app_serves_streaming_search_on_the_http_port(running: RunningApp) -> None:
    assert running.app.config.stream_over_http_enabled
    with pytest.raises(grpc.RpcError) as info:
        app_search(running)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # no search service yet
    set_search(running, FakeSearch(ITEMS))
    assert app_search(running) == EXPECTED
    assert request("GET", running.url("http", "/api/echo")).text == "echo"
    text = running.app.metrics.exposition().decode()
    assert 'route="/tempopb.StreamingQuerier/Search",status_code="success"' in text


def test_app_tenant_metadata(running_mt: RunningApp) -> None:
    service = set_search(running_mt, FakeSearch([]))
    with pytest.raises(grpc.RpcError) as info:
        app_search(running_mt)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert app_search(running_mt, metadata=(("x-scope-orgid", "team-a"),)) == [{"metrics": {}}]
    assert service.calls[0][0] == ["team-a"]


def test_app_without_stream_over_http(tmp_path: Path) -> None:
    app = RunningApp(make_config(tmp_path, "stream_over_http_enabled: false"))
    app.call(app.app.start())
    try:
        set_search(app, FakeSearch(ITEMS))
        with pytest.raises(grpc.RpcError):
            app_search(app)
        assert request("GET", app.url("http", "/api/echo")).text == "echo"
    finally:
        app.close()


def test_app_http_port_in_use_is_a_startup_error(tmp_path: Path) -> None:
    from tempo_fast.app import StartupError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = RunningApp(make_config(tmp_path, f"server: {{http_listen_port: {port}}}"))
        try:
            with pytest.raises(StartupError, match="address already in use"):
                app.call(app.app.start())
        finally:
            with contextlib.suppress(Exception):
                app.close()
