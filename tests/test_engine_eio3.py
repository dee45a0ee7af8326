"""Engine.IO revision 3 (Socket.IO v2 clients) with ``allow_eio3=True``: length-prefixed polling
payloads counted in UTF-16 code units, XHR2 binary payloads and ``b64``, ``0x04``-prefixed binary
WebSocket frames, heartbeats started by the client, the handshake without ``maxPayload``, the
upgrade, ``close()``; then Socket.IO over revision 3 and the official v2 client (npm
``socket.io-client-v2``, an alias of ``socket.io-client@2``)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastsio
from fastsio._core.errors import EnginePacketError
from fastsio.engine import eio3
from tests.clients.http import RawConnection
from tests.clients.loops import wait_for
from tests.clients.polling import V3Polling
from tests.clients.server_side import EngineRecorder
from tests.clients.wire import (
    binary_payload,
    eio_target,
    eio_url,
    parse_binary_payload,
    parse_text_payload,
    request,
    text_payload,
    ws_url,
)
from tests.clients.ws import RawWebSocket, ws_receive, ws_wait_closed


async def v3_ws(
    http: aiohttp.ClientSession, base: str, sid: str | None = None, **query: str
) -> aiohttp.ClientWebSocketResponse:
    return await http.ws_connect(
        ws_url(base, sid, EIO="3", **query), timeout=aiohttp.ClientWSTimeout(ws_close=1.0)
    )


def _messages(rec: EngineRecorder, sid: str) -> list[tuple[bytes, bool]]:
    return rec.messages[sid]


# -- the codec, against a model ---------------------------------------------------------------
packets_strategy = st.lists(
    st.one_of(
        st.text(max_size=20).map(lambda s: (("4" + s).encode(), False)),
        st.binary(max_size=20).map(lambda b: (b, True)),
        st.sampled_from([(b"2", False), (b"3probe", False), (b"6", False)]),
    ),
    min_size=1,
    max_size=6,
)


@given(packets_strategy, st.booleans())
def test_payload_round_trip(packets, supports_binary):
    body, binary = eio3.encode_payload(packets, supports_binary)
    assert binary == (supports_binary and any(b for _, b in packets))
    assert eio3.decode_payload(body, binary) == packets
    # The model client reads what the server writes.
    model = parse_binary_payload(body) if binary else parse_text_payload(body.decode())
    assert model == [d if b else d.decode() for d, b in packets]


@given(packets_strategy)
def test_payload_decoder_reads_the_model_client(packets):
    model = [d if b else d.decode() for d, b in packets]
    assert eio3.decode_payload(text_payload(model)) == packets
    assert eio3.decode_payload(binary_payload(model), binary=True) == packets


@given(st.binary(max_size=40))
def test_payload_decoder_never_crashes(body):
    for binary in (False, True):
        try:
            eio3.decode_payload(body, binary)
        except EnginePacketError:
            pass


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"4hi",  # no length
        b"3:4hi1:",  # a length with nothing after it
        b"5:4hi",  # too long
        b":4hi",
        b"x:4hi",
        b"-1:4",
        "3:4\U0001d11e".encode()[:-1],  # cut inside a character
        "2:4\U0001d11e".encode(),  # the length splits a surrogate pair
        b"2:9x",  # unknown type
        b"3:b4!",  # bad base64
        b"6:b2AAAA",  # base64 that is not a message
        b"9" * 5000 + b":4",  # a length no decoder should try to read
    ],
)
def test_malformed_text_payloads(body):
    with pytest.raises(EnginePacketError):
        eio3.decode_payload(body)


@pytest.mark.parametrize(
    "body",
    [b"", b"\x02\x01\xff4", b"\x00\x01", b"\x00\x0a\xff4", b"\x00\x05\xff4hi", b"\x01\x01\xff\x02",
     b"\x00\x01\xff9", b"\x00\x02\xff4\xff", b"\x00" + b"\x09" * 400 + b"\xff4"],
)
def test_malformed_binary_payloads(body):
    with pytest.raises(EnginePacketError):
        eio3.decode_payload(body, binary=True)


def test_lengths_count_utf16_code_units():
    body, binary = eio3.encode_payload([("4é😀".encode(), False), (b"4x", False)], False)
    assert not binary
    assert body.decode() == "4:4é😀2:4x"  # 1 + 1 + 2 code units
    assert eio3.encode_payload([], False) == (b"0:", False)


# -- protocol selection -----------------------------------------------------------------------
async def test_refused_by_default(make_server):
    io, url = await make_server()
    async with aiohttp.ClientSession() as http:
        for query in ({"EIO": "3"}, {"EIO": None}, {"EIO": "2"}):
            async with http.get(eio_url(url, **query)) as r:
                assert r.status == 400
                assert orjson.loads(await r.read()) == {
                    "code": 5,
                    "message": "Unsupported protocol version",
                }
    async with await RawWebSocket.open(url) as ws:
        r = await ws.upgrade(eio_target("websocket", EIO="3"))
        assert r.status == 400
    assert io.engine.clients == {}


@pytest.mark.parametrize("eio", ["3", None])
async def test_polling_handshake(make_server, eio):
    """A missing EIO means revision 3, as in the official server."""
    io, url = await make_server(allow_eio3=True, ping_interval=0.3, ping_timeout=0.2)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await V3Polling.open(http, url, EIO=eio)
    assert p.handshake == {
        "sid": p.sid,
        "upgrades": ["websocket"],
        "pingInterval": 300,
        "pingTimeout": 200,
    }
    assert rec.sockets[p.sid].protocol == 3


async def test_v4_sessions_are_unchanged(make_server):
    io, url = await make_server(allow_eio3=True)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        async with http.get(eio_url(url)) as r:
            body = await r.text()
    assert body.startswith("0{") and "maxPayload" in body
    assert [s.protocol for s in rec.sockets.values()] == [4]


# -- polling ----------------------------------------------------------------------------------
async def test_polling_messages_both_ways(make_server):
    io, url = await make_server(allow_eio3=True)
    rec = EngineRecorder(io)  # echoes every message
    async with aiohttp.ClientSession() as http:
        p = await V3Polling.open(http, url)
        texts = ["4hello", "4héllo 😀", "4𝄞" * 3, "4"]
        await p.post(*texts)
        assert await p.packets() == texts
        assert _messages(rec, p.sid) == [(t.encode(), False) for t in texts]


async def test_polling_binary_as_xhr2_payload(make_server):
    """Without ``b64`` a response holding a binary message is a binary payload."""
    io, url = await make_server(allow_eio3=True)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await V3Polling.open(http, url)
        await p.post("4text", b"\x00\x01\xff")
        _, headers, packets = await p.get()
        assert headers["content-type"] == "application/octet-stream"
        assert packets == ["4text", b"\x00\x01\xff"]
        # Text only: a text payload again.
        rec.sockets[p.sid].send("é")
        assert await p.packets() == ["4é"]
        # The client may post a binary payload too (revision 4 refuses that content type).
        await p.post("4é😀", b"\xfe", binary=True)
        assert _messages(rec, p.sid)[-2:] == [("4é😀".encode(), False), (b"\xfe", True)]


async def test_polling_binary_as_base64_with_b64(make_server):
    io, url = await make_server(allow_eio3=True)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await V3Polling.open(http, url, b64="1")
        await p.post("4text", b"\x00\x01\xff")
        async with http.get(p.url) as r:
            assert r.headers["Content-Type"] == "text/plain; charset=UTF-8"
            assert await r.text() == "5:4text6:b4AAH/"
        assert _messages(rec, p.sid) == [(b"4text", False), (b"\x00\x01\xff", True)]


@pytest.mark.parametrize(
    "body", [b"5:4hi", b"2:9x", "2:4\U0001d11e".encode(), b"\xff\xfe"], ids=repr
)
async def test_polling_malformed_payload_is_a_parse_error(make_server, body):
    io, url = await make_server(allow_eio3=True)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await V3Polling.open(http, url)
        status, _ = await p.post_raw(body)
        assert status == 400
        assert await rec.wait_closed(p.sid) == "parse error"


async def test_polling_close_packet(make_server):
    io, url = await make_server(allow_eio3=True)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await V3Polling.open(http, url)
        pending = asyncio.ensure_future(p.packets())
        await asyncio.sleep(0.05)
        await p.post("1")
        assert await pending == ["6"]
        assert await rec.wait_closed(p.sid) == "transport close"
        other = await V3Polling.open(http, url)
        rec.sockets[other.sid].close()
        assert await other.packets() == ["1"]


# -- heartbeat --------------------------------------------------------------------------------
async def test_client_pings_server_pongs(make_server):
    io, url = await make_server(allow_eio3=True, ping_interval=0.2, ping_timeout=0.2)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await V3Polling.open(http, url)
        for _ in range(3):
            pending = asyncio.ensure_future(p.packets())
            await asyncio.sleep(0.3)  # past pingInterval: the server sent no ping
            assert not pending.done()
            await p.post("2")
            assert await pending == ["3"]
        assert rec.closed == {}


async def test_no_client_ping_is_a_ping_timeout(make_server):
    """The deadline is pingInterval + pingTimeout after the handshake or the last ping."""
    io, url = await make_server(allow_eio3=True, ping_interval=0.2, ping_timeout=0.15)
    rec = EngineRecorder(io)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        p = await V3Polling.open(http, url)
        start = loop.time()
        assert await rec.wait_closed(p.sid) == "ping timeout"
        assert loop.time() - start > 0.3
    assert io.engine.clients == {}


async def test_pong_from_a_v3_client_is_an_error(make_server):
    io, url = await make_server(allow_eio3=True)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await V3Polling.open(http, url)
        await p.post("3")
        assert await rec.wait_closed(p.sid) == "transport error"
        assert rec.closed[p.sid][1] == "invalid heartbeat direction"


# -- WebSocket --------------------------------------------------------------------------------
async def test_websocket_session(make_server):
    io, url = await make_server(allow_eio3=True, ping_interval=0.3, ping_timeout=0.2)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws = await v3_ws(http, url)
        opened = await ws_receive(ws)
        handshake = orjson.loads(opened[1:])
        assert set(handshake) == {"sid", "upgrades", "pingInterval", "pingTimeout"}
        assert handshake["upgrades"] == []
        sid = handshake["sid"]
        assert rec.sockets[sid].protocol == 3
        await ws.send_str("4héllo")
        assert await ws_receive(ws) == "4héllo"
        # Binary: the type byte 0x04 leads, both ways.
        await ws.send_bytes(b"\x04\x00\x01")
        assert await ws_receive(ws) == b"\x04\x00\x01"
        # A base64 text frame is a binary message too.
        await ws.send_str("b4AAH/")
        assert await ws_receive(ws) == b"\x04\x00\x01\xff"
        assert _messages(rec, sid) == [
            ("4héllo".encode(), False),
            (b"\x00\x01", True),
            (b"\x00\x01\xff", True),
        ]
        await ws.send_str("2")
        assert await ws_receive(ws) == "3"
        await ws.close()


async def test_websocket_b64(make_server):
    io, url = await make_server(allow_eio3=True)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws = await v3_ws(http, url, b64="1")
        await ws_receive(ws)
        await ws.send_bytes(b"\x04\xfe")
        assert await ws_receive(ws) == "b4/g=="
        assert list(rec.messages.values()) == [[(b"\xfe", True)]]
        await ws.close()


@pytest.mark.parametrize("frame", [b"", b"\x02x", "b2AA==", "b4!!"], ids=repr)
async def test_websocket_malformed_binary_is_a_parse_error(make_server, frame):
    io, url = await make_server(allow_eio3=True)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws = await v3_ws(http, url)
        sid = orjson.loads((await ws_receive(ws))[1:])["sid"]
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)
        assert await rec.wait_closed(sid) == "parse error"
        await ws_wait_closed(ws)


async def test_upgrade(make_server):
    io, url = await make_server(allow_eio3=True)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await V3Polling.open(http, url)
        ws = await v3_ws(http, url, p.sid)
        await ws.send_str("2probe")
        assert await ws_receive(ws) == "3probe"
        assert await p.packets() == ["6"]
        sock = rec.sockets[p.sid]
        sock.send(b"\x01")  # buffered on polling, flushed on the WebSocket with v3 framing
        await ws.send_str("5")
        assert await ws_receive(ws) == b"\x04\x01"
        assert sock.transport_name == "websocket"
        await ws.send_str("2")
        assert await ws_receive(ws) == "3"
        await ws.close()
        assert await rec.wait_closed(p.sid) == "transport close"


# -- close() ----------------------------------------------------------------------------------
async def test_close_ends_v3_sessions(make_server):
    io, url = await make_server(allow_eio3=True, ping_interval=5, ping_timeout=5)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await V3Polling.open(http, url)
        pending = asyncio.ensure_future(p.packets())
        await wait_for(lambda: rec.sockets[p.sid].writable)  # the GET is waiting
        ws = await v3_ws(http, url)
        await ws_receive(ws)
        await wait_for(lambda: len(rec.sockets) == 2)
        sockets = list(rec.sockets.values())
        await io.close()
        assert await pending == ["1"]
        assert await ws_wait_closed(ws) == []
    assert {reason for reason, _ in rec.closed.values()} == {"forced server close"}
    for s in sockets:
        assert not s._heartbeat.active
    assert io.engine.clients == {} and io.engine._tasks == set()


# -- Socket.IO over revision 3 ----------------------------------------------------------------
async def sio_session(http: aiohttp.ClientSession, url: str, **query: str) -> V3Polling:
    p = await V3Polling.open(http, url, **query)
    assert await p.recv() == "40"  # "/" joined by the server, answered without a payload
    return p


async def test_sio_ids_auth_and_connect_without_payload(make_server):
    io, url = await make_server(allow_eio3=True)
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    io.of("/admin").on("connection", sockets.append)
    async with aiohttp.ClientSession() as http:
        p = await sio_session(http, url)
        await p.post("40/admin?token=abc&x=1&x=2&empty=,")
        assert await p.recv() == "40/admin,"
        await wait_for(lambda: len(sockets) == 2)
        root, admin = sockets
        assert root.id == p.sid and root.handshake.auth == {}
        assert admin.id == "/admin#" + p.sid
        assert admin.handshake.auth == {"token": "abc", "x": "2", "empty": ""}
        assert admin.handshake.query["EIO"] == "3"
        # A second CONNECT to a joined namespace is a protocol violation.
        await p.post("40/admin?again=1,")
        await wait_for(lambda: io.engine.clients == {})


async def test_sio_connect_errors(make_server):
    io, url = await make_server(allow_eio3=True)

    @io.of("/data").use
    def with_data(sock):
        raise fastsio.ConnectionRefused("refused", {"code": 42})

    @io.of("/plain").use
    def plain(sock):
        raise ValueError("boom")

    async with aiohttp.ClientSession() as http:
        p = await sio_session(http, url)
        await p.post("40/data,")
        assert await p.recv() == '44/data,{"code":42}'
        await p.post("40/plain,")
        assert await p.recv() == '44/plain,"boom"'
        await p.post("40/nowhere,")
        assert await p.recv() == '44/nowhere,"Invalid namespace"'


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_sio_binary_events_and_acks(make_server, transport):
    io, url = await make_server(allow_eio3=True)

    @io.on("echo")
    def echo(sock, value):
        return [value, b"\x09"]

    async with aiohttp.ClientSession() as http:
        if transport == "polling":
            p = await sio_session(http, url)
            await p.post('451-1["echo",{"_placeholder":true,"num":0}]', b"\x01\x02")
            assert await p.recv() == (
                '462-1[[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]]'
            )
            assert await p.recv() == b"\x01\x02"
            assert await p.recv() == b"\x09"
        else:
            ws = await v3_ws(http, url)
            await ws_receive(ws)
            assert await ws_receive(ws) == "40"
            await ws.send_str('451-1["echo",{"_placeholder":true,"num":0}]')
            await ws.send_bytes(b"\x04\x01\x02")
            assert (await ws_receive(ws)).startswith("462-1[[")
            assert await ws_receive(ws) == b"\x04\x01\x02"
            assert await ws_receive(ws) == b"\x04\x09"
            await ws.close()


async def test_sio_v2_session_is_not_recovered(make_server):
    """Connection state recovery is for v4 clients: a v2 socket gets no pid, and a query that
    happens to carry one restores nothing."""
    io, url = await make_server(allow_eio3=True, connection_state_recovery=True)
    sockets: list[fastsio.Socket] = []
    io.of("/r").on("connection", sockets.append)
    async with aiohttp.ClientSession() as http:
        p = await sio_session(http, url)
        await p.post("40/r?pid=abc&offset=x,")
        assert await p.recv() == "40/r,"
    await wait_for(lambda: len(sockets) == 1)
    assert sockets[0].pid is None and not sockets[0].recovered
    assert sockets[0].id == "/r#" + p.sid


# -- the official v2 client -------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
V2_CLIENT = REPO / "node_modules" / "socket.io-client-v2" / "package.json"

V2_SCRIPT = r"""
const io = require("socket.io-client-v2");
const [url, transports] = [process.argv[2], JSON.parse(process.argv[3])];
const opts = { transports, reconnection: false, forceNew: true };
const out = {};
const done = () => { console.log(JSON.stringify(out)); process.exit(0); };
setTimeout(() => { out.timeout = true; done(); }, 8000);
const root = io(url, opts);
root.on("connect", () => {
  out.rootId = root.id;
  out.engineId = root.io.engine.id;
  root.emit("echo", "héllo 😀", Buffer.from([1, 2, 3]), (text, bin) => {
    out.echo = [text, Array.from(bin)];
    root.emit("send-me-binary");
  });
});
root.on("binary", (bin) => {
  out.binary = Array.from(bin);
  const nsp = root.io.socket("/custom", { query: "token=abc" });
  nsp.on("connect", () => {
    out.nspId = nsp.id;
    nsp.emit("whoami", (auth) => {
      out.auth = auth;
      const priv = root.io.socket("/private");
      priv.on("error", (err) => {
        out.privateError = err;
        out.upgraded = root.io.engine.transport.name;
        done();
      });
    });
  });
});
"""


@pytest.mark.parametrize(
    "transports", [["polling"], ["websocket"], ["polling", "websocket"]], ids=str
)
async def test_official_v2_client(make_server, tmp_path, transports):
    node = shutil.which("node")
    if node is None or not V2_CLIENT.is_file():
        pytest.skip("needs Node.js and `npm install` (socket.io-client-v2)")
    io, url = await make_server(allow_eio3=True, ping_interval=1, ping_timeout=1)
    seen: dict[str, Any] = {}

    @io.on("echo")
    def echo(sock, text, data):
        seen["root"] = sock.id
        return text, data

    @io.on("send-me-binary")
    def send_me_binary(sock):
        sock.emit("binary", b"\xff\x00")

    @io.of("/custom").on("whoami")
    def whoami(sock):
        seen["custom"] = sock.id
        return sock.handshake.auth

    @io.of("/private").use
    def refuse(sock):
        raise fastsio.ConnectionRefused("not authorized")

    script = tmp_path / "v2.js"
    script.write_text(V2_SCRIPT)
    proc = await asyncio.create_subprocess_exec(
        node, str(script), url, json.dumps(transports),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_PATH": str(REPO / "node_modules")},
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, stderr.decode()
    out = json.loads(stdout.decode().strip().splitlines()[-1])
    assert "timeout" not in out, (out, stderr.decode())
    assert out["rootId"] == out["engineId"] == seen["root"]
    assert out["echo"] == ["héllo 😀", [1, 2, 3]]
    assert out["binary"] == [255, 0]
    assert out["nspId"] == "/custom#" + out["engineId"] == seen["custom"]
    assert out["auth"] == {"token": "abc"}
    assert out["privateError"] == "not authorized"
    if transports == ["polling", "websocket"]:
        assert out["upgraded"] == "websocket"


async def test_raw_http_v3_handshake_bytes(make_server):
    """The exact bytes of a revision-3 handshake answer (length in characters, text type)."""
    _, url = await make_server(allow_eio3=True)
    async with await RawConnection.open(url) as conn:
        conn.write(request("GET", eio_target(EIO="3")))
        r = await conn.read_response()
    assert r.status == 200
    assert r.headers["content-type"] == "text/plain; charset=UTF-8"
    length, _, packet = r.text.partition(":")
    assert int(length) == len(packet) and packet.startswith("0{")
