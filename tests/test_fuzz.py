"""Our own fuzzer, run briefly (the harness: tests/clients/fuzz.py; ``python
tests/fuzz_long.py --minutes 10`` runs it for as long as asked, see README.md): hostile bytes
at every layer of a running server while well-behaved clients keep round-tripping acks; then
the security properties a hostile client would try to break."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import logging
import re
from typing import Any

import aiohttp
import orjson
import pytest
import socketio

import fastsio
from tests.clients.fuzz import MEMORY_SLACK, QUICK, Harness, run_fuzz
from tests.clients.loops import LOOPS, wait_for
from tests.clients.sio import RawClient
from tests.clients.wire import ws_url


@pytest.mark.long
@pytest.mark.timeout(240)
@pytest.mark.parametrize("loop", LOOPS)
def test_fuzz_a_running_server(loop: str, record_property: Any) -> None:
    with Harness(loop) as h:
        report = run_fuzz(h, QUICK)
    print(report.line())
    record_property("fuzz", report.line())
    assert h.take_problems([-1] * len(h.good)) == []
    assert report.objects == {}, report.line()
    assert report.memory <= MEMORY_SLACK, (report.line(), report.memory_sites)
    assert all(h.counts[k] >= QUICK.max_examples for k in ("http", "websocket", "polling"))


# =================================================================================================
# Security properties
# =================================================================================================
TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def bits_balanced(ids: list[str], nbytes: int) -> None:
    """Each bit of the decoded ids is set in about half of them (a stuck or biased bit of a
    broken generator shows far outside 6 standard deviations)."""
    raw = [base64.urlsafe_b64decode(i + "=" * (-len(i) % 4)) for i in ids]
    assert all(len(r) == nbytes for r in raw)
    n = len(raw)
    sigma = (n * 0.25) ** 0.5
    for bit in range(nbytes * 8):
        ones = sum((r[bit // 8] >> (bit % 8)) & 1 for r in raw)
        assert abs(ones - n / 2) < 6 * sigma, (bit, ones, n)


async def test_session_ids_are_120_bit_tokens_from_the_os_csprng(make_server, monkeypatch):
    import os

    import fastsio.engine.server as engine_server
    import fastsio.namespace as namespace
    from fastsio._core import ids as core_ids

    assert namespace.ids is engine_server.ids is core_ids  # one generator: the spy sees both
    asked: list[int] = []
    real_token = core_ids.token

    def token(n: int) -> str:
        asked.append(n)
        return real_token(n)

    drawn: list[int] = []
    real_urandom = os.urandom

    def urandom(n: int) -> bytes:
        drawn.append(n)
        return real_urandom(n)

    monkeypatch.setattr(core_ids, "token", token)
    monkeypatch.setattr(os, "urandom", urandom)
    core_ids._after_fork_in_child()  # an empty pool: every byte below is read from the OS
    io, url = await make_server(connection_state_recovery=True)
    sids: list[str] = []
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    n = 300
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            async with http.get(f"{url}/socket.io/?EIO=4&transport=polling") as r:
                sid = orjson.loads((await r.text())[1:])["sid"]
            async with http.post(f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}",
                                 data="40") as r:
                assert r.status == 200
            sids.append(sid)
        await wait_for(lambda: len(sockets) == n)
    socket_ids = [s.id for s in sockets]
    pids = [s.pid for s in sockets]
    # Every id came from the one generator, with at least 120 bits (15 bytes) asked for, and
    # its bytes from the OS CSPRNG.
    assert len(asked) == 3 * n and all(nbytes >= 15 for nbytes in asked)
    assert sum(drawn) >= sum(asked)
    for ids, length, nbytes in ((sids, 20, 15), (socket_ids, 20, 15), (pids, 22, 16)):
        assert all(len(i) == length and TOKEN.match(i) for i in ids)  # URL-safe base64
        assert len(set(ids)) == len(ids)
        bits_balanced(ids, nbytes)  # type: ignore[arg-type]
    assert not set(sids) & set(socket_ids)


async def test_a_sid_is_the_sessions_credential(make_server):
    """The trust model (as the official server's): whoever presents a polling session's sid is
    that session, whatever connection, address or cookie the request comes with. Hence ids are
    unguessable, sent only to their own client, and never logged above DEBUG."""
    io, url = await make_server()
    got: list[tuple[str, Any]] = []
    io.on("hello", lambda s, x: got.append((s.id, x)))
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    async with aiohttp.ClientSession() as owner, aiohttp.ClientSession() as other:
        async with owner.get(f"{url}/socket.io/?EIO=4&transport=polling") as r:
            sid = orjson.loads((await r.text())[1:])["sid"]
        target = f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}"
        async with owner.post(target, data="40") as r:
            assert r.status == 200
        await wait_for(lambda: sockets)
        # Another client (another TCP connection, no cookie) with the sid: the same session.
        async with other.post(target, data='42["hello","from elsewhere"]',
                              headers={"X-Forwarded-For": "203.0.113.9"}) as r:
            assert r.status == 200
        await wait_for(lambda: got)
        assert got == [(sockets[0].id, "from elsewhere")]
        # Without the sid, nothing of the session is reachable.
        wrong = sid[:-1] + ("y" if sid.endswith("x") else "x")  # always another sid
        async with other.get(f"{url}/socket.io/?EIO=4&transport=polling&sid={wrong}") as r:
            assert r.status == 400 and orjson.loads(await r.read())["code"] == 1


async def lifecycle_records(make_server: Any, caplog: Any) -> tuple[
    list[logging.LogRecord], set[str], set[str]
]:
    """A full lifecycle at DEBUG: handshakes on both transports, upgrade, namespaces, events,
    acks, bad packets and errors, ping timeout, a dropped connection (recovery), a failed
    handshake, server close. Returns the records, the credentials (Engine.IO session ids and
    recovery pids) and the socket ids seen."""
    caplog.set_level(logging.DEBUG)
    io, url = await make_server(connection_state_recovery=True, ping_interval=0.2,
                                ping_timeout=0.2, allow_eio3=True)
    admin = io.of("/admin")
    ids: set[str] = set()
    socket_ids: set[str] = set()

    @io.on("connection")
    def on_connection(socket):
        ids.update(x for x in (socket.pid, socket.client.conn.sid) if x)
        socket_ids.add(socket.id)

    admin.on("connection", on_connection)
    io.on("echo", lambda s, x: x)

    @io.on("boom")
    def boom(socket):
        raise RuntimeError("handler failed")

    async with aiohttp.ClientSession() as http:
        for transports in (["websocket"], ["polling"], ["polling", "websocket"]):
            sio = socketio.AsyncClient(reconnection=False, handle_sigint=False, http_session=http)
            await sio.connect(url, transports=transports, namespaces=["/", "/admin"])
            assert await sio.call("echo", b"\x01", timeout=5) == b"\x01"
            await sio.emit("boom")
            await sio.disconnect()
        # Bad input, at every layer.
        async with http.ws_connect(ws_url(url)) as ws:
            await ws.receive()
            await ws.send_str("40")
            await ws.receive()
            await ws.send_str('42["disconnect"]')  # reserved: closes the connection
            await ws.receive()
        async with http.ws_connect(ws_url(url)) as ws:
            await ws.receive()
            await ws.send_str("40")
            await ws.receive()
            await ws.send_str("4abc")  # undecodable: error listeners, then forced close
            await ws.receive()
        async with http.get(f"{url}/socket.io/?EIO=4&transport=polling") as r:
            sid = orjson.loads((await r.text())[1:])["sid"]
            ids.add(sid)
        async with http.post(f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}",
                             data="\x1e\x1e") as r:
            assert r.status == 400
        # A session that stops answering: ping timeout.
        async with http.ws_connect(ws_url(url)) as ws:
            await ws.receive()
            await ws.send_str("40")
            await ws.receive()
            before = len(io.sockets.sockets)
            await wait_for(lambda: len(io.sockets.sockets) < before, 3)
        # A connection that drops (the session is persisted for recovery).
        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False, http_session=http)
        await sio.connect(url, transports=["websocket"])
        recovering = sio.get_sid()
        await wait_for(lambda: len(io.sockets.sockets) == 1)
        only = next(iter(io.sockets.sockets.values()))
        only.client.conn.transport.abort()  # the connection drops: recoverable
        await wait_for(lambda: not io.sockets.sockets)
        await sio.disconnect()
        assert recovering is not None
    await io.close(timeout=1)
    assert len(ids) >= 10 and len(socket_ids) >= 5
    return list(caplog.records), ids, socket_ids


def logged(records: list[logging.LogRecord], ids: set[str]) -> list[tuple[str, str, str]]:
    return [
        (r.name, r.levelname, r.getMessage())
        for r in records
        if r.levelno >= logging.INFO and any(i in r.getMessage() for i in ids)
    ]


async def test_credentials_never_logged_at_info_or_above(make_server, caplog):
    """Session ids and recovery pids (what lets a client act as a session) never appear in a
    record at INFO or above; at DEBUG they may."""
    records, credentials, _ = await lifecycle_records(make_server, caplog)
    assert logged(records, credentials) == []


async def test_socket_ids_never_logged_at_info_or_above(make_server, caplog):
    records, _, socket_ids = await lifecycle_records(make_server, caplog)
    assert logged(records, socket_ids) == []


async def test_sid_generator_errors_do_not_log_the_id(make_server, caplog):
    taken: list[str] = []
    _io, url = await make_server(sid_generator=lambda req: taken[0] if taken else "fixed-sid-1")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/socket.io/?EIO=4&transport=polling") as r:
            assert r.status == 200
        taken.append("fixed-sid-1")  # already used: the next handshake is refused
        async with http.get(f"{url}/socket.io/?EIO=4&transport=polling") as r:
            assert r.status == 400
    assert any("sid_generator" in r.getMessage() for r in caplog.records)
    assert not any("fixed-sid-1" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("event", ["connect", "connect_error", "disconnect", "disconnecting",
                                   "newListener", "removeListener"])
async def test_reserved_event_names_from_a_client_never_reach_handlers(make_server, event):
    """The packet is refused (the connection closes, as the official parser refuses it): no
    handler ever runs with what the client sent, in any namespace, with or without an ack id or
    attachments."""
    io, url = await make_server()
    called: list[tuple[Any, ...]] = []
    for nsp in (io, io.of("/admin")):
        nsp.on(event, lambda *a: called.append(a))
    marker = "from-client"
    for packet in (f'42["{event}","{marker}"]', f'421["{event}","{marker}"]',
                   f'451-["{event}","{marker}",{{"_placeholder":true,"num":0}}]',
                   f'42/admin,["{event}","{marker}"]'):
        raw = await RawClient.open(url)
        await raw.connect()
        if packet.startswith("42/admin,"):
            await raw.send("40/admin,")
            assert (await raw.recv()).startswith("40/admin,")
        await raw.send(packet)
        if "placeholder" in packet:
            with contextlib.suppress(Exception):
                await raw.send(b"\x00")
        assert await raw.closed(), packet
        await raw.close()
    await asyncio.sleep(0.05)
    assert not [a for a in called if marker in a], called


async def test_prototype_like_names_everywhere_are_plain_data(make_server):
    """``__proto__``, ``constructor`` and dunders in the query, the auth payload, event names,
    keys, and namespace names: stored and delivered as given, nothing else touched."""
    io, url = await make_server()
    got: list[tuple[Any, ...]] = []
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    io.on("__proto__", lambda s, *a: got.append(a) or a)
    io.on("__class__", lambda s, *a: got.append(a) or a)
    sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
    await sio.connect(url + "?__proto__=x&constructor=y&__dict__=z", transports=["websocket"],
                      auth={"__proto__": {"admin": True}, "__class__": "str"})
    try:
        await wait_for(lambda: sockets)
        s = sockets[0]
        assert s.handshake.query["__proto__"] == "x" and s.handshake.query["__dict__"] == "z"
        assert s.handshake.auth == {"__proto__": {"admin": True}, "__class__": "str"}
        assert type(s).__name__ == "Socket" and not hasattr(s, "admin")
        payload = {"__proto__": {"polluted": 1}, "__init__": [1], "constructor": {"prototype": 2}}
        assert await sio.call("__proto__", payload, timeout=5) == payload
        assert await sio.call("__class__", 1, timeout=5) == 1
        assert got == [(payload,), (1,)]
        assert {}.get("polluted") is None and not hasattr(object, "polluted")
    finally:
        await sio.disconnect()
    # A namespace named like a dunder is just a name (refused: it does not exist).
    raw = socketio.AsyncClient(reconnection=False, handle_sigint=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await raw.connect(url, namespaces=["/__proto__"], transports=["websocket"],
                          wait_timeout=2)
    await raw.disconnect()
    assert "/__proto__" not in io._nsps


async def test_cookie_and_cors_are_off_unless_asked(make_server):
    _io, url = await make_server()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/socket.io/?EIO=4&transport=polling",
                            headers={"Origin": "https://evil.example"}) as r:
            assert r.status == 200
            names = {k.lower() for k in r.headers}
    assert "set-cookie" not in names
    assert not any(n.startswith("access-control-") for n in names)


async def test_cookie_flags_when_asked(make_server):
    _io, url = await make_server(cookie=True)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/socket.io/?EIO=4&transport=polling") as r:
            cookie = r.headers["Set-Cookie"]
            sid = orjson.loads((await r.text())[1:])["sid"]
    parts = [p.strip() for p in cookie.split(";")]
    assert parts[0] == f"io={sid}"
    assert "HttpOnly" in parts and "SameSite=Lax" in parts and "Path=/" in parts


def test_the_harness_reports_problems() -> None:
    """The fuzz harness fails on an exception reaching the loop, on an error log record and on
    a good client's error (so that a quiet run means something)."""
    with Harness("asyncio") as h:
        assert h._loop is not None

        async def escape() -> None:
            async def bad() -> None:
                raise RuntimeError("escaped")

            task = asyncio.ensure_future(bad())
            await asyncio.sleep(0.01)
            del task
            gc.collect()

        h.run(escape())
        logging.getLogger("fastsio.test").error("an error record")
        assert any("escaped" in e for e in h.loop_errors), h.loop_errors
        assert any("an error record" in e for e in h.recorder.bad)
        h.loop_errors.clear()
        h.recorder.bad.clear()

