"""The official Socket.IO v5 test suite (socket.io's ``docs/socket.io-protocol/v5-test-suite``),
ported case by case: one test per official case, its name in the docstring (``describe / it``).

The server is configured as the suite's own (the protocol document's test server):
``pingInterval`` 300 ms, ``pingTimeout`` 200 ms, ``maxPayload`` 1e6, ``connectTimeout`` 1 s,
CORS for every origin; on ``/`` each socket is sent ``auth`` with its handshake's auth, echoes
``message`` as ``message-back`` and acknowledges ``message-with-ack`` with its arguments; on
``/custom`` each socket is sent ``auth``. The clients are what the suite uses: plain HTTP
requests and a WebSocket. Each test runs under the suite's mocha timeout (2 s; 5 s for the
heartbeat cases).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest

import fastsio
from tests.clients.http import SuiteClient
from tests.clients.wire import parse_open
from tests.clients.ws import ws_receive, ws_wait_closed

PING_INTERVAL = 300
PING_TIMEOUT = 200
OPEN_KEYS = {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
WS = "EIO=4&transport=websocket"


def mocha_timeout(seconds: float) -> Callable[..., Any]:
    """The suite's per-test time limit (mocha's 2 s by default, 5 s in ``heartbeat``)."""

    def decorate(fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        @functools.wraps(fn)
        async def bounded(*args: Any, **kwargs: Any) -> None:
            await asyncio.wait_for(fn(*args, **kwargs), seconds)

        return bounded

    return decorate


@pytest.fixture
async def suite() -> AsyncIterator[SuiteClient]:
    io = fastsio.Server(
        ping_interval=PING_INTERVAL / 1000,
        ping_timeout=PING_TIMEOUT / 1000,
        max_http_buffer_size=1_000_000,
        connect_timeout=1.0,
        cors_allowed_origins="*",
    )

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.emit("auth", socket.handshake.auth)

    @io.on("message")
    def on_message(socket: fastsio.Socket, *args: Any) -> None:
        socket.emit("message-back", *args)

    @io.on("message-with-ack")
    def on_message_with_ack(socket: fastsio.Socket, *args: Any) -> tuple[Any, ...]:
        return args

    io.of("/custom").on("connection", lambda socket: socket.emit("auth", socket.handshake.auth))

    port = await io.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            yield SuiteClient(http, f"http://127.0.0.1:{port}", "/socket.io")
    finally:
        await io.close()


def sid_query(sid: str) -> str:
    return f"EIO=4&transport=polling&sid={sid}"


async def handshake_refused(suite: SuiteClient, query: str) -> None:
    """The WebSocket never opens: the upgrade request gets a 400 (the suite waits for "close",
    which its client reports for a refused upgrade as for a closed connection)."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await suite.websocket(query)
    assert info.value.status == 400


async def probed(suite: SuiteClient) -> tuple[str, aiohttp.ClientWebSocketResponse]:
    """A polling session and its WebSocket after the probe (``2probe`` answered ``3probe``)."""
    sid = await suite.init_long_polling_session()
    ws = await suite.websocket(f"EIO=4&transport=websocket&sid={sid}")
    await ws.send_str("2probe")
    assert await ws_receive(ws) == "3probe"
    return sid, ws


async def init_socketio_connection(suite: SuiteClient) -> aiohttp.ClientWebSocketResponse:
    """The suite's ``initSocketIOConnection``: Engine.IO open, CONNECT to ``/``, its answer and
    the ``auth`` event."""
    ws = await suite.websocket(WS)
    await ws_receive(ws)  # Engine.IO handshake
    await ws.send_str("40")
    await ws_receive(ws)  # Socket.IO handshake
    await ws_receive(ws)  # "auth" packet
    return ws


