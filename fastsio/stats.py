"""Counters of a running server: what ``Server.stats()`` returns and ``fastsio.metrics``
exports to Prometheus.

Always kept (each costs one increment per event that is not a packet): broadcasts, connection
state recoveries that succeeded or failed, disconnect reasons. Read from live state when asked:
connected clients (Engine.IO sessions), sockets per namespace. Kept only with
``Server(packet_stats=True)``, because they are per packet: Socket.IO packets and bytes in and
out (the hot paths then do two increments per packet; off, they test one attribute).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastsio import trace
from fastsio.trace import flags as _trace

if TYPE_CHECKING:
    from fastsio._core.sio_packet import Encoded
    from fastsio.server import Server


class PacketCounters:
    """Packets and bytes in and out at the Socket.IO layer. ``in``: each Engine.IO message a
    client sent (a packet or a binary attachment) and its size; ``out``: each encoded packet
    queued for a socket, a broadcast counting once per socket it is addressed to (volatile
    packets a busy client skips included)."""

    __slots__ = ("bytes_in", "bytes_out", "packets_in", "packets_out")

    def __init__(self) -> None:
        self.packets_in = 0
        self.bytes_in = 0
        self.packets_out = 0
        self.bytes_out = 0


class Stats:
    __slots__ = ("broadcasts", "disconnects", "packets", "recoveries_failed", "recoveries_ok")

    def __init__(self, packet_stats: bool) -> None:
        self.broadcasts = 0
        self.recoveries_ok = 0
        self.recoveries_failed = 0
        self.disconnects: dict[str, int] = {}
        self.packets: PacketCounters | None = PacketCounters() if packet_stats else None

    def disconnected(self, reason: str) -> None:
        self.disconnects[reason] = self.disconnects.get(reason, 0) + 1

    def snapshot(self, clients: int, sockets: dict[str, int]) -> dict[str, Any]:
        p = self.packets
        return {
            "clients": clients,
            "sockets": sockets,
            "packets_in": None if p is None else p.packets_in,
            "bytes_in": None if p is None else p.bytes_in,
            "packets_out": None if p is None else p.packets_out,
            "bytes_out": None if p is None else p.bytes_out,
            "broadcasts": self.broadcasts,
            "recoveries": {"ok": self.recoveries_ok, "failed": self.recoveries_failed},
            "disconnects": dict(self.disconnects),
        }


def counted(server: Server, to: str, packet: Encoded, targets: int = 1) -> None:
    """The packet counters and the trace of a packet sent to ``targets`` sockets (``to``: who,
    for the trace). Costs two attribute tests when both are off."""
    counters = server._packets
    if counters is not None:
        counters.packets_out += targets
        counters.bytes_out += packet.size * targets
    if _trace.socket:
        if targets == 1:
            trace.SOCKET.debug("%s > %s", to, trace.shown(packet.parts[0]))
        else:
            trace.SOCKET.debug("%s > %s (%d sockets)", to, trace.shown(packet.parts[0]), targets)
