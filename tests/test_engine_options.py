"""Engine.IO server options and hooks (the official server's, snake_case, times in seconds):
CORS, the session cookie, compression of polling responses, ``initial_headers`` / ``headers``
hooks (polling responses and the WebSocket 101), ``sid_generator``, ``per_message_deflate``
(refused: picows has no permessage-deflate), after the official test/server.js."""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import ssl
import subprocess
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

import fastsio
from fastsio.engine import EngineServer
from fastsio.engine.options import negotiate_encoding
from tests.clients.http import RawConnection
from tests.clients.loops import wait_for
from tests.clients.polling import Polling
from tests.clients.server_side import EngineRecorder
from tests.clients.wire import TIMEOUT, eio_target, eio_url, request, ws_url
from tests.clients.ws import RawWebSocket, ws_open, ws_receive

Pairs = list[tuple[str, str]]


async def exchange(url: str, raw: bytes) -> tuple[int, Pairs, bytes]:
    """One request on a fresh connection: status, every header line (repeats kept), body."""
    async with await RawConnection.open(url) as conn:
        conn.write(raw)
        head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        pairs: Pairs = []
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                pairs.append((k.strip().lower(), v.strip()))
        length = int(dict(pairs).get("content-length", "0"))
        body = await asyncio.wait_for(conn.reader.readexactly(length), TIMEOUT) if length else b""
        return status, pairs, body


def values(pairs: Pairs, name: str) -> list[str]:
    return [v for k, v in pairs if k == name]


def sid_of(body: bytes) -> str:
    match = re.search(rb'"sid":"([^"]+)"', body)
    assert match is not None, body
    return match.group(1).decode()


# -- CORS -------------------------------------------------------------------------------------
async def test_no_cors_headers_by_default(make_server):
    _, url = await make_server()
    status, pairs, _ = await exchange(
        url, request("GET", eio_target(), {"Origin": "https://a.example"})
    )
    assert status == 200
    assert not [k for k, _ in pairs if k.startswith("access-control-")]
    # No preflight answer either (as the official server without ``cors``): OPTIONS is a bad
    # handshake method like any other.
    status, pairs, body = await exchange(
        url,
        request(
            "OPTIONS",
            eio_target(),
            {"Origin": "https://a.example", "Access-Control-Request-Method": "POST"},
        ),
    )
    assert status == 400
    assert orjson.loads(body) == {"code": 2, "message": "Bad handshake method"}
    assert not [k for k, _ in pairs if k.startswith("access-control-")]


@pytest.mark.parametrize(
    ("allowed", "origin", "expected"),
    [
        ("*", "https://a.example", "*"),
        (True, "https://a.example", "https://a.example"),
        ("https://a.example", "https://a.example", "https://a.example"),
        ("https://a.example", "https://b.example", None),
        (["https://a.example", "https://b.example"], "https://b.example", "https://b.example"),
        (["https://a.example"], "https://c.example", None),
        (re.compile(r"https://[a-z]+\.example"), "https://sub.example", "https://sub.example"),
        (re.compile(r"https://[a-z]+\.example"), "https://sub.example.evil", None),
        (lambda origin: origin.endswith(".ok"), "https://x.ok", "https://x.ok"),
        (lambda origin: origin.endswith(".ok"), "https://x.ko", None),
    ],
    # A function's repr holds its address: the same id in every process (pytest-xdist's
    # workers must collect the same ids).
    ids=lambda v: (v.pattern if isinstance(v, re.Pattern)
                   else "a-function" if callable(v) else repr(v)[:30]),
)
async def test_cors_origins(make_server, allowed, origin, expected):
    _, url = await make_server(cors_allowed_origins=allowed)
    status, pairs, _ = await exchange(url, request("GET", eio_target(), {"Origin": origin}))
    assert status == 200
    assert values(pairs, "access-control-allow-origin") == ([expected] if expected else [])
    if expected not in (None, "*"):
        assert values(pairs, "vary") == ["Origin"]
    else:
        assert values(pairs, "vary") == []


async def test_cors_star_with_credentials_reflects_the_origin(make_server):
    """Browsers refuse ``*`` together with credentials."""
    _, url = await make_server(cors_allowed_origins="*", cors_credentials=True)
    _, pairs, _ = await exchange(
        url, request("GET", eio_target(), {"Origin": "https://a.example"})
    )
    assert values(pairs, "access-control-allow-origin") == ["https://a.example"]
    assert values(pairs, "access-control-allow-credentials") == ["true"]
    assert values(pairs, "vary") == ["Origin"]


