# cython: language_level=3
"""Engine.IO v4 packets and HTTP long-polling payloads.

A packet travels through the Python layer as ``bytes`` plus a binary flag. A text packet keeps its
type digit as the first byte (``b"4hello"``), so a packet encoded once can be written unchanged to
a WebSocket text frame or joined into a polling payload. A binary packet is always a MESSAGE and
carries its raw bytes (WebSocket binary frame, or ``b`` + base64 inside a polling payload).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy
import binascii
import re

from fastsio._core.errors import EnginePacketError

OPEN = 0
CLOSE = 1
PING = 2
PONG = 3
MESSAGE = 4
UPGRADE = 5
NOOP = 6

cdef bytes _SEPARATOR = b"\x1e"
# Checked by hand: binascii's strict_mode is missing on 3.10 and lets "=" after a full group
# through before 3.13.
cdef object _B64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


cpdef int packet_type(bytes packet) except -1:
    """Type of a text packet (its first byte), or raise :class:`EnginePacketError`."""
    if packet is None:
        raise TypeError("packet must be bytes, not None")
    cdef Py_ssize_t n = PyBytes_GET_SIZE(packet)
    cdef unsigned char c
    if n == 0:
        raise EnginePacketError("empty packet")
    c = <unsigned char>PyBytes_AS_STRING(packet)[0]
    if c < 48 or c > 54:
        raise EnginePacketError("unknown packet type")
    return c - 48


cpdef bytes encode_packet(int ptype, bytes data=None):
    """Text packet ``<type digit><data>``."""
    if ptype < 0 or ptype > 6:
        raise ValueError("packet type out of range")
    if data is None:
        return _TYPE_BYTES[ptype]
    return _TYPE_BYTES[ptype] + data


cdef tuple _TYPE_BYTES = (b"0", b"1", b"2", b"3", b"4", b"5", b"6")


cpdef list decode_payload(bytes body, Py_ssize_t max_packets=-1):
    """Split a polling body into ``(packet, is_binary)`` pairs.

    Text packets are returned with their type digit (checked); ``b``-prefixed packets are base64
    decoded into the raw bytes of a binary MESSAGE.
    """
    if body is None:
        raise TypeError("body must be bytes, not None")
    cdef list out = []
    cdef Py_ssize_t n = PyBytes_GET_SIZE(body)
    cdef Py_ssize_t start = 0
    cdef Py_ssize_t end
    cdef bytes segment
    cdef const char* buf = PyBytes_AS_STRING(body)
    if n == 0:
        raise EnginePacketError("empty payload")
    while start <= n:
        end = body.find(_SEPARATOR, start)
        if end < 0:
            end = n
        if end == start:
            raise EnginePacketError("empty packet in payload")
        if buf[start] == 98:  # 'b': base64 binary message
            segment = body[start + 1:end]
            if _B64.fullmatch(segment) is None:
                raise EnginePacketError("invalid base64 in payload")
            segment = binascii.a2b_base64(segment)
            out.append((segment, True))
        else:
            segment = body[start:end]
            packet_type(segment)
            out.append((segment, False))
        if max_packets >= 0 and len(out) > max_packets:
            raise EnginePacketError("too many packets in payload")
        start = end + 1
    return out


cpdef bytes encode_payload(list packets):
    """Join ``(packet, is_binary)`` pairs into one polling body."""
    cdef list parts = []
    cdef bytes data
    cdef object binary
    for data, binary in packets:
        if binary:
            parts.append(b"b" + binascii.b2a_base64(data, newline=False))
        else:
            parts.append(data)
    return _SEPARATOR.join(parts)


cpdef bytes ws_frame(bytes payload, bint binary=False):
    """One unmasked, final WebSocket frame (server to client) carrying ``payload``.

    A broadcast frames its packet once with this and writes the same bytes to every WebSocket
    recipient, instead of framing per connection.
    """
    if payload is None:
        raise TypeError("payload must be bytes, not None")
    cdef Py_ssize_t n = PyBytes_GET_SIZE(payload)
    cdef Py_ssize_t head = 2 if n < 126 else (4 if n < 65536 else 10)
    cdef bytes frame = PyBytes_FromStringAndSize(NULL, head + n)
    cdef unsigned char* out = <unsigned char*>PyBytes_AS_STRING(frame)
    cdef unsigned long long length = <unsigned long long>n
    cdef int k
    out[0] = 0x82 if binary else 0x81
    if head == 2:
        out[1] = <unsigned char>n
    elif head == 4:
        out[1] = 126
        out[2] = <unsigned char>(n >> 8)
        out[3] = <unsigned char>(n & 0xFF)
    else:
        out[1] = 127
        for k in range(8):
            out[2 + k] = <unsigned char>((length >> (8 * (7 - k))) & 0xFF)
    memcpy(out + head, PyBytes_AS_STRING(payload), n)
    return frame
