"""A fault-injecting HTTP proxy on loopback, in front of a real S3 server (moto).

It forwards every request unchanged (the Host header too, so SigV4 signatures stay valid)
and records ``(method, path, status)``; status -1 marks a dropped connection. Faults are
queued and taken in order by the requests they match:

- :meth:`FaultProxy.fail`: answer with an S3 error (503 SlowDown, 500 InternalError …)
- :meth:`FaultProxy.delay`: hold the response back (past a client's read timeout)
- :meth:`FaultProxy.drop`: close the connection half-way through the response body (or
  before any response, when there is no body), with a TCP reset
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Match = Callable[[str, str], bool]  # (method, path) -> applies?

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}
_CODES = {500: "InternalError", 503: "SlowDown", 502: "BadGateway", 429: "SlowDown"}


@dataclass
class Fault:
    kind: Literal["status", "delay", "drop"]
    count: int
    match: Match | None = None
    status: int = 503
    seconds: float = 0.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int  # -1: the connection was dropped


class FaultProxy:
    """Threaded HTTP/1.1 proxy to ``upstream`` (host, port) on 127.0.0.1:<free port>."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.log: list[Request] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, n: int, status: int = 503, match: Match | None = None) -> None:
        """Answer the next ``n`` matching requests with ``status``."""
        self._add(Fault("status", n, match, status=status))

    def delay(self, n: int, seconds: float, match: Match | None = None) -> None:
        """Hold the next ``n`` matching responses back ``seconds``."""
        self._add(Fault("delay", n, match, seconds=seconds))

    def drop(self, n: int, match: Match | None = None) -> None:
        """Reset the connection of the next ``n`` matching requests mid-response."""
        self._add(Fault("drop", n, match))

    def reset(self) -> None:
        """Forget queued faults and the request log."""
        with self._lock:
            self._faults.clear()
            self.log.clear()

    def pending(self) -> int:
        """Faults not yet used up."""
        with self._lock:
            return sum(f.count for f in self._faults)

    def requests(self, method: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.log if method is None or r.method == method]

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.count > 0 and (f.match is None or f.match(method, path)):
                    f.count -= 1
                    return f
            return None

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.log.append(Request(method, path, status))


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0), as a crashed peer would."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _serve(self) -> None:
        try:
            self._handle()
        except OSError:  # the client went away (it timed out, or we reset it)
            self.close_connection = True

    def _handle(self) -> None:
        # Each request is logged before its response goes out, so the log orders a request
        # after every request whose response the client had when it sent it.
        body = self._body()
        proxy, method, path = self.owner, self.command, self.path
        fault = proxy._take(method, path)
        if fault and fault.kind == "status":
            code = _CODES.get(fault.status, "InternalError")
            payload = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>injected fault</Message></Error>"
            ).encode()
            proxy._record(method, path, fault.status)
            self._respond(fault.status, None, [("Content-Type", "application/xml")], payload)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body or method in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError:  # upstream is down: the client sees a reset connection
            proxy._record(method, path, -1)
            self._reset()
            return
        finally:
            conn.close()
        if fault and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault and fault.kind == "drop":
            proxy._record(method, path, -1)
            if data and method != "HEAD":
                self._respond(resp.status, resp.reason, resp.getheaders(), data, cut=True)
            self._reset()
            return
        proxy._record(method, path, resp.status)
        self._respond(resp.status, resp.reason, resp.getheaders(), data)

    def _respond(
        self,
        status: int,
        reason: str | None,
        headers: list[tuple[str, str]],
        data: bytes,
        cut: bool = False,
    ) -> None:
        """Send a response; ``cut`` sends only half the body (the caller then resets)."""
        self.send_response(status, reason)
        for k, v in headers:
            if k.lower() not in _HOP_BY_HOP | {"content-length", "server", "date"}:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data[: len(data) // 2] if cut else data)
            self.wfile.flush()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve
