"""The application ``fastsio run`` serves in tests/test_workers.py (and bench/workers.py):
each answer names the worker process it came from."""

from __future__ import annotations

import os

import fastsio

io = fastsio.Server(ping_interval=2.0, ping_timeout=2.0)


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
