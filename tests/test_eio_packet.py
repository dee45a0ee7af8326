"""Engine.IO v4 packets and long-polling payloads: fastsio._core.eio_packet against tests/model.py.

Example tests run one body against both implementations (the ``impl`` fixture); property tests
check that they agree byte for byte and that the decoder only ever raises EnginePacketError.
"""


import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsio._core import eio_packet as core
from fastsio._core.errors import EnginePacketError, ProtocolError
from tests import model

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture(params=[core, model], ids=["core", "model"])
def impl(request):
    return request.param


# --------------------------------------------------------------------------------- examples


def test_constants(impl):
    assert (impl.OPEN, impl.CLOSE, impl.PING, impl.PONG) == (0, 1, 2, 3)
    assert (impl.MESSAGE, impl.UPGRADE, impl.NOOP) == (4, 5, 6)


def test_error_hierarchy():
    assert issubclass(EnginePacketError, ProtocolError)
    assert issubclass(ProtocolError, ValueError)


@pytest.mark.parametrize(
    "packet, expected",
    [(b"0", 0), (b'0{"sid":"x"}', 0), (b"1", 1), (b"2probe", 2), (b"3", 3), (b"4hello", 4),
     (b"5", 5), (b"6", 6), (b"4\x1e", 4)],
)
def test_packet_type(impl, packet, expected):
    assert impl.packet_type(packet) == expected


@pytest.mark.parametrize("packet", [b"", b"7", b"9", b"/", b"b", b"bQQ==", b" 4", b"\xff", b"\x00"])
def test_packet_type_rejects(impl, packet):
    with pytest.raises(EnginePacketError):
        impl.packet_type(packet)


@pytest.mark.parametrize(
    "ptype, data, expected",
    [(2, None, b"2"), (3, b"probe", b"3probe"), (4, b"hello", b"4hello"), (4, b"", b"4"),
     (0, b'{"sid":"a"}', b'0{"sid":"a"}'), (6, None, b"6")],
)
def test_encode_packet(impl, ptype, data, expected):
    assert impl.encode_packet(ptype, data) == expected


@pytest.mark.parametrize("ptype", [-1, 7, 100])
def test_encode_packet_rejects_type(impl, ptype):
    with pytest.raises(ValueError):
        impl.encode_packet(ptype, b"x")


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"4hello", [(b"4hello", False)]),
        (b"2", [(b"2", False)]),
        (b"4hello\x1e4world", [(b"4hello", False), (b"4world", False)]),
        (b"4a\x1ebAQID\x1e4b", [(b"4a", False), (b"\x01\x02\x03", True), (b"4b", False)]),
        (b"bAQID", [(b"\x01\x02\x03", True)]),
        (b"b", [(b"", True)]),
        (b"bQQ==", [(b"A", True)]),
        (b"bQUI=", [(b"AB", True)]),
        (b"bQR==", [(b"A", True)]),  # unused low bits are ignored
        (b"4\xe2\x82\xac", [(b"4\xe2\x82\xac", False)]),
        (b"1\x1e6", [(b"1", False), (b"6", False)]),
    ],
)
def test_decode_payload(impl, body, expected):
    assert impl.decode_payload(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",  # empty body
        b"\x1e",  # two empty packets
        b"4a\x1e",  # trailing separator
        b"\x1e4a",  # leading separator
        b"4a\x1e\x1e4b",  # empty packet in the middle
        b"7",  # unknown type
        b"4a\x1e9",  # unknown type after a good packet
        b"x",
        b"bQQ",  # missing padding
        b"bQQ=",
        b"bQ===",  # too much padding
        b"b====",
        b"bQQ==QQ==",  # data after padding
        b"bQU JD",  # space
        b"bQUJD\n",
        b"b-_ab",  # URL-safe alphabet is not base64
        b"bA",
        b"bAB=C",
    ],
)
def test_decode_payload_rejects(impl, body):
    with pytest.raises(EnginePacketError):
        impl.decode_payload(body)


