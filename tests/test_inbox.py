"""The core's WebSocket listener (``_core/inbox.pyx``) under a Socket.IO session, over a raw
WebSocket: with the packet sink set, a whole event reaches the namespace's socket without the
engine's Python path; fragmented messages, binary attachments, undecodable packets and packets
for a namespace not joined take that path and behave as before; bad frames close only their
connection."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import pytest

from tests.clients.wire import OP_BINARY, OP_CLOSE, OP_CONT, OP_TEXT, eio_target, ws_frame
from tests.clients.ws import RawWebSocket


async def _joined(url: str) -> RawWebSocket:
    ws = await RawWebSocket.open(url)
    assert (await ws.upgrade(eio_target("websocket"))).status == 101
    assert (await ws.recv_text()).startswith("0{")
    ws.send_text("40")
    assert (await ws.recv_text()).startswith("40{")
    return ws


class _Calls:
    """The names of the Python functions called while it is active (this thread)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __enter__(self) -> _Calls:
        def prof(frame: Any, event: str, arg: Any) -> None:
            if event == "call":
                self.names.append(frame.f_code.co_qualname)

        sys.setprofile(prof)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)


async def test_an_event_skips_the_engine_python_path(echo_server):
    _, url = await echo_server()
    async with await _joined(url) as ws:
        with _Calls() as calls:
            ws.send_text('421["echo","a"]')
            assert await ws.recv_text() == '431["a"]'
        # From the core straight into the namespace's dispatch: not even the socket's frame.
        assert "Namespace._deliver_event" in calls.names
        for name in ("EngineSocket._on_packet", "Client._on_message", "Client._on_packet",
                     "Socket._on_packet"):
            assert name not in calls.names


async def test_catch_all_listeners_and_middlewares_take_the_socket_path(echo_server):
    # An event the core hands past Socket._on_packet would skip these: each switch (on_any,
    # off_any with a middleware left, off_any with none) is followed by an event.
    io, url = await echo_server()
    seen: list[str] = []
    sockets: list[Any] = []

    @io.on("connection")
    def joined(socket: Any) -> None:
        sockets.append(socket)

    def any_listener(event: str, *args: Any) -> None:
        seen.append(f"any {event} {args[0]}")

    def middleware(socket: Any, packet: list[Any]) -> None:
        seen.append(f"mw {packet[0]} {packet[1]}")

    async with await _joined(url) as ws:
        sock = sockets[0]
        sock.on_any(any_listener)
        with _Calls() as calls:
            ws.send_text('421["echo","a"]')
            assert await ws.recv_text() == '431["a"]'
        assert "Socket._on_packet" in calls.names
        assert seen == ["any echo a"]
        sock.use(middleware)
        sock.off_any(any_listener)
        ws.send_text('422["echo","b"]')
        assert await ws.recv_text() == '432["b"]'
        assert seen == ["any echo a", "mw echo b"]
        sock.on_any(any_listener)
        sock.off_any()
        ws.send_text('423["echo","c"]')
        assert await ws.recv_text() == '433["c"]'
        assert seen == ["any echo a", "mw echo b", "mw echo c"]

    async with await _joined(url) as ws:
        sock = sockets[1]
        sock.prepend_any(any_listener)
        ws.send_text('424["echo","d"]')
        assert await ws.recv_text() == '434["d"]'
        sock.off_any(any_listener)
        with _Calls() as calls:
            ws.send_text('425["echo","e"]')
            assert await ws.recv_text() == '435["e"]'
        assert "Socket._on_packet" not in calls.names
        assert seen[3:] == ["any echo d"]


async def test_fragmented_event_takes_the_engine_path_and_gets_its_ack(echo_server):
    _, url = await echo_server()
    async with await _joined(url) as ws:
        with _Calls() as calls:
            ws.write(ws_frame(OP_TEXT, b'421["ec', fin=False)
                     + ws_frame(OP_CONT, b'ho","ab"', fin=False) + ws_frame(OP_CONT, b"]"))
            reply = await ws.recv_text()
        assert reply == '431["ab"]'
        assert "Client._on_message" in calls.names
        ws.send_text('422["echo",{"k":1}]')  # and the next whole one on the sink again
        assert orjson.loads((await ws.recv_text())[3:]) == [{"k": 1}]


async def test_binary_event_attachments_arrive(echo_server):
    _, url = await echo_server()
    async with await _joined(url) as ws:
        ws.send_text('451-1["echo",{"_placeholder":true,"num":0}]')
        ws.send_frame(OP_BINARY, b"\x00\x01\xff")
        assert await ws.recv_text() == '461-1[{"_placeholder":true,"num":0}]'
        op, payload = await ws.recv_frame()
        assert (op, payload) == (OP_BINARY, b"\x00\x01\xff")


