# cython: language_level=3
"""The inbound side of a WebSocket session: the picows listener, in the core.

picows calls ``on_ws_frame`` (a ``cpdef`` of its ``WSListener``) at C level, so a frame costs no
Python until it has become a Socket.IO packet. An :class:`Inbox` checks what RFC 6455 leaves to
the application (the close handshake, reserved bits, fragments and the message-size bound), and
then either

- hands the message to its sink, when the engine has set one (an Engine.IO v4 session whose
  client decodes as usual: no per-packet counters, no trace, no wrapped ``on_message``): an
  Engine.IO MESSAGE is decoded here and its packet goes to the namespace's socket with one
  Python call: an EVENT to ``socket._events._deliver_event(socket, data, id)`` (the namespace's
  dispatch, unless the socket has catch-all listeners or middlewares), any other packet to
  ``socket._on_packet(packet)`` (or to the sink's callback when the namespace is not joined: a
  CONNECT, or a protocol violation); or
- calls ``_deliver(data, binary)``, the engine's path (Python): every other Engine.IO packet
  (pong, close, upgrade, noop), binary attachments, a message that does not decode (the engine's
  path decodes it again and reports the error), Engine.IO revision 3, probes.

The core imports no asyncio and runs no user code: the engine's Python subclass
(``engine.websocket.WebSocketTransport``) owns the outbound side and the lifecycle callbacks.
"""
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from picows.picows cimport (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
)

from fastsio._core cimport msgpack_packet, sio_packet
from fastsio._core.outbox cimport Outbox
from fastsio._core.errors import ProtocolError
from fastsio._core.sio_packet import EVENT

cdef int _EVENT = EVENT  # a C int: compared with Packet.type on every packet

# Off while a per-packet trace is on (fastsio.trace.refresh): every message then takes the
# engine's path, which traces it, on the connections that have a sink too.
cdef bint _sinks_on = True


def use_sinks(bint on):
    """Whether the inboxes deliver through their sinks (default True)."""
    global _sinks_on
    _sinks_on = on


cdef class Inbox(WSListener):

    def __cinit__(self):
        self.socket = None
        self._box = None
        self._run = <unsigned long long>-1
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
        cdef Outbox box = self._box
        if box is not None:
            # A second packet in one iteration: the client is pipelining, its replies are
            # written first (outbox.pyx, "Who is written first").
            if self._run == box.flusher.runs:
                box.flusher.prefer(box)
            else:
                self._run = box.flusher.runs
        cdef sio_packet.Packet p = <sio_packet.Packet>packet
        cdef PyObject* sock = PyDict_GetItem(self._nsps, p.nsp)
        if sock is NULL:
            self._on_packet(packet)
            return
        if p.type == _EVENT:
            # Straight to the namespace's dispatch when the socket names one (``_events``: it
            # has no catch-all listener or middleware to run first), one Python frame less.
            events = (<object>sock)._events
            if events is not None:
                events._deliver_event(<object>sock, p.data, p.id)
                return
        (<object>sock)._on_packet(packet)
