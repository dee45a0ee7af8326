"""Connection state recovery: the official behaviour, plus the cases where upstream fails.

Clients here are raw Socket.IO clients over a real WebSocket (or long-polling where the exact
payload layout matters), so every byte the server sends is checked.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
import pytest

import fastsio
from fastsio.adapter import Adapter
from tests.clients.loops import wait_for
from tests.clients.recovering import RecoveringClient

RECOVERY = {"max_disconnection_duration": 5}


@pytest.fixture
async def recovering():
    made: list[RecoveringClient] = []

    def factory(url: str, nsp: str = "/") -> RecoveringClient:
        c = RecoveringClient(url, nsp)
        made.append(c)
        return c

    yield factory
    for c in made:
        await c.close()


def names(events: list[list[Any]]) -> list[Any]:
    return [e[0] for e in events]


# -- the official behaviour --------------------------------------------------------------------


async def test_pid_and_offsets_only_when_enabled(make_server, recovering):
    _, url = await make_server()
    plain = recovering(url)
    await plain.connect()
    assert plain.connect_reply is not None and set(plain.connect_reply) == {"sid"}

    io, url = await make_server(connection_state_recovery=RECOVERY)
    c = recovering(url)
    await c.connect()
    assert set(c.connect_reply or {}) == {"sid", "pid"}
    assert c.pid is not None and len(c.pid) >= 22  # 128 bits, base64url
    io.emit("hello", 1)
    await wait_for(lambda: c.events)
    assert c.raw[-1].startswith('2["hello",1,"') and c.offset is not None
    assert c.events == [["hello", 1]]
    # The namespace log's 8-digit instance, then the sequence number in base 64.
    assert c.offset == io.sockets.adapter.log.offset_of(1)
    assert re.fullmatch(r"[0-9A-Za-z_-]{8}1", c.offset) and c.raw[-1].endswith(f',"{c.offset}"]')


async def test_restores_session_and_missed_packets_over_polling(make_server):
    io, url = await make_server(connection_state_recovery=RECOVERY)
    server_sockets: list[fastsio.Socket] = []

    @io.on("connection")
    def on_connection(socket):
        socket.join("room1")
        server_sockets.append(socket)

    async with aiohttp.ClientSession() as http:
        async def handshake() -> str:
            async with http.get(url + "/socket.io/?EIO=4&transport=polling") as r:
                return str(json.loads((await r.text())[1:])["sid"])

        async def push(sid: str, body: str) -> None:
            async with http.post(url + f"/socket.io/?EIO=4&transport=polling&sid={sid}",
                                 data=body) as r:
                assert r.status == 200

        async def poll(sid: str) -> str:
            async with http.get(url + f"/socket.io/?EIO=4&transport=polling&sid={sid}") as r:
                return await r.text()

        sid = await handshake()
        await push(sid, "40")
        reply = json.loads((await poll(sid))[2:])
        io.emit("hello")
        first = await poll(sid)
        assert first.startswith('42["hello","')
        offset = json.loads(first[2:])[1]
        await push(sid, "1")  # the client closes its Engine.IO session

        io.emit("hello1")
        io.to("room1").emit("hello2")
        server_sockets[0].emit("hello3")
        io.to("elsewhere").emit("not for it")

        sid2 = await handshake()
        await push(sid2, "40" + json.dumps({"pid": reply["pid"], "offset": offset}))
        packets = (await poll(sid2)).split("\x1e")
    assert [p[:12] for p in packets[:3]] == ['42["hello1",', '42["hello2",', '42["hello3",']
    assert len(packets) == 4
    assert packets[3] == "40" + json.dumps({"sid": reply["sid"], "pid": reply["pid"]},
                                           separators=(",", ":"))
    assert server_sockets[1].recovered and server_sockets[1].id == reply["sid"]


async def test_restores_rooms_and_data(make_server, recovering):
    io, url = await make_server(connection_state_recovery=RECOVERY)
    seen: list[fastsio.Socket] = []

    @io.on("connection")
    def on_connection(socket):
        seen.append(socket)
        if not socket.recovered:
            socket.join(["room1", "room2"])
            socket.data["foo"] = "bar"

    c = recovering(url)
    await c.connect()
    await c.drop()
    await c.connect()
    await wait_for(lambda: len(seen) == 2)
    restored = seen[1]
    assert restored.recovered
    assert restored.id == seen[0].id
    assert restored.rooms == {restored.id, "room1", "room2"}
    assert restored.data == {"foo": "bar"}


async def test_in_memory_recovery_runs_in_the_dispatch_with_no_task(make_server, recovering):
    """With the in-memory adapter a session is restored where a fresh one is connected: in
    the CONNECT packet's dispatch, with no task of the namespace's; the missed packets and
    the CONNECT reply come all the same."""
    io, url = await make_server(connection_state_recovery=RECOVERY)
    seen: list[fastsio.Socket] = []
    io.on("connection", seen.append)
    c = recovering(url)
    await c.connect()
    await c.drop()
    io.emit("missed", 1)
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    made: list[str] = []

    def factory(loop, coro, **kwargs):  # type: ignore[no-untyped-def]
        made.append(getattr(coro, "__qualname__", repr(coro)))
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        await c.connect()
        await wait_for(lambda: len(seen) == 2)
    finally:
        loop.set_task_factory(previous)
    assert seen[1].recovered and seen[1].id == seen[0].id
    await wait_for(lambda: c.events)
    assert c.events == [["missed", 1]]
    assert [name for name in made if name.startswith("Namespace.")] == []


async def test_middlewares_skipped_on_recovery_by_default(make_server, recovering):
    io, url = await make_server(connection_state_recovery=RECOVERY)
    calls: list[bool] = []
    io.use(lambda socket: calls.append(socket.recovered))
    c = recovering(url)
    await c.connect()
    await c.drop()
    await c.connect()
    assert calls == [False]


async def test_middlewares_run_on_recovery_when_asked(make_server, recovering):
    io, url = await make_server(
        connection_state_recovery={**RECOVERY, "skip_middlewares": False}
    )
    calls: list[bool] = []
    io.use(lambda socket: calls.append(socket.recovered))
    c = recovering(url)
    await c.connect()
    await c.drop()
    await c.connect()
    assert calls == [False, True]


async def test_unknown_session_gives_a_fresh_one(make_server, recovering):
    io, url = await make_server(connection_state_recovery=RECOVERY)
    seen: list[fastsio.Socket] = []
    io.on("connection", seen.append)
    c = recovering(url)
    c.pid, c.offset = "nope", "also-nope"
    await c.connect()
    assert c.pid != "nope"
    await wait_for(lambda: seen)
    assert not seen[0].recovered


async def test_namespace_disconnect_is_not_recoverable(make_server, recovering):
    io, url = await make_server(connection_state_recovery=RECOVERY)
    seen: list[fastsio.Socket] = []
    io.on("connection", seen.append)
    c = recovering(url)
    await c.connect()
    assert c.ws is not None
    await c.ws.send_str("41")
    await wait_for(lambda: not seen[0].connected)
    assert io.sockets.adapter.session_count == 0
    await c.drop()
    await c.connect()
    await wait_for(lambda: len(seen) == 2)
    assert not seen[1].recovered and seen[1].id != seen[0].id


class CountingAdapter(Adapter):
    persisted = 0
    restored = 0

    def persist_session(self, session):  # type: ignore[no-untyped-def]
        CountingAdapter.persisted += 1
        return super().persist_session(session)

    async def restore_session(self, pid, offset):  # type: ignore[no-untyped-def]
        CountingAdapter.restored += 1
        return await super().restore_session(pid, offset)


async def test_adapter_not_called_when_disabled(make_server, recovering):
    CountingAdapter.persisted = CountingAdapter.restored = 0
    _, url = await make_server(adapter=CountingAdapter)
    c = recovering(url)
    await c.connect()
    c.pid, c.offset = "some-pid", "some-offset"
    await c.drop()
    await c.connect()
    await asyncio.sleep(0.05)
    assert (CountingAdapter.persisted, CountingAdapter.restored) == (0, 0)

    _, url = await make_server(adapter=CountingAdapter, connection_state_recovery=RECOVERY)
    c2 = recovering(url)
    await c2.connect()
    await c2.drop()
    await c2.connect()
    assert (CountingAdapter.persisted, CountingAdapter.restored) == (1, 1)


async def test_events_with_ack_or_volatile_carry_no_offset(make_server, recovering):
    io, url = await make_server(connection_state_recovery=RECOVERY)
    seen: list[fastsio.Socket] = []
    io.on("connection", seen.append)
    c = recovering(url)
    await c.connect()
    await wait_for(lambda: seen)
    seen[0].emit("with-ack", 1, callback=lambda *a: None)
    await wait_for(lambda: len(c.raw) >= 2)
    # A volatile packet is dropped while the transport is busy: send it on a quiet one.
    io.volatile.emit("volatile", 2)
    await wait_for(lambda: len(c.raw) >= 3)
    io.emit("plain", 3)
    await wait_for(lambda: len(c.raw) >= 4)
    assert c.raw[1] == '20["with-ack",1]'
    assert c.raw[2] == '2["volatile",2]'
    assert c.raw[3].startswith('2["plain",3,"')


# -- beyond the official server ------------------------------------------------------------------


async def test_zero_event_reconnect_is_recovered(make_server, recovering):
    """Upstream 5538: a client that got no event before it dropped sends a pid and no offset."""
    io, url = await make_server(connection_state_recovery=RECOVERY)
    io.emit("before", 0)  # sent before the client connected: never replayed to it
    c = recovering(url)
    await c.connect()
    first_sid = c.sid
    await c.drop()
    io.emit("missed", 1)
    io.to("nobody").emit("not for it")
    await c.connect()
    assert c.sid == first_sid
    await wait_for(lambda: c.events)
    assert c.events == [["missed", 1]]
    # The first CONNECT reply, then the replay, then the second CONNECT reply.
    assert len(c.raw) == 3
    assert c.raw[1].startswith('2["missed",1,"') and c.raw[2].startswith("0{")


async def test_quiet_namespace_recovers_after_a_long_silence(make_server, recovering):
    """Upstream 5282: the age of the last packet never fails a recovery that lost nothing."""
    io, url = await make_server(connection_state_recovery={**RECOVERY,
                                                           "max_disconnection_duration": 1.0})
    c = recovering(url)
    await c.connect()
    io.emit("old", 1)
    await wait_for(lambda: c.events)
    await asyncio.sleep(1.2)  # older than max_disconnection_duration: upstream drops it
    await c.drop()
    await c.connect()
    assert c.connect_reply is not None and c.sid == c.connect_reply["sid"]
    recovered = io.sockets.sockets[c.sid]
    assert recovered.recovered


async def test_eviction_of_a_missed_packet_fails_recovery(make_server, recovering):
    io, url = await make_server(connection_state_recovery={**RECOVERY, "max_packets": 3})
    c = recovering(url)
    await c.connect()
    io.emit("seen", 0)
    await wait_for(lambda: c.events)
    old_sid = c.sid
    await c.drop()
    for i in range(4):  # one more than the log holds: "seen"+1 is gone
        io.emit("missed", i)
    await c.connect()
    assert c.sid != old_sid
    assert c.events == [["seen", 0]]
    assert not io.sockets.sockets[c.sid].recovered


async def test_recover_five_times_in_a_row(make_server, recovering):
    """Upstream 4880: the same client recovers again and again; nothing is lost or repeated."""
    io, url = await make_server(connection_state_recovery=RECOVERY)
    c = recovering(url)
    await c.connect()
    sid = c.sid
    for round_ in range(5):
        io.emit("tick", round_, "a")
        await wait_for(lambda n=round_: len(c.events) == 2 * n + 1)
        await c.drop()
        io.emit("tick", round_, "b")
        await c.connect()
        assert c.sid == sid
        await wait_for(lambda n=round_: len(c.events) == 2 * n + 2)
    assert c.events == [["tick", r, x] for r in range(5) for x in ("a", "b")]
    assert io.sockets.sockets[sid].recovered


async def test_old_connection_closed_when_its_pid_reconnects(make_server, recovering):
    io, url = await make_server(connection_state_recovery=RECOVERY)
    reasons: list[str] = []
    io.on("disconnect", lambda s, r: reasons.append(r))
    c = recovering(url)
    await c.connect()
    old_ws, old_reader = c.ws, c._reader
    io.emit("one")
    await wait_for(lambda: c.events)
    # Reconnect while the first connection still looks alive to the server.
    await c.connect()
    assert reasons == ["transport close"]
    assert old_ws is not None and old_reader is not None
    await asyncio.wait_for(old_reader, 5)
    assert old_ws.closed
    assert io.sockets.sockets[c.sid or ""].recovered
    io.emit("two")
    await wait_for(lambda: len(c.events) == 2)
    assert names(c.events) == ["one", "two"]


async def test_expiry_is_exact(make_server, recovering):
    """Upstream 5166: never restored after max_disconnection_duration, not at the next sweep."""
    io, url = await make_server(connection_state_recovery={**RECOVERY,
                                                           "max_disconnection_duration": 0.5})
    c = recovering(url)
    await c.connect()
    sid = c.sid
    await c.drop()
    await wait_for(lambda: io.sockets.adapter.session_count == 1)
    dropped_at = time.monotonic()
    await asyncio.sleep(0.55)
    assert io.sockets.adapter.session_count == 0  # gone at the deadline, not later
    await c.connect()
    assert c.sid != sid
    assert time.monotonic() - dropped_at >= 0.5

    c2 = recovering(url)
    await c2.connect()
    sid2 = c2.sid
    await c2.drop()
    await asyncio.sleep(0.3)
    await c2.connect()
    assert c2.sid == sid2


async def test_forged_pid_and_offsets_get_nothing(make_server, recovering):
    io, url = await make_server(connection_state_recovery=RECOVERY)
    admin = io.of("/admin")
    victim = recovering(url)
    await victim.connect()
    io.emit("secret", 1)
    await wait_for(lambda: victim.events)
    await victim.drop()
    io.emit("secret", 2)

    other = recovering(url, "/admin")
    await other.connect()
    admin.emit("admin-event")
    await wait_for(lambda: other.events)

    forged = recovering(url)
    forged.pid = "A" * 22
    forged.offset = victim.offset
    await forged.connect()
    assert forged.sid != victim.sid and forged.events == []

    # A real pid with an offset from another namespace's log: fresh session, no replay.
    thief = recovering(url)
    thief.pid, thief.offset = victim.pid, other.offset
    await thief.connect()
    assert thief.sid != victim.sid and thief.events == []
    # ... and ones with an offset from the future (the very next one, and one far off), or
    # spelled with a leading zero, or the old way (instance, dash, decimal).
    log = io.sockets.adapter.log
    assert victim.offset is not None and victim.offset == log.offset_of(1)
    instance = victim.offset[:8]
    for offset in (log.offset_of(log.next_seq), instance + "zzzzz", instance + "0" + "1",
                   instance + "-1", instance + "1 "):
        thief2 = recovering(url)
        thief2.pid, thief2.offset = victim.pid, offset
        await thief2.connect()
        assert thief2.sid != victim.sid and thief2.events == [], offset

    # The owner still recovers (the forged attempts did not consume the session).
    await victim.connect()
    await wait_for(lambda: len(victim.events) == 2)
    assert victim.events == [["secret", 1], ["secret", 2]]


@pytest.mark.long
async def test_storm_of_reconnects_keeps_every_sequence_exact(make_server, recovering):
    """Many clients drop and reconnect while broadcasts go on: each gets every event once,
    in order (checked by sequence numbers in the payloads)."""
    n_clients, n_events = 1000, 300
    # Generous: on 2 cores a reconnect can wait seconds behind 999 others.
    io, url = await make_server(connection_state_recovery={"max_disconnection_duration": 120})

    @io.on("connection")
    def on_connection(socket):
        if not socket.recovered:
            socket.join("odd" if int(socket.handshake.auth["n"]) % 2 else "even")

    cs = [recovering(url) for _ in range(n_clients)]
    await asyncio.gather(*(c.connect({"n": i}) for i, c in enumerate(cs)))

    async def broadcaster() -> None:
        for seq in range(n_events):
            io.emit("all", seq)
            io.to("odd").emit("odd", seq)
            if seq % 10 == 0:
                await asyncio.sleep(0.001)

    async def churn(c: RecoveringClient, i: int) -> None:
        for _ in range(2):
            await asyncio.sleep((i % 17) * 0.003)
            await c.drop()
            await c.connect({"n": i})

    await asyncio.gather(broadcaster(), *(churn(c, i) for i, c in enumerate(cs)))
    io.emit("all", n_events)  # the marker: everyone is connected now
    await wait_for(lambda: all(c.events and c.events[-1] == ["all", n_events] for c in cs), 20)
    for i, c in enumerate(cs):
        alls = [e[1] for e in c.events if e[0] == "all"]
        odds = [e[1] for e in c.events if e[0] == "odd"]
        assert alls == list(range(n_events + 1)), f"client {i}"
        assert odds == (list(range(n_events)) if i % 2 else []), f"client {i}"
        assert io.sockets.sockets[c.sid or ""].id == c.sid
