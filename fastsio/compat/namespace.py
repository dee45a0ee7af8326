"""``AsyncNamespace``: python-socketio's class-based namespaces over ``fastsio.compat``."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from fastsio.compat._calls import call_handler

if TYPE_CHECKING:
    from fastsio.compat.server import AsyncServer

__all__ = ["AsyncNamespace"]


class AsyncNamespace:
    """Handlers of one namespace as ``on_<event>`` methods (sync or async).

    ``on_connect(sid, environ[, auth])`` may refuse with ``False`` or
    :class:`~fastsio.compat.exceptions.ConnectionRefusedError`; ``on_disconnect(sid[, reason])``;
    any other ``on_<event>(sid, *args)`` returns the ack. The helpers (``emit``, ``enter_room``,
    ``get_session``, ...) are the server's, with this namespace as the default.
    """

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace or "/"
        self.server: AsyncServer | None = None

    def is_asyncio_based(self) -> bool:
        return True

    def _set_server(self, server: AsyncServer) -> None:
        self.server = server

    @property
    def _srv(self) -> AsyncServer:
        if self.server is None:
            raise RuntimeError("namespace not registered with a server (register_namespace)")
        return self.server

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Call ``on_<event>`` (override to route events some other way)."""
        handler = getattr(self, "on_" + (event or ""), None)
        if handler is None:
            return None
        result = call_handler(handler, event, args)
        if inspect.isawaitable(result):
            result = await result
        return result

    # -- the server's helpers, defaulting to this namespace ------------------------------------
    async def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None,
                   skip_sid: Any = None, namespace: str | None = None,
                   callback: Any = None, ignore_queue: bool = False) -> None:
        await self._srv.emit(event, data=data, to=to, room=room, skip_sid=skip_sid,
                             namespace=namespace or self.namespace, callback=callback,
                             ignore_queue=ignore_queue)

    async def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
                   namespace: str | None = None, callback: Any = None,
                   ignore_queue: bool = False) -> None:
        await self._srv.send(data, to=to, room=room, skip_sid=skip_sid,
                             namespace=namespace or self.namespace, callback=callback,
                             ignore_queue=ignore_queue)

    async def call(self, event: str, data: Any = None, to: Any = None, sid: Any = None,
                   namespace: str | None = None, timeout: float | None = None,
                   ignore_queue: bool = False) -> Any:
        return await self._srv.call(event, data=data, to=to, sid=sid,
                                    namespace=namespace or self.namespace,
                                    timeout=60 if timeout is None else timeout,
                                    ignore_queue=ignore_queue)

    async def enter_room(self, sid: str, room: Any, namespace: str | None = None) -> None:
        await self._srv.enter_room(sid, room, namespace=namespace or self.namespace)

    async def leave_room(self, sid: str, room: Any, namespace: str | None = None) -> None:
        await self._srv.leave_room(sid, room, namespace=namespace or self.namespace)

    async def close_room(self, room: Any, namespace: str | None = None) -> None:
        await self._srv.close_room(room, namespace=namespace or self.namespace)

    def rooms(self, sid: str, namespace: str | None = None) -> list[Any]:
        return self._srv.rooms(sid, namespace=namespace or self.namespace)

    async def get_session(self, sid: str, namespace: str | None = None) -> Any:
        return await self._srv.get_session(sid, namespace=namespace or self.namespace)

    async def save_session(self, sid: str, session: Any, namespace: str | None = None) -> None:
        await self._srv.save_session(sid, session, namespace=namespace or self.namespace)

    def session(self, sid: str, namespace: str | None = None) -> Any:
        return self._srv.session(sid, namespace=namespace or self.namespace)

    async def disconnect(self, sid: str, namespace: str | None = None,
                         ignore_queue: bool = False) -> None:
        await self._srv.disconnect(sid, namespace=namespace or self.namespace,
                                   ignore_queue=ignore_queue)
