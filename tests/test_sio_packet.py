"""Socket.IO v5 packets: fastsio._core.sio_packet against the pure-Python model in tests/model.py.

Example tests run one body against both implementations (the ``impl`` fixture, as in yarl's
test_quoting.py). Property tests check that core and model agree byte for byte on encode and on
every accept/reject decision, that packets round-trip, and that arbitrary bytes never make the
core raise anything but the documented ProtocolError subclasses.
"""

import subprocess
import sys

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fastsio._core import sio_packet as core
from fastsio._core.errors import (
    InvalidAckId,
    InvalidAttachments,
    InvalidNamespace,
    InvalidPayload,
    ProtocolError,
    SocketPacketError,
    TooManyAttachments,
    UnexpectedBinary,
    UnexpectedText,
    UnknownPacketType,
)
from tests import model

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)
PLACEHOLDER0 = b'{"_placeholder":true,"num":0}'
PLACEHOLDER1 = b'{"_placeholder":true,"num":1}'


@pytest.fixture(params=[core, model], ids=["core", "model"])
def impl(request):
    return request.param


def raises_exactly(cls, function, *args, **kwargs):
    with pytest.raises(cls) as info:
        function(*args, **kwargs)
    assert type(info.value) is cls, f"{type(info.value).__name__} raised, {cls.__name__} expected"


