"""Engine.IO messages on both transports (text, binary, several per payload, noop) and the
client's close packet, against an echo in place of the Socket.IO layer."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.clients.polling import Polling
from tests.clients.server_side import EngineRecorder
from tests.clients.wire import eio_url
from tests.clients.ws import ws_open, ws_receive, ws_wait_closed


# -- long-polling -----------------------------------------------------------------------------
async def test_polling_one_text_packet(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert await p.post("4hello") == (200, "ok")
        status, headers, body = await p.get_response()
        assert status == 200
        assert headers["content-type"] == "text/plain; charset=UTF-8"
        assert headers["cache-control"] == "no-store"
        assert body == "4hello"
    assert rec.messages[p.sid] == [(b"4hello", False)]


async def test_polling_post_response_headers(make_server):
    _, url = await make_server()
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        async with http.post(p.url, data=b"6", headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "text/html"
            assert r.headers["Cache-Control"] == "no-store"
            assert await r.text() == "ok"


async def test_polling_several_text_packets(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert await p.post("4test1\x1e4test2\x1e4test3") == (200, "ok")
        assert await p.get() == (200, "4test1\x1e4test2\x1e4test3")
    assert [m for m, _ in rec.messages[p.sid]] == [b"4test1", b"4test2", b"4test3"]


async def test_polling_text_and_binary(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert await p.post("4hello\x1ebAQIDBA==") == (200, "ok")
        assert await p.get() == (200, "4hello\x1ebAQIDBA==")
    assert rec.messages[p.sid] == [(b"4hello", False), (b"\x01\x02\x03\x04", True)]


async def test_polling_utf8_and_empty_message(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    text = "4héllo €𝄞\x1e4"
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert await p.post(text) == (200, "ok")
        assert await p.get() == (200, text)
    assert rec.messages[p.sid] == [("4héllo €𝄞".encode(), False), (b"4", False)]


async def test_polling_noop_and_upgrade_packets_are_ignored(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert await p.post("6") == (200, "ok")
        assert await p.post("6\x1e4x\x1e6") == (200, "ok")
        assert await p.get() == (200, "4x")
    assert rec.messages[p.sid] == [(b"4x", False)]
    assert rec.closed == {}


async def test_polling_server_packets_share_one_response(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io, echo=False)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        sock = rec.sockets[p.sid]
        get = asyncio.ensure_future(p.get())
        await asyncio.sleep(0.05)
        assert sock.writable
        sock.send("a")
        sock.send(b"\x00\xff")
        sock.send("b")
        assert await get == (200, "4a\x1ebAP8=\x1e4b")
        # Packets sent while no GET waits are buffered for the next one.
        sock.send("later")
        assert not sock.writable
        assert await p.get() == (200, "4later")


async def test_polling_rejects_binary_content_type(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        status, _ = await p.post(b"\x01\x02", **{"Content-Type": "application/octet-stream"})
        assert status == 400
        assert await rec.wait_closed(p.sid) == "transport error"
        assert (await p.get())[0] == 400


async def test_polling_client_close_packet(make_server):
    """The official suite's "forcefully closes the session": the pending GET ends with a noop."""
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        get = asyncio.ensure_future(p.get())
        await asyncio.sleep(0.05)
        assert await p.post("1") == (200, "ok")
        assert await get == (200, "6")
        assert await rec.wait_closed(p.sid) == "transport close"
        assert (await p.get())[0] == 400
    assert io.engine.clients == {}


async def test_polling_client_close_packet_before_the_get(make_server):
    """The same race the other way round: the POST with the close packet arrives before the
    GET sent along with it. That GET gets what it would have got first (what was queued, then
    a noop); the sid is gone for the next one."""
    io, url = await make_server()
    rec = EngineRecorder(io, echo=False)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        rec.sockets[p.sid].send("queued")
        assert await p.post("1") == (200, "ok")
        assert await rec.wait_closed(p.sid) == "transport close"
        assert io.engine.clients == {}
        assert await p.get() == (200, "4queued\x1e6")
        assert (await p.get())[0] == 400
        assert (await p.post("4late"))[0] == 400
    assert io.engine._lingering == {}


