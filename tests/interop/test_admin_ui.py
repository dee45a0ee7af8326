"""The official Admin UI (the built ``ui/dist`` of the npm package ``@socket.io/admin-ui``),
served locally and run in headless Chromium, against an instrumented fastsio server."""

from __future__ import annotations

import asyncio
import json

import bcrypt
import pytest
from aiohttp import web

import fastsio
import fastsio.admin
from tests.browser import Browser
from tests.clients.node import REPO

UI_DIST = REPO / "node_modules" / "@socket.io" / "admin-ui" / "ui" / "dist"


@pytest.fixture
async def ui_origin():
    """The UI's files on a local HTTP server of their own (another origin than the server's)."""
    if not (UI_DIST / "index.html").is_file():
        pytest.fail(f"{UI_DIST} is missing: run `npm install` at the repository root",
                    pytrace=False)
    app = web.Application()

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(UI_DIST / "index.html")

    app.router.add_get("/", index)
    app.router.add_static("/", UI_DIST)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def connections(nsp):
    queue: asyncio.Queue[fastsio.Socket] = asyncio.Queue()
    nsp.on("connection", queue.put_nowait)
    return queue


def set_input(index: int, value: str) -> str:
    """JavaScript that types ``value`` into the connection dialog's ``index``-th text field."""
    return f"""(() => {{
        const input = document.querySelectorAll('.v-dialog input[type=text], '
                                                + '.v-dialog input[type=password]')[{index}];
        input.value = {json.dumps(value)};
        input.dispatchEvent(new Event('input', {{bubbles: true}}));
        return true;
    }})()"""


def row_of(socket_id: str) -> str:
    return f"""[...document.querySelectorAll('tbody tr')]
        .find((tr) => tr.innerText.includes({json.dumps(socket_id)}))"""


async def test_the_dashboard_lists_the_sockets_and_disconnects_one(
    make_server, js_client, ui_origin, monkeypatch
):
    monkeypatch.setattr(fastsio.admin, "STATS_INTERVAL", 0.5)
    io, url = await make_server(cors_allowed_origins=[ui_origin], cors_credentials=True)
    hashed = bcrypt.hashpw(b"ui-pass", bcrypt.gensalt(4)).decode()
    fastsio.instrument(io, auth={"username": "admin", "password": hashed})
    left: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    io.on("disconnect", lambda socket, reason: left.put_nowait((socket.id, reason)))

    stays = await js_client(url, transports=["websocket"])
    goes = await js_client(url, transports=["polling"])
    stays_id = (await stays.connected())["id"]
    goes_id = (await goes.connected())["id"]

    # The UI links fonts and icons from CDNs: no name resolves here but loopback's.
    async with Browser.launch(
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
    ) as browser:
        page = await browser.new_page(ui_origin + "/")
        # No saved server yet: the connection dialog asks for one, and for the credentials.
        await page.wait_for("document.querySelectorAll('.v-dialog input').length >= 3")
        await page.evaluate(set_input(0, url))
        await page.evaluate(set_input(1, "admin"))
        await page.evaluate(set_input(2, "wrong"))
        await page.evaluate("document.querySelector('.v-dialog button[type=submit]').click()")
        await page.wait_for("document.querySelector('.v-dialog .red--text')")
        assert not io.of("/admin").sockets

        await page.evaluate(set_input(2, "ui-pass"))
        await page.evaluate("document.querySelector('.v-dialog button[type=submit]').click()")
        # The login's session id, kept by the UI to reconnect without the password.
        await page.wait_for("localStorage.getItem('session_id')")
        assert len(io.of("/admin").sockets) == 1

        # The dashboard: the server's figures (its namespaces: 2 test clients, the UI itself).
        await page.wait_for("document.body.innerText.includes('Dashboard')")
        rows = "[...document.querySelectorAll('tr')].map((tr) => tr.innerText.trim())"
        await page.wait_for(f"{rows}.includes('/\\t2') && {rows}.includes('/admin\\t1')")
        await page.evaluate("location.hash = '#/sockets/'")
        await page.wait_for(f"!!({row_of(stays_id)}) && !!({row_of(goes_id)})")
        assert "HTTP long-polling" in await page.evaluate(f"({row_of(goes_id)}).innerText")
        assert "WebSocket" in await page.evaluate(f"({row_of(stays_id)}).innerText")

        # The row's disconnect button (the click reaches the row too, which opens the
        # socket's page, as with a mouse).
        await page.evaluate(f"({row_of(goes_id)}).querySelector('button').click()")
        assert await asyncio.wait_for(left.get(), 10) == (goes_id, "server namespace disconnect")
        assert await goes.disconnected() == "io server disconnect"
        await page.wait_for("location.hash.includes('/sockets/')"
                            f" && document.body.innerText.includes({goes_id!r})"
                            " && document.body.innerText.includes('DISCONNECTED')")
        await page.evaluate("location.hash = '#/sockets/'")
        await page.wait_for(f"!!({row_of(stays_id)}) && !({row_of(goes_id)})")
        assert await page.evaluate(f"!!({row_of(stays_id)})")
        assert [s.id for s in io.sockets.sockets.values()] == [stays_id]

        # A reload: the UI comes back with its saved server and session id, no password.
        admins = connections(io.of("/admin"))
        await page.evaluate("location.reload()")
        admin = await asyncio.wait_for(admins.get(), 10)
        assert set(admin.handshake.auth) == {"sessionId"}
        await page.wait_for(f"!!({row_of(stays_id)})")
        assert not await page.evaluate("!!document.querySelector('.v-dialog--active')")
