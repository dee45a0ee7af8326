"""A pure-Python model of ``fastsio._core.msgpack_packet``: the oracle of its property tests.

Written from the rules of ``socket.io-msgpack-parser`` 3.0 (one msgpack map per packet, checked:
an integer type 0..4, a string ``nsp``, the data the type allows, an integer ``id``) and of the
msgpack library it uses, notepack.io 2.2 (ext type 0: ``undefined`` in 1 byte, a ``Date`` in
fixext 8, an ``ArrayBuffer`` otherwise; other ext types as ``[type, bytes]``), plus the msgpack
spec for what the server writes (the smallest header for each value, floats as float64). Simple
recursion over the bytes: clarity over speed. Same names and signatures as the core module, so
one test body runs against both. Where fastsio is stricter than the JS parser it says so.
"""

from __future__ import annotations

import datetime
import struct
from typing import Any

from fastsio._core.errors import (
    InvalidAckId,
    InvalidNamespace,
    InvalidPayload,
    UnexpectedText,
    UnknownPacketType,
)
from tests.model import RESERVED_EVENTS, Packet

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR = range(5)
STACK_LIMIT = 255  # deepest nesting the core reads, whatever max_depth says
MAX_ACK_ID = 10**15 - 1  # stricter: 15 digits, as the JSON parser
UNDEFINED = object()
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


# -- reading (notepack.io's decode, with fastsio's bounds) ----------------------------------------
class _Reader:
    def __init__(self, data: bytes, max_depth: int, max_args: int) -> None:
        self.data = data
        self.pos = 0
        self.limit = min(max_depth + 1, STACK_LIMIT)
        self.max_args = max_args

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise InvalidPayload("truncated msgpack")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def sized(self, size_bytes: int) -> bytes:
        return self.take(self.uint(size_bytes))

    def text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")  # stricter: notepack replaces invalid UTF-8
        except UnicodeDecodeError:
            raise InvalidPayload("string is not valid UTF-8") from None

    def value(self, depth: int) -> Any:
        c = self.take(1)[0]
        if c < 0x80:
            return c
        if c < 0x90:
            return self.container(c & 0x0F, True, depth)
        if c < 0xA0:
            return self.container(c & 0x0F, False, depth)
        if c < 0xC0:
            return self.text(self.take(c & 0x1F))
        if c >= 0xE0:
            return c - 0x100
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if c in simple:
            return simple[c]
        if c in (0xC4, 0xC5, 0xC6):
            return self.sized({0xC4: 1, 0xC5: 2, 0xC6: 4}[c])
        if c in (0xC7, 0xC8, 0xC9):
            length = self.uint({0xC7: 1, 0xC8: 2, 0xC9: 4}[c])
            ext = struct.unpack(">b", self.take(1))[0]
            raw = self.take(length)
            return raw if ext == 0 else [ext, raw]
        if c == 0xCA:
            return struct.unpack(">f", self.take(4))[0]
        if c == 0xCB:
            return struct.unpack(">d", self.take(8))[0]
        if 0xCC <= c <= 0xCF:
            return self.uint(1 << (c - 0xCC))
        if 0xD0 <= c <= 0xD3:
            return int.from_bytes(self.take(1 << (c - 0xD0)), "big", signed=True)
        if 0xD4 <= c <= 0xD8:
            size = 1 << (c - 0xD4)
            ext = struct.unpack(">b", self.take(1))[0]
            raw = self.take(size)
            if ext == 0 and size == 1:
                return UNDEFINED
            if ext == 0 and size == 8:
                try:
                    return EPOCH + datetime.timedelta(
                        milliseconds=int.from_bytes(raw, "big", signed=True))
                except OverflowError:
                    raise InvalidPayload("date out of range") from None
            return [ext, raw]
        if c in (0xD9, 0xDA, 0xDB):
            return self.text(self.sized({0xD9: 1, 0xDA: 2, 0xDB: 4}[c]))
        if c in (0xDC, 0xDD):
            return self.container(self.uint(2 if c == 0xDC else 4), False, depth)
        if c in (0xDE, 0xDF):
            return self.container(self.uint(2 if c == 0xDE else 4), True, depth)
        raise InvalidPayload("invalid msgpack")  # 0xC1

    def container(self, length: int, is_map: bool, depth: int) -> Any:
        if length == 0:
            return {} if is_map else []
        if length > (len(self.data) - self.pos) // (2 if is_map else 1):
            raise InvalidPayload("truncated msgpack")
        if depth >= self.limit:
            raise InvalidPayload("msgpack nested too deeply")
        if depth == 1 and not is_map and length > self.max_args:
            raise InvalidPayload("too many arguments")

        def item() -> Any:
            v = self.value(depth + 1)
            return None if v is UNDEFINED and depth + 1 > 1 else v

        if not is_map:
            return [item() for _ in range(length)]
        out: dict[Any, Any] = {}
        for _ in range(length):
            key = item()
            if isinstance(key, (list, dict)):
                raise InvalidPayload("map key is not a scalar")
            out[key] = item()
        return out


def read(data: bytes, max_depth: int = 64, max_args: int = 256) -> Any:
    """The one msgpack value of ``data`` (trailing bytes refused, as notepack does)."""
    r = _Reader(data, max_depth, max_args)
    value = r.value(0)
    if r.pos != len(data):
        raise InvalidPayload("trailing bytes after the packet")
    return value


