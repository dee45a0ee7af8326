# cython: language_level=3
"""The outbound side of every Engine.IO session: one :class:`Outbox` per session, one
:class:`Flusher` per server.

An outbox owns what is queued for its connection and the connection's flow-control state. It
works in one of two modes, chosen by the transport that serves the session:

- **frames** (WebSocket): packets are queued as ready WebSocket frames (a broadcast's frame is
  shared by every recipient) and leave in one ``write`` per loop iteration;
- **packets** (long-polling, or any transport that builds its own responses): packets are queued
  as ``(bytes, is_binary)`` and handed to the transport's ``_drain`` once per iteration
  while it can answer (a GET is waiting).

Either way it keeps the busy state (volatile packets skip a busy connection) and the
``max_queued_bytes`` bound (past it, the transport's ``overflow`` callback ends the session).

The flusher runs every outbox that got something during an iteration as one ready callback: the
frames written in one iteration leave together, and latency does not grow. The core imports no
asyncio: the engine gives the flusher a function that returns the running loop.
"""
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_SIZE

from fastsio._core.eio_packet cimport ws_frame
from fastsio._core.sio_packet cimport Encoded


cdef class Flusher:
    """Runs the outboxes that have something queued, once per loop iteration."""

    def __init__(self, Py_ssize_t high_water=64 * 1024,
                 Py_ssize_t max_queued_bytes=16 * 1024 * 1024, object get_loop=None):
        self._dirty = []
        self._scheduled = False
        self.high_water = high_water
        self.max_queued_bytes = max_queued_bytes
        self.get_loop = get_loop
        self._run = self.run

    cdef void add(self, Outbox box) except *:
        box._dirty = True
        self._dirty.append(box)
        if not self._scheduled:
            self._scheduled = True
            self.get_loop().call_soon(self._run)

    cpdef void run(self) except *:
        cdef list dirty = self._dirty
        cdef Outbox box
        self._scheduled = False
        self._dirty = []
        for box in dirty:
            box._dirty = False
            box.flush()


