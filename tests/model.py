"""A pure-Python model of the wire-format core: the oracle the property tests compare it with.

Written from the protocol rules (Engine.IO v4, Socket.IO v5 as implemented by the official
``engine.io-parser`` and ``socket.io-parser`` v4), not from the Cython code, and kept simple:
clarity over speed. Functions and classes carry the same names and signatures as
``fastsio._core.eio_packet``, ``fastsio._core.sio_packet`` and ``fastsio._core.rooms`` so that
one test body can run against either implementation. Rejections raise the core's own exception
classes (they are plain exception types; nothing else is shared).

Where fastsio is deliberately stricter than the official parser, the rule is marked "stricter".
"""

from __future__ import annotations

import base64
import json
import math
import re
import sys
from collections.abc import Hashable, Iterable
from decimal import Decimal
from typing import Any

from fastsio._core.errors import (
    EnginePacketError,
    InvalidAckId,
    InvalidAttachments,
    InvalidNamespace,
    InvalidPayload,
    TooManyAttachments,
    UnexpectedBinary,
    UnexpectedText,
    UnknownPacketType,
)

# ---------------------------------------------------------------------------------------------
# Engine.IO v4 packets and long-polling payloads
# ---------------------------------------------------------------------------------------------

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = range(7)

SEPARATOR = b"\x1e"  # record separator between packets of a polling payload
BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def packet_type(packet: bytes) -> int:
    """The type of a text packet: its first byte, one of the digits 0-6."""
    if not packet:
        raise EnginePacketError("empty packet")
    first = packet[:1]
    if not b"0" <= first <= b"6":
        raise EnginePacketError("unknown packet type")
    return int(first)


def encode_packet(ptype: int, data: bytes | None = None) -> bytes:
    """A text packet: the type digit followed by the data."""
    if not 0 <= ptype <= 6:
        raise ValueError("packet type out of range")
    return str(ptype).encode() + (data or b"")


def strict_b64decode(text: bytes) -> bytes:
    """Standard base64: length a multiple of 4, alphabet only, at most two ``=`` at the very end.

    Unused low bits of the last character are ignored (as every common decoder does).
    """
    if len(text) % 4:
        raise ValueError("length is not a multiple of 4")
    data = text.rstrip(b"=")
    if len(text) - len(data) > 2:
        raise ValueError("too much padding")
    if any(c not in BASE64_ALPHABET for c in data):
        raise ValueError("not a base64 character")
    bits = "".join(format(BASE64_ALPHABET.index(c), "06b") for c in data)
    usable = len(bits) - len(bits) % 8
    return bytes(int(bits[k : k + 8], 2) for k in range(0, usable, 8))


def decode_payload(body: bytes, max_packets: int = -1) -> list[tuple[bytes, bool]]:
    """Split a polling body at each separator; ``b`` + base64 is a binary MESSAGE."""
    if not body:
        raise EnginePacketError("empty payload")
    out = []
    for segment in body.split(SEPARATOR):
        if not segment:
            raise EnginePacketError("empty packet in payload")
        if segment.startswith(b"b"):
            try:
                out.append((strict_b64decode(segment[1:]), True))
            except ValueError:
                raise EnginePacketError("invalid base64 in payload") from None
        else:
            packet_type(segment)
            out.append((segment, False))
    if 0 <= max_packets < len(out):
        raise EnginePacketError("too many packets in payload")
    return out


def encode_payload(packets: list[tuple[bytes, bool]]) -> bytes:
    """Join packets with the separator; binary ones as ``b`` + base64."""
    parts = [b"b" + base64.b64encode(data) if binary else data for data, binary in packets]
    return SEPARATOR.join(parts)


# ---------------------------------------------------------------------------------------------
# JSON, as the core's JSON library (orjson) reads and writes it
# ---------------------------------------------------------------------------------------------

JSON_MAX_DEPTH = 1024  # deepest nesting a client may send
JSON_MAX_WRITE_DEPTH = 254  # deepest nesting the server can write
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # integers kept exact; others are read as doubles


def _nesting_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting outside strings (exact for valid JSON)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _finite(number: float) -> float:
    if math.isinf(number):
        raise ValueError("number too large")
    return number


def _read_int(literal: str) -> int | float:
    if len(literal) <= 21 and INT_MIN <= int(literal) <= INT_MAX:
        return int(literal)
    return _finite(float(literal))  # like a JavaScript number


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return False


