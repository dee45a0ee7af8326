"""``max_http_buffer_size`` on both transports: a polling body or a WebSocket message larger than
it closes that session (413 / close code 1009) and leaves the others alone."""

from __future__ import annotations

import aiohttp

from tests.clients.http import RawConnection
from tests.clients.polling import Polling
from tests.clients.server_side import EngineRecorder
from tests.clients.wire import OP_BINARY, OP_CLOSE, OP_CONT, OP_TEXT, eio_target, request
from tests.clients.ws import RawWebSocket, ws_open, ws_receive, ws_wait_closed

MAX = 1000


async def test_post_at_the_limit_passes(make_server):
    io, url = await make_server(max_http_buffer_size=MAX)
    rec = EngineRecorder(io)
    body = "4" + "x" * (MAX - 1)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert await p.post(body) == (200, "ok")
        assert await p.get() == (200, body)
    assert rec.closed == {}


async def test_post_over_the_limit(make_server):
    io, url = await make_server(max_http_buffer_size=MAX)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        other = await Polling.open(http, url)
        p = await Polling.open(http, url)
        assert (await p.post("4" + "x" * MAX))[0] == 413
        assert await rec.wait_closed(p.sid) == "transport error"
        assert (await p.get())[0] == 400
        # Another session is untouched.
        assert await other.post("4fine") == (200, "ok")
        assert await other.get() == (200, "4fine")
    assert rec.messages[p.sid] == []


async def test_post_over_the_limit_is_cut_off_early(make_server):
    """The server answers 413 as soon as the body passes the limit: it does not read (or wait
    for) the rest, and closes the connection."""
    io, url = await make_server(max_http_buffer_size=MAX)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
    async with await RawConnection.open(url) as conn:
        conn.write(
            request(
                "POST",
                eio_target(sid=p.sid),
                {"Content-Type": "text/plain", "Content-Length": str(100 * MAX)},
                b"4" + b"x" * (2 * MAX),
            )
        )
        r = await conn.read_response()
        assert r.status == 413
        assert r.headers["connection"] == "close"
        assert await conn.at_eof()
    assert await rec.wait_closed(p.sid) == "transport error"


async def test_chunked_post_over_the_limit(make_server):
    io, url = await make_server(max_http_buffer_size=MAX)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
    chunk = b"x" * 600
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (b"4" + chunk, chunk)) + b"0\r\n\r\n"
    async with await RawConnection.open(url) as conn:
        conn.write(
            request(
                "POST",
                eio_target(sid=p.sid),
                {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"},
                body,
            )
        )
        r = await conn.read_response()
        assert r.status == 413
        assert await conn.at_eof()
    assert await rec.wait_closed(p.sid) == "transport error"


async def test_oversized_handshake_request_body(make_server):
    """A body too large on a request without a session: refused, connection closed, no session."""
    io, url = await make_server(max_http_buffer_size=MAX)
    async with await RawConnection.open(url) as conn:
        conn.write(request("POST", eio_target(), {"Content-Type": "text/plain"}, b"x" * (2 * MAX)))
        r = await conn.read_response()
        assert r.status in (400, 413)
        assert await conn.at_eof()
    assert io.engine.clients == {}


async def test_websocket_message_at_the_limit_passes(make_server):
    io, url = await make_server(max_http_buffer_size=MAX)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws, _ = await ws_open(http, url)
        await ws.send_bytes(b"\x00" * MAX)
        assert await ws_receive(ws) == b"\x00" * MAX
        await ws.send_str("4" + "y" * (MAX - 1))
        assert await ws_receive(ws) == "4" + "y" * (MAX - 1)
        await ws.close()
    assert all(reason == "transport close" for reason, _ in rec.closed.values())


async def test_websocket_frame_over_the_limit(make_server):
    io, url = await make_server(max_http_buffer_size=MAX)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        other, _ = await ws_open(http, url)
        ws, value = await ws_open(http, url)
        await ws.send_str("4" + "x" * MAX)
        assert await ws_wait_closed(ws) == []
        assert ws.close_code == 1009
        assert await rec.wait_closed(value["sid"]) == "transport close"
        assert rec.messages[value["sid"]] == []
        await other.send_str("4fine")
        assert await ws_receive(other) == "4fine"
        await other.close()


async def test_websocket_fragmented_message_over_the_limit(make_server):
    """Each fragment fits, the message does not."""
    io, url = await make_server(max_http_buffer_size=MAX)
    rec = EngineRecorder(io)
    async with await RawWebSocket.open(url) as ws:
        r = await ws.upgrade(eio_target("websocket"))
        assert r.status == 101
        sid = (await ws.recv_text())[1:].split('"')[3]
        ws.send_frame(OP_BINARY, b"a" * (MAX // 2), fin=False)
        ws.send_frame(OP_CONT, b"b" * (MAX // 2), fin=False)
        ws.send_frame(OP_CONT, b"c" * (MAX // 2), fin=True)
        frames = await ws.recv_until_close()
        assert frames[-1][0] in (OP_CLOSE, -1)
        if frames[-1][0] == OP_CLOSE:
            assert int.from_bytes(frames[-1][1][:2], "big") == 1009
    assert await rec.wait_closed(sid) == "transport close"
    assert rec.messages[sid] == []


async def test_websocket_fragmented_message_within_the_limit(make_server):
    io, url = await make_server(max_http_buffer_size=MAX)
    rec = EngineRecorder(io)
    async with await RawWebSocket.open(url) as ws:
        assert (await ws.upgrade(eio_target("websocket"))).status == 101
        await ws.recv_text()
        ws.send_frame(OP_TEXT, b"4he", fin=False)
        ws.send_frame(OP_CONT, b"ll", fin=False)
        ws.send_frame(OP_CONT, b"o", fin=True)
        assert await ws.recv_text() == "4hello"
    assert [m for sid in rec.messages for m in rec.messages[sid]] == [(b"4hello", False)]
