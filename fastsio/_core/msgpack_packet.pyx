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
``data`` last, so that :func:`stamp_offset` appends the recovery offset in one splice; values are
written as msgpack-python writes them, by an own packer straight into one buffer (two thirds of
the time of a msgpack-python ``Packer.pack`` call for a small event, bench/README.md).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_AsUnsignedLongLong
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy

from fastsio._core.debug cimport FASTSIO_DEBUG
from fastsio._core.sio_packet cimport Encoded, Packet, new_encoded, valid_payload

import dataclasses
import datetime
import enum
import uuid

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


cdef str _KEY_TYPE = "type"
cdef str _KEY_NSP = "nsp"
cdef str _KEY_DATA = "data"
cdef str _KEY_ID = "id"


cdef inline object _envelope_key(const unsigned char* p, Py_ssize_t size, Py_ssize_t left):
    """``"type"``, ``"nsp"``, ``"data"`` or ``"id"`` when the fixstr at ``p`` is one, else None."""
    if size > left:
        return None
    if size == 4 and memcmp(p, b"type", 4) == 0:
        return _KEY_TYPE
    if size == 3 and memcmp(p, b"nsp", 3) == 0:
        return _KEY_NSP
    if size == 4 and memcmp(p, b"data", 4) == 0:
        return _KEY_DATA
    if size == 2 and memcmp(p, b"id", 2) == 0:
        return _KEY_ID
    return None


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
        elif depth == 1 and c < 0xC0 and filled[1] & 1 == 0 and _envelope_key(
            buf + pos, c & 0x1F, n - pos
        ) is not None:
            # The packet map's own keys: the same four str objects every time, no decoding.
            value = _envelope_key(buf + pos, c & 0x1F, n - pos)
            pos += c & 0x1F
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
# The packer writes what msgpack-python's Packer(use_bin_type=True) writes (smallest headers,
# floats as float64, str as str8/16/32, bytes-likes as bin), straight into one C buffer: the
# packet map's keys first, then ``data``; one bytes object at the end.
cdef enum:
    MAX_WRITE_DEPTH = 512  # msgpack-python's nesting limit for what the server sends

cdef struct Buf:
    char* data
    Py_ssize_t len
    Py_ssize_t cap


