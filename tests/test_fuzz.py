"""Our own fuzzer: hostile bytes at every layer of a running server while well-behaved clients
keep round-tripping acks; then the security properties a hostile client would try to break.

The fuzzer (hypothesis) sends, each case on a connection of its own:

- HTTP requests as raw bytes over TCP: random, built from hostile parts, or mutated from valid
  requests (polling handshake, GET/POST with a sid, upgrade, preflight, the client bundle, ...);
- WebSocket frames after a real upgrade (direct, or from a polling session): valid and invalid
  frames (opcodes, RSV bits, masks, fragments, lying lengths), carrying Engine.IO packets and
  Socket.IO packets with binary attachments, on Engine.IO revisions 4 and 3;
- polling bodies: Engine.IO payloads of such packets, in both revisions' formats, mutated.

What must hold: the server never dies and no exception reaches the loop's exception handler or
a log record at ERROR (the known picows parser message excepted, see ALLOWED_ERRORS); every HTTP
request is answered (never a 5xx) or its connection closed; every WebSocket or polling session
either keeps answering (a probe event is acknowledged after the hostile input) or is closed by
the server, at once or by its own timeouts; the well-behaved clients (python-socketio over
WebSocket and polling, text and binary) see no error and keep getting answers; once the cases
are over, nothing of theirs is left in the server (not one per-connection object; the Python
memory allocated from fastsio's code back within a bound, see MEMORY_SLACK). A broken
invariant that a case sees itself fails that case, so hypothesis shrinks it to a minimal input.

The server runs on its own loop (asyncio and uvloop) in a background thread; hypothesis drives
the cases from the test's thread. ``python tests/fuzz_long.py --minutes 10`` runs the same
fuzzers for as long as asked (see README.md).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import logging
import os
import re
import socket as pysocket
import struct
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastsio
from fastsio.static import CLIENT_FILES
from tests.conftest import LOOPS, wait_for
from tests.test_slowloris import server_objects

# -- the server under fuzz ----------------------------------------------------------------------
FUZZ_SERVER: dict[str, Any] = {
    # Short timeouts: every session a case leaves behind ends within a few seconds.
    "ping_interval": 0.5,
    "ping_timeout": 2.0,
    "connect_timeout": 1.0,
    "upgrade_timeout": 1.0,
    "attachment_timeout": 0.5,
    "http_request_timeout": 0.5,
    "http_keep_alive_timeout": 0.5,
    "max_http_buffer_size": 64 * 1024,
    "allow_eio3": True,
    "connection_state_recovery": {"max_disconnection_duration": 1.0},
}
# How long a session a case left open may take to be closed by the server: its heartbeat
# (ping_interval + ping_timeout), or an upgrade, connect or attachment timeout, plus slack.
REAP_AFTER = 0.5 + 2.0 + 1.0 + 2.0
# A WebSocket case waits this long for its probe's answer before leaving the connection to the
# reaper (the answer normally takes milliseconds).
PROBE_WAIT = 0.5
# An HTTP case must be answered or closed within this (the request timeout is 0.5 s).
HTTP_WAIT = 2.5
# picows logs a client's malformed frame at ERROR on our logger (a message, no traceback).
ALLOWED_ERRORS = (("fastsio.engine.ws", "WS parser error"),)

QUICK = settings(
    max_examples=int(os.environ.get("FASTSIO_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


# -- hostile inputs -----------------------------------------------------------------------------
def _key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


FAKE_SID = "AAAAAAAAAAAAAAAAAAAA"
VALID_HTTP: list[bytes] = [
    b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /socket.io/?EIO=4&transport=polling&t=Nx1 HTTP/1.1\r\nHost: x\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\nOrigin: http://evil.example\r\n"
    b"Cookie: io=" + FAKE_SID.encode() + b"\r\n\r\n",
    b"GET /socket.io/?EIO=4&transport=polling&sid=" + FAKE_SID.encode() + b" HTTP/1.1\r\n"
    b"Host: x\r\n\r\n",
    b"POST /socket.io/?EIO=4&transport=polling&sid=" + FAKE_SID.encode() + b" HTTP/1.1\r\n"
    b"Host: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\n\r\n40",
    b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n2\r\n40\r\n0\r\n\r\n",
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " + _key().encode() + b"\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n",
    b"GET /socket.io/?EIO=4&transport=websocket&sid=" + FAKE_SID.encode() + b" HTTP/1.1\r\n"
    b"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
    + _key().encode() + b"\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"OPTIONS /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
    b"Origin: http://a.example\r\nAccess-Control-Request-Method: POST\r\n"
    b"Access-Control-Request-Headers: content-type\r\n\r\n",
    b"GET /socket.io/socket.io.js HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br;q=0.5, gzip, *;q=0"
    b"\r\nIf-None-Match: W/\"abc\", \"def\"\r\n\r\n",
    b"HEAD /socket.io/socket.io.min.js.map HTTP/1.0\r\n\r\n",
    b"GET /socket.io/?EIO=3&transport=polling&b64=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /socket.io/?EIO=3&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: " + _key().encode() + b"\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n",
    b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: x\r\n"
    b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    b"GET /%2e%2e/%00?%ff=%zz&EIO=4&EIO=3&transport=polling HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n",
]
INTERESTING = [
    b"\r\n", b"\r\n\r\n", b"\x00", b"\xff", b"%", b"?", b"&", b"=", b":", b" ", b"\t",
    b"Content-Length: 99999999999999999999\r\n", b"Content-Length: -1\r\n",
    b"Content-Length: 10\r\n", b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked, gzip\r\n", b"Connection: Upgrade\r\n", b"Upgrade: websocket\r\n",
    b"Expect: 100-continue\r\n", b"X: " + b"a" * 20_000 + b"\r\n", b"HTTP/1.0", b"HTTP/2.0",
    b"&sid=" + FAKE_SID.encode(), b"&transport=websocket", b"&EIO=3", b"&b64=1",
    b"ffffffff\r\n", b"0\r\n\r\n",
]
VALID_SIO = [
    "40", "40/admin,", '40{"token":"t"}', '40/admin,{"pid":"x","offset":"y"}', "40/dyn-1,",
    "40/nowhere,", "41", "41/admin,", '42["echo",1]', '421["echo",{"a":[1,2,null]}]',
    '42/admin,7["echo","x"]', '451-["echo",{"_placeholder":true,"num":0}]',
    '452-3["echo",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]',
    '43[1]', '461-5[{"_placeholder":true,"num":0}]', '44{"message":"x"}',
    '42["disconnect","fake"]', '42["connect"]', '42["__proto__",{"__proto__":{"x":1}}]',
    "42" + "[" * 100 + "]" * 100, '42["echo",' + ",".join(["1"] * 300) + "]",
    "4", "49", '42{"a":1}', "42[]", '421-["x"]', "40/" + "n" * 300 + ",",
]
VALID_EIO = ["2probe", "3probe", "5", "6", "1", "2", "3", "0", "4hello", "7", "", "b4AAEC"]


@st.composite
def mutated(draw: st.DrawFn, templates: list[bytes]) -> bytes:
    """A valid input with a few random byte-level mutations."""
    data = bytearray(draw(st.sampled_from(templates)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "truncate", "splice"]))
        if not data:
            data += draw(st.binary(min_size=1, max_size=8))
            continue
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 16))]
        elif op == "dup":
            data[i:i] = data[i : i + draw(st.integers(1, 64))] * draw(st.integers(1, 4))
        elif op == "truncate":
            del data[i:]
        else:
            data[i:i] = draw(st.sampled_from(INTERESTING))
    return bytes(data)


@st.composite
def built_http(draw: st.DrawFn) -> bytes:
    """A request assembled from hostile parts."""
    method = draw(st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "CONNECT",
                                   "PRI", "get", "G ET", ""]))
    path = draw(st.sampled_from(["/socket.io/", "/socket.io", "/socket.io/x/", "/", "*",
                                 "/socket.io/socket.io.js", "http://h/socket.io/", ""]))
    params = draw(st.lists(st.tuples(
        st.sampled_from(["EIO", "transport", "sid", "b64", "t", "j", "__proto__", ""]),
        st.sampled_from(["4", "3", "5", "polling", "websocket", FAKE_SID, "", "1", "%00",
                         "x" * 300]),
    ), max_size=6))
    query = "&".join(f"{k}={v}" for k, v in params)
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/0.9", "HTTP/9.9", ""]))
    headers = draw(st.lists(st.tuples(
        st.sampled_from(["Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade",
                         "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Content-Type", "Origin",
                         "Accept-Encoding", "Cookie", "Expect", "If-None-Match",
                         "Access-Control-Request-Method", "X-\x00", ""]),
        st.one_of(
            st.sampled_from(["", "0", "5", "-5", "1" * 30, "chunked", "Upgrade", "websocket",
                             "keep-alive, Upgrade", _key(), "13", "8",
                             "application/octet-stream", "text/plain", "*", "100-continue"]),
            st.text(max_size=40),
        ),
    ), max_size=10))
    head = f"{method} {path}?{query} {version}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers
    )
    body = draw(st.binary(max_size=200))
    return head.encode("utf-8", "surrogatepass") + b"\r\n" + body


http_inputs = st.one_of(
    st.binary(max_size=2000), mutated(VALID_HTTP), mutated(VALID_HTTP), built_http()
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["a", "__proto__", "_placeholder", "num", "constructor"])
                      | st.text(max_size=8), children, max_size=4)
    | st.fixed_dictionaries({"_placeholder": st.booleans() | st.just(1),
                             "num": st.integers(-2, 12) | st.text(max_size=2)}),
    max_leaves=12,
)


@st.composite
def sio_events(draw: st.DrawFn) -> tuple[str, list[bytes]]:
    """A well-formed EVENT or ACK to a namespace that exists, binary attachments included."""
    binary = draw(st.lists(st.binary(max_size=64), max_size=3))
    args: list[Any] = draw(st.lists(json_values, max_size=3))
    for i, _ in enumerate(binary):
        args.insert(draw(st.integers(0, len(args))), {"_placeholder": True, "num": i})
    ack = draw(st.none() | st.integers(0, 10_000))
    nsp = ""  # the namespace every case joins
    is_event = draw(st.integers(0, 3)) > 0
    data = ["echo", *args] if is_event else args
    ptype = ("5" if binary else "2") if is_event else ("6" if binary else "3")
    text = (ptype + (f"{len(binary)}-" if binary else "") + nsp
            + ("" if ack is None else str(ack)) + orjson.dumps(data).decode())
    return text, binary


@st.composite
def sio_any(draw: st.DrawFn) -> tuple[str, list[bytes]]:
    """A Socket.IO packet as its text part and its binary attachments, made up from parts."""
    ptype = draw(st.sampled_from("0123456") | st.text(max_size=1))
    n = draw(st.none() | st.integers(0, 12))
    nsp = draw(st.sampled_from(["", "/admin,", "/dyn-2,", "/nowhere,", "/,", "admin,", "/a/b,"]))
    ack = draw(st.none() | st.integers(0, 2**60) | st.just(-1))
    if ptype in ("2", "3", "5", "6"):
        first = draw(st.sampled_from(["echo", "disconnect", "connect", "__proto__", "x"])
                     | st.integers(0, 3) | json_values)
        data: Any = [first, *draw(st.lists(json_values, max_size=4))]
        if ptype in ("3", "6"):
            data = data[1:]
    else:
        data = draw(st.none() | json_values)
    text = ptype + (f"{n}-" if n is not None else "") + nsp + (str(ack) if ack is not None else "")
    if data is not None:
        text += orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode()
    count = draw(st.integers(0, (n or 0) + 1))
    return text, [draw(st.binary(max_size=64)) for _ in range(count)]


@st.composite
def sio_mutated(draw: st.DrawFn) -> tuple[str, list[bytes]]:
    return draw(mutated([p.encode() for p in VALID_SIO])).decode("utf-8", "replace"), []


# Mostly well-formed (so that cases get past the first check), the rest hostile.
sio_packets = st.one_of(sio_events(), sio_events(), sio_events(), sio_events(), sio_any(),
                        sio_mutated())
# Engine.IO packets a client may send outside an upgrade without being closed for them.
HARMLESS_EIO = ["3", "6", "5", "4"]


# A WebSocket message: (opcode, payload, fin, rsv, masked, lie) or raw bytes.
Frame = tuple[int, bytes, bool, int, bool, int] | bytes


@st.composite
def ws_messages(draw: st.DrawFn, eio3: bool) -> list[Frame]:
    out: list[Frame] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 39))
        if kind == 0:
            out.append(draw(st.binary(max_size=64)))  # raw bytes, not a frame
            continue
        if kind <= 27:  # a Socket.IO packet in an Engine.IO message, and its attachments
            text, attachments = draw(sio_packets)
            payloads = [(1, ("4" + text).encode("utf-8", "surrogatepass"))]
            for blob in attachments:
                payloads.append((2, b"\x04" + blob if eio3 else blob))
        elif kind <= 31:
            payloads = [(1, draw(st.sampled_from(HARMLESS_EIO)).encode())]
        elif kind <= 33:
            payloads = [(1, draw(st.sampled_from(VALID_EIO)).encode())]
        elif kind <= 35:
            payloads = [(2, draw(st.binary(max_size=128)))]
        else:
            opcode = draw(st.sampled_from([0, 1, 2, 3, 7, 8, 9, 10, 11, 15]))
            payloads = [(opcode, draw(st.binary(max_size=130)))]
        bad = kind >= 36
        for op, payload in payloads:
            out.append((
                op,
                payload,
                draw(st.booleans()) if bad else True,
                draw(st.integers(0, 7)) if bad and draw(st.booleans()) else 0,
                not (bad and draw(st.integers(0, 7)) == 0),
                draw(st.sampled_from([0, 0, 0, 1, -1, 200, 70000, 2**40])) if bad else 0,
            ))
    return out


def frame_bytes(frame: Frame) -> bytes:
    if isinstance(frame, bytes):
        return frame
    opcode, payload, fin, rsv, masked, lie = frame
    n = len(payload) + lie if lie > 0 else len(payload)
    head = bytearray([(0x80 if fin else 0) | (rsv << 4) | (opcode & 0x0F)])
    mask_bit = 0x80 if masked else 0
    if n < 126 and lie >= 0:
        head.append(mask_bit | n)
    elif n < 65536:
        head.append(mask_bit | 126)
        head += struct.pack("!H", n)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", n)
    if masked:
        mask = os.urandom(4)
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    if lie < 0:
        payload = payload[:lie]
    return bytes(head) + payload


def js_length(text: str) -> int:
    """``text.length`` in JavaScript (UTF-16 code units): revision 3's payload lengths."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@st.composite
