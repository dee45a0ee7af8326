"""The Engine.IO handshake as the Socket.IO server exposes it: CORS headers (preflight and
handshake) and ``allow_request``, after the official server's test/handshake.ts."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import socketio

from tests.clients.http import fetch
from tests.clients.sio import sio_clients

HANDSHAKE = "/socket.io/default/?transport=polling&EIO=4"


def _split(value: str | None) -> set[str]:
    return {v.strip() for v in (value or "").split(",") if v.strip()}


async def test_preflight_sends_access_control_headers(make_server):
    origin = "http://localhost:54023"
    _, url = await make_server(cors_allowed_origins=origin, cors_credentials=True)
    r = await fetch(
        url + HANDSHAKE,
        "OPTIONS",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert r.status == 204
    assert r.body == b""
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert {"GET", "POST"} <= _split(r.headers.get("Access-Control-Allow-Methods"))
    assert r.headers["Access-Control-Allow-Headers"] == "content-type"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"


async def test_handshake_sends_access_control_headers(make_server):
    origin = "http://localhost:54024"
    _, url = await make_server(cors_allowed_origins=origin, cors_credentials=True)
    r = await fetch(url + HANDSHAKE, headers={"Origin": origin})
    assert r.status == 200
    assert r.text.startswith("0{")
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    # The answer depends on the Origin header: caches must know it.
    assert "origin" in {v.lower() for v in _split(r.headers.get("Vary"))}


async def test_handshake_from_other_origin_gets_no_allow_origin(make_server):
    _, url = await make_server(
        cors_allowed_origins=["http://localhost:54025"], cors_credentials=True
    )
    r = await fetch(url + HANDSHAKE, headers={"Origin": "http://evil.example"})
    assert r.headers.get("Access-Control-Allow-Origin") in (None, "")


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_allow_request_returning_true_accepts(make_server, kind):
    seen = []

    def allow(req):
        seen.append((req.path, req.query.get("transport"), req.headers.get("x-probe")))
        return True

    async def allow_async(req):
        await asyncio.sleep(0)
        return allow(req)

    _, url = await make_server(allow_request=allow if kind == "sync" else allow_async)
    r = await fetch(url + HANDSHAKE, headers={"X-Probe": "yes"})
    assert r.status == 200
    assert r.text.startswith("0{")
    assert seen == [("/socket.io/default/", "polling", "yes")]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_allow_request_returning_false_refuses(make_server, kind):
    def allow(req):
        return False

    async def allow_async(req):
        await asyncio.sleep(0)
        return False

    io, url = await make_server(allow_request=allow if kind == "sync" else allow_async)
    r = await fetch(url + HANDSHAKE, headers={"Origin": "http://foo.example"})
    assert r.status == 403
    assert orjson.loads(r.body) == {"code": 4, "message": "Forbidden"}
    assert io.engine.clients == {}


async def test_allow_request_refusal_message_and_cors(make_server):
    origin = "http://localhost:54026"
    _, url = await make_server(cors_allowed_origins=origin, allow_request=lambda req: "go away")
    r = await fetch(url + HANDSHAKE, headers={"Origin": origin})
    assert r.status == 403
    assert orjson.loads(r.body) == {"code": 4, "message": "go away"}
    # A browser can only read the refusal when the CORS headers come with it.
    assert r.headers["Access-Control-Allow-Origin"] == origin


async def test_allow_request_is_asked_once_per_session(make_server):
    calls = []

    def allow(req):
        calls.append(req.query.get("transport"))
        return True

    io, url = await make_server(allow_request=allow)

    @io.on("echo")
    def echo(socket, value):
        return value

    async with sio_clients() as connect:
        client = await connect(url, transports=["polling", "websocket"])
        assert await client.call("echo", 1, timeout=5) == 1
        assert await client.call("echo", 2, timeout=5) == 2
    # Later polls, posts and the upgrade belong to the session: not asked again.
    assert calls == ["polling"]


async def test_allow_request_refuses_a_websocket_handshake(make_server):
    io, url = await make_server(allow_request=lambda req: False)
    async with sio_clients() as connect:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect(url, transports=["websocket"])
    assert io.engine.clients == {}
    assert len(io.sockets.sockets) == 0
