# PacketLog owns its ring: lists of fixed length max_packets, slot i holding the stamped parts of
# one entry (a list of bytes it shares with the writers), its rooms and except-rooms (frozensets,
# shared with the broadcast options) and its byte size. Entries occupy slots _first ..
# _first+_count-1 (mod max_packets); the entry in slot _first has sequence next_seq - _count.
cdef enum:
    INSTANCE_LEN = 8   # digits of the instance: 48 random bits
    SEQ_DIGITS = 11    # base-64 digits of the largest sequence number (64 bits)

cdef class PacketLog:
    cdef readonly Py_ssize_t max_packets
    cdef readonly Py_ssize_t max_bytes
    cdef readonly bytes instance       # INSTANCE_LEN digits, random per log: starts every offset
    cdef readonly unsigned long long next_seq
    cdef readonly bint msgpack         # entries are msgpack_packet encodings, not sio_packet's
    cdef list _parts
    cdef list _rooms
    cdef list _except
    cdef list _sizes
    cdef Py_ssize_t _first
    cdef Py_ssize_t _count
    cdef Py_ssize_t _bytes
    cpdef tuple append(self, list parts, object rooms, object except_rooms)
    cdef void _evict_oldest(self)
    cdef void _evict_all(self)
    cpdef long long parse_offset(self, object offset)
    cpdef bint can_serve(self, long long after)
    cpdef list replay(self, long long after, object rooms)
