"""python-socketio's server API on fastsio: ``from fastsio import compat as socketio``.

A python-socketio 5 server application runs after changing only its import; what differs is
listed in ``docs/migrating.md``. ``sio.io`` is the native :class:`fastsio.Server` underneath,
for moving to the native API one piece at a time.
"""

from fastsio.asgi import ASGIApp
from fastsio.compat import exceptions
from fastsio.compat.exceptions import (
    BadNamespaceError,
    ConnectionError,
    ConnectionRefusedError,
    DisconnectedError,
    SocketIOError,
    TimeoutError,
)
from fastsio.compat.manager import AsyncManager, AsyncRedisManager
from fastsio.compat.namespace import AsyncNamespace
from fastsio.compat.server import AsyncServer

__all__ = [
    "ASGIApp",
    "AsyncManager",
    "AsyncNamespace",
    "AsyncRedisManager",
    "AsyncServer",
    "BadNamespaceError",
    "ConnectionError",
    "ConnectionRefusedError",
    "DisconnectedError",
    "SocketIOError",
    "TimeoutError",
    "exceptions",
]