async def test_polling_close_packet_stops_the_payload(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert await p.post("4a\x1e1\x1e4b") == (200, "ok")
        assert await rec.wait_closed(p.sid) == "transport close"
    assert rec.messages[p.sid] == [(b"4a", False)]


async def test_polling_server_close(make_server):
    """A server-side close reaches the client as a close packet: on the pending GET, or on the
    next one if none waits."""
    io, url = await make_server()
    rec = EngineRecorder(io, echo=False)
    async with aiohttp.ClientSession() as http:
        p1 = await Polling.open(http, url)
        get = asyncio.ensure_future(p1.get())
        await asyncio.sleep(0.05)
        rec.sockets[p1.sid].send("bye")
        rec.sockets[p1.sid].close()
        # What was queued goes first; the close packet alone on the next GET (clients act on
        # a close packet at once, before handing out the packets that came with it).
        assert await get == (200, "4bye")
        assert await p1.get() == (200, "1")
        assert rec.closed[p1.sid][0] == "forced close"

        p2 = await Polling.open(http, url)
        rec.sockets[p2.sid].send("bye")
        rec.sockets[p2.sid].close()
        assert rec.closed[p2.sid][0] == "forced close"
        assert await p2.get() == (200, "4bye")
        assert await p2.get() == (200, "1")
        assert (await p2.get())[0] == 400
    assert io.engine.clients == {}
    assert io.engine._lingering == {}


# -- WebSocket --------------------------------------------------------------------------------
async def test_websocket_text(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws, value = await ws_open(http, url)
        await ws.send_str("4hello")
        assert await ws_receive(ws) == "4hello"
        await ws.send_str("4héllo €𝄞")
        assert await ws_receive(ws) == "4héllo €𝄞"
        await ws.close()
    assert rec.messages[value["sid"]] == [(b"4hello", False), ("4héllo €𝄞".encode(), False)]


async def test_websocket_binary(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws, value = await ws_open(http, url)
        await ws.send_bytes(b"\x01\x02\x03\x04")
        assert await ws_receive(ws) == b"\x01\x02\x03\x04"
        await ws.send_bytes(b"")
        assert await ws_receive(ws) == b""
        await ws.close()
    assert rec.messages[value["sid"]] == [(b"\x01\x02\x03\x04", True), (b"", True)]


async def test_websocket_noop_is_ignored(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws, value = await ws_open(http, url)
        await ws.send_str("6")
        await ws.send_str("4after")
        assert await ws_receive(ws) == "4after"
        await ws.close()
    assert rec.messages[value["sid"]] == [(b"4after", False)]


async def test_websocket_many_messages_keep_order(make_server):
    io, url = await make_server()
    EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws, _ = await ws_open(http, url)
        for i in range(200):
            await ws.send_str(f"4m{i}")
        got = [await ws_receive(ws) for _ in range(200)]
        assert got == [f"4m{i}" for i in range(200)]
        await ws.close()


async def test_websocket_client_close_packet(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws, value = await ws_open(http, url)
        await ws.send_str("1")
        assert await ws_wait_closed(ws) == []
        assert await rec.wait_closed(value["sid"]) == "transport close"
    assert io.engine.clients == {}


async def test_websocket_server_close(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io, echo=False)
    async with aiohttp.ClientSession() as http:
        ws, value = await ws_open(http, url)
        rec.sockets[value["sid"]].send("bye")
        rec.sockets[value["sid"]].close()
        assert await ws_wait_closed(ws) == ["4bye"]
    assert rec.closed[value["sid"]][0] == "forced close"


async def test_both_transports_side_by_side(make_server):
    io, url = await make_server()
    EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        ws, _ = await ws_open(http, url)
        await ws.send_str("4ws")
        assert await p.post("4poll") == (200, "ok")
        assert await ws_receive(ws) == "4ws"
        assert await p.get() == (200, "4poll")
        await ws.close()
        assert eio_url(url, "polling", p.sid) == p.url