async def test_cors_preflight_defaults(make_server):
    _, url = await make_server(cors_allowed_origins=True, cors_credentials=True)
    status, pairs, body = await exchange(
        url,
        request(
            "OPTIONS",
            eio_target(),
            {
                "Origin": "http://engine.io",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "my-header, content-type",
            },
        ),
    )
    assert status == 204 and body == b""
    assert values(pairs, "access-control-allow-origin") == ["http://engine.io"]
    assert values(pairs, "access-control-allow-methods") == ["GET,HEAD,PUT,PATCH,POST,DELETE"]
    assert values(pairs, "access-control-allow-headers") == ["my-header, content-type"]
    assert values(pairs, "access-control-allow-credentials") == ["true"]
    assert values(pairs, "vary") == ["Origin, Access-Control-Request-Headers"]
    assert values(pairs, "access-control-max-age") == []


async def test_cors_preflight_configured(make_server):
    _, url = await make_server(
        cors_allowed_origins="http://good.example",
        cors_methods=["GET", "PUT", "POST"],
        cors_allowed_headers=["my-header"],
        cors_exposed_headers="my-exposed-header",
        cors_max_age=123,
    )
    status, pairs, _ = await exchange(
        url,
        request(
            "OPTIONS",
            eio_target(),
            {"Origin": "http://good.example", "Access-Control-Request-Headers": "other"},
        ),
    )
    assert status == 204
    assert values(pairs, "access-control-allow-methods") == ["GET,PUT,POST"]
    assert values(pairs, "access-control-allow-headers") == ["my-header"]
    assert values(pairs, "access-control-max-age") == ["123"]
    assert values(pairs, "access-control-expose-headers") == []
    # The actual request exposes headers, and announces neither methods nor allowed headers.
    status, pairs, _ = await exchange(
        url, request("GET", eio_target(), {"Origin": "http://good.example"})
    )
    assert status == 200
    assert values(pairs, "access-control-expose-headers") == ["my-exposed-header"]
    assert values(pairs, "access-control-allow-methods") == []
    assert values(pairs, "access-control-allow-headers") == []


async def test_cors_preflight_from_a_refused_origin(make_server):
    _, url = await make_server(cors_allowed_origins=["http://good.example"])
    status, pairs, body = await exchange(
        url, request("OPTIONS", eio_target(), {"Origin": "http://bad.example"})
    )
    assert (status, body) == (204, b"")
    assert not [k for k, _ in pairs if k.startswith("access-control-")]


async def test_cors_on_every_polling_response(make_server):
    """Handshake, poll, POST, errors: each carries the headers a browser needs to read it."""
    _, url = await make_server(
        cors_allowed_origins="https://a.example", cors_credentials=True, ping_interval=0.1
    )
    origin = {"Origin": "https://a.example"}
    async with aiohttp.ClientSession(headers=origin) as http:
        p = await Polling.open(http, url)
        async with http.post(p.url, data="6") as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == "https://a.example"
        async with http.get(p.url) as r:
            assert r.headers["Access-Control-Allow-Origin"] == "https://a.example"
        async with http.get(eio_url(url, sid="nope")) as r:
            assert r.status == 400
            assert r.headers["Access-Control-Allow-Origin"] == "https://a.example"
            assert r.headers["Access-Control-Allow-Credentials"] == "true"


