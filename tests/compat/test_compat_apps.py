"""python-socketio applications on fastsio.compat: the app of ``apps/docs_app.py`` (written as
python-socketio's documentation writes apps) under uvicorn, driven by python-socketio's client;
the same code on python-socketio itself must behave the same."""

from __future__ import annotations

import pytest

from .scenarios import EXPECTED_BASICS, IMPLS, basics, namespaces, refusals, rooms, run_both


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
