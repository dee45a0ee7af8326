"""The recovering client: a raw Socket.IO client over a real WebSocket that does what a real
client does for connection state recovery (remembers ``pid`` and the last offset it got, sends
them back with its next CONNECT), and records every packet as the server sent it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.clients.wire import TIMEOUT, nsp_prefix, ws_url


class RecoveringClient:
    """What a real client does: remembers ``pid`` and the last offset, sends them back."""

    def __init__(self, url: str, nsp: str = "/") -> None:
        self.url = ws_url(url)
        self.nsp = nsp
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.sid: str | None = None
        self.pid: str | None = None
        self.offset: str | None = None
        self.events: list[list[Any]] = []  # every event received, offsets stripped
        self.raw: list[str] = []  # every Socket.IO packet received, as sent
        self.connect_reply: dict[str, Any] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    def _prefix(self) -> str:
        return nsp_prefix(self.nsp)

    async def connect(self, auth: dict[str, Any] | None = None, send_offset: bool = True) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        self._connected = asyncio.Event()
        self.ws = await self.session.ws_connect(self.url)
        opened = await self.ws.receive(timeout=TIMEOUT)
        assert str(opened.data).startswith("0{")
        payload: dict[str, Any] = dict(auth or {})
        if self.pid is not None:
            payload["pid"] = self.pid
            if send_offset and self.offset is not None:
                payload["offset"] = self.offset
        await self.ws.send_str("40" + self._prefix() + json.dumps(payload))
        self._reader = asyncio.ensure_future(self._read(self.ws))
        await asyncio.wait_for(self._connected.wait(), TIMEOUT)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            text = str(msg.data)
            if text == "2":
                await ws.send_str("3")
                continue
            body = text[1:]
            self.raw.append(body)
            if body.startswith("0" + self._prefix()):
                self.connect_reply = json.loads(body[1 + len(self._prefix()):])
                self.sid = self.connect_reply["sid"]
                self.pid = self.connect_reply.get("pid")
                self._connected.set()
            elif body.startswith("2" + self._prefix()):
                data = json.loads(body[1 + len(self._prefix()):].lstrip("0123456789"))
                if self.pid is not None and len(data) > 1 and isinstance(data[-1], str):
                    self.offset = data.pop()
                self.events.append(data)

    async def drop(self) -> None:
        """Lose the connection without saying goodbye (what a network failure looks like)."""
        assert self.ws is not None
        await self.ws.close()
        if self._reader is not None:
            await self._reader

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader
        if self.session is not None:
            await self.session.close()
