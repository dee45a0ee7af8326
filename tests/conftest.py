"""Shared fixtures: every async test runs on the default asyncio loop and on uvloop, against a
real fastsio server listening on a loopback port."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import fastsio

LOOPS = ["asyncio"] + (["uvloop"] if sys.platform != "win32" else [])


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Callable[[], Any]]:
    """Every async test runs once per loop: ``[asyncio]`` and ``[uvloop]`` in its id."""
    factories: dict[str, Callable[[], Any]] = {"asyncio": asyncio.new_event_loop}
    if "uvloop" in LOOPS:
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    return factories


ServerFactory = Callable[..., Awaitable[tuple[fastsio.Server, str]]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    """``io, url = await make_server(**options)``: a started server, closed after the test."""
    started: list[fastsio.Server] = []

    async def factory(**options: Any) -> tuple[fastsio.Server, str]:
        io = fastsio.Server(**options)
        port = await io.start("127.0.0.1", 0)
        started.append(io)
        return io, f"http://127.0.0.1:{port}"

    yield factory
    for io in started:
        await io.close()


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
