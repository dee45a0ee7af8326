"""The official Engine.IO v4 test suite (socket.io's ``docs/engine.io-protocol/v4-test-suite``),
ported case by case: one test per official case, its name in the docstring (``describe / it``).

The server is configured as the suite's own (the protocol document's test server): a bare
Engine.IO server on ``/engine.io`` with ``pingInterval`` 300 ms, ``pingTimeout`` 200 ms,
``maxPayload`` 1e6 and CORS for every origin, that echoes every message back. The clients are
what the suite uses: plain HTTP requests and a WebSocket, no Engine.IO client library. Each test
runs under the suite's mocha timeout (2 s; 5 s for the heartbeat cases).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from fastsio.engine.server import EngineServer
from fastsio.engine.socket import EngineSocket
from tests.clients.http import SuiteClient
from tests.clients.wire import parse_open
from tests.clients.ws import ws_receive, ws_wait_closed

PING_INTERVAL = 300
PING_TIMEOUT = 200
OPEN_KEYS = {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}


def mocha_timeout(seconds: float) -> Callable[..., Any]:
    """The suite's per-test time limit (mocha's 2 s by default, 5 s in ``heartbeat``)."""

    def decorate(fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        @functools.wraps(fn)
        async def bounded(*args: Any, **kwargs: Any) -> None:
            await asyncio.wait_for(fn(*args, **kwargs), seconds)

        return bounded

    return decorate


def echo(sock: EngineSocket) -> None:
    """The suite server's ``socket.on("data", (...args) => socket.send(...args))``."""
    sock.on_message = lambda data, binary: sock.send(data if binary else data[1:].decode())


@pytest.fixture
async def suite() -> AsyncIterator[SuiteClient]:
    engine = EngineServer(
        path="/engine.io",
        ping_interval=PING_INTERVAL / 1000,
        ping_timeout=PING_TIMEOUT / 1000,
        max_http_buffer_size=1_000_000,
        cors_allowed_origins="*",
        on_connection=echo,
    )
    port = await engine.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            yield SuiteClient(http, f"http://127.0.0.1:{port}", "/engine.io")
    finally:
        await engine.close()


def sid_query(sid: str) -> str:
    return f"EIO=4&transport=polling&sid={sid}"


