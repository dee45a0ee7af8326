"""The inbound side of a WebSocket session: the picows listener, in the core."""

from collections.abc import Callable
from typing import Any

from picows import WSFrame, WSListener, WSTransport

from fastsio._core import msgpack_packet, sio_packet
from fastsio._core.outbox import Outbox

def use_sinks(on: bool) -> None: ...

class Inbox(WSListener):
    socket: Any
    _box: Outbox | None
    direct_fd: int
    max_message_size: int
    def set_sink(
        self,
        decoder: sio_packet.Decoder | msgpack_packet.Decoder | None,
        nsps: dict[str, Any] | None,
        on_packet: Callable[[sio_packet.Packet], None] | None,
    ) -> None: ...
    def _deliver(self, data: bytes, binary: bool) -> None: ...
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None: ...
