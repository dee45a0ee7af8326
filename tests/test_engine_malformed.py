"""Malformed input closes the session (or connection) it came on and nothing else: invalid
Engine.IO packets on both transports, broken HTTP, broken WebSocket framing, overlapping or
abandoned polls."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.clients.http import RawConnection
from tests.clients.polling import Polling
from tests.clients.server_side import EngineRecorder
from tests.clients.wire import OP_BINARY, OP_CLOSE, OP_CONT, OP_TEXT, eio_target, request, ws_frame
from tests.clients.ws import RawWebSocket, ws_open, ws_receive, ws_wait_closed


async def assert_alive(p: Polling, ws: aiohttp.ClientWebSocketResponse) -> None:
    """Both bystander sessions still echo."""
    assert await p.post("4alive") == (200, "ok")
    assert await p.get() == (200, "4alive")
    await ws.send_str("4alive")
    assert await ws_receive(ws) == "4alive"


@pytest.mark.parametrize("packet", ["abc", "", "7", "9hello", "x"])
async def test_invalid_packet_over_websocket(make_server, packet):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        other_p = await Polling.open(http, url)
        other_ws, _ = await ws_open(http, url)
        ws, value = await ws_open(http, url)
        await ws.send_str(packet)
        assert await ws_wait_closed(ws) == []
        assert await rec.wait_closed(value["sid"]) == "parse error"
        await assert_alive(other_p, other_ws)
        await other_ws.close()
    assert rec.messages[value["sid"]] == []


@pytest.mark.parametrize("body", ["abc", "4ok\x1ezzz", "b!!!!", "7", "\x1e\x1e"])
async def test_invalid_payload_over_polling(make_server, body):
    """The official suite: 400 for the POST, then the session is gone (400 for the next GET)."""
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        other_p = await Polling.open(http, url)
        other_ws, _ = await ws_open(http, url)
        p = await Polling.open(http, url)
        assert (await p.post(body))[0] == 400
        assert await rec.wait_closed(p.sid) == "parse error"
        assert (await p.get())[0] == 400
        await assert_alive(other_p, other_ws)
        await other_ws.close()


async def test_invalid_payload_answers_the_pending_get(make_server):
    io, url = await make_server()
    EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        get = asyncio.ensure_future(p.get())
        await asyncio.sleep(0.05)
        assert (await p.post("abc"))[0] == 400
        assert await get == (200, "1")


async def test_invalid_utf8_in_polling_body(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        # Like the official server (which decodes with replacement characters), the engine
        # accepts it: the bytes go up as they are and the layer above decides.
        assert await p.post(b"4\xff\xfe") == (200, "ok")
        assert rec.messages[p.sid] == [(b"4\xff\xfe", False)]
        assert p.sid not in rec.closed


async def test_concurrent_gets_close_the_session(make_server):
    """The official suite's "duplicate poll requests": the first GET gets a close packet, the
    second a 400, and the session is gone."""
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        first = asyncio.ensure_future(p.get())
        await asyncio.sleep(0.05)
        second = await p.get()
        assert second[0] == 400
        assert await first == (200, "1")
        assert rec.closed[p.sid] == ("transport error", "overlap from client")
        assert (await p.get())[0] == 400


async def test_abandoned_get_closes_the_session(make_server):
    """The official suite's "cancelled polling request"."""
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
    async with await RawConnection.open(url) as conn:
        conn.write(request("GET", eio_target(sid=p.sid)))
        await asyncio.sleep(0.05)
    assert await rec.wait_closed(p.sid) == "transport error"
    async with aiohttp.ClientSession() as http:
        p.http = http
        assert (await p.get())[0] == 400
    assert io.engine.clients == {}


