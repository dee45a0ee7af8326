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

**Who is written first.** Outboxes are written in the order they got their first frame of the
iteration, except the ones :meth:`Flusher.prefer` names, which go before all others: the inbox
prefers its connection when it handles a second packet from it in one iteration while the
outbox holds what the first one queued. (Iterations are counted in flusher runs: one that wrote
nothing is not seen, so a packet after it may count as a second one; the flusher is not woken
for that, since an outbox with nothing queued is not preferred.) Such a client
is pipelining (it has several requests in flight), so its replies (acks) are what its next
requests wait on: written first, they let those requests arrive while the rest of the
iteration's writes (a broadcast to everyone, say) are still being made, and the server is not
left idle waiting for them. A client with one request in flight keeps the plain order, in which
a broadcast it caused reaches the others before its own ack: the latency of one broadcast stays
what it was. (bench/README.md, "Replies first for a pipelining client", has the numbers.)

**Direct writes.** On a plain (not TLS) TCP or Unix socket of uvloop or asyncio, a WebSocket
outbox hands its frames to the kernel itself, with one ``send`` (sendv.h: several small
frames are copied into one buffer on the stack first, larger ones go as one ``sendmsg``), when
the transport holds nothing unwritten and is not closing; what the
kernel does not take goes to ``transport.write``, and so does everything on any other
transport. The transports do the same when their buffer is empty; doing it here saves the
Python call and the transport's buffer handling for every recipient (about 200 instructions
per delivery, bench/fanout_instructions.py), which is most of what a delivery costs beside the
system call. picows sends its own frames the same way. The order of bytes on a connection
cannot change: nothing is sent directly while the transport still has bytes to write.

**The frame log.** A broadcast's frame (up to 16 KiB) is copied once into the flusher's frame
log, and an outbox with nothing else queued holds a range of the log instead of a queue of its
own: the next broadcast of the iteration, if the outbox gets it too, extends the range (it
follows in the log), and the flush sends the range as it is, with one ``send`` and no
per-recipient list or copy. Whatever breaks that (a frame of the outbox's own, a broadcast to a
room the outbox is not in, then one it is in) turns the range into the queue's first frame, and
the outbox goes on the usual way. Each run of the flusher starts a new log, so what callbacks
broadcast during the run does not land among ranges being sent, and reuses the last one once
every range of it is sent or dropped (freed instead when a burst grew it past 1 MiB).
(bench/README.md, "The frame log", has the numbers.)
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyObject
from libc.string cimport memcpy

from fastsio._core.eio_packet cimport ws_frame
from fastsio._core.sio_packet cimport Encoded


cdef extern from "Python.h":
    object PyObject_CallOneArg(object func, object arg)


cdef extern from "sendv.h":
    # at most 64 buffers (FASTSIO_SENDV_MAX): more take the transport's path
    long long fastsio_sendv(int fd, const char** bufs, const size_t* lens, int n) nogil


# The transports whose get_write_buffer_size() counts every byte they have not written yet and
# whose socket may be written to directly while that is 0 (by class: a subclass may buffer more).
cdef frozenset _DIRECT = frozenset({
    ("uvloop.loop", "TCPTransport"),
    ("uvloop.loop", "UnixTransport"),
    ("asyncio.selector_events", "_SelectorSocketTransport"),
})


# class -> (is_closing, get_write_buffer_size) of the classes in _DIRECT, unbound: a check before
# each direct send calls them with the connection as their argument, which skips looking the
# method up on the instance (about 200 of the 500 instructions the two cost per flushed
# connection: 13 per delivery at 15 deliveries per flush, bench/fanout_instructions.py).
cdef dict _CHECKS = {}


cdef tuple _checks_of(object cls):
    cdef object found = _CHECKS.get(cls)
    if found is None:
        found = (cls.is_closing, cls.get_write_buffer_size)
        _CHECKS[cls] = found
    return <tuple>found


cpdef int direct_fd(object conn) except -2:
    """The socket's file descriptor when frames may be sent on ``conn`` directly, else -1."""
    cls = type(conn)
    # The classes named are plain sockets only: TLS on uvloop and asyncio is an
    # _SSLProtocolTransport over them, which an application never gets the plain one of.
    if (getattr(cls, "__module__", None), getattr(cls, "__qualname__", None)) not in _DIRECT:
        return -1
    sock = conn.get_extra_info("socket")
    if sock is None:
        return -1
    try:
        fd = sock.fileno()
    except (AttributeError, OSError, ValueError):
        return -1
    return fd if isinstance(fd, int) and fd >= 0 else -1


