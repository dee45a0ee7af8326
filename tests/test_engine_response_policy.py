"""The response policy: the one object (``EngineServer.responses``) through which the server's
options (CORS, the session cookie, the header hooks, compression) reach every answer, made once
from the options and handed to the transports, which read nothing else of the server's."""

from __future__ import annotations

import logging
import re
import zlib
from pathlib import Path

import aiohttp
import pytest

import fastsio.engine.polling as polling_module
from fastsio.engine import EngineServer
from fastsio.engine.http import Request
from fastsio.engine.options import Compression, Cookie, Cors, ResponsePolicy
from tests.clients.http import RawConnection
from tests.clients.wire import eio_target, eio_url, request


def make_request(query: str = "EIO=4&transport=polling", **headers: str) -> Request:
    return Request(
        "GET",
        "/socket.io/?" + query,
        [(k.lower().replace("_", "-"), v) for k, v in headers.items()],
        b"",
        "1.1",
        True,
        "127.0.0.1",
    )


def test_the_server_makes_one_policy_from_its_options():
    def hook(headers, req):
        headers.append(("X-Hook", "1"))

    engine = EngineServer(
        cors_allowed_origins="https://a.example",
        cookie=True,
        http_compression={"threshold": 10},
        initial_headers=hook,
        headers=hook,
    )
    policy = engine.responses
    assert isinstance(policy, ResponsePolicy)
    assert policy.cors is engine.cors and policy.cookie is engine.cookie
    assert policy.compression is engine.http_compression
    assert policy.initial_headers is hook and policy.headers is hook
    assert policy.cors_enabled
    bare = EngineServer(http_compression=False).responses
    assert not bare.cors_enabled and bare.cookie is None and bare.compression is None


def test_cors_headers_are_a_new_list_each_time():
    policy = ResponsePolicy(Cors("https://a.example", credentials=True))
    req = make_request(origin="https://a.example")
    first = policy.cors_headers(req)
    assert first == [
        ("Access-Control-Allow-Origin", "https://a.example"),
        ("Vary", "Origin"),
        ("Access-Control-Allow-Credentials", "true"),
    ]
    first.append(("Content-Type", "text/plain"))  # what a transport does with it
    assert policy.cors_headers(req) == first[:-1]
    assert policy.cors_headers(make_request(origin="https://b.example")) == []
    assert ResponsePolicy().cors_headers(req) == []
    assert not ResponsePolicy().cors_enabled


def test_preflight_headers():
    policy = ResponsePolicy(Cors("*", max_age=600))
    req = make_request(
        origin="https://a.example", access_control_request_headers="X-A"
    )
    assert policy.preflight_headers(req) == [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE"),
        ("Access-Control-Allow-Headers", "X-A"),
        ("Access-Control-Max-Age", "600"),
        ("Vary", "Access-Control-Request-Headers"),
    ]


def test_session_headers_on_the_handshake_and_after():
    calls: list[str] = []

    def initial(headers, req):
        calls.append("initial")
        headers.append(("X-Initial", "1"))

    def every(headers, req):
        calls.append("every")
        headers.append(("X-Every", "1"))

    policy = ResponsePolicy(Cors(None), Cookie(True), None, initial, every)
    headers = [("Content-Type", "text/plain")]
    policy.session_headers(make_request(), headers, "abc")
    assert headers == [
        ("Content-Type", "text/plain"),
        ("Set-Cookie", "io=abc; Path=/; HttpOnly; SameSite=Lax"),
        ("X-Initial", "1"),
        ("X-Every", "1"),
    ]
    headers = []
    policy.session_headers(make_request("EIO=4&transport=polling&sid=abc"), headers, "abc")
    assert headers == [("X-Every", "1")]
    assert calls == ["initial", "every", "every"]
    headers = []
    ResponsePolicy().session_headers(make_request(), headers, "abc")
    assert headers == []


