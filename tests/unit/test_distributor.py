"""The distributor's bound on request bytes in flight."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tempo_fast.distributor.distributor import Distributor, Refused
from tempo_fast.pkg.metrics import Metrics
from tests.unit.fakes import FakePushResult


class BlockingIngester:
    """Holds every push until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def push(self, tenant, body, encoding="protobuf", gzip=False, max_bytes=0):  # noqa: ANN001, ANN201
        self.release.wait(10)
        return FakePushResult(len(body), 0, 0, "", b"", b"")

    def try_push(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return None  # always "would wait": every push goes through the pool


def test_pushes_past_the_inflight_bound_are_refused_at_once() -> None:
    ingester = BlockingIngester()
    metrics = Metrics()
    d = Distributor(ingester, metrics, multitenancy=False, max_inflight_bytes=10)
    kw = {"encoding": "protobuf", "gzip": False, "max_bytes": 100, "transport": "http"}

    async def scenario() -> None:
        first = asyncio.create_task(d.push_async(None, b"x" * 8, **kw))
        await asyncio.sleep(0.05)
        with pytest.raises(Refused) as info:
            await d.push_async(None, b"y" * 8, **kw)
        assert info.value.kind == "overloaded"
        assert "retry later" in info.value.message
        ingester.release.set()
        assert (await first).accepted == 8
        # room again; a single request larger than the bound still goes through alone
        assert (await d.push_async(None, b"z" * 50, **kw)).accepted == 50

    asyncio.run(scenario())
    d.close()
    text = metrics.exposition().decode()
    assert 'tempo_distributor_requests_refused_total{reason="overloaded"} 1.0' in text


class InlineIngester:
    """Takes small pushes on the caller's thread; records which thread ran each."""

    def __init__(self) -> None:
        self.threads: list[tuple[str, str]] = []

    def push(self, tenant, body, encoding="protobuf", gzip=False, max_bytes=0):  # noqa: ANN001, ANN201
        self.threads.append(("push", threading.current_thread().name))
        return FakePushResult(len(body), 0, 0, "", b"", b"")

    def try_push(self, tenant, body, encoding="protobuf", gzip=False, max_bytes=0):  # noqa: ANN001, ANN201
        if body.startswith(b"WAIT"):
            return None
        self.threads.append(("try_push", threading.current_thread().name))
        return FakePushResult(len(body), 0, 0, "", b"", b"")


def test_small_bodies_are_pushed_on_the_loop_thread() -> None:
    ingester = InlineIngester()
    d = Distributor(ingester, Metrics(), multitenancy=False, inline_max_bytes=16)
    kw = {"encoding": "protobuf", "max_bytes": 100, "transport": "http"}

    async def scenario() -> str:
        await d.push_async(None, b"small", gzip=False, **kw)
        await d.push_async(None, b"x" * 17, gzip=False, **kw)  # too big: the pool
        await d.push_async(None, b"small", gzip=True, **kw)  # gzip: the pool
        await d.push_async(None, b"WAIT", gzip=False, **kw)  # would wait: the pool
        return threading.current_thread().name

    loop_thread = asyncio.run(scenario())
    d.close()
    assert ingester.threads[0] == ("try_push", loop_thread)
    assert [call for call, _ in ingester.threads[1:]] == ["push", "push", "push"]
    assert all(thread != loop_thread for _, thread in ingester.threads[1:])
