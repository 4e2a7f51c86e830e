"""A tiny blocking HTTP client for tests (aiohttp on a private event loop)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def request(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Reply:
    async def go() -> Reply:
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(
                method, url, data=body, headers=headers or {}, skip_auto_headers=["Content-Type"]
            ) as resp,
        ):
            return Reply(resp.status, dict(resp.headers), await resp.read())

    return asyncio.run(go())