# -- the cookie -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        (True, "io={sid}; Path=/; HttpOnly; SameSite=Lax"),
        ({"name": "woot"}, "woot={sid}; Path=/; HttpOnly; SameSite=Lax"),
        ({"path": "/custom"}, "io={sid}; Path=/custom; HttpOnly; SameSite=Lax"),
        ({"path": None}, "io={sid}; HttpOnly; SameSite=Lax"),
        ({"http_only": False}, "io={sid}; Path=/; SameSite=Lax"),
        ({"http_only": "no"}, "io={sid}; Path=/; HttpOnly; SameSite=Lax"),  # truthy
        ({"same_site": "strict"}, "io={sid}; Path=/; HttpOnly; SameSite=Strict"),
        ({"same_site": True}, "io={sid}; Path=/; HttpOnly; SameSite=Strict"),
        ({"same_site": False}, "io={sid}; Path=/; HttpOnly"),
        (
            {"same_site": "none", "secure": True},
            "io={sid}; Path=/; HttpOnly; Secure; SameSite=None",
        ),
        (
            {"domain": "example.com", "max_age": 3600, "priority": "high", "partitioned": True},
            "io={sid}; Max-Age=3600; Domain=example.com; Path=/; HttpOnly; Partitioned; "
            "Priority=High; SameSite=Lax",
        ),
        (
            {"expires": 0, "http_only": False, "same_site": None},
            "io={sid}; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        ),
    ],
    ids=repr,
)
async def test_cookie_on_the_polling_handshake(make_server, cookie, expected):
    _, url = await make_server(cookie=cookie)
    status, pairs, body = await exchange(url, request("GET", eio_target()))
    assert status == 200
    assert values(pairs, "set-cookie") == [expected.format(sid=sid_of(body))]


async def test_cookie_only_on_the_handshake(make_server):
    _, url = await make_server(cookie=True, ping_interval=0.1)  # the poll gets a ping
    async with aiohttp.ClientSession() as http:
        async with http.get(eio_url(url)) as r:
            assert len(r.headers.getall("Set-Cookie")) == 1
            sid = sid_of(await r.read())
        async with http.post(eio_url(url, sid=sid), data="6") as r:
            assert r.status == 200 and "Set-Cookie" not in r.headers
        async with http.get(eio_url(url, sid=sid)) as r:
            assert r.status == 200 and "Set-Cookie" not in r.headers


async def test_no_cookie_by_default(make_server):
    _, url = await make_server()
    _, pairs, _ = await exchange(url, request("GET", eio_target()))
    assert values(pairs, "set-cookie") == []


async def test_cookie_on_the_websocket_handshake(make_server):
    """The 101 of a WebSocket-only session carries the cookie; a probe's 101 does not."""
    io, url = await make_server(cookie=True)
    rec = EngineRecorder(io)
    async with await RawWebSocket.open(url) as ws:
        r = await ws.upgrade(eio_target("websocket"))
        assert r.status == 101
        sid = orjson.loads((await ws.recv_text())[1:])["sid"]
        assert r.headers["set-cookie"] == f"io={sid}; Path=/; HttpOnly; SameSite=Lax"
        assert sid in rec.sockets
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        async with await RawWebSocket.open(url) as ws:
            r = await ws.upgrade(eio_target("websocket", p.sid))
            assert r.status == 101
            assert "set-cookie" not in r.headers


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.mark.parametrize(("secure", "expected"), [(None, True), (False, False)])
async def test_cookie_is_secure_over_tls(tmp_path, secure, expected):
    key, cert = _self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    io = fastsio.Server(cookie={"secure": secure} if secure is not None else True)
    port = await io.start("127.0.0.1", 0, ssl=ctx)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(
                eio_url(f"https://127.0.0.1:{port}"), ssl=False, timeout=aiohttp.ClientTimeout(5)
            ) as r:
                assert r.status == 200
                cookie = r.headers["Set-Cookie"]
        assert ("; Secure" in cookie) is expected, cookie
        # The Socket.IO handshake knows the connection is secure too.
        assert all(s.request.secure for s in io.engine.clients.values())
    finally:
        await io.close()


async def test_tls_transports_closed_when_the_client_leaves(tmp_path):
    """Every TLS transport whose client went away is closed by the server, the polling
    keep-alive connection and the WebSocket alike: before Python 3.11, asyncio's TLS transport
    counts itself unclosed otherwise (a ResourceWarning once collected)."""
    key, cert = _self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    io = fastsio.Server()
    port = await io.start("127.0.0.1", 0, ssl=ctx)
    try:
        async with aiohttp.ClientSession() as http:
            base = f"https://127.0.0.1:{port}"
            async with http.get(eio_url(base), ssl=False, timeout=aiohttp.ClientTimeout(5)) as r:
                assert r.status == 200
                await r.read()
            polling = [conn.transport for conn in io.engine._http_connections]
            ws = await http.ws_connect(
                ws_url(base), ssl=False, timeout=aiohttp.ClientWSTimeout(ws_close=1.0)
            )
            assert (await ws_receive(ws)).startswith("0{")
            sock = next(s for s in io.engine.clients.values() if s.transport_name == "websocket")
            websocket = sock.transport.ws.underlying_transport
        # The client session is gone, and both of its connections with it.
        await wait_for(lambda: sock.closed and not io.engine._http_connections)
        assert len(polling) == 1
        assert polling[0].is_closing()
        assert websocket.is_closing()
        # Only now, its connection long gone, the client lets go of the WebSocket's response
        # too (aiohttp warns of an unclosed response in asyncio's debug mode otherwise).
        await ws.close()
    finally:
        await io.close()


