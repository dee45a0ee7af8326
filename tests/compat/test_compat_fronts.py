"""The python-socketio docs app on every front it is deployed with: uvicorn on uvloop,
hypercorn, aiohttp (``sio.attach(app)``), and mounted in FastAPI (``app.mount``); catch-all
namespaces on both servers; the official JS client against the app."""

from __future__ import annotations

import aiohttp
import pytest

from .scenarios import EXPECTED_BASICS, basics, connect
from .servers import get_server

DOCS_APP = "tests.compat.apps.docs_app:app"


@pytest.mark.parametrize("front", ["uvicorn-uvloop", "hypercorn"])
@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]],
                         ids=["websocket", "upgrade"])
async def test_docs_app_on_asgi_servers(app_servers, front, transports):
    server = get_server(app_servers, front, DOCS_APP)
    out = await basics(server.url, transports)
    for key, value in EXPECTED_BASICS.items():
        assert out[key] == value, (front, key)


@pytest.mark.parametrize("transports", [["websocket"], ["polling"], ["polling", "websocket"]],
                         ids=["websocket", "polling", "upgrade"])
async def test_docs_app_on_the_own_front(app_servers, transports):
    """``fastsio run docs_app:app``: the uvicorn app, unchanged, on fastsio's own front with
    its FastAPI app served beside Socket.IO in-process (Server(other_asgi_app=...))."""
    server = get_server(app_servers, "fastsio-run", DOCS_APP)
    out = await basics(server.url, transports)
    for key, value in EXPECTED_BASICS.items():
        assert out[key] == value, key


@pytest.mark.parametrize("transports", [["websocket"], ["polling"], ["polling", "websocket"]],
                         ids=["websocket", "polling", "upgrade"])
async def test_docs_app_on_aiohttp(app_servers, transports):
    server = get_server(app_servers, "aiohttp", "aiohttp")
    out = await basics(server.url, transports, http_app=False)
    for key, value in EXPECTED_BASICS.items():
        if key != "http":
            assert out[key] == value, key
    async with aiohttp.ClientSession() as http, http.get(server.url + "/") as resp:
        assert (resp.status, await resp.text()) == (200, "aiohttp index")


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]],
                         ids=["websocket", "upgrade"])
async def test_mounted_in_fastapi(app_servers, transports):
    server = get_server(app_servers, "uvicorn", "tests.compat.apps.mounted_app:app")
    rec = await connect(server.url, transports=transports, auth={"user": "mo"},
                        path="ws/socket.io")
    try:
        assert await rec.client.call("whoami", timeout=5) == "mo"
        assert await rec.client.call("multi", timeout=5) == (1, "two", {"three": 3})
    finally:
        await rec.client.disconnect()
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/hello") as resp:
            assert await resp.json() == {"hello": "mounted"}
        # Not under the mount point: FastAPI's 404, not Socket.IO's.
        async with http.get(server.url + "/socket.io/?EIO=4&transport=polling") as resp:
            assert resp.status == 404


async def catchall(url):
    out = {}
    rec = await connect(url, namespaces=["/any", "/special"])
    try:
        c = rec.client
        out["any_event"] = await c.call("hello", (1, 2), namespace="/any", timeout=5)
        out["any_ping"] = await c.call("ping", namespace="/any", timeout=5)
        out["special_ping"] = await c.call("ping", namespace="/special", timeout=5)
        out["special_other"] = await c.call("other", "x", namespace="/special", timeout=5)
    finally:
        await c.disconnect()
    import socketio

    refused = socketio.AsyncClient(reconnection=False)
    errors = []
    refused.on("connect_error", lambda data=None: errors.append(data), namespace="/forbidden")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(url, namespaces=["/forbidden"], transports=["websocket"],
                              wait_timeout=5)
    await refused.disconnect()
    out["forbidden"] = errors
    return out


async def test_catch_all_namespaces_match_python_socketio(app_servers):
    results = {}
    for impl in ("fastsio", "python-socketio"):
        server = get_server(app_servers, "uvicorn", "tests.compat.apps.catchall_app:app", impl)
        results[impl] = await catchall(server.url)
    assert results["fastsio"] == results["python-socketio"]
    assert results["fastsio"] == {
        "any_event": ["/any", "hello", [1, 2]],
        "any_ping": ["pong", "/any"],
        "special_ping": "special pong",
        "special_other": ["/special", "other", ["x"]],
        "forbidden": [{"message": "Connection rejected by server"}],
    }


@pytest.mark.parametrize("impl", ["fastsio", "python-socketio"])
async def test_official_js_client(app_servers, js_client, impl):
    """The official client against the docs app (both servers): acks, call() answered by the
    client's ack, call() timing out on a client that does not ack, refusal data, rooms."""
    server = get_server(app_servers, "uvicorn", DOCS_APP, impl)
    client = await js_client(server.url, auth={"user": "js"}, acks={"question": ["js answer"]})
    try:
        await client.connected()
        assert await client.emit_with_ack("whoami") == ["js"]
        assert await client.emit_with_ack("multi") == [1, "two", {"three": 3}]
        assert await client.emit_with_ack("ask", "q") == ["js answer"]
        # No listener for "silent" on the JS side: no ack, the server's call() times out.
        assert await client.emit_with_ack("ask_silent") == ["timed out"]
        assert await client.emit_with_ack("binary", b"ab") == [b"ab!"]
        assert await client.emit_with_ack("join", "blue") == [["blue", "lobby"]]
        assert await client.emit_with_ack("whatever", 1) == [["caught", "whatever", [1]]]
    finally:
        await client.close()
    refused = await js_client(server.url, auth={"token": "refuse"})
    try:
        err = await refused.connect_error()
        assert err["message"] == "authentication failed"
        assert err["data"] == {"code": 7}
    finally:
        await refused.close()


@pytest.mark.parametrize(("front", "app", "opts"), [
    ("aiohttp", "aiohttp", {}),
    ("hypercorn", DOCS_APP, {}),
    ("fastsio-run", DOCS_APP, {}),
    ("uvicorn", "tests.compat.apps.mounted_app:app", {"path": "/ws/socket.io"}),
], ids=["aiohttp", "hypercorn", "own-front", "fastapi-mount"])
async def test_official_js_client_on_every_front(app_servers, js_client, front, app, opts):
    """The official client (polling, then the upgrade) against the docs app wherever it is
    deployed."""
    server = get_server(app_servers, front, app)
    client = await js_client(server.url, auth={"user": "js"}, acks={"question": ["js answer"]},
                             **opts)
    try:
        await client.connected()
        assert await client.emit_with_ack("whoami") == ["js"]
        assert await client.emit_with_ack("ask", "q") == ["js answer"]
        assert await client.emit_with_ack("binary", b"ab") == [b"ab!"]
        assert await client.emit_with_ack("join", "blue") == [["blue", "lobby"]]
        assert (await client.status())["engineTransport"] in ("polling", "websocket")
    finally:
        await client.close()
