"""A fastsio node in its own process, for the tests that kill it (``kill -9``) and start it
again on the same port: ``python pyserver.py REDIS_URL PORT``; prints ``ready`` once listening.
Recovery on (10 s); each socket joins the rooms in its ``auth.rooms``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import fastsio
from fastsio.cluster import redis_streams_adapter


async def main(redis_url: str, port: int) -> None:
    io = fastsio.Server(
        adapter=redis_streams_adapter(redis_url),
        connection_state_recovery={"max_disconnection_duration": 10.0},
        ping_interval=2.0,
        ping_timeout=2.0,
    )

    @io.on("connection")
    def on_connection(sock: fastsio.Socket) -> None:
        if not sock.recovered:
            sock.join(sock.handshake.auth.get("rooms", []))

    await io.start("127.0.0.1", port)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
