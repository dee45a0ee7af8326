"""The WebSocket ``101``: its head is made once per hand-over (``engine/upgrade.py``) and the
core's protocol adds the accept value (``_core/websocket.pyx``). The bytes must be picows's own
``create_101_response``, header for header, whatever the cookie and the hooks add; the accept
value is RFC 6455's, for the keys a client may send (``ws``'s check) and no other."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest
from picows import WSUpgradeResponse

from fastsio._core.websocket import accept_key
from fastsio.engine.upgrade import response_head
from tests.clients.http import RawConnection
from tests.clients.wire import TIMEOUT, eio_target, request

ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

EXTRAS = [
    None,
    [],
    [("Set-Cookie", "io=abc; Path=/; HttpOnly; SameSite=Lax")],
    [("X-Initial", "1"), ("X-Every", "1"), ("X-Every", "2")],
    [("Host", "a"), ("host", "b"), ("X-A", "é")],
    [("connection", "keep-alive"), ("X-B", "1"), ("Connection", "close")],
    [("UPGRADE", "h2c"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
]


def picows_bytes(extra: list[tuple[str, str]] | None) -> bytes:
    """What picows writes for ``create_101_response(extra)`` (``_send_http_handshake_response``
    sets the accept value, then ``to_bytes``)."""
    response = WSUpgradeResponse.create_101_response(extra)
    response.headers["Sec-WebSocket-Accept"] = ACCEPT
    return bytes(response.to_bytes())


def ours(extra: list[tuple[str, str]] | None) -> bytes:
    # what WebSocketProtocol.open writes before the first frame
    return response_head(extra) + b"Sec-WebSocket-Accept: " + ACCEPT.encode() + b"\r\n\r\n"


@pytest.mark.parametrize("extra", EXTRAS)
def test_the_101_is_picows_own(extra):
    assert ours(extra) == picows_bytes(extra)


def test_a_hook_that_sets_the_accept_header_gets_the_handshake_value_only():
    extra = [("X-A", "1"), ("sec-websocket-accept", "mine"), ("X-B", "2")]
    assert ours(extra) == picows_bytes([("X-A", "1"), ("X-B", "2")])
    assert b"mine" not in ours(extra)


def test_headers_that_are_not_str_are_refused_as_picows_does():
    with pytest.raises(TypeError):
        response_head([("X-A", 1)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        WSUpgradeResponse.create_101_response([("X-A", 1)])  # type: ignore[list-item]


def test_the_accept_value_of_rfc_6455():
    # RFC 6455, section 1.3's example
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == ACCEPT.encode()
    for raw in (bytes(16), bytes(range(16)), b"\xff" * 16):
        key = base64.b64encode(raw).decode()
        expected = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        assert accept_key(key) == expected


@pytest.mark.parametrize("key", [
    "", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ===", "dGhlIHNhbXBsZSBub25jZ===",
    base64.b64encode(bytes(15)).decode(), base64.b64encode(bytes(17)).decode(),
    "dGhlIHNhbXBsZSBub25jZ-==", "dGhlIHNhbXBsZSBub25jZé==", "dGhlIHNhbXBsZSBub25jZQ=x",
])
def test_keys_that_are_not_16_bytes_of_base64_have_no_accept_value(key):
    assert accept_key(key) is None


async def test_the_101_on_the_wire(make_server):
    """Over a socket: the exact head a client gets, cookie and hooks included, then the
    Engine.IO open packet as the first frame."""

    def initial(headers, req):
        headers.append(("X-Initial", "1"))

    def every(headers, req):
        headers.append(("X-Every", req.query["transport"]))

    _, url = await make_server(cookie=True, initial_headers=initial, headers=every)
    key = base64.b64encode(b"0123456789abcdef").decode()
    accept = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    ).decode()
    raw = request(
        "GET",
        eio_target("websocket"),
        {
            "Connection": "keep-alive, Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
        },
    )
    async with await RawConnection.open(url) as conn:
        conn.write(raw)
        head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 101 Switching Protocols"
        assert lines[1].startswith("Set-Cookie: io=")
        assert lines[2:] == [
            "X-Initial: 1",
            "X-Every: websocket",
            "Connection: upgrade",
            "Upgrade: websocket",
            f"Sec-WebSocket-Accept: {accept}",
            "",
            "",
        ]
        first = await asyncio.wait_for(conn.reader.readexactly(2), TIMEOUT)
        assert first[0] == 0x81  # a text frame: the open packet
        body = await asyncio.wait_for(conn.reader.readexactly(first[1] & 0x7F), TIMEOUT)
        assert body.startswith(b'0{"sid":')