# A broadcast frame up to this size goes into the flusher's frame log (larger ones are shared
# as they are: copying them would cost more than the per-recipient work it saves).
cdef Py_ssize_t _LOG_FRAME_MAX = 16 * 1024
# A frame log grown past this (a burst of broadcasts in one iteration) is freed after its run,
# not kept for the next iteration.
cdef Py_ssize_t _LOG_KEEP_MAX = 1024 * 1024


cdef class FrameLog:
    """One iteration's broadcast frames, back to back (see "The frame log" above)."""

    def __cinit__(self):
        self.buf = NULL
        self.len = 0
        self.cap = 0
        self.users = 0

    def __dealloc__(self):
        PyMem_Free(self.buf)

    cdef Py_ssize_t append(self, bytes frame) except -1:
        """Copy ``frame`` to the end; returns where it starts."""
        cdef Py_ssize_t size = PyBytes_GET_SIZE(frame)
        cdef Py_ssize_t start = self.len
        cdef Py_ssize_t cap = self.cap
        cdef char* buf
        if start + size > cap:
            cap = max(4096, cap * 2, start + size)
            buf = <char*>PyMem_Realloc(self.buf, <size_t>cap)
            if buf is NULL:
                raise MemoryError()
            self.buf = buf
            self.cap = cap
        memcpy(self.buf + start, PyBytes_AS_STRING(frame), <size_t>size)
        self.len = start + size
        return start


cdef void push_all(list boxes, Encoded packet, bint volatile) except *:
    # ``boxes`` may grow while this runs (never shrinks: see RoomIndex._boxes): the outboxes
    # there when it started get the packet, each once.
    cdef Py_ssize_t k, n = PyList_GET_SIZE(boxes)
    cdef bytes frame
    cdef Outbox box
    cdef Flusher flusher
    cdef FrameLog log = None
    cdef Py_ssize_t size, start = -1
    cdef unsigned long long runs = 0
    if n == 0:
        return
    frame = packet.get_frame()
    size = PyBytes_GET_SIZE(frame)
    if n < 2 or size > _LOG_FRAME_MAX:
        for k in range(n):
            (<Outbox>PyList_GET_ITEM(boxes, k)).push_shared(packet, frame, volatile)
        return
    flusher = (<Outbox>PyList_GET_ITEM(boxes, 0)).flusher
    for k in range(n):
        box = <Outbox>PyList_GET_ITEM(boxes, k)
        if not box.open or (volatile and not box.is_idle()):
            continue
        if not box.frames:
            box._add_packets(packet.get_packets(), packet.size)
            continue
        if not box.writable:
            continue
        if box._queue is None and box.flusher is flusher:
            if log is None or flusher.runs != runs:
                # First use, or a callback ran the flusher meanwhile: its log is another one.
                log = flusher._log
                runs = flusher.runs
                start = -1
            if start < 0:
                start = log.append(frame)
            if box._log is None:
                box._log = log
                box._log_start = start
                box._log_end = start + size
                box._queued += size
                log.users += 1
                if not box._dirty:
                    flusher.add(box)
                continue
            if box._log is log and box._log_end == start:
                box._log_end += size
                box._queued += size
                continue
        box._add(frame)


