"""The wire of ``@socket.io/redis-streams-adapter`` 0.3.x (the ``ClusterAdapter`` message model):
message types, stream entries, pub/sub payloads, sessions, the stream routing hash.

Everything here is pure data conversion (no Redis, no asyncio), so the same code serves the
adapter and the emitter, and tests can check it byte for byte against the official encoders.
See the team's wire reference (``shared/cluster-wire.md``) for the sources of each rule.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import math
import re
import secrets
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import msgpack
import orjson

# ClusterAdapter's MessageType (socket.io-adapter lib/cluster-adapter.ts).
INITIAL_HEARTBEAT = 1
HEARTBEAT = 2
BROADCAST = 3
SOCKETS_JOIN = 4
SOCKETS_LEAVE = 5
DISCONNECT_SOCKETS = 6
FETCH_SOCKETS = 7
FETCH_SOCKETS_RESPONSE = 8
SERVER_SIDE_EMIT = 9
SERVER_SIDE_EMIT_RESPONSE = 10
BROADCAST_CLIENT_COUNT = 11
BROADCAST_ACK = 12
ADAPTER_CLOSE = 13

RESPONSE_TYPES = frozenset(
    (FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT_RESPONSE, BROADCAST_CLIENT_COUNT, BROADCAST_ACK)
)
# The types whose data may carry binary values, hence may take the msgpack path in a stream.
_MAY_CARRY_BINARY = frozenset(
    (BROADCAST, FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT, SERVER_SIDE_EMIT_RESPONSE, BROADCAST_ACK)
)

EMITTER_UID = "emitter"
EVENT = 2  # socket.io-parser's PacketType.EVENT, as it travels inside cluster messages

_OFFSET_RE = re.compile(r"^[0-9]+-[0-9]+$")


class WireError(ValueError):
    """A stream entry or pub/sub payload that is not a well-formed cluster message."""


def random_id() -> str:
    """A uid or request id as the official adapter makes them: 8 random bytes, in hex."""
    return secrets.token_hex(8)


# -- values ------------------------------------------------------------------------------------
def has_binary(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` holds bytes anywhere (the official ``hasBinary``)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return True
    if depth > 64:
        return False
    if isinstance(value, (list, tuple)):
        return any(has_binary(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(has_binary(v, depth + 1) for v in value.values())
    return False


def _msgpack_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, _dt.datetime):
        # msgpack wants aware datetimes; JS Dates are instants, so naive means UTC here.
        return msgpack.Timestamp.from_datetime(value.replace(tzinfo=_dt.timezone.utc))
    raise TypeError(f"cannot encode {type(value).__name__} for the cluster")


def pack(value: Any) -> bytes:
    """msgpack as ``@msgpack/msgpack`` writes it: bytes as ``bin``, datetimes as ext -1."""
    return msgpack.packb(value, use_bin_type=True, datetime=True, default=_msgpack_default)  # type: ignore[no-any-return]


def unpack(data: bytes) -> Any:
    """msgpack from the JS encoders: ``bin`` as bytes, ext -1 as an aware datetime."""
    return msgpack.unpackb(data, raw=False, timestamp=3, strict_map_key=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} for the cluster")


_JSON_OPTS = orjson.OPT_NON_STR_KEYS


def to_json(value: Any) -> bytes:
    """JSON as ``JSON.stringify`` writes it (NaN and infinities become ``null``, as in JS)."""
    return orjson.dumps(value, default=_json_default, option=_JSON_OPTS)


# -- broadcast options -------------------------------------------------------------------------
def encode_opts(
    rooms: Iterable[Hashable], except_rooms: Iterable[Hashable], flags: Mapping[str, Any]
) -> dict[str, Any]:
    return {"rooms": list(rooms), "except": list(except_rooms), "flags": dict(flags)}


def decode_opts(opts: Any) -> tuple[frozenset[Hashable], frozenset[Hashable], dict[str, Any]]:
    """``(rooms, except, flags)``; a missing ``flags`` is ``{}``, unknown keys are kept."""
    if not isinstance(opts, dict):
        raise WireError("opts is not a map")
    rooms = opts.get("rooms") or []
    excepts = opts.get("except") or []
    flags = opts.get("flags") or {}
    if not isinstance(rooms, list) or not isinstance(excepts, list) or not isinstance(flags, dict):
        raise WireError("malformed opts")
    try:
        return frozenset(rooms), frozenset(excepts), flags
    except TypeError as exc:  # an unhashable room (a map, a list)
        raise WireError("a room is not a string or a number") from exc


def should_include(session_rooms: Iterable[Hashable], rooms: frozenset[Hashable],
                   excepts: frozenset[Hashable]) -> bool:
    """The official ``shouldIncludePacket``: a session is a target of a logged broadcast."""
    srooms = list(session_rooms)
    included = not rooms or any(r in rooms for r in srooms)
    return included and not any(r in excepts for r in srooms)


# -- messages ----------------------------------------------------------------------------------
def message(uid: str, nsp: str, type_: int, data: Any = None) -> dict[str, Any]:
    """A cluster message with the official key order (type, data, uid, nsp)."""
    out: dict[str, Any] = {"type": type_}
    if data is not None:
        out["data"] = data
    out["uid"] = uid
    out["nsp"] = nsp
    return out


def stream_fields(msg: Mapping[str, Any], only_plaintext: bool = False) -> dict[bytes, bytes]:
    """The XADD fields of ``msg``: strings only; ``data`` as JSON, or base64 msgpack when it
    holds binary (and ``only_plaintext`` is off); left out when empty."""
    fields = {
        b"uid": str(msg["uid"]).encode(),
        b"nsp": str(msg["nsp"]).encode(),
        b"type": str(int(msg["type"])).encode(),
    }
    data = msg.get("data")
    if data:
        if not only_plaintext and msg["type"] in _MAY_CARRY_BINARY and has_binary(data):
            fields[b"data"] = base64.b64encode(pack(data))
        else:
            fields[b"data"] = to_json(data)
    return fields


def _text(value: Any, what: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError as exc:
            raise WireError(f"{what} is not UTF-8") from exc
    if isinstance(value, str):
        return value
    raise WireError(f"{what} is missing")


def decode_stream_fields(fields: Mapping[Any, Any]) -> dict[str, Any]:
    """A stream entry's fields back into a message (``WireError`` when malformed)."""
    get = fields.get
    uid = _text(get(b"uid", get("uid")), "uid")
    nsp = _text(get(b"nsp", get("nsp")), "nsp")
    raw_type = _text(get(b"type", get("type")), "type")
    if not raw_type.isdigit():
        raise WireError("type is not a decimal number")
    msg: dict[str, Any] = {"uid": uid, "nsp": nsp, "type": int(raw_type)}
    raw = get(b"data", get("data"))
    if raw:
        if isinstance(raw, str):
            raw = raw.encode()
        try:
            if raw[:1] == b"{":
                msg["data"] = orjson.loads(raw)
            else:
                msg["data"] = unpack(base64.b64decode(raw, validate=True))
        except (orjson.JSONDecodeError, binascii.Error, ValueError, msgpack.UnpackException) as e:
            raise WireError(f"undecodable data: {e}") from e
    return msg


