"""Long-polling clients: an Engine.IO v4 session and a revision 3 one (Socket.IO v2 clients),
both over aiohttp with exact packets in and out; and a blocking v4 Socket.IO session for servers
in other processes (every request on a new connection)."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from tests.clients.http import fetch_blocking
from tests.clients.wire import (
    TIMEOUT,
    Packet,
    binary_payload,
    eio_url,
    parse_binary_payload,
    parse_open,
    parse_text_payload,
    split_payload,
    text_payload,
)

TEXT_PLAIN = {"Content-Type": "text/plain;charset=UTF-8"}


def _timeout() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=TIMEOUT)


class Polling:
    """One Engine.IO v4 long-polling session (the official tests' eioHandshake, eioPush and
    eioPoll) driven through an aiohttp session."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base
        self.sid: str | None = None
        self.handshake: dict[str, Any] = {}

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, base: str) -> Polling:
        """The session after its handshake (``handshake`` holds the open packet's data)."""
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
        async with self.http.get(url, timeout=_timeout()) as r:
            return r.status, await r.text()

    async def get_response(self) -> tuple[int, dict[str, str], str]:
        async with self.http.get(self.url, timeout=_timeout()) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.text()

    async def post(self, body: str | bytes, **headers: str) -> tuple[int, str]:
        async with self.http.post(
            self.url,
            data=body.encode() if isinstance(body, str) else body,
            headers=headers or TEXT_PLAIN,
            timeout=_timeout(),
        ) as r:
            return r.status, await r.text()

    async def get_packets(self) -> list[str]:
        """The packets of the next GET (which must succeed)."""
        status, body = await self.get()
        assert status == 200, (status, body)
        return body.split("\x1e")

    async def poll_until_close(self, max_polls: int = 4) -> list[str]:
        """Poll until a close packet arrives; every packet but the noops, in order."""
        got: list[str] = []
        for _ in range(max_polls):
            got.extend(p for p in await self.get_packets() if p != "6")
            if got and got[-1] == "1":
                return got
        raise AssertionError(f"no close packet after {max_polls} polls: {got}")


class V3Polling:
    """One Engine.IO revision 3 long-polling session: length-prefixed text payloads (or XHR2
    binary ones), the packets that came with the handshake queued for :meth:`recv`."""

    def __init__(self, http: aiohttp.ClientSession, base: str, **query: str) -> None:
        self.http = http
        self.base = base
        self.query = {"EIO": "3", **query}
        self.sid: str | None = None
        self.handshake: dict[str, Any] = {}
        self.queue: list[Packet] = []

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, base: str, **query: str) -> V3Polling:
        p = cls(http, base, **query)
        status, _, packets = await p.get()
        assert status == 200, (status, packets)
        first = packets[0]
        assert isinstance(first, str) and first.startswith("0{"), packets
        p.handshake = orjson.loads(first[1:])
        p.sid = p.handshake["sid"]
        p.queue.extend(packets[1:])
        return p

    @property
    def url(self) -> str:
        return eio_url(self.base, "polling", self.sid, **self.query)

    async def get(self) -> tuple[int, dict[str, str], list[Packet]]:
        async with self.http.get(self.url, timeout=_timeout()) as r:
            body = await r.read()
            headers = {k.lower(): v for k, v in r.headers.items()}
        if r.status != 200:
            return r.status, headers, [body.decode()]
        if headers["content-type"] == "application/octet-stream":
            return r.status, headers, parse_binary_payload(body)
        assert headers["content-type"] == "text/plain; charset=UTF-8", headers
        return r.status, headers, parse_text_payload(body.decode())

    async def packets(self) -> list[Packet]:
        """The packets of the next GET (which must succeed)."""
        status, _, packets = await self.get()
        assert status == 200, (status, packets)
        return packets

    async def poll(self) -> list[Packet]:
        """:meth:`packets` without the noops."""
        return [p for p in await self.packets() if p != "6"]

    async def recv(self) -> Packet:
        """The next packet but noops (from the queue, then from GETs)."""
        while not self.queue:
            self.queue.extend(await self.poll())
        return self.queue.pop(0)

    async def post_raw(self, body: bytes, binary: bool = False) -> tuple[int, str]:
        ctype = "application/octet-stream" if binary else "text/plain;charset=UTF-8"
        async with self.http.post(
            self.url, data=body, headers={"Content-Type": ctype}, timeout=_timeout()
        ) as r:
            return r.status, await r.text()

    async def post(self, *packets: Packet, binary: bool = False) -> None:
        body = binary_payload(list(packets)) if binary else text_payload(list(packets))
        assert await self.post_raw(body, binary) == (200, "ok")


class BlockingPolling:
    """One Socket.IO session over v4 polling, joined to ``/``, with blocking requests each on a
    new TCP connection (for servers in other processes, where each goes through the parent)."""

    def __init__(self, base: str) -> None:
        self.base = base
        status, body = fetch_blocking(eio_url(base))
        assert status == 200, body
        self.sid: str = parse_open(body.decode())["sid"]
        self.url = eio_url(base, "polling", self.sid)
        assert fetch_blocking(self.url, b"40") == (200, b"ok")
        assert any(p.startswith("40{") for p in self.get()), "no CONNECT answer"
        self._ack = 0

    def get(self) -> list[str]:
        status, body = fetch_blocking(self.url)
        assert status == 200, body
        return split_payload(body)

    def call(self, event: str, *args: Any) -> Any:
        """Emit with an ack over the session; the ack's arguments."""
        self._ack += 1
        payload = orjson.dumps([event, *args]).decode()
        assert fetch_blocking(self.url, f"42{self._ack}{payload}".encode()) == (200, b"ok")
        prefix = f"43{self._ack}"
        for _ in range(5):
            for p in self.get():
                if p.startswith(prefix):
                    return orjson.loads(p[len(prefix):])
        raise AssertionError(f"no ack {self._ack}")
