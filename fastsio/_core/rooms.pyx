# cython: language_level=3
"""The room index of one namespace on one node: who is in which room, and broadcast targets.

Members are socket ids (``str``); rooms are any hashable (the official server allows strings and
numbers). Both directions are kept so that leaving every room on disconnect costs O(rooms of the
socket), not O(all rooms).
"""
from fastsio._core.debug cimport FASTSIO_DEBUG


cdef class RoomIndex:
    """Socket ids by room and rooms by socket id."""

    def __init__(self):
        self._rooms = {}
        self._sids = {}

    cpdef void add_all(self, object sid, object rooms):
        """Put ``sid`` in each of ``rooms`` (and make it known even when ``rooms`` is empty)."""
        cdef set mine = self._sids.get(sid)
        cdef set members
        if mine is None:
            mine = set()
            self._sids[sid] = mine
        for room in rooms:
            if room in mine:
                continue
            mine.add(room)
            members = self._rooms.get(room)
            if members is None:
                members = set()
                self._rooms[room] = members
            members.add(sid)
        if FASTSIO_DEBUG:
            for room in mine:
                assert sid in self._rooms[room], "room index out of sync"

    cpdef bint delete(self, object sid, object room):
        """Take ``sid`` out of ``room``; True when the room is now empty (and was dropped)."""
        cdef set mine = self._sids.get(sid)
        cdef set members
        if mine is not None:
            mine.discard(room)
        members = self._rooms.get(room)
        if members is None:
            return False
        members.discard(sid)
        if not members:
            del self._rooms[room]
            return True
        return False

    cpdef list delete_all(self, object sid):
        """Forget ``sid``; returns the rooms that became empty."""
        cdef set mine = self._sids.pop(sid, None)
        cdef list emptied = []
        cdef set members
        if mine is None:
            return emptied
        for room in mine:
            members = self._rooms.get(room)
            if members is None:
                continue
            members.discard(sid)
            if not members:
                del self._rooms[room]
                emptied.append(room)
        return emptied

    cpdef set rooms_of(self, object sid):
        """The rooms of ``sid`` (a copy), or an empty set for an unknown sid."""
        cdef set mine = self._sids.get(sid)
        return set(mine) if mine is not None else set()

    cpdef bint has(self, object sid):
        return sid in self._sids

    cpdef list targets(self, object rooms, object except_rooms):
        """Socket ids in any of ``rooms`` (every known sid when empty), minus those in any of
        ``except_rooms``; each id once."""
        cdef set excluded = set()
        cdef set members
        cdef set seen
        cdef list out
        if not isinstance(rooms, (frozenset, set, list, tuple)):
            rooms = list(rooms)  # an iterator is always truthy: materialise it once
        for room in except_rooms:
            members = self._rooms.get(room)
            if members is not None:
                excluded |= members
        if not rooms:
            if not excluded:
                return list(self._sids)
            return [sid for sid in self._sids if sid not in excluded]
        seen = set()
        out = []
        for room in rooms:
            members = self._rooms.get(room)
            if members is None:
                continue
            for sid in members:
                if sid not in seen and sid not in excluded:
                    seen.add(sid)
                    out.append(sid)
        return out

    @property
    def rooms(self):
        """Room name -> set of socket ids (the live mapping; do not mutate)."""
        return self._rooms

    @property
    def sids(self):
        """Socket id -> set of rooms (the live mapping; do not mutate)."""
        return self._sids
