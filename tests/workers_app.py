"""The application ``fastsio run`` serves in tests/test_workers.py (and bench/workers.py):
each answer names the worker process it came from."""

from __future__ import annotations

import os

import fastsio

# Short pings so that the JS client tests cross a heartbeat; WORKERS_APP_PING for tests whose
# sessions must outlive a pause without polling.
PING = float(os.environ.get("WORKERS_APP_PING", "2"))
# WORKERS_APP_RECOVERY=1: connection state recovery on (across workers: with --redis).
RECOVERY = os.environ.get("WORKERS_APP_RECOVERY") == "1"
io = fastsio.Server(
    ping_interval=PING,
    ping_timeout=PING,
    connection_state_recovery={"max_disconnection_duration": 30.0} if RECOVERY else None,
)


@io.on("whoami")
def whoami(socket: fastsio.Socket) -> int:
    return os.getpid()


@io.on("echo")
def echo(socket: fastsio.Socket, *args: object) -> tuple[object, ...]:
    return (os.getpid(), *args)


@io.on("shout")
def shout(socket: fastsio.Socket, text: str) -> int:
    # Every client of every worker (through the adapter), this one included.
    io.emit("news", text, os.getpid())
    return os.getpid()
