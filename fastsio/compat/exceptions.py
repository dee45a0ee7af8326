"""python-socketio's exception names (``socketio.exceptions``), for ``fastsio.compat`` apps.

``ConnectionRefusedError(*args)`` refuses a connection from a ``connect`` handler: the client's
``connect_error`` gets ``{"message": str(args[0]), "data": args[1]}`` (``args[1:]`` as a list
with three or more arguments), or ``"Connection rejected by server"`` without arguments.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadNamespaceError",
    "ConnectionError",
    "ConnectionRefusedError",
    "DisconnectedError",
    "SocketIOError",
    "TimeoutError",
]

DEFAULT_REFUSAL = "Connection rejected by server"


class SocketIOError(Exception):
    """Base class of the compat layer's errors (python-socketio's name)."""


class ConnectionError(SocketIOError):
    """A connection could not be made or was refused."""


class ConnectionRefusedError(ConnectionError):
    """Raise from a ``connect`` handler to refuse the connection; the positional arguments
    travel to the client in the CONNECT_ERROR packet."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        error: dict[str, Any] = {"message": str(args[0]) if args else DEFAULT_REFUSAL}
        if len(args) == 2:
            error["data"] = args[1]
        elif len(args) > 2:
            error["data"] = list(args[1:])
        self.error_args = error


class TimeoutError(SocketIOError):
    """``call()`` got no answer in time."""


class BadNamespaceError(SocketIOError):
    """A namespace that the server does not serve."""


class DisconnectedError(SocketIOError):
    """The client is not connected (python-socketio's client raises it; kept for imports)."""
