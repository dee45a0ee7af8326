"""A raw Engine.IO client for the engine tests: long-polling over aiohttp, WebSocket over aiohttp,
and byte-level HTTP/WebSocket over plain asyncio streams (malformed requests, pipelining,
fragmented frames), plus a recorder that replaces the Socket.IO layer with an echo.

Nothing here knows fastsio's internals except :class:`EngineRecorder`, which hooks
``EngineServer.on_connection`` to see the sessions the server creates and why they close.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

EIO_PATH = "/socket.io/"
TIMEOUT = 5.0


# -- URLs ------------------------------------------------------------------------------------
def eio_url(base: str, transport: str = "polling", sid: str | None = None, **query: str) -> str:
    """``http://host:port/socket.io/?EIO=4&transport=...`` (``EIO=None`` drops the parameter)."""
    params: dict[str, str | None] = {"EIO": "4", "transport": transport}
    params.update(query)
    if sid is not None:
        params["sid"] = sid
    qs = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return f"{base}{EIO_PATH}?{qs}"


def ws_url(base: str, sid: str | None = None, **query: str) -> str:
    return eio_url(base.replace("http://", "ws://", 1), "websocket", sid, **query)


def host_port(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def parse_open(packet: str) -> dict[str, Any]:
    assert packet.startswith("0"), packet
    value: dict[str, Any] = orjson.loads(packet[1:])
    return value


# -- long-polling over aiohttp ----------------------------------------------------------------
class Polling:
    """One long-polling session driven through an aiohttp session."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base
        self.sid: str | None = None
        self.handshake: dict[str, Any] = {}

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, base: str) -> Polling:
        p = cls(http, base)
        status, body = await p.get(handshake=True)
        assert status == 200, (status, body)
        p.handshake = parse_open(body)
        p.sid = p.handshake["sid"]
        return p

    @property
    def url(self) -> str:
        return eio_url(self.base, "polling", self.sid)

    async def get(self, handshake: bool = False) -> tuple[int, str]:
        url = eio_url(self.base) if handshake else self.url
        async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as r:
            return r.status, await r.text()

    async def get_response(self) -> tuple[int, dict[str, str], str]:
        async with self.http.get(self.url, timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.text()

    async def post(self, body: str | bytes, **headers: str) -> tuple[int, str]:
        async with self.http.post(
            self.url,
            data=body.encode() if isinstance(body, str) else body,
            headers=headers or {"Content-Type": "text/plain;charset=UTF-8"},
            timeout=aiohttp.ClientTimeout(total=TIMEOUT),
        ) as r:
            return r.status, await r.text()

    async def get_packets(self) -> list[str]:
        status, body = await self.get()
        assert status == 200, (status, body)
        return body.split("\x1e")


async def json_error(r: aiohttp.ClientResponse) -> tuple[int, Any]:
    """Status and parsed JSON body of an error response."""
    assert r.headers.get("Content-Type") == "application/json", r.headers
    return r.status, orjson.loads(await r.read())


# -- WebSocket over aiohttp -------------------------------------------------------------------
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


# -- raw HTTP over asyncio streams ------------------------------------------------------------
@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return orjson.loads(self.body)


class RawConnection:
    """One TCP connection to the server, written and read byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, base: str) -> RawConnection:
        reader, writer = await asyncio.open_connection(*host_port(base))
        return cls(reader, writer)

    async def __aenter__(self) -> RawConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_head(self) -> Response:
        """Status line and headers of the next response (the body is left unread)."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        return Response(status, headers)

    async def read_response(self) -> Response:
        r = await self.read_head()
        length = int(r.headers.get("content-length", "0"))
        if length:
            r.body = await asyncio.wait_for(self.reader.readexactly(length), TIMEOUT)
        return r

    async def at_eof(self, timeout: float = TIMEOUT) -> bool:
        """True when the server closed the connection (after any unread bytes)."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
        return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionResetError, BrokenPipeError):
            pass


def request(
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    host: str = "127.0.0.1",
) -> bytes:
    """One HTTP/1.1 request; adds Host and (for a body) Content-Length unless given."""
    all_headers = {"Host": host}
    if body and not any(
        k.lower() in ("content-length", "transfer-encoding") for k in headers or {}
    ):
        all_headers["Content-Length"] = str(len(body))
    all_headers.update(headers or {})
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in all_headers.items()
    )
    return (head + "\r\n").encode("latin-1") + body


def eio_target(transport: str = "polling", sid: str | None = None, **query: str) -> str:
    return eio_url("", transport, sid, **query)


# -- raw WebSocket over asyncio streams -------------------------------------------------------
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def ws_upgrade_request(target: str, connection: str = "Upgrade") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return request(
        "GET",
        target,
        {
            "Connection": connection,
            "Upgrade": "websocket",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
        },
    )


