# The outbound state of the sessions. A Flusher is shared by a server's outboxes and holds each
# dirty outbox until its next run; an Outbox owns its queue (frames or packets it was given:
# broadcast frames are shared with every other recipient and never mutated) and holds the
# transport and its connection, which it calls but never keeps past the transport's life (the
# next transport replaces them when the session moves to it).
from fastsio._core.sio_packet cimport Encoded

cimport cython

cpdef int direct_fd(object conn) except -2

# Queue a broadcast's packet for each of ``boxes``, in order (the room index's fan-out).
cdef void push_all(list boxes, Encoded packet, bint volatile) except *


@cython.final
cdef class FrameLog:
    # One iteration's broadcast frames, back to back: an outbox that gets only broadcasts holds a
    # range of it instead of its own queue, and sends that range as it is.
    cdef char* buf
    cdef Py_ssize_t len
    cdef Py_ssize_t cap
    cdef Py_ssize_t users          # outboxes holding a range of it
    cdef Py_ssize_t append(self, bytes frame) except -1


@cython.final
cdef class Flusher:
    cdef list _dirty               # outboxes with something queued this iteration
    cdef list _first               # of those, the ones written first (prefer)
    cdef readonly unsigned long long runs  # runs so far: an iteration's number, for the inboxes
    cdef bint _scheduled           # a run is scheduled with the loop
    cdef object _run               # self.run, bound once
    cdef public Py_ssize_t high_water        # over it a WebSocket is busy (pause_writing)
    cdef public Py_ssize_t max_queued_bytes  # past it the session is ended (overflow)
    cdef public object get_loop    # returns the running loop (the core imports no asyncio)
    cdef FrameLog _log             # this iteration's broadcast frames
    cdef FrameLog _spare           # the last iteration's, emptied, for the next one
    cdef void add(self, Outbox box) except *
    cdef void prefer(self, Outbox box) except *
    cpdef void run(self) except *


@cython.final
cdef class Outbox:
    cdef readonly Flusher flusher
    cdef public bint open          # the session takes packets (Engine.IO ready state "open")
    cdef readonly bint frames      # WebSocket mode (frames, write) or packets mode (drain)
    cdef public bint writable      # frames: the connection can still be written to
    cdef public bint paused        # frames: the connection is over its high-water mark
    cdef public bint ready         # packets: the transport can answer now (a GET waits)
    cdef bint _dirty               # in the flusher's list
    cdef bint _first               # in the flusher's list of those written first
    # None when empty; frames: one frame (bytes), or a list of them; packets: (bytes, bool)s
    cdef object _queue
    cdef Py_ssize_t _queued        # bytes in _queue, or in the range of _log
    # Frames mode, while _queue is None: what is queued is _log's bytes _log_start.._log_end
    cdef FrameLog _log
    cdef Py_ssize_t _log_start
    cdef Py_ssize_t _log_end
    cdef object _owner             # the transport: _drain() (packets), _overflow(queued_bytes)
    cdef object _conn              # frames: the connection (write, get_write_buffer_size)
    cdef int _fd                   # frames: its socket, when frames may be sent on it directly
    # While _fd >= 0: the class's own is_closing and get_write_buffer_size (unbound, shared by
    # every connection of the class), called with the connection as their one argument
    cdef object _is_closing
    cdef object _buffer_size
    cpdef list take(self)
    cpdef void clear(self)
    cpdef void detach(self)
    cpdef void schedule(self) except *
    cdef bint is_idle(self)
    cpdef void push(self, Encoded packet, bint volatile=*) except *
    cdef void push_shared(self, Encoded packet, bytes frame, bint volatile) except *
    cpdef void push_packet(self, bytes data, bint binary=*) except *
    cpdef void push_raw(self, bytes data, bint binary=*) except *
    cpdef void push_packets(self, list packets) except *
    cdef void _add(self, bytes frame) except *
    cdef void _release(self, bint keep) except *
    cdef void _add_packets(self, list packets, Py_ssize_t size) except *
    cpdef void flush(self) except *
    cdef bint _can_send_direct(self) except -1
    cdef bint _send_direct(self, object q) except -1
    cdef void _send_range(self, FrameLog log, Py_ssize_t start, Py_ssize_t end) except *
