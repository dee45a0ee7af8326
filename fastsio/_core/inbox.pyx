# cython: language_level=3
"""The inbound side of a WebSocket session: the picows listener, in the core.

picows calls ``on_ws_frame`` (a ``cpdef`` of its ``WSListener``) at C level, so a frame costs no
Python until it has become a Socket.IO packet. An :class:`Inbox` checks what RFC 6455 leaves to
the application (the close handshake, reserved bits, fragments and the message-size bound), and
then either

- hands the message to its sink, when the engine has set one (an Engine.IO v4 session whose
  client decodes as usual: no per-packet counters, no trace, no wrapped ``on_message``): an
  Engine.IO MESSAGE is decoded here and its packet goes to the namespace's socket with one
  Python call, ``socket._on_packet(packet)`` (or to the sink's callback when the namespace is not
  joined: a CONNECT, or a protocol violation); or
- calls ``_deliver(data, binary)``, the engine's path (Python): every other Engine.IO packet
  (pong, close, upgrade, noop), binary attachments, a message that does not decode (the engine's
  path decodes it again and reports the error), Engine.IO revision 3, probes.

The core imports no asyncio and runs no user code: the engine's Python subclass
(``engine.websocket.WebSocketTransport``) owns the outbound side and the lifecycle callbacks.
"""
import gc

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.exc cimport PyErr_SetFromErrno
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport Py_TYPE, PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from picows.picows cimport (
    MemoryBuffer,
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
)

from fastsio._core cimport msgpack_packet, sio_packet
from fastsio._core.errors import ProtocolError

# Off while a per-packet trace is on (fastsio.trace.refresh): every message then takes the
# engine's path, which traces it, on the connections that have a sink too.
cdef bint _sinks_on = True


def use_sinks(bint on):
    """Whether the inboxes deliver through their sinks (default True)."""
    global _sinks_on
    _sinks_on = on


# picows gives every connection a 1 KiB write buffer, for frames it builds itself (``send``).
# An Engine.IO session's frames go through its outbox to the socket; picows builds only the
# close frame and the pong to a client's ping (125 bytes of payload at most), and the buffer
# grows when one is larger.
cdef Py_ssize_t _WRITE_BUFFER_SIZE = 64


# picows's WSProtocol reads into a buffer of at least 2 KiB per connection (its constructor's
# floor), grown on demand and never shrunk. An idle Engine.IO session receives a pong every
# ping interval: after the upgrade, a connection starts again from a buffer this large (in
# picows's own proportions: 256 bytes past what it offers a read, for its SIMD parsers), and
# picows grows it as before when a larger message comes.
cdef Py_ssize_t _READ_BUFFER_CAPACITY = 768
cdef Py_ssize_t _READ_BUFFER_SLACK = 256

# Where a WSProtocol keeps its read buffer. picows declares that field in its .pyx only (not
# in picows.pxd), so it is found once per process, on a live protocol: the one slot of the
# object that holds the MemoryBuffer its garbage-collector traversal reports. -1: not found,
# never shrink.
cdef Py_ssize_t _read_buffer_offset = 0
cdef object _protocol_type = None


cdef Py_ssize_t _find_read_buffer(object protocol) except -2:
    found = [r for r in gc.get_referents(protocol) if type(r) is MemoryBuffer]
    if len(found) != 1:
        return -1
    cdef PyObject* target = <PyObject*>found[0]
    cdef char* base = <char*><PyObject*>protocol
    cdef Py_ssize_t end = Py_TYPE(protocol).tp_basicsize - <Py_ssize_t>sizeof(PyObject*)
    cdef Py_ssize_t off = sizeof(PyObject)
    cdef Py_ssize_t match = -1
    while off <= end:
        if (<PyObject**>(base + off))[0] == target:
            if match != -1:
                return -1
            match = off
        off += sizeof(PyObject*)
    return match