def polling_bodies(draw: st.DrawFn, eio3: bool) -> list[tuple[bytes, str | None]]:
    """POST bodies with their Content-Type."""
    bodies = []
    for _ in range(draw(st.integers(1, 2))):
        packets: list[str] = []
        for _ in range(draw(st.integers(1, 4))):
            kind = draw(st.integers(0, 19))
            if kind <= 14:
                text, attachments = draw(sio_packets)
                packets.append("4" + text)
                packets += ["b" + ("4" if eio3 else "") + base64.b64encode(a).decode()
                            for a in attachments]
            elif kind <= 16:
                packets.append(draw(st.sampled_from(HARMLESS_EIO)))
            elif kind <= 18:
                packets.append(draw(st.sampled_from(VALID_EIO)))
            else:
                packets.append(draw(st.text(max_size=20)))
        if eio3:
            body = "".join(f"{js_length(p)}:{p}" for p in packets).encode("utf-8", "surrogatepass")
        else:
            body = "\x1e".join(packets).encode("utf-8", "surrogatepass")
        if draw(st.integers(0, 9)) == 0:
            body = draw(mutated([body or b"4"]))
        ctype = draw(st.sampled_from([
            "text/plain;charset=UTF-8", "text/plain;charset=UTF-8", "text/plain;charset=UTF-8",
            None, "text/html", "application/octet-stream",
        ]))
        bodies.append((body, ctype))
    return bodies


