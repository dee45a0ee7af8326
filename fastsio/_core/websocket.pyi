"""The server side of a WebSocket connection, from its ``101`` on."""

from asyncio import AbstractEventLoop, BaseTransport
from logging import LoggerAdapter
from typing import Any

from picows import WSListener, WSTransport

def accept_key(key: str) -> bytes | None: ...

class WebSocketProtocol:
    transport: WSTransport | None
    listener: WSListener
    def __init__(
        self,
        listener: WSListener,
        max_frame_size: int,
        logger: LoggerAdapter[Any],
        loop: AbstractEventLoop,
    ) -> None: ...
    def open(
        self,
        transport: BaseTransport,
        fd: int,
        head: bytes,
        accept: bytes,
        first: bytes = b"",
        data: bytes = b"",
    ) -> None: ...
    @property
    def own_buffer_size(self) -> int: ...
    def get_buffer(self, size_hint: int) -> memoryview: ...
    def buffer_updated(self, nbytes: int) -> None: ...
    def eof_received(self) -> bool: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...
