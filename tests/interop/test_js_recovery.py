"""The official JS client recovers its session from fastsio, including where upstream fails."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.interop.node import CLIENT_JS, require_node

RECOVERY_JS = CLIENT_JS.with_name("recovery.mjs")


async def run_client(url: str, drop_after: int):
    node = require_node()
    proc = await asyncio.create_subprocess_exec(
        node, str(RECOVERY_JS), url, str(drop_after),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    return proc


async def next_line(proc: Any) -> dict[str, Any]:
    line = await asyncio.wait_for(proc.stdout.readline(), 10)
    assert line, (await proc.stderr.read()).decode()
    return json.loads(line)


@pytest.mark.parametrize("drop_after", [1, 0], ids=["after-one-event", "zero-event"])
async def test_js_client_recovers_and_gets_missed_events(make_server, drop_after):
    io, url = await make_server(connection_state_recovery={"max_disconnection_duration": 10})
    proc = await run_client(url, drop_after)
    try:
        first = await next_line(proc)
        assert first["ev"] == "connect" and first["recovered"] is False
        if drop_after:
            io.emit("tick", 0)
            tick = await next_line(proc)
            assert tick["ev"] == "tick" and tick["args"][0] == 0
            assert isinstance(tick["args"][-1], str)  # the offset, as upstream sends it
        dropped = await next_line(proc)
        # The client closed its own transport: "forced close" on its side, "transport close" on
        # ours, which is a recoverable reason.
        assert dropped == {"ev": "disconnect", "reason": "forced close"}
        io.emit("tick", 1)
        io.emit("tick", 2, {"k": "v"})
        # The client hands out the replayed events first, then its "connect" event.
        missed = [await next_line(proc), await next_line(proc)]
        assert [m["ev"] for m in missed] == ["tick", "tick"]
        assert [m["args"][:-1] for m in missed] == [[1], [2, {"k": "v"}]]
        again = await next_line(proc)
        assert again == {"ev": "connect", "id": first["id"], "recovered": True}
        assert io.stats()["recoveries"] == {"ok": 1, "failed": 0}
        assert io.stats()["disconnects"] == {"transport close": 1}
        io.emit("done")
        assert await next_line(proc) == {"ev": "done"}
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
