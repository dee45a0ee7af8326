"""When and in which order a WebSocket outbox's frames reach the kernel (fastsio/_core/outbox.pyx,
"Direct writes"): a broadcast's frames are handed to each recipient's socket while the flusher
runs, and never ahead of bytes the transport still holds for that connection."""

from __future__ import annotations

import asyncio
import select
import socket

from tests.clients.loops import wait_for
from tests.clients.wire import OP_TEXT, host_port
from tests.clients.ws import RawWebSocket


async def joined(url: str, rcvbuf: int = 0) -> RawWebSocket:
    host, port = host_port(url)
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
    ws = RawWebSocket(reader, writer)
    await ws.join()
    return ws


def readable(ws: RawWebSocket, timeout: float) -> bool:
    # Blocks the loop on purpose: while it waits, nothing else in this process can write.
    sock = ws.writer.get_extra_info("socket")
    return bool(select.select([sock.fileno()], [], [], timeout)[0])


async def test_a_broadcast_is_in_the_kernel_once_the_flusher_has_run(make_server):
    io, url = await make_server()
    conns = [await joined(url) for _ in range(3)]
    await wait_for(lambda: len(io.sockets.sockets) == 3)
    await asyncio.sleep(0.05)  # nothing else on its way to them
    assert not any(readable(ws, 0) for ws in conns)
    io.emit("tick", 1)
    # What the loop runs once this callback is done; the frames are written during the call,
    # in this order, so each client can read its tick before the loop runs again.
    io.engine._flusher.run()
    assert all(readable(ws, 2.0) for ws in conns)
    for ws in conns:
        assert await ws.recv_text() == '42["tick",1]'
        await ws.close()


async def test_frames_wait_behind_what_the_transport_holds(make_server):
    io, url = await make_server(max_queued_bytes=64 * 1024 * 1024)
    ws = await joined(url, rcvbuf=4096)
    await wait_for(lambda: len(io.sockets.sockets) == 1)
    sock = next(iter(io.sockets.sockets.values()))
    big = "x" * (16 * 1024 * 1024)  # more than the kernel takes while the client does not read
    io.emit("big", big)
    await asyncio.sleep(0.05)
    transport = sock.client.conn.transport
    assert transport.ws.underlying_transport.get_write_buffer_size() > 0
    for i in range(50):
        # Each of these would be sent ahead of the rest of "big" if frames went to the socket
        # while the transport still held bytes: the client would read a broken stream.
        io.emit("small", i)
        await asyncio.sleep(0)
    got = []
    while len(got) < 51:
        op, payload = await ws.recv_frame()
        assert op == OP_TEXT, (op, payload[:40])
        if payload != b"2":
            got.append(payload)
    assert got[0] == b'42["big","' + big.encode() + b'"]'
    assert got[1:] == [f'42["small",{i}]'.encode() for i in range(50)]
    await ws.close()
