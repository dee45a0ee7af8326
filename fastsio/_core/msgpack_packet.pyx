# cython: language_level=3
"""Socket.IO packets in the wire format of ``socket.io-msgpack-parser`` (``parser="msgpack"``).

A packet is one msgpack map ``{type, nsp, data?, id?}`` sent as one binary Engine.IO message:
there are no attachments and no BINARY_* types, binary values are msgpack ``bin`` wherever they
are in ``data``. The official client adds keys of its own (``options``); they are ignored.

Decoding is an iterative reader (no recursion on client data, nesting and argument counts bounded
before anything large is built) that maps values as the parser's msgpack library (notepack.io)
does: ext type 0 is ``undefined`` (fixext 1: ``None``, or absent in the packet map), a ``Date``
(fixext 8: milliseconds since the epoch, an aware UTC ``datetime`` here) or an ``ArrayBuffer``
(ext 8/16/32: ``bytes``); any other ext is ``[type, bytes]``. Encoding writes the packet map with
``data`` last, so that :func:`stamp_offset` appends the recovery offset in one splice.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

from fastsio._core.debug cimport FASTSIO_DEBUG
from fastsio._core.sio_packet cimport Encoded, Packet, new_encoded, valid_payload

import dataclasses
import datetime
import enum
import uuid

from msgpack import ExtType, Packer

from fastsio._core.errors import (
    InvalidAckId,
    InvalidNamespace,
    InvalidPayload,
    UnexpectedText,
    UnknownPacketType,
)

CONNECT = 0
DISCONNECT = 1
EVENT = 2
ACK = 3
CONNECT_ERROR = 4

# The reader's stack is a C array: deeper than this is refused whatever max_depth says.
cdef enum:
    STACK = 256
cdef long long MAX_ACK_ID = 999999999999999  # 15 digits, as the JSON parser bounds it

cdef object _UNDEFINED = object()  # notepack's ``undefined`` while the packet map is read
cdef object _UTC = datetime.timezone.utc
cdef object _EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
cdef object _MILLISECOND = datetime.timedelta(milliseconds=1)
cdef object _timedelta = datetime.timedelta
cdef object _ExtType = ExtType


# -- decoding -------------------------------------------------------------------------------------
cdef inline uint64_t _be(const unsigned char* p, int size) noexcept:
    cdef uint64_t v = 0
    cdef int k
    for k in range(size):
        v = (v << 8) | p[k]
    return v


cdef inline Py_ssize_t _need(Py_ssize_t pos, Py_ssize_t size, Py_ssize_t n) except -1:
    if size > n - pos:
        raise InvalidPayload("truncated msgpack")
    return 0


cdef object _date(int64_t ms):
    try:
        return _EPOCH + _timedelta(milliseconds=ms)
    except OverflowError:
        raise InvalidPayload("date out of range") from None


cdef object _read(const unsigned char* buf, Py_ssize_t n, int max_depth, Py_ssize_t max_args):
    """The one msgpack value of ``buf[:n]`` (trailing bytes refused); containers are filled
    from an explicit stack. ``max_depth`` bounds the nesting inside the packet map, ``max_args``
    the arrays directly in it (the event arguments)."""
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t items[STACK]   # values (map: keys and values) the container at a level takes
    cdef Py_ssize_t filled[STACK]  # values it has got so far
    cdef list containers = []
    cdef list keys = []            # the pending key of each level (maps), else None
    cdef int depth = 0
    cdef int limit = max_depth + 1 if max_depth + 1 < STACK else STACK - 1
    cdef unsigned char c
    cdef Py_ssize_t length
    cdef Py_ssize_t size
    cdef bint is_map
    cdef signed char ext
    cdef uint32_t u32
    cdef uint64_t u64
    cdef float f32
    cdef double f64
    cdef object value
    cdef object top
    while True:
        if pos >= n:
            raise InvalidPayload("truncated msgpack")
        c = buf[pos]
        pos += 1
        length = -1  # >= 0: a container header
        is_map = False
        if c < 0x80:
            value = <long>c
        elif c < 0x90:
            length = c & 0x0F
            is_map = True
        elif c < 0xA0:
            length = c & 0x0F
        elif c < 0xC0 or c == 0xD9 or c == 0xDA or c == 0xDB:
            if c < 0xC0:
                size = c & 0x1F
            else:
                size = 1 if c == 0xD9 else (2 if c == 0xDA else 4)
                _need(pos, size, n)
                u64 = _be(buf + pos, <int>size)
                pos += size
                if u64 > <uint64_t>(n - pos):
                    raise InvalidPayload("truncated msgpack")
                size = <Py_ssize_t>u64
            _need(pos, size, n)
            try:
                value = PyUnicode_DecodeUTF8(<const char*>buf + pos, size, NULL)
            except UnicodeDecodeError:
                raise InvalidPayload("string is not valid UTF-8") from None
            pos += size
        elif c >= 0xE0:
            value = <long>(<signed char>c)
        elif c == 0xC0:
            value = None
        elif c == 0xC2:
            value = False
        elif c == 0xC3:
            value = True
        elif c == 0xC4 or c == 0xC5 or c == 0xC6:
            size = 1 if c == 0xC4 else (2 if c == 0xC5 else 4)
            _need(pos, size, n)
            u64 = _be(buf + pos, <int>size)
            pos += size
            if u64 > <uint64_t>(n - pos):
                raise InvalidPayload("truncated msgpack")
            value = PyBytes_FromStringAndSize(<const char*>buf + pos, <Py_ssize_t>u64)
            pos += <Py_ssize_t>u64
        elif c == 0xC7 or c == 0xC8 or c == 0xC9:
            size = 1 if c == 0xC7 else (2 if c == 0xC8 else 4)
            _need(pos, size + 1, n)
            u64 = _be(buf + pos, <int>size)
            ext = <signed char>buf[pos + size]
            pos += size + 1
            if u64 > <uint64_t>(n - pos):
                raise InvalidPayload("truncated msgpack")
            value = PyBytes_FromStringAndSize(<const char*>buf + pos, <Py_ssize_t>u64)
            pos += <Py_ssize_t>u64
            if ext != 0:  # type 0 is an ArrayBuffer: the bytes themselves
                value = [<long>ext, value]
        elif c == 0xCA:
            _need(pos, 4, n)
            u32 = <uint32_t>_be(buf + pos, 4)
            memcpy(&f32, &u32, 4)
            value = <double>f32
            pos += 4
        elif c == 0xCB:
            _need(pos, 8, n)
            u64 = _be(buf + pos, 8)
            memcpy(&f64, &u64, 8)
            value = f64
            pos += 8
        elif 0xCC <= c <= 0xCF:
            size = 1 << (c - 0xCC)
            _need(pos, size, n)
            value = _be(buf + pos, <int>size)
            pos += size
        elif 0xD0 <= c <= 0xD3:
            size = 1 << (c - 0xD0)
            _need(pos, size, n)
            u64 = _be(buf + pos, <int>size)
            pos += size
            if size == 1:
                value = <long>(<signed char>u64)
            elif size == 2:
                value = <long>(<short>u64)
            elif size == 4:
                value = <long>(<int32_t>u64)
            else:
                value = <int64_t>u64
        elif 0xD4 <= c <= 0xD8:
            size = 1 << (c - 0xD4)
            _need(pos, size + 1, n)
            ext = <signed char>buf[pos]
            pos += 1
            if ext == 0 and size == 1:
                value = _UNDEFINED
            elif ext == 0 and size == 8:
                value = _date(<int64_t>_be(buf + pos, 8))
            else:
                value = [<long>ext, PyBytes_FromStringAndSize(<const char*>buf + pos, size)]
            pos += size
        elif c == 0xDC or c == 0xDD or c == 0xDE or c == 0xDF:
            size = 2 if c == 0xDC or c == 0xDE else 4
            _need(pos, size, n)
            length = <Py_ssize_t>_be(buf + pos, <int>size)
            pos += size
            is_map = c >= 0xDE
        else:  # 0xC1, never used
            raise InvalidPayload("invalid msgpack")

        if length >= 0:
            if length == 0:
                value = {} if is_map else []
            else:
                # Every value takes at least one byte: a header cannot claim more than is left.
                if length > (n - pos) // (2 if is_map else 1):
                    raise InvalidPayload("truncated msgpack")
                if depth >= limit:
                    raise InvalidPayload("msgpack nested too deeply")
                if depth == 1 and not is_map and length > max_args:
                    raise InvalidPayload("too many arguments")
                depth += 1
                items[depth] = length * 2 if is_map else length
                filled[depth] = 0
                containers.append({} if is_map else [None] * length)
                keys.append(None)
                continue

        # Put the value in its container; a container that is complete is the next value.
        while True:
            if depth == 0:
                if pos != n:
                    raise InvalidPayload("trailing bytes after the packet")
                return value
            top = containers[depth - 1]
            if value is _UNDEFINED and depth > 1:
                value = None
            if type(top) is list:
                (<list>top)[filled[depth]] = value
            elif filled[depth] & 1 == 0:
                if type(value) is list or type(value) is dict:
                    raise InvalidPayload("map key is not a scalar")
                keys[depth - 1] = value
            else:
                (<dict>top)[keys[depth - 1]] = value
            filled[depth] += 1
            if filled[depth] < items[depth]:
                break
            value = containers.pop()
            keys.pop()
            depth -= 1


cpdef Packet decode(bytes data, Py_ssize_t max_namespace_length=256, int max_depth=64,
                    Py_ssize_t max_args=256):
    """Decode one packet (a whole binary Engine.IO message), checked as the official parser
    checks it: an integer type CONNECT..CONNECT_ERROR, a string namespace, the data its type
    allows, an integer ack id. Absent, ``undefined`` and nil ``data``/``id`` are the same
    (python-socketio's client sends nil)."""
    if data is None:
        raise TypeError("data must be bytes, not None")
    cdef const unsigned char* buf = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    if n == 0 or not (0x80 <= buf[0] <= 0x8F or buf[0] == 0xDE or buf[0] == 0xDF):
        raise UnknownPacketType("invalid packet type")  # not a map: it has no type
    cdef dict d = <dict>_read(buf, n, max_depth, max_args)
    cdef object t = d.get("type")
    if type(t) is not int or not (CONNECT <= <long>t <= CONNECT_ERROR):
        raise UnknownPacketType("invalid packet type")
    cdef int ptype = <int>t
    cdef object nsp = d.get("nsp")
    if type(nsp) is not str:
        raise InvalidNamespace("invalid namespace")
    if len(<str>nsp) > max_namespace_length:
        raise InvalidNamespace("namespace too long")
    cdef bint ok
    cdef object payload = d.get("data")
    if payload is _UNDEFINED:
        payload = None
    if ptype == CONNECT:
        ok = payload is None or type(payload) is dict
    elif ptype == DISCONNECT:
        ok = payload is None
    else:
        ok = valid_payload(ptype, payload)
    if not ok:
        raise InvalidPayload("invalid payload for this packet type")
    cdef object id = d.get("id")
    if id is _UNDEFINED:
        id = None
    if id is not None and (type(id) is not int or not (0 <= id <= MAX_ACK_ID)):
        raise InvalidAckId("invalid packet id")
    cdef Packet p = Packet.__new__(Packet)
    p.type = ptype
    p.nsp = <str>nsp
    p.data = payload
    p.id = id
    p.attachments = 0
    return p


cdef class Decoder:
    """Per-connection decoder with :class:`fastsio._core.sio_packet.Decoder`'s interface: each
    binary message is one whole packet, a text message is a protocol error."""

    def __init__(self, int max_attachments=10, Py_ssize_t max_namespace_length=256,
                 int max_depth=64, Py_ssize_t max_args=256,
                 Py_ssize_t max_attachment_bytes=100 * 1024 * 1024):
        # The attachment bounds mean nothing here (binary values are inside the packet, which
        # the Engine.IO message size bounds); they are taken so both decoders build alike.
        self.max_namespace_length = max_namespace_length
        self.max_depth = max_depth
        self.max_args = max_args

    @property
    def waiting(self):
        """Always False: nothing is ever half-received."""
        return False

    cpdef Packet add_text(self, bytes data, Py_ssize_t start=0):
        raise UnexpectedText("the msgpack parser takes binary messages only")

    cpdef Packet add_binary(self, bytes data):
        return decode(data, self.max_namespace_length, self.max_depth, self.max_args)

    cpdef void reset(self):
        pass


# -- encoding -------------------------------------------------------------------------------------
def _default(obj):
    """What msgpack cannot pack itself, as the JSON parser's orjson sees it (strings for dates,
    times and UUIDs, an enum's value, a dataclass's fields), except a ``datetime``: notepack's
    ``Date`` (milliseconds; a naive one is taken as UTC)."""
    if isinstance(obj, datetime.datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=_UTC)
        ms = (obj - _EPOCH) // _MILLISECOND
        return _ExtType(0, ms.to_bytes(8, "big", signed=True))
    if isinstance(obj, (datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    raise TypeError(f"Type is not msgpack serializable: {type(obj).__qualname__}")


cdef object _pack = Packer(use_bin_type=True, default=_default, autoreset=True).pack
cdef bytes _KEY_TYPE = b"\xa4type"
cdef bytes _KEY_NSP = b"\xa3nsp"
cdef bytes _KEY_ID = b"\xa2id"
cdef bytes _KEY_DATA = b"\xa4data"
cdef dict _NSP_CACHE = {}  # namespace -> its packed string (namespaces are few)


cdef bytes _str_header(Py_ssize_t size):
    if size < 32:
        return bytes((0xA0 | size,))
    if size < 0x100:
        return bytes((0xD9, size))
    if size < 0x10000:
        return b"\xda" + size.to_bytes(2, "big")
    return b"\xdb" + size.to_bytes(4, "big")


cdef bytes _packed_str(str s):
    cdef bytes raw = s.encode("utf-8")
    return _str_header(PyBytes_GET_SIZE(raw)) + raw


cdef bytes _packed_nsp(str nsp):
    cdef object hit = _NSP_CACHE.get(nsp)
    if hit is not None:
        return <bytes>hit
    cdef bytes packed = _packed_str(nsp)
    if len(_NSP_CACHE) < 1024:
        _NSP_CACHE[nsp] = packed
    return packed


cdef bytes _packed_uint(object value):
    cdef unsigned long long v = value
    if v < 0x80:
        return bytes((v,))
    if v < 0x100:
        return bytes((0xCC, v))
    if v < 0x10000:
        return b"\xcd" + (<object>v).to_bytes(2, "big")
    if v < 0x100000000:
        return b"\xce" + (<object>v).to_bytes(4, "big")
    return b"\xcf" + (<object>v).to_bytes(8, "big")


cpdef Encoded encode(int type, str nsp="/", object data=None, object id=None):
    """Encode a packet as one msgpack map (an :class:`Encoded` of one binary part).

    BINARY_EVENT and BINARY_ACK (5, 6) are EVENT and ACK: this format has no attachments.
    ``data`` ``None`` leaves the key out (the official parser wants ``undefined`` there, not nil,
    for CONNECT and DISCONNECT). Values msgpack refuses raise ``TypeError``, as the JSON encoder's
    do, so ``json_default`` applies to both.
    """
    if type < 0 or type > 6:
        raise ValueError("packet type out of range")
    if type == 5 or type == 6:
        type -= 3
    if nsp is None:
        nsp = "/"
    cdef int keys = 2 + (id is not None) + (data is not None)
    cdef bytes head = bytes((0x80 | keys,)) + _KEY_TYPE + bytes((type,)) + _KEY_NSP + _packed_nsp(nsp)
    if id is not None:
        if id < 0:
            raise ValueError("ack ids are not negative")
        head += _KEY_ID + _packed_uint(id)
    if data is None:
        return new_encoded([head], True)
    cdef bytes body
    try:
        body = _pack(data)
    except (OverflowError, ValueError) as exc:  # ints past 64 bits, nesting past msgpack's bound
        raise TypeError(str(exc)) from None
    return new_encoded([head + _KEY_DATA + body], True)


cdef inline Py_ssize_t _skip_scalar(const unsigned char* p, Py_ssize_t pos,
                                    Py_ssize_t n) except -1:
    """Past the int or string at ``pos`` (the values :func:`encode` puts before ``data``)."""
    cdef unsigned char c
    if pos >= n:
        raise ValueError("not an encoded event")
    c = p[pos]
    if c < 0x80 or c >= 0xE0:
        return pos + 1
    if 0xA0 <= c < 0xC0:
        return pos + 1 + (c & 0x1F)
    if 0xCC <= c <= 0xCF:
        return pos + 1 + (1 << (c - 0xCC))
    if 0xD0 <= c <= 0xD3:
        return pos + 1 + (1 << (c - 0xD0))
    if c == 0xD9 or c == 0xDA or c == 0xDB:
        if c == 0xD9:
            return pos + 2 + <Py_ssize_t>_be(p + pos + 1, 1)
        if c == 0xDA:
            return pos + 3 + <Py_ssize_t>_be(p + pos + 1, 2)
        return pos + 5 + <Py_ssize_t>_be(p + pos + 1, 4)
    raise ValueError("not an encoded event")


cpdef bytes stamp_offset(bytes packet, bytes offset):
    """Append ``offset`` (a string) as the last element of the ``data`` array of an EVENT that
    :func:`encode` made, in one splice: the array's header grows by one, the string goes last."""
    if packet is None or offset is None:
        raise TypeError("packet and offset must be bytes, not None")
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(packet)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(packet)
    cdef Py_ssize_t pos = 1
    cdef int count
    cdef int k
    cdef Py_ssize_t head_size
    cdef uint64_t items
    cdef bytes head
    if n < 1 or (p[0] & 0xF0) != 0x80:
        raise ValueError("not an encoded event")
    count = p[0] & 0x0F
    # Keys are "type", "nsp", maybe "id", then "data": skip the first count - 1 pairs.
    for k in range(count - 1):
        pos = _skip_scalar(p, pos, n)
        pos = _skip_scalar(p, pos, n)
    if pos + 5 > n or packet[pos:pos + 5] != _KEY_DATA:
        raise ValueError("not an encoded event")
    if FASTSIO_DEBUG:
        assert packet[1:7] == b"\xa4type\x02", "stamping a non-event"
    pos += 5
    if pos >= n:
        raise ValueError("not an encoded event")
    if 0x90 <= p[pos] <= 0x9F:
        items = p[pos] & 0x0F
        head_size = 1
    elif p[pos] == 0xDC and pos + 3 <= n:
        items = _be(p + pos + 1, 2)
        head_size = 3
    elif p[pos] == 0xDD and pos + 5 <= n:
        items = _be(p + pos + 1, 4)
        head_size = 5
    else:
        raise ValueError("not an encoded event")
    items += 1
    if items < 16:
        head = bytes((0x90 | <int>items,))
    elif items < 0x10000:
        head = b"\xdc" + (<object>items).to_bytes(2, "big")
    else:
        head = b"\xdd" + (<object>items).to_bytes(4, "big")
    return b"".join((packet[:pos], head, packet[pos + head_size:],
                     _str_header(PyBytes_GET_SIZE(offset)), offset))
