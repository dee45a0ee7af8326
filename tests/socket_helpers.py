"""Clients for the Socket.IO layer tests (socket, socket_timeout, middleware, socket_middleware).

``ClientPool`` hands out python-socketio ``AsyncClient``s and :class:`RawClient`s (one Engine.IO
WebSocket session driven by hand, for exact bytes or what python-socketio cannot do: not
acknowledging, sending malformed packets, acknowledging late) and closes them all at the end.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import socketio

TIMEOUT = 5.0


def ws_url(url: str, query: str = "") -> str:
    extra = f"&{query}" if query else ""
    return url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket" + extra


def nsp_prefix(nsp: str) -> str:
    """How a namespace is written in a packet: nothing for ``/``, ``/name,`` otherwise."""
    return "" if nsp == "/" else nsp + ","


class RawClient:
    """One Engine.IO WebSocket session. ``send`` writes an Engine.IO packet as is (``42[...]``
    is a Socket.IO EVENT), ``send_bytes`` a binary attachment; ``recv`` returns the next text
    (``str``) or binary (``bytes``) message, answering and skipping heartbeats."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.sids: dict[str, str] = {}

    @classmethod
    async def open(cls, url: str, query: str = "", **headers: str) -> RawClient:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(ws_url(url, query), headers=headers or None)
        except BaseException:
            await session.close()
            raise
        raw = cls(session, ws)
        opened = await raw.recv()
        assert isinstance(opened, str) and opened.startswith("0{"), opened
        return raw

    @property
    def sid(self) -> str:
        return self.sids["/"]

    async def connect(self, nsp: str = "/", auth: Any = None) -> str:
        """Join ``nsp``; returns the socket id (fails on CONNECT_ERROR)."""
        reply = await self.try_connect(nsp, auth)
        prefix = "40" + nsp_prefix(nsp)
        assert reply.startswith(prefix + "{"), reply
        sid: str = json.loads(reply[len(prefix):])["sid"]
        self.sids[nsp] = sid
        return sid

    async def try_connect(self, nsp: str = "/", auth: Any = None) -> str:
        """Send CONNECT for ``nsp`` and return the server's reply (CONNECT or CONNECT_ERROR)."""
        payload = "" if auth is None else json.dumps(auth)
        await self.send("40" + nsp_prefix(nsp) + payload)
        reply = await self.recv()
        assert isinstance(reply, str), reply
        return reply

    async def send(self, text: str) -> None:
        await self.ws.send_str(text)

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def recv(self, timeout: float = TIMEOUT) -> str | bytes:
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "2":
                    await self.ws.send_str("3")
                    continue
                return str(msg.data)
            if msg.type == aiohttp.WSMsgType.BINARY:
                return bytes(msg.data)
            raise ConnectionError(f"connection closed: {msg.type}")

    async def recv_text(self, timeout: float = TIMEOUT) -> str:
        got = await self.recv(timeout)
        assert isinstance(got, str), got
        return got

    async def silent(self, timeout: float) -> bool:
        """True when nothing but heartbeats arrives for ``timeout`` seconds."""
        try:
            got = await self.recv(timeout)
        except asyncio.TimeoutError:
            return True
        raise AssertionError(f"unexpected message: {got!r}")

    async def closed(self, timeout: float = TIMEOUT) -> list[str | bytes]:
        """Wait for the server to close the connection; returns what arrived before."""
        got: list[str | bytes] = []
        while True:
            try:
                got.append(await self.recv(timeout))
            except ConnectionError:
                return got

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


class ClientPool:
    """Every client a test opens, closed when the test ends."""

    def __init__(self) -> None:
        self._sio: list[socketio.AsyncClient] = []
        self._raw: list[RawClient] = []

    def new(self, **options: Any) -> socketio.AsyncClient:
        """An unconnected python-socketio client (no reconnection unless asked)."""
        options.setdefault("reconnection", False)
        options.setdefault("handle_sigint", False)
        client = socketio.AsyncClient(**options)
        self._sio.append(client)
        return client

    async def connect(
        self,
        url: str,
        client: socketio.AsyncClient | None = None,
        *,
        transports: tuple[str, ...] | list[str] = ("websocket",),
        **connect_options: Any,
    ) -> socketio.AsyncClient:
        """Connect ``client`` (a new one when omitted), over WebSocket only by default."""
        if client is None:
            client = self.new()
        connect_options.setdefault("wait_timeout", TIMEOUT)
        await client.connect(url, transports=list(transports), **connect_options)
        return client

    async def raw(self, url: str, nsp: str | None = "/", query: str = "", **headers: str
                  ) -> RawClient:
        """A raw client, joined to ``nsp`` unless it is ``None``."""
        raw = await RawClient.open(url, query, **headers)
        self._raw.append(raw)
        if nsp is not None:
            await raw.connect(nsp)
        return raw

    async def close(self) -> None:
        for client in self._sio:
            try:
                await asyncio.wait_for(client.disconnect(), TIMEOUT)
            except Exception:
                pass
        for raw in self._raw:
            await raw.close()