def run_isolated(code):
    """Run ``code`` in a fresh interpreter (for calls that may crash the process)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode, done.stdout.strip()


# ------------------------------------------------------------------------------ the basics


def test_constants(impl):
    assert (impl.CONNECT, impl.DISCONNECT, impl.EVENT, impl.ACK) == (0, 1, 2, 3)
    assert (impl.CONNECT_ERROR, impl.BINARY_EVENT, impl.BINARY_ACK) == (4, 5, 6)
    assert impl.RESERVED_EVENTS == {
        "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"
    }


@pytest.mark.parametrize(
    "cls",
    [UnknownPacketType, InvalidNamespace, InvalidAckId, InvalidPayload, InvalidAttachments,
     UnexpectedBinary, UnexpectedText],
)
def test_error_hierarchy(cls):
    assert issubclass(cls, SocketPacketError)
    assert issubclass(SocketPacketError, ProtocolError)
    assert issubclass(TooManyAttachments, InvalidAttachments)


# ---------------------------------------------------------------------------- decode: valid

VALID = [
    # data, (type, nsp, data, id, attachments)
    (b"0", (CONNECT, "/", None, None, 0)),
    (b'0{"token":"abc"}', (CONNECT, "/", {"token": "abc"}, None, 0)),
    (b"0/admin,", (CONNECT, "/admin", None, None, 0)),
    (b"0/admin", (CONNECT, "/admin", None, None, 0)),
    (b'0/admin,{"a":1}', (CONNECT, "/admin", {"a": 1}, None, 0)),
    (b"01", (CONNECT, "/", None, 1, 0)),
    (b"0/\xc3\xa9,", (CONNECT, "/\u00e9", None, None, 0)),
    (b"0/", (CONNECT, "/", None, None, 0)),
    (b"1", (DISCONNECT, "/", None, None, 0)),
    (b"1/admin,", (DISCONNECT, "/admin", None, None, 0)),
    (b'2["hello"]', (EVENT, "/", ["hello"], None, 0)),
    (b'2["hello",1,{"a":[true,null,1.5]}]',
     (EVENT, "/", ["hello", 1, {"a": [True, None, 1.5]}], None, 0)),
    (b'2/chat,["msg"]', (EVENT, "/chat", ["msg"], None, 0)),
    (b'212["ack me"]', (EVENT, "/", ["ack me"], 12, 0)),
    (b'2/chat,7["x"]', (EVENT, "/chat", ["x"], 7, 0)),
    (b'2007["x"]', (EVENT, "/", ["x"], 7, 0)),
    (b'2' + b"9" * 15 + b'["x"]', (EVENT, "/", ["x"], 10**15 - 1, 0)),
    (b"2[1]", (EVENT, "/", [1], None, 0)),
    (b"2[-1.5e3]", (EVENT, "/", [-1500.0], None, 0)),
    (b'2["disconnected"]', (EVENT, "/", ["disconnected"], None, 0)),
    (b'2["Connect"]', (EVENT, "/", ["Connect"], None, 0)),
    (b'2 [ "x" ] \n', (EVENT, "/", ["x"], None, 0)),
    (b'2["\xc3\xa9\xf0\x9f\x98\x80"]', (EVENT, "/", ["\u00e9\U0001f600"], None, 0)),
    (b'2["\\ud83d\\ude00"]', (EVENT, "/", ["\U0001f600"], None, 0)),
    (b'2["x",18446744073709551615]', (EVENT, "/", ["x", 2**64 - 1], None, 0)),
    (b"3[]", (ACK, "/", [], None, 0)),
    (b"31[]", (ACK, "/", [], 1, 0)),
    (b'3/a,5["r",null]', (ACK, "/a", ["r", None], 5, 0)),
    (b"4", (CONNECT_ERROR, "/", None, None, 0)),
    (b"41", (CONNECT_ERROR, "/", None, 1, 0)),
    (b'4"not allowed"', (CONNECT_ERROR, "/", "not allowed", None, 0)),
    (b'4{"message":"no"}', (CONNECT_ERROR, "/", {"message": "no"}, None, 0)),
    (b'4/admin,{"message":"no"}', (CONNECT_ERROR, "/admin", {"message": "no"}, None, 0)),
    (b"51-" + b'["f",' + PLACEHOLDER0 + b"]",
     (BINARY_EVENT, "/", ["f", {"_placeholder": True, "num": 0}], None, 1)),
    (b'501-["f"]', (BINARY_EVENT, "/", ["f"], None, 1)),
    (b'52-/chat,3["f"]', (BINARY_EVENT, "/chat", ["f"], 3, 2)),
    (b"60-[]", (BINARY_ACK, "/", [], None, 0)),
    (b"610-/a,9[1]", (BINARY_ACK, "/a", [1], 9, 10)),
]


@pytest.mark.parametrize("data, expected", VALID)
def test_decode_valid(impl, data, expected):
    packet = impl.decode(data)
    ptype, nsp, value, id_, attachments = expected
    assert model.fields(packet) == (ptype, nsp, model.typed(value), id_, attachments)


@pytest.mark.parametrize("data, expected", VALID)
def test_decode_skips_engine_io_digit(impl, data, expected):
    assert model.fields(impl.decode(b"4" + data, 1)) == model.fields(impl.decode(data))


def test_decode_limits_are_parameters(impl):
    assert impl.decode(b'52-["x"]', max_attachments=2).attachments == 2
    raises_exactly(TooManyAttachments, impl.decode, b'53-["x"]', max_attachments=2)
    assert impl.decode(b"0/abc,", max_namespace_length=4).nsp == "/abc"
    raises_exactly(InvalidNamespace, impl.decode, b"0/abcd,", max_namespace_length=4)


def test_decode_namespace_length_counts_bytes(impl):
    assert impl.decode(b"0/" + b"a" * 255 + b",").nsp == "/" + "a" * 255
    raises_exactly(InvalidNamespace, impl.decode, b"0/" + b"a" * 256 + b",")
    raises_exactly(InvalidNamespace, impl.decode, b"0/" + "\u00e9".encode() * 128 + b",")


# -------------------------------------------------------------------------- decode: invalid

INVALID = [
    (b"", UnknownPacketType),
    (b"9", UnknownPacketType),
    (b"7", UnknownPacketType),
    (b"a", UnknownPacketType),
    (b"/", UnknownPacketType),
    (b"\xff", UnknownPacketType),
    (b" 2", UnknownPacketType),
    (b"-1", UnknownPacketType),
    # stricter than the official parser: EVENT/ACK/BINARY_* need a payload
    (b"2", InvalidPayload),
    (b"3", InvalidPayload),
    (b"21", InvalidPayload),
    (b"2/chat,", InvalidPayload),
    (b"2/chat,1", InvalidPayload),
    (b"50-", InvalidPayload),
    (b"61-1", InvalidPayload),
    # EVENT: a non-empty array whose first element is a (non-reserved) string or a number
    (b"2{}", InvalidPayload),
    (b"2[]", InvalidPayload),
    (b"2[null]", InvalidPayload),
    (b"2[true]", InvalidPayload),
    (b'2[["x"]]', InvalidPayload),
    (b'2[{"x":1}]', InvalidPayload),
    (b'2"x"', InvalidPayload),
    (b"2null", InvalidPayload),
    (b"21{}", InvalidPayload),
    (b'50-{"x":1}', InvalidPayload),
    (b"50-[]", InvalidPayload),
    # JSON syntax
    (b"2[", InvalidPayload),
    (b'2["x"', InvalidPayload),
    (b'2["x"]]', InvalidPayload),
    (b'2["x"]x', InvalidPayload),
    (b'2["x",]', InvalidPayload),
    (b"2['x']", InvalidPayload),
    (b'2,["x"]', InvalidPayload),
    (b'2/a,b,["x"]', InvalidPayload),
    (b'2["x"]\x00', InvalidPayload),
    (b'2\x0c["x"]', InvalidPayload),
    (b'2["a\x01"]', InvalidPayload),
    (b'2["\xff"]', InvalidPayload),  # not UTF-8
    (b'2["\xed\xa0\x80"]', InvalidPayload),  # UTF-8 encoded surrogate
    (b'2\xef\xbb\xbf["x"]', InvalidPayload),  # byte order mark
    (b'2["x",NaN]', InvalidPayload),
    (b'2["x",Infinity]', InvalidPayload),
    (b'2["x",01]', InvalidPayload),
    (b'2["x",1e400]', InvalidPayload),  # stricter: would be Infinity in JavaScript
    (b'2["\\ud800"]', InvalidPayload),  # stricter: a lone surrogate cannot be re-encoded
    # the other packet types
    (b"0[]", InvalidPayload),
    (b'0"x"', InvalidPayload),
    (b"0null", InvalidPayload),
    (b"01[]", InvalidPayload),
    (b"1{}", InvalidPayload),
    (b'1"x"', InvalidPayload),
    (b"1null", InvalidPayload),
    (b"1[]", InvalidPayload),
    (b"3{}", InvalidPayload),
    (b'3"x"', InvalidPayload),
    (b"3null", InvalidPayload),
    (b"4[]", InvalidPayload),
    (b"4null", InvalidPayload),
    (b"4true", InvalidPayload),
    # attachments: <digits>-
    (b'51["x"]', InvalidAttachments),
    (b"5", InvalidAttachments),
    (b"51", InvalidAttachments),
    (b'5-["x"]', InvalidAttachments),  # stricter: the official parser reads "" as 0
    (b'5a-["x"]', InvalidAttachments),
    (b'5 1-["x"]', InvalidAttachments),
    (b'6["x"]', InvalidAttachments),
    (b'6/a,1-["x"]', InvalidAttachments),
    (b'511-["x"]', TooManyAttachments),
    (b"5" + b"9" * 30 + b'-["x"]', TooManyAttachments),
    # namespace and ack id
    (b'2/\xff,["x"]', InvalidNamespace),
    (b'2/\xc3,["x"]', InvalidNamespace),
    (b"2/" + b"a" * 300 + b',["x"]', InvalidNamespace),
    (b"2" + b"1" * 16 + b'["x"]', InvalidAckId),
    (b"3" + b"0" * 16 + b"[]", InvalidAckId),
]


@pytest.mark.parametrize("data, cls", INVALID)
def test_decode_invalid(impl, data, cls):
    raises_exactly(cls, impl.decode, data)


@pytest.mark.parametrize("name", sorted(model.RESERVED_EVENTS))
@pytest.mark.parametrize("header", [b"2", b"2/chat,", b"21", b"50-"])
def test_reserved_event_names_are_rejected(impl, header, name):
    data = header + b'["' + name.encode() + b'",1]'
    raises_exactly(InvalidPayload, impl.decode, data)


@pytest.mark.parametrize(
    "data, start, cls",
    [
        (b"42{}", 1, InvalidPayload),  # the Engine.IO MESSAGE digit skipped
        (b"2", 1, UnknownPacketType),  # an Engine.IO PING has no Socket.IO packet
        (b"4", 1, UnknownPacketType),
        (b"49", 1, UnknownPacketType),
        (b'4", 1', 5, UnknownPacketType),
        (b"40", 2, UnknownPacketType),
        (b"40", 10, UnknownPacketType),
    ],
)
def test_decode_with_start(impl, data, start, cls):
    raises_exactly(cls, impl.decode, data, start)


def test_deep_nesting_is_rejected_not_a_crash():
    def event(depth):  # an event whose data array is nested `depth` levels deep
        return b'2["x",' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"]"

    # The default bound (64) refuses before parsing; past it the parser's own limit (1024) holds.
    assert core.decode(event(64)).data[0] == "x"
    raises_exactly(InvalidPayload, core.decode, event(65))
    assert core.decode(event(1024), max_depth=10_000).data[0] == "x"
    raises_exactly(InvalidPayload, core.decode, event(1025), max_depth=10_000)
    raises_exactly(InvalidPayload, core.decode, b"2" + b"[" * 200_000)
    raises_exactly(InvalidPayload, core.decode, b"2" + b'{"a":' * 200_000)
    raises_exactly(InvalidPayload, core.decode, b"2" + b"[" * 200_000, max_depth=10**9)


def test_argument_count_is_bounded(impl):
    ok = b'2["x"' + b",1" * 255 + b"]"
    assert len(impl.decode(ok).data) == 256
    raises_exactly(InvalidPayload, impl.decode, b'2["x"' + b",1" * 256 + b"]")
    raises_exactly(InvalidPayload, impl.decode, b'2["x"' + b",1" * 50_000 + b"]")
    # Commas inside strings and nested values are not arguments.
    assert impl.decode(b'2["x","' + b"," * 1000 + b'",[' + b"1," * 999 + b"1]]").data[0] == "x"


@pytest.mark.parametrize("backslashes", range(6))
def test_a_quote_after_backslashes_ends_a_string_when_they_pair_up(impl, backslashes):
    # Inside the string: brackets and commas that are not structure; then a quote after
    # `backslashes` backslashes, which ends the string only when they pair up.
    inner = b"[[{,," + b"\\" * backslashes + b'"'
    if backslashes % 2:  # escaped: the string goes on, and must be closed again
        inner += b'[,]"'
    data = b'2["x","' + inner + b"," + b"[" * 63 + b"]" * 63 + b"]"
    assert impl.decode(data).data[1] == orjson.loads(b'"' + inner)
    # One level more is refused: the string's brackets were not counted, the real ones were.
    deeper = b'2["x","' + inner + b"," + b"[" * 64 + b"]" * 64 + b"]"
    raises_exactly(InvalidPayload, impl.decode, deeper)
    many = b'2["x","' + inner + b",1" * 254 + b"]"
    assert len(impl.decode(many).data) == 256
    raises_exactly(InvalidPayload, impl.decode, b'2["x","' + inner + b",1" * 255 + b"]")


def test_an_unterminated_string_is_invalid_json(impl):
    raises_exactly(InvalidPayload, impl.decode, b'2["x","abc')
    raises_exactly(InvalidPayload, impl.decode, b'2["x","abc\\"]')


def test_attachment_bytes_are_bounded(impl):
    decoder = impl.Decoder(max_attachment_bytes=10)
    assert decoder.add_text(b'52-["x",' + PLACEHOLDER0 + b"," + PLACEHOLDER1 + b"]") is None
    assert decoder.add_binary(b"123456") is None
    raises_exactly(InvalidAttachments, decoder.add_binary, b"12345")
    assert not decoder.waiting


def test_deep_placeholders_are_rebuilt_without_recursion():
    depth = 1000
    text = b'51-["x",' + b"[" * depth + PLACEHOLDER0 + b"]" * depth + b"]"
    decoder = core.Decoder(max_depth=2 * depth)
    assert decoder.add_text(text) is None
    value = decoder.add_binary(b"deep").data[1]
    for _ in range(depth):
        (value,) = value
    assert value == b"deep"


@pytest.mark.parametrize("start", [-1, -(10**8)])
def test_decode_rejects_negative_start(start):
    """decode() indexes the C buffer at ``start`` without a lower bound check: -1 reads a byte
    of the bytes object's header, a large negative value crashes the interpreter."""
    code = (
        "from fastsio._core.sio_packet import decode\n"
        "try:\n"
        f"    decode(bytes(bytearray(b'2[\"x\"]')), {start})\n"
        "except BaseException as e:\n"
        "    print(type(e).__name__)\n"
    )
    assert run_isolated(code) == (0, "ValueError")