cpdef bint shrink_read_buffer(object protocol) except -1:
    """Give a picows ``WSProtocol`` that holds no unread bytes a smaller read buffer (see
    ``_READ_BUFFER_CAPACITY``); False when it was left as it was (data pending, a buffer already
    that small, or a protocol whose buffer cannot be found)."""
    global _read_buffer_offset, _protocol_type
    if _read_buffer_offset < 0:
        return False
    if type(protocol) is not _protocol_type:
        if _protocol_type is not None:
            return False
        _read_buffer_offset = _find_read_buffer(protocol)
        if _read_buffer_offset < 0:
            return False
        _protocol_type = type(protocol)
    cdef PyObject** slot = <PyObject**>(<char*><PyObject*>protocol + _read_buffer_offset)
    if slot[0] == NULL or type(<object>slot[0]) is not MemoryBuffer:
        return False
    cdef MemoryBuffer old = <MemoryBuffer>slot[0]
    if old.capacity <= _READ_BUFFER_CAPACITY:
        return False
    # What the protocol offers the next read starts at its buffer's start: nothing is pending.
    cdef Py_buffer view
    PyObject_GetBuffer(protocol.get_buffer(-1), &view, PyBUF_SIMPLE)
    cdef bint empty = view.buf == <void*>old.data and view.len == old.size
    PyBuffer_Release(&view)
    if not empty:
        return False
    cdef MemoryBuffer small = MemoryBuffer(_READ_BUFFER_CAPACITY)
    small.size = _READ_BUFFER_CAPACITY - _READ_BUFFER_SLACK
    Py_INCREF(small)
    slot[0] = <PyObject*>small
    Py_DECREF(old)  # the slot's reference; ``old`` still holds its own until the return
    return True


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    int c_setsockopt "setsockopt" (int fd, int level, int name, const void* value,
                                   socklen_t size)
    int c_getsockopt "getsockopt" (int fd, int level, int name, void* value, socklen_t* size)


@cython.final
cdef class _PlainSocket:
    """What a picows ``WSProtocol``'s ``connection_made`` is given in place of a plain TCP
    transport (see :func:`open_protocol`): the transport's ``write`` and
    ``get_write_buffer_size``, and, as its ``socket``, integer socket options set on the
    descriptor itself. uvloop answers each of picows's six option calls through a new Python
    ``socket`` object (about four system calls apiece), per connection. picows reads options
    and addresses only for its log line of the connection: they are read when that is on."""
    cdef object transport
    cdef int fd
    cdef bint logged
    cdef public object write
    cdef public object get_write_buffer_size

    def get_extra_info(self, name, default=None):
        if name == "socket":
            return self
        if name == "ssl_object":
            return None
        return self.transport.get_extra_info(name, default) if self.logged else default

    def fileno(self):
        return self.fd

    def setsockopt(self, int level, int name, int value):
        if c_setsockopt(self.fd, level, name, &value, sizeof(int)) != 0:
            PyErr_SetFromErrno(OSError)

    def getsockopt(self, int level, int name):
        cdef int value = 0
        cdef socklen_t size = sizeof(int)
        if self.logged and c_getsockopt(self.fd, level, name, &value, &size) != 0:
            PyErr_SetFromErrno(OSError)
        return value


cdef _PlainSocket _plain = _PlainSocket()


cpdef void open_protocol(object protocol, object transport, int fd, bint logged=False) except *:
    """``protocol.connection_made(transport)`` for a picows ``WSProtocol`` on a plain TCP
    ``transport`` whose socket is ``fd`` (:func:`outbox.direct_fd`), with the same options set
    on the socket, without uvloop's per-call socket objects. ``logged``: picows's log line of
    the connection is on (it then gets the addresses and options it reports)."""
    _plain.transport = transport
    _plain.fd = fd
    _plain.logged = logged
    _plain.write = transport.write
    _plain.get_write_buffer_size = transport.get_write_buffer_size
    cdef WSTransport ws
    try:
        protocol.connection_made(_plain)
        # picows took the bound methods and the descriptor; the connection keeps the transport.
        ws = protocol.transport
        ws.underlying_transport = transport
    except BaseException:
        # Never leave picows half-opened on the stand-in: it opens again on the transport
        # itself (its connection_made only sets fields up, so a second call replaces them).
        protocol.connection_made(transport)
    finally:
        _plain.transport = None
        _plain.write = None
        _plain.get_write_buffer_size = None