# -- the harness --------------------------------------------------------------------------------
class GoodClient:
    """A python-socketio client that calls ``echo`` again and again and checks every answer."""

    def __init__(self, name: str, transports: list[str], binary: bool) -> None:
        self.name = name
        self.transports = transports
        self.binary = binary
        self.client = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        self.ok = 0
        self.worst = 0.0
        self.errors: list[str] = []
        self.stopping = False
        self.task: asyncio.Task[None] | None = None

    async def start(self, url: str) -> None:
        self.client.on("disconnect", self._on_disconnect)
        await self.client.connect(url, transports=self.transports, wait_timeout=5)
        self.task = asyncio.ensure_future(self._run())

    def _on_disconnect(self, *args: Any) -> None:
        if not self.stopping:
            self.errors.append(f"{self.name}: disconnected {args}")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        i = 0
        while not self.stopping:
            i += 1
            payload: Any = (b"\x00\xff" + str(i).encode()) if self.binary else {"n": i, "s": "é✓"}
            start = loop.time()
            try:
                got = await self.client.call("echo", payload, timeout=5)
            except Exception as exc:
                if not self.stopping:
                    self.errors.append(f"{self.name}: {exc!r}")
                return
            if got != payload:
                self.errors.append(f"{self.name}: sent {payload!r}, got {got!r}")
            self.ok += 1
            self.worst = max(self.worst, loop.time() - start)
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, 6)
        await self.client.disconnect()


