from typing import Any

from fastsio._core.sio_packet import Encoded, Packet

CONNECT: int
DISCONNECT: int
EVENT: int
ACK: int
CONNECT_ERROR: int

class Decoder:
    max_namespace_length: int
    max_depth: int
    max_args: int
    def __init__(
        self,
        max_attachments: int = 10,
        max_namespace_length: int = 256,
        max_depth: int = 64,
        max_args: int = 256,
        max_attachment_bytes: int = ...,
    ) -> None: ...
    @property
    def waiting(self) -> bool: ...
    def add_text(self, data: bytes, start: int = 0) -> Packet | None: ...
    def add_binary(self, data: bytes) -> Packet | None: ...
    def reset(self) -> None: ...

def decode(
    data: bytes, max_namespace_length: int = 256, max_depth: int = 64, max_args: int = 256
) -> Packet: ...
def encode(type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> Encoded: ...
def stamp_offset(packet: bytes, offset: bytes) -> bytes: ...