def test_none_is_not_bytes():
    """Cython ``bytes`` arguments let None through, then read it as a bytes object (undefined
    behaviour; today it looks like an empty packet and raises a ProtocolError)."""
    code = (
        "from fastsio._core import sio_packet, eio_packet\n"
        "calls = [lambda: sio_packet.decode(None), lambda: sio_packet.Decoder().add_text(None),\n"
        "         lambda: sio_packet.stamp_offset(None, b'1'),\n"
        "         lambda: eio_packet.packet_type(None), lambda: eio_packet.decode_payload(None)]\n"
        "for call in calls:\n"
        "    try:\n"
        "        call()\n"
        "    except BaseException as e:\n"
        "        print(type(e).__name__)\n"
    )
    assert run_isolated(code) == (0, "\n".join(["TypeError"] * 5))


# ------------------------------------------------------------------------------- Decoder


def test_decoder_plain_packets(impl):
    decoder = impl.Decoder()
    assert not decoder.waiting
    packet = decoder.add_text(b'2/chat,3["hi",1]')
    assert model.fields(packet) == (EVENT, "/chat", model.typed(["hi", 1]), 3, 0)
    assert model.fields(decoder.add_text(b"40", 1)) == (CONNECT, "/", model.typed(None), None, 0)
    assert not decoder.waiting


