"""The adapter: rooms, broadcast fan-out and (later) sessions, for one namespace.

This in-memory adapter serves one process. Everything that a cluster adapter would have to ask
other nodes about is ``async`` here too, so code above the adapter never assumes that every
socket lives in this process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastsio._core import sio_packet
from fastsio._core.eio_packet import ws_frame
from fastsio._core.packetlog import PacketLog
from fastsio._core.rooms import RoomIndex
from fastsio.encoding import encode_fallback

if TYPE_CHECKING:
    from fastsio.namespace import Namespace
    from fastsio.socket import Socket

Room = Hashable


@dataclass(frozen=True)
class BroadcastOptions:
    """Who a broadcast goes to and how: the official adapter's ``{rooms, except, flags}``."""

    rooms: frozenset[Room] = frozenset()
    except_rooms: frozenset[Room] = frozenset()
    volatile: bool = False
    compress: bool = True
    local: bool = False
    timeout: float | None = None
    flags: dict[str, Any] = field(default_factory=dict)


@dataclass
class Session:
    """What connection state recovery keeps of a disconnected socket.

    ``start`` is the last log sequence number from before the socket connected: a client that
    comes back without an offset (it never received an event) is served everything after it.
    ``missed_packets`` is filled by :meth:`Adapter.restore_session` (encoded parts, in order).
    """

    sid: str
    pid: str
    rooms: list[Room]
    data: Any
    start: int = 0
    missed_packets: list[list[bytes]] = field(default_factory=list)


