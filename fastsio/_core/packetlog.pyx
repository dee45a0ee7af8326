# cython: language_level=3
"""The recovery log of one namespace: a ring buffer of recently broadcast packets.

Each entry is the encoded packet (Engine.IO-ready parts, the first one already stamped with its
offset) plus the room filter it was sent with. Entries are addressed by a sequence number that
only grows; the offset a client sees is ``<instance><seq>``: ``instance`` is 8 digits holding 48
random bits per log, so an offset from another namespace, process or run never names one of our
packets (unless two logs drew the same bits: odds of 2**-48 for a pair), and ``seq`` follows it
in base 64 without leading zeros. Both are written with the URL-safe base-64 digits
``0-9A-Za-z-_`` (values 0 to 63, in that order), which need no escaping in JSON: the offset of
the 1000th packet is ``instance + "Fe"``, 10 characters on every packet a broadcast writes where
``<16 hex digits>-<decimal>`` took 21. A log holds the packets of one parser (``msgpack``:
``socket.io-msgpack-parser``'s, else the JSON one's).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.limits cimport LLONG_MAX
from libc.string cimport memcmp, memcpy

from fastsio._core.debug cimport FASTSIO_DEBUG
from fastsio._core cimport msgpack_packet, sio_packet

import os

# Digit values 0..63, and back: -1 for a byte that is not a digit (every non-ASCII byte included).
cdef const char* _DIGITS = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
cdef signed char _VALUES[256]
for _v in range(256):
    _VALUES[_v] = -1
for _v in range(64):
    _VALUES[<unsigned char>_DIGITS[_v]] = _v


cdef inline Py_ssize_t _put_seq(char* out, unsigned long long seq) noexcept:
    """Writes ``seq`` (at least 1) in base 64, most significant digit first; returns the length."""
    cdef char rev[SEQ_DIGITS]
    cdef Py_ssize_t n = 0
    cdef Py_ssize_t k
    while seq:
        rev[n] = _DIGITS[seq & 63]
        seq >>= 6
        n += 1
    for k in range(n):
        out[k] = rev[n - 1 - k]
    return n


cdef bint _is_instance(bytes instance):
    cdef const char* p = PyBytes_AS_STRING(instance)
    cdef Py_ssize_t k
    if PyBytes_GET_SIZE(instance) != INSTANCE_LEN:
        return False
    for k in range(INSTANCE_LEN):
        if _VALUES[<unsigned char>p[k]] < 0:
            return False
    return True


cdef bytes _random_instance():
    cdef bytes raw = os.urandom(6)
    cdef const unsigned char* r = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef unsigned long long bits = 0
    cdef char out[INSTANCE_LEN]
    cdef int k
    for k in range(6):
        bits = (bits << 8) | r[k]
    for k in range(INSTANCE_LEN):
        out[INSTANCE_LEN - 1 - k] = _DIGITS[bits & 63]
        bits >>= 6
    return PyBytes_FromStringAndSize(out, INSTANCE_LEN)


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
        if instance is None:
            instance = _random_instance()
        elif not _is_instance(instance):
            # Fixed length, so that no separator is needed before the sequence number; given
            # (not random) only to name the same log again, as ``log.instance`` spells it.
            raise ValueError(f"instance must be {INSTANCE_LEN} digits of 0-9A-Za-z-_")
        self.instance = instance
        self.msgpack = msgpack
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
        cdef char offset[INSTANCE_LEN + SEQ_DIGITS]
        memcpy(offset, PyBytes_AS_STRING(self.instance), INSTANCE_LEN)
        cdef Py_ssize_t olen = INSTANCE_LEN + _put_seq(offset + INSTANCE_LEN, seq)
        cdef list stamped = list(parts)
        cdef Py_ssize_t size = 0
        cdef Py_ssize_t slot
        if self.msgpack:
            stamped[0] = msgpack_packet.stamp_offset_raw(<bytes>parts[0], offset, olen)
        else:
            stamped[0] = sio_packet.stamp_offset_raw(<bytes>parts[0], offset, olen)
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
        """The sequence number an offset of this log names, or -1 for anything else.

        Only the one spelling :meth:`offset_of` writes is taken: this log's instance, then 1 to
        11 digits, the first not ``0``, for a number from 1 to ``next_seq - 1``.
        """
        if type(offset) is not str:
            return -1
        cdef Py_ssize_t n = len(<str>offset)
        if n <= INSTANCE_LEN or n > INSTANCE_LEN + SEQ_DIGITS or not (<str>offset).isascii():
            return -1
        cdef bytes raw = (<str>offset).encode("ascii")
        cdef const char* p = PyBytes_AS_STRING(raw)
        if memcmp(p, PyBytes_AS_STRING(self.instance), INSTANCE_LEN) != 0:
            return -1
        cdef unsigned long long seq = 0
        cdef signed char v
        cdef Py_ssize_t k
        for k in range(INSTANCE_LEN, n):
            v = _VALUES[<unsigned char>p[k]]
            if v < 0 or (v == 0 and k == INSTANCE_LEN) or seq >> 58:
                return -1  # not a digit, a leading zero, or more than 64 bits
            seq = (seq << 6) | <unsigned long long>v
        if seq >= self.next_seq or seq > <unsigned long long>LLONG_MAX:
            return -1
        return <long long>seq

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
        """The offset string a client sees for ``seq`` (at least 1)."""
        if seq < 1:
            raise ValueError("sequence numbers start at 1")
        cdef char buf[INSTANCE_LEN + SEQ_DIGITS]
        memcpy(buf, PyBytes_AS_STRING(self.instance), INSTANCE_LEN)
        return buf[:INSTANCE_LEN + _put_seq(buf + INSTANCE_LEN, seq)].decode("ascii")
