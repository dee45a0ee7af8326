"""TLS and reverse proxies: ``wss://`` through the polling → WebSocket hand-over and WebSocket
alone, ``run(ssl=...)`` printing its ``https://`` address, and ``X-Forwarded-For`` /
``X-Forwarded-Proto`` believed only from ``trusted_proxies`` (``handshake.address``,
``handshake.secure``). Real python-socketio clients; a real ``openssl`` certificate."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import socketio

import fastsio
from tests.clients.sio import sio_clients


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("needs the openssl command (Debian: apt-get install openssl)")
    where = tmp_path_factory.mktemp("tls")
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return key, cert


def server_context(key: Path, cert: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def transport_of(io: fastsio.Server) -> str:
    (conn,) = io.engine.clients.values()
    return conn.transport_name


@pytest.mark.parametrize("transports", [["polling", "websocket"], ["websocket"]],
                         ids=["upgrade", "websocket"])
async def test_wss_through_the_hand_over(certificate, transports):
    io = fastsio.Server()
    seen: list[fastsio.Handshake] = []
    io.on("connection", lambda socket: seen.append(socket.handshake))
    io.on("echo", lambda socket, value: value)
    port = await io.start("127.0.0.1", 0, ssl=server_context(*certificate))
    try:
        async with tls_client(certificate[1]) as client:
            await client.connect(f"https://127.0.0.1:{port}", transports=transports,
                                 wait_timeout=5)
            assert await client.call("echo", {"over": "tls"}, timeout=5) == {"over": "tls"}
            # After an upgrade, the session's transport is the WebSocket on the TLS socket.
            for _ in range(250):
                if transport_of(io) == "websocket" and client.transport() == "websocket":
                    break
                await asyncio.sleep(0.02)
            assert (transport_of(io), client.transport()) == ("websocket", "websocket")
            assert await client.call("echo", "after", timeout=5) == "after"
            await client.disconnect()
        assert [(h.secure, h.address) for h in seen] == [(True, "127.0.0.1")]
    finally:
        await io.close()


@asynccontextmanager
async def tls_client(cert: Path) -> AsyncIterator[socketio.AsyncClient]:
    """A python-socketio client that verifies the server's certificate against ``cert`` (a
    real TLS handshake on both transports, no verification switched off)."""
    ctx = ssl.create_default_context(cafile=str(cert))
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx))
    client = socketio.AsyncClient(reconnection=False, http_session=http, handle_sigint=False)
    try:
        yield client
    finally:
        if client.connected:
            await client.disconnect()
        await http.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


RUN_TLS = textwrap.dedent("""
    import ssl, sys
    import fastsio
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[2], sys.argv[1])
    io = fastsio.Server()
    io.on("echo", lambda socket, value: value)
    io.run("127.0.0.1", int(sys.argv[3]), ssl=ctx)