def test_decoder_rebuilds_binary_event(impl):
    decoder = impl.Decoder()
    text = b'52-/up,4["file",' + PLACEHOLDER0 + b',{"_placeholder":true,"num":1}]'
    assert decoder.add_text(text) is None
    assert decoder.waiting
    assert decoder.add_binary(b"\x00first") is None
    assert decoder.waiting
    packet = decoder.add_binary(b"second")
    assert not decoder.waiting
    assert model.fields(packet) == (
        EVENT, "/up", model.typed(["file", b"\x00first", b"second"]), 4, 0
    )


def test_decoder_rebuilds_nested_placeholders(impl):
    decoder = impl.Decoder()
    text = (
        b'53-["up",{"a":[{"_placeholder":true,"num":2},{"b":' + PLACEHOLDER0 + b'}],'
        b'"c":{"_placeholder":true,"num":1,"extra":"ignored"}},' + PLACEHOLDER0 + b","
        b'{"_placeholder":false,"num":0},{"_placeholder":1,"num":0},{"num":0}]'
    )
    assert decoder.add_text(text) is None
    assert decoder.add_binary(b"zero") is None
    assert decoder.add_binary(b"one") is None
    packet = decoder.add_binary(b"two")
    assert packet.data == [
        "up",
        {"a": [b"two", {"b": b"zero"}], "c": b"one"},
        b"zero",  # the same attachment twice
        {"_placeholder": False, "num": 0},  # not placeholders: left as they are
        {"_placeholder": 1, "num": 0},
        {"num": 0},
    ]


def test_decoder_rebuilds_binary_ack(impl):
    decoder = impl.Decoder()
    assert decoder.add_text(b"461-/a,7[" + PLACEHOLDER0 + b"]", 1) is None
    packet = decoder.add_binary(b"\xff")
    assert model.fields(packet) == (ACK, "/a", model.typed([b"\xff"]), 7, 0)