async def receive_packets(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[Any]:
    """The suite's ``waitForPackets``: the next ``count`` messages, pings left out."""
    packets: list[Any] = []
    while len(packets) < count:
        data = await ws_receive(ws)
        assert data is not None, packets
        if data != "2":
            packets.append(data)
    return packets


def connect_answer(data: Any, prefix: str) -> None:
    """A CONNECT answer: ``prefix`` then ``{"sid": <string>}`` and nothing else."""
    assert isinstance(data, str) and data.startswith(prefix), data
    handshake = orjson.loads(data[len(prefix):])
    assert set(handshake) == {"sid"}
    assert isinstance(handshake["sid"], str)


# == Engine.IO protocol =========================================================================
# -- handshake / HTTP long-polling -------------------------------------------------------------
@mocha_timeout(2)
async def test_polling_should_successfully_open_a_session(suite):
    """Engine.IO protocol / handshake / HTTP long-polling / should successfully open a session"""
    status, content = await suite.fetch("EIO=4&transport=polling")
    assert status == 200
    value = parse_open(content)
    assert set(value) == OPEN_KEYS
    assert isinstance(value["sid"], str)
    assert value["upgrades"] == ["websocket"]
    assert value["pingInterval"] == PING_INTERVAL
    assert value["pingTimeout"] == PING_TIMEOUT
    assert value["maxPayload"] == 1000000


@mocha_timeout(2)
async def test_polling_should_fail_with_an_invalid_eio_query_parameter(suite):
    """Engine.IO protocol / handshake / HTTP long-polling / should fail with an invalid 'EIO'
    query parameter"""
    assert (await suite.fetch("transport=polling"))[0] == 400
    assert (await suite.fetch("EIO=abc&transport=polling"))[0] == 400


@mocha_timeout(2)
async def test_polling_should_fail_with_an_invalid_transport_query_parameter(suite):
    """Engine.IO protocol / handshake / HTTP long-polling / should fail with an invalid
    'transport' query parameter"""
    assert (await suite.fetch("EIO=4"))[0] == 400
    assert (await suite.fetch("EIO=4&transport=abc"))[0] == 400


@mocha_timeout(2)
async def test_polling_should_fail_with_an_invalid_request_method(suite):
    """Engine.IO protocol / handshake / HTTP long-polling / should fail with an invalid request
    method"""
    assert (await suite.fetch("EIO=4&transport=polling", method="POST"))[0] == 400
    assert (await suite.fetch("EIO=4&transport=polling", method="PUT"))[0] == 400


# -- handshake / WebSocket ---------------------------------------------------------------------
@mocha_timeout(2)
async def test_websocket_should_successfully_open_a_session(suite):
    """Engine.IO protocol / handshake / WebSocket / should successfully open a session"""
    ws = await suite.websocket(WS)
    data = await ws_receive(ws)
    assert isinstance(data, str)
    value = parse_open(data)
    assert set(value) == OPEN_KEYS
    assert isinstance(value["sid"], str)
    assert value["upgrades"] == []
    assert value["pingInterval"] == PING_INTERVAL
    assert value["pingTimeout"] == PING_TIMEOUT
    assert value["maxPayload"] == 1000000
    await ws.close()


@mocha_timeout(2)
async def test_websocket_should_fail_with_an_invalid_eio_query_parameter(suite):
    """Engine.IO protocol / handshake / WebSocket / should fail with an invalid 'EIO' query
    parameter"""
    await handshake_refused(suite, "transport=websocket")
    await handshake_refused(suite, "EIO=abc&transport=websocket")


@mocha_timeout(2)
async def test_websocket_should_fail_with_an_invalid_transport_query_parameter(suite):
    """Engine.IO protocol / handshake / WebSocket / should fail with an invalid 'transport'
    query parameter"""
    await handshake_refused(suite, "EIO=4")
    await handshake_refused(suite, "EIO=4&transport=abc")


# -- heartbeat ---------------------------------------------------------------------------------
@mocha_timeout(5)
async def test_polling_should_send_ping_pong_packets(suite):
    """Engine.IO protocol / heartbeat / HTTP long-polling / should send ping/pong packets"""
    # No Socket.IO CONNECT is sent: the three cycles must fit in the 1 s connect timeout.
    sid = await suite.init_long_polling_session()
    for _ in range(3):
        assert await suite.fetch(sid_query(sid)) == (200, "2")
        assert (await suite.fetch(sid_query(sid), "POST", "3"))[0] == 200


@mocha_timeout(5)
async def test_polling_should_close_the_session_upon_ping_timeout(suite):
    """Engine.IO protocol / heartbeat / HTTP long-polling / should close the session upon ping
    timeout"""
    sid = await suite.init_long_polling_session()
    await asyncio.sleep((PING_INTERVAL + PING_TIMEOUT) / 1000)
    assert (await suite.fetch(sid_query(sid)))[0] == 400


@mocha_timeout(5)
async def test_websocket_should_send_ping_pong_packets(suite):
    """Engine.IO protocol / heartbeat / WebSocket / should send ping/pong packets"""
    ws = await suite.websocket(WS)
    await ws_receive(ws)  # handshake
    for _ in range(3):
        assert await ws_receive(ws) == "2"
        await ws.send_str("3")
    await ws.close()


@mocha_timeout(5)
async def test_websocket_should_close_the_session_upon_ping_timeout(suite):
    """Engine.IO protocol / heartbeat / WebSocket / should close the session upon ping
    timeout"""
    ws = await suite.websocket(WS)
    got = await ws_wait_closed(ws)
    # The handshake, then the ping that went unanswered.
    assert len(got) == 2 and got[0].startswith("0{") and got[1] == "2"


# -- close -------------------------------------------------------------------------------------
@mocha_timeout(2)
async def test_polling_should_forcefully_close_the_session(suite):
    """Engine.IO protocol / close / HTTP long-polling / should forcefully close the session"""
    sid = await suite.init_long_polling_session()
    poll, _ = await asyncio.gather(
        suite.fetch(sid_query(sid)), suite.fetch(sid_query(sid), "POST", "1")
    )
    assert poll == (200, "6")
    assert (await suite.fetch(sid_query(sid)))[0] == 400


@mocha_timeout(2)
async def test_websocket_should_forcefully_close_the_session(suite):
    """Engine.IO protocol / close / WebSocket / should forcefully close the session"""
    ws = await suite.websocket(WS)
    await ws_receive(ws)  # handshake
    await ws.send_str("1")
    assert await ws_wait_closed(ws) == []


# -- upgrade -----------------------------------------------------------------------------------
@mocha_timeout(2)
async def test_should_successfully_upgrade_from_polling_to_websocket(suite):
    """Engine.IO protocol / upgrade / should successfully upgrade from HTTP long-polling to
    WebSocket"""
    _, ws = await probed(suite)
    await ws.send_str("5")  # complete upgrade
    await ws.close()


@mocha_timeout(2)
async def test_should_ignore_http_requests_with_same_sid_after_upgrade(suite):
    """Engine.IO protocol / upgrade / should ignore HTTP requests with same sid after upgrade"""
    sid, ws = await probed(suite)
    await ws.send_str("5")
    assert (await suite.fetch(sid_query(sid)))[0] == 400
    await ws.close()


@mocha_timeout(2)
async def test_should_ignore_websocket_connection_with_same_sid_after_upgrade(suite):
    """Engine.IO protocol / upgrade / should ignore WebSocket connection with same sid after
    upgrade"""
    sid, ws = await probed(suite)
    await ws.send_str("5")
    # The second WebSocket opens (its handshake completes), then the server closes it.
    ws2 = await suite.websocket(f"EIO=4&transport=websocket&sid={sid}")
    assert await ws_wait_closed(ws2) == []
    await ws.close()


# == Socket.IO protocol =========================================================================
# -- connect -----------------------------------------------------------------------------------
@mocha_timeout(2)
async def test_should_allow_connection_to_the_main_namespace(suite):
    """Socket.IO protocol / connect / should allow connection to the main namespace"""
    ws = await suite.websocket(WS)
    await ws_receive(ws)  # Engine.IO handshake
    await ws.send_str("40")
    connect_answer(await ws_receive(ws), "40")
    assert await ws_receive(ws) == '42["auth",{}]'
    await ws.close()


@mocha_timeout(2)
async def test_should_allow_connection_to_the_main_namespace_with_a_payload(suite):
    """Socket.IO protocol / connect / should allow connection to the main namespace with a
    payload"""
    ws = await suite.websocket(WS)
    await ws_receive(ws)  # Engine.IO handshake
    await ws.send_str('40{"token":"123"}')
    connect_answer(await ws_receive(ws), "40")
    assert await ws_receive(ws) == '42["auth",{"token":"123"}]'
    await ws.close()


@mocha_timeout(2)
async def test_should_allow_connection_to_a_custom_namespace(suite):
    """Socket.IO protocol / connect / should allow connection to a custom namespace"""
    ws = await suite.websocket(WS)
    await ws_receive(ws)  # Engine.IO handshake
    await ws.send_str("40/custom,")
    connect_answer(await ws_receive(ws), "40/custom,")
    assert await ws_receive(ws) == '42/custom,["auth",{}]'
    await ws.close()


@mocha_timeout(2)
async def test_should_allow_connection_to_a_custom_namespace_with_a_payload(suite):
    """Socket.IO protocol / connect / should allow connection to a custom namespace with a
    payload"""
    ws = await suite.websocket(WS)
    await ws_receive(ws)  # Engine.IO handshake
    await ws.send_str('40/custom,{"token":"abc"}')
    connect_answer(await ws_receive(ws), "40/custom,")
    assert await ws_receive(ws) == '42/custom,["auth",{"token":"abc"}]'
    await ws.close()


@mocha_timeout(2)
async def test_should_disallow_connection_to_an_unknown_namespace(suite):
    """Socket.IO protocol / connect / should disallow connection to an unknown namespace"""
    ws = await suite.websocket(WS)
    await ws_receive(ws)  # Engine.IO handshake
    await ws.send_str("40/random")
    assert await ws_receive(ws) == '44/random,{"message":"Invalid namespace"}'
    await ws.close()


@mocha_timeout(2)
async def test_should_disallow_connection_with_an_invalid_handshake(suite):
    """Socket.IO protocol / connect / should disallow connection with an invalid handshake"""
    ws = await suite.websocket(WS)
    await ws_receive(ws)  # Engine.IO handshake
    await ws.send_str("4abc")
    assert await ws_wait_closed(ws) == []


@mocha_timeout(2)
async def test_should_close_the_connection_if_no_handshake_is_received(suite):
    """Socket.IO protocol / connect / should close the connection if no handshake is
    received"""
    # The suite's client leaves pings unanswered, so its ping timeout (500 ms) would close the
    # connection first: this client answers them, so only the connect timeout (1 s) can.
    loop = asyncio.get_running_loop()
    ws = await suite.websocket(WS)
    start = loop.time()
    opened = await ws_receive(ws)
    assert isinstance(opened, str) and opened.startswith("0{")
    pings = 0
    while (data := await ws_receive(ws)) is not None:
        assert data == "2", data
        pings += 1
        await ws.send_str("3")
    assert pings >= 1
    assert loop.time() - start >= 0.95


# -- disconnect --------------------------------------------------------------------------------
@mocha_timeout(2)
async def test_should_disconnect_from_the_main_namespace(suite):
    """Socket.IO protocol / disconnect / should disconnect from the main namespace"""
    ws = await init_socketio_connection(suite)
    await ws.send_str("41")
    # Nothing answers the DISCONNECT, and the Engine.IO session stays: the next packet is a ping.
    assert await ws_receive(ws) == "2"
    await ws.close()


@mocha_timeout(2)
async def test_should_connect_then_disconnect_from_a_custom_namespace(suite):
    """Socket.IO protocol / disconnect / should connect then disconnect from a custom
    namespace"""
    ws = await init_socketio_connection(suite)
    assert await ws_receive(ws) == "2"  # ping
    await ws.send_str("40/custom")
    connect_answer(await ws_receive(ws), "40/custom,")  # Socket.IO handshake
    assert await ws_receive(ws) == '42/custom,["auth",{}]'
    await ws.send_str("41/custom")
    await ws.send_str('42["message","message to main namespace"]')
    assert await ws_receive(ws) == '42["message-back","message to main namespace"]'
    await ws.close()


# -- message -----------------------------------------------------------------------------------
@mocha_timeout(2)
async def test_should_send_a_plain_text_packet(suite):
    """Socket.IO protocol / message / should send a plain-text packet"""
    ws = await init_socketio_connection(suite)
    await ws.send_str('42["message",1,"2",{"3":[true]}]')
    assert await ws_receive(ws) == '42["message-back",1,"2",{"3":[true]}]'
    await ws.close()


@mocha_timeout(2)
async def test_should_send_a_packet_with_binary_attachments(suite):
    """Socket.IO protocol / message / should send a packet with binary attachments"""
    ws = await init_socketio_connection(suite)
    await ws.send_str(
        '452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    )
    await ws.send_bytes(bytes([1, 2, 3]))
    await ws.send_bytes(bytes([4, 5, 6]))
    assert await receive_packets(ws, 3) == [
        '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        bytes([1, 2, 3]),
        bytes([4, 5, 6]),
    ]
    await ws.close()


@mocha_timeout(2)
async def test_should_send_a_plain_text_packet_with_an_ack(suite):
    """Socket.IO protocol / message / should send a plain-text packet with an ack"""
    ws = await init_socketio_connection(suite)
    await ws.send_str('42456["message-with-ack",1,"2",{"3":[false]}]')
    assert await ws_receive(ws) == '43456[1,"2",{"3":[false]}]'
    await ws.close()


@mocha_timeout(2)
async def test_should_send_a_packet_with_binary_attachments_and_an_ack(suite):
    """Socket.IO protocol / message / should send a packet with binary attachments and an ack"""
    ws = await init_socketio_connection(suite)
    await ws.send_str(
        '452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    )
    await ws.send_bytes(bytes([1, 2, 3]))
    await ws.send_bytes(bytes([4, 5, 6]))
    assert await receive_packets(ws, 3) == [
        '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        bytes([1, 2, 3]),
        bytes([4, 5, 6]),
    ]
    await ws.close()


@mocha_timeout(2)
async def test_should_close_the_connection_upon_unknown_packet_type(suite):
    """Socket.IO protocol / message / should close the connection upon invalid format (unknown
    packet type)"""
    ws = await init_socketio_connection(suite)
    await ws.send_str("4abc")
    # Closed at once, before the first ping (the ping timeout would close it later).
    assert await ws_wait_closed(ws) == []


@mocha_timeout(2)
async def test_should_close_the_connection_upon_invalid_payload_format(suite):
    """Socket.IO protocol / message / should close the connection upon invalid format (invalid
    payload format)"""
    ws = await init_socketio_connection(suite)
    await ws.send_str("42{}")
    # Closed at once, before the first ping (the ping timeout would close it later).
    assert await ws_wait_closed(ws) == []


@mocha_timeout(2)
async def test_should_close_the_connection_upon_invalid_ack_id(suite):
    """Socket.IO protocol / message / should close the connection upon invalid format (invalid
    ack id)"""
    ws = await init_socketio_connection(suite)
    await ws.send_str('42abc["message-with-ack",1,"2",{"3":[false]}]')
    # Closed at once, before the first ping (the ping timeout would close it later).
    assert await ws_wait_closed(ws) == []
