"""The official JS client recovers its session from fastsio, including where upstream fails."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("drop_after", [1, 0], ids=["after-one-event", "zero-event"])
async def test_js_client_recovers_and_gets_missed_events(make_server, js_script, drop_after):
    io, url = await make_server(connection_state_recovery={"max_disconnection_duration": 10})
    script = await js_script("recovery.mjs", url, str(drop_after))
    first = await script.next_line()
    assert first["ev"] == "connect" and first["recovered"] is False
    if drop_after:
        io.emit("tick", 0)
        tick = await script.next_line()
        assert tick["ev"] == "tick" and tick["args"][0] == 0
        assert isinstance(tick["args"][-1], str)  # the offset, as upstream sends it
    dropped = await script.next_line()
    # The client closed its own transport: "forced close" on its side, "transport close" on
    # ours, which is a recoverable reason.
    assert dropped == {"ev": "disconnect", "reason": "forced close"}
    io.emit("tick", 1)
    io.emit("tick", 2, {"k": "v"})
    # The client hands out the replayed events first, then its "connect" event.
    missed = [await script.next_line(), await script.next_line()]
    assert [m["ev"] for m in missed] == ["tick", "tick"]
    assert [m["args"][:-1] for m in missed] == [[1], [2, {"k": "v"}]]
    again = await script.next_line()
    assert again == {"ev": "connect", "id": first["id"], "recovered": True}
    assert io.stats()["recoveries"] == {"ok": 1, "failed": 0}
    assert io.stats()["disconnects"] == {"transport close": 1}
    io.emit("done")
    assert await script.next_line() == {"ev": "done"}
    assert await script.wait(10) == 0
