"""``socket.timeout(s)``: acknowledgement deadlines (the official server's test/socket-timeout.ts),
with callbacks ``fn(err, *args)`` and with ``await ...emit_with_ack()`` raising ``AckTimeout``.

python-socketio's client acknowledges every event that asks for it (even one it has no handler
for), so the clients that must stay silent or answer late are raw WebSocket clients."""

from __future__ import annotations

import asyncio

import pytest

import fastsio
from tests.clients.loops import wait_for


async def raw_socket(io, clients, url):
    """A raw client joined to ``/`` and the server's socket for it."""
    raw = await clients.raw(url)
    return raw, io.sockets.sockets[raw.sid]


async def round_trip(io, raw):
    """Make sure the server has processed everything ``raw`` sent so far."""
    io.on("__sync", lambda s: "ok")
    await raw.send('42999["__sync"]')
    while (await raw.recv()) != '43999["ok"]':
        pass


async def test_timeout_when_the_client_does_not_acknowledge(make_server, clients):
    io, url = await make_server()
    raw, s = await raw_socket(io, clients, url)
    calls: list[tuple] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    s.timeout(0.05).emit("unknown", callback=lambda *a: calls.append((loop.time(), *a)))
    assert await raw.recv() == '420["unknown"]'
    await wait_for(lambda: calls)
    at, *args = calls[0]
    assert at - start >= 0.045
    assert len(args) == 1
    assert isinstance(args[0], fastsio.AckTimeout)
    assert isinstance(args[0], TimeoutError)
    assert str(args[0]) == "operation has timed out"
    await asyncio.sleep(0.05)
    assert len(calls) == 1


async def test_timeout_when_the_client_does_not_acknowledge_in_time(make_server, clients):
    io, url = await make_server()
    raw, s = await raw_socket(io, clients, url)
    calls: list[tuple] = []
    s.timeout(0).emit("echo", 42, callback=lambda *a: calls.append(a))
    assert await raw.recv() == '420["echo",42]'
    await wait_for(lambda: calls)
    await raw.send("430[42]")  # the answer comes, too late
    await round_trip(io, raw)
    assert len(calls) == 1
    assert len(calls[0]) == 1
    assert isinstance(calls[0][0], fastsio.AckTimeout)


async def test_no_timeout_when_the_client_acknowledges(make_server, clients):
    io, url = await make_server()
    calls: list[tuple] = []
    client = clients.new()
    client.on("echo", lambda arg: arg)
    loop = asyncio.get_running_loop()
    emitted: list[float] = []

    @io.on("connection")
    def ask(s):
        emitted.append(loop.time())
        s.timeout(0.25).emit("echo", 42, callback=lambda *a: calls.append(a))

    await clients.connect(url, client)
    await wait_for(lambda: calls)
    assert calls == [(None, 42)]
    await asyncio.sleep(emitted[0] + 0.27 - loop.time())  # past the deadline: no second call
    assert calls == [(None, 42)]


async def test_timeout_when_the_client_does_not_acknowledge_awaited(make_server, clients):
    io, url = await make_server()
    raw, s = await raw_socket(io, clients, url)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(fastsio.AckTimeout, match="operation has timed out"):
        await s.timeout(0.05).emit_with_ack("unknown")
    assert loop.time() - start >= 0.045
    assert await raw.recv() == '420["unknown"]'
    # A late answer is dropped without trouble; the socket keeps working.
    await raw.send("430[1]")
    await round_trip(io, raw)
    assert s.connected


async def test_no_timeout_when_the_client_acknowledges_awaited(make_server, clients):
    io, url = await make_server()
    values: list[object] = []
    client = clients.new()
    client.on("echo", lambda arg: arg)

    @io.on("connection")
    async def ask(s):
        values.append(await s.timeout(0.5).emit_with_ack("echo", 42))

    await clients.connect(url, client)
    await wait_for(lambda: values)
    assert values == [42]


