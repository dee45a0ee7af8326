"""The demo as a user starts it: ``python -m fastsio.demo`` (Server.run, blocking, on uvloop)."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import socketio

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_demo_serves_page_bundle_and_chat():
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fastsio.demo", "--port", str(port),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(url + "/") as resp:
                        page = await resp.text()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("demo did not start")
            assert '<script src="/socket.io/socket.io.js"></script>' in page
            async with http.get(url + "/socket.io/socket.io.js") as resp:
                assert resp.status == 200, "socket.io-client not installed (run the test command)"
                assert resp.headers["Content-Type"] == "application/javascript; charset=utf-8"
                bundle = await resp.text()
                assert "Socket.IO v4" in bundle
                etag = resp.headers["ETag"]
            async with http.get(url + "/socket.io/socket.io.js",
                                headers={"If-None-Match": etag}) as resp:
                assert resp.status == 304

        alice, bob = socketio.AsyncClient(), socketio.AsyncClient()
        heard: list[tuple[str, str]] = []
        got = asyncio.Event()

        @bob.on("chat")
        def on_chat(who, text):
            heard.append((who, text))
            got.set()

        await alice.connect(url, auth={"name": "alice"})
        await bob.connect(url, auth={"name": "bob"}, transports=["websocket"])
        assert await alice.call("chat", "hello", timeout=5) == "ok"
        await asyncio.wait_for(got.wait(), 5)
        assert heard == [("alice", "hello")]
        await alice.disconnect()
        await bob.disconnect()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, out.decode()


async def test_demo_page_in_a_browser_connects_and_chats():
    """The page as a person opens it: headless Chromium loads the demo, the official bundle
    served by fastsio connects, upgrades to WebSocket, and a chat line sent from the page comes
    back into the page's log."""
    from tests.browser import Browser

    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fastsio.demo", "--port", str(port),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        await wait_listening(port)
        async with Browser.launch() as browser:
            page = await browser.new_page(url)
            status = await page.wait_for(
                "document.getElementById('status').textContent.includes('over websocket')"
                " && document.getElementById('status').textContent", 15)
            assert status.startswith("connected as guest-"), status
            await page.evaluate(
                "(() => { const f = document.getElementById('send');"
                " f.elements.text.value = 'hello from chromium'; f.requestSubmit(); })()")
            line = await page.wait_for(
                "[...document.querySelectorAll('#log div')].map(d => d.textContent)"
                ".find(t => t.endsWith(': hello from chromium'))", 10)
            assert line.startswith("guest-"), line
            assert (await page.screenshot()).startswith(b"\x89PNG")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, out.decode()


async def wait_listening(port: int, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise AssertionError(f"nothing listening on port {port}") from None
            await asyncio.sleep(0.05)
        else:
            writer.close()
            return