@pytest.mark.parametrize(
    "cookie",
    [{"nme": "x"}, {"name": "bad name"}, {"same_site": "sometimes"}, {"path": "/a;b"}, "yes"],
    ids=repr,
)
def test_cookie_options_are_checked(cookie):
    with pytest.raises((ValueError, TypeError)):
        EngineServer(cookie=cookie)


# -- HTTP compression -------------------------------------------------------------------------
BIG = bytes(i % 0xFF for i in range(1024))


async def _poll_after_send(
    data: bytes, accept: str | None, **options: Any
) -> tuple[int, Any, bytes]:
    """Send ``data`` (binary) to a fresh polling session and read it with ``Accept-Encoding``."""
    io = fastsio.Server(transports=["polling"], **options)
    port = await io.start("127.0.0.1", 0)
    rec = EngineRecorder(io)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(
            auto_decompress=False, skip_auto_headers=("Accept-Encoding",)
        ) as http:
            p = await Polling.open(http, base)
            rec.sockets[p.sid].send(data)
            headers = {"Accept-Encoding": accept} if accept is not None else {}
            async with http.get(p.url, headers=headers) as r:
                return r.status, r.headers, await r.read()
    finally:
        await io.close()


def _payload(data: bytes) -> bytes:
    return b"b" + base64.b64encode(data)


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip, deflate", "gzip"),
        ("deflate", "deflate"),
        ("deflate, gzip", "deflate"),
        ("gzip;q=0.5, deflate", "deflate"),
        ("gzip;q=0, *", "deflate"),
        ("*", "gzip"),
        ("br", None),
        ("identity", None),
        (None, None),
    ],
)
async def test_compression_follows_accept_encoding(accept, coding):
    status, headers, body = await _poll_after_send(BIG, accept)
    assert status == 200
    assert headers.get("Content-Encoding") == coding
    assert int(headers["Content-Length"]) == len(body)
    if coding == "gzip":
        body = zlib.decompress(body, 31)
    elif coding == "deflate":
        body = zlib.decompress(body)
    assert body == _payload(BIG)


async def test_no_compression_below_the_threshold():
    _, headers, body = await _poll_after_send(b"x" * 100, "gzip")
    assert "Content-Encoding" not in headers
    assert body == _payload(b"x" * 100)


async def test_compression_threshold_option():
    _, headers, body = await _poll_after_send(
        b"x" * 10, "gzip", http_compression={"threshold": 0, "level": 9}
    )
    assert headers["Content-Encoding"] == "gzip"
    assert zlib.decompress(body, 31) == _payload(b"x" * 10)


async def test_compression_disabled():
    _, headers, _ = await _poll_after_send(BIG, "gzip, deflate", http_compression=False)
    assert "Content-Encoding" not in headers


@pytest.mark.parametrize("options", [{"threshhold": 1}, {"level": 12}, "fast"], ids=repr)
def test_compression_options_are_checked(options):
    with pytest.raises((ValueError, TypeError)):
        EngineServer(http_compression=options)


def test_negotiate_encoding():
    assert negotiate_encoding("gzip;q=0.8, deflate;q=0.9") == "deflate"
    assert negotiate_encoding("GZIP") == "gzip"
    assert negotiate_encoding("*;q=0, gzip") == "gzip"
    assert negotiate_encoding("deflate;q=0, *;q=0.1") == "gzip"
    assert negotiate_encoding("gzip;q=bad, deflate;q=0") is None
    assert negotiate_encoding("") is None