GARBAGE = [
    b"GARBAGE\r\n\r\n",
    b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
    b"GET /socket.io/ HTTP/9.9\r\n\r\n",
    b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n",
    b"POST /socket.io/ HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"POST /socket.io/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
    b"POST /socket.io/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


@pytest.mark.parametrize("data", GARBAGE)
async def test_garbage_http_gets_400(make_server, data):
    io, url = await make_server()
    EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        other = await Polling.open(http, url)
        async with await RawConnection.open(url) as conn:
            conn.write(data)
            r = await conn.read_response()
            assert r.status == 400
            assert r.headers["connection"] == "close"
            assert await conn.at_eof()
        # The process and every other session carry on.
        assert await other.post("4still") == (200, "ok")
        assert await other.get() == (200, "4still")
        await Polling.open(http, url)


async def test_oversized_request_line_and_headers(make_server):
    _, url = await make_server()
    long_target = eio_target() + "&pad=" + "a" * 10_000
    many = {f"X-H{i}": "v" for i in range(200)}
    huge = {"X-Big": "v" * 20_000}
    for data in (
        request("GET", long_target),
        request("GET", eio_target(), many),
        request("GET", eio_target(), huge),
    ):
        async with await RawConnection.open(url) as conn:
            conn.write(data)
            r = await conn.read_response()
            assert r.status == 400
            assert await conn.at_eof()


async def test_garbage_after_a_valid_request(make_server):
    """The valid request is answered first; then the 400 and the close."""
    _, url = await make_server()
    async with await RawConnection.open(url) as conn:
        conn.write(request("GET", eio_target()) + b"NONSENSE\r\n\r\n")
        r = await conn.read_response()
        assert r.status == 200 and r.text.startswith("0{")
        r = await conn.read_response()
        assert r.status == 400
        assert await conn.at_eof()


async def test_connection_closed_mid_request(make_server):
    io, url = await make_server()
    async with await RawConnection.open(url) as conn:
        conn.write(b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nContent-Le")
        await asyncio.sleep(0.02)
    async with await RawConnection.open(url) as conn:
        conn.write(
            b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nContent-Length: 10\r\n\r\n4"
        )
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)
    assert io.engine._http_connections == set()


# -- WebSocket framing ------------------------------------------------------------------------
def unmasked(opcode: int, payload: bytes) -> bytes:
    return bytes([0x80 | opcode, len(payload)]) + payload


BAD_FRAMES = [
    pytest.param(unmasked(OP_TEXT, b"4hi"), id="unmasked"),
    pytest.param(ws_frame(3, b"4hi"), id="reserved-opcode"),
    pytest.param(ws_frame(OP_CONT, b"4hi"), id="continuation-first"),
    pytest.param(ws_frame(OP_TEXT, b"4a", fin=False) + ws_frame(OP_TEXT, b"4b"), id="interleaved"),
    pytest.param(ws_frame(9, b"x" * 10, fin=False), id="fragmented-ping"),
    pytest.param(bytes([0x80 | 0x40 | OP_TEXT, 0x80 | 3]) + b"\0\0\0\0" + b"4hi", id="rsv1"),
]


@pytest.mark.parametrize("frames", BAD_FRAMES)
async def test_bad_websocket_frames(make_server, frames):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        other_p = await Polling.open(http, url)
        other_ws, _ = await ws_open(http, url)
        async with await RawWebSocket.open(url) as ws:
            assert (await ws.upgrade(eio_target("websocket"))).status == 101
            sid = (await ws.recv_text())[1:].split('"')[3]
            ws.write(frames)
            last = (await ws.recv_until_close())[-1]
            assert last[0] in (OP_CLOSE, -1)
            if last[0] == OP_CLOSE:
                assert int.from_bytes(last[1][:2], "big") in (1002, 1003, 1007)
        assert await rec.wait_closed(sid) == "transport close"
        assert rec.messages[sid] == []
        await assert_alive(other_p, other_ws)
        await other_ws.close()


async def test_binary_frame_after_close_frame_is_ignored(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with await RawWebSocket.open(url) as ws:
        assert (await ws.upgrade(eio_target("websocket"))).status == 101
        sid = (await ws.recv_text())[1:].split('"')[3]
        ws.write(ws_frame(OP_CLOSE, (1000).to_bytes(2, "big")) + ws_frame(OP_BINARY, b"late"))
        frames = await ws.recv_until_close()
        assert frames[-1][0] in (OP_CLOSE, -1)
    assert await rec.wait_closed(sid) == "transport close"
    assert rec.messages[sid] == []


async def test_garbage_after_upgrade_request(make_server):
    """Bytes that are not WebSocket frames right after the handshake: that connection closes."""
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with await RawWebSocket.open(url) as ws:
        assert (await ws.upgrade(eio_target("websocket"))).status == 101
        sid = (await ws.recv_text())[1:].split('"')[3]
        ws.write(b"GET / HTTP/1.1\r\n\r\n")
        last = (await ws.recv_until_close())[-1]
        assert last[0] in (OP_CLOSE, -1)
    assert await rec.wait_closed(sid) == "transport close"


async def test_upgrade_without_key_is_refused(make_server):
    io, url = await make_server()
    async with await RawConnection.open(url) as conn:
        conn.write(
            request(
                "GET",
                eio_target("websocket"),
                {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"},
            )
        )
        r = await conn.read_head()
        assert r.status == 400
        assert await conn.at_eof()
    assert io.engine.clients == {}


async def test_upgrade_to_something_else_is_refused(make_server):
    io, url = await make_server()
    async with await RawConnection.open(url) as conn:
        conn.write(request("GET", eio_target(), {"Connection": "Upgrade", "Upgrade": "h2c"}))
        r = await conn.read_response()
        assert r.status == 400
        assert await conn.at_eof()
    assert io.engine.clients == {}
