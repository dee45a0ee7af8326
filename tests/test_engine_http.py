"""The HTTP/1.1 front: keep-alive, pipelining, chunked bodies, HTTP/1.0, CORS, and the hand-over
of upgrade requests to the WebSocket (``Connection: keep-alive, Upgrade``, bytes pipelined after
the upgrade request, an upgrade after polling requests on the same connection)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from tests.clients.http import RawConnection
from tests.clients.polling import Polling
from tests.clients.server_side import EngineRecorder
from tests.clients.wire import (
    OP_TEXT,
    eio_target,
    parse_open,
    request,
    ws_frame,
    ws_upgrade_request,
)
from tests.clients.ws import RawWebSocket

TEXT = {"Content-Type": "text/plain;charset=UTF-8"}


async def test_keep_alive(make_server):
    """Handshake, POST and GET on one TCP connection."""
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with await RawConnection.open(url) as conn:
        sid = await conn.polling_handshake()
        assert rec.engine._http_connections and len(rec.engine._http_connections) == 1
        conn.write(request("POST", eio_target(sid=sid), TEXT, b"4one"))
        r = await conn.read_response()
        assert (r.status, r.text) == (200, "ok")
        assert "connection" not in r.headers
        conn.write(request("GET", eio_target(sid=sid)))
        r = await conn.read_response()
        assert (r.status, r.text) == (200, "4one")
        assert r.headers["content-type"] == "text/plain; charset=UTF-8"
        assert len(io.engine._http_connections) == 1


async def test_keep_alive_with_aiohttp(make_server):
    """aiohttp's pool reuses one connection for sequential requests."""
    io, url = await make_server()
    EngineRecorder(io)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as http:
        p = await Polling.open(http, url)
        for i in range(5):
            assert await p.post(f"4m{i}") == (200, "ok")
            assert await p.get() == (200, f"4m{i}")
        assert len(io.engine._http_connections) == 1