def test_decoder_binary_packet_without_attachments(impl):
    decoder = impl.Decoder()
    packet = decoder.add_text(b'50-["x",1]')
    assert model.fields(packet) == (EVENT, "/", model.typed(["x", 1]), None, 0)
    assert not decoder.waiting
    packet = decoder.add_text(b"60-5[]")
    assert model.fields(packet) == (ACK, "/", model.typed([]), 5, 0)
    raises_exactly(InvalidAttachments, decoder.add_text, b'50-["x",' + PLACEHOLDER0 + b"]")
    assert not decoder.waiting


@pytest.mark.parametrize(
    "placeholder",
    [b'{"_placeholder":true,"num":1}', b'{"_placeholder":true,"num":-1}',
     b'{"_placeholder":true,"num":"0"}', b'{"_placeholder":true,"num":0.0}',
     b'{"_placeholder":true,"num":0.5}', b'{"_placeholder":true,"num":true}',
     b'{"_placeholder":true,"num":null}', b'{"_placeholder":true}',
     b'{"_placeholder":true,"num":99999999999999999999999}'],
)
def test_decoder_rejects_bad_placeholder(impl, placeholder):
    decoder = impl.Decoder()
    assert decoder.add_text(b'51-["x",{"deep":[' + placeholder + b"]}]") is None
    raises_exactly(InvalidAttachments, decoder.add_binary, b"only one")
    assert not decoder.waiting  # dropped, ready for the next packet
    assert decoder.add_text(b'2["next"]').data == ["next"]


def test_decoder_unexpected_binary(impl):
    decoder = impl.Decoder()
    raises_exactly(UnexpectedBinary, decoder.add_binary, b"x")
    decoder.add_text(b'2["x"]')
    raises_exactly(UnexpectedBinary, decoder.add_binary, b"x")


def test_decoder_unexpected_text(impl):
    decoder = impl.Decoder()
    assert decoder.add_text(b'52-["x"]') is None
    assert decoder.add_binary(b"a") is None
    raises_exactly(UnexpectedText, decoder.add_text, b'2["y"]')
    assert decoder.waiting  # the pending packet is kept
    assert decoder.add_binary(b"b").data == ["x"]


def test_decoder_reset(impl):
    decoder = impl.Decoder()
    assert decoder.add_text(b'52-["x"]') is None
    decoder.add_binary(b"a")
    decoder.reset()
    assert not decoder.waiting
    raises_exactly(UnexpectedBinary, decoder.add_binary, b"b")
    assert decoder.add_text(b'2["y"]').data == ["y"]


def test_decoder_errors_leave_it_usable(impl):
    decoder = impl.Decoder(max_attachments=1)
    raises_exactly(TooManyAttachments, decoder.add_text, b'52-["x"]')
    raises_exactly(InvalidPayload, decoder.add_text, b"2")
    assert not decoder.waiting
    assert decoder.add_text(b'51-["x"]') is None
    assert decoder.add_binary(b"a").data == ["x"]


def test_decoder_settings(impl):
    decoder = impl.Decoder(max_attachments=3, max_namespace_length=5)
    assert (decoder.max_attachments, decoder.max_namespace_length) == (3, 5)
    raises_exactly(InvalidNamespace, decoder.add_text, b'2/toolong,["x"]')
    assert impl.Decoder().max_attachments == 10
    assert impl.Decoder().max_namespace_length == 256


# -------------------------------------------------------------------------------- encode

ENCODE = [
    # (type, nsp, data, id), parts
    ((EVENT, "/", ["hello"], None), [b'42["hello"]']),
    ((EVENT, "/chat", ["hello", 1], 12), [b'42/chat,12["hello",1]']),
    ((EVENT, "", ["x"], None), [b'42["x"]']),
    ((EVENT, "/", ["x"], 0), [b'420["x"]']),
    ((EVENT, "/", ["\u00e9", "\U0001f600", "\n\"\\\x00\x7f\u2028"], None),
     ['42["\u00e9","\U0001f600","\\n\\"\\\\\\u0000\x7f\u2028"]'.encode()]),
    ((EVENT, "/", ["x", 1.0, 1e16, 1e-6, 0.00001, -0.0, 2**64 - 1], None),
     [b'42["x",1.0,1e+16,1e-6,0.00001,-0.0,18446744073709551615]']),
    ((EVENT, "/", ["x", float("nan"), float("inf")], None), [b'42["x",null,null]']),
    ((EVENT, "/", ("x", (1, 2)), None), [b'42["x",[1,2]]']),
    ((EVENT, "/", ["x", {"a": None, "b": [True, False]}], None),
     [b'42["x",{"a":null,"b":[true,false]}]']),
    ((CONNECT, "/", None, None), [b"40"]),
    ((CONNECT, "/admin", {"sid": "abc"}, None), [b'40/admin,{"sid":"abc"}']),
    ((DISCONNECT, "/admin", None, None), [b"41/admin,"]),
    ((DISCONNECT, "/", None, None), [b"41"]),
    ((ACK, "/", [], 3), [b"433[]"]),
    ((ACK, "/a", ["ok", None], 15), [b'43/a,15["ok",null]']),
    ((CONNECT_ERROR, "/", {"message": "no"}, None), [b'44{"message":"no"}']),
    ((CONNECT_ERROR, "/", "no", None), [b'44"no"']),
    ((EVENT, "/", ["file", b"\x01\x02"], None),
     [b'451-["file",' + PLACEHOLDER0 + b"]", b"\x01\x02"]),
    ((EVENT, "/up", ["f", bytearray(b"a"), memoryview(b"b")], 7),
     [b'452-/up,7["f",' + PLACEHOLDER0 + b',{"_placeholder":true,"num":1}]', b"a", b"b"]),
    ((EVENT, "/", ["x", {"a": b"0", "b": [b"1", (b"2",)]}, b"3"], None),
     [b'454-["x",{"a":{"_placeholder":true,"num":0},"b":[{"_placeholder":true,"num":1},'
      b'[{"_placeholder":true,"num":2}]]},{"_placeholder":true,"num":3}]',
      b"0", b"1", b"2", b"3"]),
    ((ACK, "/", [b""], 2), [b"461-2[" + PLACEHOLDER0 + b"]", b""]),
    ((BINARY_EVENT, "/", ["x"], None), [b'450-["x"]']),
    ((BINARY_ACK, "/", [b"z"], 1), [b"461-1[" + PLACEHOLDER0 + b"]", b"z"]),
    ((EVENT, "/", None, None), [b"42"]),
]


