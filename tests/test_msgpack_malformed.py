"""Malformed input to a ``Server(parser="msgpack")`` from raw-protocol clients: not a map, wrong
types, truncated, absurd lengths, too deep, too many arguments, text messages, events before
CONNECT. Each closes that connection only ("forced close" on the server's socket, as the official
server's ``client.onerror`` does), over WebSocket and long-polling; the other clients go on."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import msgpack
import pytest

from tests.clients.loops import wait_for
from tests.clients.polling import Polling
from tests.clients.ws import ws_open, ws_receive, ws_wait_closed

TIMEOUT = 5
HEAD = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data"

BAD = {
    "not-a-map": msgpack.packb([2, "/", ["x"]]),
    "a-string": msgpack.packb("42"),
    "type-is-a-string": msgpack.packb({"type": "2", "nsp": "/", "data": ["x"]}),
    "binary-type": msgpack.packb({"type": 5, "nsp": "/", "data": ["x"]}),
    "nsp-not-a-string": msgpack.packb({"type": 2, "nsp": None, "data": ["x"]}),
    "data-not-a-list": msgpack.packb({"type": 2, "nsp": "/", "data": {"x": 1}}),
    "id-not-an-int": msgpack.packb({"type": 2, "nsp": "/", "data": ["x"], "id": "1"}),
    "reserved-event": msgpack.packb({"type": 2, "nsp": "/", "data": ["disconnect"]}),
    "truncated": msgpack.packb({"type": 2, "nsp": "/", "data": ["x", "y" * 50]})[:-10],
    "trailing-bytes": msgpack.packb({"type": 2, "nsp": "/", "data": ["x"]}) + b"\x00",
    "huge-array-claim": HEAD + b"\xdd\xff\xff\xff\xff",
    "huge-bin-claim": HEAD + b"\x92\xa1x\xc6\xff\xff\xff\xff",
    "too-deep": HEAD + b"\x92\xa1x" + b"\x91" * 100_000 + b"\xc0",
    "too-many-args": msgpack.packb({"type": 2, "nsp": "/", "data": ["x", *range(300)]}),
    "never-used-byte": HEAD + b"\x91\xc1",
    "empty": b"",
}


async def connected_ws(http, url):
    """A raw WebSocket session that joined "/" with a msgpack CONNECT."""
    ws, _ = await ws_open(http, url)
    await ws.send_bytes(msgpack.packb({"type": 0, "nsp": "/"}))
    reply = await ws_receive(ws)
    assert isinstance(reply, bytes), reply
    fields = msgpack.unpackb(reply)
    assert fields["type"] == 0 and isinstance(fields["data"]["sid"], str)
    return ws


async def msgpack_server(make_server):
    io, url = await make_server(parser="msgpack")
    reasons: asyncio.Queue[str] = asyncio.Queue()
    io.on("disconnect", lambda sock, reason: reasons.put_nowait(reason))

    @io.on("echo")
    def echo(socket, *args):
        return args

    return io, url, reasons


async def still_works(ws):
    await ws.send_bytes(msgpack.packb({"type": 2, "nsp": "/", "data": ["echo", b"\x01"], "id": 5}))
    ack = msgpack.unpackb(await ws_receive(ws))
    assert ack == {"type": 3, "nsp": "/", "id": 5, "data": [b"\x01"]}


@pytest.mark.parametrize("name", list(BAD))
async def test_bad_packet_over_websocket_closes_that_connection_only(make_server, name):
    io, url, reasons = await msgpack_server(make_server)
    async with aiohttp.ClientSession() as http:
        good = await connected_ws(http, url)
        bad = await connected_ws(http, url)
        await bad.send_bytes(BAD[name])
        await ws_wait_closed(bad)
        assert await asyncio.wait_for(reasons.get(), TIMEOUT) == "forced close"
        await still_works(good)
        assert len(io.sockets.sockets) == 1
        await good.close()


async def test_text_message_closes_the_connection(make_server):
    _io, url, reasons = await msgpack_server(make_server)
    async with aiohttp.ClientSession() as http:
        good = await connected_ws(http, url)
        bad = await connected_ws(http, url)
        await bad.send_str('42["echo",1]')
        await ws_wait_closed(bad)
        assert await asyncio.wait_for(reasons.get(), TIMEOUT) == "forced close"
        await still_works(good)
        await good.close()


async def test_event_before_connect_is_a_protocol_violation(make_server):
    io, url, _reasons = await msgpack_server(make_server)
    async with aiohttp.ClientSession() as http:
        ws, _ = await ws_open(http, url)
        await ws.send_bytes(msgpack.packb({"type": 2, "nsp": "/", "data": ["echo"]}))
        await ws_wait_closed(ws)
        await wait_for(lambda: not io.engine.clients)


async def test_message_over_the_buffer_size_is_refused(make_server):
    io, url = await make_server(parser="msgpack", max_http_buffer_size=10_000)
    async with aiohttp.ClientSession() as http:
        ws = await connected_ws(http, url)
        big = msgpack.packb({"type": 2, "nsp": "/", "data": ["x", b"\x00" * 20_000]})
        await ws.send_bytes(big)
        await ws_wait_closed(ws)
        await wait_for(lambda: not io.sockets.sockets)


@pytest.mark.parametrize("name", ["not-a-map", "truncated", "huge-array-claim", "too-deep"])
async def test_bad_packet_over_polling_closes_that_session_only(make_server, name):
    _io, url, reasons = await msgpack_server(make_server)
    async with aiohttp.ClientSession() as http:
        good = await connected_ws(http, url)
        p = await Polling.open(http, url)
        # A binary Engine.IO message in a polling payload: "b" + base64.
        connect = "b" + base64.b64encode(msgpack.packb({"type": 0, "nsp": "/"})).decode()
        assert (await p.post(connect))[0] == 200
        (reply,) = await p.get_packets()
        assert reply.startswith("b")
        assert msgpack.unpackb(base64.b64decode(reply[1:]))["type"] == 0
        status, _ = await p.post("b" + base64.b64encode(BAD[name]).decode())
        assert await asyncio.wait_for(reasons.get(), TIMEOUT) == "forced close"
        status, body = await p.get()
        assert status == 400 or body == "1", (status, body)  # gone, or its close packet
        await still_works(good)
        await good.close()