def pubsub_payload(msg: Mapping[str, Any]) -> bytes:
    """A pub/sub payload: the whole message in msgpack (integer ``type``)."""
    return pack(dict(msg))


def decode_pubsub_payload(payload: bytes) -> dict[str, Any]:
    try:
        msg = unpack(payload)
    except (ValueError, msgpack.UnpackException) as exc:
        raise WireError(f"undecodable payload: {exc}") from exc
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), int):
        raise WireError("not a cluster message")
    return msg


def check_message(msg: dict[str, Any]) -> None:
    """The shape every handler relies on (uid and nsp strings, a map as data)."""
    if not isinstance(msg.get("uid"), str) or not isinstance(msg.get("nsp"), str):
        raise WireError("uid and nsp must be strings")
    data = msg.get("data")
    if data is not None and not isinstance(data, dict):
        raise WireError("data is not a map")


# -- channels and streams -----------------------------------------------------------------------
def hash_code(s: str) -> int:
    """The adapter's 31-multiplier hash over UTF-16 code units, wrapped to int32 like JS."""
    h = 0
    units = s.encode("utf-16-le")
    for i in range(0, len(units), 2):
        h = (h * 31 + (units[i] | units[i + 1] << 8)) & 0xFFFFFFFF
    return h - 0x100000000 if h & 0x80000000 else h


def stream_name(base: str, count: int, nsp: str) -> str:
    """The stream a namespace is routed to (JS ``%`` keeps the sign: ``socket.io--3`` exists)."""
    if count == 1:
        return base
    return f"{base}-{int(math.fmod(hash_code(nsp), count))}"


def public_channel(prefix: str, nsp: str) -> str:
    return f"{prefix}#{nsp}#"


def private_channel(prefix: str, nsp: str, uid: str) -> str:
    return f"{prefix}#{nsp}#{uid}#"


# -- offsets -----------------------------------------------------------------------------------
def is_offset(value: Any) -> bool:
    return isinstance(value, str) and _OFFSET_RE.match(value) is not None


def parse_id(value: str | bytes) -> tuple[int, int]:
    """A stream id ``ms-seq`` as a comparable pair."""
    if isinstance(value, bytes):
        value = value.decode()
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


# -- sessions ----------------------------------------------------------------------------------
def encode_session(sid: str, pid: str, rooms: Iterable[Hashable], data: Any,
                   extra: Mapping[str, Any] | None = None) -> bytes:
    """``base64(msgpack({sid, pid, rooms, data}))``, the value of ``sio:session:<pid>``."""
    value: dict[str, Any] = {"sid": sid, "pid": pid, "rooms": list(rooms), "data": data}
    if extra:
        value.update(extra)
    return base64.b64encode(pack(value))


def decode_session(raw: bytes | str) -> dict[str, Any]:
    try:
        value = unpack(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, msgpack.UnpackException) as exc:
        raise WireError(f"undecodable session: {exc}") from exc
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("sid"), str)
        or not isinstance(value.get("pid"), str)
        or not isinstance(value.get("rooms"), list)
    ):
        raise WireError("not a session")
    return value
