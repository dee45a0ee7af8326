"""The WebSocket ``101``: fastsio makes its bytes once per hand-over (``engine/upgrade.py``)
instead of picows building a response object per connection. The bytes must be picows's own,
header for header, whatever the cookie and the hooks add."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest
from picows import WSUpgradeResponse

from fastsio.engine.upgrade import SwitchingProtocols, switching_protocols
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


@pytest.mark.parametrize("extra", EXTRAS)
def test_the_101_is_picows_own(extra):
    response = switching_protocols(extra)
    assert isinstance(response, SwitchingProtocols)
    assert response.status == 101 and response.body is None
    response.headers["Sec-WebSocket-Accept"] = ACCEPT
    assert bytes(response.to_bytes()) == picows_bytes(extra)


def test_a_hook_that_sets_the_accept_header_gets_it_replaced_in_place():
    extra = [("X-A", "1"), ("sec-websocket-accept", "mine"), ("X-B", "2")]
    response = switching_protocols(extra)
    response.headers["Sec-WebSocket-Accept"] = ACCEPT
    assert bytes(response.to_bytes()) == picows_bytes(extra)


def test_the_first_frame_follows_the_head_once():
    for extra in (None, [("X-A", "1")], [("Sec-WebSocket-Accept", "mine")]):
        response = switching_protocols(extra, b"\x81\x01x")
        response.headers["Sec-WebSocket-Accept"] = ACCEPT
        assert bytes(response.to_bytes()) == picows_bytes(extra) + b"\x81\x01x"
        # picows keeps the response for the connection's life: the frame is not kept
        assert bytes(response.to_bytes()) == picows_bytes(extra)


def test_headers_that_are_not_str_are_refused_as_picows_does():
    with pytest.raises(TypeError):
        switching_protocols([("X-A", 1)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        WSUpgradeResponse.create_101_response([("X-A", 1)])  # type: ignore[list-item]


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