async def test_pipelined_post_and_get(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with await RawConnection.open(url) as conn:
        sid = await conn.polling_handshake()
        conn.write(
            request("POST", eio_target(sid=sid), TEXT, b"4a\x1e4b")
            + request("POST", eio_target(sid=sid), TEXT, b"4c")
            + request("GET", eio_target(sid=sid))
        )
        r1 = await conn.read_response()
        r2 = await conn.read_response()
        r3 = await conn.read_response()
        assert (r1.status, r1.text) == (200, "ok")
        assert (r2.status, r2.text) == (200, "ok")
        assert (r3.status, r3.text) == (200, "4a\x1e4b\x1e4c")
    assert [m for m, _ in rec.messages[sid]] == [b"4a", b"4b", b"4c"]


async def test_pipelined_handshakes_and_errors_keep_their_order(make_server):
    _, url = await make_server()
    async with await RawConnection.open(url) as conn:
        conn.write(
            request("GET", eio_target())
            + request("GET", "/socket.io/?EIO=4&transport=nope")
            + request("GET", "/elsewhere")
            + request("GET", eio_target())
        )
        statuses = [(await conn.read_response()).status for _ in range(4)]
        assert statuses == [200, 400, 404, 200]


async def test_pipelined_in_pieces(make_server):
    """Requests split at arbitrary points across TCP writes."""
    io, url = await make_server()
    EngineRecorder(io)
    async with await RawConnection.open(url) as conn:
        sid = await conn.polling_handshake()
        data = request("POST", eio_target(sid=sid), TEXT, b"4split") + request(
            "GET", eio_target(sid=sid)
        )
        for i in range(0, len(data), 7):
            conn.write(data[i : i + 7])
            await conn.writer.drain()
            await asyncio.sleep(0)
        assert (await conn.read_response()).text == "ok"
        assert (await conn.read_response()).text == "4split"


async def test_chunked_post(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with await RawConnection.open(url) as conn:
        sid = await conn.polling_handshake()
        body = b"3\r\n4he\r\n4\r\nllo\x1e\r\n2\r\n4!\r\n0\r\n\r\n"
        conn.write(
            request("POST", eio_target(sid=sid), {**TEXT, "Transfer-Encoding": "chunked"}, body)
        )
        r = await conn.read_response()
        assert (r.status, r.text) == (200, "ok")
        conn.write(request("GET", eio_target(sid=sid)))
        assert (await conn.read_response()).text == "4hello\x1e4!"
    assert [m for m, _ in rec.messages[sid]] == [b"4hello", b"4!"]


async def test_expect_100_continue(make_server):
    io, url = await make_server(max_http_buffer_size=100)
    rec = EngineRecorder(io)
    async with await RawConnection.open(url) as conn:
        sid = await conn.polling_handshake()
        head = request("POST", eio_target(sid=sid), {**TEXT, "Expect": "100-continue"}, b"4go")
        conn.write(head[:-3])
        r = await conn.read_head()
        assert r.status == 100
        conn.write(b"4go")
        r = await conn.read_response()
        assert (r.status, r.text) == (200, "ok")
        # Over the limit: refused at once, no interim answer.
        conn.write(
            request(
                "POST",
                eio_target(sid=sid),
                {**TEXT, "Expect": "100-continue", "Content-Length": "1000"},
            )
        )
        r = await conn.read_response()
        assert r.status == 413
        assert await conn.at_eof()
    assert rec.messages[sid] == [(b"4go", False)]
    assert rec.closed[sid][0] == "transport error"


async def test_connection_close_is_honoured(make_server):
    _, url = await make_server()
    async with await RawConnection.open(url) as conn:
        conn.write(request("GET", eio_target(), {"Connection": "close"}))
        r = await conn.read_response()
        assert r.status == 200
        assert r.headers["connection"] == "close"
        assert await conn.at_eof()


async def test_http_10(make_server):
    _, url = await make_server()
    async with await RawConnection.open(url) as conn:
        conn.write(b"GET " + eio_target().encode() + b" HTTP/1.0\r\n\r\n")
        r = await conn.read_response()
        assert r.status == 200 and r.text.startswith("0{")
        assert await conn.at_eof()
    async with await RawConnection.open(url) as conn:
        conn.write(b"GET " + eio_target().encode() + b" HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = await conn.read_response()
        assert r.status == 200
        assert r.headers["connection"].lower() == "keep-alive"
        conn.write(b"GET /nothing HTTP/1.0\r\n\r\n")
        assert (await conn.read_response()).status == 404


# -- CORS -------------------------------------------------------------------------------------
async def test_cors(make_server):
    _, url = await make_server(cors_allowed_origins=["https://good.example"])
    async with await RawConnection.open(url) as conn:
        conn.write(request("GET", eio_target(), {"Origin": "https://good.example"}))
        r = await conn.read_response()
        assert r.headers["access-control-allow-origin"] == "https://good.example"
        conn.write(request("GET", eio_target(), {"Origin": "https://evil.example"}))
        r = await conn.read_response()
        assert r.status == 200
        assert "access-control-allow-origin" not in r.headers
        conn.write(
            request(
                "OPTIONS",
                eio_target(),
                {"Origin": "https://good.example", "Access-Control-Request-Headers": "x-a"},
            )
        )
        r = await conn.read_response()
        assert r.status == 204
        assert r.headers["access-control-allow-origin"] == "https://good.example"
        assert r.headers["access-control-allow-headers"] == "x-a"
        assert "POST" in r.headers["access-control-allow-methods"]
        # Errors carry the CORS headers too, so a browser can read them.
        conn.write(
            request(
                "GET", "/socket.io/?EIO=3&transport=polling", {"Origin": "https://good.example"}
            )
        )
        r = await conn.read_response()
        assert r.status == 400
        assert r.headers["access-control-allow-origin"] == "https://good.example"


# -- the hand-over to WebSocket ---------------------------------------------------------------
@pytest.mark.parametrize(
    "connection", ["Upgrade", "keep-alive, Upgrade", "upgrade", "Upgrade, HTTP2-Settings"]
)
async def test_upgrade_connection_header_variants(make_server, connection):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with await RawWebSocket.open(url) as ws:
        r = await ws.upgrade(eio_target("websocket"), connection)
        assert r.status == 101
        value = parse_open(await ws.recv_text())
        ws.send_text("4hi")
        assert await ws.recv_text() == "4hi"
    assert await rec.wait_closed(value["sid"]) == "transport close"


async def test_frames_pipelined_after_the_upgrade_request(make_server):
    """Frames sent in the same write as the upgrade request reach the session."""
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with await RawWebSocket.open(url) as ws:
        ws.write(ws_upgrade_request(eio_target("websocket")) + ws_frame(OP_TEXT, b"4early"))
        r = await ws.read_head()
        assert r.status == 101
        parse_open(await ws.recv_text())
        assert await ws.recv_text() == "4early"
    assert [m for ms in rec.messages.values() for m in ms] == [(b"4early", False)]


async def test_frames_pipelined_while_allow_request_decides(make_server):
    """With an async allow_request, bytes that arrive before the decision wait for the
    WebSocket instead of being parsed as HTTP."""
    gate = asyncio.Event()

    async def allow(req):
        await gate.wait()
        return True

    io, url = await make_server(allow_request=allow)
    rec = EngineRecorder(io)
    async with await RawWebSocket.open(url) as ws:
        ws.write(ws_upgrade_request(eio_target("websocket")))
        await asyncio.sleep(0.02)
        ws.write(ws_frame(OP_TEXT, b"4one"))
        await asyncio.sleep(0.02)
        ws.write(ws_frame(OP_TEXT, b"4two"))
        await asyncio.sleep(0.02)
        gate.set()
        assert (await ws.read_head()).status == 101
        parse_open(await ws.recv_text())
        assert await ws.recv_text() == "4one"
        assert await ws.recv_text() == "4two"
    assert [m for ms in rec.messages.values() for m in ms] == [(b"4one", False), (b"4two", False)]


async def test_upgrade_after_polling_on_the_same_connection(make_server):
    """A keep-alive connection that carried polling requests can then be upgraded (the probe of
    that very session)."""
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with await RawConnection.open(url) as conn:
        sid = await conn.polling_handshake()
        conn.write(request("POST", eio_target(sid=sid), TEXT, b"4before"))
        assert (await conn.read_response()).text == "ok"
        conn.write(request("GET", eio_target(sid=sid)))
        assert (await conn.read_response()).text == "4before"
        ws = RawWebSocket(conn.reader, conn.writer)
        assert (await ws.upgrade(eio_target("websocket", sid=sid))).status == 101
        ws.send_text("2probe")
        assert await ws.recv_text() == "3probe"
        ws.send_text("5")
        ws.send_text("4after")
        assert await ws.recv_text() == "4after"
        assert rec.sockets[sid].transport_name == "websocket"
    assert await rec.wait_closed(sid) == "transport close"


async def test_upgrade_behind_a_pending_request_is_refused(make_server):
    """An upgrade pipelined behind an unanswered request has no sane order: 400, closed."""
    io, url = await make_server()
    EngineRecorder(io)
    async with await RawConnection.open(url) as conn:
        sid = await conn.polling_handshake()
        conn.write(
            request("GET", eio_target(sid=sid)) + ws_upgrade_request(eio_target("websocket"))
        )
        r = await conn.read_response()
        assert r.status == 400
        assert await conn.at_eof()


async def test_no_picows_connection_logs_at_info(make_server, caplog):
    """picows announces every connection at INFO: that logger is ours and stays quiet at the
    default WARNING level."""
    _, url = await make_server()
    caplog.set_level(logging.WARNING)
    async with await RawWebSocket.open(url) as ws:
        assert (await ws.upgrade(eio_target("websocket"))).status == 101
        await ws.recv_text()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
