"""HTTP clients: one request through aiohttp exactly as it came back (no decompression), a
connection written and read byte by byte over asyncio streams (malformed requests, pipelining),
the official protocol suites' ``fetch``, and blocking ones for servers in other processes."""

from __future__ import annotations

import asyncio
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from tests.clients.wire import TIMEOUT, eio_target, host_port, parse_open, request


# -- through aiohttp --------------------------------------------------------------------------
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
            method, url, headers=headers, data=data,
            timeout=aiohttp.ClientTimeout(total=TIMEOUT), allow_redirects=False,
        ) as r:
            return Reply(r.status, r.headers, await r.read())


async def json_error(r: aiohttp.ClientResponse) -> tuple[int, Any]:
    """Status and parsed JSON body of an error response."""
    assert r.headers.get("Content-Type") == "application/json", r.headers
    return r.status, orjson.loads(await r.read())


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


# -- byte level, over asyncio streams -----------------------------------------------------------
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


async def read_head(reader: asyncio.StreamReader, timeout: float) -> bytes | None:
    """A response head as it came; ``b""`` at EOF before one (or the partial head);
    ``None`` when nothing complete came in time. What follows the head stays in ``reader``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return None
        if not chunk:
            return b"" if not buf else buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    reader._buffer[:0] = rest  # type: ignore[attr-defined]  # give the rest back
    return head + b"\r\n\r\n"


async def read_response(reader: asyncio.StreamReader, timeout: float = TIMEOUT
                        ) -> tuple[int, bytes]:
    """Status and body (by its ``Content-Length``) of the next response; ``ConnectionError``
    when the connection ends or nothing comes in time."""
    head = await read_head(reader, timeout)
    if not head:
        raise ConnectionError("no response")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    length = int(m.group(1)) if m else 0
    body = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
    return status, body


class RawConnection:
    """One TCP connection to the server, written and read byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, base: str) -> Any:
        reader, writer = await asyncio.open_connection(*host_port(base))
        return cls(reader, writer)

    async def __aenter__(self) -> Any:
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

    async def polling_handshake(self) -> str:
        """An Engine.IO v4 polling handshake on this connection; the session id."""
        self.write(request("GET", eio_target()))
        r = await self.read_response()
        assert r.status == 200, (r.status, r.body)
        sid: str = parse_open(r.text)["sid"]
        return sid

    async def polling_join(self) -> str:
        """The handshake, then CONNECT to ``/`` and its answer (keep-alive on this one
        connection); the Engine.IO session id."""
        sid = await self.polling_handshake()
        self.write(request("POST", eio_target(sid=sid), body=b"40"))
        assert (await self.read_response()).status == 200
        self.write(request("GET", eio_target(sid=sid)))
        assert (await self.read_response()).text.startswith("40{")
        return sid

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


# -- blocking, for servers in other processes ----------------------------------------------------
def fetch_blocking(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One request on its own TCP connection (urllib closes it); a POST when there is a body."""
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class KeepAlive:
    """One blocking keep-alive TCP connection carrying whatever requests the test writes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        self.sock.sendall(request(method, target, body=body))
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert not any(line.lower() == "connection: close" for line in lines), lines
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length:")
        )
        while len(self.buf) < length:
            self._more()
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(lines[0].split()[1]), body

    def _more(self) -> None:
        data = self.sock.recv(65536)
        assert data, "connection closed"
        self.buf += data

    def close(self) -> None:
        self.sock.close()