cdef class Flusher:
    """Runs the outboxes that have something queued, once per loop iteration."""

    def __init__(self, Py_ssize_t high_water=64 * 1024,
                 Py_ssize_t max_queued_bytes=16 * 1024 * 1024, object get_loop=None):
        self._dirty = []
        self._first = []
        self._scheduled = False
        self.runs = 0
        self.high_water = high_water
        self.max_queued_bytes = max_queued_bytes
        self.get_loop = get_loop
        self._run = self.run
        self._log = FrameLog()
        self._spare = None

    @property
    def log_capacity(self):
        """Bytes allocated for frame logs (this iteration's and the spare one)."""
        return self._log.cap + (self._spare.cap if self._spare is not None else 0)

    cdef void add(self, Outbox box) except *:
        box._dirty = True
        self._dirty.append(box)
        if not self._scheduled:
            self._scheduled = True
            self.get_loop().call_soon(self._run)

    cdef void prefer(self, Outbox box) except *:
        # Write ``box`` before the others in this run, if it has something queued (a frames
        # outbox only: it is flushed twice, and a second flush of one finds nothing queued).
        if not box.frames or not box._dirty:
            return
        if not box._first:
            box._first = True
            self._first.append(box)

    cpdef void run(self) except *:
        cdef list dirty = self._dirty
        cdef list first = self._first
        cdef Outbox box
        cdef FrameLog log = self._log
        self._scheduled = False
        self.runs += 1
        self._dirty = []
        if log.len:
            # Ranges taken while this runs (a callback broadcasting) go to a log of their own.
            self._log = self._spare if self._spare is not None else FrameLog()
            self._spare = None
        else:
            log = None
        cdef Py_ssize_t i = 0, n = PyList_GET_SIZE(dirty)
        cdef Outbox current = None
        try:
            if PyList_GET_SIZE(first):
                self._first = []
                # These stay marked dirty while they are written: they are in ``dirty`` too,
                # where what a callback queues for them meanwhile goes out with the second pass.
                for box in first:
                    box._first = False
                    current = box
                    box.flush()
            while i < n:
                box = <Outbox>PyList_GET_ITEM(dirty, i)
                i += 1
                box._dirty = False
                current = box
                box.flush()
        except BaseException:
            # One outbox's failure (its owner's callback raising) must not strand the others:
            # those not written yet are still marked dirty, so nothing would ever queue them
            # again. They go to the next run (not the one that failed: it would fail again at
            # every iteration); the error goes on to the loop's handler.
            for box in first:
                box._first = False
            while i < n:
                box = <Outbox>PyList_GET_ITEM(dirty, i)
                i += 1
                if box is current:
                    box._dirty = False
                else:
                    self._dirty.append(box)
            if PyList_GET_SIZE(self._dirty) and not self._scheduled:
                self._scheduled = True
                self.get_loop().call_soon(self._run)
            raise
        if log is not None and log.users == 0 and log.cap <= _LOG_KEEP_MAX:
            # Every range was sent or dropped: the next iteration reuses the buffer. (One still
            # held keeps its log alive until it is released.)
            log.len = 0
            self._spare = log


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
        self._first = False
        self._queue = None
        self._queued = 0
        self._log = None
        self._fd = -1
        self._is_closing = None
        self._buffer_size = None

    # -- the transport's side --------------------------------------------------------------
    def use_frames(self, object owner, object conn, int fd=-2):
        """Serve a WebSocket: frames go to ``conn.write(bytes)``; ``conn.get_write_buffer_size()``
        is what the connection still holds, checked while it is paused, and
        ``owner._overflow(queued)`` is called (once) when that passes ``max_queued_bytes``.
        Packets already queued become frames. (Objects, not bound methods: an idle session
        keeps no per-connection method objects alive.) Frames go to ``conn``'s socket directly
        when ``conn`` is a plain socket transport (see the module docstring): ``fd`` is what
        :func:`direct_fd` says of it, when the caller knows already (-2: find out)."""
        cdef list pending = self._queue if not self.frames else None
        self.frames = True
        self.writable = True
        self.ready = False
        self._owner = owner
        self._conn = conn
        self._fd = direct_fd(conn) if fd == -2 else fd
        if self._fd >= 0:
            self._is_closing, self._buffer_size = _checks_of(type(conn))
        if self._log is not None:
            self._release(False)
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
        self._fd = -1

    cpdef list take(self):
        """Packets mode: everything queued, as ``(bytes, is_binary)`` (the outbox is empty
        afterwards)."""
        cdef object q = self._queue
        if self._log is not None:
            self._release(False)
        self._queue = None
        self._queued = 0
        if q is None:
            return []
        if self.frames:
            raise RuntimeError("take() on a WebSocket outbox")
        return <list>q

    cpdef void clear(self):
        """Drop what is queued (the connection is gone)."""
        if self._log is not None:
            self._release(False)
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
        self._fd = -1

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
        q = self._queue
        if self._log is not None:
            return True
        return q is not None and (type(q) is bytes or PyList_GET_SIZE(<list>q) > 0)

    # -- the sending side ------------------------------------------------------------------
    cdef bint is_idle(self):
        if not self.open:
            return False
        if self.frames:
            return (self.writable and self._queue is None and self._log is None
                    and not self.paused)
        return self.ready and not self._dirty

    cpdef void push(self, Encoded packet, bint volatile=False) except *:
        """Queue an encoded packet."""
        self.push_shared(packet, packet.get_frame() if self.frames else None, volatile)

    cdef void push_shared(self, Encoded packet, bytes frame, bint volatile) except *:
        # What a broadcast calls for each recipient, with the packet's frame fetched once.
        if not self.open or (volatile and not self.is_idle()):
            return
        if self.frames:
            if self.writable:
                self._add(frame)
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
        # Frames mode: _queue is one frame (bytes) until a second one comes, then a list; most
        # connections get one frame per iteration, and then no list is made.
        cdef object q
        if self._log is not None:
            self._release(True)
        q = self._queue
        if q is None:
            self._queue = frame
        elif type(q) is bytes:
            self._queue = [q, frame]
        else:
            (<list>q).append(frame)
        self._queued += PyBytes_GET_SIZE(frame)
        if not self._dirty:
            self.flusher.add(self)

    cdef void _release(self, bint keep) except *:
        # Give up the range of the frame log, keeping its bytes as the queue's first frame
        # (``keep``: more is being queued behind them) or dropping them (the queue is dropped).
        cdef FrameLog log = self._log
        if keep:
            self._queue = PyBytes_FromStringAndSize(
                log.buf + self._log_start, self._log_end - self._log_start)
        self._log = None
        log.users -= 1

    cdef void _add_packets(self, list packets, Py_ssize_t size) except *:
        if self._queue is None:
            self._queue = list(packets)
        else:
            (<list>self._queue).extend(packets)
        self._queued += size
        if self.ready:
            if not self._dirty:
                self.flusher.add(self)
        elif self._queued > self.flusher.max_queued_bytes and self._owner is not None:
            # A client that stopped polling must not grow memory without bound.
            self._owner._overflow(self._queued)

    cpdef void flush(self) except *:
        """Write (frames) or drain (packets) what is queued now."""
        cdef object q
        cdef Py_ssize_t size
        cdef bytes data
        if not self.frames:
            if self._owner is not None:
                self._owner._drain()
            return
        cdef FrameLog log = self._log
        q = self._queue
        self._queue = None
        self._queued = 0
        if log is not None:
            self._log = None
            if self.writable:
                self._send_range(log, self._log_start, self._log_end)
            log.users -= 1
        elif q is None or not self.writable:
            return
        elif not (self._fd >= 0 and self._send_direct(q)):
            data = <bytes>q if type(q) is bytes else b"".join(<list>q)
            self._conn.write(data)
        if self.paused:
            size = self._conn.get_write_buffer_size()
            if size > self.flusher.max_queued_bytes:
                # A client that stopped reading must not grow memory without bound.
                self.writable = False
                self._owner._overflow(size)

    cdef bint _can_send_direct(self) except -1:
        # Not while closing (the descriptor may be gone), nor while bytes before these are still
        # waiting in the transport.
        if self._fd < 0:
            return False
        conn = self._conn
        return (not PyObject_CallOneArg(self._is_closing, conn)
                and not PyObject_CallOneArg(self._buffer_size, conn))

    cdef void _send_range(self, FrameLog log, Py_ssize_t start, Py_ssize_t end) except *:
        # The range's bytes are the log's: what the kernel does not take is copied out for the
        # transport (the log is reused once every range of it is released).
        cdef long long sent = -1
        cdef const char* buf = log.buf + start
        cdef size_t size = <size_t>(end - start)
        if self._can_send_direct():
            sent = fastsio_sendv(self._fd, &buf, &size, 1)
        if sent < 0:
            sent = 0
        if <size_t>sent < size:
            self._conn.write(PyBytes_FromStringAndSize(buf + sent, <Py_ssize_t>(size - sent)))

    cdef bint _send_direct(self, object q) except -1:
        """Send the frames ``q`` (bytes, or a list of them) on the socket itself; False when
        nothing was sent and all of it is still the caller's to write. A partial send hands
        the rest to the transport."""
        cdef const char* bufs[64]
        cdef size_t lens[64]
        cdef Py_ssize_t n, k, total = 0
        cdef long long sent
        cdef PyObject* item
        conn = self._conn
        if not self._can_send_direct():
            return False
        if type(q) is bytes:
            n = 1
            bufs[0] = PyBytes_AS_STRING(<bytes>q)
            lens[0] = <size_t>PyBytes_GET_SIZE(<bytes>q)
            total = PyBytes_GET_SIZE(<bytes>q)
        else:
            n = PyList_GET_SIZE(<list>q)
            if n > 64:
                return False
            for k in range(n):
                item = PyList_GET_ITEM(<list>q, k)
                bufs[k] = PyBytes_AS_STRING(<bytes>item)
                lens[k] = <size_t>PyBytes_GET_SIZE(<bytes>item)
                total += PyBytes_GET_SIZE(<bytes>item)
        sent = fastsio_sendv(self._fd, bufs, lens, <int>n)
        if sent < 0:
            return False
        if sent < total:
            data = <bytes>q if type(q) is bytes else b"".join(<list>q)
            conn.write(data[sent:])
        return True
