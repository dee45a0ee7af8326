"""``io.stats()``, the Prometheus exporter (``fastsio.metrics``) and the per-layer trace
loggers (``fastsio.trace``), with real python-socketio clients and raw WebSockets."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import fastsio
import fastsio.metrics
from fastsio import trace
from tests.clients.http import fetch
from tests.clients.loops import wait_for
from tests.clients.sio import sio_clients
from tests.clients.wire import ws_url


async def test_stats_count_packets_bytes_broadcasts_and_disconnects(make_server):
    io, url = await make_server(packet_stats=True)
    heard = asyncio.Event()
    io.on("note", lambda socket, text: heard.set())
    io.of("/chat")
    async with sio_clients() as connect:
        a = await connect(url, transports=["websocket"])
        b = await connect(url, transports=["websocket"], namespaces=["/", "/chat"])
        await wait_for(lambda: io.stats()["sockets"].get("/chat") == 1)
        s = io.stats()
        assert s["clients"] == 2
        assert s["sockets"] == {"/": 2, "/chat": 1}

        before = io.stats()
        await a.emit("note", "hello")
        await asyncio.wait_for(heard.wait(), 5)
        after = io.stats()
        assert after["packets_in"] - before["packets_in"] == 1
        assert after["bytes_in"] - before["bytes_in"] == len(b'42["note","hello"]')

        news: asyncio.Queue[object] = asyncio.Queue()
        for c in (a, b):
            c.on("news", lambda value: news.put_nowait(value))
        before = io.stats()
        io.emit("news", 1)  # one broadcast, two sockets
        assert [await asyncio.wait_for(news.get(), 5) for _ in range(2)] == [1, 1]
        after = io.stats()
        assert after["broadcasts"] - before["broadcasts"] == 1
        assert after["packets_out"] - before["packets_out"] == 2
        assert after["bytes_out"] - before["bytes_out"] == 2 * len(b'42["news",1]')

        await b.eio.disconnect()  # the Engine.IO session ends: both its sockets go with it
        await wait_for(lambda: io.stats()["clients"] == 1)
        next(iter(io.sockets.sockets.values())).disconnect()
        await wait_for(lambda: io.stats()["clients"] == 0)
    s = io.stats()
    assert s["disconnects"] == {"transport close": 2, "server namespace disconnect": 1}
    assert s["sockets"] == {"/": 0, "/chat": 0}
    assert s["recoveries"] == {"ok": 0, "failed": 0}


async def test_packet_counters_are_off_unless_asked_for(make_server):
    io, url = await make_server()
    async with sio_clients() as connect:
        client = await connect(url)
        io.emit("x")
        io.to("nobody").emit("y")
        await client.emit("z")
    s = io.stats()
    assert (s["packets_in"], s["bytes_in"], s["packets_out"], s["bytes_out"]) == (None,) * 4
    assert s["broadcasts"] == 2
    assert io._packets is None


async def test_a_failed_recovery_is_counted(make_server):
    io, url = await make_server(connection_state_recovery=True)
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(url)) as ws:
        assert str((await ws.receive(timeout=5)).data).startswith("0{")
        await ws.send_str("40" + json.dumps({"pid": "not-a-session", "offset": "0-0"}))
        reply = str((await ws.receive(timeout=5)).data)
        assert reply.startswith("40{") and '"pid"' in reply  # a fresh session instead
    assert io.stats()["recoveries"] == {"ok": 0, "failed": 1}


async def test_prometheus_exporter_serves_the_counters(make_server):
    io, url = await make_server(packet_stats=True)
    registry = CollectorRegistry()
    fastsio.metrics.export(io, registry)
    async with sio_clients() as connect:
        client = await connect(url, transports=["websocket"])
        await client.emit("hi", "there")
        await wait_for(lambda: io.stats()["packets_in"] >= 2)  # CONNECT and the event
        io.emit("tick")
        r = await fetch(url + "/metrics")
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(r.text)}
        s = io.stats()

        def value(name: str, **labels: str) -> float:
            return next(x.value for x in families[name].samples
                        if x.labels == labels and not x.name.endswith("_created"))

        assert value("fastsio_clients") == 1
        assert value("fastsio_sockets", namespace="/") == 1
        assert value("fastsio_broadcasts") == 1
        assert value("fastsio_packets_received") == s["packets_in"]
        assert value("fastsio_bytes_received") == s["bytes_in"]
        assert value("fastsio_packets_sent") == s["packets_out"]
        assert value("fastsio_bytes_sent") == s["bytes_out"]
        assert value("fastsio_recoveries", result="failed") == 0
        next(iter(io.sockets.sockets.values())).disconnect()
        await wait_for(lambda: io.stats()["clients"] == 0)
    r = await fetch(url + "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert [(x.labels, x.value) for x in families["fastsio_disconnects"].samples
            if x.name == "fastsio_disconnects_total"] == [
        ({"reason": "server namespace disconnect"}, 1.0)]
    # Nothing else moved: /metrics is a plain route, not Engine.IO.
    assert (await fetch(url + "/metrics", method="POST")).status == 404


# -- traces -------------------------------------------------------------------------------------
@pytest.fixture
def traced():
    """The trace loggers at DEBUG for one test, restored afterwards."""
    saved = {name: logging.getLogger(f"fastsio.trace.{name}").level for name in trace.LAYERS}
    for name in trace.LAYERS:
        logging.getLogger(f"fastsio.trace.{name}").setLevel(logging.DEBUG)
    yield
    for name, level in saved.items():
        logging.getLogger(f"fastsio.trace.{name}").setLevel(level)
    trace.refresh()


def test_traces_are_off_by_default(monkeypatch):
    monkeypatch.delenv("FASTSIO_TRACE", raising=False)
    io = fastsio.Server()
    assert io is not None
    trace.refresh()
    assert (trace.flags.http, trace.flags.engine, trace.flags.socket) == (False,) * 3


async def test_traces_show_each_layer(make_server, traced, caplog):
    caplog.set_level(logging.DEBUG, logger="fastsio.trace")
    io, url = await make_server()
    io.on("echo", lambda socket, value: value)
    async with sio_clients() as connect:
        client = await connect(url)  # polling, then the upgrade
        assert await client.call("echo", "traced-value", timeout=5) == "traced-value"
        io.emit("everyone", 1)
        await asyncio.sleep(0.1)
    lines = {(r.name, r.getMessage()) for r in caplog.records}
    by = {name: [m for n, m in lines if n == f"fastsio.trace.{name}"] for name in trace.LAYERS}
    assert any(" GET /socket.io/?" in m and "transport=polling" in m and "-> 200" in m
               for m in by["http"]), by["http"]
    assert any(" open over polling (EIO=4)" in m for m in by["engine"]), by["engine"]
    assert any("upgraded to websocket" in m for m in by["engine"]), by["engine"]
    assert any(" < websocket '42" in m and "traced-value" in m for m in by["engine"])
    assert any(" < EVENT / ['echo', 'traced-value']" in m for m in by["socket"]), by["socket"]
    assert any(" > '43" in m and "traced-value" in m for m in by["socket"]), by["socket"]
    assert "/ rooms=[] except=[] > '42[\"everyone\",1]'" in by["socket"], by["socket"]


def test_fastsio_trace_environment_variable_turns_them_on():
    script = textwrap.dedent("""
        import asyncio, fastsio
        from fastsio import trace
        async def main():
            io = fastsio.Server()
            port = await io.start("127.0.0.1", 0)
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            await r.readuntil(b"\\r\\n\\r\\n")
            w.close()
            await io.close()
            print(trace.flags.http, trace.flags.engine, trace.flags.socket)
        asyncio.run(main())
    """)
    env = {**os.environ, "FASTSIO_TRACE": "http,engine"}
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True", "False"]
    assert "fastsio.trace.http 127.0.0.1 GET /socket.io/?EIO=4&transport=polling -> 200" in r.stderr
    assert "fastsio.trace.engine" in r.stderr and "open over polling" in r.stderr
