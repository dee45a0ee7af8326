# cython: language_level=3
"""The server side of a WebSocket connection, from its ``101`` on.

picows's ``WSProtocol`` starts every server connection by reading the upgrade request again,
parsing it into a header map, checking it and computing the accept value in Python, building a
``101`` response object and logging the connection: about a quarter of a handshake's
instructions, for a request the HTTP front (``_core/httphead``) has already read whole and
checked. :class:`WebSocketProtocol` starts in the open state instead: it writes the ``101``
(bytes made by the engine) with the session's first frame, and from then on reads frames
(RFC 6455, section 5) for the same listener interface picows has (``WSListener``: the core's
``Inbox``, the other ASGI app's WebSocket) and sends through a picows ``WSTransport``, whose
framing, close and pong are used as they are (its fields are public in ``picows.pxd``).

What a frame must satisfy is checked here as picows checks it, with the same close codes and
the same log lines (``engine.clientlog`` rates them): reserved opcodes, fragmented or oversized
control frames, unmasked client frames, non-minimal lengths, a data frame over the size bound,
and a CLOSE with a code or a reason the official server's ``ws`` refuses. Reserved bits, the
fragment sequence and the message bound are the listener's (``Inbox.on_ws_frame``).

The core runs no asyncio: the engine subclasses this with ``asyncio.BufferedProtocol`` (the base
asyncio's own loop looks for), and gives it the loop, whose ``call_later`` closes a connection a
moment after its close frame went out.
"""
from binascii import b2a_base64
from hashlib import sha1

from cpython.buffer cimport PyBUF_WRITE
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.pythread cimport PyThread_get_thread_ident
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy, memmove
from picows.picows cimport (
    MemoryBuffer,
    WSCloseCode,
    WSCloseHandshake,
    WSCloseInfo,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
)

from picows import WSProtocolError

cdef bytes _GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
cdef bytes _ACCEPT = b"Sec-WebSocket-Accept: "

# A connection's own buffer holds only what a read left of a frame (most reads end on a frame's
# end and leave nothing): at least this much, or what the frame needs; freed once it was read.
cdef Py_ssize_t _INITIAL = 512
# Every other read goes to one buffer shared by all connections. Its frames are all handled
# before buffer_updated returns, and the loop reads one connection at a time, so nothing else
# can be read into it meanwhile; what is left of a frame is copied to the connection's own
# buffer. So a burst of frames is read in one system call, and an idle connection holds no
# read buffer at all.
cdef Py_ssize_t _SHARED_SIZE = 64 * 1024
cdef bytearray _shared = bytearray(_SHARED_SIZE)
cdef object _shared_view = memoryview(_shared)
cdef char* _shared_buf = PyByteArray_AS_STRING(_shared)
# What a read is offered at least.
cdef Py_ssize_t _MIN_READ = 256
# picows sends CLOSE first and closes the socket this much later (some asyncio versions do not
# write what is buffered when a transport is closed at once).
cdef double _CLOSE_DELAY = 0.01
# picows's frames for what it sends are built in the transport's write buffer: a pong or a
# close frame (125 bytes of payload at most); it grows when one is larger.
cdef Py_ssize_t _WRITE_BUFFER = 64

cdef int _ERROR = 40  # logging.ERROR


cdef inline bint _b64(Py_UCS4 c) noexcept:
    return (u"A" <= c <= u"Z") or (u"a" <= c <= u"z") or (u"0" <= c <= u"9") or (
        c == u"+" or c == u"/")


cpdef bytes accept_key(str key):
    """The ``Sec-WebSocket-Accept`` value for a request's ``Sec-WebSocket-Key``, or ``None``
    when the key is not the base64 of 16 bytes (``ws``'s check: 22 base64 characters and
    ``==``)."""
    if key is None or len(key) != 24 or key[22] != "=" or key[23] != "=":
        return None
    cdef Py_ssize_t i
    for i in range(22):
        if not _b64(key[i]):
            return None
    return b2a_base64(sha1(key.encode("ascii") + _GUID).digest(), newline=False)


cdef inline bint _valid_close_code(int code) noexcept:
    # ws's isValidStatusCode: the codes RFC 6455 (7.4) and IANA define that an endpoint may
    # send, and the ranges for libraries and applications.
    return (1000 <= code <= 1014 and code != 1004 and code != 1005 and code != 1006) or (
        3000 <= code <= 4999)


