# RoomIndex owns both mappings; the sets inside are never handed out for mutation (rooms_of
# copies). A sid is "known" from its first add_all until delete_all, even with no room.
from fastsio._core.outbox cimport Outbox
from fastsio._core.sio_packet cimport Encoded

# _outboxes holds the outbox of each known sid on the fast path (it does not own it: the
# session does); a sid missing from it is returned to the caller by fanout/send_to.
cdef class RoomIndex:
    cdef dict _rooms   # room -> sid, or set[sid] from two members on; dropped when empty
    cdef dict _sids    # sid -> room, or set[room] (empty set: known, in no room)
    cdef dict _outboxes  # sid -> Outbox, for sids whose packets need no Python per delivery
    # _outboxes' values in its order (a broadcast to everyone walks it), or None after one left
    # or changed (rebuilt by the next such broadcast); a new one is appended, nothing else is
    # ever changed in place, so a fan-out walking it is safe whatever its pushes cause.
    cdef list _boxes
    cpdef void add_all(self, object sid, object rooms)
    cpdef bint delete(self, object sid, object room)
    cpdef list delete_all(self, object sid)
    cpdef set rooms_of(self, object sid)
    cpdef bint has(self, object sid)
    cpdef list targets(self, object rooms, object except_rooms)
    cpdef void set_outbox(self, object sid, Outbox box)
    cpdef list fanout(self, object rooms, object except_rooms, Encoded packet, bint volatile)
    cdef list _send_set(self, object sids, Encoded packet, bint volatile)
    cpdef list send_to(self, list sids, Encoded packet, bint volatile)
