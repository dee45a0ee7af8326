"""The core's reader of the common request (``_core/httphead.parse_get``) against httptools:
whatever it accepts, httptools reads the same way (URL, headers as sent, where the request
ends, upgrade, keep-alive); what it leaves to httptools (``None``) is everything outside a
whole bodiless ``GET <origin-form> HTTP/1.1``. The front's behaviour on both paths is tested
through real sockets in test_engine_http.py and the handshake tests."""

from __future__ import annotations

from typing import Any

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsio._core.httphead import parse_get

LIMITS = (8192, 16384, 100)


class _Reader:
    """httptools's reading of one request: what the front's callbacks collect."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False
        self.parser: Any = None
        self.keep_alive = False
        self.upgrade = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_message_complete(self) -> None:
        # read here, as the front does: the parser forgets them once the message is over
        self.complete = True
        self.keep_alive = bool(self.parser.should_keep_alive())
        self.upgrade = bool(self.parser.should_upgrade())


def httptools_reads(data: bytes) -> tuple[Any, ...] | None:
    """(url, headers, upgrade, keep_alive, method, version) as httptools reads the first request
    of ``data``, or None when it refuses it or it is not whole."""
    r = _Reader()
    p = r.parser = httptools.HttpRequestParser(r)
    upgrade = False
    try:
        p.feed_data(data)
    except httptools.HttpParserUpgrade:
        upgrade = True
    except httptools.HttpParserError:
        return None
    if not r.complete:
        return None
    return (r.url, r.headers, upgrade or r.upgrade, r.keep_alive, p.get_method(),
            p.get_http_version())


def check(data: bytes) -> tuple[Any, ...] | None:
    got = parse_get(data, *LIMITS)
    if got is not None:
        url, headers, end, upgrade, keep_alive = got
        ref = httptools_reads(data[:end])
        assert ref is not None, data
        assert ref == (url, headers, upgrade, keep_alive, b"GET", "1.1"), data
        assert data[:end].endswith(b"\r\n\r\n")
    return got


UPGRADE = (b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
           b"Host: localhost:3000\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


def test_websocket_upgrade_and_tail() -> None:
    got = check(UPGRADE + b"\x81\x85abcd")
    assert got is not None
    url, headers, end, upgrade, keep_alive = got
    assert url == b"/socket.io/?EIO=4&transport=websocket"
    assert upgrade and keep_alive
    assert end == len(UPGRADE)
    assert headers[1] == (b"Connection", b"Upgrade")


def test_browser_connection_header() -> None:
    got = check(UPGRADE.replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade"))
    assert got is not None and got[3]


def test_polling_get() -> None:
    data = b"GET /socket.io/?EIO=4&transport=polling&t=x HTTP/1.1\r\nHost: a\r\n\r\n"
    got = check(data)
    assert got is not None
    assert got[2] == len(data) and not got[3] and got[4]


def test_connection_close() -> None:
    got = check(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert got is not None and got[4] is False


def test_values_lose_leading_whitespace_only() -> None:
    # (as httptools gives them: trailing whitespace is kept)
    got = check(b"GET / HTTP/1.1\r\nX-A: \t a  b \t\r\nX-B:\r\n\r\n")
    assert got is not None
    assert got[1] == [(b"X-A", b"a  b \t"), (b"X-B", b"")]


@pytest.mark.parametrize("data", [
    b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET http://a/ HTTP/1.1\r\n\r\n",
    b"GET * HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
    b"GET / HTTP/1.1\nHost: a\n\n",
    b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
    b"GET / HTTP/1.1\r\n: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n",
    b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
    b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade:\r\n\r\n",
    b"GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n",
    b"GET / HTTP/1.1\r\nConnection: upgrade\r\nConnection: close\r\nUpgrade: ws\r\n\r\n",
    b"GET / HTTP/1.1\r\nUpgrade: a\r\nUpgrade: b\r\nConnection: upgrade\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n",  # not whole
    b"GET  / HTTP/1.1\r\n\r\n",
    b"get / HTTP/1.1\r\n\r\n",
])
def test_left_to_httptools(data: bytes) -> None:
    assert check(data) is None


def test_limits_are_left_to_httptools() -> None:
    long_url = b"GET /" + b"a" * 8192 + b" HTTP/1.1\r\n\r\n"
    assert parse_get(long_url, *LIMITS) is None
    assert parse_get(long_url, 8193, 16384, 100) is not None
    many = b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n"
    assert parse_get(many, *LIMITS) is None
    assert parse_get(many, 8192, 16384, 101) is not None
    big = b"GET / HTTP/1.1\r\nX: " + b"v" * 16384 + b"\r\n\r\n"
    assert parse_get(big, *LIMITS) is None
    assert parse_get(big, 8192, 16385, 100) is not None


_TOKEN = st.text(alphabet="abcXYZ019-_!#~", min_size=1, max_size=8)
_VALUE = st.binary(max_size=12).map(
    lambda b: bytes(c for c in b if c not in b"\r\n")) | st.sampled_from(
    [b"upgrade", b"Upgrade", b"close", b"keep-alive, Upgrade", b" , close,upgrade ", b"websocket"])
_NAME = _TOKEN.map(str.encode) | st.sampled_from(
    [b"Connection", b"Upgrade", b"connection", b"Host", b"Content-Length", b"Expect"])


@settings(max_examples=600, deadline=None)
@given(
    url=st.binary(max_size=20),
    headers=st.lists(st.tuples(_NAME, st.sampled_from([b":", b": ", b":\t", b" :"]), _VALUE,
                               st.sampled_from([b"", b" ", b"\t"])), max_size=6),
    line_end=st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"]),
    tail=st.binary(max_size=5),
)
def test_agrees_with_httptools(url: bytes, headers: list[Any], line_end: bytes,
                               tail: bytes) -> None:
    data = b"GET /" + url + b" HTTP/1.1" + line_end
    for name, sep, value, trail in headers:
        data += name + sep + value + trail + line_end
    data += line_end + tail
    got = check(data)
    if got is not None:
        # every whole request it reads is one httptools reads too, with the same parts
        assert httptools_reads(data[: got[2]]) is not None
