"""Micro-benchmarks of ``fastsio._core.msgpack_packet`` beside the same packets through
``sio_packet`` (bench/micro/test_core_bench.py) and through msgpack-python (the C packer and
unpacker the core could have called instead). Run with::

    python -m pytest bench/micro/test_msgpack_bench.py --benchmark-only

Each benchmark checks its result once, so a fast wrong answer cannot pass for a speed-up.
"""

import msgpack

from fastsio._core import msgpack_packet

SMALL_EVENT = ["chat message", {"user": "alice", "text": "hello world", "ts": 1700000000}]
PACKET = {"type": 2, "nsp": "/", "data": SMALL_EVENT}
ENCODED = msgpack.packb(PACKET)


def test_msgpack_encode_small_event(benchmark):
    e = benchmark(msgpack_packet.encode, msgpack_packet.EVENT, "/", SMALL_EVENT)
    assert e.parts == [ENCODED]


def test_msgpack_python_packer_small_event(benchmark):
    """What one call of msgpack-python's C packer costs for the same map (a reference)."""
    pack = msgpack.Packer(use_bin_type=True).pack
    assert benchmark(pack, PACKET) == ENCODED


def test_msgpack_encode_event_with_binary(benchmark):
    data = ["upload", {"name": "a.png", "size": 1024}, b"\x89PNG" + bytes(1020)]
    e = benchmark(msgpack_packet.encode, msgpack_packet.EVENT, "/files", data)
    assert len(e.parts) == 1 and e.binary_only and len(e.parts[0]) > 1024


def test_msgpack_decode_small_event(benchmark):
    packet = benchmark(msgpack_packet.decode, ENCODED)
    assert packet.data == SMALL_EVENT


def test_msgpack_python_unpackb_small_event(benchmark):
    assert benchmark(msgpack.unpackb, ENCODED) == PACKET


def test_msgpack_stamp_offset(benchmark):
    stamped = benchmark(msgpack_packet.stamp_offset, ENCODED, b"1f3a9c-000000000042")
    assert msgpack.unpackb(stamped)["data"] == [*SMALL_EVENT, "1f3a9c-000000000042"]
