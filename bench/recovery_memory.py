"""Memory of connection state recovery: bytes per logged packet and per persisted session.

``python bench/recovery_memory.py`` — tracemalloc over 10,000 packets / 10,000 sessions.
"""

from __future__ import annotations

import asyncio
import tracemalloc

from fastsio.adapter import Adapter, BroadcastOptions, Session

RECOVERY = {"max_disconnection_duration": 120, "max_packets": 10_000, "max_bytes": 64 << 20,
            "skip_middlewares": True}


class _Nsp:
    name = "/"
    sockets: dict[str, object] = {}


async def main() -> None:
    adapter = Adapter(_Nsp(), RECOVERY)  # type: ignore[arg-type]
    payload = {"t": 1234567890, "pad": "x" * 50}
    everyone = BroadcastOptions()
    room = BroadcastOptions(rooms=frozenset(("lobby",)))
    n = 10_000
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(n):
        adapter.broadcast(["tick", payload], everyone if i % 2 else room)
    after = tracemalloc.take_snapshot()
    per_packet = sum(s.size_diff for s in after.compare_to(before, "filename")) / n
    wire = len(b'42["tick",{"t":1234567890,"pad":"' + b"x" * 50 + b'"},"0123456789abcdef-10000"]')
    before = tracemalloc.take_snapshot()
    for i in range(n):
        adapter.persist_session(Session(f"{i:020d}", f"{i:022d}", [f"{i:020d}", "lobby"],
                                        {"name": "user"}, 0))
    after = tracemalloc.take_snapshot()
    per_session = sum(s.size_diff for s in after.compare_to(before, "filename")) / n
    tracemalloc.stop()
    adapter.close()
    print(f"logged packet: {per_packet:.0f} B each (its wire size is {wire} B)")
    print(f"persisted session (2 rooms, small data): {per_session:.0f} B each")


asyncio.run(main())
