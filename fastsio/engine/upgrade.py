"""The ``101 Switching Protocols`` answer to a WebSocket upgrade, with its bytes made once.

picows builds its ``101`` per connection as a Python object (a ``CIMultiDict`` of headers,
``HTTPStatus`` lookups, one formatted line per header) and then serializes it: a measurable part
of a handshake. What it needs from a response is its public shape (``status``, ``headers``
taking ``Sec-WebSocket-Accept``, ``to_bytes()``), so :class:`SwitchingProtocols` is a
``WSUpgradeResponse`` whose head is fixed bytes: only the accept value is added per connection.
The bytes are what picows's own ``create_101_response(extra)`` gives, header for header (checked
against it in ``tests/test_engine_upgrade_response.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from picows import WSUpgradeResponse

_STATUS_LINE = b"HTTP/1.1 101 Switching Protocols\r\n"
_ACCEPT = "Sec-WebSocket-Accept"


def _set(headers: list[tuple[str, str]], name: str, value: str) -> None:
    """``CIMultiDict.__setitem__``: the first header of that name (any case) takes the name and value
    in place, the others go; none: appended."""
    lname = name.lower()
    for i, (k, _v) in enumerate(headers):
        if k.lower() == lname:
            headers[i] = (name, value)
            headers[i + 1 :] = [h for h in headers[i + 1 :] if h[0].lower() != lname]
            return
    headers.append((name, value))


def _head(extra: Iterable[tuple[str, str]] | None) -> tuple[bytes, bool]:
    """The ``101``'s status line and headers but the accept value, as picows writes them; and
    whether the extra headers hold an accept header of their own (then the general path)."""
    headers: list[tuple[str, str]] = []
    for k, v in extra or ():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError("extra_headers key/value must be str types")
        if k.lower() == "host":
            _set(headers, k, v)
        else:
            headers.append((k, v))
    _set(headers, "Connection", "upgrade")
    _set(headers, "Upgrade", "websocket")
    own_accept = any(k.lower() == "sec-websocket-accept" for k, _ in headers)
    lines = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers)
    return _STATUS_LINE + lines, own_accept


class _AcceptSlot:
    """The headers of a :class:`SwitchingProtocols` as picows touches them: it sets the accept
    value, once, before ``to_bytes``."""

    __slots__ = ("accept",)

    def __init__(self) -> None:
        self.accept = ""

    def __setitem__(self, name: str, value: str) -> None:
        if name != _ACCEPT:
            raise KeyError(name)  # picows sets nothing else on a 101 it sends
        self.accept = value

    def __contains__(self, name: object) -> bool:
        return name == _ACCEPT and bool(self.accept)


class SwitchingProtocols(WSUpgradeResponse):
    """A ``101`` whose head (status line, extra headers, ``Connection``, ``Upgrade``) is bytes
    made before the hand-over; picows adds the accept value and writes ``to_bytes()``."""

    __slots__ = ("_head",)

    def __init__(self, head: bytes) -> None:
        self.version = b"HTTP/1.1"
        self.status = HTTPStatus.SWITCHING_PROTOCOLS
        self.headers: Any = _AcceptSlot()
        self.body = None
        self._head = head

    def to_bytes(self) -> bytearray:
        out = bytearray(self._head)
        accept = self.headers.accept
        if accept:
            out += b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n"
        out += b"\r\n"
        return out


_PLAIN_HEAD = _head(None)[0]


def switching_protocols(extra: Iterable[tuple[str, str]] | None = None) -> Any:
    """The ``101`` for a hand-over with these extra headers (cookie, hooks): fixed bytes, or
    picows's own response when a hook set the accept header itself (as picows does then)."""
    if not extra:
        return SwitchingProtocols(_PLAIN_HEAD)
    head, own_accept = _head(extra)
    if own_accept:
        return WSUpgradeResponse.create_101_response(list(extra))
    return SwitchingProtocols(head)
