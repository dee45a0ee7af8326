"""When and in which order a WebSocket outbox's frames reach the kernel (fastsio/_core/outbox.pyx,
"Direct writes", "Who is written first"): a broadcast's frames are handed to each recipient's
socket while the flusher runs, never ahead of bytes the transport still holds for that
connection, and a pipelining client's replies go before the other connections' frames; an
outbox whose flush raises holds up no other."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import struct

import aiohttp

from fastsio._core.outbox import Flusher, Outbox
from tests.clients.loops import wait_for
from tests.clients.polling import Polling
from tests.clients.wire import OP_TEXT, host_port, ws_frame
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


# Linux's SO_TIMESTAMPNS (asm-generic, x86 and arm alike), which Python's socket module does not
# name: each read then comes with the time the kernel queued its first byte to the socket.
SO_TIMESTAMPNS = 35


def arrival_ns(ws: RawWebSocket) -> int:
    """When the first byte now waiting on ``ws`` reached its socket (ns, the kernel's clock).
    The bytes are taken from the socket itself: the client's stream never sees them."""
    with socket.socket(fileno=os.dup(ws.writer.get_extra_info("socket").fileno())) as sock:
        sock.setblocking(False)
        data, anc, _, _ = sock.recvmsg(1 << 20, socket.CMSG_SPACE(16))
        assert data
        (level, kind, raw), = anc
        assert (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMPNS)
        sec, nsec = struct.unpack("qq", raw[:16])
        return sec * 1_000_000_000 + nsec


async def write_order(make_server, events: list[str]) -> tuple[int, list[int]]:
    """A sender and four receivers (joined before it); the sender writes ``events`` at once,
    each a ``bcast`` that emits to everyone and acks. The arrival times of what the server wrote
    for the sender and for each receiver, in that first flush."""
    io, url = await make_server()

    @io.on("bcast")
    def bcast(socket_: object, n: int) -> bool:
        io.emit("tick", n)
        return True

    receivers = [await joined(url) for _ in range(4)]
    sender = await joined(url)
    await wait_for(lambda: len(io.sockets.sockets) == 5)
    await asyncio.sleep(0.05)  # nothing else on its way to them
    conns = [sender, *receivers]
    for ws in conns:
        ws.writer.transport.pause_reading()  # what the server writes stays in the kernel
        ws.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    # The kernel turns its receive timestamps on a moment later (deferred work): until then,
    # what arrives is not stamped.
    await asyncio.sleep(0.2)
    # One write, so one segment: the server reads them all in one go.
    sender.write(b"".join(ws_frame(OP_TEXT, event.encode()) for event in events))
    await wait_for(lambda: all(readable(ws, 0) for ws in conns))
    times = [arrival_ns(ws) for ws in conns]
    for ws in conns:
        ws.writer.close()
        await ws.writer.wait_closed()
    return times[0], times[1:]


async def test_a_pipelining_clients_acks_are_written_before_the_broadcast_it_caused(make_server):
    # Two requests read in one iteration: the client is pipelining, its replies go first.
    sender, receivers = await write_order(make_server, ['4221["bcast",1]', '4222["bcast",2]'])
    assert all(sender < r for r in receivers), (sender, receivers)


async def test_a_single_request_sees_its_broadcast_reach_the_others_before_its_ack(make_server):
    # One request in flight: the plain order (the first frame queued is written first), so
    # the broadcast reaches everyone else before the sender's ack (and its own tick).
    sender, receivers = await write_order(make_server, ['4221["bcast",1]'])
    assert all(sender > r for r in receivers), (sender, receivers)


async def test_packets_that_queue_nothing_do_not_wake_the_flusher(make_server):
    # Iterations are counted in flusher runs: packets in iterations that wrote nothing look like
    # one iteration's, but an outbox with nothing queued is never preferred, so no run is made.
    io, url = await make_server()
    got: list[int] = []
    io.on("note", lambda socket_, n: got.append(n))
    ws = await joined(url)
    await wait_for(lambda: len(io.sockets.sockets) == 1)
    await asyncio.sleep(0.05)
    runs = io.engine._flusher.runs
    for n in range(4):
        ws.send_text(f'42["note",{n}]')  # no ack id: nothing goes back
        await wait_for(lambda n=n: len(got) == n + 1)
    assert got == [0, 1, 2, 3]
    assert io.engine._flusher.runs == runs
    await ws.close()


async def past_the_kernel(io, sock) -> list[str]:
    """Broadcasts ``s`` events (50 an iteration, 50 frames of about 110 bytes: under 8 KiB, so
    joined, not gathered) until the kernel refuses part of what is sent to ``sock``'s
    connection (its send buffer made small), then 5 iterations more behind what the transport
    now holds. The packets sent, in order."""
    underlying = sock.client.conn.transport.ws.underlying_transport
    underlying.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    await asyncio.sleep(0.05)
    pad = "p" * 90
    sent = 0
    while underlying.get_write_buffer_size() == 0:
        for _ in range(50):
            io.emit("s", sent, pad)
            sent += 1
        await asyncio.sleep(0)  # the flusher writes them
        assert sent < 50 * 200, "the kernel never refused a byte"
    for _ in range(5):
        for _ in range(50):
            io.emit("s", sent, pad)
            sent += 1
        await asyncio.sleep(0)
    return [f'42["s",{i},"{pad}"]' for i in range(sent)]


async def test_frames_joined_for_one_send_arrive_whole_when_the_kernel_takes_part(make_server):
    # The small frames of one iteration leave as one contiguous send (sendv.h); when the kernel
    # takes only part of it, the rest goes to the transport, and the stream stays whole.
    io, url = await make_server(max_queued_bytes=64 * 1024 * 1024)
    ws = await joined(url, rcvbuf=4096)
    await wait_for(lambda: len(io.sockets.sockets) == 1)
    want = await past_the_kernel(io, next(iter(io.sockets.sockets.values())))
    assert await texts(ws, len(want)) == want
    await ws.close()


# -- the frame log (outbox.pyx, "The frame log") -------------------------------------------------


async def texts(ws: RawWebSocket, count: int) -> list[str]:
    """The next ``count`` text frames, pings left out."""
    got: list[str] = []
    while len(got) < count:
        op, payload = await ws.recv_frame()
        assert op == OP_TEXT, (op, payload[:40])
        if payload != b"2":
            got.append(payload.decode())
    return got


async def joined_all(io, url: str, n: int) -> tuple[list[RawWebSocket], list]:
    """``n`` clients, and the server's socket of each, in the order they joined."""
    conns, socks = [], []
    for k in range(n):
        conns.append(await joined(url))
        await wait_for(lambda k=k: len(io.sockets.sockets) == k + 1)
        socks.append(next(s for s in io.sockets.sockets.values() if s not in socks))
    await asyncio.sleep(0.05)  # nothing else on its way to them
    return conns, socks


async def test_broadcasts_private_frames_and_room_broadcasts_keep_each_connections_order(
    make_server,
):
    # One iteration mixes what extends a range of the log (a broadcast to everyone after another),
    # what turns a range into a queue (a private frame, then broadcasts behind it) and what breaks
    # a range's contiguity (a room broadcast some outboxes do not get, then one they do get).
    io, url = await make_server()
    conns, socks = await joined_all(io, url, 4)
    socks[2].join("r")
    socks[3].join("r")
    expected: list[list[str]] = [[] for _ in conns]

    def everyone(n: int) -> None:
        io.emit("all", n)
        for e in expected:
            e.append(f'42["all",{n}]')

    everyone(0)
    everyone(1)
    socks[0].emit("own", 2)
    expected[0].append('42["own",2]')
    everyone(3)
    io.to("r").emit("room", 4)
    expected[2].append('42["room",4]')
    expected[3].append('42["room",4]')
    everyone(5)
    io.except_("r").emit("rest", 6)
    expected[0].append('42["rest",6]')
    expected[1].append('42["rest",6]')
    everyone(7)
    assert io.engine._flusher.log_capacity > 0  # the frames went through the log
    for ws, want in zip(conns, expected, strict=True):
        assert await texts(ws, len(want)) == want
    for ws in conns:
        await ws.close()


async def test_acks_interleaved_with_the_broadcasts_they_follow(make_server):
    # Each event broadcasts and acks: the sender's range becomes its queue at the first ack, and
    # the receivers' ranges grow over the whole read.
    io, url = await make_server()

    @io.on("bcast")
    def bcast(socket_: object, n: int) -> int:
        io.emit("tick", n)
        return n

    conns, _ = await joined_all(io, url, 4)
    sender = conns[0]
    sender.write(b"".join(ws_frame(OP_TEXT, f'42{n}["bcast",{n}]'.encode()) for n in range(20)))
    ticks = [f'42["tick",{n}]' for n in range(20)]
    want = [p for n in range(20) for p in (f'42["tick",{n}]', f"43{n}[{n}]")]
    assert await texts(sender, 40) == want
    for ws in conns[1:]:
        assert await texts(ws, 20) == ticks
    for ws in conns:
        await ws.close()


async def test_a_range_the_kernel_takes_part_of_arrives_whole(make_server):
    # A slow reader's range is sent as it is; what the kernel does not take is copied out for
    # the transport, and the next ranges wait behind it. A fast reader beside it gets the same.
    io, url = await make_server(max_queued_bytes=64 * 1024 * 1024)
    conns, socks = await joined_all(io, url, 2)
    slow = await joined(url, rcvbuf=4096)
    await wait_for(lambda: len(io.sockets.sockets) == 3)
    want = await past_the_kernel(io, next(s for s in io.sockets.sockets.values() if s not in socks))
    for ws in [slow, *conns]:
        assert await texts(ws, len(want)) == want
        await ws.close()


async def test_a_volatile_broadcast_skips_an_outbox_holding_a_range_or_a_queue(make_server):
    io, url = await make_server()
    conns, socks = await joined_all(io, url, 3)
    socks[0].emit("own", 0)  # a queue
    io.to(socks[1].id).emit("one", 1)  # a queue too (one recipient: the log is not used)
    io.except_(socks[1].id).emit("two", 2)  # 0 queues it behind its own; 2 takes a range
    io.volatile.emit("v", 3)  # every outbox holds something: dropped for all of them
    io.to(socks[1].id).emit("end", 4)
    await asyncio.sleep(0.05)
    io.volatile.emit("w", 5)  # all idle again: everyone gets it
    assert await texts(conns[0], 3) == ['42["own",0]', '42["two",2]', '42["w",5]']
    assert await texts(conns[1], 3) == ['42["one",1]', '42["end",4]', '42["w",5]']
    assert await texts(conns[2], 2) == ['42["two",2]', '42["w",5]']
    for ws in conns:
        await ws.close()


async def test_a_volatile_broadcast_reaches_idle_outboxes_through_the_log(make_server):
    io, url = await make_server()
    conns, socks = await joined_all(io, url, 3)
    socks[0].emit("own", 0)
    io.volatile.emit("v", 1)  # 0 is not idle; 1 and 2 take ranges
    io.emit("n", 2)  # extends them; 0 gets it behind its own frame
    assert await texts(conns[0], 2) == ['42["own",0]', '42["n",2]']
    for ws in conns[1:]:
        assert await texts(ws, 2) == ['42["v",1]', '42["n",2]']
    for ws in conns:
        await ws.close()


async def test_the_frame_log_is_reused_and_a_burst_does_not_keep_its_memory(make_server):
    io, url = await make_server()
    flusher = io.engine._flusher
    conns, _ = await joined_all(io, url, 3)
    for n in range(10):
        io.emit("n", n)
        await asyncio.sleep(0.01)
    kept = flusher.log_capacity
    assert 0 < kept <= 8192
    for n in range(10, 20):  # one buffer goes round: nothing grows
        io.emit("n", n)
        await asyncio.sleep(0.01)
        assert flusher.log_capacity == kept
    # A burst: 1,500 broadcasts of about 1 KiB in one iteration, more than 1 MiB of log.
    pad = "b" * 1000
    for n in range(1500):
        io.emit("b", n, pad)
    assert flusher.log_capacity > 1024 * 1024
    want = [f'42["n",{n}]' for n in range(20)] + [f'42["b",{n},"{pad}"]' for n in range(1500)]
    for ws in conns:
        assert await texts(ws, len(want)) == want
    assert flusher.log_capacity <= 8192  # the burst's log was freed after its run
    for ws in conns:
        await ws.close()


async def test_polling_and_websocket_recipients_of_one_broadcast_run(make_server):
    # Outboxes in packets mode take the broadcast their own way, between ones holding ranges.
    io, url = await make_server()
    ws1 = await joined(url)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        status, _ = await p.post("40")
        assert status == 200
        assert (await p.get_packets())[0].startswith("40")
        ws2 = await joined(url)
        await wait_for(lambda: len(io.sockets.sockets) == 3)
        await asyncio.sleep(0.05)
        for n in range(5):
            io.emit("n", n)
        want = [f'42["n",{n}]' for n in range(5)]
        assert await texts(ws1, 5) == want
        assert await texts(ws2, 5) == want
        got: list[str] = []
        while len(got) < 5:
            got.extend(x for x in await p.get_packets() if x != "6")
        assert got == want
    await ws1.close()
    await ws2.close()


class _DrainingOwner:
    """A packets-mode owner (the polling transport's part): takes what is queued when the
    flusher runs; ``fail`` makes its drain raise after taking, as a buggy transport would."""

    def __init__(self, flusher: Flusher, name: str, fail: bool, drained: list[str]) -> None:
        self.name = name
        self.fail = fail
        self.drained = drained
        self.box = Outbox(flusher)
        self.box.use_packets(self)
        self.box.open = True
        self.box.ready = True

    def _drain(self) -> None:
        for data, _binary in self.box.take():
            self.drained.append(f"{self.name}:{data.decode()}")
        if self.fail:
            self.fail = False
            raise RuntimeError(f"drain of {self.name} failed")

    def _overflow(self, queued: int) -> None:
        raise AssertionError("nothing here queues that much")


async def test_an_outbox_whose_flush_raises_strands_no_other_outbox():
    # Flusher.run: the outboxes after the one that raised were still marked dirty, so none of
    # them was ever flushed again (a push only schedules an outbox that is not). Now they go
    # out in the next run, the error reaches the loop's handler, and the one that raised is
    # not retried at every iteration but flushed again when something new is queued for it.
    loop = asyncio.get_running_loop()
    errors: list[BaseException | None] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context.get("exception")))
    try:
        flusher = Flusher(get_loop=lambda: loop)
        drained: list[str] = []
        a, b, c = (_DrainingOwner(flusher, name, name == "b", drained) for name in "abc")
        for owner in (a, b, c):
            owner.box.push_packet(b"41")
        await wait_for(lambda: len(drained) == 3, 2.0)
        assert drained == ["a:41", "b:41", "c:41"]
        assert [str(e) for e in errors] == ["drain of b failed"]
        runs = flusher.runs
        for _ in range(5):
            await asyncio.sleep(0)
        assert flusher.runs == runs  # nothing left dirty: no run per iteration
        for owner in (c, b, a):
            owner.box.push_packet(b"42")
        await wait_for(lambda: len(drained) == 6, 2.0)
        assert drained[3:] == ["c:42", "b:42", "a:42"]
        assert len(errors) == 1
    finally:
        loop.set_exception_handler(previous)