def _valid_event(payload: Any) -> bool:
    if type(payload) is not list or not payload:
        return False
    first = payload[0]
    if type(first) is str:
        return first not in RESERVED_EVENTS  # stricter: the JS parser checks no event name
    return type(first) in (int, float)


def decode(data: bytes, max_namespace_length: int = 256, max_depth: int = 64,
           max_args: int = 256) -> Packet:
    if not data or not (0x80 <= data[0] <= 0x8F or data[0] in (0xDE, 0xDF)):
        raise UnknownPacketType("invalid packet type")
    d = read(data, max_depth, max_args)
    t = d.get("type")
    if type(t) is not int or not CONNECT <= t <= CONNECT_ERROR:
        raise UnknownPacketType("invalid packet type")
    nsp = d.get("nsp")
    if type(nsp) is not str:
        raise InvalidNamespace("invalid namespace")
    if len(nsp) > max_namespace_length:
        raise InvalidNamespace("namespace too long")
    payload = d.get("data")
    if payload is UNDEFINED:
        payload = None  # nil too: python-socketio's client sends it for "no data"
    ok = {
        CONNECT: payload is None or type(payload) is dict,
        DISCONNECT: payload is None,
        CONNECT_ERROR: type(payload) in (str, dict),
        EVENT: _valid_event(payload),
        ACK: type(payload) is list,
    }[t]
    if not ok:
        raise InvalidPayload("invalid payload for this packet type")
    ack = d.get("id")
    if ack is UNDEFINED:
        ack = None
    if ack is not None and (type(ack) is not int or not 0 <= ack <= MAX_ACK_ID):
        raise InvalidAckId("invalid packet id")
    return Packet(t, nsp, payload, ack, 0)


class Decoder:
    def __init__(self, max_attachments: int = 10, max_namespace_length: int = 256,
                 max_depth: int = 64, max_args: int = 256,
                 max_attachment_bytes: int = 100 * 1024 * 1024) -> None:
        self.max_namespace_length = max_namespace_length
        self.max_depth = max_depth
        self.max_args = max_args

    @property
    def waiting(self) -> bool:
        return False

    def add_text(self, data: bytes, start: int = 0) -> Packet | None:
        raise UnexpectedText("the msgpack parser takes binary messages only")

    def add_binary(self, data: bytes) -> Packet | None:
        return decode(data, self.max_namespace_length, self.max_depth, self.max_args)

    def reset(self) -> None:
        pass


# -- writing (the msgpack spec's smallest forms) -------------------------------------------------
def _head(small: int, codes: tuple[int, int, int], n: int, fix_limit: int) -> bytes:
    if n < fix_limit:
        return bytes([small | n])
    for code, size in zip(codes, (1, 2, 4), strict=True):
        if code and n < 1 << (8 * size):
            return bytes([code]) + n.to_bytes(size, "big")
    raise TypeError("too long")


def write(value: Any) -> bytes:
    """``value`` in msgpack (str, bytes, int, float, bool, None, list/tuple, dict)."""
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        if 0 <= value < 0x80:
            return bytes([value])
        if -32 <= value < 0:
            return bytes([value + 0x100])
        if value >= 0:
            for code, size in ((0xCC, 1), (0xCD, 2), (0xCE, 4), (0xCF, 8)):
                if value < 1 << (8 * size):
                    return bytes([code]) + value.to_bytes(size, "big")
        else:
            for code, size in ((0xD0, 1), (0xD1, 2), (0xD2, 4), (0xD3, 8)):
                if value >= -(1 << (8 * size - 1)):
                    return bytes([code]) + value.to_bytes(size, "big", signed=True)
        raise TypeError("int out of range")
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _head(0xA0, (0xD9, 0xDA, 0xDB), len(raw), 32) + raw
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return _head(0, (0xC4, 0xC5, 0xC6), len(raw), 0) + raw
    if isinstance(value, (list, tuple)):
        return _head(0x90, (0, 0xDC, 0xDD), len(value), 16) + b"".join(map(write, value))
    if isinstance(value, dict):
        return _head(0x80, (0, 0xDE, 0xDF), len(value), 16) + b"".join(
            write(k) + write(v) for k, v in value.items())
    raise TypeError(f"Type is not msgpack serializable: {type(value).__qualname__}")


def encode(type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> list[bytes]:
    """The parts of a packet: one msgpack map, keys ``type``, ``nsp``, ``id``?, ``data``?."""
    if not 0 <= type <= 6:
        raise ValueError("packet type out of range")
    if type in (5, 6):
        type -= 3
    fields: dict[str, Any] = {"type": type, "nsp": nsp}
    if id is not None:
        fields["id"] = id
    if data is not None:
        fields["data"] = data
    return [write(fields)]


def stamp_offset(packet: bytes, offset: bytes) -> bytes:
    """The same packet with ``offset`` (a string) appended to its ``data`` array."""
    fields = read(packet, STACK_LIMIT, 1 << 40)
    if not isinstance(fields, dict) or not isinstance(fields.get("data"), list):
        raise ValueError("not an encoded event")
    fields["data"] = [*fields["data"], offset.decode("utf-8")]
    return write(fields)
