"""Exceptions of the public API (the wire-format errors come from the Cython core)."""

from __future__ import annotations

from typing import Any

from fastsio._core.errors import (
    EnginePacketError,
    InvalidAckId,
    InvalidAttachments,
    InvalidNamespace,
    InvalidPayload,
    ProtocolError,
    SocketPacketError,
    TooManyAttachments,
    UnexpectedBinary,
    UnexpectedText,
    UnknownPacketType,
)

__all__ = [
    "AckTimeout",
    "ConnectionRefused",
    "Disconnected",
    "EnginePacketError",
    "FastsioError",
    "InvalidAckId",
    "InvalidAttachments",
    "InvalidNamespace",
    "InvalidPayload",
    "ProtocolError",
    "SocketPacketError",
    "TooManyAttachments",
    "UnexpectedBinary",
    "UnexpectedText",
    "UnknownPacketType",
]


class FastsioError(Exception):
    """Base class of the errors fastsio raises at its API."""


class ConnectionRefused(FastsioError):
    """Raise from a middleware to refuse a connection: the client gets a CONNECT_ERROR packet
    with ``message`` and, when given, ``data`` (``err.message`` / ``err.data`` on the JS client).
    """

    def __init__(self, message: str = "Connection refused", data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class AckTimeout(FastsioError, TimeoutError):
    """No acknowledgement came back in time (the official server's "operation has timed out")."""

    def __init__(self, message: str = "operation has timed out", responses: Any = None) -> None:
        super().__init__(message)
        self.responses = responses


class Disconnected(FastsioError):
    """The socket disconnected before its client acknowledged."""
