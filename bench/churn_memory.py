"""Server RSS across rounds of connection churn (issue 13, part 1).

``python bench/churn_memory.py [websocket|polling|upgrade] [connections per round] [rounds]
[settle seconds]`` (defaults: websocket, 30,000, 2, 5)

The issue's mix, from ``tests/test_churn.py``: 100 concurrent clients, each joining "/" and
ending by its index (half clean, a quarter FIN, a quarter RST), against a server with its
defaults in a process of its own (``tests/churn_server.py``, uvloop; for polling, a 1 s
``ping_timeout``, as in the test: how long a client-closed session keeps its sid). After each
round and the settle time, it prints the server's RSS as seen from outside, what it still
holds, and how many objects of each per-connection type are alive.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # for tests.*
from tests.clients.churn import (
    POLLING_OPTIONS,
    ServerProcess,
    churn_round,
    mix_polling,
    mix_upgrade,
    mix_websocket,
)

MIXES = {"websocket": mix_websocket, "polling": mix_polling, "upgrade": mix_upgrade}


async def main(mix: str, count: int, rounds: int, settle: float) -> None:
    server = await ServerProcess.start(POLLING_OPTIONS if mix == "polling" else {}, "uvloop")
    try:
        print(f"{mix} x {count} per round; start: RSS "
              f"{(await server.ask('rss'))['rss'] / 2**20:.1f} MiB")
        for r in range(rounds):
            start = time.monotonic()
            await churn_round(server.url, MIXES[mix], count)
            elapsed = time.monotonic() - start
            await asyncio.sleep(settle)
            rss = (await server.ask("rss"))["rss"] / 2**20
            print(f"round {r + 1}: {count / elapsed:.0f} connections/s; after {settle} s: RSS "
                  f"{rss:.1f} MiB, holds {await server.ask('state')}, objects alive "
                  f"{await server.ask('objects')}")
    finally:
        await server.stop()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(
        args[0] if args else "websocket",
        int(args[1]) if len(args) > 1 else 30_000,
        int(args[2]) if len(args) > 2 else 2,
        float(args[3]) if len(args) > 3 else 5.0,
    ))
