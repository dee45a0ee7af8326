# cython: language_level=3
"""The recovery log of one namespace: a ring buffer of recently broadcast packets.

Each entry is the encoded packet (Engine.IO-ready parts, the first one already stamped with its
offset) plus the room filter it was sent with. Entries are addressed by a sequence number that
only grows; the offset a client sees is ``<instance>-<seq>``, where ``instance`` is random per log,
so an offset from another namespace, process or run never names one of our packets. A log holds
the packets of one parser (``msgpack``: ``socket.io-msgpack-parser``'s, else the JSON one's).
"""
from cpython.bytes cimport PyBytes_GET_SIZE

from fastsio._core.debug cimport FASTSIO_DEBUG
from fastsio._core cimport msgpack_packet, sio_packet

import os


cdef class PacketLog:
    """Bounded by ``max_packets`` and ``max_bytes``; the oldest entries are evicted first."""

    def __init__(self, Py_ssize_t max_packets=10000, Py_ssize_t max_bytes=8 * 1024 * 1024,
                 bytes instance=None, bint msgpack=False):
        if max_packets < 1:
            raise ValueError("max_packets must be at least 1")
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self.instance = instance if instance is not None else os.urandom(8).hex().encode()
        self.msgpack = msgpack
        self._prefix = self.instance + b"-"
        self._parts = [None] * max_packets
        self._rooms = [None] * max_packets
        self._except = [None] * max_packets
        self._sizes = [0] * max_packets
        self._first = 0
        self._count = 0
        self._bytes = 0
        self.next_seq = 1

    @property
    def count(self):
        """Entries held now."""
        return self._count

    @property
    def size(self):
        """Bytes held now (the encoded packets)."""
        return self._bytes

    @property
    def oldest_seq(self):
        """Sequence number of the oldest entry held (``next_seq`` when empty)."""
        return self.next_seq - self._count

    cpdef tuple append(self, list parts, object rooms, object except_rooms):
        """Log an EVENT (``parts`` as :func:`sio_packet.encode` made them) and stamp its offset.

        Returns ``(seq, stamped_parts)``; ``parts`` is left unchanged. An entry larger than
        ``max_bytes`` is not kept, but its sequence number is used, so any session that missed
        it can no longer be served.
        """
        cdef unsigned long long seq = self.next_seq
        cdef bytes offset = self._prefix + str(seq).encode()
        cdef list stamped = list(parts)
        cdef Py_ssize_t size = 0
        cdef Py_ssize_t slot
        if self.msgpack:
            stamped[0] = msgpack_packet.stamp_offset(<bytes>parts[0], offset)
        else:
            stamped[0] = sio_packet.stamp_offset(<bytes>parts[0], offset)
        for p in stamped:
            size += PyBytes_GET_SIZE(<bytes>p)
        self.next_seq = seq + 1
        if size > self.max_bytes:
            self._evict_all()
            return seq, stamped
        while self._count and (
            self._count == self.max_packets or self._bytes + size > self.max_bytes
        ):
            self._evict_oldest()
        slot = (self._first + self._count) % self.max_packets
        self._parts[slot] = stamped
        self._rooms[slot] = rooms
        self._except[slot] = except_rooms
        self._sizes[slot] = size
        self._count += 1
        self._bytes += size
        if FASTSIO_DEBUG:
            assert self._bytes <= self.max_bytes and self._count <= self.max_packets
        return seq, stamped

    cdef void _evict_oldest(self):
        cdef Py_ssize_t slot = self._first
        self._bytes -= <Py_ssize_t>self._sizes[slot]
        self._parts[slot] = None
        self._rooms[slot] = None
        self._except[slot] = None
        self._sizes[slot] = 0
        self._first = (slot + 1) % self.max_packets
        self._count -= 1

    cdef void _evict_all(self):
        while self._count:
            self._evict_oldest()

    cpdef long long parse_offset(self, object offset):
        """The sequence number an offset of this log names, or -1 for anything else."""
        cdef bytes raw
        if type(offset) is not str:
            return -1
        raw = (<str>offset).encode("utf-8", "replace")
        if not raw.startswith(self._prefix):
            return -1
        digits = raw[len(self._prefix):]
        if not digits or len(digits) > 19 or not digits.isdigit():
            return -1
        cdef long long seq = int(digits)
        if seq < 1 or <unsigned long long>seq >= self.next_seq:
            return -1
        return seq

    cpdef bint can_serve(self, long long after):
        """True when every entry after ``after`` is still held (nothing missed was evicted)."""
        if after < 0 or <unsigned long long>after >= self.next_seq:
            return after >= 0 and <unsigned long long>after == self.next_seq - 1
        return <unsigned long long>after + 1 >= self.next_seq - self._count

    cpdef list replay(self, long long after, object rooms):
        """Parts of every entry after ``after`` meant for a socket in ``rooms``, in order.

        The caller checks :meth:`can_serve` first; here an unservable ``after`` raises.
        """
        if not self.can_serve(after):
            raise ValueError("offset cannot be served")
        cdef list out = []
        cdef unsigned long long oldest = self.next_seq - self._count
        cdef unsigned long long seq = <unsigned long long>after + 1
        cdef Py_ssize_t slot
        cdef object want
        cdef object avoid
        while seq < self.next_seq:
            slot = (self._first + <Py_ssize_t>(seq - oldest)) % self.max_packets
            want = self._rooms[slot]
            avoid = self._except[slot]
            if (not want or not want.isdisjoint(rooms)) and (not avoid or avoid.isdisjoint(rooms)):
                out.append(self._parts[slot])
            seq += 1
        return out

    def offset_of(self, unsigned long long seq):
        """The offset string a client sees for ``seq``."""
        return (self._prefix + str(seq).encode()).decode("ascii")