def json_loads(raw: bytes) -> Any:
    """Strict JSON (RFC 8259) from UTF-8 bytes; ValueError when it is not.

    Besides the grammar: no lone surrogates (not even as ``\\u`` escapes), no number that
    overflows a double, no nesting deeper than JSON_MAX_DEPTH.
    """
    text = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if _nesting_depth(text) > JSON_MAX_DEPTH:
        raise ValueError("nesting too deep")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 3 * JSON_MAX_DEPTH))  # json recurses once per level
    try:
        value = json.loads(
            text, parse_int=_read_int, parse_float=lambda s: _finite(float(s)),
            parse_constant=_reject_constant,
        )
    finally:
        sys.setrecursionlimit(limit)
    if _has_surrogate(value):
        raise ValueError("lone surrogate")
    return value


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                  "\r": "\\r", "\t": "\\t"}


def _quote(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":
            raise TypeError("lone surrogate")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_float(number: float) -> str:
    """Shortest round-trip digits; fixed notation for exponents -5..15, else ``1.5e+16``/``1e-6``.

    NaN and infinities are written as ``null`` (as JSON.stringify does).
    """
    if math.isnan(number) or math.isinf(number):
        return "null"
    if number == 0:
        return "-0.0" if math.copysign(1.0, number) < 0 else "0.0"
    sign = "-" if number < 0 else ""
    exact = Decimal(repr(abs(number))).normalize()  # repr gives the shortest round-trip digits
    digits = "".join(map(str, exact.as_tuple().digits))
    exponent = len(digits) - 1 + exact.as_tuple().exponent  # as in d.ddd x 10**exponent
    if -5 <= exponent < 16:
        fixed = format(exact, "f")
        return sign + (fixed if "." in fixed else fixed + ".0")
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}"


def _key(key: Any) -> str:
    """A dict key as JSON.stringify would write it: numbers, booleans and None become strings."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        text = _write(key, 0)
        return "null" if text == "null" else text
    raise TypeError("object keys must be strings, numbers, booleans or None")


def _write(value: Any, depth: int) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise TypeError("integer out of range")
        return str(int(value))
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, (list, tuple, dict)) and depth >= JSON_MAX_WRITE_DEPTH:
        raise TypeError("nesting too deep")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_write(item, depth + 1) for item in value) + "]"
    if isinstance(value, dict):
        items = (_quote(_key(key)) + ":" + _write(item, depth + 1) for key, item in value.items())
        return "{" + ",".join(items) + "}"
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_dumps(value: Any) -> bytes:
    """Compact JSON as UTF-8 (no spaces, non-ASCII written as is); TypeError when impossible."""
    return _write(value, 0).encode("utf-8")


def typed(value: Any) -> Any:
    """``value`` in a form where ``1``, ``1.0``, ``True`` and ``-0.0``/``0.0`` compare unequal."""
    if isinstance(value, list):
        return ("list", tuple(typed(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple((key, typed(item)) for key, item in value.items()))
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


# ---------------------------------------------------------------------------------------------
# Socket.IO v5 packets
# ---------------------------------------------------------------------------------------------

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)
BINARY_TYPES = (BINARY_EVENT, BINARY_ACK)
RESERVED_EVENTS = frozenset(
    ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener")
)
MAX_ACK_ID_DIGITS = 15  # stricter: a client's ack id is a JavaScript number


class Packet:
    def __init__(
        self, type: int, nsp: str = "/", data: Any = None, id: int | None = None,
        attachments: int = 0,
    ) -> None:
        self.type = type
        self.nsp = nsp
        self.data = data
        self.id = id
        self.attachments = attachments

    def __repr__(self) -> str:
        return (f"Packet(type={self.type}, nsp={self.nsp!r}, data={self.data!r}, id={self.id!r}, "
                f"attachments={self.attachments})")


def fields(packet: Any) -> tuple[Any, ...]:
    """A packet of either implementation as a tuple, for exact comparisons."""
    return (packet.type, packet.nsp, typed(packet.data), packet.id, packet.attachments)


def payload_is_valid(ptype: int, payload: Any) -> bool:
    """The official parser's ``isPayloadValid``."""
    if ptype == CONNECT:
        return isinstance(payload, dict)
    if ptype == DISCONNECT:
        return False  # carries no payload at all
    if ptype == CONNECT_ERROR:
        return isinstance(payload, (str, dict))
    if ptype in (EVENT, BINARY_EVENT):
        if not isinstance(payload, list) or not payload:
            return False
        name = payload[0]
        if isinstance(name, str):
            return name not in RESERVED_EVENTS
        return isinstance(name, (int, float)) and not isinstance(name, bool)
    return isinstance(payload, list)  # ACK, BINARY_ACK


