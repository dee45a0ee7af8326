"""The core's server-side WebSocket protocol (``_core/websocket.pyx``) over real sockets: every
frame the RFC 6455 parser must refuse gets its exact close code and closes only its own
connection; frames however split or batched arrive whole and in order; the handshake refuses
what the official server's ``ws`` refuses."""

from __future__ import annotations

import asyncio
import os
import struct

import orjson
import pytest

from tests.clients.http import RawConnection
from tests.clients.wire import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    TIMEOUT,
    eio_target,
    request,
    ws_frame,
    ws_upgrade_request,
)
from tests.clients.ws import RawWebSocket


def masked(first: int, length_field: bytes, payload: bytes) -> bytes:
    """A frame with the length field exactly as given (``ws_frame`` always picks the minimal
    one)."""
    mask = os.urandom(4)
    length_field = bytes([0x80 | length_field[0]]) + length_field[1:]  # the mask bit
    return (bytes([first]) + length_field + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def close(code: int, reason: bytes = b"") -> bytes:
    return ws_frame(OP_CLOSE, code.to_bytes(2, "big") + reason)


async def _closed_with(ws: RawWebSocket) -> int:
    frames = await ws.recv_until_close()
    op, payload = frames[-1]
    assert op == OP_CLOSE, frames
    return int.from_bytes(payload[:2], "big")


BAD = [
    pytest.param(masked(0x81, b"\x7e\x00\x05", b"42[1]"), 1002, id="16-bit-length-under-126"),
    pytest.param(masked(0x81, b"\x7f" + struct.pack("!Q", 300), b"x" * 300), 1002,
                 id="64-bit-length-under-65536"),
    pytest.param(masked(0x81, b"\x7f" + struct.pack("!Q", 1 << 63), b""), 1002,
                 id="64-bit-length-high-bit"),
    pytest.param(masked(0x89, b"\x7e\x00\x7e", b"p" * 126), 1002, id="ping-over-125"),
    pytest.param(ws_frame(OP_PING, b"p", fin=False), 1002, id="fragmented-ping"),
    pytest.param(ws_frame(0xB, b""), 1002, id="reserved-control-opcode"),
    pytest.param(ws_frame(OP_TEXT, b"42[1]", masked=False), 1002, id="unmasked"),
    pytest.param(ws_frame(OP_CLOSE, b"\x03"), 1002, id="close-of-one-byte"),
    pytest.param(close(1005), 1002, id="close-1005"),
    pytest.param(close(1006), 1002, id="close-1006"),
    pytest.param(close(999), 1002, id="close-999"),
    pytest.param(close(2000), 1002, id="close-2000"),
    pytest.param(close(5000), 1002, id="close-5000"),
    pytest.param(close(1000, b"\xff\xfe"), 1007, id="close-reason-not-utf8"),
]


@pytest.mark.parametrize(("frame", "code"), BAD)
async def test_a_bad_frame_gets_its_close_code_and_only_its_connection_closes(
        echo_server, frame, code):
    io, url = await echo_server()
    async with await RawWebSocket.open(url) as other, await RawWebSocket.open(url) as ws:
        await other.join()
        await ws.join()
        ws.write(frame)
        assert await _closed_with(ws) == code
        assert await ws.recv_frame() == (-1, b"")  # and the socket is closed after it
        other.send_text('421["echo","still here"]')
        while (reply := await other.recv_text()) == "2":
            pass
        assert reply == '431["still here"]'
    await asyncio.sleep(0.05)
    assert io.engine.clients == {}


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999])
async def test_a_close_with_a_valid_code_is_answered(echo_server, code):
    _io, url = await echo_server()
    async with await RawWebSocket.open(url) as ws:
        await ws.join()
        ws.write(close(code, "bye é".encode()))
        assert await _closed_with(ws) == 1000


async def test_a_data_frame_over_the_bound_is_refused_before_its_payload(echo_server):
    _io, url = await echo_server(max_http_buffer_size=1000)
    async with await RawWebSocket.open(url) as ws:
        await ws.join()
        # Only the header of a 1 MB frame: refused on the announced length.
        ws.write(masked(0x81, b"\x7f" + struct.pack("!Q", 1 << 20), b""))
        assert await _closed_with(ws) == 1009


