"""Backpressure: a client that stops reading costs bounded memory and slows nobody else."""

from __future__ import annotations

import asyncio

import pytest

import fastsio
from tests.clients.loops import wait_for
from tests.clients.ws import stalled_client


@pytest.fixture
async def server(make_server):
    io, url = await make_server(write_buffer_high_water=16 * 1024, max_queued_bytes=512 * 1024)
    reasons: dict[str, str] = {}
    io.on("disconnect", lambda s, r: reasons.__setitem__(s.id, r))
    return io, url, reasons


async def test_stalled_client_is_disconnected_past_the_hard_limit(server, clients):
    io, url, reasons = server
    fast = await clients.raw(url)
    writer, sock = await stalled_client(url)
    await wait_for(lambda: len(io.sockets.sockets) == 2)
    stalled_id = next(sid for sid in io.sockets.sockets if sid != fast.sid)
    chunk = "x" * 32_000
    received = 0
    for i in range(400):  # 12.8 MB: past the kernel buffers (4 MiB here) and the limit
        io.emit("data", i, chunk)
        while received <= i:
            text = await fast.recv()
            assert text.startswith(f'42["data",{received},')
            received += 1
        await asyncio.sleep(0)
        if stalled_id in reasons:
            break
    await wait_for(lambda: stalled_id in reasons)
    # Not before the kernel's buffers and the limit were full: over 1 MB went out first.
    assert received * len(chunk) > 1_000_000
    assert reasons[stalled_id] == "transport error"
    assert fast.sid not in reasons
    # The fast client goes on as before.
    io.emit("after", 1)
    assert await fast.recv() == '42["after",1]'
    writer.close()
    sock.close()
    await fast.close()


async def test_volatile_packets_skip_a_busy_client_only(server, clients):
    io, url, reasons = server
    fast = await clients.raw(url)
    writer, sock = await stalled_client(url)
    await wait_for(lambda: len(io.sockets.sockets) == 2)
    stalled = next(s for sid, s in io.sockets.sockets.items() if sid != fast.sid)
    # Fill the stalled client's buffers (the kernel's first, 4 MiB here) until its
    # connection is over the high-water mark, staying below the hard limit.
    for i in range(400):
        if not stalled.client.conn.writable:
            break
        stalled.emit("fill", i, "y" * 20_000)
        await asyncio.sleep(0.002)
    assert not stalled.client.conn.writable
    sent_to: list[str] = []
    stalled.on_any_outgoing(lambda *a: sent_to.append("stalled"))
    io.volatile.emit("tick", 1)
    assert await fast.recv() == '42["tick",1]'
    # Offered to both (the outgoing listener saw it) but not queued for the busy one.
    assert sent_to == ["stalled"]
    assert stalled.client.conn.transport.write_buffer_size() < 512 * 1024
    assert stalled.id not in reasons
    writer.close()
    sock.close()
    await fast.close()


async def test_limits_are_checked():
    with pytest.raises(ValueError):
        fastsio.Server(write_buffer_high_water=2_000_000, max_queued_bytes=1_000_000)
