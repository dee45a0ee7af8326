"""Micro-benchmarks of the Cython core (pytest-benchmark).

Outside ``testpaths``, so the normal test run never collects them. Run with::

    python -m pytest bench/micro --benchmark-only

Each benchmark checks its result once, so a fast wrong answer cannot pass for a speed-up.
"""

from fastsio._core import eio_packet, sio_packet
from fastsio._core.rooms import RoomIndex

SMALL_EVENT = ["chat message", {"user": "alice", "text": "hello world", "ts": 1700000000}]
ENCODED_SMALL_EVENT = b'42["chat message",{"user":"alice","text":"hello world","ts":1700000000}]'


def test_encode_small_event(benchmark):
    parts = benchmark(sio_packet.encode, sio_packet.EVENT, "/", SMALL_EVENT)
    assert parts == [ENCODED_SMALL_EVENT]


def test_encode_event_with_binary(benchmark):
    data = ["upload", {"name": "a.png", "size": 1024}, b"\x89PNG" + bytes(1020)]
    parts = benchmark(sio_packet.encode, sio_packet.EVENT, "/files", data)
    assert parts[0].startswith(b"451-/files,") and len(parts) == 2


def test_decode_small_event(benchmark):
    packet = benchmark(sio_packet.decode, ENCODED_SMALL_EVENT, 1)
    assert packet.data == SMALL_EVENT


def test_decoder_small_event(benchmark):
    decoder = sio_packet.Decoder()
    packet = benchmark(decoder.add_text, ENCODED_SMALL_EVENT, 1)
    assert packet.data == SMALL_EVENT


def test_decode_polling_payload_10_packets(benchmark):
    body = eio_packet.encode_payload([(ENCODED_SMALL_EVENT, False)] * 9 + [(b"\x00" * 64, True)])
    packets = benchmark(eio_packet.decode_payload, body)
    assert len(packets) == 10 and packets[-1] == (b"\x00" * 64, True)


def test_encode_polling_payload_10_packets(benchmark):
    packets = [(ENCODED_SMALL_EVENT, False)] * 9 + [(b"\x00" * 64, True)]
    body = benchmark(eio_packet.encode_payload, packets)
    assert body.count(b"\x1e") == 9


def test_stamp_offset(benchmark):
    stamped = benchmark(sio_packet.stamp_offset, ENCODED_SMALL_EVENT, b"1f3a9c-000000000042")
    assert stamped.endswith(b',"1f3a9c-000000000042"]')


def test_room_targets_1000_sids_10_rooms_except_one(benchmark):
    index = RoomIndex()
    for n in range(1000):
        muted = ["muted"] if n % 7 == 0 else []
        index.add_all(f"sid{n:04d}", [f"sid{n:04d}", f"room{n % 10}", *muted])
    rooms = [f"room{k}" for k in range(10)]
    found = benchmark(index.targets, rooms, ["muted"])
    assert len(found) == 1000 - len(range(0, 1000, 7))


def test_room_targets_everybody(benchmark):
    index = RoomIndex()
    for n in range(1000):
        index.add_all(f"sid{n:04d}", [f"sid{n:04d}", f"room{n % 10}"])
    found = benchmark(index.targets, (), ())
    assert len(found) == 1000