# -- header hooks -----------------------------------------------------------------------------
async def test_initial_headers_and_headers_on_polling(make_server):
    calls: list[tuple[str, str]] = []

    def initial(headers, req):
        calls.append(("initial", req.method))
        headers.append(("X-Initial", "1"))
        headers.append(("Set-Cookie", "mycookie=456"))

    def every(headers, req):
        calls.append(("headers", req.method))
        headers.append(("X-Every", req.method))

    _, url = await make_server(cookie=True, initial_headers=initial, headers=every)
    status, pairs, body = await exchange(url, request("GET", eio_target()))
    assert status == 200
    sid = sid_of(body)
    assert values(pairs, "x-initial") == ["1"]
    assert values(pairs, "x-every") == ["GET"]
    assert values(pairs, "set-cookie") == [
        f"io={sid}; Path=/; HttpOnly; SameSite=Lax",
        "mycookie=456",
    ]
    status, pairs, body = await exchange(url, request("POST", eio_target(sid=sid), body=b"6"))
    assert (status, body) == (200, b"ok")
    assert values(pairs, "x-initial") == [] and values(pairs, "set-cookie") == []
    assert values(pairs, "x-every") == ["POST"]
    # Errors are not the session's responses: no hook.
    status, pairs, _ = await exchange(url, request("GET", eio_target(sid="nope")))
    assert status == 400 and values(pairs, "x-every") == []
    assert calls == [("initial", "GET"), ("headers", "GET"), ("headers", "POST")]


async def test_headers_hook_on_every_poll(make_server):
    io, url = await make_server(headers=lambda h, req: h.append(("X-Poll", "yes")))
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        for _ in range(2):
            rec.sockets[p.sid].send("hi")
            status, headers, body = await p.get_response()
            assert (status, body) == (200, "4hi")
            assert headers["x-poll"] == "yes"
            assert headers["cache-control"] == "no-store"


async def test_hooks_on_the_websocket_101(make_server):
    """``initial_headers`` for a new WebSocket session, ``headers`` for every 101 (the probe
    of an upgrade included); one ``initial_headers`` call per session."""
    calls: list[str] = []

    def initial(headers, req):
        calls.append("initial:" + req.query["transport"])
        headers.append(("X-Initial", "1"))

    def every(headers, req):
        calls.append("headers:" + req.query["transport"])
        headers.append(("X-Every", "1"))

    _, url = await make_server(initial_headers=initial, headers=every)
    async with await RawWebSocket.open(url) as ws:
        r = await ws.upgrade(eio_target("websocket"))
        assert r.status == 101
        assert r.headers["x-initial"] == "1" and r.headers["x-every"] == "1"
        assert r.headers["upgrade"].lower() == "websocket"
        await ws.recv_text()
    assert calls == ["initial:websocket", "headers:websocket"]
    calls.clear()
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        async with await RawWebSocket.open(url) as ws:
            r = await ws.upgrade(eio_target("websocket", p.sid))
            assert r.status == 101
            assert "x-initial" not in r.headers and r.headers["x-every"] == "1"
            ws.send_text("2probe")
            assert await ws.recv_text() == "3probe"
    assert calls == ["initial:polling", "headers:polling", "headers:websocket"]


async def test_a_failing_hook_does_not_fail_the_response(make_server, caplog):
    def boom(headers, req):
        raise RuntimeError("hook bug")

    _, url = await make_server(initial_headers=boom, headers=boom)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        ws, _ = await ws_open(http, url)
        await ws.close()
        assert p.sid
    assert "error in a response headers hook" in caplog.text


async def test_x_xss_protection_for_old_ie(make_server):
    _, url = await make_server()
    for ua, expected in [
        ("Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko", ["0"]),
        ("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)", ["0"]),
        ("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", []),
    ]:
        _, pairs, _ = await exchange(url, request("GET", eio_target(), {"User-Agent": ua}))
        assert values(pairs, "x-xss-protection") == expected


# -- sid_generator ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_custom_sid_generator(make_server, kind):
    counter = iter(range(100))

    def gen(req):
        return f"custom-{req.query['transport']}-{next(counter)}"

    async def gen_async(req):
        await asyncio.sleep(0)
        return gen(req)

    io, url = await make_server(sid_generator=gen if kind == "sync" else gen_async, cookie=True)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert p.sid == "custom-polling-0"
        ws, opened = await ws_open(http, url)
        assert opened["sid"] == "custom-websocket-1"
        await ws.close()
        # The upgrade keeps the id (no new one is made).
        up = await http.ws_connect(ws_url(url, p.sid))
        await up.send_str("2probe")
        assert await ws_receive(up) == "3probe"
        await up.send_str("5")
        await wait_for(lambda: io.engine.clients[p.sid].transport_name == "websocket")
        await up.close()
    assert next(counter) == 2


