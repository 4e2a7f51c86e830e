"""Jaeger agent UDP receivers: ``emitBatch`` datagrams in thrift compact
(``thrift_compact``, default ``localhost:6831``) or thrift binary (``thrift_binary``,
``localhost:6832``).

A datagram is one batch; it is pushed like any other request (no tenant header exists, so
with multi-tenancy on every datagram is refused and counted). Datagrams longer than
``max_packet_size``, and those arriving while ``queue_size`` are already waiting, are
dropped and counted — UDP has no way to tell the sender.
"""

from __future__ import annotations

import asyncio

from tempo_fast.config.model import JaegerUdpConfig
from tempo_fast.distributor.distributor import Distributor, Refused
from tempo_fast.pkg.log import get_logger
from tempo_fast.pkg.netaddr import parse_endpoint

RECEIVER = "jaeger"
_log = get_logger("jaeger-agent")


class JaegerAgentReceiver(asyncio.DatagramProtocol):
    """One UDP listener; ``compact`` picks the thrift protocol."""

    def __init__(self, distributor: Distributor, config: JaegerUdpConfig, compact: bool) -> None:
        self._distributor = distributor
        self._config = config
        self._encoding = "jaeger_thrift_compact" if compact else "jaeger_thrift_binary"
        self._transport_label = "udp_thrift_compact" if compact else "udp_thrift_binary"
        self.host, self.port = parse_endpoint(config.endpoint)
        self._queued = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> int:
        """Bind; return the bound port. Raises OSError when it cannot bind."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=(self.host or "0.0.0.0", self.port)
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self.port

    async def stop(self) -> None:
        """Stop receiving and wait for the datagrams already queued."""
        if self._transport is not None:
            self._transport.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if len(data) > self._config.max_packet_size:
            self._drop("too_large", f"datagram of {len(data)} bytes over max_packet_size")
            return
        if self._queued >= self._config.queue_size:
            self._drop("overloaded", f"{self._queued} datagrams queued (queue_size)")
            return
        self._queued += 1
        task = asyncio.create_task(self._push(data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def error_received(self, exc: Exception) -> None:
        _log.warn("UDP receive error", err=str(exc))

    def _drop(self, reason: str, message: str) -> None:
        self._distributor.refuse("invalid", reason, message)

    async def _push(self, data: bytes) -> None:
        try:
            await self._distributor.push_async(
                None,
                data,
                encoding=self._encoding,
                gzip=False,
                max_bytes=self._config.max_packet_size,
                transport=self._transport_label,
                receiver=RECEIVER,
            )
        except Refused:
            pass  # counted by the distributor; UDP cannot answer
        except Exception:  # noqa: BLE001 - one bad datagram must not stop the listener
            _log.error("jaeger agent push failed", exc=True)
        finally:
            self._queued -= 1
