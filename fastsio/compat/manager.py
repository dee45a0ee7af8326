"""``sio.manager``: what python-socketio apps read from the client manager (room members, a
client's rooms, whether it is connected), answered from the native adapters."""

from __future__ import annotations

import importlib
from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastsio.compat.server import AsyncServer

__all__ = ["AsyncManager"]


class AsyncManager:
    """The in-memory client manager of ``fastsio.compat`` (python-socketio's ``AsyncManager``
    surface). Room membership lives in each namespace's native adapter; this object only reads
    it, so it is never out of step with the native server.

    Like python-socketio's, it knows the clients of this process only.
    """

    def __init__(self) -> None:
        self.server: AsyncServer | None = None

    def set_server(self, server: AsyncServer) -> None:
        self.server = server

    def initialize(self) -> None:
        """Called once before the first connection (python-socketio's hook; nothing to do)."""

    @property
    def _srv(self) -> AsyncServer:
        if self.server is None:
            raise RuntimeError("manager not attached to a server")
        return self.server

    def get_namespaces(self) -> list[str]:
        """The namespaces that have connected clients."""
        return [name for name, nsp in self._srv.io._nsps.items() if nsp.sockets]

    def get_participants(
        self, namespace: str, room: Hashable | list[Hashable] | tuple[Hashable, ...] | None
    ) -> Iterator[tuple[str, str]]:
        """``(sid, eio_sid)`` for every client in ``room`` (a list: any of them; ``None``: every
        client of the namespace)."""
        nsp = self._srv.io._nsps.get(namespace or "/")
        if nsp is None:
            return
        sockets = nsp.sockets
        if room is None:
            sids: Any = list(sockets)
        else:
            rooms = room if isinstance(room, (list, tuple)) else (room,)
            sids = nsp.adapter.index.targets(frozenset(rooms), frozenset())
        for sid in sids:
            sock = sockets.get(sid)
            if sock is not None:
                yield sid, sock.client.conn.sid

    def get_rooms(self, sid: str, namespace: str) -> list[Hashable]:
        """The rooms of client ``sid`` (its own sid room first), ``[]`` if unknown."""
        return self._srv.rooms(sid, namespace)

    def is_connected(self, sid: str, namespace: str) -> bool:
        """Whether ``sid`` is connected to ``namespace`` (not while its ``connect`` handler
        runs, as in python-socketio)."""
        nsp = self._srv.io._nsps.get(namespace or "/")
        sock = nsp.sockets.get(sid) if nsp is not None else None
        return sock is not None and sock.connected and sid not in self._srv._leaving

    def sid_from_eio_sid(self, eio_sid: str, namespace: str) -> str | None:
        nsp = self._srv.io._nsps.get(namespace or "/")
        if nsp is None:
            return None
        for sid, sock in nsp.sockets.items():
            if sock.client.conn.sid == eio_sid:
                return sid
        return None

    def eio_sid_from_sid(self, sid: str, namespace: str) -> str | None:
        sock = self._srv._find(sid, namespace)
        return None if sock is None else sock.client.conn.sid

    @property
    def rooms(self) -> dict[str, dict[Hashable, dict[str, str]]]:
        """``{namespace: {room: {sid: eio_sid}}}`` (a snapshot; ``None`` is every client, as in
        python-socketio)."""
        out: dict[str, dict[Hashable, dict[str, str]]] = {}
        for name, nsp in self._srv.io._nsps.items():
            if not nsp.sockets:
                continue
            rooms: dict[Hashable, dict[str, str]] = {
                None: {sid: s.client.conn.sid for sid, s in nsp.sockets.items()}
            }
            for room, sids in nsp.adapter.rooms.items():
                members = {
                    sid: nsp.sockets[sid].client.conn.sid for sid in sids if sid in nsp.sockets
                }
                if members:
                    rooms[room] = members
            out[name] = rooms
        return out

    async def can_disconnect(self, sid: str, namespace: str) -> bool:
        return self.is_connected(sid, namespace)

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None,
                   **kwargs: Any) -> None:
        await self._srv.emit(event, data, to=to if to is not None else room, skip_sid=skip_sid,
                             namespace=namespace, callback=callback)

    async def enter_room(self, sid: str, namespace: str, room: Hashable,
                         eio_sid: str | None = None) -> None:
        await self._srv.enter_room(sid, room, namespace)

    async def leave_room(self, sid: str, namespace: str, room: Hashable) -> None:
        await self._srv.leave_room(sid, room, namespace)

    async def close_room(self, room: Hashable, namespace: str) -> None:
        await self._srv.close_room(room, namespace)

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        await self._srv.disconnect(sid, namespace)


class AsyncRedisManager(AsyncManager):
    """python-socketio's ``AsyncRedisManager(url)``, backed by fastsio's Redis streams adapter
    (``fastsio.cluster``): rooms, broadcasts and sessions span every server on that Redis.

    It speaks the official Socket.IO cluster format (``@socket.io/redis-streams-adapter``), not
    python-socketio's own pub/sub messages: every server of the cluster must be fastsio (or the
    official Node server with that adapter); python-socketio servers cannot join it.
    ``channel`` and ``redis_options`` are accepted for compatibility; ``write_only`` managers
    (an external process that only emits) are not supported.
    """

    def __init__(self, url: str = "redis://localhost:6379/0", channel: str = "socketio",
                 write_only: bool = False, logger: Any = None,
                 redis_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        if write_only:
            raise ValueError("write_only client managers are not supported by fastsio.compat")
        try:
            # Imported by name: fastsio.cluster is optional (and may not be installed).
            cluster = importlib.import_module("fastsio.cluster")
            redis_streams_adapter = cluster.redis_streams_adapter
        except (ImportError, AttributeError) as exc:
            raise ImportError(
                "AsyncRedisManager needs fastsio's Redis adapter (fastsio.cluster) and the "
                f"redis package: {exc}"
            ) from exc
        self.url = url
        self.channel = channel
        self.adapter_factory = redis_streams_adapter(url)
