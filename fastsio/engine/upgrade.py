"""The ``101 Switching Protocols`` answer to a WebSocket upgrade, with its bytes made once.

picows builds its ``101`` per connection as a Python object (a ``CIMultiDict`` of headers,
``HTTPStatus`` lookups, one formatted line per header) and then serializes it: a measurable part
of a handshake. What it needs from a response is its public shape (``status``, ``headers``
taking ``Sec-WebSocket-Accept``, ``to_bytes()``), so :class:`SwitchingProtocols` is a
``WSUpgradeResponse`` whose head is fixed bytes: only the accept value is added per connection.
The bytes are what picows's own ``create_101_response(extra)`` gives, header for header (checked
against it in ``tests/test_engine_upgrade_response.py``), followed in the same write by the
session's first frame (the Engine.IO open packet).
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from picows import WSUpgradeResponse

_STATUS_LINE = b"HTTP/1.1 101 Switching Protocols\r\n"
# Looked up once: on Python 3.11 a member read off an enum class runs Python code (the enum
# metaclass has a __getattr__, the member is an enum.property), several thousand instructions.
_SWITCHING_PROTOCOLS = HTTPStatus.SWITCHING_PROTOCOLS
_ACCEPT = "Sec-WebSocket-Accept"


def _set(headers: list[tuple[str, str]], name: str, value: str) -> None:
    """``CIMultiDict.__setitem__``: the first header of that name (any case) takes this name
    and value in place, the others go; none: appended."""
    lname = name.lower()
    for i, (k, _v) in enumerate(headers):
        if k.lower() == lname:
            headers[i] = (name, value)
            headers[i + 1 :] = [h for h in headers[i + 1 :] if h[0].lower() != lname]
            return
    headers.append((name, value))


def _headers(extra: Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    """The ``101``'s headers but the accept value, as picows's ``create_101_response(extra)``
    orders them."""
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
    return headers


def _lines(headers: list[tuple[str, str]]) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in headers)


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
    made before the hand-over; picows adds the accept value and writes ``to_bytes()``. ``tail``
    goes out in the same write, after the head: the session's first WebSocket frame (the
    Engine.IO open packet), so that a handshake costs one write less."""

    __slots__ = ("_head", "_headers", "_tail")

    def __init__(
        self, head: bytes, tail: bytes = b"", headers: list[tuple[str, str]] | None = None
    ) -> None:
        self.version = b"HTTP/1.1"
        self.status = _SWITCHING_PROTOCOLS
        self.headers: Any = _AcceptSlot()
        self.body = None
        self._head = head
        self._tail = tail
        # Only when a hook set an accept header itself: picows's own header map replaces that
        # one in place, so the head is made at the end (a rare path).
        self._headers = headers

    def to_bytes(self) -> bytearray:
        accept = self.headers.accept
        if self._headers is not None:
            headers = list(self._headers)
            if accept:
                _set(headers, _ACCEPT, accept)
            out = bytearray(_STATUS_LINE + _lines(headers))
        else:
            out = bytearray(self._head)
            if accept:
                out += b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n"
        out += b"\r\n"
        # picows keeps the response for the connection's life: the frame is not kept with it.
        tail, self._tail = self._tail, b""
        if tail and accept:
            out += tail  # (no accept: picows is refusing the upgrade, and writes no frame)
        return out


_PLAIN_HEAD = _STATUS_LINE + _lines(_headers(None))


def switching_protocols(
    extra: Iterable[tuple[str, str]] | None = None, tail: bytes = b""
) -> SwitchingProtocols:
    """The ``101`` for a hand-over with these extra headers (cookie, hooks), and ``tail`` (a
    WebSocket frame) written with it."""
    if not extra:
        return SwitchingProtocols(_PLAIN_HEAD, tail)
    headers = _headers(extra)
    if any(k.lower() == "sec-websocket-accept" for k, _ in headers):
        return SwitchingProtocols(b"", tail, headers)
    return SwitchingProtocols(_STATUS_LINE + _lines(headers), tail)
