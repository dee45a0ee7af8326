"""Engine.IO protocol 3 (Socket.IO v2 clients, ``allow_eio3=True``): the payload codec.

Only this compatibility path parses bytes in Python: the v4 codec lives in ``_core/eio_packet``.
Packets cross this module in the same shape as there: a text packet is ``bytes`` with its type
digit first, a binary packet is the raw bytes of a MESSAGE.

Protocol 3 payloads, as the official server's ``parser-v3``:

- text: ``<length>:<packet>`` repeated, the length counted in characters as JavaScript counts
  them (UTF-16 code units); a binary MESSAGE travels as ``b4<base64>``;
- binary (XHR2, when the client did not ask for ``b64``): per packet a ``0`` (text) or ``1``
  (binary) byte, the decimal digits of the length as bytes 0-9, a 255 byte, then the packet
  (UTF-8 text with its type digit, or the type byte ``4`` and the raw bytes).
"""

from __future__ import annotations

import base64
import binascii

from fastsio._core.errors import EnginePacketError

_MESSAGE = 4
_TYPE_DIGITS = b"0123456"
_MAX_LENGTH_DIGITS = 310  # the official decoder's bound (the digits of Number.MAX_VALUE)


def _units(text: str) -> int:
    """``text.length`` in JavaScript: UTF-16 code units."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


# -- single packets ---------------------------------------------------------------------------
def decode_text_packet(text: str) -> tuple[bytes, bool]:
    """One packet from a text payload or a WebSocket text frame (``b4...`` is binary)."""
    if not text:
        raise EnginePacketError("empty packet")
    if text[0] == "b":
        if text[1:2] != "4":
            raise EnginePacketError("base64 packet that is not a message")
        try:
            data = base64.b64decode(text[2:], validate=True)
        except (binascii.Error, ValueError):
            raise EnginePacketError("invalid base64 packet") from None
        return data, True
    if text[0] not in "0123456":
        raise EnginePacketError("unknown packet type")
    return text.encode(), False


def decode_binary_packet(data: bytes) -> tuple[bytes, bool]:
    """One binary packet (WebSocket binary frame): its first byte is the packet type."""
    if not data or data[0] != _MESSAGE:
        raise EnginePacketError("binary packet that is not a message")
    return data[1:], True


def encode_binary_packet(data: bytes) -> bytes:
    """A binary MESSAGE for a WebSocket binary frame: the type byte, then the data."""
    return b"\x04" + data


def encode_base64_packet(data: bytes) -> bytes:
    """A binary MESSAGE as text, for a client that asked for ``b64``."""
    return b"b4" + base64.b64encode(data)


# -- payloads ---------------------------------------------------------------------------------
def encode_payload(
    packets: list[tuple[bytes, bool]], supports_binary: bool
) -> tuple[bytes, bool]:
    """A polling body for ``packets``; the flag says whether it is a binary payload (answered as
    ``application/octet-stream``). Binary payloads only when the client supports them and a
    packet is binary, as the official server."""
    if supports_binary and any(binary for _, binary in packets):
        return _encode_binary_payload(packets), True
    parts: list[bytes] = []
    for data, binary in packets:
        if binary:
            data = encode_base64_packet(data)
            n = len(data)
        elif data.isascii():
            n = len(data)
        else:
            n = _units(data.decode())
        parts.append(b"%d:" % n)
        parts.append(data)
    return (b"".join(parts) if parts else b"0:"), False


def _encode_binary_payload(packets: list[tuple[bytes, bool]]) -> bytes:
    out = bytearray()
    for data, binary in packets:
        if binary:
            data = encode_binary_packet(data)
        out.append(1 if binary else 0)
        out += bytes(int(d) for d in str(len(data)))
        out.append(255)
        out += data
    return bytes(out)


def decode_payload(body: bytes, binary: bool = False) -> list[tuple[bytes, bool]]:
    """The packets of a polling POST body (``binary``: sent as ``application/octet-stream``).
    Raises :class:`EnginePacketError` on anything malformed (the whole payload is refused)."""
    if binary:
        return _decode_binary_payload(body)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise EnginePacketError("payload is not UTF-8") from None
    if not text:
        raise EnginePacketError("empty payload")
    ascii_only = text.isascii()
    out: list[tuple[bytes, bool]] = []
    i, n = 0, len(text)
    while i < n:
        colon = text.find(":", i)
        if colon < 0:
            raise EnginePacketError("payload without a length separator")
        digits = text[i:colon]
        if (
            not digits
            or len(digits) > _MAX_LENGTH_DIGITS
            or not digits.isdigit()
            or not digits.isascii()
        ):
            raise EnginePacketError("invalid packet length in payload")
        want = int(digits)
        start = colon + 1
        if ascii_only:
            end = start + want
            if end > n:
                raise EnginePacketError("packet length past the end of the payload")
        else:
            end, units = start, 0
            while units < want and end < n:
                units += 2 if ord(text[end]) > 0xFFFF else 1
                end += 1
            if units != want:
                raise EnginePacketError("packet length does not match the payload")
        if end > start:
            out.append(decode_text_packet(text[start:end]))
        i = end
    return out


def _decode_binary_payload(body: bytes) -> list[tuple[bytes, bool]]:
    out: list[tuple[bytes, bool]] = []
    i, n = 0, len(body)
    if n == 0:
        raise EnginePacketError("empty payload")
    while i < n:
        is_text = body[i] == 0
        if body[i] > 1:
            raise EnginePacketError("invalid packet kind in binary payload")
        i += 1
        j = body.find(b"\xff", i)
        if j < 0 or j == i or j - i > _MAX_LENGTH_DIGITS:
            raise EnginePacketError("invalid packet length in binary payload")
        if any(b > 9 for b in body[i:j]):
            raise EnginePacketError("invalid packet length in binary payload")
        length = int("".join(str(b) for b in body[i:j]))
        start = j + 1
        end = start + length
        if end > n:
            raise EnginePacketError("packet length past the end of the payload")
        packet = body[start:end]
        if is_text:
            if not packet or packet[0] not in _TYPE_DIGITS:
                raise EnginePacketError("unknown packet type")
            try:
                packet.decode()
            except UnicodeDecodeError:
                raise EnginePacketError("packet is not UTF-8") from None
            out.append((packet, False))
        else:
            out.append(decode_binary_packet(packet))
        i = end
    return out
