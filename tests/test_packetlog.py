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

INSTANCE = b"a-c12_XY"
OTHER = b"a-c12_XZ"  # another log's instance, one digit apart
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
        seq = data.draw(st.integers(1, self.model.next_seq + 2) | st.integers(1, 2**64 - 1))
        ours = self.model.offset_of(seq)
        inst, digits = INSTANCE.decode(), ours[len(INSTANCE):]
        text = data.draw(st.sampled_from([
            ours, inst + "0" + digits, model.PacketLog(1, 1, OTHER).offset_of(seq), inst,
            ours + "x", ours + "0", ours[:-1], digits, f"{inst}-{seq}", f"{inst}{seq}",
            ours.lower(), ours.upper(), inst + digits.replace("-", "+").replace("_", "/"),
            " " + ours, ours + "\n", ours + "\u0661", inst + "\uff11", inst + "\udcff",
            inst + "_" * 11, inst + "1" + "0" * 11, inst + "G" + "0" * 10,
        ]) | st.text(max_size=24).map(lambda tail: inst + tail))
        assert self.core.parse_offset(text) == self.model.parse_offset(text)
        assert self.core.offset_of(seq) == ours
        if seq < self.model.next_seq:
            assert self.core.parse_offset(ours) == seq  # every offset it wrote names its packet
        else:
            assert self.core.parse_offset(ours) == -1  # ... and none from the future

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
        assert seq == 2 and stamped[0].endswith(b',"a-c12_XY2"]')
        assert log.count == 0 and log.next_seq == 3
        assert not log.can_serve(0) and not log.can_serve(1)
        assert log.can_serve(2) and log.replay(2, {"a"}) == []


def test_offsets_are_the_instance_then_the_sequence_number_in_base_64():
    log = PacketLog(10, 1000, INSTANCE)
    assert [log.offset_of(seq) for seq in (1, 9, 10, 35, 36, 61, 62, 63, 64, 1000, 4096)] == [
        "a-c12_XY" + d for d in ("1", "9", "A", "Z", "a", "z", "-", "_", "10", "Fe", "100")]
    assert log.offset_of(2**64 - 1) == "a-c12_XYF" + "_" * 10  # 11 digits at most
    with pytest.raises(ValueError):
        log.offset_of(0)


def test_a_new_log_draws_a_new_instance_of_8_digits():
    instances = {PacketLog(1, 1).instance for _ in range(200)}
    assert len(instances) == 200
    assert all(model.OFFSET_INSTANCE.fullmatch(i.decode()) for i in instances)
    # 48 random bits each: every one of the 64 digits turns up among 1600 of them
    assert set("".join(i.decode() for i in instances)) == set(model.OFFSET_DIGITS)


def test_an_instance_given_names_the_same_log_again():
    first = PacketLog(10, 1000)
    for _ in range(3):
        first.append(event(1, 0), frozenset(), frozenset())
    again = PacketLog(10, 1000, first.instance)
    again.append(event(1, 0), frozenset(), frozenset())
    assert again.offset_of(1) == first.offset_of(1) and again.parse_offset(first.offset_of(1)) == 1
    for bad in (b"", b"abc123", b"abc123XYZ", b"abc123X+", b"abc123X.", b"abc 23XY",
                b"abc\xff23XY"):
        with pytest.raises(ValueError):
            PacketLog(10, 1000, bad)
        with pytest.raises(ValueError):
            model.PacketLog(10, 1000, bad)


def test_parse_offset_takes_only_strings_it_wrote():
    log = PacketLog(10, 1000, INSTANCE)
    for _ in range(70):
        log.append(event(1, 0), frozenset(), frozenset())
    assert log.parse_offset("a-c12_XY10") == 64 and log.parse_offset("a-c12_XY16") == 70
    for bad in (None, 64, b"a-c12_XY10", ["a-c12_XY10"], "a-c12_XY010", "a-c12_XY17",
                "a-c12_XY", "a-c12_XZ10", "a-c12_XY-10", "a-c12_XY1_" + "0" * 9,
                "a-c12_XY" + "9" * 19, "a-c12_XY" + "_" * 11 + "1"):
        assert log.parse_offset(bad) == -1, bad

    class Str(str):
        pass

    assert log.parse_offset(Str("a-c12_XY10")) == -1