cdef int _grow(Buf* b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = b.cap * 2
    cdef char* data
    while cap < b.len + extra:
        cap *= 2
    data = <char*>PyMem_Realloc(b.data, cap)
    if data == NULL:
        raise MemoryError()
    b.data = data
    b.cap = cap
    return 0


cdef inline int _put(Buf* b, const char* p, Py_ssize_t n) except -1:
    if b.len + n > b.cap:
        _grow(b, n)
    memcpy(b.data + b.len, p, n)
    b.len += n
    return 0


cdef inline int _put_be(Buf* b, unsigned char code, uint64_t v, int size) except -1:
    """``code`` (0: none) then ``v`` in ``size`` big-endian bytes."""
    cdef unsigned char out[9]
    cdef int k = 0
    cdef int i
    if code:
        out[0] = code
        k = 1
    for i in range(size):
        out[k + i] = <unsigned char>(v >> (8 * (size - 1 - i)))
    return _put(b, <const char*>out, k + size)


cdef inline int _put_byte(Buf* b, unsigned char c) except -1:
    return _put(b, <const char*>&c, 1)


cdef int _put_header(Buf* b, uint64_t n, unsigned char fix, uint64_t fix_limit,
                     unsigned char c8, unsigned char c16, unsigned char c32) except -1:
    if n < fix_limit:
        return _put_byte(b, <unsigned char>(fix | n))
    if c8 and n < 0x100:
        return _put_be(b, c8, n, 1)
    if n < 0x10000:
        return _put_be(b, c16, n, 2)
    if n <= 0xFFFFFFFF:
        return _put_be(b, c32, n, 4)
    raise TypeError("too long for msgpack")


cdef int _put_str(Buf* b, str s) except -1:
    cdef Py_ssize_t n
    cdef const char* p = PyUnicode_AsUTF8AndSize(s, &n)  # lone surrogates: UnicodeEncodeError
    _put_header(b, <uint64_t>n, 0xA0, 32, 0xD9, 0xDA, 0xDB)
    return _put(b, p, n)


cdef int _put_int(Buf* b, object o) except -1:
    cdef int overflow = 0
    cdef long long v = PyLong_AsLongLongAndOverflow(o, &overflow)
    cdef unsigned long long u
    if overflow > 0:
        u = PyLong_AsUnsignedLongLong(o)  # past 64 bits: OverflowError
        return _put_be(b, 0xCF, u, 8)
    if overflow < 0:
        raise OverflowError("int too small for msgpack")
    if v >= 0:
        if v < 0x80:
            return _put_byte(b, <unsigned char>v)
        if v < 0x100:
            return _put_be(b, 0xCC, <uint64_t>v, 1)
        if v < 0x10000:
            return _put_be(b, 0xCD, <uint64_t>v, 2)
        if v < 0x100000000:
            return _put_be(b, 0xCE, <uint64_t>v, 4)
        return _put_be(b, 0xCF, <uint64_t>v, 8)
    if v >= -32:
        return _put_byte(b, <unsigned char>(v & 0xFF))
    if v >= -0x80:
        return _put_be(b, 0xD0, <uint64_t>v, 1)
    if v >= -0x8000:
        return _put_be(b, 0xD1, <uint64_t>v, 2)
    if v >= -0x80000000:
        return _put_be(b, 0xD2, <uint64_t>v, 4)
    return _put_be(b, 0xD3, <uint64_t>v, 8)


cdef int _put_bin(Buf* b, object o) except -1:
    cdef const unsigned char[:] view
    cdef Py_ssize_t n
    if type(o) is bytes:
        n = PyBytes_GET_SIZE(<bytes>o)
        _put_header(b, <uint64_t>n, 0, 0, 0xC4, 0xC5, 0xC6)
        return _put(b, PyBytes_AS_STRING(<bytes>o), n)
    view = memoryview(o).cast("B")
    n = view.shape[0]
    _put_header(b, <uint64_t>n, 0, 0, 0xC4, 0xC5, 0xC6)
    if n:
        _put(b, <const char*>&view[0], n)
    return 0


cdef int _put_value(Buf* b, object o, int depth) except -1:
    cdef object t = type(o)
    cdef double f
    cdef uint64_t bits
    cdef object key
    cdef object item
    if depth > MAX_WRITE_DEPTH:
        raise TypeError("nested too deeply (or a cycle)")
    if t is str:
        return _put_str(b, <str>o)
    if t is int:
        return _put_int(b, o)
    if o is None:
        return _put_byte(b, 0xC0)
    if o is True:
        return _put_byte(b, 0xC3)
    if o is False:
        return _put_byte(b, 0xC2)
    if t is float:
        f = o
        memcpy(&bits, &f, 8)
        return _put_be(b, 0xCB, bits, 8)
    if t is list or t is tuple:
        _put_header(b, <uint64_t>len(o), 0x90, 16, 0, 0xDC, 0xDD)
        for item in o:
            _put_value(b, item, depth + 1)
        return 0
    if t is dict:
        _put_header(b, <uint64_t>len(<dict>o), 0x80, 16, 0, 0xDE, 0xDF)
        for key, item in (<dict>o).items():
            _put_value(b, key, depth + 1)
            _put_value(b, item, depth + 1)
        return 0
    if t is bytes or t is bytearray or t is memoryview:
        return _put_bin(b, o)
    # Subclasses (IntEnum, a str enum, OrderedDict, ...), then what _default converts.
    if isinstance(o, str):
        return _put_str(b, str(o))
    if isinstance(o, int):
        return _put_int(b, int(o))
    if isinstance(o, float):
        return _put_value(b, float(o), depth)
    if isinstance(o, (list, tuple, dict)):
        return _put_value(b, dict(o) if isinstance(o, dict) else list(o), depth)
    if isinstance(o, (bytes, bytearray, memoryview)):
        return _put_bin(b, o)
    if isinstance(o, datetime.datetime):
        _put(b, b"\xd7\x00", 2)  # notepack's Date
        return _put_be(b, 0, <uint64_t><int64_t>_date_ms(o), 8)
    return _put_value(b, _default(o), depth + 1)


cdef object _date_ms(object dt):
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_UTC)
    ms = (dt - _EPOCH) // _MILLISECOND
    if not (-(2**63) <= ms < 2**63):
        raise OverflowError("date out of range")
    return ms