class Recorder(logging.Handler):
    """Keeps the records of fastsio's loggers at ERROR and above, and any with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is None and record.levelno < logging.ERROR:
            return
        if record.exc_info is None and any(
            record.name == name and record.getMessage().startswith(prefix)
            for name, prefix in ALLOWED_ERRORS
        ):
            return
        self.bad.append(f"{record.name} {record.levelname}: {record.getMessage()} "
                        f"{record.exc_text or ''}")


@dataclass
class Harness:
    """The server on a loop of its own (``loop_name``) in a background thread, the
    well-behaved clients on that loop, and the cases, submitted from the caller's thread."""

    loop_name: str
    options: dict[str, Any] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    loop_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.io: fastsio.Server | None = None
        self.url = ""
        self.good: list[GoodClient] = []
        self.reapers: set[asyncio.Task[None]] = set()
        self.recorder = Recorder()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="fuzz-server", daemon=True)
        self._seq = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> Harness:
        # Our recorder only: a capturing handler (pytest's) would keep every record, and a
        # record's arguments (an exception, its traceback, its frames) keep connections alive.
        logger = logging.getLogger("fastsio")
        self._propagate = logger.propagate
        logger.propagate = False
        logger.addHandler(self.recorder)
        self._thread.start()
        if not self._ready.wait(30) or self._startup_error is not None:
            raise RuntimeError(f"fuzz server did not start: {self._startup_error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._loop is not None and self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)
        finally:
            logger = logging.getLogger("fastsio")
            logger.removeHandler(self.recorder)
            logger.propagate = self._propagate

    def _main(self) -> None:
        if self.loop_name == "uvloop":
            import uvloop

            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        self._loop = loop
        loop.set_exception_handler(self._on_loop_error)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        self.loop_errors.append(f"{context.get('message')}: {exc!r}")

    async def _serve(self) -> None:
        io = fastsio.Server(**{**FUZZ_SERVER, **self.options})
        self.io = io
        io.on("echo", lambda socket, *args: args)
        io.of("/admin").on("echo", lambda socket, *args: args)
        io.of(re.compile(r"^/dyn-[0-3]$")).on("echo", lambda socket, *args: args)
        port = await io.start("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{port}"
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        for c in self.good:
            await c.stop()
        for task in list(self.reapers):
            task.cancel()
        await io.close()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @staticmethod
    def fail(message: str) -> None:
        """A broken invariant found by the case itself: hypothesis shrinks it."""
        raise AssertionError(message)

    def take_problems(self, before: list[int]) -> list[str]:
        """What went wrong outside the cases since ``before`` (the good clients' progress
        then): exceptions that reached the loop, error records, connections the server left
        open, good clients' errors or stalls. Cleared once taken."""
        problems = [*self.loop_errors, *self.recorder.bad, *self.failures, *self.good_errors()]
        self.loop_errors.clear()
        self.recorder.bad.clear()
        self.failures.clear()
        for c in self.good:
            c.errors.clear()
        after = self.good_progress()
        for c, b, a in zip(self.good, before, after, strict=True):
            if a <= b:
                problems.append(f"good client {c.name} got no answer meanwhile")
        return problems

    def case(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run one case; an exception or an error record it caused fails it."""
        errors, bad = len(self.loop_errors), len(self.recorder.bad)
        self.run(coro)
        new = self.loop_errors[errors:] + self.recorder.bad[bad:]
        if new:
            del self.loop_errors[errors:], self.recorder.bad[bad:]
            raise AssertionError(f"during the case: {new}")

    def token(self) -> str:
        self._seq += 1
        return f"probe-{self._seq}"

    # -- well-behaved clients ---------------------------------------------------------------------
    async def start_good_clients(self) -> None:
        self.good = [
            GoodClient("websocket", ["websocket"], False),
            GoodClient("polling", ["polling"], False),
            GoodClient("upgraded+binary", ["polling", "websocket"], True),
        ]
        for c in self.good:
            await c.start(self.url)

    async def stop_good_clients(self) -> None:
        for c in self.good:
            await c.stop()

    def good_progress(self) -> list[int]:
        return [c.ok for c in self.good]

    def good_errors(self) -> list[str]:
        return [e for c in self.good for e in c.errors]

    # -- warm-up and settling ---------------------------------------------------------------------
    async def warm_up(self) -> None:
        """What is cached on first use (the client bundle in every encoding, the dynamic
        namespaces' children) is made before memory is measured."""
        async with aiohttp.ClientSession(auto_decompress=False) as http:
            for name in CLIENT_FILES:
                for coding in ("gzip", "deflate", "br", "identity"):
                    async with http.get(f"{self.url}/socket.io/{name}",
                                        headers={"Accept-Encoding": coding}) as r:
                        await r.read()
        for nsp in ["/", "/admin", "/dyn-0", "/dyn-1", "/dyn-2", "/dyn-3"]:
            sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
            await sio.connect(self.url, namespaces=[nsp], transports=["websocket"])
            await sio.disconnect()

    async def settle(self, sessions: int = 0) -> None:
        """Wait until only ``sessions`` Engine.IO sessions are left, then past every deadline
        still armed (heartbeat, HTTP timers, recovery sessions)."""
        assert self.io is not None
        engine = self.io.engine
        await wait_for(lambda: len(engine.clients) <= sessions and not engine._lingering, 15)
        await asyncio.sleep(max(FUZZ_SERVER["ping_interval"], FUZZ_SERVER["ping_timeout"]) + 0.3)
        await wait_for(lambda: all(n.adapter.session_count == 0
                                   for n in self.io._nsps.values()), 5)  # type: ignore[union-attr]

    async def wait_reaped(self) -> None:
        if self.reapers:
            await asyncio.wait(list(self.reapers), timeout=REAP_AFTER + 5)

    # -- connections -------------------------------------------------------------------------
    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.url.removeprefix("http://").split(":")
        return await asyncio.open_connection(host, int(port))

    @staticmethod
    def _end(writer: asyncio.StreamWriter, how: str) -> None:
        if how == "rst":
            sock = writer.get_extra_info("socket")  # None once closed (uvloop)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()

    def _reap(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, what: str) -> None:
        """The server must close this connection by itself (timeouts, heartbeat)."""

        async def reap() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + REAP_AFTER
            try:
                while True:
                    chunk = await asyncio.wait_for(reader.read(65536), deadline - loop.time())
                    if not chunk:
                        self.outcomes[f"{what} closed later"] += 1
                        return
            except asyncio.TimeoutError:
                self.failures.append(f"{what}: connection still open {REAP_AFTER} s after "
                                     "the case")
            except (ConnectionError, OSError):
                self.outcomes[f"{what} closed later"] += 1
            finally:
                writer.transport.abort()

        task = asyncio.ensure_future(reap())
        self.reapers.add(task)
        task.add_done_callback(self.reapers.discard)

    # -- HTTP --------------------------------------------------------------------------------
    async def http_case(self, data: bytes, end: str) -> None:
        self.counts["http"] += 1
        reader, writer = await self._open()
        try:
            writer.write(data)
            if end == "fin":
                writer.write_eof()
            head = await read_head(reader, HTTP_WAIT)
        except (ConnectionError, OSError):
            self.outcomes["http reset"] += 1
            writer.transport.abort()
            return
        if head is None:
            self.fail(f"http: neither answered nor closed in {HTTP_WAIT} s: {data[:300]!r}")
        elif head == b"":
            self.outcomes["http closed"] += 1
        else:
            m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
            if m is None:
                self.fail(f"http: not an HTTP response {head[:100]!r} to {data[:300]!r}")
            else:
                status = int(m.group(1))
                self.outcomes[f"http {status}"] += 1
                if status >= 500:
                    self.fail(f"http: {status} for {data[:300]!r}")
        self._end(writer, end)

    # -- WebSocket -----------------------------------------------------------------------------
    async def ws_case(self, eio3: bool, via_polling: bool, join: bool, messages: list[Frame],
                      end: str) -> None:
        self.counts["websocket"] += 1
        eio = "3" if eio3 else "4"
        poll: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        sid = None
        if via_polling:
            poll = await self._open()
            poll[1].write(http_request("GET", f"/socket.io/?EIO={eio}&transport=polling&b64=1"))
            status, body = await read_response(poll[0])
            assert status == 200, (status, body)
            sid = re.search(rb'"sid":"([^"]+)"', body).group(1).decode()  # type: ignore[union-attr]
        reader, writer = await self._open()
        target = f"/socket.io/?EIO={eio}&transport=websocket" + (f"&sid={sid}" if sid else "")
        writer.write(http_request("GET", target, {
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": _key(),
            "Sec-WebSocket-Version": "13"}))
        try:
            head = await read_head(reader, 5)
            assert head is not None and head.startswith(b"HTTP/1.1 101 "), head
            frames = FrameReader(reader)
            if via_polling:
                writer.write(client_frame(1, b"2probe"))
                writer.write(client_frame(1, b"5"))
                if not eio3 and join:
                    writer.write(client_frame(1, b"40"))
            else:
                first = await frames.text(5)
                assert first is not None and first.startswith("0{"), first
                if not eio3 and join:
                    writer.write(client_frame(1, b"40"))
                    reply = await frames.text(5)
                    assert reply is not None and reply.startswith("40{"), reply
            for m in messages:
                writer.write(frame_bytes(m))
            token = self.token()
            joined = eio3 or join
            if joined:
                probe, answer = f'42999["echo","{token}"]', f'43999["{token}"]'
            else:
                probe, answer = "40", "40{"
            writer.write(client_frame(1, probe.encode()))
            outcome = await frames.wait_for_text(lambda t: t.startswith(answer), PROBE_WAIT)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            outcome = "closed"
        self.outcomes[f"websocket {outcome}"] += 1
        if poll is not None:
            poll[1].transport.abort()
        if outcome == "pending":
            self._reap(reader, writer, "websocket")
        else:
            if end == "close" and outcome == "answered":
                writer.write(client_frame(8, struct.pack("!H", 1000)))
            self._end(writer, end)

    # -- polling ----------------------------------------------------------------------------------
    async def polling_case(self, eio3: bool, join: bool,
                           bodies: list[tuple[bytes, str | None]], end: str) -> None:
        self.counts["polling"] += 1
        eio = "3" if eio3 else "4"
        posts = await self._open()
        gets = await self._open()
        try:
            gets[1].write(http_request("GET", f"/socket.io/?EIO={eio}&transport=polling&b64=1"))
            status, body = await read_response(gets[0])
            assert status == 200, (status, body)
            sid = re.search(rb'"sid":"([^"]+)"', body).group(1).decode()  # type: ignore[union-attr]
            target = f"/socket.io/?EIO={eio}&transport=polling&b64=1&sid={sid}"

            def frame(packet: str) -> bytes:
                return f"{js_length(packet)}:{packet}".encode() if eio3 else packet.encode()

            async def post(body: bytes, ctype: str | None) -> int:
                headers = {"Content-Type": ctype} if ctype else {}
                posts[1].write(http_request("POST", target, headers, body))
                status, answer = await read_response(posts[0])
                if status >= 500 or status not in (200, 400, 413):
                    self.fail(f"polling: POST answered {status} {answer[:100]!r}: {body[:300]!r}")
                self.outcomes[f"polling POST {status}"] += 1
                return status

            if join and not eio3:
                await post(b"40", None)
            alive = True
            for body, ctype in bodies:
                if await post(body, ctype) != 200:
                    alive = False
                    break
            token = self.token()
            outcome = "closed"
            if join or eio3:
                probe, answer = f'42999["echo","{token}"]', f'43999["{token}"]'
            else:
                probe, answer = "40", "40{"
            if alive and await post(frame(probe), None) == 200:
                outcome = await self._poll_for(gets, target, answer, eio3)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            outcome = "closed"
        self.outcomes[f"polling {outcome}"] += 1
        self._end(posts[1], end)
        self._end(gets[1], end)

    async def _poll_for(self, gets: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                        target: str, answer: str, eio3: bool) -> str:
        """GET until the probe's answer, a close packet or an error (the session is gone)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REAP_AFTER
        while loop.time() < deadline:
            gets[1].write(http_request("GET", target))
            status, body = await read_response(gets[0], REAP_AFTER)
            if status >= 500:
                self.fail(f"polling: GET answered {status}")
            if status != 200:
                return "closed"
            text = body.decode("utf-8", "replace")
            if answer in text:
                return "answered"
            # The close packet comes last (v4: "1" after a separator; v3: "1:1").
            if text.endswith("1:1") if eio3 else text.split("\x1e")[-1] == "1":
                return "closed"
        self.fail(f"polling: session neither answered nor closed after {REAP_AFTER} s")
        return "pending"


# -- small wire helpers (client side) -----------------------------------------------------------
def http_request(method: str, target: str, headers: dict[str, str] | None = None,
                 body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_head(reader: asyncio.StreamReader, timeout: float) -> bytes | None:
    """A response head; ``b""`` at EOF before one; ``None`` when nothing came in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return None
        if not chunk:
            return b"" if not buf else buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    reader._buffer[:0] = rest  # type: ignore[attr-defined]  # give the rest back
    return head + b"\r\n\r\n"


async def read_response(reader: asyncio.StreamReader, timeout: float = 5.0) -> tuple[int, bytes]:
    head = await read_head(reader, timeout)
    if not head:
        raise ConnectionError("no response")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    length = int(m.group(1)) if m else 0
    body = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
    return status, body


def client_frame(opcode: int, payload: bytes) -> bytes:
    return frame_bytes((opcode, payload, True, 0, True, 0))


class FrameReader:
    """Server frames (unmasked) from a stream."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    async def frame(self, timeout: float) -> tuple[int, bytes] | None:
        """``(opcode, payload)``; ``(-1, b"")`` at EOF; ``None`` when nothing came in time."""
        try:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        except asyncio.TimeoutError:
            return None
        except (asyncio.IncompleteReadError, ConnectionError):
            return -1, b""
        n = b1 & 0x7F
        try:
            if n == 126:
                n = struct.unpack("!H", await asyncio.wait_for(self.reader.readexactly(2), 5))[0]
            elif n == 127:
                n = struct.unpack("!Q", await asyncio.wait_for(self.reader.readexactly(8), 5))[0]
            payload = await asyncio.wait_for(self.reader.readexactly(n), 5)
        except (asyncio.IncompleteReadError, ConnectionError):
            return -1, b""
        return b0 & 0x0F, payload

    async def text(self, timeout: float) -> str | None:
        while True:
            f = await self.frame(timeout)
            if f is None or f[0] in (-1, 8):
                return None
            if f[0] == 1:
                text = f[1].decode()
                if text != "2":
                    return text

    async def wait_for_text(self, match: Callable[[str], bool], timeout: float) -> str:
        """``answered``, ``closed`` (close frame or EOF) or ``pending`` (neither in time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            f = await self.frame(max(0.0, deadline - loop.time()))
            if f is None:
                return "pending"
            if f[0] in (-1, 8):
                return "closed"
            if f[0] == 1 and match(f[1].decode("utf-8", "replace")):
                return "answered"


# -- the fuzzers ----------------------------------------------------------------------------------
ends = st.sampled_from(["fin", "rst", "close"])


def fuzzers(h: Harness, profile: settings) -> dict[str, Callable[[], None]]:
    """The three fuzzers, bound to ``h``: each runs ``profile.max_examples`` cases."""

    @profile
    @given(data=http_inputs, end=ends)
    def fuzz_http(data: bytes, end: str) -> None:
        h.case(h.http_case(data, end))

    @profile
    @given(eio3=st.booleans(), via_polling=st.booleans(), join=st.booleans(), end=ends,
           messages=st.data())
    def fuzz_websocket(eio3: bool, via_polling: bool, join: bool, end: str,
                       messages: st.DataObject) -> None:
        h.case(h.ws_case(eio3, via_polling, join, messages.draw(ws_messages(eio3)), end))

    @profile
    @given(eio3=st.booleans(), join=st.booleans(), end=ends, bodies=st.data())
    def fuzz_polling(eio3: bool, join: bool, end: str, bodies: st.DataObject) -> None:
        h.case(h.polling_case(eio3, join, bodies.draw(polling_bodies(eio3)), end))

    return {"http": fuzz_http, "websocket": fuzz_websocket, "polling": fuzz_polling}


def fastsio_memory(snapshot: tracemalloc.Snapshot) -> tuple[int, list[str]]:
    """Bytes still allocated from fastsio's code since tracing started, and the top sites."""
    ours = snapshot.filter_traces([tracemalloc.Filter(True, "*/fastsio/*")])
    stats = ours.statistics("lineno")
    return sum(stat.size for stat in stats), [str(stat) for stat in stats[:8]]


@dataclass
class Report:
    cases: Counter[str]
    outcomes: Counter[str]
    good: list[int]
    worst: float
    memory: int
    objects: dict[str, int]
    seconds: float
    memory_sites: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"fuzz: {sum(self.cases.values())} cases {dict(self.cases)} in "
                f"{self.seconds:.1f} s; good clients' round trips {self.good} (slowest "
                f"{self.worst:.2f} s); fastsio memory left {self.memory} B; objects left "
                f"{self.objects}; outcomes {dict(sorted(self.outcomes.items()))}")


def run_fuzz(
    h: Harness,
    profile: settings,
    rounds: int = 1,
    until: float | None = None,
    on_error: Callable[[str, BaseException], None] | None = None,
) -> Report:
    """Warm up, measure, fuzz (each fuzzer ``rounds`` times or until the ``until`` clock time),
    then check the invariants that need the cases over. Raises AssertionError on a broken one
    (unless ``on_error`` takes the hypothesis failures)."""
    start = time.monotonic()
    h.run(h.warm_up())
    h.run(h.settle())
    gc.collect()
    tracemalloc.start()
    try:
        h.run(h.start_good_clients())
        fns = fuzzers(h, profile)
        done_rounds = 0
        while True:
            for name, fn in fns.items():
                before = h.good_progress()
                try:
                    fn()
                except Exception as exc:
                    if on_error is None:
                        raise
                    on_error(name, exc)
                problems = h.take_problems(before)
                if problems and on_error is None:
                    raise AssertionError(f"{name}: {problems[:10]}")
                for p in problems:
                    on_error(name, AssertionError(p))  # type: ignore[misc]
            done_rounds += 1
            if until is None and done_rounds >= rounds:
                break
            if until is not None and time.monotonic() >= until:
                break
        worst = max(c.worst for c in h.good)
        good = h.good_progress()
        h.run(h.stop_good_clients())
        h.run(h.wait_reaped(), timeout=REAP_AFTER + 20)
        h.run(h.settle())
        gc.collect()
        assert h.io is not None
        memory, sites = fastsio_memory(tracemalloc.take_snapshot())
        objects = server_objects(h.io)
    finally:
        tracemalloc.stop()
    return Report(h.counts, h.outcomes, good, worst, memory, objects, time.monotonic() - start,
                  sites)


# Memory allocated from fastsio's code that may outlive the cases without being a leak:
# orjson's cache of decoded dict keys (2,048 slots of keys up to 64 bytes: it levels off at about
# 134 KB, and tracemalloc counts it at the decoder's call site, client.py), the timers' current
# handles and bucket lists, and containers at their high-water size (dicts do not shrink). A leak
# of a few bytes per case passes it in the long run (25,000 cases: 8 bytes each); the exact check
# that nothing of a connection is left is server_objects().
MEMORY_SLACK = (64 + 160) * 1024


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


async def test_session_ids_are_120_bit_tokens_from_secrets(make_server, monkeypatch):
    import fastsio.engine.server as engine_server
    import fastsio.namespace as namespace

    asked: list[tuple[str, int]] = []
    real = engine_server.secrets.token_urlsafe

    def spy(where: str) -> Callable[[int], str]:
        def token(n: int) -> str:
            asked.append((where, n))
            return real(n)
        return token

    monkeypatch.setattr(engine_server.secrets, "token_urlsafe", spy("secrets"))
    assert namespace.secrets is engine_server.secrets  # the same module: the spy sees both
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
    # Every id came from the secrets module, with at least 120 bits (15 bytes) asked for.
    assert len(asked) == 3 * n and all(nbytes >= 15 for _, nbytes in asked)
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
        async with http.ws_connect(url.replace("http", "ws") + "/socket.io/?EIO=4&transport="
                                   "websocket") as ws:
            await ws.receive()
            await ws.send_str("40")
            await ws.receive()
            await ws.send_str('42["disconnect"]')  # reserved: closes the connection
            await ws.receive()
        async with http.ws_connect(url.replace("http", "ws") + "/socket.io/?EIO=4&transport="
                                   "websocket") as ws:
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
        async with http.ws_connect(url.replace("http", "ws") + "/socket.io/?EIO=4&transport="
                                   "websocket") as ws:
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
    from tests.test_socket import RawSio

    io, url = await make_server()
    called: list[tuple[Any, ...]] = []
    for nsp in (io, io.of("/admin")):
        nsp.on(event, lambda *a: called.append(a))
    marker = "from-client"
    for packet in (f'42["{event}","{marker}"]', f'421["{event}","{marker}"]',
                   f'451-["{event}","{marker}",{{"_placeholder":true,"num":0}}]',
                   f'42/admin,["{event}","{marker}"]'):
        raw = await RawSio.connect(url)
        if packet.startswith("42/admin,"):
            await raw.send("40/admin,")
            assert (await raw.recv()).startswith("40/admin,")
        await raw.send(packet)
        if "placeholder" in packet:
            with contextlib.suppress(Exception):
                await raw.ws.send_bytes(b"\x00")
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

