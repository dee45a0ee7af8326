# cython: language_level=3
"""The room index of one namespace on one node: who is in which room, and broadcast targets.

Members are socket ids (``str``); rooms are any hashable (the official server allows strings and
numbers). Both directions are kept so that leaving every room on disconnect costs O(rooms of the
socket), not O(all rooms).

Memory: most sockets are only in their own room, and many rooms hold one socket. A slot of
either mapping therefore holds the single element itself while there is one, and a ``set`` from
the second on (a ``set`` can never be a room or a sid: it is not hashable). That saves two
one-element sets (about 430 bytes) per connection.
"""
from cpython.dict cimport PyDict_GetItemWithError, PyDict_Size, PyDict_Values
from cpython.object cimport PyObject

from fastsio._core.debug cimport FASTSIO_DEBUG
from fastsio._core.outbox cimport Outbox, push_all
from fastsio._core.sio_packet cimport Encoded

cdef object _MISSING = object()


cdef inline bint _is_many(object slot):
    return type(slot) is set


cdef object _with(object slot, object item):
    """``slot`` plus ``item`` (``slot`` is _MISSING, one element, or a set it updates)."""
    if slot is _MISSING:
        return item
    if type(slot) is set:
        (<set>slot).add(item)
        return slot
    if slot == item:
        return slot
    return {slot, item}


cdef object _without(object slot, object item):
    """``slot`` minus ``item``; _MISSING once empty (a set shrinks back to one element)."""
    if type(slot) is set:
        (<set>slot).discard(item)
        if len(<set>slot) == 1:
            return next(iter(<set>slot))
        if not slot:
            return _MISSING
        return slot
    if slot == item:
        return _MISSING
    return slot


cdef set _as_set(object slot):
    if slot is _MISSING:
        return set()
    if type(slot) is set:
        return set(<set>slot)
    return {slot}