def _default(obj):
    """What the packer does not know, as the JSON parser's orjson writes it: strings for dates,
    times and UUIDs, an enum's value, a dataclass's fields (a ``datetime`` is notepack's Date,
    milliseconds since the epoch, a naive one taken as UTC: see ``_put_value``)."""
    if isinstance(obj, (datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    raise TypeError(f"Type is not msgpack serializable: {type(obj).__qualname__}")


cpdef Encoded encode(int type, str nsp="/", object data=None, object id=None):
    """Encode a packet as one msgpack map (an :class:`Encoded` of one binary part).

    BINARY_EVENT and BINARY_ACK (5, 6) are EVENT and ACK: this format has no attachments.
    ``data`` ``None`` leaves the key out (the official parser wants ``undefined`` there, not nil,
    for CONNECT and DISCONNECT). Values the packer refuses raise ``TypeError``, as the JSON
    encoder's do, so ``json_default`` applies to both.
    """
    if type < 0 or type > 6:
        raise ValueError("packet type out of range")
    if type == 5 or type == 6:
        type -= 3
    if nsp is None:
        nsp = "/"
    if id is not None and id < 0:
        raise ValueError("ack ids are not negative")
    cdef Buf b
    cdef bytes out
    b.cap = 256
    b.len = 0
    b.data = <char*>PyMem_Malloc(b.cap)
    if b.data == NULL:
        raise MemoryError()
    try:
        _put_byte(&b, <unsigned char>(0x80 | (2 + (id is not None) + (data is not None))))
        _put(&b, b"\xa4type", 5)
        _put_byte(&b, <unsigned char>type)
        _put(&b, b"\xa3nsp", 4)
        _put_str(&b, nsp)
        if id is not None:
            _put(&b, b"\xa2id", 3)
            _put_int(&b, id)
        if data is not None:
            _put(&b, b"\xa4data", 5)
            try:
                _put_value(&b, data, 0)
            except (OverflowError, ValueError) as exc:  # ints past 64 bits, lone surrogates
                raise TypeError(str(exc)) from None
        out = PyBytes_FromStringAndSize(b.data, b.len)
    finally:
        PyMem_Free(b.data)
    return new_encoded([out], True)


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
    if offset is None:
        raise TypeError("offset must be bytes, not None")
    return stamp_offset_raw(packet, PyBytes_AS_STRING(offset), PyBytes_GET_SIZE(offset))


cdef bytes stamp_offset_raw(bytes packet, const char* offset, Py_ssize_t olen):
    if packet is None:
        raise TypeError("packet must be bytes, not None")
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(packet)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(packet)
    cdef Py_ssize_t pos = 1
    cdef int count
    cdef int _k
    cdef Py_ssize_t head_size
    cdef uint64_t items
    if n < 1 or (p[0] & 0xF0) != 0x80:
        raise ValueError("not an encoded event")
    count = p[0] & 0x0F
    # Keys are "type", "nsp", maybe "id", then "data": skip the first count - 1 pairs.
    for _k in range(count - 1):
        pos = _skip_scalar(p, pos, n)
        pos = _skip_scalar(p, pos, n)
    if pos + 5 > n or memcmp(p + pos, b"\xa4data", 5) != 0:
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
    cdef Buf b
    b.cap = n + olen + 16
    b.len = 0
    b.data = <char*>PyMem_Malloc(b.cap)
    if b.data == NULL:
        raise MemoryError()
    try:
        _put(&b, <const char*>p, pos)
        _put_header(&b, items, 0x90, 16, 0, 0xDC, 0xDD)
        _put(&b, <const char*>p + pos + head_size, n - pos - head_size)
        _put_header(&b, <uint64_t>olen, 0xA0, 32, 0xD9, 0xDA, 0xDB)
        _put(&b, offset, olen)
        return PyBytes_FromStringAndSize(b.data, b.len)
    finally:
        PyMem_Free(b.data)
