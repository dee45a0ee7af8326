# cython: language_level=3
"""Exception types raised by the wire-format core.

Every rejection of client input raises a subclass of :class:`ProtocolError`, so the Python layer
can catch one type at the connection boundary and close only the offending connection.
"""


class ProtocolError(ValueError):
    """Input that does not follow the Engine.IO or Socket.IO wire format."""


class EnginePacketError(ProtocolError):
    """An Engine.IO packet or polling payload that cannot be decoded."""


class SocketPacketError(ProtocolError):
    """A Socket.IO packet that cannot be decoded."""


class UnknownPacketType(SocketPacketError):
    """The first character is not a Socket.IO packet type (0-6)."""


class InvalidNamespace(SocketPacketError):
    """The namespace does not start with ``/`` or is longer than allowed."""


class InvalidAckId(SocketPacketError):
    """The ack id is not made of digits only, or is too long."""


class InvalidPayload(SocketPacketError):
    """The JSON part is not valid JSON, or has the wrong shape for the packet type."""


class InvalidAttachments(SocketPacketError):
    """The attachment count or a binary placeholder is malformed or out of range."""


class TooManyAttachments(InvalidAttachments):
    """A binary packet announces more attachments than the decoder accepts."""


class UnexpectedBinary(SocketPacketError):
    """A binary frame arrived while no binary packet was waiting for attachments."""


class UnexpectedText(SocketPacketError):
    """A text packet arrived while a binary packet was still waiting for attachments."""
