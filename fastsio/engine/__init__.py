"""Engine.IO (revision 4, and 3 with ``allow_eio3``): sessions, heartbeat, long-polling and
WebSocket transports, upgrade."""

from fastsio.engine.http import Request
from fastsio.engine.server import EngineServer
from fastsio.engine.socket import EngineSocket

__all__ = ["EngineServer", "EngineSocket", "Request"]