""")


async def test_run_with_ssl_prints_its_https_address_and_serves_wss(certificate):
    key, cert = certificate
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RUN_TLS, str(key), str(cert), str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        # Printed without any logging configuration (the script configures none).
        assert line.decode().strip() == f"fastsio listening on https://127.0.0.1:{port}/"
        async with tls_client(cert) as client:
            await client.connect(f"https://127.0.0.1:{port}", transports=["websocket"],
                                 wait_timeout=5)
            assert await client.call("echo", 7, timeout=5) == 7
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, err.decode()


# -- X-Forwarded-For / X-Forwarded-Proto ---------------------------------------------------------
FORWARDED = {"X-Forwarded-For": "203.0.113.7, 10.1.2.3", "X-Forwarded-Proto": "https"}


@pytest.mark.parametrize(
    ("trusted", "address", "secure"),
    [
        (None, "127.0.0.1", False),  # off by default: the headers are the client's word
        ("10.9.9.9", "127.0.0.1", False),  # the peer (127.0.0.1) is not a trusted proxy
        ("127.0.0.1", "10.1.2.3", True),  # the proxy appended 10.1.2.3: its client
        (["127.0.0.0/8", "10.0.0.0/8"], "203.0.113.7", True),  # two trusted hops
        (True, "203.0.113.7", True),
    ],
    ids=["off", "untrusted-peer", "one-hop", "two-hops", "trust-all"],
)
@pytest.mark.parametrize("transports", [["polling"], ["websocket"]])
async def test_forwarded_headers_from_trusted_proxies(make_server, trusted, address, secure,
                                                      transports):
    io, url = await make_server(trusted_proxies=trusted)
    seen: list[fastsio.Handshake] = []
    io.on("connection", lambda socket: seen.append(socket.handshake))
    async with sio_clients() as connect:
        await connect(url, transports=transports, headers=FORWARDED)
    assert [(h.address, h.secure) for h in seen] == [(address, secure)]


@pytest.mark.parametrize(
    ("forwarded", "address"),
    [
        ("garbage, 198.51.100.1", "198.51.100.1"),  # the right-most entry is what counts
        ("198.51.100.1, garbage", "127.0.0.1"),  # not an address: nothing left of it either
        ("", "127.0.0.1"),
    ],
)
async def test_malformed_forwarded_for(make_server, forwarded, address):
    io, url = await make_server(trusted_proxies="127.0.0.1")
    seen: list[fastsio.Handshake] = []
    io.on("connection", lambda socket: seen.append(socket.handshake))
    async with sio_clients() as connect:
        await connect(url, transports=["polling"],
                      headers={"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "http"})
    assert [(h.address, h.secure) for h in seen] == [(address, False)]


@pytest.mark.parametrize("bad", ["not-an-address", ["10.0.0.0/8", "300.1.1.1"], []])
def test_trusted_proxies_are_checked(bad):
    with pytest.raises(ValueError, match="trusted_proxies"):
        fastsio.Server(trusted_proxies=bad)


async def test_the_official_client_in_a_browser_upgrades_to_wss(certificate):
    """The demo page over https in headless Chromium: the bundle fastsio serves connects by
    polling, then upgrades to wss:// through the hand-over on the same TLS port."""
    from fastsio.demo import create_app
    from tests.browser import Browser

    io = create_app()
    port = await io.start("127.0.0.1", 0, ssl=server_context(*certificate))
    try:
        async with Browser.launch("--ignore-certificate-errors") as browser:
            page = await browser.new_page(f"https://127.0.0.1:{port}/")
            status = await page.wait_for(
                "document.getElementById('status').textContent.includes('over websocket')"
                " && document.getElementById('status').textContent", 15)
            assert status.startswith("connected as guest-"), status
            assert await page.evaluate("socket.io.engine.transport.ws.url.startsWith('wss://')")
            assert transport_of(io) == "websocket"
            (sock,) = io.sockets.sockets.values()
            assert sock.handshake.secure is True
    finally:
        await io.close()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_direct_writes_only_on_a_plain_socket(certificate, tls):
    """The outbox writes to the descriptor itself only on the loop's plain TCP transport: a
    TLS connection's transport (the loop's SSL transport over the plain one) is never written
    around, or its peer would read unencrypted frames."""
    from fastsio._core.outbox import direct_fd

    loop = asyncio.get_running_loop()
    made: asyncio.Future[asyncio.BaseTransport] = loop.create_future()

    class Capture(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            made.set_result(transport)

    server = await loop.create_server(
        Capture, "127.0.0.1", 0, ssl=server_context(*certificate) if tls else None)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile=str(certificate[1])) if tls else None
    try:
        _r, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
        try:
            transport = await asyncio.wait_for(made, 5)
            if tls:
                assert transport.get_extra_info("sslcontext") is not None
                assert direct_fd(transport) == -1
            else:
                assert direct_fd(transport) == transport.get_extra_info("socket").fileno() >= 0
        finally:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
