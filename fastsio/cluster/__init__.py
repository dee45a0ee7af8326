"""Scale-out on Redis: the adapter of a cluster of fastsio and official Node.js servers, and
the emitter for processes that are not servers. Needs the ``redis`` extra
(``pip install fastsio[redis]``)."""

from fastsio.cluster.emitter import AsyncEmitter, Emitter
from fastsio.cluster.redis_streams import RedisStreamsAdapter, redis_streams_adapter

__all__ = ["AsyncEmitter", "Emitter", "RedisStreamsAdapter", "redis_streams_adapter"]