@pytest.mark.parametrize("body", [b"bAAAA=", b"bAAAA==", b"bAAAA====", b"4a\x1ebQUJD="])
def test_decode_payload_rejects_excess_padding(body):
    """CPython gh-118314: a2b_base64(b"AAAA=", strict_mode=True) is accepted before 3.13
    (and strict_mode does not exist before 3.11), so the core's accept/reject depends on the
    interpreter. The model and 3.13+ reject."""
    with pytest.raises(EnginePacketError):
        core.decode_payload(body)


def test_decode_payload_rejects_excess_padding_model():
    for body in (b"bAAAA=", b"bAAAA==", b"bAAAA====", b"4a\x1ebQUJD="):
        with pytest.raises(EnginePacketError):
            model.decode_payload(body)


def test_decode_payload_max_packets(impl):
    body = b"4a\x1e4b\x1e4c"
    assert len(impl.decode_payload(body, 3)) == 3
    assert len(impl.decode_payload(body, -1)) == 3
    for limit in (0, 1, 2):
        with pytest.raises(EnginePacketError):
            impl.decode_payload(body, limit)


@pytest.mark.parametrize(
    "packets, expected",
    [
        ([], b""),
        ([(b"4hello", False)], b"4hello"),
        ([(b"4a", False), (b"4b", False)], b"4a\x1e4b"),
        ([(b"\x01\x02\x03", True)], b"bAQID"),
        ([(b"", True)], b"b"),
        ([(b"2", False), (b"\xff", True), (b"3", False)], b"2\x1eb/w==\x1e3"),
    ],
)
def test_encode_payload(impl, packets, expected):
    assert impl.encode_payload(packets) == expected


# ------------------------------------------------------------------------------- properties

text_packets = st.builds(
    lambda digit, rest: digit + rest,
    st.sampled_from([b"0", b"1", b"2", b"3", b"4", b"5", b"6"]),
    st.binary(max_size=40).map(lambda b: b.replace(b"\x1e", b"")),
)
binary_packets = st.binary(max_size=40)
payload_packets = st.lists(
    st.one_of(
        text_packets.map(lambda p: (p, False)),
        binary_packets.map(lambda p: (p, True)),
    ),
    min_size=1,
    max_size=8,
)


@SETTINGS
@given(payload_packets)
def test_payload_round_trip_and_agreement(packets):
    body = core.encode_payload(packets)
    assert body == model.encode_payload(packets)
    assert core.decode_payload(body) == packets
    assert model.decode_payload(body) == packets


@SETTINGS
@given(st.integers(0, 6), st.one_of(st.none(), st.binary(max_size=20)))
def test_encode_packet_agreement(ptype, data):
    packet = core.encode_packet(ptype, data)
    assert packet == model.encode_packet(ptype, data)
    assert core.packet_type(packet) == ptype


def outcome(function, *args):
    """``("ok", result)`` or ``("error", class)``; only the documented errors are allowed."""
    try:
        return ("ok", function(*args))
    except EnginePacketError:
        return ("error", EnginePacketError)


@SETTINGS
@given(st.binary(max_size=8))
def test_packet_type_agreement(packet):
    assert outcome(core.packet_type, packet) == outcome(model.packet_type, packet)


@st.composite
def mutated(draw, base):
    """A valid value from ``base`` with a few byte edits."""
    data = bytearray(draw(base))
    interesting = st.sampled_from(list(b"\x1eb=/+A4 \n\x00\xff-_7"))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "replace", "delete", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if op == "insert":
            data.insert(at, draw(st.one_of(interesting, st.integers(0, 255))))
        elif op == "replace" and at < len(data):
            data[at] = draw(st.one_of(interesting, st.integers(0, 255)))
        elif op == "delete" and at < len(data):
            del data[at]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


valid_bodies = payload_packets.map(model.encode_payload)
any_bodies = st.one_of(
    st.binary(max_size=64),
    st.lists(st.binary(max_size=10), min_size=1, max_size=5).map(b"\x1e".join),
    mutated(valid_bodies),
    mutated(st.binary(max_size=12).map(lambda data: model.encode_payload([(data, True)]))),
)




@SETTINGS
@given(any_bodies, st.integers(-1, 4))
def test_decode_payload_never_crashes_and_agrees(body, max_packets):
    assert outcome(core.decode_payload, body, max_packets) == outcome(
        model.decode_payload, body, max_packets
    )
