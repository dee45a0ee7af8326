"""Emit to a cluster from a process that is not a server (a Celery task, a script), in the
format of the official ``@socket.io/redis-streams-emitter``: XADD to the stream with uid
``"emitter"``; every node (fastsio or Node.js) applies it to its own sockets.

``Emitter(url)`` is synchronous (redis-py's blocking client), ``AsyncEmitter(url)`` the same
on asyncio. Both: ``.of(nsp).to(room).except_(room).volatile.emit(event, *args)``,
``sockets_join``/``sockets_leave``/``disconnect_sockets`` and ``server_side_emit``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, Generic, TypeVar

import redis
import redis.asyncio as aioredis

from fastsio._core.sio_packet import RESERVED_EVENTS
from fastsio.cluster import wire

Room = Hashable
_C = TypeVar("_C")
_R = TypeVar("_R")


def _rooms(rooms: Room | Iterable[Room]) -> list[Room]:
    if isinstance(rooms, (str, bytes, int)) or not isinstance(rooms, Iterable):
        return [rooms]
    return list(rooms)


class _Target(Generic[_C, _R]):
    """An immutable selection (namespace, rooms, except rooms, flags); each call returns a new
    one, and the final call writes one stream entry."""

    __slots__ = ("_emitter", "_except", "_flags", "_nsp", "_rooms")

    def __init__(self, emitter: _Base[_C, _R], nsp: str, rooms: tuple[Room, ...] = (),
                 excepts: tuple[Room, ...] = (), flags: dict[str, Any] | None = None) -> None:
        self._emitter = emitter
        self._nsp = nsp
        self._rooms = rooms
        self._except = excepts
        self._flags = flags or {}

    def to(self, rooms: Room | Iterable[Room]) -> _Target[_C, _R]:
        return _Target(self._emitter, self._nsp, (*self._rooms, *_rooms(rooms)), self._except,
                       self._flags)

    in_ = to

    def except_(self, rooms: Room | Iterable[Room]) -> _Target[_C, _R]:
        return _Target(self._emitter, self._nsp, self._rooms, (*self._except, *_rooms(rooms)),
                       self._flags)

    @property
    def volatile(self) -> _Target[_C, _R]:
        return _Target(self._emitter, self._nsp, self._rooms, self._except,
                       {**self._flags, "volatile": True})

    def compress(self, compress: bool) -> _Target[_C, _R]:
        return _Target(self._emitter, self._nsp, self._rooms, self._except,
                       {**self._flags, "compress": compress})

    def _opts(self, flags: dict[str, Any]) -> dict[str, Any]:
        return wire.encode_opts(dict.fromkeys(self._rooms), dict.fromkeys(self._except), flags)

    def emit(self, event: str, *args: Any) -> _R:
        """Send ``event`` to the selected sockets of every node."""
        if not isinstance(event, str) or event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is not an event name an emitter can send")
        packet = {"type": wire.EVENT, "data": [event, *args], "nsp": self._nsp}
        return self._emitter._publish(self._nsp, wire.BROADCAST,
                                      {"packet": packet, "opts": self._opts(self._flags)})

    def sockets_join(self, rooms: Room | Iterable[Room]) -> _R:
        return self._emitter._publish(self._nsp, wire.SOCKETS_JOIN,
                                      {"opts": self._opts({}), "rooms": _rooms(rooms)})

    def sockets_leave(self, rooms: Room | Iterable[Room]) -> _R:
        return self._emitter._publish(self._nsp, wire.SOCKETS_LEAVE,
                                      {"opts": self._opts({}), "rooms": _rooms(rooms)})

    def disconnect_sockets(self, close: bool = False) -> _R:
        return self._emitter._publish(self._nsp, wire.DISCONNECT_SOCKETS,
                                      {"opts": self._opts({}), "close": close})

    def server_side_emit(self, event: str, *args: Any) -> _R:
        """Send ``event`` to every node's server-side handlers (no acks: an emitter has no
        channel to hear them, as with the official emitter)."""
        if not isinstance(event, str) or event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is not an event name an emitter can send")
        return self._emitter._publish(self._nsp, wire.SERVER_SIDE_EMIT,
                                      {"packet": [event, *args]})


class _Base(Generic[_C, _R]):
    client: _C

    def __init__(self, *, stream_name: str = "socket.io", stream_count: int = 1,
                 max_len: int = 10_000, nsp: str = "/") -> None:
        self.stream_name = stream_name
        self.stream_count = stream_count
        self.max_len = max_len
        self.nsp = nsp

    def _target(self) -> _Target[_C, _R]:
        return _Target(self, self.nsp)

    def _fields(self, nsp: str, type_: int, data: Any) -> tuple[str, dict[bytes, bytes]]:
        msg = wire.message(wire.EMITTER_UID, nsp, type_, data)
        return (wire.stream_name(self.stream_name, self.stream_count, nsp),
                wire.stream_fields(msg))

    def _publish(self, nsp: str, type_: int, data: Any) -> _R:
        raise NotImplementedError

    # The selection shortcuts, on the emitter's namespace.
    def to(self, rooms: Room | Iterable[Room]) -> _Target[_C, _R]:
        return self._target().to(rooms)

    in_ = to

    def except_(self, rooms: Room | Iterable[Room]) -> _Target[_C, _R]:
        return self._target().except_(rooms)

    @property
    def volatile(self) -> _Target[_C, _R]:
        return self._target().volatile

    def compress(self, compress: bool) -> _Target[_C, _R]:
        return self._target().compress(compress)

    def emit(self, event: str, *args: Any) -> _R:
        return self._target().emit(event, *args)

    def sockets_join(self, rooms: Room | Iterable[Room]) -> _R:
        return self._target().sockets_join(rooms)

    def sockets_leave(self, rooms: Room | Iterable[Room]) -> _R:
        return self._target().sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> _R:
        return self._target().disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any) -> _R:
        return self._target().server_side_emit(event, *args)


class Emitter(_Base["redis.Redis", bytes]):
    """The synchronous emitter: each call is one XADD and returns the stream entry id."""

    def __init__(self, url_or_client: str | redis.Redis, **options: Any) -> None:
        super().__init__(**options)
        self.client = (redis.Redis.from_url(url_or_client) if isinstance(url_or_client, str)
                       else url_or_client)

    def of(self, nsp: str) -> Emitter:
        """The same emitter for another namespace."""
        other = Emitter.__new__(Emitter)
        _Base.__init__(other, stream_name=self.stream_name, stream_count=self.stream_count,
                       max_len=self.max_len, nsp=nsp if nsp.startswith("/") else "/" + nsp)
        other.client = self.client
        return other

    def _publish(self, nsp: str, type_: int, data: Any) -> bytes:
        stream, fields = self._fields(nsp, type_, data)
        return self.client.xadd(stream, fields, maxlen=self.max_len,  # type: ignore[arg-type, return-value]
                                approximate=True)

    def close(self) -> None:
        self.client.close()


class AsyncEmitter(_Base["aioredis.Redis", "Any"]):
    """The asyncio emitter: each call returns an awaitable of the stream entry id."""

    def __init__(self, url_or_client: str | aioredis.Redis, **options: Any) -> None:
        super().__init__(**options)
        self.client = (aioredis.Redis.from_url(url_or_client)
                       if isinstance(url_or_client, str) else url_or_client)

    def of(self, nsp: str) -> AsyncEmitter:
        """The same emitter for another namespace."""
        other = AsyncEmitter.__new__(AsyncEmitter)
        _Base.__init__(other, stream_name=self.stream_name, stream_count=self.stream_count,
                       max_len=self.max_len, nsp=nsp if nsp.startswith("/") else "/" + nsp)
        other.client = self.client
        return other

    def _publish(self, nsp: str, type_: int, data: Any) -> Any:
        stream, fields = self._fields(nsp, type_, data)
        return self.client.xadd(stream, fields, maxlen=self.max_len,  # type: ignore[arg-type]
                                approximate=True)

    async def aclose(self) -> None:
        await self.client.aclose()
