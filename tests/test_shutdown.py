"""Graceful shutdown: ``await io.close(timeout=...)`` stops accepting, tells every socket
(``server shutting down``), delivers everything queued before the close, persists recovery
sessions, lets what the shutdown started finish, and returns by the deadline whatever the
clients do."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

import fastsio
from fastsio.adapter import Adapter, Session
from tests.clients.http import RawConnection
from tests.clients.loops import wait_for
from tests.clients.polling import Polling
from tests.clients.sio import sio_clients
from tests.clients.wire import OP_CLOSE, OP_TEXT, eio_target, parse_open, port_of, request
from tests.clients.ws import RawWebSocket, stalled_client

BURST = 2000  # events of about 1 KB: 2 MB queued at once, under max_queued_bytes
PAYLOAD = "x" * 1000


async def raw_websocket(url: str) -> tuple[RawWebSocket, str]:
    ws = await RawWebSocket.open(url)
    assert (await ws.upgrade(eio_target("websocket"))).status == 101
    await ws.recv_text()
    ws.send_text("40")
    reply = await ws.recv_text()
    assert reply.startswith("40{")
    return ws, json.loads(reply[2:])["sid"]


def burst(io: fastsio.Server) -> None:
    for i in range(BURST):
        io.emit("burst", i, PAYLOAD)


def burst_indexes(packets: list[str]) -> list[int]:
    return [json.loads(p[2:])[1] for p in packets if p.startswith('42["burst"')]


async def test_close_without_a_timeout_still_works(make_server):
    io, url = await make_server()
    ws, _ = await raw_websocket(url)
    async with ws:
        await io.close()
        assert (await ws.recv_until_close())[-1][0] in (OP_CLOSE, -1)
    assert io.engine.clients == {}


async def test_a_burst_before_close_reaches_a_websocket_client_before_the_close(make_server):
    io, url = await make_server()
    ws, _ = await raw_websocket(url)
    async with ws:
        reading = asyncio.ensure_future(ws.recv_until_close())
        burst(io)
        await io.close(timeout=5)
        frames = await reading
    texts = [payload.decode() for op, payload in frames if op == OP_TEXT]
    assert burst_indexes(texts) == list(range(BURST))
    assert frames[-1][0] == OP_CLOSE  # a clean close frame after all of it, not a reset


@pytest.mark.parametrize("parked", [True, False], ids=["get-parked", "between-polls"])
async def test_a_burst_before_close_reaches_a_polling_client_before_the_close(
    make_server, parked
):
    """The packets go out on the pending GET (or the client's next one, on the connection it
    already has: the listener is closed), the close packet on the GET after them."""
    io, url = await make_server()
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert (await p.post("40"))[0] == 200
        assert (await p.get_packets())[0].startswith("40{")
        pending = asyncio.ensure_future(p.poll_until_close(max_polls=10)) if parked else None
        if parked:
            await wait_for(lambda: io.engine.clients[p.sid].writable)
        burst(io)
        closing = asyncio.ensure_future(io.close(timeout=5))
        if pending is None:
            await asyncio.sleep(0.05)
            pending = asyncio.ensure_future(p.poll_until_close(max_polls=10))
        got = await pending
        await closing
    assert burst_indexes(got) == list(range(BURST))
    assert got[-1] == "1"


# python-engineio's client refuses a polling response of more than 16 packets (its
# Payload.max_decode_packets), whoever the server: a smaller burst for that transport.
@pytest.mark.parametrize(("transports", "count"), [(["websocket"], BURST), (["polling"], 16)],
                         ids=["websocket", "polling"])
async def test_python_socketio_clients_get_the_whole_burst(make_server, transports, count):
    io, url = await make_server()
    got: list[int] = []
    gone = asyncio.Event()
    async with sio_clients() as connect:
        await connect(
            url,
            transports=transports,
            handlers={"burst": lambda i, _: got.append(i), "disconnect": lambda *_: gone.set()},
        )
        for i in range(count):
            io.emit("burst", i, PAYLOAD)
        await io.close(timeout=5)
        await asyncio.wait_for(gone.wait(), 5)
    assert got == list(range(count))


async def test_every_socket_is_told_server_shutting_down(make_server):
    io, url = await make_server()
    admin = io.of("/admin")
    reasons: list[tuple[str, str]] = []
    io.on("disconnect", lambda s, r: reasons.append(("/", r)))
    admin.on("disconnect", lambda s, r: reasons.append(("/admin", r)))
    ws, _ = await raw_websocket(url)
    async with ws:
        ws.send_text("40/admin,")
        assert (await ws.recv_text()).startswith("40/admin,{")
        await io.close(timeout=2)
        frames = await ws.recv_until_close()
    assert sorted(reasons) == [("/", "server shutting down"), ("/admin", "server shutting down")]
    # As the official server: no DISCONNECT packet, the client sees the transport close (and
    # reconnects, to this server restarted or to another node).
    assert [p for op, p in frames if op == OP_TEXT] == []


async def test_reconnect_false_sends_every_socket_a_disconnect_packet(make_server):
    io, url = await make_server()
    io.of("/admin")
    ws, _ = await raw_websocket(url)
    async with ws:
        ws.send_text("40/admin,")
        assert (await ws.recv_text()).startswith("40/admin,{")
        io.emit("last", 1)
        await io.close(timeout=2, reconnect=False)
        frames = await ws.recv_until_close()
    texts = [p.decode() for op, p in frames if op == OP_TEXT]
    assert texts == ['42["last",1]', "41", "41/admin,"]
    assert frames[-1][0] == OP_CLOSE


async def test_python_socketio_client_sees_a_server_disconnect(make_server):
    io, url = await make_server()
    reasons: list[Any] = []
    async with sio_clients() as connect:
        client = await connect(url, transports=["websocket"],
                               handlers={"disconnect": lambda *a: reasons.append(a)})
        await io.close(timeout=2, reconnect=False)
        await wait_for(lambda: not client.connected)
    # python-socketio's name for the official client's "io server disconnect".
    assert reasons == [("server disconnect",)]


class SlowPersistAdapter(Adapter):
    """An adapter whose session writes take a while (a networked store)."""

    saved: list[Session]

    def __init__(self, nsp: Any, recovery: dict[str, Any] | None = None) -> None:
        super().__init__(nsp, recovery)
        self.saved = []

    def persist_session(self, session: Session) -> Any:
        return self._write(session)

    async def _write(self, session: Session) -> None:
        await asyncio.sleep(0.1)
        self.saved.append(session)


async def test_recovery_sessions_are_persisted_before_close_returns(make_server):
    io, url = await make_server(connection_state_recovery=True, adapter=SlowPersistAdapter)
    sockets: list[fastsio.Socket] = []
    io.on("connection", lambda s: (s.join("room"), sockets.append(s)))
    clients = [await raw_websocket(url) for _ in range(3)]
    await wait_for(lambda: len(sockets) == 3)
    adapter = io.sockets.adapter
    await io.close(timeout=2)
    assert sorted(s.pid for s in adapter.saved) == sorted(s.pid for s in sockets)
    assert all(set(s.rooms) == {s.sid, "room"} for s in adapter.saved)
    for ws, _ in clients:
        await ws.close()


async def test_in_memory_sessions_are_persisted_on_shutdown(make_server):
    persisted: list[str] = []

    class Recording(Adapter):
        def persist_session(self, session: Session) -> Any:
            persisted.append(session.pid)
            return super().persist_session(session)

    io, url = await make_server(connection_state_recovery=True, adapter=Recording)
    pids: list[str] = []
    io.on("connection", lambda s: pids.append(s.pid))
    ws, _ = await raw_websocket(url)
    async with ws:
        await wait_for(lambda: pids)
        await io.close(timeout=1)
    assert persisted == pids


async def test_async_disconnect_handlers_may_finish(make_server):
    io, url = await make_server()
    finished: list[str] = []

    @io.on("disconnect")
    async def on_disconnect(socket, reason):
        await asyncio.sleep(0.1)
        finished.append(reason)

    ws, _ = await raw_websocket(url)
    async with ws:
        await io.close(timeout=2)
    assert finished == ["server shutting down"]


async def test_close_returns_by_the_deadline_whatever_the_clients_do(make_server):
    """A client that stopped reading (2 MB queued for it) and a polling client that never
    fetches its close packet: cut off at the deadline, everything released."""
    io, url = await make_server()
    writer, sock = await stalled_client(url)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert (await p.post("40"))[0] == 200
        await wait_for(lambda: len(io.sockets.sockets) == 2)
        burst(io)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await io.close(timeout=0.5)
        elapsed = loop.time() - start
    assert 0.45 <= elapsed <= 0.5 + 0.5, elapsed  # slack for a loaded machine
    assert io.engine.clients == {} and io.engine._lingering == {}
    assert io.engine._http_connections == set()
    # The stalled client's connection is gone on the server side: the client reads the end
    # of the stream (or a reset) after whatever the kernel buffered.
    sock.setblocking(True)
    sock.settimeout(5)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass
    writer.close()
    sock.close()


async def test_new_sessions_are_refused_while_closing(make_server):
    """The listener is closed at once; a handshake on a connection opened before is refused
    (503), while the polling session being closed still gets its last packets on it."""
    io, url = await make_server()
    async with await RawConnection.open(url) as conn, await RawConnection.open(url) as other:
        conn.write(request("GET", eio_target()))
        sid = parse_open((await conn.read_response()).text)["sid"]
        conn.write(request("POST", eio_target(sid=sid), body=b"40"))
        assert (await conn.read_response()).status == 200
        other.write(request("GET", "/nothing"))  # opened before the close, kept alive
        assert (await other.read_response()).status == 404
        io.emit("last", 1)
        closing = asyncio.ensure_future(io.close(timeout=3))
        await asyncio.sleep(0.05)
        with pytest.raises(OSError):
            _, w = await asyncio.open_connection("127.0.0.1", port_of(url))
            w.close()
        other.write(request("GET", eio_target()))
        assert (await other.read_response()).status == 503
        assert await other.at_eof()
        conn.write(request("GET", eio_target(sid=sid)))
        packets = (await conn.read_response()).text.split("\x1e")
        assert packets[0].startswith("40{") and packets[1:] == ['42["last",1]']
        conn.write(request("GET", eio_target(sid=sid)))
        assert (await conn.read_response()).text == "1"
        await asyncio.wait_for(closing, 3)  # returns as soon as nothing is left, not at 3 s


async def test_graceful_close_then_restart(make_server):
    io, url = await make_server()
    port = port_of(url)
    ws, _ = await raw_websocket(url)
    async with ws:
        await io.close(timeout=1)
    assert await io.start("127.0.0.1", port) == port
    ws, _ = await raw_websocket(url)
    async with ws:
        io.emit("again", 1)
        assert await ws.recv_text() == '42["again",1]'


async def test_shutdown_timeout_is_the_default_of_close(make_server):
    io, url = await make_server(shutdown_timeout=5)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert (await p.post("40"))[0] == 200
        assert (await p.get_packets())[0].startswith("40{")
        io.emit("last", 1)
        closing = asyncio.ensure_future(io.close())
        await asyncio.sleep(0.05)
        # Without a timeout this packet would be dropped with the session.
        assert await p.poll_until_close() == ['42["last",1]', "1"]
        await closing

