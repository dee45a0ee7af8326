"""The scenarios the compat tests run on python-socketio's docs app (tests/compat/apps), on
fastsio.compat and on python-socketio itself, with the toolkit's recording client; the
expectations that hold on every front."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import socketio

from tests.clients.sio import SioClient

from .servers import get_server

TIMEOUT = 5

IMPLS = ["fastsio", "python-socketio"]


def recorder(namespaces: list[str] | None = None) -> SioClient:
    """A recording client that answers the app's ``question`` and ``with_ack`` emits."""
    rec = SioClient(namespaces or ["/"])
    rec.answer("question", lambda q: f"answer to {q}")
    rec.answer("with_ack", lambda text: (text, "acked"))
    return rec


async def connect(url: str, *, transports: list[str] | None = None, auth: Any = None,
                  namespaces: list[str] | None = None, path: str = "socket.io") -> SioClient:
    rec = recorder(namespaces)
    await rec.connect(url, transports or ["websocket"], auth, socketio_path=path)
    return rec


async def refused(url: str, auth: Any) -> Any:
    rec = recorder()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await rec.connect(url, ["websocket"], auth)
    await rec.client.disconnect()
    return [data for _, data in rec.connect_errors]


async def basics(url: str, transports: list[str], http_app: bool = True) -> dict[str, Any]:
    """One client through sessions, acks, binary, catch-all and the HTTP app beside it."""
    out: dict[str, Any] = {}
    a = await connect(url, transports=transports, auth={"user": "ann"})
    try:
        c = a.client
        out["whoami"] = await c.call("whoami", timeout=TIMEOUT)
        await c.call("rename", "anne", timeout=TIMEOUT)
        out["renamed"] = await c.call("whoami", timeout=TIMEOUT)
        out["multi"] = await c.call("multi", timeout=TIMEOUT)
        out["nothing"] = await c.call("nothing", timeout=TIMEOUT)
        out["binary"] = await c.call("binary", b"\x00\x01", timeout=TIMEOUT)
        out["catch_all"] = await c.call("no_such_event", (5, "x"), timeout=TIMEOUT)
        out["ask"] = await c.call("ask", "life", timeout=TIMEOUT)
        # python-socketio's client acks every event, handled or not (the JS client test
        # covers the timeout).
        out["ask_answered"] = await c.call("ask_silent", timeout=TIMEOUT)
        out["callback"] = await c.call("callback", "hey", timeout=TIMEOUT)
        await c.send("hi")
        out["message"] = list(await a.wait("message"))
        out["transport"] = await c.call("transport", timeout=TIMEOUT)
        out["has_query"] = await c.call("has_query", "EIO=4", timeout=TIMEOUT)
    finally:
        await a.client.disconnect()
    if http_app:
        async with aiohttp.ClientSession() as http, http.get(url + "/hello") as resp:
            out["http"] = (resp.status, await resp.json())
    return out


async def rooms(url: str) -> dict[str, Any]:
    """Three clients, rooms, room broadcasts with skip_sid, members, close_room."""
    out: dict[str, Any] = {}
    a, b, c = [await connect(url) for _ in range(3)]
    try:
        sid = {name: r.client.get_sid() for name, r in zip("abc", (a, b, c), strict=True)}
        names = {v: k for k, v in sid.items()}
        out["join_a"] = await a.client.call("join", "red", timeout=TIMEOUT)
        await b.client.call("join", "red", timeout=TIMEOUT)
        out["members"] = sorted(
            names[s] for s in await c.client.call("members", "red", timeout=TIMEOUT))
        out["lobby"] = sorted(
            names.get(s, "?") for s in await c.client.call("members", "lobby", timeout=TIMEOUT))
        await a.client.call("say", ("red", "hello red"), timeout=TIMEOUT)
        out["b_heard"] = list(await b.wait("said"))
        await c.client.call("shout", "all", timeout=TIMEOUT)
        for r in (a, b, c):
            await r.wait("shouted")
        out["a_heard_say"] = [list(args) for args in a.got("said")]
        out["c_heard_say"] = [list(args) for args in c.got("said")]
        out["leave_b"] = await b.client.call("leave", "red", timeout=TIMEOUT)
        out["after_leave"] = sorted(
            names[s] for s in await c.client.call("members", "red", timeout=TIMEOUT))
        await c.client.call("close", "red", timeout=TIMEOUT)
        out["after_close"] = await c.client.call("members", "red", timeout=TIMEOUT)
        await b.client.emit("kick")
        await b.wait_disconnect()
        await a.client.disconnect()
        await asyncio.sleep(0.2)
        log = await c.client.call("disconnects", timeout=TIMEOUT)
        out["disconnects"] = [[names[s], why] for s, why in log if s in names]
    finally:
        for r in (a, b, c):
            await r.client.disconnect()
    return out


async def namespaces(url: str) -> dict[str, Any]:
    """The class-based namespace ``/chat``."""
    out: dict[str, Any] = {}
    a = await connect(url, namespaces=["/chat"])
    b = await connect(url, namespaces=["/chat"])
    try:
        out["echo"] = await a.client.call("echo", {"x": [1, 2]}, namespace="/chat",
                                          timeout=TIMEOUT)
        out["nick"] = await a.client.call("nick", "zed", namespace="/chat", timeout=TIMEOUT)
        await a.client.call("post", "news!", namespace="/chat", timeout=TIMEOUT)
        out["b_got"] = list(await b.wait("posted", "/chat"))
        await asyncio.sleep(0.1)
        out["a_got"] = [list(args) for args in a.got("posted", "/chat")]
        out["unknown"] = await a.client.call("undefined_here", namespace="/chat",
                                             timeout=TIMEOUT)
    finally:
        await a.client.disconnect()
        await b.client.disconnect()
    return out


async def refusals(url: str) -> dict[str, Any]:
    return {
        "raised": await refused(url, {"token": "refuse"}),
        "false": await refused(url, {"token": "false"}),
    }


EXPECTED_BASICS = {
    "whoami": "ann",
    "renamed": "anne",
    "multi": (1, "two", {"three": 3}),
    "nothing": None,
    "binary": b"\x00\x01!",
    "catch_all": ["caught", "no_such_event", [5, "x"]],
    "ask": "answer to life",
    "ask_answered": "answered",
    "callback": ["hey", "acked"],
    "message": ["echo: hi"],
    "has_query": True,
    "http": (200, {"hello": "world"}),
}


async def run_both(app_servers: Any, scenario: Any, *args: Any,
                   front: str = "uvicorn", impls: list[str] = IMPLS) -> dict[str, Any]:
    results = {}
    for impl in impls:
        server = get_server(app_servers, front, "tests.compat.apps.docs_app:app", impl)
        results[impl] = await scenario(server.url, *args)
    if len(impls) > 1:
        assert results["fastsio"] == results["python-socketio"]
    return results["fastsio"]
