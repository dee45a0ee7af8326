"""Helpers for the handshake, close, utility-methods, server-attachment and v2-compatibility
tests: plain HTTP through aiohttp (nothing decompressed behind the test's back) and
python-socketio clients that are always disconnected when the test ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import socketio
from multidict import CIMultiDictProxy

TIMEOUT = aiohttp.ClientTimeout(total=5)


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


async def fetch(
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: bytes | str | None = None,
) -> Reply:
    """One request on a fresh connection; the body exactly as it came (no decompression), and
    no ``Accept-Encoding`` unless the test sends one."""
    async with aiohttp.ClientSession(
        auto_decompress=False, skip_auto_headers=("Accept-Encoding",)
    ) as http:
        async with http.request(
            method, url, headers=headers, data=data, timeout=TIMEOUT, allow_redirects=False
        ) as r:
            return Reply(r.status, r.headers, await r.read())


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


Connect = Callable[..., Awaitable[socketio.AsyncClient]]


@asynccontextmanager
async def sio_clients() -> AsyncIterator[Connect]:
    """``connect(url, **connect_kwargs)`` makes a python-socketio client (no reconnection)
    and connects it; every client is disconnected and its HTTP session closed at the end."""
    made: list[socketio.AsyncClient] = []
    http = aiohttp.ClientSession()

    async def connect(
        url: str, *, handlers: dict[str, Callable[..., Any]] | None = None, **kwargs: Any
    ) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False, http_session=http, handle_sigint=False)
        for event, fn in (handlers or {}).items():
            client.on(event, fn)
        made.append(client)
        kwargs.setdefault("wait_timeout", 5)
        await client.connect(url, **kwargs)
        return client

    try:
        yield connect
    finally:
        for client in made:
            try:
                await asyncio.wait_for(client.disconnect(), 5)
            except (asyncio.TimeoutError, aiohttp.ClientError, OSError):
                pass
        await http.close()


class EioPolling:
    """A bare Engine.IO v4 long-polling session (the official tests' eioHandshake, eioPush and
    eioPoll): exact packets in and out, no Socket.IO client in between."""

    def __init__(self, http: aiohttp.ClientSession, url: str, eio: str = "4") -> None:
        self.http = http
        self.url = url
        self.eio = eio
        self.sid = ""
        self.open: dict[str, Any] = {}

    def _url(self, sid: bool = True) -> str:
        q = f"?EIO={self.eio}&transport=polling"
        if sid:
            q += f"&sid={self.sid}"
        return f"{self.url}/socket.io/{q}"

    async def handshake(self) -> list[str]:
        """GET without a sid; returns the packets of the answer (the open packet first)."""
        async with self.http.get(self._url(sid=False), timeout=TIMEOUT) as r:
            assert r.status == 200, (r.status, await r.text())
            packets = (await r.text()).split("\x1e")
        assert packets[0].startswith("0{"), packets
        self.open = orjson.loads(packets[0][1:])
        self.sid = self.open["sid"]
        return packets

    async def push(self, body: str) -> int:
        async with self.http.post(
            self._url(),
            data=body.encode(),
            headers={"Content-Type": "text/plain;charset=UTF-8"},
            timeout=TIMEOUT,
        ) as r:
            await r.read()
            return r.status

    async def poll_raw(self) -> tuple[int, str]:
        async with self.http.get(self._url(), timeout=TIMEOUT) as r:
            return r.status, await r.text()

    async def poll(self) -> list[str]:
        status, body = await self.poll_raw()
        assert status == 200, (status, body)
        return body.split("\x1e")

    async def poll_until_close(self, max_polls: int = 4) -> list[str]:
        """Poll until a close packet arrives; every packet but the noops, in order."""
        got: list[str] = []
        for _ in range(max_polls):
            got.extend(p for p in await self.poll() if p != "6")
            if got and got[-1] == "1":
                return got
        raise AssertionError(f"no close packet after {max_polls} polls: {got}")