def check_shape(json_bytes: bytes, max_depth: int, max_args: int) -> None:
    """Refuse nesting deeper than ``max_depth`` and more than ``max_args`` top-level elements,
    counting brackets and commas outside strings (before any parsing)."""
    depth, args, in_string, escaped = 0, 1, False, False
    for byte in json_bytes:
        char = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                raise InvalidPayload("JSON nested too deeply")
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 1:
            args += 1
            if args > max_args:
                raise InvalidPayload("too many arguments")


def decode(
    data: bytes,
    start: int = 0,
    max_attachments: int = 10,
    max_namespace_length: int = 256,
    max_depth: int = 64,
    max_args: int = 256,
) -> Packet:
    """``<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]``, read from ``data[start:]``."""
    if start < 0:
        raise ValueError("start must not be negative")
    rest = data[start:]
    if not rest or not b"0" <= rest[:1] <= b"6":
        raise UnknownPacketType("unknown packet type")
    packet = Packet(int(rest[:1]))
    rest = rest[1:]

    if packet.type in BINARY_TYPES:
        match = re.match(rb"([0-9]+)-", rest)
        if match is None:
            raise InvalidAttachments("illegal attachments")
        packet.attachments = int(match.group(1))
        if packet.attachments > max_attachments:
            raise TooManyAttachments("too many attachments")
        rest = rest[match.end() :]

    if rest.startswith(b"/"):
        raw, _, rest = rest.partition(b",")
        if len(raw) > max_namespace_length:
            raise InvalidNamespace("namespace too long")
        try:
            packet.nsp = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidNamespace("namespace is not UTF-8") from None

    match = re.match(rb"[0-9]+", rest)
    if match is not None:
        if len(match.group()) > MAX_ACK_ID_DIGITS:
            raise InvalidAckId("ack id too long")
        packet.id = int(match.group())
        rest = rest[match.end() :]

    if rest:
        check_shape(rest, max_depth, max_args)
        try:
            payload = json_loads(rest)
        except ValueError:
            raise InvalidPayload("invalid JSON") from None
        if not payload_is_valid(packet.type, payload):
            raise InvalidPayload("invalid payload for this packet type")
        packet.data = payload
    elif packet.type in (EVENT, ACK, BINARY_EVENT, BINARY_ACK):
        raise InvalidPayload("missing payload")  # stricter: nothing to dispatch
    return packet


def is_placeholder(value: Any) -> bool:
    return isinstance(value, dict) and value.get("_placeholder") is True


def reconstruct(data: Any, buffers: list[bytes]) -> Any:
    """``data`` with each ``{"_placeholder": true, "num": n}`` replaced by ``buffers[n]``."""
    if is_placeholder(data):
        num = data.get("num")
        if type(num) is not int or not 0 <= num < len(buffers):
            raise InvalidAttachments("illegal attachments")
        return buffers[num]
    if isinstance(data, list):
        return [reconstruct(item, buffers) for item in data]
    if isinstance(data, dict):
        return {key: reconstruct(item, buffers) for key, item in data.items()}
    return data


def _finish(packet: Packet, buffers: list[bytes]) -> Packet:
    """A binary packet with its attachments put back: an EVENT or ACK."""
    data = reconstruct(packet.data, buffers)
    return Packet(EVENT if packet.type == BINARY_EVENT else ACK, packet.nsp, data, packet.id)