async def handshake_refused(suite: SuiteClient, query: str) -> None:
    """The WebSocket never opens: the upgrade request gets a 400 (the suite waits for "close",
    which its client reports for a refused upgrade as for a closed connection)."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await suite.websocket(query)
    assert info.value.status == 400


async def upgraded(suite: SuiteClient) -> tuple[str, aiohttp.ClientWebSocketResponse]:
    """A polling session upgraded to WebSocket: probe, ``3probe``, then the upgrade packet."""
    sid = await suite.init_long_polling_session()
    ws = await suite.websocket(f"EIO=4&transport=websocket&sid={sid}")
    await ws.send_str("2probe")
    assert await ws_receive(ws) == "3probe"
    await ws.send_str("5")
    return sid, ws


# -- handshake / HTTP long-polling -------------------------------------------------------------
@mocha_timeout(2)
async def test_polling_successfully_opens_a_session(suite):
    """handshake / HTTP long-polling / successfully opens a session"""
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
async def test_polling_fails_with_an_invalid_eio_query_parameter(suite):
    """handshake / HTTP long-polling / fails with an invalid 'EIO' query parameter"""
    assert (await suite.fetch("transport=polling"))[0] == 400
    assert (await suite.fetch("EIO=abc&transport=polling"))[0] == 400


@mocha_timeout(2)
async def test_polling_fails_with_an_invalid_transport_query_parameter(suite):
    """handshake / HTTP long-polling / fails with an invalid 'transport' query parameter"""
    assert (await suite.fetch("EIO=4"))[0] == 400
    assert (await suite.fetch("EIO=4&transport=abc"))[0] == 400


@mocha_timeout(2)
async def test_polling_fails_with_an_invalid_request_method(suite):
    """handshake / HTTP long-polling / fails with an invalid request method"""
    assert (await suite.fetch("EIO=4&transport=polling", method="POST"))[0] == 400
    assert (await suite.fetch("EIO=4&transport=polling", method="PUT"))[0] == 400


# -- handshake / WebSocket ---------------------------------------------------------------------
@mocha_timeout(2)
async def test_websocket_successfully_opens_a_session(suite):
    """handshake / WebSocket / successfully opens a session"""
    ws = await suite.websocket("EIO=4&transport=websocket")
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
async def test_websocket_fails_with_an_invalid_eio_query_parameter(suite):
    """handshake / WebSocket / fails with an invalid 'EIO' query parameter"""
    await handshake_refused(suite, "transport=websocket")
    await handshake_refused(suite, "EIO=abc&transport=websocket")


@mocha_timeout(2)
async def test_websocket_fails_with_an_invalid_transport_query_parameter(suite):
    """handshake / WebSocket / fails with an invalid 'transport' query parameter"""
    await handshake_refused(suite, "EIO=4")
    await handshake_refused(suite, "EIO=4&transport=abc")


# -- message / HTTP long-polling ---------------------------------------------------------------
async def push_then_poll(suite: SuiteClient, payload: str) -> None:
    sid = await suite.init_long_polling_session()
    assert await suite.fetch(sid_query(sid), "POST", payload) == (200, "ok")
    assert await suite.fetch(sid_query(sid)) == (200, payload)


@mocha_timeout(2)
async def test_polling_one_plain_text_packet(suite):
    """message / HTTP long-polling / sends and receives a payload containing one plain text
    packet"""
    await push_then_poll(suite, "4hello")


@mocha_timeout(2)
async def test_polling_several_plain_text_packets(suite):
    """message / HTTP long-polling / sends and receives a payload containing several plain text
    packets"""
    await push_then_poll(suite, "4test1\x1e4test2\x1e4test3")


@mocha_timeout(2)
async def test_polling_plain_text_and_binary_packets(suite):
    """message / HTTP long-polling / sends and receives a payload containing plain text and
    binary packets"""
    await push_then_poll(suite, "4hello\x1ebAQIDBA==")


@mocha_timeout(2)
async def test_polling_closes_the_session_upon_invalid_packet_format(suite):
    """message / HTTP long-polling / closes the session upon invalid packet format"""
    sid = await suite.init_long_polling_session()
    assert (await suite.fetch(sid_query(sid), "POST", "abc"))[0] == 400
    assert (await suite.fetch(sid_query(sid)))[0] == 400


@mocha_timeout(2)
async def test_polling_closes_the_session_upon_duplicate_poll_requests(suite):
    """message / HTTP long-polling / closes the session upon duplicate poll requests"""
    sid = await suite.init_long_polling_session()

    async def second() -> tuple[int, str]:
        await asyncio.sleep(0.005)
        return await suite.fetch(sid_query(sid) + "&t=burst")

    first, burst = await asyncio.gather(suite.fetch(sid_query(sid)), second())
    assert first == (200, "1")
    assert burst[0] in (400, 500)
    assert (await suite.fetch(sid_query(sid)))[0] == 400


@mocha_timeout(2)
async def test_polling_closes_the_session_upon_cancelled_polling_request(suite):
    """message / HTTP long-polling / closes the session upon cancelled polling request"""
    sid = await suite.init_long_polling_session()
    poll = asyncio.ensure_future(suite.fetch(sid_query(sid)))
    await asyncio.sleep(0.005)
    poll.cancel()  # the request's connection is closed, as an aborted fetch closes it
    await asyncio.gather(poll, return_exceptions=True)
    assert (await suite.fetch(sid_query(sid)))[0] == 400


# -- message / WebSocket -----------------------------------------------------------------------
@mocha_timeout(2)
async def test_websocket_sends_and_receives_a_plain_text_packet(suite):
    """message / WebSocket / sends and receives a plain text packet"""
    ws = await suite.websocket("EIO=4&transport=websocket")
    await ws_receive(ws)  # handshake
    await ws.send_str("4hello")
    assert await ws_receive(ws) == "4hello"
    await ws.close()


@mocha_timeout(2)
async def test_websocket_sends_and_receives_a_binary_packet(suite):
    """message / WebSocket / sends and receives a binary packet"""
    ws = await suite.websocket("EIO=4&transport=websocket")
    await ws_receive(ws)  # handshake
    await ws.send_bytes(bytes([1, 2, 3, 4]))
    assert await ws_receive(ws) == bytes([1, 2, 3, 4])
    await ws.close()


@mocha_timeout(2)
async def test_websocket_closes_the_session_upon_invalid_packet_format(suite):
    """message / WebSocket / closes the session upon invalid packet format"""
    ws = await suite.websocket("EIO=4&transport=websocket")
    await ws_receive(ws)  # handshake
    await ws.send_str("abc")
    assert await ws_wait_closed(ws) == []


# -- heartbeat ---------------------------------------------------------------------------------
@mocha_timeout(5)
async def test_polling_sends_ping_pong_packets(suite):
    """heartbeat / HTTP long-polling / sends ping/pong packets"""
    sid = await suite.init_long_polling_session()
    for _ in range(3):
        assert await suite.fetch(sid_query(sid)) == (200, "2")
        assert (await suite.fetch(sid_query(sid), "POST", "3"))[0] == 200


@mocha_timeout(5)
async def test_polling_closes_the_session_upon_ping_timeout(suite):
    """heartbeat / HTTP long-polling / closes the session upon ping timeout"""
    sid = await suite.init_long_polling_session()
    await asyncio.sleep((PING_INTERVAL + PING_TIMEOUT) / 1000)
    assert (await suite.fetch(sid_query(sid)))[0] == 400


@mocha_timeout(5)
async def test_websocket_sends_ping_pong_packets(suite):
    """heartbeat / WebSocket / sends ping/pong packets"""
    ws = await suite.websocket("EIO=4&transport=websocket")
    await ws_receive(ws)  # handshake
    for _ in range(3):
        assert await ws_receive(ws) == "2"
        await ws.send_str("3")
    await ws.close()


@mocha_timeout(5)
async def test_websocket_closes_the_session_upon_ping_timeout(suite):
    """heartbeat / WebSocket / closes the session upon ping timeout"""
    ws = await suite.websocket("EIO=4&transport=websocket")
    got = await ws_wait_closed(ws)
    # The handshake, then the ping that went unanswered.
    assert len(got) == 2 and got[0].startswith("0{") and got[1] == "2"


# -- close -------------------------------------------------------------------------------------
@mocha_timeout(2)
async def test_polling_forcefully_closes_the_session(suite):
    """close / HTTP long-polling / forcefully closes the session"""
    sid = await suite.init_long_polling_session()
    poll, _ = await asyncio.gather(
        suite.fetch(sid_query(sid)), suite.fetch(sid_query(sid), "POST", "1")
    )
    assert poll == (200, "6")
    assert (await suite.fetch(sid_query(sid)))[0] == 400


@mocha_timeout(2)
async def test_websocket_forcefully_closes_the_session(suite):
    """close / WebSocket / forcefully closes the session"""
    ws = await suite.websocket("EIO=4&transport=websocket")
    await ws_receive(ws)  # handshake
    await ws.send_str("1")
    assert await ws_wait_closed(ws) == []


# -- upgrade -----------------------------------------------------------------------------------
@mocha_timeout(2)
async def test_successfully_upgrades_from_polling_to_websocket(suite):
    """upgrade / successfully upgrades from HTTP long-polling to WebSocket"""
    sid = await suite.init_long_polling_session()
    ws = await suite.websocket(f"EIO=4&transport=websocket&sid={sid}")
    await ws.send_str("2probe")
    assert await ws_receive(ws) == "3probe"
    # A noop ends the pending long-polling request cleanly.
    assert await suite.fetch(sid_query(sid)) == (200, "6")
    await ws.send_str("5")
    await ws.send_str("4hello")
    assert await ws_receive(ws) == "4hello"
    await ws.close()


@mocha_timeout(2)
async def test_ignores_http_requests_with_same_sid_after_upgrade(suite):
    """upgrade / ignores HTTP requests with same sid after upgrade"""
    sid, ws = await upgraded(suite)
    assert (await suite.fetch(sid_query(sid)))[0] == 400
    await ws.send_str("4hello")
    assert await ws_receive(ws) == "4hello"
    await ws.close()


@mocha_timeout(2)
async def test_ignores_websocket_connection_with_same_sid_after_upgrade(suite):
    """upgrade / ignores WebSocket connection with same sid after upgrade"""
    sid, ws = await upgraded(suite)
    # The second WebSocket opens (its handshake completes), then the server closes it.
    ws2 = await suite.websocket(f"EIO=4&transport=websocket&sid={sid}")
    assert await ws_wait_closed(ws2) == []
    await ws.send_str("4hello")
    assert await ws_receive(ws) == "4hello"
    await ws.close()