async def test_sid_generator_failures_refuse_the_handshake(make_server, caplog):
    def gen(req):
        mode = req.query.get("mode")
        if mode == "raise":
            raise RuntimeError("no id today")
        if mode == "empty":
            return ""
        return "fixed"

    io, url = await make_server(sid_generator=gen)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert p.sid == "fixed"
        for mode in ("raise", "empty", "same"):  # "same": the id is taken
            async with http.get(eio_url(url, mode=mode)) as r:
                assert r.status == 400
                assert orjson.loads(await r.read()) == {"code": 3, "message": "Bad request"}
            async with await RawWebSocket.open(url) as ws:
                r = await ws.upgrade(eio_target("websocket", mode=mode))
                assert r.status == 400
        # The session that holds the id is untouched.
        assert await p.post("6") == (200, "ok")
    assert list(io.engine.clients) == ["fixed"]
    assert "no id today" in caplog.text


# -- per_message_deflate ----------------------------------------------------------------------
@pytest.mark.parametrize("value", [True, {"threshold": 1024}])
def test_per_message_deflate_is_refused(value):
    with pytest.raises(ValueError, match="per_message_deflate is not supported"):
        EngineServer(per_message_deflate=value)
    with pytest.raises(ValueError, match="picows"):
        fastsio.Server(per_message_deflate=value)


@pytest.mark.parametrize("value", [False, None])
async def test_per_message_deflate_off_is_accepted(make_server, value):
    _, url = await make_server(per_message_deflate=value)
    async with aiohttp.ClientSession() as http:
        ws, _ = await ws_open(http, url)
        await ws.close()


async def test_no_websocket_extension_is_negotiated(make_server):
    """A client offering permessage-deflate gets a 101 without Sec-WebSocket-Extensions."""
    _, url = await make_server()
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(url), compress=15)
        assert ws.compress == 0
        await ws.close()


NEGOTIATION_HEADERS = [
    "", "gzip", "GZIP", "br", "deflate, gzip", "gzip, deflate, br", "gzip,br,deflate",
    "gzip;q=0.8, deflate;q=0.9", "*", "*;q=0, gzip", "deflate;q=0, *;q=0.1", "*;q=0.5, br",
    "gzip;q=0, identity", "identity", "identity;q=0", "gzip;q=bad, deflate;q=0",
    "br;q=0.5, gzip;q=0.5, deflate;q=0.5", "deflate;q=0.5, gzip;q=0.5", "compress, x-gzip",
    " gzip ; q=0.3 , br ; q=0.2", "gzip;level=1;q=0.4, deflate;q=0.4", "*, gzip;q=0",
    "br;q=1.0, *;q=1.0", ",,gzip,,", "gzip;q=1.5, deflate", "gzip;q=0.001",
]


@pytest.mark.parametrize("codings", [("gzip", "deflate"), ("br", "gzip", "deflate")],
                         ids=["polling", "bundle"])
def test_negotiate_encoding_agrees_with_the_official_servers_negotiator(codings):
    """The one negotiation, checked against what the official server runs: ``accepts`` (over
    ``negotiator``) from node_modules, for polling responses and for the client bundle."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node")
    root = Path(__file__).resolve().parent.parent
    if node is None or not (root / "node_modules" / "accepts").is_dir():
        pytest.fail("needs node and `npm ci` at the repository root (scripts/dev test)")
    script = (
        "const accepts = require('accepts');"
        "const [headers, codings] = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(headers.map(h => accepts({headers: h === '' ? {} :"
        " {'accept-encoding': h}}).encodings(codings) || null)));"
    )
    out = subprocess.run(
        [node, "-e", script, json.dumps([NEGOTIATION_HEADERS, list(codings)])],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout
    official = dict(zip(NEGOTIATION_HEADERS, json.loads(out), strict=True))
    ours = {h: negotiate_encoding(h, codings) for h in NEGOTIATION_HEADERS}
    assert ours == official