class Decoder:
    """Text packets; after a binary packet, exactly the attachments it announced."""

    def __init__(
        self,
        max_attachments: int = 10,
        max_namespace_length: int = 256,
        max_depth: int = 64,
        max_args: int = 256,
        max_attachment_bytes: int = 100 * 1024 * 1024,
    ) -> None:
        self.max_attachments = max_attachments
        self.max_namespace_length = max_namespace_length
        self.max_depth = max_depth
        self.max_args = max_args
        self.max_attachment_bytes = max_attachment_bytes
        self.reset()

    @property
    def waiting(self) -> bool:
        return self._pending is not None

    def add_text(self, data: bytes, start: int = 0) -> Packet | None:
        if self._pending is not None:
            raise UnexpectedText("a binary packet is waiting for attachments")
        packet = decode(
            data, start, self.max_attachments, self.max_namespace_length, self.max_depth,
            self.max_args,
        )
        if packet.type not in BINARY_TYPES:
            return packet
        if packet.attachments == 0:
            return _finish(packet, [])
        self._pending = packet
        return None

    def add_binary(self, data: bytes) -> Packet | None:
        if self._pending is None:
            raise UnexpectedBinary("no binary packet is waiting for attachments")
        if sum(map(len, self._buffers)) + len(data) > self.max_attachment_bytes:
            self.reset()
            raise InvalidAttachments("attachments too large")
        self._buffers.append(data)
        if len(self._buffers) < self._pending.attachments:
            return None
        packet, buffers = self._pending, self._buffers
        self.reset()
        return _finish(packet, buffers)

    def reset(self) -> None:
        self._pending: Packet | None = None
        self._buffers: list[bytes] = []


