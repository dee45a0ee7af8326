"""The adapter: rooms, broadcast fan-out and (later) sessions, for one namespace.

This in-memory adapter serves one process. Everything that a cluster adapter would have to ask
other nodes about is ``async`` here too, so code above the adapter never assumes that every
socket lives in this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastsio._core import sio_packet
from fastsio._core.packetlog import PacketLog
from fastsio._core.rooms import RoomIndex
from fastsio.encoding import encode_fallback
from fastsio.engine.timers import Timer, TimerWheel
from fastsio.stats import counted
from fastsio.trace import flags as _trace

if TYPE_CHECKING:
    from fastsio.namespace import Namespace
    from fastsio.socket import Socket

Room = Hashable
RoomListener = Callable[[Room, str], None]
logger = logging.getLogger("fastsio.adapter")


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

    ``log_position`` is the last log sequence number from before the socket connected
    (:meth:`Adapter.log_position` then): a client that comes back without an offset (it never
    received an event) is served everything after it.
    ``missed_packets`` is filled by :meth:`Adapter.restore_session` (encoded parts, in order).
    """

    sid: str
    pid: str
    rooms: list[Room]
    data: Any
    log_position: int = 0
    missed_packets: list[list[bytes]] = field(default_factory=list)


class _Kept(Timer):
    """A persisted session, which is also its own expiry in the server's timer wheel."""

    __slots__ = ("session", "sessions")

    def __init__(self, wheel: TimerWheel, session: Session, sessions: dict[str, _Kept]) -> None:
        super().__init__(wheel, _never)
        self.session = session
        self.sessions = sessions

    def fire(self) -> None:
        if self.sessions.get(self.session.pid) is self:
            del self.sessions[self.session.pid]