cdef class Outbox:
    """What is queued for one session, and its flow-control state (see the module docstring)."""

    def __init__(self, Flusher flusher not None):
        self.flusher = flusher
        self.open = False
        self.frames = False
        self.writable = False
        self.paused = False
        self.ready = False
        self._dirty = False
        self._queue = None
        self._queued = 0

    # -- the transport's side --------------------------------------------------------------
    def use_frames(self, object owner, object conn):
        """Serve a WebSocket: frames go to ``conn.write(bytes)``; ``conn.get_write_buffer_size()``
        is what the connection still holds, checked while it is paused, and
        ``owner._overflow(queued)`` is called (once) when that passes ``max_queued_bytes``.
        Packets already queued become frames. (Objects, not bound methods: an idle session
        keeps no per-connection method objects alive.)"""
        cdef list pending = self._queue if not self.frames else None
        self.frames = True
        self.writable = True
        self.ready = False
        self._owner = owner
        self._conn = conn
        self._queue = None
        self._queued = 0
        if pending:
            self.push_packets(pending)

    def use_packets(self, object owner):
        """Serve a transport that builds its own responses: ``owner._drain()`` is called once
        per iteration while ``ready`` and something is queued (it takes the packets with
        :meth:`take`); ``owner._overflow(queued)`` when more than ``max_queued_bytes`` wait
        while it is not ready."""
        self.frames = False
        self.writable = False
        self._owner = owner
        self._conn = None

    cpdef list take(self):
        """Packets mode: everything queued, as ``(bytes, is_binary)`` (the outbox is empty
        afterwards)."""
        cdef list q = self._queue
        self._queue = None
        self._queued = 0
        if q is None:
            return []
        if self.frames:
            raise RuntimeError("take() on a WebSocket outbox")
        return q

    cpdef void clear(self):
        """Drop what is queued (the connection is gone)."""
        self._queue = None
        self._queued = 0

    cpdef void detach(self):
        """The session is over: forget the transport and its connection (what is queued stays,
        for a polling client's last GET to take)."""
        self.open = False
        self.writable = False
        self.ready = False
        self._owner = None
        self._conn = None

    cpdef void schedule(self) except *:
        """Run this outbox at the end of the iteration (a transport became ready)."""
        if not self._dirty:
            self.flusher.add(self)

    @property
    def idle(self):
        """Open, and a packet sent now would go out at once: nothing queued and not over the
        high-water mark (WebSocket), or a GET waiting and no answer being prepared (polling).
        A volatile packet is dropped otherwise."""
        return self.is_idle()

    @property
    def queued(self):
        """Bytes queued here (not counting what the connection itself holds)."""
        return self._queued

    @property
    def has_queued(self):
        return self._queue is not None and PyList_GET_SIZE(self._queue) > 0

    # -- the sending side ------------------------------------------------------------------
    cdef bint is_idle(self):
        if not self.open:
            return False
        if self.frames:
            return self.writable and self._queue is None and not self.paused
        return self.ready and not self._dirty

    cpdef void push(self, Encoded packet, bint volatile=False) except *:
        """Queue an encoded packet (a broadcast calls this once per recipient)."""
        if not self.open or (volatile and not self.is_idle()):
            return
        if self.frames:
            if self.writable:
                self._add(packet.get_frame())
        else:
            self._add_packets(packet.get_packets(), packet.size)

    cpdef void push_packet(self, bytes data, bint binary=False) except *:
        """Queue one Engine.IO packet (text packets carry their type digit)."""
        if not self.open:
            return
        self.push_raw(data, binary)

    cpdef void push_raw(self, bytes data, bint binary=False) except *:
        """Like :meth:`push_packet`, whether or not the session is open (the handshake, the
        session's own close packets)."""
        if self.frames:
            if self.writable:
                self._add(ws_frame(data, binary))
        else:
            self._add_packets([(data, binary)], PyBytes_GET_SIZE(data))

    cpdef void push_packets(self, list packets) except *:
        """Queue ``(bytes, is_binary)`` packets, in order."""
        cdef bytes data
        cdef object binary
        cdef Py_ssize_t size = 0
        if self.frames:
            if self.writable:
                for data, binary in packets:
                    self._add(ws_frame(data, binary))
            return
        for data, _ in packets:
            size += PyBytes_GET_SIZE(data)
        self._add_packets(list(packets), size)

    cdef void _add(self, bytes frame) except *:
        if self._queue is None:
            self._queue = [frame]
        else:
            self._queue.append(frame)
        self._queued += PyBytes_GET_SIZE(frame)
        if not self._dirty:
            self.flusher.add(self)

    cdef void _add_packets(self, list packets, Py_ssize_t size) except *:
        if self._queue is None:
            self._queue = list(packets)
        else:
            self._queue.extend(packets)
        self._queued += size
        if self.ready:
            if not self._dirty:
                self.flusher.add(self)
        elif self._queued > self.flusher.max_queued_bytes and self._owner is not None:
            # A client that stopped polling must not grow memory without bound.
            self._owner._overflow(self._queued)

    cpdef void flush(self) except *:
        """Write (frames) or drain (packets) what is queued now."""
        cdef list q
        cdef Py_ssize_t size
        if not self.frames:
            if self._owner is not None:
                self._owner._drain()
            return
        q = self._queue
        self._queue = None
        self._queued = 0
        if q is None or not self.writable:
            return
        self._conn.write(q[0] if PyList_GET_SIZE(q) == 1 else b"".join(q))
        if self.paused:
            size = self._conn.get_write_buffer_size()
            if size > self.flusher.max_queued_bytes:
                # A client that stopped reading must not grow memory without bound.
                self.writable = False
                self._owner._overflow(size)
