"""The socket of a WebSocket session after the hand-over from the HTTP front to the core's
protocol: the picows ``WSTransport`` it sends through holds the loop's own transport, the
socket has TCP_NODELAY (set by the loop: the protocol sets no option itself) and frames may be
written on its descriptor; at DEBUG, one log line names the connection."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from fastsio.engine.websocket import WebSocketTransport
from tests.clients.ws import RawWebSocket


def _transports(io: Any) -> list[WebSocketTransport]:
    found = [sock.transport for sock in io.engine.clients.values()]
    assert found and all(isinstance(t, WebSocketTransport) for t in found)
    return found


async def test_the_transport_is_the_loops_own_and_the_socket_has_its_options(make_server):
    io, url = await make_server()
    ws = await RawWebSocket.open(url)
    try:
        await ws.join()
        (t,) = _transports(io)
        assert t.ws is not None
        underlying = t.ws.underlying_transport
        # the loop's own transport (uvloop's or asyncio's)
        assert type(underlying).__qualname__ in ("TCPTransport", "_SelectorSocketTransport")
        assert underlying.get_extra_info("peername") is not None
        sock = underlying.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert t.direct_fd == sock.fileno()
        # The session still works through it.
        io.emit("hello", 1)
        assert await ws.recv_text() == '42["hello",1]'
    finally:
        await ws.close()


async def test_the_connection_log_line_names_the_addresses(
        make_server, caplog: pytest.LogCaptureFixture):
    io, url = await make_server()
    with caplog.at_level(logging.DEBUG, logger="fastsio.engine.ws"):
        ws = await RawWebSocket.open(url)
        try:
            await ws.join()
            (t,) = _transports(io)
            assert t.ws is not None
            peer = t.ws.underlying_transport.get_extra_info("peername")
            own = t.ws.underlying_transport.get_extra_info("sockname")
        finally:
            await ws.close()
    lines = [r for r in caplog.records if r.getMessage().startswith("New connection accepted")]
    assert len(lines) == 1
    text = lines[0].getMessage()
    assert str(tuple(peer)) in text and str(tuple(own)) in text
    assert "nodelay=1" in text