async def test_frames_split_byte_by_byte_and_batched_arrive_whole_in_order(echo_server):
    _io, url = await echo_server()
    async with await RawWebSocket.open(url) as ws:
        await ws.join()
        sizes = [0, 1, 125, 126, 65535, 65536, 200_000]
        frames = [ws_frame(OP_TEXT, (f'42{i}["echo","' + "y" * n + '"]').encode())
                  for i, n in enumerate(sizes)]
        data = b"".join(frames)
        # The first frame a byte at a time, then the rest in uneven pieces and one batch.
        for i in range(len(frames[0])):
            ws.write(data[i:i + 1])
            await ws.writer.drain()
            await asyncio.sleep(0)
        at = len(frames[0])
        for piece in (3, 7, 130, 65_000):
            ws.write(data[at:at + piece])
            at += piece
            await ws.writer.drain()
            await asyncio.sleep(0.001)
        ws.write(data[at:])
        got = []
        while len(got) < len(sizes):
            reply = await ws.recv_text()
            if reply != "2":
                got.append(reply)
        assert got == [f"43{i}" + orjson.dumps(["y" * n]).decode() for i, n in enumerate(sizes)]


async def test_a_ping_is_answered_with_its_payload_between_data_frames(echo_server):
    _io, url = await echo_server()
    async with await RawWebSocket.open(url) as ws:
        await ws.join()
        ws.write(ws_frame(OP_TEXT, b'421["echo",1]') + ws_frame(OP_PING, b"abc")
                 + ws_frame(OP_PONG, b"unsolicited") + ws_frame(OP_TEXT, b'422["echo",2]'))
        seen = []
        while len(seen) < 3:
            op, payload = await ws.recv_frame()
            if (op, payload) != (OP_TEXT, b"2"):
                seen.append((op, payload))
        # The pong goes out at once, the acks with the loop iteration's flush.
        assert [f for f in seen if f[0] == OP_TEXT] == [(OP_TEXT, b"431[1]"), (OP_TEXT, b"432[2]")]
        assert [f for f in seen if f[0] != OP_TEXT] == [(OP_PONG, b"abc")]


async def test_frames_in_the_same_write_as_the_upgrade_request(echo_server):
    """What a client sends right behind its request (before the 101 came) is read."""
    _io, url = await echo_server()
    async with await RawWebSocket.open(url) as ws:
        ws.write(ws_upgrade_request(eio_target("websocket"))
                 + ws_frame(OP_TEXT, b"40") + ws_frame(OP_TEXT, b'421["echo","early"]'))
        assert (await ws.read_head()).status == 101
        replies = []
        while len(replies) < 3:
            replies.append(await ws.recv_text())
        assert replies[0].startswith("0{")
        assert replies[1].startswith("40{")
        assert replies[2] == '431["early"]'


async def test_binary_frames_reach_the_engine(echo_server):
    _io, url = await echo_server()
    async with await RawWebSocket.open(url) as ws:
        await ws.join()
        ws.write(ws_frame(OP_TEXT, b'451-7["echo",{"_placeholder":true,"num":0}]')
                 + ws_frame(OP_BINARY, b"\x00\x01\xff"))
        assert await ws.recv_text() == '461-7[{"_placeholder":true,"num":0}]'
        assert await ws.recv_frame() == (OP_BINARY, b"\x00\x01\xff")


def _upgrade(key: str | None, version: str | None) -> bytes:
    headers = {"Connection": "Upgrade", "Upgrade": "websocket"}
    if key is not None:
        headers["Sec-WebSocket-Key"] = key
    if version is not None:
        headers["Sec-WebSocket-Version"] = version
    return request("GET", eio_target("websocket"), headers)


@pytest.mark.parametrize(("key", "version", "message"), [
    ("dGhlIHNhbXBsZSBub25jZQ==", "12", b"Missing or invalid Sec-WebSocket-Version header"),
    ("dGhlIHNhbXBsZSBub25jZQ==", None, b"Missing or invalid Sec-WebSocket-Version header"),
    ("dGhlIHNhbXBsZQ==", "13", b"Missing or invalid Sec-WebSocket-Key header"),
    ("not a key at all!", "13", b"Missing or invalid Sec-WebSocket-Key header"),
])
async def test_an_upgrade_ws_refuses_gets_400_and_no_session(echo_server, key, version, message):
    io, url = await echo_server()
    async with await RawConnection.open(url) as conn:
        conn.write(_upgrade(key, version))
        r = await conn.read_response()
        assert r.status == 400
        assert r.body == message
        assert await conn.at_eof()
    assert io.engine.clients == {}


async def test_version_8_is_accepted_as_ws_accepts_it(echo_server):
    _io, url = await echo_server()
    async with await RawConnection.open(url) as conn:
        conn.write(_upgrade("dGhlIHNhbXBsZSBub25jZQ==", "8"))
        head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
