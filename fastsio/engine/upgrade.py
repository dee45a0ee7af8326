"""The head of the ``101 Switching Protocols`` answer to a WebSocket upgrade.

The core's ``WebSocketProtocol`` writes it with the accept value after it, then the blank line
and the session's first frame (``_core/websocket.pyx``). The head is picows's
``create_101_response(extra)``, header for header (checked against it in
``tests/test_engine_upgrade_response.py``), and the same bytes for every connection without
extra headers.
"""

from __future__ import annotations

from collections.abc import Iterable

_STATUS_LINE = b"HTTP/1.1 101 Switching Protocols\r\n"


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


_PLAIN_HEAD = _STATUS_LINE + _lines(_headers(None))


def response_head(extra: Iterable[tuple[str, str]] | None = None) -> bytes:
    """The ``101``'s status line and headers (the cookie's and the hooks', ``extra``) up to the
    accept value, which comes last: one that a hook set is left out (the handshake's own value
    is the only one a client accepts)."""
    if not extra:
        return _PLAIN_HEAD
    headers = [h for h in _headers(extra) if h[0].lower() != "sec-websocket-accept"]
    return _STATUS_LINE + _lines(headers)