def test_a_failing_hook_is_logged_and_the_others_still_run(caplog):
    def boom(headers, req):
        headers.append(("X-Before", "1"))
        raise RuntimeError("hook bug")

    def every(headers, req):
        headers.append(("X-Every", "1"))

    policy = ResponsePolicy(initial_headers=boom, headers=every)
    headers: list[tuple[str, str]] = []
    with caplog.at_level(logging.ERROR, "fastsio.engine"):
        policy.session_headers(make_request(), headers, "abc")
    assert headers == [("X-Before", "1"), ("X-Every", "1")]
    assert "error in a response headers hook" in caplog.text


def test_compress():
    body = b"x" * 2000
    off = ResponsePolicy()
    headers: list[tuple[str, str]] = []
    assert off.compress(make_request(accept_encoding="gzip"), body, headers) is body
    assert headers == []
    on = ResponsePolicy(compression=Compression(True))
    out = on.compress(make_request(accept_encoding="gzip"), body, headers)
    assert headers == [("Content-Encoding", "gzip")]
    assert zlib.decompress(out, 31) == body
    headers = []
    assert on.compress(make_request(accept_encoding="br"), body, headers) is body
    assert on.compress(make_request(accept_encoding="gzip"), b"small", headers) == b"small"
    assert headers == []


def test_the_polling_transport_reads_nothing_of_the_server():
    """Its module names no private member of the engine server (what it used to reach)."""
    source = Path(polling_module.__file__).read_text()
    assert not re.search(r"server\._", source)
    assert "_cors_headers" not in source and "_response_headers" not in source


async def test_polling_answers_carry_what_the_policy_gives(make_server):
    """Over sockets: the handshake, a POST, a poll and an error, each with the headers the
    server's policy makes for that request."""

    def every(headers, req):
        headers.append(("X-Every", req.method))

    _, url = await make_server(
        cors_allowed_origins="https://a.example", cookie=True, headers=every,
        http_compression={"threshold": 0},
    )
    origin = {"Origin": "https://a.example", "Accept-Encoding": "identity"}
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        async with http.get(eio_url(url), headers=origin) as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == "https://a.example"
            assert r.headers["Set-Cookie"].startswith("io=")
            assert r.headers["X-Every"] == "GET"
            assert r.headers["Cache-Control"] == "no-store"
            body = await r.read()
        sid = re.search(rb'"sid":"([^"]+)"', body).group(1).decode()  # type: ignore[union-attr]
        async with http.post(eio_url(url, sid=sid), data="40", headers=origin) as r:
            assert r.status == 200 and await r.read() == b"ok"
            assert r.headers["Access-Control-Allow-Origin"] == "https://a.example"
            assert r.headers["X-Every"] == "POST" and "Set-Cookie" not in r.headers
        async with http.get(
            eio_url(url, sid=sid), headers={**origin, "Accept-Encoding": "gzip"}
        ) as r:
            assert r.status == 200 and r.headers["Content-Encoding"] == "gzip"
            assert zlib.decompress(await r.read(), 31).startswith(b"40")
        async with http.post(eio_url(url, sid=sid), data=b"\x00", headers={
            **origin, "Content-Type": "application/octet-stream"
        }) as r:
            assert r.status == 400  # binary body on revision 4: the session's error
            assert r.headers["Access-Control-Allow-Origin"] == "https://a.example"
            assert "X-Every" not in r.headers


@pytest.mark.parametrize("cookie", [True, {"name": "s", "path": "/x"}])
async def test_the_101_carries_what_the_policy_gives(make_server, cookie):
    def every(headers, req):
        headers.append(("X-Every", req.query["transport"]))

    _, url = await make_server(cookie=cookie, headers=every)
    async with await RawConnection.open(url) as conn:
        conn.write(request("GET", eio_target("websocket"), {
            "Connection": "Upgrade", "Upgrade": "websocket",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
        }))
        head = await conn.read_head()
        assert head.status == 101
        assert head.headers["set-cookie"].startswith("io=" if cookie is True else "s=")
        assert head.headers["x-every"] == "websocket"