cdef inline void _unmask(uint8_t* p, Py_ssize_t n, const uint8_t* key) noexcept:
    cdef uint64_t k8, w
    cdef Py_ssize_t i = 0
    memcpy(&k8, key, 4)
    memcpy((<uint8_t*>&k8) + 4, key, 4)
    while i + 8 <= n:
        memcpy(&w, p + i, 8)
        w ^= k8
        memcpy(p + i, &w, 8)
        i += 8
    while i < n:
        p[i] ^= key[i & 3]
        i += 1


cdef class WebSocketProtocol:
    """One server-side WebSocket connection whose upgrade the HTTP front has read and checked:
    :meth:`open` writes the ``101`` and tells the listener; then the loop's transport feeds it
    (``get_buffer`` / ``buffer_updated``)."""

    def __cinit__(self, WSListener listener, Py_ssize_t max_frame_size, object logger,
                  object loop):
        self.listener = listener
        self._max_frame_size = max_frame_size
        self._logger = logger
        self._loop = loop
        self.transport = None
        self._buf = NULL
        self._cap = 0
        self._len = 0
        self._need = 0
        self._in_shared = False
        self._open = False
        self._failed = False

    def __dealloc__(self):
        PyMem_Free(self._buf)
        self._buf = NULL

    def open(self, object transport, int fd, bytes head, bytes accept, bytes first=b"",
             bytes data=b""):
        """Complete the upgrade on ``transport`` (this protocol is its protocol already):
        write ``head`` (the ``101``'s status line and headers but the accept value), the
        accept value and ``first`` (the session's first frame) in one write, tell the listener,
        and read ``data`` (what the client sent after its request). ``fd``: the socket's
        descriptor when frames may be written around the transport (``outbox.direct_fd``),
        else -1."""
        cdef WSTransport ws = WSTransport.__new__(WSTransport)
        ws._thread_id = PyThread_get_thread_ident()
        ws._loop = self._loop
        ws._logger = self._logger
        ws._log_debug_enabled = False
        ws._is_aiofn_transport = False
        ws._tr_get_write_buffer_size = transport.get_write_buffer_size
        ws._tr_write = transport.write
        ws._socket = fd
        ws.underlying_transport = transport
        ws.request = None
        ws.response = None
        ws.close_handshake = None
        ws.is_client_side = False
        # picows sends on the descriptor itself only when the transport is not secure: a
        # transport whose socket may not be written directly is one to it.
        ws.is_secure = fd < 0
        ws.is_close_frame_sent = False
        ws.is_disconnected = False
        ws.auto_ping_expect_pong = False
        ws.pong_received_at_future = None
        ws.listener_proxy = None
        # Only picows's own protocol resolves it (wait_disconnected); nothing here awaits it.
        ws.disconnected_future = None
        ws._write_buffer = MemoryBuffer(_WRITE_BUFFER)
        self.transport = ws

        cdef Py_ssize_t nh = PyBytes_GET_SIZE(head), na = PyBytes_GET_SIZE(accept)
        cdef Py_ssize_t nf = PyBytes_GET_SIZE(first)
        cdef Py_ssize_t n = nh + 22 + na + 4 + nf
        cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
        cdef char* p = PyBytes_AS_STRING(out)
        memcpy(p, PyBytes_AS_STRING(head), nh)
        memcpy(p + nh, PyBytes_AS_STRING(_ACCEPT), 22)
        memcpy(p + nh + 22, PyBytes_AS_STRING(accept), na)
        memcpy(p + nh + 22 + na, b"\r\n\r\n", 4)
        memcpy(p + nh + 26 + na, PyBytes_AS_STRING(first), nf)
        transport.write(out)
        self._open = True

        try:
            self.listener.on_ws_connected(ws)
        except Exception as exc:
            self._logger.log(
                _ERROR,
                "Initiate disconnect because of exception from WSListener.on_ws_connected: %s",
                str(exc))
            self._close_soon(WSCloseCode.INTERNAL_ERROR, None)
            return
        n = PyBytes_GET_SIZE(data)
        if n and not transport.is_closing():
            self._grow(n)
            memcpy(self._buf, PyBytes_AS_STRING(data), n)
            self._len = n
            self._parse()

    # -- the loop's transport ------------------------------------------------------------------
    def get_buffer(self, Py_ssize_t size_hint):
        if self._len == 0:
            self._in_shared = True
            return _shared_view
        self._in_shared = False
        if self._cap - self._len < _MIN_READ:
            self._grow(self._len + _MIN_READ)
        return PyMemoryView_FromMemory(self._buf + self._len, self._cap - self._len, PyBUF_WRITE)

    def buffer_updated(self, Py_ssize_t nbytes):
        cdef Py_ssize_t at, rest
        if self._failed:
            self._len = 0  # closing after a protocol error: nothing more is read
            return
        if not self._in_shared:
            self._len += nbytes
            self._parse()
            return
        self._in_shared = False
        at = self._frames(_shared_buf, nbytes)
        rest = nbytes - at
        if rest and not self._failed:
            self._grow(rest if rest > self._need else self._need)
            memcpy(self._buf, _shared_buf + at, rest)
            self._len = rest

    @property
    def own_buffer_size(self):
        """The bytes this connection's own read buffer holds room for (0: it has none, its
        reads go to the shared buffer)."""
        return self._cap

    def eof_received(self):
        return False  # the transport closes itself

    def connection_lost(self, exc):
        cdef WSTransport ws = self.transport
        if ws is None:
            return
        ws.is_disconnected = True
        if self._open:
            self._open = False
            try:
                self.listener.on_ws_disconnected(ws)
            except Exception:
                self._logger.exception(
                    "Unhandled exception from user's WSListener.on_ws_disconnected")
        PyMem_Free(self._buf)
        self._buf = NULL
        self._cap = self._len = 0

    def pause_writing(self):
        try:
            self.listener.pause_writing()
        except Exception:
            pass  # picows's default (a listener without flow control) raises

    def resume_writing(self):
        try:
            self.listener.resume_writing()
        except Exception:
            pass

    # -- reading frames --------------------------------------------------------------------------
    cdef int _grow(self, Py_ssize_t need) except -1:
        if need <= self._cap:
            return 0
        cdef Py_ssize_t cap = _INITIAL if self._cap == 0 else self._cap * 2
        while cap < need:
            cap *= 2
        cdef char* buf = <char*>PyMem_Realloc(self._buf, cap)
        if buf == NULL:
            raise MemoryError()
        self._buf = buf
        self._cap = cap
        return 0

    cdef int _parse(self) except -1:
        # The frames in the connection's own buffer.
        cdef Py_ssize_t at = self._frames(self._buf, self._len)
        if self._failed:
            self._len = 0
            return 0
        if at:
            memmove(self._buf, self._buf + at, self._len - at)
            self._len -= at
        if self._need:
            self._grow(self._need)
        elif self._len == 0:
            # Nothing left of a frame: the next read goes to the shared buffer.
            PyMem_Free(self._buf)
            self._buf = NULL
            self._cap = 0
        return 0

    cdef Py_ssize_t _frames(self, char* buf, Py_ssize_t length) except -1:
        # Hands the whole frames at the start of buf to _frame; returns the bytes they took.
        # _need: the size of the frame that follows them when its header is there, else 0.
        cdef uint8_t* b = <uint8_t*>buf
        cdef Py_ssize_t at = 0, avail, head, size, need = 0
        cdef uint8_t b0, b1, flag
        cdef int opcode
        cdef uint64_t size64
        cdef int i
        while not self._failed:
            avail = length - at
            if avail < 2:
                break
            b0 = b[at]
            b1 = b[at + 1]
            opcode = b0 & 0x0F
            if opcode > 2 and not (8 <= opcode <= 10):
                return self._fail(WSCloseCode.PROTOCOL_ERROR,
                                  f"Received frame with invalid opcode={opcode:#x}")
            if opcode >= 8 and not (b0 & 0x80):
                return self._fail(WSCloseCode.PROTOCOL_ERROR, "Received fragmented control frame")
            if not (b1 & 0x80):
                return self._fail(
                    WSCloseCode.PROTOCOL_ERROR,
                    "Received un-masked frame from client, RFC 6455 section 5.1 forbids this")
            flag = b1 & 0x7F
            if opcode >= 8 and flag > 125:
                return self._fail(
                    WSCloseCode.PROTOCOL_ERROR,
                    f"Received control frame with payload size > 125 bytes, opcode={opcode:#x}")
            if flag == 126:
                if avail < 4:
                    break
                size = (<Py_ssize_t>b[at + 2] << 8) | b[at + 3]
                if size < 126:
                    return self._fail(WSCloseCode.PROTOCOL_ERROR,
                                      "Received frame with invalid 16-bit payload len")
                head = 8
            elif flag == 127:
                if avail < 10:
                    break
                size64 = 0
                for i in range(8):
                    size64 = (size64 << 8) | b[at + 2 + i]
                if size64 >> 63 or size64 < 65536:
                    return self._fail(WSCloseCode.PROTOCOL_ERROR,
                                      "Received frame with invalid 64-bit payload length")
                size = <Py_ssize_t>size64  # under 2**63: the bound below is checked on it
                head = 14
            else:
                size = flag
                head = 6
            if opcode < 8 and size > self._max_frame_size:
                return self._fail(
                    WSCloseCode.MESSAGE_TOO_BIG,
                    f"Received frame with payload size exceeding max allowed size, "
                    f"{size} > {self._max_frame_size}")
            if avail < head + size:
                need = head + size
                break
            _unmask(b + at + head, size, b + at + head - 4)
            self._frame(opcode, b0 >> 7, (b0 >> 4) & 7, buf + at + head, size,
                        avail - head - size)
            at += head + size
        self._need = need
        return at

    cdef int _fail(self, int code, str reason) except -1:
        # What picows does on a client's malformed frame: one log line (engine.clientlog puts
        # it at DEBUG, rate-limited), a CLOSE with the code, the socket closed a moment later.
        self._failed = True
        self._logger.log(_ERROR, "WS parser error: %s, initiate disconnect", (code, reason))
        self._close_soon(code, reason)
        return 0

    cdef int _close_soon(self, int code, object reason) except -1:
        cdef WSTransport ws = self.transport
        ws.send_close(<WSCloseCode>code, reason)
        self._loop.call_later(_CLOSE_DELAY, (<object>ws).disconnect)
        return 0

    cdef int _frame(self, int opcode, bint fin, int rsv, char* payload, Py_ssize_t size,
                    Py_ssize_t tail) except -1:
        cdef WSTransport ws = self.transport
        cdef int code
        cdef str reason
        cdef WSCloseInfo recv
        cdef WSCloseHandshake shake
        if opcode == WSMsgType.CLOSE:
            if size == 1:
                return self._fail(WSCloseCode.PROTOCOL_ERROR,
                                  "Received CLOSE with invalid close code size")
            code = 0
            reason = ""
            if size >= 2:
                code = ((<uint8_t>payload[0]) << 8) | <uint8_t>payload[1]
                if not _valid_close_code(code):
                    return self._fail(WSCloseCode.PROTOCOL_ERROR,
                                      f"Received CLOSE with invalid close code: {code}")
                try:
                    reason = PyUnicode_DecodeUTF8(payload + 2, size - 2, NULL)
                except UnicodeDecodeError:
                    return self._fail(WSCloseCode.INVALID_TEXT,
                                      "Received CLOSE with invalid UTF-8 reason")
            recv = WSCloseInfo.__new__(WSCloseInfo)
            recv.code = <WSCloseCode>code
            recv.reason = reason
            shake = ws.close_handshake
            if shake is None:
                shake = WSCloseHandshake.__new__(WSCloseHandshake)
                shake.recv = recv
                shake.sent = None
                shake.recv_then_sent = True
                ws.close_handshake = shake
            elif shake.recv is None:
                shake.recv = recv
            else:
                return self._fail(WSCloseCode.PROTOCOL_ERROR,
                                  f"Received CLOSE for the second time: {code}")
        elif opcode == WSMsgType.PING:
            ws.send_pong(PyBytes_FromStringAndSize(payload, size))
            return 0
        cdef WSFrame frame = WSFrame.__new__(WSFrame)
        frame.payload_ptr = payload
        frame.payload_size = size
        frame.tail_size = tail
        frame.msg_type = <WSMsgType>opcode
        frame.fin = fin
        frame.rsv1 = (rsv >> 2) & 1
        frame.rsv2 = (rsv >> 1) & 1
        frame.rsv3 = rsv & 1
        # (picows: no whole frame follows in the buffer; here: no byte follows)
        frame.last_in_buffer = tail == 0
        try:
            self.listener.on_ws_frame(ws, frame)
        except WSProtocolError as exc:
            self._logger.log(_ERROR, "on_ws_frame raised WSProtocolError: %s, send CLOSE and "
                             "initiate disconnect", exc.args)
            self._close_soon(exc.code, exc.args[1])
        except Exception:
            self._logger.exception(
                "Initiate disconnect because of exception from WSListener.on_ws_frame")
            self._close_soon(WSCloseCode.INTERNAL_ERROR, None)
        return 0