class Adapter:
    """In-memory adapter over the Cython room index.

    With connection state recovery on (``recovery`` options given), every EVENT broadcast
    without an ack and not volatile is logged and stamped with its offset, and disconnected
    sessions are kept until ``max_disconnection_duration`` has passed, to the second.
    """

    def __init__(self, nsp: Namespace, recovery: dict[str, Any] | None = None) -> None:
        self.nsp = nsp
        self.index = RoomIndex()
        self.log: PacketLog | None = None
        self._sessions: dict[str, tuple[Session, float, asyncio.TimerHandle]] = {}
        self.max_disconnection_duration = 0.0
        if recovery is not None:
            self.log = PacketLog(int(recovery["max_packets"]), int(recovery["max_bytes"]))
            self.max_disconnection_duration = float(recovery["max_disconnection_duration"])

    # -- rooms -------------------------------------------------------------------------------
    def add_all(self, sid: str, rooms: Iterable[Room]) -> None:
        """Put socket ``sid`` in ``rooms``."""
        self.index.add_all(sid, rooms)

    def delete(self, sid: str, room: Room) -> None:
        """Take socket ``sid`` out of ``room``."""
        self.index.delete(sid, room)

    def delete_all(self, sid: str) -> None:
        """Take socket ``sid`` out of every room (it disconnected)."""
        self.index.delete_all(sid)

    def socket_rooms(self, sid: str) -> set[Room]:
        """The rooms of socket ``sid`` on this node (a copy)."""
        return self.index.rooms_of(sid)

    @property
    def rooms(self) -> dict[Room, set[str]]:
        """Room -> socket ids on this node (a copy, for inspection)."""
        return self.index.rooms

    def _targets(self, opts: BroadcastOptions) -> list[Socket]:
        sockets = self.nsp.sockets
        out = []
        for sid in self.index.targets(opts.rooms, opts.except_rooms):
            sock = sockets.get(sid)
            if sock is not None:
                out.append(sock)
        return out

    # -- fan-out -----------------------------------------------------------------------------
    def broadcast(self, data: list[Any], opts: BroadcastOptions) -> None:
        """Send the EVENT ``data`` (``[event, *args]``) to every target: encoded once."""
        self._write(data, None, opts)

    def _write(self, data: list[Any], ack_id: int | None, opts: BroadcastOptions) -> list[Socket]:
        try:
            parts = sio_packet.encode(sio_packet.EVENT, self.nsp.name, data, ack_id)
        except TypeError:  # not plain JSON: json_default, or a TypeError naming the event
            parts = encode_fallback(self.nsp.server, sio_packet.EVENT, self.nsp.name, data, ack_id)
        if self.log is not None and ack_id is None and not opts.volatile:
            # One splice per broadcast: every recipient gets the same stamped bytes.
            _seq, parts = self.log.append(parts, opts.rooms, opts.except_rooms)
        packets = [(parts[0], False)]
        packets.extend((p, True) for p in parts[1:])
        single = parts[0] if len(parts) == 1 else None
        frame = ws_frame(single) if single is not None else b""  # framed once for everyone
        volatile = opts.volatile
        targets = self._targets(opts)
        for sock in targets:
            if sock._out_any is not None:
                sock._notify_outgoing(data)
            conn = sock.client.conn
            if volatile and not conn.writable:
                continue
            if single is not None:
                conn.send_text_framed(single, frame)
            else:
                conn.send_packets(packets)
        return targets

    def broadcast_with_ack(
        self,
        data: list[Any],
        opts: BroadcastOptions,
        ack_id: int,
        on_count: Callable[[int], None],
        on_ack: Callable[[str, list[Any]], None],
    ) -> None:
        """Broadcast with one ack id for all targets; ``on_count`` learns how many will answer."""
        targets = self._targets(opts)
        for sock in targets:
            sock._acks[ack_id] = _AckRelay(sock.id, on_ack)
        self._write(data, ack_id, opts)
        on_count(len(targets))

    # -- utilities (awaitable: a cluster adapter asks the other nodes) ---------------------------
    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Socket]:
        """The sockets matching ``opts`` (on every node, for a cluster adapter)."""
        return self._targets(opts)

    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[Room]) -> None:
        """Make the sockets matching ``opts`` join ``rooms``."""
        rooms = list(rooms)
        for sock in self._targets(opts):
            sock.join(rooms)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[Room]) -> None:
        """Make the sockets matching ``opts`` leave ``rooms``."""
        rooms = list(rooms)
        for sock in self._targets(opts):
            sock.leave(rooms)

    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        """Disconnect the sockets matching ``opts`` (``close``: their connections too)."""
        for sock in self._targets(opts):
            sock.disconnect(close)

    async def server_count(self) -> int:
        """How many nodes serve this namespace (1 in memory)."""
        return 1

    async def server_side_emit(self, data: list[Any], expect_acks: bool = False) -> list[Any]:
        """Send to the other nodes of the cluster: there are none in memory."""
        return []

    # -- connection state recovery --------------------------------------------------------------
    def log_position(self) -> int:
        """The last sequence number logged so far (0 before the first, or with recovery off)."""
        return self.log.next_seq - 1 if self.log is not None else 0

    def persist_session(self, session: Session) -> Awaitable[None] | None:
        """Keep ``session`` for ``max_disconnection_duration`` seconds.

        May return an awaitable (a cluster adapter writes to the network); this one stores the
        session at once, so a reconnect that races the disconnect still finds it.
        """
        loop = asyncio.get_running_loop()
        old = self._sessions.pop(session.pid, None)
        if old is not None:
            old[2].cancel()
        deadline = loop.time() + self.max_disconnection_duration
        handle = loop.call_at(deadline, self._expire, session.pid)
        self._sessions[session.pid] = (session, deadline, handle)
        return None

    def _expire(self, pid: str) -> None:
        self._sessions.pop(pid, None)

    async def restore_session(self, pid: str, offset: str | None) -> Session | None:
        """The session of ``pid`` with every packet it missed after ``offset``, or ``None``.

        ``None`` (a fresh session for the client) when the pid is unknown or expired, or when
        the offset is not one of this log's, or when a packet after it has been evicted: a
        replay is complete or it does not happen.
        """
        entry = self._sessions.get(pid)
        if entry is None or self.log is None:
            return None
        session, deadline, handle = entry
        if asyncio.get_running_loop().time() >= deadline:
            handle.cancel()
            del self._sessions[pid]
            return None
        if offset is None:
            after = session.start
        else:
            after = self.log.parse_offset(offset)
            if after < 0:
                return None  # forged or foreign: the real owner may still come back
        if not self.log.can_serve(after):
            handle.cancel()
            del self._sessions[pid]
            return None
        missed = self.log.replay(after, set(session.rooms))
        handle.cancel()
        del self._sessions[pid]
        return Session(session.sid, session.pid, session.rooms, session.data, session.start,
                       missed)

    @property
    def session_count(self) -> int:
        """Disconnected sessions kept for connection state recovery."""
        return len(self._sessions)

    def close(self) -> None:
        """Release timers and sessions."""
        for _session, _deadline, handle in self._sessions.values():
            handle.cancel()
        self._sessions.clear()


class _AckRelay:
    """An ack callback that also says which socket answered (for broadcast acks)."""

    __slots__ = ("callback", "sid")

    def __init__(self, sid: str, callback: Callable[[str, list[Any]], None]) -> None:
        self.sid = sid
        self.callback = callback

    def __call__(self, *args: Any) -> None:
        self.callback(self.sid, list(args))
