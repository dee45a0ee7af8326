"""The event loops every async test runs on, and waiting for a condition on one of them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from tests.clients.wire import TIMEOUT

LOOPS = ["asyncio"] + (["uvloop"] if sys.platform != "win32" else [])


def loop_factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """``{"asyncio": ..., "uvloop": ...}``: what each name in :data:`LOOPS` makes."""
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    if "uvloop" in LOOPS:
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    return factories


async def wait_for(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def until(predicate: Callable[[], bool], changed: asyncio.Event, what: str,
                timeout: float = TIMEOUT) -> None:
    """Wait (at most ``timeout`` seconds) until ``predicate()``, re-checking when ``changed``
    is set (no polling)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), remaining)
        except asyncio.TimeoutError:
            pass
