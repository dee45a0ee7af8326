"""When do pings reach idle clients opened over time? (issue 13, part 0)

``python bench/ping_timing.py [clients] [spread_s] [ping_interval] [ping_timeout] [observe_s]``

Defaults: 200 raw WebSocket clients opened over 1 s, ping_interval 2.5 s, ping_timeout 2 s
(the issue's 200 clients over 10 s with 25 s / 20 s, scaled by 1/10), observed for 8 s. Each
client answers every ping at once and records how long after its open packet (first ping) or
its last pong (later pings) the ping came. Prints the distribution, and how many clients an
official client would have dropped ("ping timeout": no ping within interval + timeout).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from pathlib import Path

import fastsio

sys.path.append(str(Path(__file__).resolve().parents[1]))  # for tests.clients
from tests.clients.wire import OP_TEXT, eio_target
from tests.clients.ws import RawWebSocket


async def client(url: str, until: float, first: list[float], later: list[float]) -> None:
    loop = asyncio.get_running_loop()
    ws = await RawWebSocket.open(url)
    assert (await ws.upgrade(eio_target("websocket"))).status == 101
    await ws.recv_text()
    ref = loop.time()
    n = 0
    while loop.time() < until:
        try:
            op, payload = await asyncio.wait_for(ws.recv_frame(), until - loop.time())
        except asyncio.TimeoutError:
            break
        if (op, payload) != (OP_TEXT, b"2"):
            break
        (first if n == 0 else later).append(loop.time() - ref)
        n += 1
        ws.send_text("3")
        ref = loop.time()
    ws.writer.transport.abort()


def describe(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: none"
    q = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
    median = statistics.median(values)
    return (f"{name}: {len(values)}, min {min(values):.3f} s, median {median:.3f} s, "
            f"p99 {q[98]:.3f} s, max {max(values):.3f} s")


async def main(clients: int, spread: float, interval: float, timeout: float,
               observe: float) -> None:
    io = fastsio.Server(ping_interval=interval, ping_timeout=timeout)
    port = await io.start("127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}"
    loop = asyncio.get_running_loop()
    until = loop.time() + spread + observe
    first: list[float] = []
    later: list[float] = []

    async def staggered(i: int) -> None:
        await asyncio.sleep(spread * i / clients)
        await client(url, until, first, later)

    await asyncio.gather(*(staggered(i) for i in range(clients)))
    await io.close()
    late = [v - interval for v in first + later]
    would_close = sum(1 for v in first + later if v > interval + timeout)
    print(f"{clients} clients over {spread} s, ping_interval {interval} s, ping_timeout "
          f"{timeout} s, {observe} s observed")
    print(describe("first ping after open", first))
    print(describe("later pings after the pong", later))
    print(describe("lateness (all pings)", late))
    print(f"pings later than interval + timeout (an official client closes): {would_close}")


if __name__ == "__main__":
    args = [float(a) for a in sys.argv[1:]]
    defaults = [200, 1.0, 2.5, 2.0, 8.0]
    values = args + defaults[len(args):]
    asyncio.run(main(int(values[0]), *values[1:]))
