"""python-socketio applications on fastsio.compat: the app of ``apps/docs_app.py`` (written as
python-socketio's documentation writes apps) under uvicorn, driven by python-socketio's client;
the same code on python-socketio itself must behave the same."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import socketio

from .conftest import get_server

TIMEOUT = 5

IMPLS = ["fastsio", "python-socketio"]


class Recorder:
    """A python-socketio client that records events per name."""

    def __init__(self, namespaces: list[str] | None = None) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list[Any]] = {}
        self.errors: list[Any] = []
        self.disconnected = asyncio.Event()
        self.changed = asyncio.Event()
        for ns in namespaces or ["/"]:
            self.client.on("*", self._record, namespace=ns)
            self.client.on("connect_error", self._error, namespace=ns)
            self.client.on("disconnect", self._disconnect, namespace=ns)
        self.client.on("question", lambda q: f"answer to {q}")
        self.client.on("with_ack", lambda text: (text, "acked"))

    async def _record(self, event: str, *args: Any) -> None:
        self.events.setdefault(event, []).append(list(args))
        self.changed.set()

    async def _error(self, data: Any = None) -> None:
        self.errors.append(data)
        self.changed.set()

    async def _disconnect(self, *args: Any) -> None:
        self.disconnected.set()

    async def wait_event(self, name: str, count: int = 1) -> list[Any]:
        async def until() -> None:
            while len(self.events.get(name, [])) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), TIMEOUT)
        return self.events[name]


async def connect(url: str, *, transports: list[str] | None = None, auth: Any = None,
                  namespaces: list[str] | None = None, path: str = "socket.io") -> Recorder:
    rec = Recorder(namespaces)
    await rec.client.connect(url, transports=transports or ["websocket"], auth=auth,
                             namespaces=namespaces or ["/"], socketio_path=path,
                             wait_timeout=TIMEOUT)
    return rec


async def refused(url: str, auth: Any) -> Any:
    rec = Recorder()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await rec.client.connect(url, transports=["websocket"], auth=auth,
                                 wait_timeout=TIMEOUT)
    await rec.client.disconnect()
    return rec.errors


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
        out["message"] = (await a.wait_event("message"))[0]
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
        out["b_heard"] = (await b.wait_event("said"))[0]
        await c.client.call("shout", "all", timeout=TIMEOUT)
        for r in (a, b, c):
            await r.wait_event("shouted")
        out["a_heard_say"] = a.events.get("said", [])
        out["c_heard_say"] = c.events.get("said", [])
        out["leave_b"] = await b.client.call("leave", "red", timeout=TIMEOUT)
        out["after_leave"] = sorted(
            names[s] for s in await c.client.call("members", "red", timeout=TIMEOUT))
        await c.client.call("close", "red", timeout=TIMEOUT)
        out["after_close"] = await c.client.call("members", "red", timeout=TIMEOUT)
        await b.client.emit("kick")
        await asyncio.wait_for(b.disconnected.wait(), TIMEOUT)
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
        out["b_got"] = (await b.wait_event("posted"))[0]
        await asyncio.sleep(0.1)
        out["a_got"] = a.events.get("posted", [])
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


@pytest.mark.parametrize("transports", [["websocket"], ["polling"], ["polling", "websocket"]],
                         ids=["websocket", "polling", "upgrade"])
async def test_basics_match_python_socketio(app_servers, transports):
    # python-socketio's client spends 30 s closing a polling session on python-socketio's
    # server: polling alone is checked on fastsio only (against the same expectations).
    impls = ["fastsio"] if transports == ["polling"] else IMPLS
    out = await run_both(app_servers, basics, transports, impls=impls)
    for key, value in EXPECTED_BASICS.items():
        assert out[key] == value, key
    assert out["transport"] == transports[-1] or transports == ["polling", "websocket"]


async def test_rooms_match_python_socketio(app_servers):
    out = await run_both(app_servers, rooms)
    assert out["join_a"] == ["lobby", "red"]
    assert out["members"] == ["a", "b"]
    assert out["lobby"] == ["a", "b", "c"]
    assert out["b_heard"] == [{"room": "red", "text": "hello red"}]
    assert out["a_heard_say"] == [] and out["c_heard_say"] == []
    assert out["leave_b"] == ["lobby"]
    assert out["after_leave"] == ["a"]
    assert out["after_close"] == []
    # python-socketio's client closes its connection right after its DISCONNECT packet, so
    # which of the two a server reads first depends on the client's event loop (the transport
    # first on Python 3.10/3.11, the packet first on 3.12+). run_both has already checked that
    # fastsio and python-socketio saw the same reason in this run.
    assert out["disconnects"][0] == ["b", "server disconnect"]
    assert out["disconnects"][1] in (["a", "transport close"], ["a", "client disconnect"])
    assert len(out["disconnects"]) == 2


async def test_class_namespace_matches_python_socketio(app_servers):
    out = await run_both(app_servers, namespaces)
    assert out == {"echo": {"x": [1, 2]}, "nick": "zed", "b_got": ["news!"], "a_got": [],
                   "unknown": None}


async def test_refusals_match_python_socketio(app_servers):
    out = await run_both(app_servers, refusals)
    assert out["raised"] == [{"message": "authentication failed", "data": {"code": 7}}]
    assert out["false"] == [{"message": "Connection rejected by server"}]
