"""A fastsio server in a process of its own, so that the memory a test measures is the server's.

``python -m tests.churn_server '<Server options as JSON>' [asyncio|uvloop]`` prints
``{"port": N}`` once listening, then answers one JSON line per command read on stdin:

- ``rss``: resident memory in bytes, as an outside observer sees it (nothing collected or
  trimmed first);
- ``state``: what the server still holds (sessions, HTTP connections, sockets, timers);
- ``objects``: how many objects of each per-connection type are alive (found through the
  garbage collector: they have no ``__weakref__`` slot), plus picows's;
- ``quit``.

It runs as ``Server.run`` would (uvloop unless told otherwise, the GC tuned the same way), with
one namespace and no handler that keeps anything.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from collections import Counter
from typing import Any

import fastsio
from fastsio.server import tune_garbage_collector

PAGE = os.sysconf("SC_PAGE_SIZE")
TRACKED = (
    "EngineSocket", "Client", "Socket", "WebSocketTransport", "PollingTransport",
    "HttpConnection", "Request", "Timer", "WebSocketProtocol", "WSTransport", "Handshake",
)


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def objects() -> dict[str, int]:
    gc.collect()
    counts: Counter[str] = Counter()
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in TRACKED:
            counts[name] += 1
    return dict(counts)


def state(io: fastsio.Server) -> dict[str, int]:
    engine = io.engine
    return {
        "clients": len(engine.clients),
        "http": len(engine._http_connections),
        "lingering": len(engine._lingering),
        "sockets": len(io.sockets.sockets),
        "timers": len(getattr(engine, "timers", ())),
        "tasks": len(io._tasks),
    }


async def main(options: dict[str, Any]) -> None:
    io = fastsio.Server(**options)
    port = await io.start("127.0.0.1", 0)
    tune_garbage_collector()
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        if line == "rss":
            answer: Any = {"rss": rss()}
        elif line == "state":
            answer = state(io)
        elif line == "objects":
            answer = objects()
        elif line == "quit":
            break
        else:
            answer = {"error": line}
        print(json.dumps(answer), flush=True)
    await io.close()


if __name__ == "__main__":
    opts = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    if (sys.argv[2] if len(sys.argv) > 2 else "uvloop") == "uvloop":
        import uvloop

        uvloop.run(main(opts))
    else:
        asyncio.run(main(opts))
