"""The outbound path in the core: a broadcast is encoded and framed once, and queued into every
target's outbox by the room index without running Python code per recipient; sockets with
outgoing listeners take the Python path, and leave it when the listeners go.

The per-recipient claim is checked with ``sys.setprofile``: the number of Python function calls
made by one ``emit`` must not grow with the number of recipients.
"""

from __future__ import annotations

import sys
from typing import Any

from fastsio._core import sio_packet
from fastsio._core.eio_packet import ws_frame
from tests.clients.sio import RawClient


def python_calls(fn: Any) -> int:
    """How many Python-level functions run while ``fn()`` runs. Cython functions are not:
    the debug build (profiling and line tracing compiled in) reports them to the profiler too,
    with frames of their ``.pyx`` file."""
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call" and not frame.f_code.co_filename.endswith(".pyx"):
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def test_encoded_frames_once_binary_included():
    packet = sio_packet.encode(sio_packet.EVENT, "/", ["bin", b"\x00\x01", {"a": b"xyz"}])
    assert packet == [
        b'452-["bin",{"_placeholder":true,"num":0},{"a":{"_placeholder":true,"num":1}}]',
        b"\x00\x01",
        b"xyz",
    ]
    assert packet.binary and len(packet) == 3
    frame = packet.frame
    assert frame is packet.frame  # built once, shared by every recipient
    assert frame == ws_frame(packet[0]) + ws_frame(b"\x00\x01", True) + ws_frame(b"xyz", True)
    assert packet.packets == [(packet[0], False), (b"\x00\x01", True), (b"xyz", True)]
    assert packet.size == sum(map(len, packet.parts))
    text = sio_packet.encode(sio_packet.EVENT, "/", ["t", "x" * 200])
    assert not text.binary and text.frame == ws_frame(text[0])


async def test_broadcast_runs_no_python_per_recipient(make_server, clients):
    io, url = await make_server()
    raws: list[RawClient] = [await clients.raw(url) for _ in range(2)]
    polling = await clients.sio(url, transports=("polling",))
    io.emit("warm", 0)  # first use of every code path
    for raw in raws:
        assert await raw.recv() == '42["warm",0]'
    await polling.wait("warm")

    few = python_calls(lambda: io.emit("tick", 1))
    raws += [await clients.raw(url) for _ in range(10)]
    many = python_calls(lambda: io.emit("tick", 2))
    assert many == few
    for raw in raws[:2]:
        assert await raw.recv() == '42["tick",1]'
    for raw in raws:
        assert await raw.recv() == '42["tick",2]'
    assert await polling.wait("tick", count=2) == (2,)

    # binary broadcasts take the same path
    few = python_calls(lambda: io.emit("bin", b"\x01" * 1024))
    for raw in raws:
        assert await raw.recv() == '451-["bin",{"_placeholder":true,"num":0}]'
        assert await raw.recv() == b"\x01" * 1024
    assert await polling.wait("bin") == (b"\x01" * 1024,)


async def test_outgoing_listeners_take_the_python_path(make_server, clients):
    io, url = await make_server()
    watched, other = await clients.raw(url), await clients.raw(url)
    sock = io.of("/").sockets[watched.sid]
    seen: list[tuple[Any, ...]] = []

    def listener(*args: Any) -> None:
        seen.append(args)

    sock.on_any_outgoing(listener)
    io.emit("a", 1)
    assert seen == [("a", 1)]
    sock.off_any_outgoing(listener)
    io.emit("b", 2)
    assert seen == [("a", 1)]  # back on the fast path: the listener is gone
    for raw in (watched, other):
        assert await raw.recv() == '42["a",1]'
        assert await raw.recv() == '42["b",2]'


async def test_volatile_broadcast_skips_a_busy_connection(make_server, clients):
    io, url = await make_server()
    raw = await clients.raw(url)
    io.emit("first", 1)
    io.volatile.emit("dropped", 2)  # the first one is still queued: the connection is busy
    io.emit("last", 3)
    assert await raw.recv() == '42["first",1]'
    assert await raw.recv() == '42["last",3]'
    io.volatile.emit("kept", 4)  # nothing queued any more
    assert await raw.recv() == '42["kept",4]'
