"""``Server.stats()`` as Prometheus metrics: ``pip install fastsio-server[prometheus]``.

    import fastsio, fastsio.metrics
    io = fastsio.Server(packet_stats=True)
    fastsio.metrics.export(io)            # GET /metrics on the server's own port

or register :class:`StatsCollector` in a registry that an existing exporter serves. The values
are read from the server when scraped (nothing is kept twice):

- ``fastsio_clients`` (gauge): connected clients (Engine.IO sessions);
- ``fastsio_sockets{namespace}`` (gauge): connected sockets per namespace;
- ``fastsio_packets_received_total``, ``fastsio_bytes_received_total``,
  ``fastsio_packets_sent_total``, ``fastsio_bytes_sent_total`` (with ``packet_stats=True``);
- ``fastsio_broadcasts_total``; ``fastsio_recoveries_total{result="ok"|"failed"}``;
- ``fastsio_disconnects_total{reason}`` (the official reasons: ``transport close``, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from fastsio.engine.http import Request
    from fastsio.server import Server
    from fastsio.static import Response


class StatsCollector(Collector):
    """A collector over one server's :meth:`Server.stats`."""

    def __init__(self, io: Server, prefix: str = "fastsio") -> None:
        self.io = io
        self.prefix = prefix

    def collect(self) -> Iterator[Metric]:
        p = self.prefix
        s = self.io.stats()
        yield GaugeMetricFamily(f"{p}_clients", "Connected clients (Engine.IO sessions)",
                                value=s["clients"])
        sockets = GaugeMetricFamily(f"{p}_sockets", "Connected sockets per namespace",
                                    labels=["namespace"])
        for name, count in sorted(s["sockets"].items()):
            sockets.add_metric([name], count)
        yield sockets
        for key, name, text in (
            ("packets_in", "packets_received", "Socket.IO packets received"),
            ("bytes_in", "bytes_received", "Bytes of the Socket.IO packets received"),
            ("packets_out", "packets_sent", "Socket.IO packets sent (per recipient)"),
            ("bytes_out", "bytes_sent", "Bytes of the Socket.IO packets sent"),
        ):
            if s[key] is not None:
                yield CounterMetricFamily(f"{p}_{name}", text, value=s[key])
        yield CounterMetricFamily(f"{p}_broadcasts", "Broadcasts emitted", value=s["broadcasts"])
        recoveries = CounterMetricFamily(f"{p}_recoveries", "Connection state recoveries",
                                         labels=["result"])
        for result in ("ok", "failed"):
            recoveries.add_metric([result], s["recoveries"][result])
        yield recoveries
        disconnects = CounterMetricFamily(f"{p}_disconnects", "Socket disconnects by reason",
                                          labels=["reason"])
        for reason, count in sorted(s["disconnects"].items()):
            disconnects.add_metric([reason], count)
        yield disconnects


def export(
    io: Server,
    registry: CollectorRegistry | None = None,
    *,
    path: str | None = "/metrics",
    prefix: str = "fastsio",
) -> StatsCollector:
    """Register ``io``'s counters in ``registry`` (prometheus_client's default one unless
    given) and, unless ``path`` is ``None``, serve the registry at ``path`` on ``io``'s port."""
    registry = REGISTRY if registry is None else registry
    collector = StatsCollector(io, prefix)
    registry.register(collector)
    if path is not None:
        def metrics(req: Request) -> Response:
            return 200, [("Content-Type", CONTENT_TYPE_LATEST)], generate_latest(registry)

        io.engine_routes[path] = metrics
    return collector
