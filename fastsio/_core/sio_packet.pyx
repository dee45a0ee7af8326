# cython: language_level=3
"""Socket.IO v5 packets: decoding, encoding, binary attachments and recovery-offset stamping.

:func:`encode` returns an :class:`Encoded`: Engine.IO-ready parts (the first starts with the
Engine.IO MESSAGE digit ``4``, attachments follow as raw bytes), and the same packet framed for
a WebSocket, built on first use and then shared by every recipient of a broadcast.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from libc.string cimport memchr, memcpy

from fastsio._core.debug cimport FASTSIO_DEBUG
from fastsio._core.eio_packet cimport ws_frame

import orjson

from fastsio._core.errors import (
    InvalidAckId,
    InvalidAttachments,
    InvalidNamespace,
    InvalidPayload,
    TooManyAttachments,
    UnexpectedBinary,
    UnexpectedText,
    UnknownPacketType,
)

CONNECT = 0
DISCONNECT = 1
EVENT = 2
ACK = 3
CONNECT_ERROR = 4
BINARY_EVENT = 5
BINARY_ACK = 6

RESERVED_EVENTS = frozenset(
    ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener")
)

# An ack id is a JavaScript number on the client: more than 15 digits cannot round-trip exactly.
cdef Py_ssize_t MAX_ACK_ID_DIGITS = 15
cdef Py_ssize_t _COPY_PAYLOAD_MAX = 4096

cdef object _loads = orjson.loads
cdef object _orjson_dumps = orjson.dumps
# Non-string keys are turned into strings, as JSON.stringify does ({3: "4"} -> {"3":"4"}).
cdef int _DUMPS_OPTIONS = orjson.OPT_NON_STR_KEYS


cdef inline object _dumps(object data):
    return _orjson_dumps(data, option=_DUMPS_OPTIONS)
cdef object _JSONDecodeError = orjson.JSONDecodeError
cdef object _PLACEHOLDER_KEY = "_placeholder"
cdef tuple _BINARY_TYPES = (bytes, bytearray, memoryview)


cdef class Packet:
    """A decoded Socket.IO packet; ``id`` is ``None`` when the packet wants no ack."""

    def __init__(self, int type, str nsp="/", object data=None, object id=None, int attachments=0):
        self.type = type
        self.nsp = nsp
        self.data = data
        self.id = id
        self.attachments = attachments

    def __repr__(self):
        return f"Packet(type={self.type}, nsp={self.nsp!r}, data={self.data!r}, id={self.id!r})"

    def __eq__(self, other):
        if not isinstance(other, Packet):
            return NotImplemented
        cdef Packet o = <Packet>other
        return (self.type == o.type and self.nsp == o.nsp and self.data == o.data
                and self.id == o.id and self.attachments == o.attachments)


cdef inline bint _is_digit(char c) noexcept:
    return 48 <= c <= 57


cdef bint valid_payload(int ptype, object payload):
    """The data a packet of type ``ptype`` may carry (EVENT: a known, non-reserved name first)."""
    cdef object first
    if ptype == CONNECT:
        return type(payload) is dict
    if ptype == CONNECT_ERROR:
        return type(payload) is dict or type(payload) is str
    if ptype == EVENT or ptype == BINARY_EVENT:
        if type(payload) is not list or len(<list>payload) == 0:
            return False
        first = (<list>payload)[0]
        if type(first) is str:
            return first not in RESERVED_EVENTS
        return type(first) is int or type(first) is float
    if ptype == ACK or ptype == BINARY_ACK:
        return type(payload) is list
    return False  # DISCONNECT carries no payload


cdef int _check_shape(const char* buf, Py_ssize_t i, Py_ssize_t n, int max_depth,
                      Py_ssize_t max_args) except -1:
    """Bound the nesting depth and the top-level array length before anything is parsed.

    One pass over the bytes, outside strings; invalid JSON is left for the parser to refuse.
    A string is skipped with ``memchr`` (most of a payload is strings): a quote in it is
    escaped when an odd number of backslashes stand right before it.
    """
    cdef int depth = 0
    cdef Py_ssize_t args = 1
    cdef Py_ssize_t k
    cdef const char* q
    cdef char c
    while i < n:
        c = buf[i]
        if c == 34:  # a string: find its closing quote
            while True:
                q = <const char*>memchr(buf + i + 1, 34, <size_t>(n - i - 1))
                if q == NULL:
                    return 0  # unterminated: the parser refuses it
                i = q - buf
                k = i - 1
                while buf[k] == 92:  # stops at the opening quote at the latest
                    k -= 1
                if (i - 1 - k) % 2 == 0:
                    break
        elif c == 91 or c == 123:  # [ {
            depth += 1
            if depth > max_depth:
                raise InvalidPayload("JSON nested too deeply")
        elif c == 93 or c == 125:
            depth -= 1
        elif c == 44 and depth == 1:
            args += 1
            if args > max_args:
                raise InvalidPayload("too many arguments")
        i += 1
    return 0


cpdef Packet decode(bytes data, Py_ssize_t start=0, int max_attachments=10,
                    Py_ssize_t max_namespace_length=256, int max_depth=64,
                    Py_ssize_t max_args=256):
    """Decode the text part of a packet, starting at ``start`` (1 skips an Engine.IO type digit).

    A BINARY_EVENT/BINARY_ACK comes back with its placeholders in ``data`` and ``attachments``
    set; :class:`Decoder` collects the attachments and rebuilds it.
    """
    if data is None:
        raise TypeError("data must be bytes, not None")
    cdef const char* buf = PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t i = start
    cdef Py_ssize_t j
    cdef int ptype
    cdef long long count
    cdef Packet p = Packet.__new__(Packet)
    if start < 0:
        raise ValueError("start must be >= 0")
    if i >= n:
        raise UnknownPacketType("empty packet")
    if not (48 <= buf[i] <= 54):
        raise UnknownPacketType("unknown packet type")
    ptype = buf[i] - 48
    p.type = ptype
    p.nsp = "/"
    p.attachments = 0
    i += 1
    if ptype == BINARY_EVENT or ptype == BINARY_ACK:
        j = i
        count = 0
        while j < n and _is_digit(buf[j]):
            count = count * 10 + (buf[j] - 48)
            if count > max_attachments:
                raise TooManyAttachments("too many attachments")
            j += 1
        if j == i or j >= n or buf[j] != 45:  # '-'
            raise InvalidAttachments("illegal attachments")
        p.attachments = <int>count
        i = j + 1
    if i < n and buf[i] == 47:  # '/'
        j = data.find(b",", i)
        if j < 0:
            j = n
        if j - i > max_namespace_length:
            raise InvalidNamespace("namespace too long")
        try:
            p.nsp = data[i:j].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidNamespace("namespace is not valid UTF-8") from None
        i = j + 1 if j < n else n
    if i < n and _is_digit(buf[i]):
        j = i
        count = 0
        while j < n and _is_digit(buf[j]):
            count = count * 10 + (buf[j] - 48)  # at most 15 digits: no overflow
            j += 1
            if j - i > MAX_ACK_ID_DIGITS:
                raise InvalidAckId("ack id too long")
        p.id = count
        i = j
    if i < n:
        _check_shape(buf, i, n, max_depth, max_args)
        try:
            # A small payload is copied (cheaper than a memoryview and its slice); a large
            # one is read in place.
            if n - i <= _COPY_PAYLOAD_MAX:
                payload = _loads(PyBytes_FromStringAndSize(buf + i, n - i))
            else:
                payload = _loads(memoryview(data)[i:])
        except _JSONDecodeError:
            raise InvalidPayload("invalid JSON") from None
        if not valid_payload(ptype, payload):
            raise InvalidPayload("invalid payload for this packet type")
        p.data = payload
    elif ptype != CONNECT and ptype != DISCONNECT and ptype != CONNECT_ERROR:
        # The official parser lets an EVENT/ACK without data through and the server then has
        # nothing to dispatch: refusing it here is stricter and loses nothing.
        raise InvalidPayload("missing payload")
    return p


cdef object _reconstruct(object data, list buffers):
    """Replace placeholders by attachments without recursion (client-controlled depth)."""
    cdef list stack = [data]
    cdef object container
    cdef object item
    cdef object key
    cdef Py_ssize_t k
    while stack:
        container = stack.pop()
        if type(container) is list:
            for k in range(len(<list>container)):
                item = (<list>container)[k]
                if type(item) is dict:
                    if _is_placeholder(<dict>item):
                        (<list>container)[k] = _attachment(<dict>item, buffers)
                    else:
                        stack.append(item)
                elif type(item) is list:
                    stack.append(item)
        else:
            for key, item in (<dict>container).items():
                if type(item) is dict:
                    if _is_placeholder(<dict>item):
                        (<dict>container)[key] = _attachment(<dict>item, buffers)
                    else:
                        stack.append(item)
                elif type(item) is list:
                    stack.append(item)
    return data


cdef inline bint _is_placeholder(dict d):
    cdef PyObject* v = PyDict_GetItem(d, _PLACEHOLDER_KEY)
    return v != NULL and <object>v is True


cdef object _attachment(dict placeholder, list buffers):
    num = placeholder.get("num")
    if type(num) is not int or num < 0 or num >= len(buffers):
        raise InvalidAttachments("illegal attachments")
    return buffers[num]


cdef class Decoder:
    """Per-connection decoder: text packets, then the binary attachments a packet announced."""

    def __init__(self, int max_attachments=10, Py_ssize_t max_namespace_length=256,
                 int max_depth=64, Py_ssize_t max_args=256,
                 Py_ssize_t max_attachment_bytes=100 * 1024 * 1024):
        self.max_attachments = max_attachments
        self.max_namespace_length = max_namespace_length
        self.max_depth = max_depth
        self.max_args = max_args
        self.max_attachment_bytes = max_attachment_bytes
        self._buffered = 0
        self._pending = None
        self._buffers = []

    @property
    def waiting(self):
        """True while a binary packet waits for attachments."""
        return self._pending is not None

    cpdef Packet add_text(self, bytes data, Py_ssize_t start=0):
        """Decode a text packet; ``None`` when it is a binary packet still waiting for its
        attachments."""
        if self._pending is not None:
            raise UnexpectedText("got plaintext data when reconstructing a packet")
        cdef Packet p = decode(data, start, self.max_attachments, self.max_namespace_length,
                               self.max_depth, self.max_args)
        if p.type == BINARY_EVENT or p.type == BINARY_ACK:
            if p.attachments == 0:
                return _finish(p, [])
            self._pending = p
            return None
        return p

    cpdef Packet add_binary(self, bytes data):
        """Take one attachment; the rebuilt packet once the last one arrived, else ``None``."""
        if data is None:
            raise TypeError("data must be bytes, not None")
        if self._pending is None:
            raise UnexpectedBinary("got binary data when not reconstructing a packet")
        self._buffered += PyBytes_GET_SIZE(data)
        if self._buffered > self.max_attachment_bytes:
            self.reset()
            raise InvalidAttachments("attachments too large")
        self._buffers.append(data)
        if len(self._buffers) < self._pending.attachments:
            return None
        cdef Packet p = self._pending
        cdef list buffers = self._buffers
        self._pending = None
        self._buffers = []
        self._buffered = 0
        return _finish(p, buffers)

    cpdef void reset(self):
        """Drop a half-received binary packet (the connection is going away)."""
        self._pending = None
        self._buffers = []
        self._buffered = 0


cdef Packet _finish(Packet p, list buffers):
    p.data = _reconstruct(p.data, buffers)
    p.type = EVENT if p.type == BINARY_EVENT else ACK
    p.attachments = 0
    return p


cdef object _deconstruct(object data, list buffers):
    """Copy of ``data`` with each bytes-like value replaced by a placeholder (server data only)."""
    cdef object t = type(data)
    if t is bytes or t is bytearray or t is memoryview:
        buffers.append(bytes(data))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if t is list or t is tuple:
        return [_deconstruct(x, buffers) for x in data]
    if t is dict:
        return {k: _deconstruct(v, buffers) for k, v in (<dict>data).items()}
    if isinstance(data, _BINARY_TYPES):
        buffers.append(bytes(data))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if isinstance(data, (list, tuple)):
        return [_deconstruct(x, buffers) for x in data]
    if isinstance(data, dict):
        return {k: _deconstruct(v, buffers) for k, v in data.items()}
    return data


cdef Py_ssize_t _digits(char* out, unsigned long long v) noexcept:
    # v in decimal at out (20 bytes at most); returns how many.
    cdef char tmp[20]
    cdef Py_ssize_t n = 0, k
    while True:
        tmp[n] = <char>(48 + v % 10)
        n += 1
        v //= 10
        if v == 0:
            break
    for k in range(n):
        out[k] = tmp[n - 1 - k]
    return n


cdef bytes _packet(int ptype, str nsp, object id, Py_ssize_t attachments, bytes body):
    """The text packet, in one bytes: the Engine.IO and Socket.IO type digits, the attachment
    count (binary packets), the namespace (but ``/``), the ack id, then ``body``."""
    cdef char head[48]  # "4", the type, 20 digits and "-", 20 digits
    cdef Py_ssize_t h = 2, tail = 0, nn = 0, nb = 0
    cdef bytes nsp_b = None
    cdef bytes id_b = None
    cdef char* p
    head[0] = 52
    head[1] = <char>(48 + ptype)
    if ptype == BINARY_EVENT or ptype == BINARY_ACK:
        h += _digits(head + h, <unsigned long long>attachments)
        head[h] = 45  # '-'
        h += 1
    if nsp is not None and nsp != "/" and nsp != "":
        nsp_b = nsp.encode("utf-8")
        nn = PyBytes_GET_SIZE(nsp_b) + 1
    if id is not None:
        if type(id) is int and 0 <= id < 1_000_000_000_000_000_000:
            tail = _digits(head + h, <unsigned long long>id)
        else:
            id_b = str(int(id)).encode()
            tail = PyBytes_GET_SIZE(id_b)
    if body is not None:
        nb = PyBytes_GET_SIZE(body)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, h + nn + tail + nb)
    p = PyBytes_AS_STRING(out)
    memcpy(p, head, h)
    p += h
    if nsp_b is not None:
        memcpy(p, PyBytes_AS_STRING(nsp_b), nn - 1)
        p[nn - 1] = 44  # ','
        p += nn
    if id_b is not None:
        memcpy(p, PyBytes_AS_STRING(id_b), tail)
    elif tail:
        memcpy(p, head + h, tail)
    p += tail
    if nb:
        memcpy(p, PyBytes_AS_STRING(body), nb)
    return out


cdef class Encoded:
    """One encoded packet: its Engine.IO MESSAGE parts (text packet, then raw attachments).

    ``frame`` is every part framed for a WebSocket (text frame, then one binary frame per
    attachment), concatenated: built once, on first use, then written as is to every WebSocket
    recipient. ``packets`` is the ``(bytes, is_binary)`` form a polling payload is made of. It
    is a read-only sequence of its parts and compares equal to a list of the same parts.
    ``binary_only``: the parts are binary Engine.IO messages from the first (the msgpack parser's
    one part), not a text packet and attachments.
    """

    def __init__(self, list parts, bint binary_only=False):
        if not parts:
            raise ValueError("an encoded packet has at least one part")
        self.parts = parts
        self.binary_only = binary_only
        self.size = 0
        for part in parts:
            if type(part) is not bytes:
                raise TypeError("parts must be bytes")
            self.size += PyBytes_GET_SIZE(<bytes>part)

    cdef bytes get_frame(self):
        cdef Py_ssize_t k
        if self._frame is None:
            if len(self.parts) == 1:
                self._frame = ws_frame(<bytes>self.parts[0], self.binary_only)
            else:
                self._frame = b"".join(
                    [ws_frame(<bytes>self.parts[k], k > 0 or self.binary_only)
                     for k in range(len(self.parts))])
        return self._frame

    cdef list get_packets(self):
        cdef Py_ssize_t k
        if self._packets is None:
            self._packets = [(self.parts[k], k > 0 or self.binary_only)
                             for k in range(len(self.parts))]
        return self._packets

    @property
    def frame(self):
        return self.get_frame()

    @property
    def packets(self):
        return list(self.get_packets())

    @property
    def binary(self):
        """True when attachments follow the text packet."""
        return len(self.parts) > 1

    def __len__(self):
        return len(self.parts)

    def __getitem__(self, index):
        return self.parts[index]

    def __iter__(self):
        return iter(self.parts)

    def __eq__(self, other):
        if isinstance(other, Encoded):
            return (self.parts == (<Encoded>other).parts
                    and self.binary_only == (<Encoded>other).binary_only)
        if isinstance(other, list):
            return self.parts == other
        return NotImplemented

    def __repr__(self):
        if self.binary_only:
            return f"Encoded({self.parts!r}, binary_only=True)"
        return f"Encoded({self.parts!r})"


cdef Encoded new_encoded(list parts, bint binary_only):
    """An :class:`Encoded` of trusted parts (bytes, at least one): no checks."""
    cdef Encoded e = Encoded.__new__(Encoded)
    cdef object part
    e.parts = parts
    e.binary_only = binary_only
    e.size = 0
    for part in parts:
        e.size += PyBytes_GET_SIZE(<bytes>part)
    return e


cpdef Encoded encode(int type, str nsp="/", object data=None, object id=None):
    """Encode a packet (see :class:`Encoded`): the text packet, then raw attachments.

    EVENT and ACK whose data holds ``bytes``/``bytearray``/``memoryview`` become BINARY_EVENT and
    BINARY_ACK; ``data`` itself is never modified.
    """
    return new_encoded(_encode_parts(type, nsp, data, id), False)


cdef list _encode_parts(int type, str nsp, object data, object id):
    cdef bytes body
    cdef list buffers
    if type < 0 or type > 6:
        raise ValueError("packet type out of range")
    if data is None:
        return [_packet(type, nsp, id, 0, None)]
    try:
        # orjson refuses bytes: the common (text-only) case pays for no separate binary scan.
        # Nor for non-string keys (OPT_NON_STR_KEYS costs about a quarter of a small packet's
        # dumps): orjson refuses them too without it, and the copy below is dumped with it.
        body = _orjson_dumps(data)
    except TypeError:
        buffers = []
        clean = _deconstruct(data, buffers)
        if buffers and (
            type != EVENT and type != ACK and type != BINARY_EVENT and type != BINARY_ACK
        ):
            raise TypeError("binary data is only allowed in EVENT and ACK packets")
        body = _dumps(clean)
        if buffers and (type == EVENT or type == ACK):
            type = BINARY_EVENT if type == EVENT else BINARY_ACK
        if type == BINARY_EVENT or type == BINARY_ACK:
            return [_packet(type, nsp, id, len(buffers), body)] + buffers
    return [_packet(type, nsp, id, 0, body)]


cpdef bytes stamp_offset(bytes packet, bytes offset):
    """Append ``offset`` as the last element of an encoded EVENT's data array, in one splice.

    ``offset`` must be made of ASCII letters, digits, ``-``, ``_`` or ``.`` (the packet log's
    offsets are), so the splice needs no JSON escaping.
    """
    if offset is None:
        raise TypeError("offset must be bytes, not None")
    cdef const char* o = PyBytes_AS_STRING(offset)
    cdef Py_ssize_t k
    cdef char c
    for k in range(PyBytes_GET_SIZE(offset)):
        c = o[k]
        if not (_is_digit(c) or 65 <= c <= 90 or 97 <= c <= 122 or c == 45 or c == 95 or c == 46):
            raise ValueError("offset must be [A-Za-z0-9._-]")
    return stamp_offset_raw(packet, o, PyBytes_GET_SIZE(offset))


cdef bytes stamp_offset_raw(bytes packet, const char* offset, Py_ssize_t olen):
    # One new bytes object written in place: the packet log stamps every broadcast it logs.
    if packet is None:
        raise TypeError("packet must be bytes, not None")
    cdef Py_ssize_t n = PyBytes_GET_SIZE(packet)
    cdef const char* p = PyBytes_AS_STRING(packet)
    if n < 2 or p[n - 1] != 93:  # ']'
        raise ValueError("not an encoded event")
    if FASTSIO_DEBUG:
        assert packet.startswith(b"42") or packet.startswith(b"45"), "stamping a non-event"
    cdef Py_ssize_t comma = p[n - 2] != 91  # after '[' (an empty array) no comma
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n + comma + olen + 2)
    cdef char* w = PyBytes_AS_STRING(out)
    memcpy(w, p, n - 1)
    w += n - 1
    if comma:
        w[0] = 44  # ','
        w += 1
    w[0] = 34  # '"'
    memcpy(w + 1, offset, olen)
    w[olen + 1] = 34
    w[olen + 2] = 93
    return out