def _never() -> None:  # pragma: no cover - _Kept overrides fire()
    pass


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
        # pid -> the session, timed in the server's wheel to expire (loop time: ``.due``)
        self._sessions: dict[str, _Kept] = {}
        self._timers: TimerWheel | None = None
        self.max_disconnection_duration = 0.0
        # "join-room"/"leave-room" listeners (see on()); None until the first, so that rooms
        # nobody watches cost one check per change.
        self._room_listeners: dict[str, list[RoomListener]] | None = None
        if recovery is not None:
            self.log = PacketLog(int(recovery["max_packets"]), int(recovery["max_bytes"]),
                                 msgpack=nsp.server.parser == "msgpack")
            self.max_disconnection_duration = float(recovery["max_disconnection_duration"])

    @property
    def stamps_offsets(self) -> bool:
        """Whether EVENT packets carry recovery offsets, so ``socket.emit`` must go through
        :meth:`broadcast` (to be logged and stamped like a broadcast)."""
        return self.log is not None

    async def init(self) -> None:
        """Called by ``Server.start`` in the server's loop: a networked adapter connects here."""

    async def aclose(self) -> None:
        """Called by ``Server.close`` after :meth:`close`: a networked adapter flushes what it
        still has to write and disconnects here."""

    # -- rooms -------------------------------------------------------------------------------
    def on(self, event: str, listener: RoomListener) -> RoomListener:
        """Call ``listener(room, sid)`` each time a socket joins a room it was not in
        (``"join-room"``) or leaves one it was in (``"leave-room"``), disconnects included:
        the official adapter's events of those names."""
        if event not in ("join-room", "leave-room"):
            raise ValueError(f'unknown adapter event "{event}" (join-room or leave-room)')
        if self._room_listeners is None:
            self._room_listeners = {}
        self._room_listeners.setdefault(event, []).append(listener)
        return listener

    def _notify_rooms(self, event: str, rooms: Iterable[Room], sid: str) -> None:
        assert self._room_listeners is not None
        listeners = self._room_listeners.get(event)
        if not listeners:
            return
        for room in rooms:
            for fn in list(listeners):
                try:
                    fn(room, sid)
                except Exception:
                    logger.exception("error in a %s listener", event)

    def add_all(self, sid: str, rooms: Iterable[Room]) -> None:
        """Put socket ``sid`` in ``rooms``."""
        known = self.index.has(sid)
        if self._room_listeners is None:
            self.index.add_all(sid, rooms)
        else:
            before = self.index.rooms_of(sid)
            rooms = list(rooms)
            self.index.add_all(sid, rooms)
            self._notify_rooms(
                "join-room", [r for r in dict.fromkeys(rooms) if r not in before], sid
            )
        if not known:
            self.update_delivery(sid)

    def update_delivery(self, sid: str) -> None:
        """Choose how broadcasts reach local socket ``sid``: straight into its session's outbox
        from the room index (no Python per recipient), or through :meth:`_send_slow` when the
        socket has outgoing listeners or speaks Engine.IO 3. Called when it joins its first
        room and when its outgoing listeners change."""
        sock = self.nsp.sockets.get(sid)
        box = None
        if sock is not None and sock._out_any is None:
            conn = sock.client.conn
            if conn.protocol != 3:
                box = conn.outbox
        self.index.set_outbox(sid, box)

    def delete(self, sid: str, room: Room) -> None:
        """Take socket ``sid`` out of ``room``."""
        if self._room_listeners is None:
            self.index.delete(sid, room)
            return
        was_in = room in self.index.rooms_of(sid)
        self.index.delete(sid, room)
        if was_in:
            self._notify_rooms("leave-room", (room,), sid)

    def delete_all(self, sid: str) -> None:
        """Take socket ``sid`` out of every room (it disconnected)."""
        if self._room_listeners is None:
            self.index.delete_all(sid)
            return
        rooms = self.index.rooms_of(sid)
        self.index.delete_all(sid)
        self._notify_rooms("leave-room", rooms, sid)

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
        # _write without an ack, written out: this is every emit's path, and a Python call
        # costs about as much as the rest of it.
        nsp = self.nsp
        server = nsp.server
        try:
            packet = server.encode(sio_packet.EVENT, nsp.name, data, None)
        except TypeError:  # not plain JSON: json_default, or a TypeError naming the event
            packet = encode_fallback(server, sio_packet.EVENT, nsp.name, data, None)
        if self.log is not None and not opts.volatile:
            _seq, parts = self.log.append(packet.parts, opts.rooms, opts.except_rooms)
            packet = sio_packet.Encoded(parts, packet.binary_only)
        if server._packets is not None or _trace.socket:
            self._count(opts, packet, None)
        slow = self.index.fanout(opts.rooms, opts.except_rooms, packet, opts.volatile)
        if slow:
            self._send_slow(slow, data, packet, opts.volatile)

    def _count(
        self, opts: BroadcastOptions, packet: sio_packet.Encoded, sids: list[str] | None
    ) -> None:
        # Counting the targets costs a second pass: only when someone looks.
        n = len(sids if sids is not None else self.index.targets(opts.rooms, opts.except_rooms))
        counted(self.nsp.server, f"{self.nsp.name} rooms={sorted(map(str, opts.rooms))}"
                f" except={sorted(map(str, opts.except_rooms))}", packet, n)

    def _write(
        self,
        data: list[Any],
        ack_id: int | None,
        opts: BroadcastOptions,
        sids: list[str] | None = None,
    ) -> None:
        """Encode once, stamp once (recovery), then queue the same packet for every target:
        ``sids`` when given (already computed), else the targets of ``opts``."""
        try:
            packet = self.nsp.server.encode(sio_packet.EVENT, self.nsp.name, data, ack_id)
        except TypeError:  # not plain JSON: json_default, or a TypeError naming the event
            packet = encode_fallback(self.nsp.server, sio_packet.EVENT, self.nsp.name, data,
                                     ack_id)
        if self.log is not None and ack_id is None and not opts.volatile:
            # One splice per broadcast: every recipient gets the same stamped bytes.
            _seq, parts = self.log.append(packet.parts, opts.rooms, opts.except_rooms)
            packet = sio_packet.Encoded(parts, packet.binary_only)
        server = self.nsp.server
        if server._packets is not None or _trace.socket:
            self._count(opts, packet, sids)
        if sids is None:
            slow = self.index.fanout(opts.rooms, opts.except_rooms, packet, opts.volatile)
        else:
            slow = self.index.send_to(sids, packet, opts.volatile)
        if slow:
            self._send_slow(slow, data, packet, opts.volatile)

    def _send_slow(
        self, sids: list[str], data: list[Any], packet: sio_packet.Encoded, volatile: bool
    ) -> None:
        """The slow path of a broadcast, one socket at a time (outgoing listeners, Engine.IO 3,
        or sids the index has no outbox for)."""
        sockets = self.nsp.sockets
        for sid in sids:
            sock = sockets.get(sid)
            if sock is None:
                continue
            if sock._out_any is not None:
                sock._notify_outgoing(data)
            sock.client.conn.send(packet, volatile)

    def broadcast_with_ack(
        self,
        data: list[Any],
        opts: BroadcastOptions,
        ack_id: int,
        on_count: Callable[[int], None],
        on_ack: Callable[[str, list[Any]], None],
    ) -> None:
        """Broadcast with one ack id for all targets; ``on_count`` learns how many will answer."""
        sids = self.index.targets(opts.rooms, opts.except_rooms)
        sockets = self.nsp.sockets
        targets = []
        for sid in sids:
            sock = sockets.get(sid)
            if sock is not None:
                sock._acks[ack_id] = _AckRelay(sid, on_ack)
                targets.append(sid)
        self._write(data, ack_id, opts, targets)
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

    async def server_side_emit(
        self, data: list[Any], expect_acks: bool = False, timeout: float | None = None
    ) -> list[Any]:
        """Send to the other nodes of the cluster (there are none in memory); with
        ``expect_acks``, one answer per other node (``AckTimeout`` with those that came when
        some are missing after ``timeout`` seconds)."""
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
        old = self._sessions.pop(session.pid, None)
        if old is not None:
            old.cancel()
        kept = _Kept(self._wheel(), session, self._sessions)
        kept.start(self.max_disconnection_duration)
        self._sessions[session.pid] = kept
        return None

    def _wheel(self) -> TimerWheel:
        """The server's timer wheel (an adapter used on its own, as in the benchmarks, makes
        one of its own)."""
        if self._timers is None:
            server = getattr(self.nsp, "server", None)
            self._timers = server.engine.timers if server is not None else TimerWheel()
        return self._timers

    async def restore_session(self, pid: str, offset: str | None) -> Session | None:
        """The session of ``pid`` with every packet it missed after ``offset``, or ``None``.

        ``None`` (a fresh session for the client) when the pid is unknown or expired, or when
        the offset is not one of this log's, or when a packet after it has been evicted: a
        replay is complete or it does not happen.

        A cluster adapter overrides this (it asks the network); while a subclass does not, the
        namespace calls :meth:`restore_session_now` instead, with no task.
        """
        return self.restore_session_now(pid, offset)

    def restore_session_now(self, pid: str, offset: str | None) -> Session | None:
        """:meth:`restore_session`, answered from this process's memory at once."""
        kept = self._sessions.get(pid)
        if kept is None or self.log is None:
            return None
        session = kept.session
        if asyncio.get_running_loop().time() >= kept.due:
            kept.cancel()
            del self._sessions[pid]
            return None
        if offset is None:
            after = session.log_position
        else:
            after = self.log.parse_offset(offset)
            if after < 0:
                return None  # forged or foreign: the real owner may still come back
        if not self.log.can_serve(after):
            kept.cancel()
            del self._sessions[pid]
            return None
        missed = self.log.replay(after, set(session.rooms))
        kept.cancel()
        del self._sessions[pid]
        return Session(session.sid, session.pid, session.rooms, session.data, session.log_position,
                       missed)

    @property
    def session_count(self) -> int:
        """Disconnected sessions kept for connection state recovery."""
        return len(self._sessions)

    def close(self) -> None:
        """Release timers and sessions."""
        for kept in self._sessions.values():
            kept.cancel()
        self._sessions.clear()


class _AckRelay:
    """An ack callback that also says which socket answered (for broadcast acks)."""

    __slots__ = ("callback", "sid")

    def __init__(self, sid: str, callback: Callable[[str, list[Any]], None]) -> None:
        self.sid = sid
        self.callback = callback

    def __call__(self, *args: Any) -> None:
        self.callback(self.sid, list(args))
