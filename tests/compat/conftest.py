"""Servers for the compat tests: the apps under ``apps/`` run in their own process (uvicorn,
hypercorn or aiohttp), started once per test module, as a deployment runs them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .servers import AppServer


@pytest.fixture(scope="module")
def app_servers() -> Iterator[dict[tuple[str, str, str], AppServer]]:
    """``servers[front, app, impl]``: started on first use, stopped after the module."""
    started: dict[tuple[str, str, str], AppServer] = {}
    yield started
    for server in started.values():
        out = server.stop()
        # A handler error or a traceback in the server's log fails the module's last test.
        assert "Traceback" not in out, f"{server.front} {server.app} logged:\n{out}"
