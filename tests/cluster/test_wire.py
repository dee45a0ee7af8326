"""The wire codecs against the official JS ones, run in Node: the stream routing hash, and the
session value (msgpack with dates and binary, base64) in both directions."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess

from fastsio.cluster import wire
from tests.clients.node import REPO, require_node

NAMES = ["/", "/notifications", "/chat", "/é日本", "/a" * 40, "/\U0001f600"]


def node_eval(script: str) -> str:
    node = require_node()
    return subprocess.run([node, "-e", script], cwd=REPO, check=True, capture_output=True,
                          text=True, timeout=20).stdout


def test_stream_routing_matches_the_adapter() -> None:
    script = (
        "const {hashCode} = require('@socket.io/redis-streams-adapter/dist/util');"
        f"const names = {json.dumps(NAMES)};"
        "console.log(JSON.stringify(names.map((n) => [hashCode(n), 's-' + (hashCode(n) % 4)])));"
    )
    expected = json.loads(node_eval(script))
    assert [[wire.hash_code(n), wire.stream_name("s", 4, n)] for n in NAMES] == expected
    assert wire.stream_name("socket.io", 4, "/notifications") == "socket.io--3"
    assert wire.stream_name("socket.io", 1, "/notifications") == "socket.io"


def test_session_values_cross_both_ways() -> None:
    # Node (the adapter's @msgpack/msgpack) encodes; fastsio decodes.
    script = (
        "const {encode} = require('@msgpack/msgpack');"
        "const s = {sid: 'S', pid: 'P', rooms: ['S', 'r', 7], data: {when: new Date(1500),"
        " bin: Buffer.from([0, 255]), nil: undefined, f: 1.5}};"
        "console.log(Buffer.from(encode(s)).toString('base64'));"
    )
    got = wire.decode_session(node_eval(script).strip())
    assert got == {"sid": "S", "pid": "P", "rooms": ["S", "r", 7],
                   "data": {"when": dt.datetime(1970, 1, 1, 0, 0, 1, 500000, dt.timezone.utc),
                            "bin": b"\x00\xff", "nil": None, "f": 1.5}}
    # fastsio encodes; Node decodes.
    when = dt.datetime(2020, 1, 2, tzinfo=dt.timezone.utc)
    raw = wire.encode_session("S", "P", ["S", "r"], {"when": when, "bin": b"\x01"}).decode()
    script = (
        "const {decode} = require('@msgpack/msgpack');"
        f"const s = decode(Buffer.from('{raw}', 'base64'));"
        "console.log(JSON.stringify({sid: s.sid, pid: s.pid, rooms: s.rooms,"
        " when: s.data.when.toISOString(), bin: Array.from(s.data.bin)}));"
    )
    assert json.loads(node_eval(script)) == {
        "sid": "S", "pid": "P", "rooms": ["S", "r"], "when": "2020-01-02T00:00:00.000Z",
        "bin": [1]}


def test_stream_fields_take_the_official_paths() -> None:
    data = {"packet": {"type": 2, "data": ["e", 1]}, "opts": wire.encode_opts([], [], {})}
    msg = wire.message("u" * 16, "/", wire.BROADCAST, data)
    fields = wire.stream_fields(msg)
    assert fields[b"type"] == b"3" and fields[b"data"].startswith(b"{")
    assert wire.decode_stream_fields(fields)["data"] == msg["data"]
    msg["data"]["packet"]["data"].append(b"\x00")
    fields = wire.stream_fields(msg)
    assert not fields[b"data"].startswith(b"{")
    assert wire.unpack(base64.b64decode(fields[b"data"])) == msg["data"]
    assert b"data" not in wire.stream_fields(wire.message("u", "/", wire.SOCKETS_JOIN, {}))