cdef class Inbox(WSListener):

    def __cinit__(self):
        self.socket = None
        self.direct_fd = -2
        self.max_message_size = 1_000_000
        self._fragments = None
        self._fragments_binary = False
        self._fragments_size = 0
        self._decoder = None
        self._msgpack = False
        self._nsps = None
        self._on_packet = None

    cpdef void set_sink(self, object decoder, dict nsps, object on_packet) except *:
        """Deliver decoded packets: to ``nsps[packet.nsp]._on_packet(packet)``, else to
        ``on_packet(packet)``. ``decoder`` is the session's ``sio_packet.Decoder`` or
        ``msgpack_packet.Decoder``; ``None`` removes the sink (every message to ``_deliver``)."""
        if decoder is None:
            self._decoder = None
            self._nsps = None
            self._on_packet = None
            return
        if not isinstance(decoder, (sio_packet.Decoder, msgpack_packet.Decoder)):
            raise TypeError("decoder must be a sio_packet.Decoder or a msgpack_packet.Decoder")
        if nsps is None or on_packet is None:
            raise TypeError("a sink needs its namespace map and callback")
        self._decoder = decoder
        self._msgpack = isinstance(decoder, msgpack_packet.Decoder)
        self._nsps = nsps
        self._on_packet = on_packet

    cpdef void release_upgrade(self, WSTransport transport) except *:
        """Let go of what the connection no longer needs once the upgrade is complete (called
        from ``on_ws_connected``): picows keeps the parsed upgrade request and its 101 response
        for the connection's life, and nothing reads them after the handshake; its write
        buffer shrinks to what a close frame or a pong needs."""
        transport.request = None
        transport.response = None
        if transport._write_buffer.capacity > _WRITE_BUFFER_SIZE:
            transport._write_buffer = MemoryBuffer(_WRITE_BUFFER_SIZE)

    cpdef void _deliver(self, bytes data, bint binary) except *:
        """One Engine.IO message to the session's Python path (``EngineSocket._on_packet``)."""
        if self.socket is not None:
            self.socket._on_packet(self, data, binary)

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef WSMsgType kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            if not transport.is_close_frame_sent:
                transport.send_close(WSCloseCode.OK)
            transport.disconnect()
            return
        if transport.is_close_frame_sent:
            # Closing (by us, or by picows after a protocol error such as a frame over
            # max_frame_size, whose parser may still hand over the offending frame later):
            # nothing more is delivered.
            return
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            # No extension is ever negotiated (RFC 6455 5.2: fail the connection).
            (<object>self)._protocol_error(WSCloseCode.PROTOCOL_ERROR)
            return
        if kind == WSMsgType.TEXT or kind == WSMsgType.BINARY:
            if self._fragments is not None:
                # A new message in the middle of a fragmented one.
                (<object>self)._protocol_error(WSCloseCode.PROTOCOL_ERROR)
                return
            if not frame.fin:
                self._fragments = [frame.get_payload_as_bytes()]
                self._fragments_size = frame.payload_size
                self._fragments_binary = kind == WSMsgType.BINARY
                return
            if _sinks_on and self._decoder is not None:
                if kind == WSMsgType.TEXT:
                    if self._sink_text(frame):
                        return
                elif self._sink_binary(frame):
                    return
            self._deliver(frame.get_payload_as_bytes(), kind == WSMsgType.BINARY)
        elif kind == WSMsgType.CONTINUATION:
            if self._fragments is None:
                (<object>self)._protocol_error(WSCloseCode.PROTOCOL_ERROR)
                return
            self._fragments_size += frame.payload_size
            if self._fragments_size > self.max_message_size:
                self._fragments = None
                (<object>self)._protocol_error(WSCloseCode.MESSAGE_TOO_BIG)
                return
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                data = b"".join(self._fragments)
                self._fragments = None
                # A fragmented message is rare: it takes the engine's path whatever the sink.
                self._deliver(data, self._fragments_binary)

    cdef bint _sink_text(self, WSFrame frame) except -1:
        # An Engine.IO MESSAGE ("4") holding a Socket.IO packet that is not a binary one
        # (whose attachments start the engine's attachment timer); True when it was delivered.
        cdef const char* p = frame.payload_ptr
        if (self._msgpack or frame.payload_size < 2 or p[0] != b"4" or p[1] == b"5"
                or p[1] == b"6"):
            return False
        cdef sio_packet.Decoder decoder = <sio_packet.Decoder>self._decoder
        if decoder._pending is not None:
            return False
        data = frame.get_payload_as_bytes()
        try:
            packet = decoder.add_text(data, 1)
        except ProtocolError:
            return False  # the engine's path decodes it again, and reports it
        self._dispatch(packet)
        return True

    cdef bint _sink_binary(self, WSFrame frame) except -1:
        # msgpack: every packet is one binary message.
        if not self._msgpack:
            return False
        data = frame.get_payload_as_bytes()
        try:
            packet = (<msgpack_packet.Decoder>self._decoder).add_binary(data)
        except ProtocolError:
            return False
        self._dispatch(packet)
        return True

    cdef void _dispatch(self, object packet) except *:
        cdef PyObject* sock = PyDict_GetItem(self._nsps, (<sio_packet.Packet>packet).nsp)
        if sock is NULL:
            self._on_packet(packet)
        else:
            (<object>sock)._on_packet(packet)
