"""The room index (fastsio._core.rooms.RoomIndex) against a dict-of-sets model (tests/model.py).

Example tests run against both implementations; a hypothesis state machine drives both with the
same operations and compares every answer and both mappings after each step.
"""

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fastsio._core import sio_packet
from fastsio._core.outbox import Flusher, Outbox
from fastsio._core.rooms import RoomIndex
from tests import model


@pytest.fixture(params=[RoomIndex, model.RoomIndex], ids=["core", "model"])
def index(request):
    return request.param()


def filled(index):
    """a: s1 s2 s3, b: s3 s4, c: s5; s6 known but in no room."""
    index.add_all("s1", ["a"])
    index.add_all("s2", ["a"])
    index.add_all("s3", ["a", "b"])
    index.add_all("s4", ["b"])
    index.add_all("s5", ["c"])
    index.add_all("s6", [])
    return index


def targets(index, rooms, except_rooms=()):
    found = index.targets(rooms, except_rooms)
    assert isinstance(found, list)
    assert len(found) == len(set(found)), "a sid listed twice"
    return set(found)


def test_add_all(index):
    index.add_all("s1", ["a", "b", "a"])
    index.add_all("s1", {"c"})
    index.add_all("s2", ("a",))
    assert index.rooms_of("s1") == {"a", "b", "c"}
    assert index.rooms == {"a": {"s1", "s2"}, "b": {"s1"}, "c": {"s1"}}
    assert index.sids == {"s1": {"a", "b", "c"}, "s2": {"a"}}
    assert index.has("s1") and index.has("s2")


def test_known_without_rooms(index):
    assert not index.has("s1")
    index.add_all("s1", [])
    assert index.has("s1")
    assert index.rooms_of("s1") == set()
    assert index.rooms == {}
    assert index.sids == {"s1": set()}


def test_unknown_sid(index):
    assert index.rooms_of("nobody") == set()
    assert not index.has("nobody")
    assert index.delete_all("nobody") == []
    assert not index.delete("nobody", "a")
    assert not index.has("nobody")


def test_rooms_of_is_a_copy(index):
    index.add_all("s1", ["a"])
    index.rooms_of("s1").add("b")
    assert index.rooms_of("s1") == {"a"}


def test_any_hashable_room(index):
    index.add_all("s1", [1, "1", ("t", 2), None])
    assert index.rooms_of("s1") == {1, "1", ("t", 2), None}
    assert targets(index, [1]) == {"s1"}
    assert targets(index, ["2"]) == set()


def test_delete(index):
    filled(index)
    assert index.delete("s1", "a") is False  # s2, s3 still there
    assert index.rooms_of("s1") == set()
    assert index.has("s1")  # still known
    assert index.delete("s1", "a") is False  # not in it any more
    assert index.delete("s5", "c") is True  # c is now empty and dropped
    assert "c" not in index.rooms
    assert index.delete("s5", "c") is False
    assert index.delete("s1", "nowhere") is False
    assert index.delete("s4", "a") is False  # s4 was never in a
    assert index.rooms["a"] == {"s2", "s3"}


def test_delete_all(index):
    filled(index)
    assert sorted(index.delete_all("s3")) == []  # a and b keep other members
    assert not index.has("s3")
    assert sorted(index.delete_all("s4")) == ["b"]
    assert sorted(index.delete_all("s1")) == []
    assert sorted(index.delete_all("s2")) == ["a"]
    assert index.delete_all("s6") == []
    assert index.rooms == {"c": {"s5"}}
    assert index.sids == {"s5": {"c"}}


@pytest.mark.parametrize(
    "rooms, except_rooms, expected",
    [
        ([], [], {"s1", "s2", "s3", "s4", "s5", "s6"}),  # everybody, roomless s6 included
        ((), ["b"], {"s1", "s2", "s5", "s6"}),
        (["a"], [], {"s1", "s2", "s3"}),
        (["a", "b"], [], {"s1", "s2", "s3", "s4"}),  # s3 once
        (["a", "b"], ["b"], {"s1", "s2"}),
        (["a"], ["c", "nowhere"], {"s1", "s2", "s3"}),
        (["nowhere"], [], set()),
        (["a", "nowhere", "c"], [], {"s1", "s2", "s3", "s5"}),
        (["a"], ["a"], set()),
        ({"a", "c"}, {"b"}, {"s1", "s2", "s5"}),
        (frozenset({"b"}), (), {"s3", "s4"}),
    ],
)
def test_targets(index, rooms, except_rooms, expected):
    assert targets(filled(index), rooms, except_rooms) == expected


def test_targets_accepts_iterators(index):
    filled(index)
    assert targets(index, iter(["a"]), iter(["b"])) == {"s1", "s2"}
    assert targets(index, ["a", "b"], (room for room in ["a"])) == {"s4"}
    assert targets(index, ["b"], {"c": 1}.keys()) == {"s3", "s4"}


def test_targets_with_no_rooms_model():
    assert targets(filled(model.RoomIndex()), iter([])) == {"s1", "s2", "s3", "s4", "s5", "s6"}


def test_targets_with_no_rooms_core():
    """RoomIndex.targets tests ``if not rooms``: an iterator is always true, so an exhausted
    one selects nobody instead of every sid (the stub promises any Iterable)."""
    assert targets(filled(RoomIndex()), iter([])) == {"s1", "s2", "s3", "s4", "s5", "s6"}