def deconstruct(data: Any, buffers: list[bytes]) -> Any:
    """A copy of ``data`` with each bytes-like value moved to ``buffers`` (depth first, in order)
    and replaced by its placeholder."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        buffers.append(bytes(data))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if isinstance(data, (list, tuple)):
        return [deconstruct(item, buffers) for item in data]
    if isinstance(data, dict):
        return {key: deconstruct(item, buffers) for key, item in data.items()}
    return data


def encode(type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> list[bytes]:
    """The text packet behind the Engine.IO MESSAGE digit ``4``, then the raw attachments.

    An EVENT or ACK whose data holds bytes becomes a BINARY_EVENT or BINARY_ACK. Bytes are not
    allowed in the other types (there is no way to send them).
    """
    if not 0 <= type <= 6:
        raise ValueError("packet type out of range")
    buffers: list[bytes] = []
    clean = deconstruct(data, buffers)
    if buffers and type in (EVENT, ACK):
        type = BINARY_EVENT if type == EVENT else BINARY_ACK
    if buffers and type not in BINARY_TYPES:
        raise TypeError("bytes are only allowed in EVENT and ACK data")
    text = b"4" + str(type).encode()
    if type in BINARY_TYPES:
        text += str(len(buffers)).encode() + b"-"
    if nsp and nsp != "/":
        text += nsp.encode("utf-8") + b","
    if id is not None:
        text += str(int(id)).encode()
    if data is not None:
        text += json_dumps(clean)
    return [text, *buffers] if type in BINARY_TYPES else [text]


OFFSET = re.compile(rb"[A-Za-z0-9._-]*")


def stamp_offset(packet: bytes, offset: bytes) -> bytes:
    """The encoded EVENT ``packet`` with the string ``offset`` appended to its data array."""
    if not OFFSET.fullmatch(offset):
        raise ValueError("offset must be [A-Za-z0-9._-]")
    if len(packet) < 2 or not packet.endswith(b"]"):
        raise ValueError("not an encoded event")
    separator = b"" if packet.endswith(b"[]") else b","
    return packet[:-1] + separator + b'"' + offset + b'"]'


# ---------------------------------------------------------------------------------------------
# Room index
# ---------------------------------------------------------------------------------------------


class RoomIndex:
    """Each known sid with the set of its rooms; everything else is computed from that."""

    def __init__(self) -> None:
        self.members: dict[str, set[Hashable]] = {}

    def _occupied(self, room: Hashable) -> bool:
        return any(room in rooms for rooms in self.members.values())

    def add_all(self, sid: str, rooms: Iterable[Hashable]) -> None:
        self.members.setdefault(sid, set()).update(rooms)

    def delete(self, sid: str, room: Hashable) -> bool:
        was_occupied = self._occupied(room)
        self.members.get(sid, set()).discard(room)
        return was_occupied and not self._occupied(room)

    def delete_all(self, sid: str) -> list[Hashable]:
        rooms = self.members.pop(sid, set())
        return [room for room in rooms if not self._occupied(room)]

    def rooms_of(self, sid: str) -> set[Hashable]:
        return set(self.members.get(sid, set()))

    def has(self, sid: str) -> bool:
        return sid in self.members

    def targets(self, rooms: Iterable[Hashable], except_rooms: Iterable[Hashable]) -> list[str]:
        wanted, unwanted = set(rooms), set(except_rooms)
        return [
            sid for sid, mine in self.members.items()
            if (not wanted or mine & wanted) and not mine & unwanted
        ]

    @property
    def rooms(self) -> dict[Hashable, set[str]]:
        everything = set().union(*self.members.values())
        return {
            room: {sid for sid, mine in self.members.items() if room in mine}
            for room in everything
        }

    @property
    def sids(self) -> dict[str, set[Hashable]]:
        return {sid: set(mine) for sid, mine in self.members.items()}


# ---------------------------------------------------------------------------------------------
# Packet log (connection state recovery)
# ---------------------------------------------------------------------------------------------

OFFSET_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
OFFSET_INSTANCE = re.compile(r"[0-9A-Za-z_-]{8}")
OFFSET_SEQ = re.compile(r"[1-9A-Za-z_-][0-9A-Za-z_-]{0,10}")


class PacketLog:
    """The recovery log as a plain list of ``(seq, stamped parts, rooms, except_rooms)``, oldest
    first. Rules: every append takes the next sequence number and is stamped with
    ``<instance><seq>`` (8 digits, then the number in base 64, the digits ``0-9A-Za-z-_``, no
    leading zero); the oldest entries go first when the count or the byte bound would be
    passed; an entry larger than ``max_bytes`` is not kept and empties the log (whoever missed
    it cannot be served)."""

    def __init__(self, max_packets: int, max_bytes: int, instance: bytes) -> None:
        if not OFFSET_INSTANCE.fullmatch(instance.decode("latin-1")):
            raise ValueError("instance must be 8 digits of 0-9A-Za-z-_")
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self.instance = instance
        self.next_seq = 1
        self.entries: list[tuple[int, list[bytes], Any, Any]] = []

    @staticmethod
    def _size(parts: list[bytes]) -> int:
        return sum(len(p) for p in parts)

    @property
    def count(self) -> int:
        return len(self.entries)

    @property
    def size(self) -> int:
        return sum(self._size(parts) for _, parts, _, _ in self.entries)

    @property
    def oldest_seq(self) -> int:
        return self.entries[0][0] if self.entries else self.next_seq

    def append(self, parts: list[bytes], rooms: Any, except_rooms: Any) -> tuple[int, list[bytes]]:
        seq = self.next_seq
        self.next_seq += 1
        stamped = [stamp_offset(parts[0], self.offset_of(seq).encode()), *parts[1:]]
        if self._size(stamped) > self.max_bytes:
            self.entries.clear()
            return seq, stamped
        self.entries.append((seq, stamped, rooms, except_rooms))
        while len(self.entries) > self.max_packets or self.size > self.max_bytes:
            self.entries.pop(0)
        return seq, stamped

    def offset_of(self, seq: int) -> str:
        if seq < 1:
            raise ValueError("sequence numbers start at 1")
        digits = ""
        while seq:
            seq, digit = divmod(seq, 64)
            digits = OFFSET_DIGITS[digit] + digits
        return self.instance.decode() + digits

    def parse_offset(self, offset: Any) -> int:
        if not isinstance(offset, str):
            return -1
        instance, digits = offset[:8], offset[8:]
        if instance != self.instance.decode() or not OFFSET_SEQ.fullmatch(digits):
            return -1
        seq = 0
        for digit in digits:
            seq = seq * 64 + OFFSET_DIGITS.index(digit)
        return seq if seq < self.next_seq else -1

    def can_serve(self, after: int) -> bool:
        if not 0 <= after < self.next_seq:
            return False
        held = {seq for seq, _, _, _ in self.entries}
        return all(seq in held for seq in range(after + 1, self.next_seq))

    def replay(self, after: int, rooms: Any) -> list[list[bytes]]:
        if not self.can_serve(after):
            raise ValueError("offset cannot be served")
        return [
            parts for seq, parts, want, avoid in self.entries
            if seq > after
            and (not want or not set(want).isdisjoint(rooms))
            and (not avoid or set(avoid).isdisjoint(rooms))
        ]
