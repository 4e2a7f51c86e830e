"""One port for the HTTP API and gRPC, as Tempo's ``stream_over_http_enabled``.

grpcio cannot share a listener, so :class:`SplitSite` accepts connections itself and peeks
(``MSG_PEEK``: nothing is consumed) at each one's first bytes. A connection opening with the
HTTP/2 prior-knowledge preface (what Grafana's gRPC client sends: h2c) is proxied byte for
byte to the internal grpcio server (on a Unix socket); any other goes straight to aiohttp on
the same socket.
Routing is per connection: an HTTP/2 connection carries gRPC only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from tempo_fast.pkg.log import get_logger

_log = get_logger("frontend")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SNIFF_TIMEOUT = 30.0  # a client silent this long after connecting is dropped
_CHUNK = 1 << 16


def listen(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A non-blocking listening TCP socket; ``host`` "" is every address (IPv4 and IPv6 when
    the system has IPv6). Raises OSError."""
    if not host and socket.has_dualstack_ipv6():
        try:
            sock = socket.create_server(
                ("::", port), family=socket.AF_INET6, backlog=backlog, dualstack_ipv6=True
            )
        except OSError as e:  # IPv6 disabled on the interfaces: IPv4 only
            if e.errno == errno.EADDRINUSE:
                raise
            sock = socket.create_server(("0.0.0.0", port), backlog=backlog)
    else:
        family, _, _, _, address = socket.getaddrinfo(
            host or "0.0.0.0", port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.create_server(address[:2], family=family, backlog=backlog)
    sock.setblocking(False)
    return sock


async def _readable(sock: socket.socket, timeout: float) -> None:
    """Wait until ``sock`` has data (or EOF) or ``timeout`` passes."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await ready
    finally:
        loop.remove_reader(fd)


async def sniff(sock: socket.socket, timeout: float = SNIFF_TIMEOUT) -> bool | None:
    """True if the connection opens with the HTTP/2 preface, False if with anything else,
    None if it closed or sent nothing decisive within ``timeout``. Consumes nothing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.001
    while True:
        try:
            head: bytes | None = sock.recv(len(PREFACE), socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            head = None
        if head is not None:
            if not head:
                return None  # closed before a byte
            if not PREFACE.startswith(head):
                return False
            if len(head) == len(PREFACE):
                return True
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        if head is None:
            await _readable(sock, remaining)
        else:  # a partial preface: the socket stays readable, so poll
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close ``dst``; on a reset close ``dst``, which ends the
    other direction too."""
    try:
        while data := await src.read(_CHUNK):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except OSError as e:
        _log.debug("gRPC connection reset", err=str(e))
        dst.close()


class SplitSite(web.BaseSite):
    """An aiohttp site on ``host:port`` that also serves h2c gRPC from the Unix socket
    ``grpc_path``.

    ``drain`` (the gRPC server's graceful stop) runs on :meth:`stop` after the listener is
    closed and before leftover connections are cut, so streams in flight can finish.
    """

    __slots__ = ("_host", "_port", "_grpc_path", "_drain", "_sniff_timeout", "_accept", "_conns")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        grpc_path: str,
        *,
        drain: Callable[[], Awaitable[None]] | None = None,
        backlog: int = 128,
        sniff_timeout: float = SNIFF_TIMEOUT,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host, self._port = host, port
        self._grpc_path = grpc_path
        self._drain = drain
        self._sniff_timeout = sniff_timeout
        self._accept: asyncio.Task[None] | None = None
        self._conns: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"http://{self._host or '0.0.0.0'}:{self._port} (+h2c gRPC)"

    async def start(self) -> None:
        await super().start()
        sock = listen(self._host, self._port, self._backlog)
        self._server = _Listener(sock)  # type: ignore[assignment]  # .sockets, .close()
        self._accept = asyncio.create_task(self._accept_loop(sock), name="http-port-split")

    async def stop(self) -> None:
        self._runner._check_site(self)  # noqa: SLF001 - BaseSite's own protocol
        if self._accept is not None:
            self._accept.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accept
        if self._server is not None:
            self._server.close()
        if self._drain is not None:
            await self._drain()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        self._runner._unreg_site(self)  # noqa: SLF001

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as e:  # e.g. out of file descriptors: back off, keep serving
                _log.error("cannot accept a connection", err=str(e))
                await asyncio.sleep(0.1)
                continue
            conn.setblocking(False)
            task = asyncio.create_task(self._route(conn))
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)

    async def _route(self, conn: socket.socket) -> None:
        try:
            h2 = await sniff(conn, self._sniff_timeout)
            if h2 is None:
                conn.close()
            elif h2:
                await self._proxy(conn)
            else:
                server = self._runner.server
                assert server is not None
                await asyncio.get_running_loop().connect_accepted_socket(server, conn)
        except OSError as e:
            _log.debug("connection dropped", err=str(e))
            conn.close()
        except asyncio.CancelledError:
            conn.close()
            raise

    async def _proxy(self, conn: socket.socket) -> None:
        """Relay an h2c connection to the gRPC server until either side closes."""
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self._grpc_path)
        except OSError as e:
            _log.error("cannot reach the internal gRPC server", err=str(e))
            conn.close()
            return
        reader, writer = await asyncio.open_connection(sock=conn)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()


class _Listener:
    """The listening socket as :class:`web.BaseSite` and ``runner.addresses`` see it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sockets: list[socket.socket] | None = [sock]

    def close(self) -> None:
        if self.sockets:
            self.sockets[0].close()
        self.sockets = None
