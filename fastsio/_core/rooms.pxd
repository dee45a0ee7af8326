# RoomIndex owns both mappings; the sets inside are never handed out for mutation (rooms_of
# copies). A sid is "known" from its first add_all until delete_all, even with no room.
cdef class RoomIndex:
    cdef dict _rooms   # room -> sid, or set[sid] from two members on; dropped when empty
    cdef dict _sids    # sid -> room, or set[room] (empty set: known, in no room)
    cpdef void add_all(self, object sid, object rooms)
    cpdef bint delete(self, object sid, object room)
    cpdef list delete_all(self, object sid)
    cpdef set rooms_of(self, object sid)
    cpdef bint has(self, object sid)
    cpdef list targets(self, object rooms, object except_rooms)
