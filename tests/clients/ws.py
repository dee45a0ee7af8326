"""WebSocket clients: aiohttp's (for whole messages) and a byte-level one over a raw connection
(every frame the test sends is its own: fragments, bad opcodes, lying lengths), with the reader
of the server's frames both share."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.clients.http import RawConnection, Response
from tests.clients.wire import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    TIMEOUT,
    eio_target,
    host_port,
    parse_open,
    ws_frame,
    ws_upgrade_request,
    ws_url,
)


# -- aiohttp's WebSocket ----------------------------------------------------------------------
async def ws_receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = TIMEOUT) -> Any:
    """The next text (str) or binary (bytes) message; ``None`` when the connection closed."""
    msg = await ws.receive(timeout)
    if msg.type == aiohttp.WSMsgType.TEXT or msg.type == aiohttp.WSMsgType.BINARY:
        return msg.data
    assert msg.type in (
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSING,
        aiohttp.WSMsgType.CLOSED,
        aiohttp.WSMsgType.ERROR,
    ), msg
    return None


async def ws_wait_closed(
    ws: aiohttp.ClientWebSocketResponse, timeout: float = TIMEOUT
) -> list[Any]:
    """Read until the server closes the connection; returns what arrived before the close."""
    got = []
    while True:
        data = await ws_receive(ws, timeout)
        if data is None:
            return got
        got.append(data)


async def ws_open(
    http: aiohttp.ClientSession, base: str, **query: str
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """A WebSocket session from its handshake: the connection and the open packet's data."""
    ws = await http.ws_connect(
        ws_url(base, **query), autoping=True, timeout=aiohttp.ClientWSTimeout(ws_close=1.0)
    )
    first = await ws_receive(ws)
    assert isinstance(first, str), first
    return ws, parse_open(first)


# -- byte level -------------------------------------------------------------------------------
class FrameReader:
    """The server's frames (unmasked) from a stream."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    async def frame(self, timeout: float = TIMEOUT) -> tuple[int, bytes] | None:
        """``(opcode, payload)``; ``(-1, b"")`` at EOF; ``None`` when nothing came in time."""
        try:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        except asyncio.TimeoutError:
            return None
        except (asyncio.IncompleteReadError, ConnectionError):
            return -1, b""
        n = b1 & 0x7F
        try:
            if n == 126:
                n = struct.unpack("!H", await asyncio.wait_for(self.reader.readexactly(2),
                                                               TIMEOUT))[0]
            elif n == 127:
                n = struct.unpack("!Q", await asyncio.wait_for(self.reader.readexactly(8),
                                                               TIMEOUT))[0]
            payload = await asyncio.wait_for(self.reader.readexactly(n), TIMEOUT)
        except (asyncio.IncompleteReadError, ConnectionError):
            return -1, b""
        return b0 & 0x0F, payload

    async def text(self, timeout: float = TIMEOUT) -> str | None:
        """The next text message but pings (``2``); ``None`` at a close, EOF or timeout."""
        while True:
            f = await self.frame(timeout)
            if f is None or f[0] in (-1, OP_CLOSE):
                return None
            if f[0] == OP_TEXT:
                text = f[1].decode()
                if text != "2":
                    return text

    async def wait_for_text(self, match: Callable[[str], bool], timeout: float) -> str:
        """``answered``, ``closed`` (close frame or EOF) or ``pending`` (neither in time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            f = await self.frame(max(0.0, deadline - loop.time()))
            if f is None:
                return "pending"
            if f[0] in (-1, OP_CLOSE):
                return "closed"
            if f[0] == OP_TEXT and match(f[1].decode("utf-8", "replace")):
                return "answered"


class RawWebSocket(RawConnection):
    """A WebSocket client over a raw connection: full control of the frames it sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.frames = FrameReader(reader)

    async def upgrade(self, target: str, connection: str = "Upgrade") -> Response:
        self.write(ws_upgrade_request(target, connection))
        return await self.read_head()

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.write(ws_frame(opcode, payload, fin))

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode())

    async def recv_frame(self) -> tuple[int, bytes]:
        """``(opcode, payload)`` of the next server frame; ``(-1, b"")`` at EOF."""
        got = await self.frames.frame(TIMEOUT)
        if got is None:
            raise asyncio.TimeoutError("no frame from the server")
        return got

    async def recv_text(self) -> str:
        while True:
            op, payload = await self.recv_frame()
            assert op in (OP_TEXT, OP_PING, OP_PONG), (op, payload)
            if op == OP_TEXT:
                return payload.decode()

    async def handshake(self, target: str | None = None) -> str:
        """Upgrade (``101`` required) and read the open packet, which is returned."""
        assert (await self.upgrade(target or eio_target("websocket"))).status == 101
        return await self.recv_text()

    async def join(self) -> None:
        """The handshake, then CONNECT to ``/`` and its answer (pings skipped, unanswered)."""
        await self.handshake()
        self.send_text("40")
        while (reply := await self.recv_text()) == "2":
            pass
        assert reply.startswith("40{"), reply

    async def recv_until_close(self) -> list[tuple[int, bytes]]:
        """Frames up to and including the close frame (or EOF, as ``(-1, b"")``)."""
        frames = []
        while True:
            op, payload = await self.recv_frame()
            frames.append((op, payload))
            if op in (OP_CLOSE, -1):
                return frames


async def stalled_client(url: str) -> tuple[asyncio.StreamWriter, socket.socket]:
    """A Socket.IO client over a tiny receive buffer that stops reading after connecting."""
    host, port = host_port(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(ws_upgrade_request(eio_target("websocket"), host=host))
    await reader.readuntil(b"\r\n\r\n")
    await reader.read(2)  # the start of the open packet's frame is enough
    writer.write(ws_frame(OP_TEXT, b"40"))
    await writer.drain()
    return writer, sock