async def test_timeout_callback_gets_every_ack_argument(make_server, clients):
    io, url = await make_server()
    raw, s = await raw_socket(io, clients, url)
    calls: list[tuple] = []
    s.timeout(1).emit("many", callback=lambda *a: calls.append(a))
    assert await raw.recv() == '420["many"]'
    await raw.send('461-0[1,"2",{"_placeholder":true,"num":0}]')
    await raw.send(b"\x03")
    await wait_for(lambda: calls)
    assert calls == [(None, 1, "2", b"\x03")]


async def test_timeout_emit_with_ack_several_arguments(make_server, clients):
    io, url = await make_server()
    client = clients.new()
    client.on("pair", lambda: ("a", b"\x00"))
    results: list[object] = []

    @io.on("connection")
    async def ask(s):
        results.append(await s.timeout(1).emit_with_ack("pair"))

    await clients.connect(url, client)
    await wait_for(lambda: results)
    assert results == [("a", b"\x00")]


async def test_timeout_without_a_callback_is_a_plain_emit(make_server, clients):
    io, url = await make_server()
    raw, s = await raw_socket(io, clients, url)
    s.timeout(0.01).emit("plain", 1)
    assert await raw.recv() == '42["plain",1]'
    await asyncio.sleep(0.02)
    s.emit("next")
    assert await raw.recv() == '42["next"]'


async def test_each_emit_has_its_own_deadline(make_server, clients):
    io, url = await make_server()
    raw, s = await raw_socket(io, clients, url)
    calls: dict[str, tuple] = {}
    emitter = s.timeout(0.05)
    emitter.emit("a", callback=lambda *x: calls.__setitem__("a", x))
    s.timeout(2).emit("b", callback=lambda *x: calls.__setitem__("b", x))
    emitter.emit("c", callback=lambda *x: calls.__setitem__("c", x))
    assert [await raw.recv() for _ in range(3)] == ['420["a"]', '421["b"]', '422["c"]']
    await raw.send('431["b-answer"]')
    await raw.send('432["c-answer"]')
    await wait_for(lambda: len(calls) == 3)
    assert isinstance(calls["a"][0], fastsio.AckTimeout)
    assert calls["b"] == (None, "b-answer")
    assert calls["c"] == (None, "c-answer")


async def test_timeout_with_volatile_and_compress_flags(make_server, clients):
    io, url = await make_server()
    raw, s = await raw_socket(io, clients, url)
    await wait_for(lambda: s.client.conn.writable)
    calls: list[tuple] = []
    s.volatile.timeout(1).compress(False).emit("flags", callback=lambda *a: calls.append(a))
    assert await raw.recv() == '420["flags"]'
    await raw.send("430[]")
    await wait_for(lambda: calls)
    assert calls == [(None,)]


async def test_awaited_ack_fails_at_once_when_the_socket_disconnects(make_server, clients):
    io, url = await make_server()
    raw, s = await raw_socket(io, clients, url)
    pending = asyncio.ensure_future(s.timeout(3).emit_with_ack("never"))
    assert await raw.recv() == '420["never"]'
    loop = asyncio.get_running_loop()
    start = loop.time()
    await raw.send("41")
    with pytest.raises(fastsio.Disconnected):
        await asyncio.wait_for(pending, 5)
    assert loop.time() - start < 1


async def test_timeout_callback_is_told_when_the_socket_disconnects(make_server, clients):
    # The official server calls a timeout callback with its error even when the socket went
    # away first; it never leaves the callback waiting forever.
    io, url = await make_server()
    raw, s = await raw_socket(io, clients, url)
    calls: list[tuple] = []
    s.timeout(0.1).emit("never", callback=lambda *a: calls.append(a))
    assert await raw.recv() == '420["never"]'
    await raw.send("41")
    await wait_for(lambda: calls, timeout=1)
    assert len(calls) == 1
    assert len(calls[0]) == 1
    assert isinstance(calls[0][0], (fastsio.AckTimeout, fastsio.Disconnected))
    await asyncio.sleep(0.15)
    assert len(calls) == 1
