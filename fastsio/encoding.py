"""What happens when a packet's arguments are not plain JSON: ``Server(json_default=...)``.

The core encodes with orjson, which already takes str, int, float, bool, None, dicts, lists,
tuples, datetimes, dates, times, UUIDs, enums and dataclasses (and bytes become binary
attachments). Only when that fails does :func:`encode_fallback` run (the fast path pays
nothing): each value orjson refuses (a pydantic model, a ``Decimal``, a set, ...) is replaced by
``json_default(value)``, then the packet is encoded again. Without a hook, or when the hook
cannot help, a ``TypeError`` names the event and the type. The user's function runs here, in
the Python layer: the core never calls user code.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from fastsio._core import sio_packet

if TYPE_CHECKING:
    from fastsio.server import Server

JsonDefault = Callable[[Any], Any]


class Encoder(Protocol):
    """``sio_packet.encode`` or ``msgpack_packet.encode``, as the server's parser says."""

    def __call__(
        self, type: int, nsp: str = "/", data: Any = None, id: int | None = None
    ) -> sio_packet.Encoded: ...

# What orjson encodes natively (bytes and friends are attachments, handled by the core).
_NATIVE = (str, int, float, bool, type(None), bytes, bytearray, memoryview, datetime.datetime,
           datetime.date, datetime.time, uuid.UUID, enum.Enum)
_MAX_DEPTH = 254  # orjson's own nesting limit


def _what(ptype: int, data: Any) -> str:
    if ptype in (sio_packet.EVENT, sio_packet.BINARY_EVENT) and isinstance(data, list) and data:
        return f"event {data[0]!r}"
    if ptype in (sio_packet.ACK, sio_packet.BINARY_ACK):
        return "an ack"
    return "a packet"


def prepare(value: Any, default: JsonDefault, depth: int = 0) -> Any:
    """``value`` with everything orjson refuses replaced by ``default(it)``, recursively."""
    if depth > _MAX_DEPTH:
        raise TypeError("nested too deeply (or a cycle)")
    if isinstance(value, _NATIVE):
        return value
    if isinstance(value, dict):
        return {k: prepare(v, default, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [prepare(v, default, depth + 1) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Its fields may need the hook too (orjson would stop at the first one it refuses).
        return {f.name: prepare(getattr(value, f.name), default, depth + 1)
                for f in dataclasses.fields(value)}
    converted = default(value)
    if converted is value:
        raise TypeError(f"json_default returned its argument ({type(value).__qualname__})")
    return prepare(converted, default, depth + 1)


def encode_fallback(
    server: Server, ptype: int, nsp: str, data: Any, ack_id: int | None
) -> sio_packet.Encoded:
    """``server.encode`` for data it refused: through ``server.json_default``, or a clear
    ``TypeError`` naming the event."""
    default = server.json_default
    what = _what(ptype, data)
    encode = server.encode
    wire = "msgpack" if server.parser == "msgpack" else "JSON"
    if default is None:
        try:
            return encode(ptype, nsp, data, ack_id)
        except TypeError as exc:
            raise TypeError(
                f"cannot encode the arguments of {what} as {wire}: {exc} "
                "(Server(json_default=...) can convert such values)"
            ) from None
    try:
        return encode(ptype, nsp, prepare(data, default), ack_id)
    except TypeError as exc:
        raise TypeError(f"cannot encode the arguments of {what} as {wire}: {exc}") from exc
