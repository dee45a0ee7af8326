"""Socket.IO v2 clients (Engine.IO protocol 3) with ``allow_eio3=True``; refused by default.
After the official server's test/v2-compatibility.ts, with a raw v2 client: Engine.IO v3
length-prefixed polling payloads, the namespace query carried in the CONNECT packet (it becomes
``handshake.auth``), ``/`` joined by the server itself, v3 CONNECT answers without a payload,
socket ids ``<engine sid>`` / ``<nsp>#<engine sid>``, heartbeats started by the client."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

import fastsio
from tests.clients.loops import wait_for
from tests.clients.polling import V3Polling
from tests.clients.sio import sio_clients
from tests.clients.wire import TIMEOUT, ws_url


async def _v2_session(http: aiohttp.ClientSession, url: str) -> V3Polling:
    """Handshake, then the CONNECT for ``/`` that the server sends without being asked."""
    client = await V3Polling.open(http, url)
    assert await client.recv() == "40"
    return client


# -- the official tests -------------------------------------------------------------------------
async def test_v2_client_connects_when_allow_eio3(make_server):
    io, url = await make_server(allow_eio3=True, ping_interval=0.3, ping_timeout=0.2)
    connected: list[fastsio.Socket] = []
    io.on("connection", connected.append)
    async with aiohttp.ClientSession() as http:
        client = await V3Polling.open(http, url)
        assert client.handshake["upgrades"] == ["websocket"]
        assert client.handshake["pingInterval"] == 300
        assert client.handshake["pingTimeout"] == 200
        # The server joins ``/`` itself and says so with a v3 CONNECT (no payload).
        assert await client.recv() == "40"
        await wait_for(lambda: len(connected) == 1)
        # A v2 client knows its socket by the Engine.IO session id.
        assert connected[0].id == client.sid
        await client.post("1")


async def test_v2_client_connects_to_a_namespace_with_a_query(make_server):
    io, url = await make_server(allow_eio3=True)
    connected: list[fastsio.Socket] = []
    io.of("/the-namespace").on("connection", connected.append)
    async with aiohttp.ClientSession() as http:
        client = await _v2_session(http, url)
        await client.post("40/the-namespace?test=123,")
        assert await client.recv() == "40/the-namespace,"
        await wait_for(lambda: len(connected) == 1)
        sock = connected[0]
        assert sock.handshake.auth == {"test": "123"}
        assert sock.id == "/the-namespace#" + client.sid
        await client.post("1")


async def test_v2_client_refused_without_allow_eio3(make_server):
    io, url = await make_server()
    async with aiohttp.ClientSession() as http:
        for query in ("EIO=3&transport=polling", "transport=polling"):
            timeout = aiohttp.ClientTimeout(total=TIMEOUT)
            async with http.get(f"{url}/socket.io/?{query}", timeout=timeout) as r:
                assert r.status == 400
                assert orjson.loads(await r.read()) == {
                    "code": 5,
                    "message": "Unsupported protocol version",
                }
        # Over WebSocket no session opens either: the handshake is refused, or (as the official
        # server does) the connection ends before any open packet.
        try:
            ws = await http.ws_connect(
                ws_url(url, EIO="3"), timeout=aiohttp.ClientWSTimeout(ws_close=1.0)
            )
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 400
        else:
            msg = await ws.receive(5)
            await ws.close()
            assert msg.type != aiohttp.WSMsgType.TEXT, msg
    assert io.engine.clients == {}


async def test_v4_clients_still_connect_with_allow_eio3(make_server):
    io, url = await make_server(allow_eio3=True)
    io.on("echo", lambda sock, value: value)
    async with sio_clients() as connect:
        for transports in (["polling"], ["websocket"]):
            client = await connect(url, transports=transports)
            assert await client.call("echo", "v4", timeout=5) == "v4"
            # A v4 socket id is not the Engine.IO session id.
            assert client.get_sid("/") != client.eio.sid


# -- v3 semantics the v2 client relies on --------------------------------------------------------
async def test_v2_events_acks_and_payload_lengths(make_server):
    """Lengths in v3 payloads count UTF-16 code units, as JavaScript does."""
    io, url = await make_server(allow_eio3=True)
    received = []
    io.on("connection", lambda sock: sock.emit("hello", "héllo 😀"))

    @io.on("echo")
    def echo(sock, value):
        received.append(value)
        return value + "!"

    async with aiohttp.ClientSession() as http:
        client = await _v2_session(http, url)
        assert await client.recv() == '42["hello","héllo 😀"]'
        await client.post('42["echo","ü😀"]', '427["echo","𝄞"]')
        assert await client.recv() == '437["𝄞!"]'
        assert received == ["ü😀", "𝄞"]
        await client.post("1")


async def test_v2_heartbeat_is_started_by_the_client(make_server):
    """In protocol 3 the client pings and the server answers; the server never pings, and a
    session lives as long as its client pings within pingInterval + pingTimeout."""
    io, url = await make_server(allow_eio3=True, ping_interval=0.2, ping_timeout=0.2)
    async with aiohttp.ClientSession() as http:
        client = await _v2_session(http, url)
        for _ in range(2):
            pending = asyncio.ensure_future(client.poll())
            await asyncio.sleep(0.3)  # past pingInterval, before pingInterval + pingTimeout
            assert not pending.done(), pending.result()
            await client.post("2")
            assert await asyncio.wait_for(pending, 5) == ["3"]
        assert client.sid in io.engine.clients
        await client.post("1")


async def test_v2_middleware_error_carries_the_message_only(make_server):
    io, url = await make_server(allow_eio3=True)

    @io.of("/private").use
    def refuse(sock):
        raise fastsio.ConnectionRefused("not authorized")

    async with aiohttp.ClientSession() as http:
        client = await _v2_session(http, url)
        await client.post("40/private,")
        assert await client.recv() == '44/private,"not authorized"'
        await client.post("1")


async def test_v2_websocket_upgrade(make_server):
    io, url = await make_server(allow_eio3=True)
    io.on("ping", lambda sock: sock.emit("pong", 1))
    async with aiohttp.ClientSession() as http:
        client = await _v2_session(http, url)
        ws = await http.ws_connect(ws_url(url, client.sid, EIO="3"))
        try:
            await ws.send_str("2probe")
            assert (await ws.receive(5)).data == "3probe"
            await ws.send_str("5")
            await wait_for(lambda: io.engine.clients[client.sid].transport_name == "websocket")
            # Over WebSocket a v3 frame is one packet, without a length prefix.
            await ws.send_str('42["ping"]')
            assert (await ws.receive(5)).data == '42["pong",1]'
            await ws.send_str("2")
            assert (await ws.receive(5)).data == "3"
        finally:
            await ws.close()


async def test_v2_websocket_only(make_server):
    io, url = await make_server(allow_eio3=True)
    connected: list[fastsio.Socket] = []
    io.on("connection", connected.append)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(url, EIO="3"))
        try:
            opened = await ws.receive(5)
            assert opened.data.startswith("0{")
            sid = orjson.loads(opened.data[1:])["sid"]
            assert (await ws.receive(5)).data == "40"
            await wait_for(lambda: len(connected) == 1)
            assert connected[0].id == sid
        finally:
            await ws.close()