@pytest.mark.parametrize("args, parts", ENCODE)
def test_encode(impl, args, parts):
    assert impl.encode(*args) == parts


def test_encode_defaults(impl):
    assert impl.encode(CONNECT) == [b"40"]
    assert impl.encode(EVENT, data=["x"]) == [b'42["x"]']


def test_encode_leaves_data_alone(impl):
    data = ["x", {"a": b"1", "b": [b"2"]}, (b"3",)]
    impl.encode(EVENT, "/", data)
    assert data == ["x", {"a": b"1", "b": [b"2"]}, (b"3",)]


@pytest.mark.parametrize("ptype", [-1, 7, 42])
def test_encode_rejects_type(impl, ptype):
    with pytest.raises(ValueError):
        impl.encode(ptype, "/", ["x"])


@pytest.mark.parametrize(
    "data", [["x", object()], ["x", {(1, 2): 2}], ["x", {1, 2}], ["x", 2**64], ["x", -(2**63) - 1],
             ["x", "\ud800"], ["x", b"ok", object()]],
)
def test_encode_rejects_non_json(impl, data):
    with pytest.raises(TypeError):
        impl.encode(EVENT, "/", data)


def test_encode_writes_non_string_keys_as_json_stringify_does(impl):
    data = ["x", {3: "4", 1.5: 1, True: 0, None: 2, "s": 3}]
    assert impl.encode(EVENT, "/", data) == [
        b'42["x",{"3":"4","1.5":1,"true":0,"null":2,"s":3}]'
    ]


@pytest.mark.parametrize("ptype", [CONNECT, DISCONNECT, CONNECT_ERROR])
def test_encode_rejects_bytes_in_non_event_model(ptype):
    with pytest.raises(TypeError):
        model.encode(ptype, "/", {"a": b"x"})


@pytest.mark.parametrize("ptype", [CONNECT, DISCONNECT, CONNECT_ERROR])
def test_encode_rejects_bytes_in_non_event_core(ptype):
    """Today core.encode(0, "/", {"a": b"x"}) == [b'40{"a":{"_placeholder":true,"num":0}}']:
    a placeholder for an attachment that is never sent."""
    with pytest.raises(TypeError):
        core.encode(ptype, "/", {"a": b"x"})


def test_encode_json_depth(impl):
    def nested(depth):
        value = []
        for _ in range(depth - 1):
            value = [value]
        return value

    assert impl.encode(ACK, "/", nested(254))[0].startswith(b"43[[[")
    with pytest.raises(TypeError):
        impl.encode(ACK, "/", nested(255))


# --------------------------------------------------------------------------- stamp_offset


@pytest.mark.parametrize(
    "packet, offset, expected",
    [
        (b'42["x"]', b"abc-1.2_3", b'42["x","abc-1.2_3"]'),
        (b'42/chat,5["x",{"a":[1]}]', b"7", b'42/chat,5["x",{"a":[1]},"7"]'),
        (b'451-["x",' + PLACEHOLDER0 + b"]", b"Z", b'451-["x",' + PLACEHOLDER0 + b',"Z"]'),
        (b'42["x"]', b"", b'42["x",""]'),
    ],
)
def test_stamp_offset(impl, packet, offset, expected):
    assert impl.stamp_offset(packet, offset) == expected
    assert impl.decode(expected, 1).data[-1] == offset.decode()


@pytest.mark.parametrize("offset", [b'"', b"a b", b"\xff", b",", b"]", b"\\", b"a\x00", b"+"])
def test_stamp_offset_rejects_offset(impl, offset):
    with pytest.raises(ValueError):
        impl.stamp_offset(b'42["x"]', offset)