def ws_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head.append(0x80 | n)
    elif n < 65536:
        head.append(0x80 | 126)
        head += struct.pack("!H", n)
    else:
        head.append(0x80 | 127)
        head += struct.pack("!Q", n)
    mask = os.urandom(4)
    head += mask
    masked = (
        bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else _mask(payload, mask)
    )
    return bytes(head) + masked


def _mask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


class RawWebSocket(RawConnection):
    """A WebSocket client over a raw connection: full control of the frames it sends."""

    async def upgrade(self, target: str, connection: str = "Upgrade") -> Response:
        self.write(ws_upgrade_request(target, connection))
        return await self.read_head()

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.write(ws_frame(opcode, payload, fin))

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode())

    async def recv_frame(self) -> tuple[int, bytes]:
        """``(opcode, payload)`` of the next server frame; ``(-1, b"")`` at EOF."""
        try:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await asyncio.wait_for(self.reader.readexactly(n), TIMEOUT)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return -1, b""
        return b0 & 0x0F, payload

    async def recv_text(self) -> str:
        while True:
            op, payload = await self.recv_frame()
            assert op in (OP_TEXT, OP_PING, OP_PONG), (op, payload)
            if op == OP_TEXT:
                return payload.decode()

    async def recv_until_close(self) -> list[tuple[int, bytes]]:
        """Frames up to and including the close frame (or EOF, as ``(-1, b"")``)."""
        frames = []
        while True:
            op, payload = await self.recv_frame()
            frames.append((op, payload))
            if op in (OP_CLOSE, -1):
                return frames


# -- the official protocol suites' client ------------------------------------------------------
class SuiteClient:
    """The two primitives of the official protocol test suites (socket.io's
    ``docs/engine.io-protocol/v4-test-suite`` and ``docs/socket.io-protocol/v5-test-suite``):
    ``fetch`` and a WebSocket, both on ``{base}{path}/?{query}``."""

    def __init__(self, http: aiohttp.ClientSession, base: str, path: str) -> None:
        self.http = http
        self.base = base
        self.path = path

    def url(self, query: str) -> str:
        return f"{self.base}{self.path}/?{query}"

    async def fetch(
        self, query: str, method: str = "GET", body: str | None = None
    ) -> tuple[int, str]:
        """Status and body of one request (a body is sent as text, as fetch sends a string)."""
        data = None if body is None else body.encode()
        headers = None if body is None else {"Content-Type": "text/plain;charset=UTF-8"}
        async with self.http.request(
            method, self.url(query), data=data, headers=headers,
            timeout=aiohttp.ClientTimeout(total=TIMEOUT),
        ) as r:
            return r.status, await r.text()

    async def websocket(self, query: str) -> aiohttp.ClientWebSocketResponse:
        """A WebSocket once open (after the ``101``); raises ``aiohttp.WSServerHandshakeError``
        when the server answers the upgrade request with anything else."""
        url = self.url(query).replace("http://", "ws://", 1)
        return await self.http.ws_connect(
            url, autoping=True, timeout=aiohttp.ClientWSTimeout(ws_close=1.0)
        )

    async def init_long_polling_session(self) -> str:
        status, body = await self.fetch("EIO=4&transport=polling")
        assert status == 200, (status, body)
        sid: str = parse_open(body)["sid"]
        return sid


# -- the engine side --------------------------------------------------------------------------
class EngineRecorder:
    """Takes the place of the Socket.IO layer on ``io.engine``: records every Engine.IO session,
    the messages it got and why it closed; echoes every message back when ``echo`` is true."""

    def __init__(self, io: Any, echo: bool = True) -> None:
        self.echo = echo
        self.sockets: dict[str, Any] = {}
        self.messages: dict[str, list[tuple[bytes, bool]]] = {}
        self.closed: dict[str, tuple[str, str | None]] = {}
        self.engine = io.engine
        io.engine.on_connection = self._on_connection

    def _on_connection(self, sock: Any) -> None:
        sid = sock.sid
        self.sockets[sid] = sock
        self.messages[sid] = []

        def on_message(data: bytes, binary: bool) -> None:
            self.messages[sid].append((data, binary))
            if self.echo:
                sock.send_packets([(data, binary)])

        def on_close(reason: str, description: str | None) -> None:
            self.closed[sid] = (reason, description)

        sock.on_message = on_message
        sock.on_close = on_close

    async def wait_closed(self, sid: str, timeout: float = TIMEOUT) -> str:
        """The close reason of session ``sid`` once it closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while sid not in self.closed:
            if loop.time() > deadline:
                raise AssertionError(f"session {sid} still open")
            await asyncio.sleep(0.01)
        return self.closed[sid][0]
