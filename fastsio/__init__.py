"""fastsio: a fast, faithful Socket.IO v4 server for Python."""

from fastsio.adapter import Adapter, BroadcastOptions
from fastsio.admin import instrument
from fastsio.asgi import ASGIApp
from fastsio.broadcast import BroadcastOperator, RemoteSocket
from fastsio.exceptions import AckTimeout, ConnectionRefused, Disconnected, ProtocolError
from fastsio.namespace import Namespace, ParentNamespace
from fastsio.server import Server
from fastsio.socket import Handshake, Socket

__version__ = "0.1.0"

__all__ = [
    "ASGIApp",
    "AckTimeout",
    "Adapter",
    "BroadcastOperator",
    "BroadcastOptions",
    "ConnectionRefused",
    "Disconnected",
    "Handshake",
    "Namespace",
    "ParentNamespace",
    "ProtocolError",
    "RemoteSocket",
    "Server",
    "Socket",
    "__version__",
    "instrument",
]
