"""The adapter's ``join-room`` / ``leave-room`` events (the official in-memory adapter's), seen
from real sockets joining, leaving and disconnecting."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.clients.loops import wait_for
from tests.clients.sio import Clients


async def test_join_and_leave_room_events(make_server):
    io, url = await make_server()
    events: list[tuple[str, object, str]] = []
    adapter = io.of("/").adapter
    adapter.on("join-room", lambda room, sid: events.append(("join", room, sid)))
    adapter.on("leave-room", lambda room, sid: events.append(("leave", room, sid)))
    arrivals: asyncio.Queue = asyncio.Queue()
    io.on("connection", arrivals.put_nowait)
    pool = Clients()
    try:
        client = await pool.raw(url)
        sock = await asyncio.wait_for(arrivals.get(), 5)
        sid = sock.id
        assert events == [("join", sid, sid)]  # its own room, on connecting

        sock.join(["a", "b", "a"])  # one event per room (socket.join takes them as a set)
        assert sorted(events[1:]) == [("join", "a", sid), ("join", "b", sid)]
        del events[:]
        sock.join("a")  # already in it: no event
        sock.join(7)
        assert events == [("join", 7, sid)]
        del events[:]

        sock.leave("never-joined")
        sock.leave("a")
        await io.in_(sid).sockets_join("c")
        await io.in_("b").sockets_leave("b")
        assert events == [("leave", "a", sid), ("join", "c", sid), ("leave", "b", sid)]
        del events[:]

        await client.close()
        await wait_for(lambda: len(events) == 3)
        assert sorted(map(str, (room for _, room, _ in events))) == sorted(["7", "c", sid])
        assert all(kind == "leave" and who == sid for kind, _, who in events)
    finally:
        await pool.close()


async def test_a_failing_listener_is_logged_and_changes_nothing(make_server, caplog):
    io, url = await make_server()
    seen = []

    def broken(room, sid):
        raise RuntimeError("listener bug")

    io.of("/").adapter.on("join-room", broken)
    io.of("/").adapter.on("join-room", lambda room, sid: seen.append(room))
    arrivals: asyncio.Queue = asyncio.Queue()
    io.on("connection", arrivals.put_nowait)
    pool = Clients()
    try:
        with caplog.at_level(logging.ERROR, "fastsio.adapter"):
            await pool.raw(url)
            sock = await asyncio.wait_for(arrivals.get(), 5)
            sock.join("x")
        assert sock.rooms == {sock.id, "x"} and seen == [sock.id, "x"]
        assert "error in a join-room listener" in caplog.text
    finally:
        await pool.close()


def test_unknown_adapter_event():
    from fastsio import Server

    with pytest.raises(ValueError, match="join-room or leave-room"):
        Server(serve_client=False).of("/").adapter.on("create-room", lambda room, sid: None)