@pytest.mark.parametrize("packet", [b"", b"]", b"4", b"42", b'42{"a":1}', b'42"x"'])
def test_stamp_offset_rejects_non_events(impl, packet):
    with pytest.raises(ValueError):
        impl.stamp_offset(packet, b"1")


def test_stamp_offset_on_empty_array_model():
    assert model.stamp_offset(b"42[]", b"1") == b'42["1"]'


def test_stamp_offset_on_empty_array_core():
    """Today: b'42[,"1"]'. An emitted EVENT is never empty (it starts with the event name),
    but stamp_offset accepts any packet ending in "]"."""
    assert core.stamp_offset(b"42[]", b"1") == b'42["1"]'


# ------------------------------------------------------------------------------ strategies

keys = st.text(max_size=5).filter(lambda k: k != "_placeholder")
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(model.INT_MIN, model.INT_MAX),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10),
)


def json_values(leaf):
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)
        ),
        max_leaves=10,
    )


plain_values = json_values(leaves)
binary_values = json_values(st.one_of(leaves, st.binary(max_size=8)))
event_names = st.one_of(
    st.text(max_size=10).filter(lambda name: name not in model.RESERVED_EVENTS),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
)
event_data = st.builds(
    lambda name, args: [name, *args], event_names, st.lists(binary_values, max_size=4)
)
namespaces = st.one_of(
    st.just("/"), st.just(""), st.text(max_size=12).filter(lambda t: "," not in t).map("/".__add__)
)
ack_ids = st.one_of(st.none(), st.integers(0, 10**15 - 1))


@st.composite
def packets(draw):
    """(type, nsp, data, id) that decode back to what was sent (bytes only in EVENT and ACK)."""
    ptype = draw(st.integers(0, 6))
    if ptype in (EVENT, BINARY_EVENT):
        data = draw(event_data)
    elif ptype in (ACK, BINARY_ACK):
        data = draw(st.lists(binary_values, max_size=4))
    elif ptype == CONNECT:
        data = draw(st.one_of(st.none(), st.dictionaries(keys, plain_values, max_size=4)))
    elif ptype == CONNECT_ERROR:
        objects = st.dictionaries(keys, plain_values, max_size=4)
        data = draw(st.one_of(st.none(), st.text(), objects))
    else:
        data = None
    return ptype, draw(namespaces), data, draw(ack_ids)


def count_bytes(value):
    if isinstance(value, bytes):
        return 1
    if isinstance(value, list):
        return sum(map(count_bytes, value))
    if isinstance(value, dict):
        return sum(map(count_bytes, value.values()))
    return 0


def outcome(function, *args):
    """``("ok", result)`` or ``("error", class)``: the documented errors only (anything else
    propagates and fails the test). TooManyAttachments counts as InvalidAttachments: for a
    count that is both too long and malformed the two implementations may name either."""
    try:
        result = function(*args)
    except ProtocolError as error:
        cls = type(error)
        return ("error", InvalidAttachments if cls is TooManyAttachments else cls)
    if result is None:
        return ("ok", None)
    if isinstance(result, (bytes, list)):
        return ("ok", result)
    return ("ok", model.fields(result))


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("id_", [0, 7, 10, 99, 10**15 - 1, 10**18 - 1, 10**18, 2**64, -1, True])
@pytest.mark.parametrize("ptype", [EVENT, ACK])
@pytest.mark.parametrize("nsp", ["/", "/chat", "/ü"])
def test_ack_ids_at_the_edges_of_the_header(ptype, nsp, id_):
    # The header is written in C for ids of 0 to 10**18 - 1, with str() for the rest.
    data = ["x", b"\x01"] if ptype == EVENT else [b"\x01"]
    assert core.encode(ptype, nsp, data, id_).parts == model.encode(ptype, nsp, data, id_)
    assert core.encode(ptype, nsp, ["x"], id_).parts == model.encode(ptype, nsp, ["x"], id_)
    assert core.encode(DISCONNECT, nsp, None, id_).parts == model.encode(DISCONNECT, nsp, None, id_)


@SETTINGS
@given(packets())
def test_encode_agrees_with_model(packet):
    assert core.encode(*packet) == model.encode(*packet)


@SETTINGS
@given(
    st.integers(0, 6), namespaces,
    json_values(st.one_of(leaves, st.binary(max_size=4), st.floats(), st.integers())), ack_ids,
)
def test_encode_agrees_with_model_on_anything(ptype, nsp, data, id_):
    """Any JSON-like data (NaN, huge integers...), with bytes only where they can be sent."""
    assume(ptype in (EVENT, ACK, BINARY_EVENT, BINARY_ACK) or count_bytes(data) == 0)
    try:
        expected = model.encode(ptype, nsp, data, id_)
    except TypeError:
        with pytest.raises(TypeError):
            core.encode(ptype, nsp, data, id_)
    else:
        assert core.encode(ptype, nsp, data, id_) == expected


