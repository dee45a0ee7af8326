"""What every client in the toolkit writes and reads on the wire: Engine.IO URLs and request
targets, the open packet, namespace prefixes, JavaScript string lengths, revision 3's payload
formats, raw HTTP/1.1 requests and masked WebSocket frames. No I/O here."""

from __future__ import annotations

import base64
import json
import os
import struct
from typing import Any
from urllib.parse import urlsplit

import orjson

EIO_PATH = "/socket.io/"
# How long any client waits for one answer before the test fails.
TIMEOUT = 5.0

Packet = str | bytes  # a text packet with its type digit, or the bytes of a binary message


# -- URLs -------------------------------------------------------------------------------------
def eio_url(base: str, transport: str = "polling", sid: str | None = None, **query: str) -> str:
    """``http://host:port/socket.io/?EIO=4&transport=...`` (``EIO=None`` drops the parameter)."""
    params: dict[str, str | None] = {"EIO": "4", "transport": transport}
    params.update(query)
    if sid is not None:
        params["sid"] = sid
    qs = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return f"{base}{EIO_PATH}?{qs}"


def ws_url(base: str, sid: str | None = None, **query: str) -> str:
    """The WebSocket URL of ``base`` (``http``/``https`` become ``ws``/``wss``)."""
    if base.startswith("https://"):
        base = "wss://" + base[len("https://"):]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://"):]
    return eio_url(base, "websocket", sid, **query)


def eio_target(transport: str = "polling", sid: str | None = None, **query: str) -> str:
    """The request target of :func:`eio_url` (no scheme, no host)."""
    return eio_url("", transport, sid, **query)


def host_port(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    assert parts.hostname is not None and parts.port is not None, base
    return parts.hostname, parts.port


def port_of(url: str) -> int:
    return host_port(url)[1]


# -- packets ------------------------------------------------------------------------------------
def parse_open(packet: str) -> dict[str, Any]:
    """The data of an Engine.IO open packet (``0{...}``)."""
    assert packet.startswith("0"), packet
    value: dict[str, Any] = orjson.loads(packet[1:])
    return value


def split_payload(body: bytes) -> list[str]:
    """The packets of an Engine.IO v4 polling payload (none in an empty body)."""
    return body.decode().split("\x1e") if body else []


def nsp_prefix(nsp: str) -> str:
    """How a namespace is written in a packet: nothing for ``/``, ``/name,`` otherwise."""
    return "" if nsp == "/" else nsp + ","


def connect_packet(nsp: str = "/", auth: Any = None) -> str:
    """A Socket.IO CONNECT in its Engine.IO message (``40``, ``40/chat,{"token":1}``)."""
    payload = "" if auth is None else json.dumps(auth, separators=(",", ":"))
    return "40" + nsp_prefix(nsp) + payload


def js_len(text: str) -> int:
    """``text.length`` in JavaScript (UTF-16 code units): revision 3's payload lengths. Lone
    surrogates (which hostile input may hold) count as one unit each, as in JavaScript."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# -- Engine.IO revision 3 payloads ----------------------------------------------------------------
def text_payload(packets: list[Packet]) -> bytes:
    """``<length>:<packet>`` for each packet; binary ones as ``b4<base64>``."""
    parts = []
    for p in packets:
        s = "b4" + base64.b64encode(p).decode() if isinstance(p, bytes) else p
        parts.append(f"{js_len(s)}:{s}")
    return "".join(parts).encode()


def parse_text_payload(body: str) -> list[Packet]:
    out: list[Packet] = []
    i = 0
    while i < len(body):
        colon = body.index(":", i)
        want = int(body[i:colon])
        j, units = colon + 1, 0
        while units < want:
            units += 2 if ord(body[j]) > 0xFFFF else 1
            j += 1
        assert units == want, body
        packet = body[colon + 1 : j]
        out.append(base64.b64decode(packet[2:]) if packet.startswith("b4") else packet)
        i = j
    return out


def binary_payload(packets: list[Packet]) -> bytes:
    """The XHR2 payload: per packet a kind byte, the length in decimal digits, 255, the data."""
    out = bytearray()
    for p in packets:
        data = b"\x04" + p if isinstance(p, bytes) else p.encode()
        out.append(1 if isinstance(p, bytes) else 0)
        out += bytes(int(d) for d in str(len(data)))
        out.append(255)
        out += data
    return bytes(out)


def parse_binary_payload(body: bytes) -> list[Packet]:
    out: list[Packet] = []
    i = 0
    while i < len(body):
        kind = body[i]
        j = body.index(255, i)
        length = int("".join(str(b) for b in body[i + 1 : j]))
        data = body[j + 1 : j + 1 + length]
        if kind == 0:
            out.append(data.decode())
        else:
            assert data[0] == 4, data
            out.append(data[1:])
        i = j + 1 + length
    return out


# -- raw HTTP/1.1 ---------------------------------------------------------------------------------
def request(
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    host: str = "127.0.0.1",
) -> bytes:
    """One HTTP/1.1 request; adds Host and (for a body) Content-Length unless given."""
    all_headers = {"Host": host}
    if body and not any(
        k.lower() in ("content-length", "transfer-encoding") for k in headers or {}
    ):
        all_headers["Content-Length"] = str(len(body))
    all_headers.update(headers or {})
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in all_headers.items()
    )
    return (head + "\r\n").encode("latin-1") + body


def ws_key() -> str:
    """A fresh ``Sec-WebSocket-Key``."""
    return base64.b64encode(os.urandom(16)).decode()


def ws_upgrade_request(target: str, connection: str = "Upgrade", host: str = "127.0.0.1") -> bytes:
    return request(
        "GET",
        target,
        {
            "Connection": connection,
            "Upgrade": "websocket",
            "Sec-WebSocket-Key": ws_key(),
            "Sec-WebSocket-Version": "13",
        },
        host=host,
    )


# -- WebSocket frames -----------------------------------------------------------------------------
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def ws_frame(
    opcode: int,
    payload: bytes,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    lie: int = 0,
) -> bytes:
    """A client frame; masked (as a client must) unless ``masked`` is false. ``rsv`` sets the
    RSV bits; ``lie`` makes the length field lie: ``n > 0`` announces ``n`` bytes more than
    sent, ``n < 0`` drops the last ``-n`` bytes of the payload after announcing all of them."""
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
        payload = _mask(payload, mask)
    if lie < 0:
        payload = payload[:lie]
    return bytes(head) + payload


def _mask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if n < 64:
        return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")
