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
