"""What clients cause is logged at DEBUG (with at most a rate-limited line at INFO): no client can
fill the log by opening connections that misbehave."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from fastsio.engine.clientlog import ClientErrors
from tests.clients.http import RawConnection
from tests.clients.wire import OP_CONT, OP_TEXT, eio_target, request, ws_frame
from tests.clients.ws import RawWebSocket

# Each breaks the WebSocket framing (picows's parser, or our listener) or the packets above it.
BAD_INPUT = [
    ws_frame(OP_TEXT, b"4hi", masked=False),
    ws_frame(3, b"4hi"),  # reserved opcode
    ws_frame(OP_CONT, b"4hi"),
    ws_frame(OP_TEXT, b"4a", fin=False) + ws_frame(OP_TEXT, b"4b"),
    ws_frame(9, b"x" * 10, fin=False),  # fragmented ping
    ws_frame(9, b"x" * 200),  # control frame over 125 bytes
    bytes([0x80 | 0x40 | OP_TEXT, 0x80 | 3]) + b"\0\0\0\0" + b"4hi",  # rsv1
    bytes([0x80 | OP_TEXT, 0x80 | 127]) + (2**62).to_bytes(8, "big") + b"\0\0\0\0",  # huge
    ws_frame(OP_TEXT, b"9nope"),  # not an Engine.IO packet
    ws_frame(OP_TEXT, b"42[broken"),  # not a Socket.IO packet
    ws_frame(OP_TEXT, b'42["event"]'),  # an event before CONNECT
    ws_frame(OP_TEXT, b"\xff\xfe"),  # not UTF-8
]
CONNECTIONS = 5  # per kind of bad input


async def bad_websocket(url: str, data: bytes) -> None:
    async with await RawWebSocket.open(url) as ws:
        await ws.handshake()
        ws.write(data)
        await ws.recv_until_close()


async def bad_http(url: str, data: bytes) -> None:
    async with await RawConnection.open(url) as conn:
        conn.write(data)
        assert (await conn.read_head()).status >= 400


async def test_malformed_input_from_many_connections_logs_nothing_at_warning(make_server, caplog):
    caplog.set_level(logging.DEBUG)
    io, url = await make_server()
    jobs = [bad_websocket(url, data) for data in BAD_INPUT for _ in range(CONNECTIONS)]
    jobs += [
        bad_http(url, data)
        for data in (
            b"GARBAGE\r\n\r\n",
            request("GET", eio_target(EIO="9")),
            request("POST", eio_target(sid="unknown"), body=b"4x"),
            request("GET", eio_target("websocket")),  # websocket without an upgrade
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        )
        for _ in range(CONNECTIONS)
    ]
    await asyncio.gather(*jobs)
    await asyncio.sleep(0.2)  # picows disconnects a little after a parser error
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == [], [r.getMessage() for r in loud]
    # The input did reach picows's parser (its errors are there, at DEBUG) and at most one line
    # per kind went to INFO.
    parser_errors = [r for r in caplog.records if "WS parser error" in r.getMessage()]
    assert len(parser_errors) >= CONNECTIONS
    assert len([r for r in parser_errors if r.levelno == logging.INFO]) <= 1
    # Nor does picows announce connections above DEBUG.
    assert not [r for r in caplog.records
                if r.levelno >= logging.INFO and "connection accepted" in r.getMessage()]
    assert io.engine.clients == {}


def test_client_errors_are_rate_limited_with_a_count(caplog):
    caplog.set_level(logging.DEBUG, logger="fastsio.test")
    errors = ClientErrors(logging.getLogger("fastsio.test"), every=0.05)
    for i in range(10):
        errors.log("bad thing %d", i)
    info = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [r.getMessage() for r in info] == ["bad thing 0"]
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG]) == 9
    caplog.clear()
    time.sleep(0.06)
    errors.log("bad thing %d", 10)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "bad thing 10 (and 9 more like it in the last 0.05 s, at DEBUG)")
    ]


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING])
async def test_no_picows_line_per_connection_at_info_or_above(make_server, caplog, level):
    caplog.set_level(level)
    _, url = await make_server()
    for _ in range(5):
        async with await RawWebSocket.open(url) as ws:
            assert (await ws.upgrade(eio_target("websocket"))).status == 101
            await ws.recv_text()
    await asyncio.sleep(0.05)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("fastsio")] == []
