from collections.abc import Iterator
from typing import Any, overload

CONNECT: int
DISCONNECT: int
EVENT: int
ACK: int
CONNECT_ERROR: int
BINARY_EVENT: int
BINARY_ACK: int
RESERVED_EVENTS: frozenset[str]

class Packet:
    type: int
    nsp: str
    data: Any
    id: int | None
    attachments: int
    def __init__(
        self,
        type: int,
        nsp: str = "/",
        data: Any = None,
        id: int | None = None,
        attachments: int = 0,
    ) -> None: ...

class Decoder:
    max_attachments: int
    max_namespace_length: int
    max_depth: int
    max_args: int
    max_attachment_bytes: int
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
    data: bytes,
    start: int = 0,
    max_attachments: int = 10,
    max_namespace_length: int = 256,
    max_depth: int = 64,
    max_args: int = 256,
) -> Packet: ...
class Encoded:
    parts: list[bytes]
    size: int
    binary_only: bool
    def __init__(self, parts: list[bytes], binary_only: bool = False) -> None: ...
    @property
    def frame(self) -> bytes: ...
    @property
    def packets(self) -> list[tuple[bytes, bool]]: ...
    @property
    def binary(self) -> bool: ...
    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...
    def __iter__(self) -> Iterator[bytes]: ...

def encode(type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> Encoded: ...
def stamp_offset(packet: bytes, offset: bytes) -> bytes: ...