@pytest.mark.parametrize("impl_name", ["core", "model"])
@SETTINGS
@given(packet=packets())
def test_round_trip(impl_name, packet):
    impl = core if impl_name == "core" else model
    ptype, nsp, data, id_ = packet
    parts = impl.encode(*packet)
    assert parts[0][:1] == b"4"
    decoder = impl.Decoder(max_attachments=100)
    decoded = decoder.add_text(parts[0], 1)
    for attachment in parts[1:]:
        assert decoded is None
        decoded = decoder.add_binary(attachment)
    expected_type = {BINARY_EVENT: EVENT, BINARY_ACK: ACK}.get(ptype, ptype)
    expected_nsp = nsp if nsp not in ("", "/") else "/"
    assert model.fields(decoded) == (expected_type, expected_nsp, model.typed(data), id_, 0)
    assert not decoder.waiting
    assert len(parts) == 1 + count_bytes(data)


@SETTINGS
@given(
    event_data, namespaces, ack_ids, st.text(alphabet="abcXYZ0123456789-_.", max_size=12)
)
def test_stamp_offset_agrees_and_round_trips(data, nsp, id_, offset):
    parts = core.encode(EVENT, nsp, data, id_)
    stamped = core.stamp_offset(parts[0], offset.encode())
    assert stamped == model.stamp_offset(parts[0], offset.encode())
    decoder = core.Decoder(max_attachments=100)
    decoded = decoder.add_text(stamped, 1)
    for attachment in parts[1:]:
        decoded = decoder.add_binary(attachment)
    assert model.typed(decoded.data) == model.typed([*data, offset])


@SETTINGS
@given(
    st.sampled_from([b"42", b"45", b"451-", b"42/a,"]).flatmap(
        lambda head: st.binary(max_size=20).map(head.__add__)
    ),
    st.binary(max_size=6),
)
def test_stamp_offset_never_crashes_and_agrees(packet, offset):
    assume(not packet.endswith(b"[]"))  # see test_stamp_offset_on_empty_array_core

    def attempt(function):
        try:
            return function(packet, offset)
        except ValueError:
            return ValueError

    assert attempt(core.stamp_offset) == attempt(model.stamp_offset)


@st.composite
def mutated(draw, base):
    """A value from ``base`` with a few byte edits."""
    data = bytearray(draw(base))
    interesting = st.sampled_from(list(b'0123456789-/,[]{}":\\ ntru\x00\xff\xc3'))
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


fragments = st.sampled_from(
    [b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"12", b"-", b"/", b",", b"/chat,", b"/\xff,",
     b"[", b"]", b"{", b"}", b'"x"', b'"connect"', b'"_placeholder"', b":", b"true", b"null",
     b"1.5", b"1e400", b"-0", b"01", b" ", b"\\", b'"\\ud800"', b'"\\u00e9"', b"\xc3\xa9", b"\xff",
     PLACEHOLDER0, b'{"_placeholder":true,"num":1}', b"9" * 16]
)
encoded_texts = packets().map(lambda packet: model.encode(*packet)[0][1:])
any_texts = st.one_of(
    st.binary(max_size=40),
    st.tuples(st.sampled_from(b"0123456"), st.binary(max_size=30)).map(
        lambda t: bytes([t[0]]) + t[1]
    ),
    st.lists(fragments, max_size=12).map(b"".join),
    encoded_texts,
    mutated(encoded_texts),
    mutated(st.lists(fragments, max_size=12).map(b"".join)),
)


@SETTINGS
@given(any_texts, st.integers(0, 12), st.integers(0, 20))
def test_decode_never_crashes_and_agrees(data, max_attachments, max_namespace_length):
    args = (data, 0, max_attachments, max_namespace_length)
    assert outcome(core.decode, *args) == outcome(model.decode, *args)


@SETTINGS
@given(any_texts, st.integers(0, 3))
def test_decode_with_start_agrees(data, start):
    assert outcome(core.decode, data, start) == outcome(model.decode, data, start)


frames = st.lists(
    st.one_of(
        any_texts.map(lambda data: ("text", data)),
        st.sampled_from([b'52-["x",', b'51-["x",', b'61-[', b'53-/a,1["y",']).flatmap(
            lambda head: st.lists(
                st.sampled_from([PLACEHOLDER0, b'{"_placeholder":true,"num":1}', b"1", b'"s"']),
                min_size=1, max_size=3,
            ).map(lambda items: ("text", head + b",".join(items) + b"]"))
        ),
        st.binary(max_size=6).map(lambda data: ("binary", data)),
    ),
    max_size=8,
)


@SETTINGS
@given(frames, st.integers(0, 4))
def test_decoder_never_crashes_and_agrees(frame_list, max_attachments):
    decoders = core.Decoder(max_attachments), model.Decoder(max_attachments)
    for kind, data in frame_list:
        results = [
            outcome(decoder.add_text if kind == "text" else decoder.add_binary, data)
            for decoder in decoders
        ]
        assert results[0] == results[1]
        assert decoders[0].waiting == decoders[1].waiting
