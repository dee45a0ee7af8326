"""Headless Chromium driven over the DevTools protocol (CDP), for tests that need a real browser:
a page loads, its scripts run, the test reads the page's state with ``evaluate``.

The browser is Debian's ``chromium`` (``scripts/dev test`` installs it when missing; a test
tool's own browser download does not work on these machines). The protocol is spoken over
aiohttp's WebSocket client, so nothing beyond the test extras is needed.

    async with Browser.launch() as browser:
        page = await browser.new_page(url)
        await page.wait_for("document.getElementById('status').textContent.startsWith('ok')")
        png = await page.screenshot()
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")


def find_chromium() -> str:
    """The browser's executable (``FASTSIO_CHROMIUM`` first); a clear failure when absent."""
    env = os.environ.get("FASTSIO_CHROMIUM")
    if env:
        return env
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(
        "no chromium on PATH: `bash scripts/dev test` installs Debian's chromium "
        "(apt-get install chromium), or set FASTSIO_CHROMIUM"
    )


class CDPError(Exception):
    """An error answer from the browser."""


class _Connection:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.events: dict[str | None, list[dict[str, Any]]] = {}
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = orjson.loads(msg.data)
                fut = self.pending.pop(data["id"], None) if "id" in data else None
                if fut is not None:
                    if fut.done():
                        continue
                    if "error" in data:
                        fut.set_exception(CDPError(data["error"]))
                    else:
                        fut.set_result(data.get("result", {}))
                elif "method" in data:
                    self.events.setdefault(data.get("sessionId"), []).append(data)
        finally:
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(CDPError("browser connection closed"))

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        msg_id = next(self.ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = fut
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
        if session is not None:
            msg["sessionId"] = session
        await self.ws.send_str(orjson.dumps(msg).decode())
        return await asyncio.wait_for(fut, 30)


class Page:
    """One tab, attached in flattened mode (its commands carry its session id)."""

    def __init__(self, conn: _Connection, session: str, target: str) -> None:
        self._conn = conn
        self.session = session
        self.target = target

    async def call(self, method: str, **params: Any) -> Any:
        return await self._conn.call(method, self.session, **params)

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise CDPError(result["exceptionDetails"])
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll ``expression`` until it is truthy and return its value; fail after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Any = None
        while True:
            try:
                last = await self.evaluate(expression)
            except CDPError as exc:  # the page may still be loading
                last = exc
            else:
                if last:
                    return last
            if loop.time() > deadline:
                raise AssertionError(f"{expression!r} still not true after {timeout} s: {last!r}")
            await asyncio.sleep(0.05)

    def console(self) -> list[str]:
        """What the page logged so far (``Runtime.consoleAPICalled``) and its uncaught errors."""
        lines = []
        for event in self._conn.events.get(self.session, []):
            params = event["params"]
            if event["method"] == "Runtime.consoleAPICalled":
                lines.append(" ".join(str(a.get("value", a.get("description", "")))
                                      for a in params["args"]))
            elif event["method"] == "Runtime.exceptionThrown":
                lines.append(str(params["exceptionDetails"]))
        return lines

    async def screenshot(self) -> bytes:
        """The page as PNG bytes (write them out to look at the page)."""
        result = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])


class Browser:
    def __init__(self, proc: asyncio.subprocess.Process, conn: _Connection) -> None:
        self.proc = proc
        self._conn = conn

    @classmethod
    @asynccontextmanager
    async def launch(cls, *extra_args: str) -> AsyncIterator[Browser]:
        profile = tempfile.mkdtemp(prefix="fastsio-chromium-")
        proc = await asyncio.create_subprocess_exec(
            find_chromium(),
            "--headless=new",
            # Root (CI here) cannot use the sandbox; the pages are the tests' own.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            *extra_args,
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        http = aiohttp.ClientSession()
        drain: asyncio.Future[None] | None = None
        try:
            url = await asyncio.wait_for(_devtools_url(proc), 30)
            # Keep reading stderr so that the browser never blocks on a full pipe.
            assert proc.stderr is not None
            drain = asyncio.ensure_future(_drain(proc.stderr))
            ws = await http.ws_connect(url, max_msg_size=0)
            browser = cls(proc, _Connection(ws))
            yield browser
            try:
                await asyncio.wait_for(browser._conn.call("Browser.close"), 5)
            except (CDPError, asyncio.TimeoutError, ConnectionError):
                pass
            await ws.close()
        finally:
            await http.close()
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            if drain is not None:
                # The pipe's transport must be closed before the loop is (uvloop warns).
                await asyncio.wait_for(drain, 5)
            shutil.rmtree(profile, ignore_errors=True)

    async def new_page(self, url: str = "about:blank") -> Page:
        target = (await self._conn.call("Target.createTarget", url="about:blank"))["targetId"]
        session = (await self._conn.call("Target.attachToTarget", targetId=target,
                                         flatten=True))["sessionId"]
        page = Page(self._conn, session, target)
        await page.call("Runtime.enable")
        await page.call("Page.enable")
        if url != "about:blank":
            await page.goto(url)
        return page


async def _devtools_url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    seen = b""
    while True:
        line = await proc.stderr.readline()
        if not line:
            raise RuntimeError(f"chromium exited before listening: {seen.decode(errors='replace')}")
        seen += line
        m = _LISTENING.search(line)
        if m:
            return m.group(1).decode()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
