"""Engine.IO handshake over both transports and the error answers (codes 0-5), after the
official v4 test suite (docs/engine.io-protocol/v4-test-suite) and engine.io's server.ts."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.clients.http import RawConnection, json_error
from tests.clients.polling import Polling
from tests.clients.server_side import EngineRecorder
from tests.clients.wire import eio_target, eio_url, parse_open, request, ws_upgrade_request, ws_url
from tests.clients.ws import ws_open

HANDSHAKE_KEYS = {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}


async def test_polling_handshake(make_server):
    io, url = await make_server(ping_interval=0.3, ping_timeout=0.2)
    async with aiohttp.ClientSession() as http:
        async with http.get(eio_url(url)) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "text/plain; charset=UTF-8"
            body = await r.text()
    assert body.startswith("0")
    value = parse_open(body)
    assert set(value) == HANDSHAKE_KEYS
    assert isinstance(value["sid"], str) and value["sid"]
    assert value["upgrades"] == ["websocket"]
    assert value["pingInterval"] == 300
    assert value["pingTimeout"] == 200
    assert value["maxPayload"] == 1_000_000
    assert value["sid"] in io.engine.clients


async def test_polling_handshake_options(make_server):
    _, url = await make_server(
        transports=["polling"], ping_interval=1.5, ping_timeout=0.25, max_http_buffer_size=1234
    )
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
    assert p.handshake["upgrades"] == []
    assert p.handshake["pingInterval"] == 1500
    assert p.handshake["pingTimeout"] == 250
    assert p.handshake["maxPayload"] == 1234


async def test_no_upgrades_when_upgrades_disabled(make_server):
    _, url = await make_server(allow_upgrades=False)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
    assert p.handshake["upgrades"] == []


async def test_sids_are_unique(make_server):
    _, url = await make_server()
    async with aiohttp.ClientSession() as http:
        sessions = await asyncio.gather(*(Polling.open(http, url) for _ in range(20)))
    sids = {p.sid for p in sessions}
    assert len(sids) == 20
    assert all(len(s) >= 16 for s in sids if s)


async def test_websocket_handshake(make_server):
    io, url = await make_server(ping_interval=0.3, ping_timeout=0.2)
    async with aiohttp.ClientSession() as http:
        ws, value = await ws_open(http, url)
        assert set(value) == HANDSHAKE_KEYS
        assert value["upgrades"] == []
        assert value["pingInterval"] == 300
        assert value["pingTimeout"] == 200
        assert value["maxPayload"] == 1_000_000
        assert io.engine.clients[value["sid"]].transport_name == "websocket"
        await ws.close()


# -- errors over HTTP -------------------------------------------------------------------------
ERRORS = [
    # (method, query, code, message)
    ("GET", "EIO=4", 0, "Transport unknown"),
    ("GET", "EIO=4&transport=abc", 0, "Transport unknown"),
    ("GET", "EIO=4&transport=polling&sid=nope", 1, "Session ID unknown"),
    ("POST", "EIO=4&transport=polling", 2, "Bad handshake method"),
    ("PUT", "EIO=4&transport=polling", 2, "Bad handshake method"),
    ("GET", "EIO=4&transport=websocket", 3, "Bad request"),
    ("GET", "EIO=3&transport=polling", 5, "Unsupported protocol version"),
    ("GET", "transport=polling", 5, "Unsupported protocol version"),
    ("GET", "EIO=abc&transport=polling", 5, "Unsupported protocol version"),
]


@pytest.mark.parametrize(("method", "query", "code", "message"), ERRORS)
async def test_http_errors(make_server, method, query, code, message):
    _, url = await make_server()
    async with aiohttp.ClientSession() as http:
        async with http.request(method, f"{url}/socket.io/?{query}", data=b"") as r:
            status, body = await json_error(r)
    assert status == 400
    assert body == {"code": code, "message": message}


async def test_disabled_transport_is_unknown(make_server):
    _, url = await make_server(transports=["websocket"])
    async with aiohttp.ClientSession() as http:
        async with http.get(eio_url(url)) as r:
            assert await json_error(r) == (400, {"code": 0, "message": "Transport unknown"})


async def test_transport_mismatch(make_server):
    _, url = await make_server()
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        async with http.get(eio_url(url, "websocket", p.sid)) as r:
            assert await json_error(r) == (400, {"code": 3, "message": "Bad request"})
        # The session survives a refused request.
        assert await p.post("4still") == (200, "ok")


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_allow_request(make_server, kind):
    seen = []

    def decide(req):
        seen.append(req.query.get("token"))
        token = req.query.get("token")
        if token == "ok":
            return True
        if token == "msg":
            return "go away"
        return False

    async def decide_async(req):
        await asyncio.sleep(0)
        return decide(req)

    io, url = await make_server(allow_request=decide if kind == "sync" else decide_async)
    async with aiohttp.ClientSession() as http:
        async with http.get(eio_url(url, token="no")) as r:
            assert await json_error(r) == (403, {"code": 4, "message": "Forbidden"})
        async with http.get(eio_url(url, token="msg")) as r:
            assert await json_error(r) == (403, {"code": 4, "message": "go away"})
        async with http.get(eio_url(url, token="ok")) as r:
            assert r.status == 200
            assert (await r.text()).startswith("0{")
        # Over WebSocket a refusal is a plain 400 with the message, before the upgrade.
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(ws_url(url, token="no"))
        assert info.value.status == 400
        ws, _ = await ws_open(http, url, token="ok")
        await ws.close()
    assert seen == ["no", "msg", "ok", "no", "ok"]
    assert [s.transport_name for s in io.engine.clients.values()] == ["polling"]


async def test_allow_request_raising_forbids(make_server):
    def boom(req):
        raise ValueError("nope")

    _, url = await make_server(allow_request=boom)
    async with aiohttp.ClientSession() as http:
        async with http.get(eio_url(url)) as r:
            assert await json_error(r) == (403, {"code": 4, "message": "nope"})


# -- errors over WebSocket --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("transport=websocket", "Unsupported protocol version"),  # no EIO
        ("EIO=abc&transport=websocket", "Unsupported protocol version"),
        ("EIO=3&transport=websocket", "Unsupported protocol version"),
        ("EIO=4", "Transport unknown"),  # no transport
        ("EIO=4&transport=abc", "Transport unknown"),
        ("EIO=4&transport=websocket&sid=nope", "Session ID unknown"),
    ],
)
async def test_websocket_errors(make_server, query, message):
    """The official server's abortUpgrade: a plain 400 whose body is the message, then close."""
    io, url = await make_server()
    async with await RawConnection.open(url) as conn:
        conn.write(ws_upgrade_request(f"/socket.io/?{query}"))
        r = await conn.read_response()
        assert r.status == 400
        assert r.headers["connection"] == "close"
        assert r.text == message
        assert await conn.at_eof()
    assert io.engine.clients == {}


async def test_websocket_transport_disabled(make_server):
    _, url = await make_server(transports=["polling"])
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(ws_url(url))
        assert info.value.status == 400


async def test_recorder_sees_sessions(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        ws, value = await ws_open(http, url)
        assert set(rec.sockets) == {p.sid, value["sid"]}
        await ws.close()
        assert await rec.wait_closed(value["sid"]) == "transport close"


async def test_unknown_path_is_404(make_server):
    _, url = await make_server()
    async with await RawConnection.open(url) as conn:
        conn.write(request("GET", "/nothing-here"))
        r = await conn.read_response()
        assert r.status == 404
        # The connection stays usable.
        conn.write(request("GET", eio_target()))
        r = await conn.read_response()
        assert r.status == 200 and r.text.startswith("0{")
