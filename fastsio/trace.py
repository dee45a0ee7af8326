"""Per-packet debug traces, in the spirit of the official server's ``DEBUG=socket.io*``.

One logger per layer, all under ``fastsio.trace``:

- ``fastsio.trace.http``: each HTTP request and its status (polling, the client bundle, ...);
- ``fastsio.trace.engine``: each Engine.IO packet a session receives, opens, upgrades, closes;
- ``fastsio.trace.socket``: each Socket.IO packet received (type, namespace, data) and sent
  (one line per emit, one per broadcast however many sockets it reaches).

Off by default and free when off: the hot paths test one attribute of :data:`flags`, which
is set from the loggers' levels when a server starts (:func:`refresh`), not a logging call per
packet. Turn them on with logging (``logging.getLogger("fastsio.trace").setLevel("DEBUG")``
before ``start``), with :func:`enable`, or with the environment:
``FASTSIO_TRACE=1`` (every layer) or ``FASTSIO_TRACE=socket,engine``.

Traces show packet contents (what clients send, session ids): keep them for debugging.
Standard library only: every layer may import this module.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from fastsio._core import inbox

LAYERS = ("http", "engine", "socket")
ROOT = logging.getLogger("fastsio.trace")
HTTP = logging.getLogger("fastsio.trace.http")
ENGINE = logging.getLogger("fastsio.trace.engine")
SOCKET = logging.getLogger("fastsio.trace.socket")
_LOGGERS = {"http": HTTP, "engine": ENGINE, "socket": SOCKET}

# A packet longer than this is cut in the trace (the size is shown).
MAX_SHOWN = 200


class _Flags:
    """Which layers trace: plain attributes, read on the hot paths."""

    __slots__ = LAYERS

    def __init__(self) -> None:
        self.http = False
        self.engine = False
        self.socket = False


flags = _Flags()


def refresh() -> None:
    """Read the loggers' levels into :data:`flags` (``Server.start`` calls it; call it again
    after changing the logging configuration of a running server)."""
    flags.http = HTTP.isEnabledFor(logging.DEBUG)
    flags.engine = ENGINE.isEnabledFor(logging.DEBUG)
    flags.socket = SOCKET.isEnabledFor(logging.DEBUG)
    # The core's WebSocket sinks skip the layers that trace: off while either one traces.
    inbox.use_sinks(not (flags.engine or flags.socket))


def enable(*layers: str, stream: Any = None) -> None:
    """Trace ``layers`` (all when none given) at DEBUG, to ``stream`` (stderr) unless logging
    already has a handler for them."""
    chosen = layers or LAYERS
    unknown = set(chosen) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown trace layers {sorted(unknown)}; known: {', '.join(LAYERS)}")
    if not ROOT.handlers:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        ROOT.addHandler(handler)
    for layer in chosen:
        _LOGGERS[layer].setLevel(logging.DEBUG)
    refresh()


def enable_from_environment() -> None:
    """``FASTSIO_TRACE``: ``1``/``all``/``*`` for every layer, or a comma-separated list."""
    value = os.environ.get("FASTSIO_TRACE", "").strip()
    if not value or value == "0":
        return
    if value in ("1", "all", "*", "true"):
        enable()
    else:
        enable(*(v.strip() for v in value.split(",") if v.strip()))


def shown(data: Any) -> str:
    """A packet (bytes or text) or a decoded value as a trace shows it: its ``repr``, cut to
    :data:`MAX_SHOWN` characters."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8", "replace")
    text = repr(data)
    if len(text) > MAX_SHOWN:
        return f"{text[:MAX_SHOWN]}... ({len(text)} characters)"
    return text