@pytest.mark.parametrize(
    "packet, reason",
    [
        ('42["echo"', "forced close"),
        ('42{"not":"an array"}', "forced close"),
        ('42/other,["echo",1]', "forced server close"),  # Client.protocol_violation
        ("49", "forced close"),
    ],
    ids=["truncated-json", "object-payload", "namespace-not-joined", "bad-type"],
)
async def test_bad_packet_closes_only_its_connection(echo_server, packet, reason):
    io, url = await echo_server()
    reasons: list[str] = []

    @io.on("disconnect")
    def gone(socket: Any, why: str) -> None:
        reasons.append(why)

    async with await _joined(url) as other, await _joined(url) as ws:
        ws.send_text(packet)
        assert (await ws.recv_until_close())[-1][0] in (OP_CLOSE, -1)
        other.send_text('421["echo","still here"]')
        assert await other.recv_text() == '431["still here"]'
        assert reasons == [reason]


@pytest.mark.parametrize(
    "frames, code",
    [
        (bytes([0x80 | 0x40 | OP_TEXT, 0x80 | 3]) + b"\0\0\0\0" + b"4hi", 1002),
        (ws_frame(OP_CONT, b"42[]"), 1002),
        (ws_frame(OP_TEXT, b'42["echo",', fin=False) + ws_frame(OP_TEXT, b"1]"), 1002),
        (ws_frame(OP_TEXT, b'42["echo","', fin=False) + ws_frame(OP_CONT, b"x" * 300), 1009),
    ],
    ids=["rsv1", "continuation-first", "new-message-mid-message", "fragments-over-the-bound"],
)
async def test_bad_frames_on_a_socketio_session(echo_server, frames, code):
    _, url = await echo_server(max_http_buffer_size=256)
    async with await _joined(url) as other, await _joined(url) as ws:
        ws.write(frames)
        last = (await ws.recv_until_close())[-1]
        assert last[0] == OP_CLOSE and int.from_bytes(last[1][:2], "big") == code
        other.send_text('421["echo",2]')
        assert await other.recv_text() == "431[2]"


async def test_close_frame_is_answered(echo_server):
    _, url = await echo_server()
    async with await _joined(url) as ws:
        close = ws_frame(OP_CLOSE, (1000).to_bytes(2, "big"))
        ws.write(close + ws_frame(OP_TEXT, b'421["echo",1]'))  # nothing after the close
        frames = await ws.recv_until_close()
        assert frames[-1][0] in (OP_CLOSE, -1)
        assert all(op != OP_TEXT for op, _ in frames)


async def test_msgpack_event_over_the_sink(echo_server):
    import msgpack

    _, url = await echo_server(parser="msgpack")
    async with await RawWebSocket.open(url) as ws:
        assert (await ws.upgrade(eio_target("websocket"))).status == 101
        assert (await ws.recv_text()).startswith("0{")
        ws.send_frame(OP_BINARY, msgpack.packb({"type": 0, "nsp": "/"}))
        op, _ = await ws.recv_frame()
        assert op == OP_BINARY
        with _Calls() as calls:
            ws.send_frame(OP_BINARY, msgpack.packb({"type": 2, "nsp": "/", "data": ["echo", 7],
                                                   "id": 3}))
            op, payload = await ws.recv_frame()
        assert op == OP_BINARY
        assert msgpack.unpackb(payload) == {"type": 3, "nsp": "/", "data": [7], "id": 3}
        assert "Client._on_message" not in calls.names


async def test_a_trace_turned_on_later_sees_the_packets(echo_server, caplog):
    from fastsio import trace

    _, url = await echo_server()
    async with await _joined(url) as ws:
        ws.send_text('421["echo","quiet"]')
        assert await ws.recv_text() == '431["quiet"]'
        caplog.set_level(logging.DEBUG, logger="fastsio.trace.socket")
        trace.refresh()  # as the trace's docs say, after changing the logging configuration
        try:
            ws.send_text('422["echo","traced"]')
            assert await ws.recv_text() == '432["traced"]'
        finally:
            trace.SOCKET.setLevel(logging.NOTSET)
            trace.refresh()
    lines = [r.getMessage() for r in caplog.records if r.name == "fastsio.trace.socket"]
    assert any("< EVENT / " in line and "traced" in line for line in lines), lines
    assert not any("quiet" in line and "< EVENT" in line for line in lines)