cdef class RoomIndex:
    """Socket ids by room and rooms by socket id."""

    def __init__(self):
        self._rooms = {}
        self._sids = {}
        self._outboxes = {}
        self._boxes = []

    cpdef void add_all(self, object sid, object rooms):
        """Put ``sid`` in each of ``rooms`` (and make it known even when ``rooms`` is empty)."""
        cdef object mine = self._sids.get(sid, _MISSING)
        cdef object members
        if mine is _MISSING:
            mine = set()  # known, in no room yet (shrinks to one element below)
        for room in rooms:
            if type(mine) is set and room in <set>mine:
                continue
            if type(mine) is not set and mine == room:
                continue
            mine = _with(mine, room) if not (type(mine) is set and not mine) else room
            members = self._rooms.get(room, _MISSING)
            self._rooms[room] = _with(members, sid)
        self._sids[sid] = mine
        if FASTSIO_DEBUG:
            for room in _as_set(mine):
                assert sid in _as_set(self._rooms[room]), "room index out of sync"

    cpdef bint delete(self, object sid, object room):
        """Take ``sid`` out of ``room``; True when the room is now empty (and was dropped)."""
        cdef object mine = self._sids.get(sid, _MISSING)
        cdef object members
        if mine is not _MISSING:
            mine = _without(mine, room)
            self._sids[sid] = set() if mine is _MISSING else mine
        members = self._rooms.get(room, _MISSING)
        if members is _MISSING:
            return False
        members = _without(members, sid)
        if members is _MISSING:
            del self._rooms[room]
            return True
        self._rooms[room] = members
        return False

    cpdef list delete_all(self, object sid):
        """Forget ``sid``; returns the rooms that became empty."""
        if self._outboxes.pop(sid, None) is not None:
            self._boxes = None
        cdef object mine = self._sids.pop(sid, _MISSING)
        cdef list emptied = []
        cdef object members
        if mine is _MISSING:
            return emptied
        for room in _as_set(mine):
            members = self._rooms.get(room, _MISSING)
            if members is _MISSING:
                continue
            members = _without(members, sid)
            if members is _MISSING:
                del self._rooms[room]
                emptied.append(room)
            else:
                self._rooms[room] = members
        return emptied

    cpdef set rooms_of(self, object sid):
        """The rooms of ``sid`` (a copy), or an empty set for an unknown sid."""
        return _as_set(self._sids.get(sid, _MISSING))

    cpdef bint has(self, object sid):
        return sid in self._sids

    cpdef list targets(self, object rooms, object except_rooms):
        """Socket ids in any of ``rooms`` (every known sid when empty), minus those in any of
        ``except_rooms``; each id once."""
        cdef set excluded = set()
        cdef object members
        cdef set seen
        cdef list out
        if not isinstance(rooms, (frozenset, set, list, tuple)):
            rooms = list(rooms)  # an iterator is always truthy: materialise it once
        for room in except_rooms:
            members = self._rooms.get(room, _MISSING)
            if members is _MISSING:
                continue
            if type(members) is set:
                excluded |= <set>members
            else:
                excluded.add(members)
        if not rooms:
            if not excluded:
                return list(self._sids)
            return [sid for sid in self._sids if sid not in excluded]
        if len(rooms) == 1:
            # The common case (one room, or a direct emit to a socket's own room): no dedup.
            for room in rooms:
                members = self._rooms.get(room, _MISSING)
                if members is _MISSING:
                    return []
                if type(members) is not set:
                    return [] if members in excluded else [members]
                if not excluded:
                    return list(<set>members)
                return [sid for sid in <set>members if sid not in excluded]
        seen = set()
        out = []
        for room in rooms:
            members = self._rooms.get(room, _MISSING)
            if members is _MISSING:
                continue
            if type(members) is not set:
                if members not in seen and members not in excluded:
                    seen.add(members)
                    out.append(members)
                continue
            for sid in <set>members:
                if sid not in seen and sid not in excluded:
                    seen.add(sid)
                    out.append(sid)
        return out

    cpdef void set_outbox(self, object sid, Outbox box):
        """Deliver ``sid``'s packets straight to ``box`` during :meth:`fanout`; ``None``: hand
        ``sid`` back to the caller instead (the slow path). Ignored for an unknown sid."""
        if sid not in self._sids:
            return
        if box is None:
            if self._outboxes.pop(sid, None) is not None:
                self._boxes = None
        elif sid in self._outboxes:
            if self._outboxes[sid] is not box:
                self._outboxes[sid] = box
                self._boxes = None
        else:
            self._outboxes[sid] = box
            if self._boxes is not None:
                # Only ever appended to in place: a fan-out walking it sees a prefix that stays.
                self._boxes.append(box)

    cpdef list fanout(self, object rooms, object except_rooms, Encoded packet, bint volatile):
        """Queue ``packet`` for every target of ``rooms`` minus ``except_rooms`` (see
        :meth:`targets`) that has an outbox; returns the targets that have none."""
        cdef object members
        cdef list slow
        if not except_rooms:
            if type(rooms) is frozenset or type(rooms) is set:
                if not rooms:
                    # Everyone: the outboxes themselves, in the order the sockets got them.
                    slow = None
                    if PyDict_Size(self._outboxes) != PyDict_Size(self._sids):
                        slow = [sid for sid in self._sids if sid not in self._outboxes]
                    if self._boxes is None:
                        self._boxes = PyDict_Values(self._outboxes)
                    push_all(self._boxes, packet, volatile)
                    return slow if slow is not None else []
                if len(rooms) == 1:
                    for room in rooms:
                        members = self._rooms.get(room, _MISSING)
                        if members is _MISSING:
                            return []
                        if type(members) is set:
                            return self._send_set(<set>members, packet, volatile)
                        return self.send_to([members], packet, volatile)
        return self.send_to(self.targets(rooms, except_rooms), packet, volatile)

    cdef list _send_set(self, object sids, Encoded packet, bint volatile):
        # The outboxes are gathered before any is pushed to: a push may end a session (a polling
        # client over its bound), which takes its sid out of a room's very set. ``sids``: a
        # room's set, or the caller's list (send_to).
        cdef list boxes = []
        cdef list slow = []
        cdef dict outboxes = self._outboxes
        cdef PyObject* box
        for sid in sids:
            box = PyDict_GetItemWithError(outboxes, sid)
            if box is NULL:
                slow.append(sid)
            else:
                boxes.append(<object>box)
        push_all(boxes, packet, volatile)
        return slow

    cpdef list send_to(self, list sids, Encoded packet, bint volatile):
        """Queue ``packet`` for each of ``sids`` that has an outbox; returns the others."""
        return self._send_set(sids, packet, volatile)

    @property
    def rooms(self):
        """Room -> set of socket ids (a copy: build it for inspection, not on a hot path)."""
        return {room: _as_set(members) for room, members in self._rooms.items()}

    @property
    def sids(self):
        """Socket id -> set of rooms (a copy)."""
        return {sid: _as_set(mine) for sid, mine in self._sids.items()}
