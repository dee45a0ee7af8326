# The inbound side of a WebSocket session. An Inbox is the picows listener of one connection; it
# owns the fragments of a message being received, and holds (never owns) the packet sink the
# engine gives it: the session's decoder, its namespace map and the Python callback for a packet
# no namespace of the map takes. Without a sink, every message goes to ``_deliver`` (Python).
from picows.picows cimport WSListener, WSTransport, WSFrame

from fastsio._core.outbox cimport Outbox

cdef class Inbox(WSListener):
    cdef public object socket             # the Engine.IO session (engine.socket.EngineSocket)
    cdef public Outbox _box               # the session's outbox, once this is its transport
    cdef unsigned long long _run          # the flusher's run count at this session's last packet
    cdef public int direct_fd             # outbox.direct_fd of the connection (-2: not known)
    cdef public Py_ssize_t max_message_size  # a message (fragments together) over it: close 1009
    cdef list _fragments                  # payloads of the message being received, or None
    cdef bint _fragments_binary
    cdef Py_ssize_t _fragments_size
    cdef object _decoder                  # sink: sio_packet.Decoder or msgpack_packet.Decoder
    cdef bint _msgpack                    # sink: the decoder takes binary messages
    cdef dict _nsps                       # sink: namespace name -> socket (``_on_packet``)
    cdef object _on_packet                # sink: a packet for a namespace not in _nsps
    cpdef void set_sink(self, object decoder, dict nsps, object on_packet) except *
    cpdef void _deliver(self, bytes data, bint binary) except *
    cdef bint _sink_text(self, WSFrame frame) except -1
    cdef bint _sink_binary(self, WSFrame frame) except -1
    cdef void _dispatch(self, object packet) except *