def test_targets_many(index):
    for n in range(1000):
        index.add_all(f"sid{n}", [f"room{n % 10}", "all"] + (["odd"] if n % 2 else []))
    assert len(targets(index, [f"room{k}" for k in range(10)], ["odd"])) == 500
    assert len(targets(index, ["room1", "room3"], [])) == 200
    assert targets(index, ["room1"], ["odd"]) == set()
    assert len(targets(index, [], ["room0"])) == 900


# -------------------------------------------------------------------- model-based testing

SIDS = st.sampled_from(["s0", "s1", "s2", "s3", "s4", "s5"])
ROOMS = st.sampled_from(["a", "b", "c", "s0", 1, 2, ("t", 1)])
ROOM_LISTS = st.lists(ROOMS, max_size=4)
CONTAINERS = st.sampled_from([list, tuple, set, frozenset, iter])


class RoomIndexMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.core = RoomIndex()
        self.model = model.RoomIndex()

    @rule(sid=SIDS, rooms=ROOM_LISTS, container=CONTAINERS)
    def add_all(self, sid, rooms, container):
        self.core.add_all(sid, container(rooms))
        self.model.add_all(sid, container(rooms))

    @rule(sid=SIDS, room=ROOMS)
    def delete(self, sid, room):
        assert self.core.delete(sid, room) == self.model.delete(sid, room)

    @rule(sid=SIDS)
    def delete_all(self, sid):
        emptied = self.core.delete_all(sid)
        assert len(emptied) == len(set(emptied))
        assert set(emptied) == set(self.model.delete_all(sid))

    @rule(sid=SIDS)
    def lookups(self, sid):
        assert self.core.has(sid) == self.model.has(sid)
        assert self.core.rooms_of(sid) == self.model.rooms_of(sid)

    # iter is left out for ``rooms``: see test_targets_with_no_rooms_core
    @rule(
        rooms=st.lists(ROOMS, max_size=3), except_rooms=st.lists(ROOMS, max_size=2),
        container=st.sampled_from([list, tuple, set, frozenset]), except_container=CONTAINERS,
    )
    def targets(self, rooms, except_rooms, container, except_container):
        found = targets(self.core, container(rooms), except_container(except_rooms))
        assert found == set(self.model.targets(rooms, except_rooms))

    @invariant()
    def same_mappings(self):
        assert self.core.rooms == self.model.rooms
        assert self.core.sids == self.model.sids


TestRoomIndexMachine = RoomIndexMachine.TestCase
TestRoomIndexMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)


# ------------------------------------------------------------ fan-out into the outboxes
# The index pushes a broadcast straight into the outboxes it was given (set_outbox) and hands
# back the targets it has none for. Its list of every outbox (a broadcast to everyone walks it)
# is kept beside the sid -> outbox map and must follow every join, leave, disconnect and
# outbox change: each target with an outbox gets the packet exactly once, in its current one.

def packet_outbox() -> Outbox:
    box = Outbox(Flusher())
    box.use_packets(None)  # packets mode, never ready: what is pushed stays until take()
    box.open = True
    return box


class FanoutMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.core = RoomIndex()
        self.model = model.RoomIndex()
        self.boxes: dict[str, Outbox] = {}  # the outbox each known sid was last given
        self.sent = 0

    @rule(sid=SIDS, rooms=ROOM_LISTS)
    def add_all(self, sid, rooms):
        self.core.add_all(sid, rooms)
        self.model.add_all(sid, rooms)

    @rule(sid=SIDS, room=ROOMS)
    def delete(self, sid, room):
        self.core.delete(sid, room)
        self.model.delete(sid, room)

    @rule(sid=SIDS)
    def delete_all(self, sid):
        self.core.delete_all(sid)
        self.model.delete_all(sid)
        self.boxes.pop(sid, None)

    @rule(sid=SIDS, fresh=st.booleans(), none=st.booleans())
    def set_outbox(self, sid, fresh, none):
        if not self.model.has(sid):
            self.core.set_outbox(sid, packet_outbox())  # ignored: unknown sid
            return
        if none:
            self.core.set_outbox(sid, None)
            self.boxes.pop(sid, None)
            return
        box = self.boxes.get(sid)
        if box is None or fresh:
            box = packet_outbox()
        self.core.set_outbox(sid, box)
        self.boxes[sid] = box

    @rule(rooms=st.lists(ROOMS, max_size=2), except_rooms=st.lists(ROOMS, max_size=1),
          everyone=st.booleans())
    def fanout(self, rooms, except_rooms, everyone):
        if everyone:
            rooms, except_rooms = [], []
        self.sent += 1
        packet = sio_packet.encode(sio_packet.EVENT, "/", ["tick", self.sent])
        slow = self.core.fanout(frozenset(rooms), frozenset(except_rooms), packet, False)
        wanted = set(self.model.targets(rooms, except_rooms))
        assert len(slow) == len(set(slow))
        assert set(slow) == {sid for sid in wanted if sid not in self.boxes}
        for sid, box in self.boxes.items():
            got = box.take()
            assert got == ([(packet[0], False)] if sid in wanted else []), sid

    @invariant()
    def same_mappings(self):
        assert self.core.rooms == self.model.rooms
        assert self.core.sids == self.model.sids


TestFanoutMachine = FanoutMachine.TestCase
TestFanoutMachine.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
