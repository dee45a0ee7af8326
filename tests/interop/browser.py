"""Headless Chromium (Debian's ``chromium`` package) driven over the DevTools protocol.

Enough of the protocol for the tests that need a real browser: open a page, evaluate
JavaScript in it, wait until an expression is true. ``scripts/dev test`` installs chromium when
it is missing; without it the test fails (never skips) with the command that installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

TIMEOUT = 10.0


def require_chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.fail(
        "this test needs Debian's chromium: `apt-get install chromium` (scripts/dev test "
        "installs it)",
        pytrace=False,
    )


class Page:
    """One browser tab."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.console: list[str] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            fut = self._pending.pop(data.get("id", -1), None)
            if fut is not None and not fut.done():
                if "error" in data:
                    fut.set_exception(AssertionError(f"DevTools error: {data['error']}"))
                else:
                    fut.set_result(data.get("result", {}))
            elif data.get("method") == "Runtime.consoleAPICalled":
                args = data["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description")))
                                             for a in args))
            elif data.get("method") == "Runtime.exceptionThrown":
                self.console.append(str(data["params"]["exceptionDetails"]))
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(AssertionError("the browser went away"))

    async def send(self, method: str, **params: Any) -> Any:
        msg_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self._ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        return await asyncio.wait_for(fut, TIMEOUT)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (promises are awaited)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = TIMEOUT) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if loop.time() > deadline:
                text = await self.evaluate("document.body ? document.body.innerText : ''")
                raise AssertionError(
                    f"not true after {timeout}s: {expression}\npage text:\n{text}\n"
                    f"console:\n" + "\n".join(self.console)
                )
            await asyncio.sleep(0.1)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def close(self) -> None:
        await self._ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def chromium_page() -> AsyncIterator[Page]:
    """A fresh headless Chromium (its own profile, no network but loopback) and its first tab."""
    exe = require_chromium()
    profile = tempfile.mkdtemp(prefix="fastsio-chromium-")
    proc = await asyncio.create_subprocess_exec(
        exe,
        "--headless=new",
        "--no-sandbox",  # root in CI and containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        # Pages may link fonts and icons from CDNs: no name resolves but localhost's.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": profile},
    )
    session = aiohttp.ClientSession()
    page: Page | None = None
    try:
        assert proc.stderr is not None
        port = None
        seen = b""
        while port is None:
            line = await asyncio.wait_for(proc.stderr.readline(), 20)
            if not line:
                raise AssertionError(f"chromium exited: {seen.decode(errors='replace')}")
            seen += line
            found = re.search(rb"DevTools listening on ws://[^:]+:(\d+)/", line)
            if found:
                port = int(found.group(1))
        # Keep reading stderr so that chromium never blocks on a full pipe.
        drain = asyncio.ensure_future(proc.stderr.read())
        async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        ws = await session.ws_connect(url, max_msg_size=0)
        page = Page(ws)
        await page.send("Runtime.enable")
        await page.send("Page.enable")
        yield page
    finally:
        if page is not None:
            await page.close()
        await session.close()
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        if "drain" in locals():
            await drain
        shutil.rmtree(profile, ignore_errors=True)
