"""PacketLog (the recovery ring) against the pure-Python model in tests/model.py: the same
appends, offsets, servability and replays, with small bounds so that the ring wraps around,
evicts by bytes and meets entries larger than its byte bound."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fastsio._core import sio_packet
from fastsio._core.packetlog import PacketLog
from tests import model

INSTANCE = b"abc123"
ROOMS = st.frozensets(st.sampled_from(["a", "b", "c", "s1", 7]), max_size=2)
PADS = st.integers(0, 120)


def event(pad: int, attachments: int) -> list[bytes]:
    data = ["e", "x" * pad, *(bytes([i]) * (pad // 4) for i in range(attachments))]
    return sio_packet.encode(sio_packet.EVENT, "/", data).parts


class PacketLogMachine(RuleBasedStateMachine):
    @initialize(max_packets=st.integers(1, 6), max_bytes=st.integers(40, 400))
    def make(self, max_packets, max_bytes):
        self.core = PacketLog(max_packets, max_bytes, INSTANCE)
        self.model = model.PacketLog(max_packets, max_bytes, INSTANCE)

    @rule(pad=PADS, attachments=st.integers(0, 2), rooms=ROOMS, except_rooms=ROOMS)
    def append(self, pad, attachments, rooms, except_rooms):
        parts = event(pad, attachments)
        got = self.core.append(parts, rooms, except_rooms)
        assert got == self.model.append(parts, rooms, except_rooms)
        assert parts == event(pad, attachments)  # the caller's parts are left alone

    @rule(data=st.data())
    def offsets(self, data):
        seq = data.draw(st.integers(-2, self.model.next_seq + 2))
        text = data.draw(st.sampled_from([
            f"{INSTANCE.decode()}-{seq}", f"{INSTANCE.decode()}-0{seq}", f"other-{seq}",
            f"{INSTANCE.decode()}-", f"{INSTANCE.decode()}-{seq}x", str(seq),
        ]))
        assert self.core.parse_offset(text) == self.model.parse_offset(text)
        if seq >= 1:
            assert self.core.offset_of(seq) == self.model.offset_of(seq)

    @rule(data=st.data(), rooms=ROOMS)
    def replay(self, data, rooms):
        after = data.draw(st.integers(-1, self.model.next_seq + 1))
        can = self.model.can_serve(after)
        assert self.core.can_serve(after) == can
        if can:
            assert self.core.replay(after, rooms) == self.model.replay(after, rooms)
        else:
            with pytest.raises(ValueError):
                self.core.replay(after, rooms)

    @precondition(lambda self: hasattr(self, "core"))
    @invariant()
    def same_state(self):
        assert self.core.next_seq == self.model.next_seq
        assert self.core.count == self.model.count
        assert self.core.size == self.model.size
        assert self.core.oldest_seq == self.model.oldest_seq
        assert self.core.size <= self.core.max_bytes
        assert self.core.count <= self.core.max_packets


TestPacketLogMachine = PacketLogMachine.TestCase
TestPacketLogMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_an_oversize_entry_empties_the_log_and_cannot_be_replayed():
    for log in (PacketLog(10, 100, INSTANCE), model.PacketLog(10, 100, INSTANCE)):
        log.append(event(5, 0), frozenset(), frozenset())
        seq, stamped = log.append(event(200, 0), frozenset(), frozenset())
        assert seq == 2 and stamped[0].endswith(b',"abc123-2"]')
        assert log.count == 0 and log.next_seq == 3
        assert not log.can_serve(0) and not log.can_serve(1)
        assert log.can_serve(2) and log.replay(2, {"a"}) == []
