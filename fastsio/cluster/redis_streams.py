"""The Redis streams adapter: one cluster of fastsio and official Node.js servers on one Redis.

Wire-compatible with ``@socket.io/redis-streams-adapter`` 0.3.x (see :mod:`fastsio.cluster.wire`):
broadcasts, room changes and disconnects go through a Redis stream (XADD/XREAD), requests and
their responses (fetch_sockets, broadcast acks, server-side emits) through pub/sub, and
connection state recovery sessions are ``sio:session:<pid>`` keys with stream ids as offsets.

One :class:`_Node` per server holds the Redis connections: one pipelined writer for every
command this node sends (a burst of broadcasts is one round trip), one blocking reader per
stream, one pub/sub connection. Each namespace gets a :class:`RedisStreamsAdapter` (with its own
uid, as the official adapter has one per namespace) over the in-memory adapter, whose local
fan-out (encoded once, framed once) does the local part of every operation.

With connection state recovery on, every broadcast of this node is delivered locally by the
stream reader, in stream order, with its entry id as offset: the offsets a client receives only
grow, which is what makes a restore from "everything after my last offset" exactly-once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from fastsio._core import sio_packet
from fastsio.adapter import Adapter, BroadcastOptions, Session
from fastsio.broadcast import RemoteSocket
from fastsio.cluster import wire
from fastsio.exceptions import AckTimeout
from fastsio.socket import Handshake

if TYPE_CHECKING:
    from fastsio.namespace import Namespace
    from fastsio.socket import Socket

log = logging.getLogger("fastsio.cluster")

Room = Hashable
AdapterFactory = Callable[["Namespace", "dict[str, Any] | None"], Adapter]

_BACKOFF_MIN = 0.05
_BACKOFF_MAX = 2.0
_RING = 4096  # replayable packets kept per namespace to close the restore/connect gap
_HANDSHAKE_FIELDS = ("headers", "time", "address", "xdomain", "secure", "issued", "url", "query",
                     "auth")


@dataclass(frozen=True, slots=True)
class _Options:
    stream_name: str
    stream_count: int
    channel_prefix: str
    sharded: bool
    max_len: int
    max_age: float | None
    read_count: int
    block_ms: int
    session_key_prefix: str
    only_plaintext: bool
    request_timeout: float
    eager_sessions: bool


def redis_streams_adapter(
    url_or_client: str | aioredis.Redis,
    *,
    stream_name: str = "socket.io",
    stream_count: int = 1,
    channel_prefix: str = "socket.io",
    use_sharded_pubsub: bool = False,
    max_len: int = 10_000,
    max_age: float | None = None,
    read_count: int = 100,
    block_time: float = 5.0,
    session_key_prefix: str = "sio:session:",
    only_plaintext: bool = False,
    request_timeout: float = 5.0,
    eager_sessions: bool = True,
) -> AdapterFactory:
    """The adapter factory for ``fastsio.Server(adapter=...)``.

    ``url_or_client`` is a ``redis://`` URL or a ``redis.asyncio.Redis`` (its connection
    settings are reused for the connections this adapter opens). The options are the official
    adapter's (times in seconds), plus:

    - ``max_age``: also trim the stream by age (``XTRIM MINID``), so the recovery window is a
      time (set it to at least ``max_disconnection_duration``) and not only ``max_len`` entries.
    - ``request_timeout``: the deadline of ``fetch_sockets`` and of server-side emits with an
      ack when the caller set none.
    - ``eager_sessions`` (recovery on): keep each connected socket's session in Redis while it
      is connected (written on connect and room changes, refreshed periodically), so that a
      client also recovers when its node dies without a clean shutdown (``kill -9``).
    """
    if stream_count < 1:
        raise ValueError("stream_count must be >= 1")
    if read_count < 1 or max_len < 1:
        raise ValueError("read_count and max_len must be >= 1")
    opts = _Options(
        stream_name=stream_name,
        stream_count=stream_count,
        channel_prefix=channel_prefix,
        sharded=use_sharded_pubsub,
        max_len=max_len,
        max_age=max_age,
        read_count=read_count,
        block_ms=max(1, int(block_time * 1000)),
        session_key_prefix=session_key_prefix,
        only_plaintext=only_plaintext,
        request_timeout=request_timeout,
        eager_sessions=eager_sessions,
    )
    nodes: dict[int, _Node] = {}

    def factory(nsp: Namespace, recovery: dict[str, Any] | None) -> Adapter:
        key = id(nsp.server)
        node = nodes.get(key)
        if node is None or node.closed:
            node = nodes[key] = _Node(url_or_client, opts, recovery is not None)
        return RedisStreamsAdapter(nsp, recovery, node)

    return factory


def _connection_kwargs(url_or_client: str | aioredis.Redis) -> dict[str, Any]:
    if isinstance(url_or_client, str):
        pool = aioredis.ConnectionPool.from_url(url_or_client)
        kwargs = dict(pool.connection_kwargs)
        kwargs["connection_class"] = pool.connection_class
    else:
        pool = url_or_client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs["connection_class"] = pool.connection_class
    # Stream fields and pub/sub payloads are bytes (msgpack); retries are ours (with backoff).
    kwargs["decode_responses"] = False
    kwargs["retry"] = Retry(NoBackoff(), 0)
    kwargs.pop("retry_on_timeout", None)
    return kwargs


def _client(kwargs: dict[str, Any], **overrides: Any) -> aioredis.Redis:
    kw = {**kwargs, **overrides}
    connection_class = kw.pop("connection_class")
    pool = aioredis.ConnectionPool(connection_class=connection_class, **kw)
    return aioredis.Redis(connection_pool=pool)


class _Throttled:
    """A log line for a failure that may repeat (Redis down): once, then at most every 5 s with
    the number of repeats."""

    __slots__ = ("count", "last", "what")

    def __init__(self, what: str) -> None:
        self.what = what
        self.count = 0
        self.last = -1e9

    def error(self, exc: BaseException, detail: str = "") -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.last >= 5.0:
            more = f" ({self.count} times)" if self.count > 1 else ""
            log.warning("%s: %s%s%s", self.what, exc or type(exc).__name__, detail, more)
            self.last = now
            self.count = 0

    def recovered(self) -> None:
        if self.last > 0:
            log.info("%s: working again", self.what)
        self.last = -1e9
        self.count = 0


class _Out:
    """One command for the writer. ``done(result_or_exception)`` runs on its reply."""

    __slots__ = ("args", "done", "kind", "kwargs", "stream")

    def __init__(self, kind: str, args: tuple[Any, ...], stream: _Stream | None = None,
                 done: Callable[[Any], None] | None = None,
                 kwargs: dict[str, Any] | None = None) -> None:
        self.kind = kind
        self.args = args
        self.stream = stream
        self.done = done
        self.kwargs = kwargs


class _Own:
    """A stream entry of this node (recovery on), applied locally once: by the reader, in
    stream order, or at once when the reader is down or the write failed. ``id`` is known once
    XADD answered."""

    __slots__ = ("_apply", "applied", "id", "queued")

    def __init__(self, apply: Callable[[str | None], None]) -> None:
        self._apply = apply
        self.applied = False
        self.queued = False  # waiting in the stream's inflight queue for the reader
        self.id: tuple[int, int] | None = None

    def apply(self, offset: str | None) -> None:
        if not self.applied:
            self.applied = True
            self._apply(offset)


class _Stream:
    __slots__ = ("client", "healthy", "inflight", "name", "pos", "pos_t", "ready", "task",
                 "trimmed_at")

    def __init__(self, name: str) -> None:
        self.name = name
        self.pos: str | None = None  # the last entry id read (None: not initialised yet)
        self.pos_t: tuple[int, int] = (0, 0)
        self.inflight: collections.deque[_Own] = collections.deque()
        self.healthy = False
        self.ready: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None
        self.client: aioredis.Redis | None = None
        self.trimmed_at = 0.0


class _Node:
    """What one server shares between its namespaces: the Redis connections and loops."""

    def __init__(self, url_or_client: str | aioredis.Redis, opts: _Options,
                 recovery: bool) -> None:
        self.opts = opts
        self.recovery = recovery
        self.kwargs = _connection_kwargs(url_or_client)
        self.client: aioredis.Redis | None = None
        self.adapters: dict[str, RedisStreamsAdapter] = {}
        self.by_uid: dict[str, RedisStreamsAdapter] = {}
        self.streams: dict[str, _Stream] = {}
        self.queue: list[_Out] = []
        self.wake: asyncio.Event | None = None
        self.idle: asyncio.Event | None = None
        self.writer: asyncio.Task[None] | None = None
        self.subscriber: asyncio.Task[None] | None = None
        self.refresher: asyncio.Task[None] | None = None
        self.pubsub: Any = None
        self.channels: set[bytes] = set()
        self.side_tasks: set[asyncio.Task[None]] = set()
        self.started = False
        self.closed = False
        self.write_errors = _Throttled("redis adapter: commands could not reach Redis")
        self.read_errors = _Throttled("redis adapter: the stream reader failed")
        self.sub_errors = _Throttled("redis adapter: pub/sub failed")
        self.bad_entries = _Throttled("redis adapter: skipped a malformed cluster message")

    # -- lifecycle ---------------------------------------------------------------------------
    def register(self, adapter: RedisStreamsAdapter) -> None:
        self.adapters[adapter.nsp.name] = adapter
        self.by_uid[adapter.uid] = adapter
        self.stream(adapter.stream_name)
        if self.started:
            self._start_stream(self.streams[adapter.stream_name])
            self._subscribe(adapter)

    def unregister(self, adapter: RedisStreamsAdapter) -> None:
        if self.adapters.get(adapter.nsp.name) is adapter:
            del self.adapters[adapter.nsp.name]
        self.by_uid.pop(adapter.uid, None)

    def stream(self, name: str) -> _Stream:
        state = self.streams.get(name)
        if state is None:
            state = self.streams[name] = _Stream(name)
        return state

    def ensure_started(self) -> None:
        """Start the loops (idempotent); needs a running loop."""
        if self.started or self.closed:
            return
        self.started = True
        self.client = _client(self.kwargs)
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.writer = asyncio.ensure_future(self._write_loop())
        for state in self.streams.values():
            self._start_stream(state)
        self.subscriber = asyncio.ensure_future(self._subscribe_loop())
        if self.recovery and self.opts.eager_sessions:
            self.refresher = asyncio.ensure_future(self._refresh_loop())

    async def start(self, timeout: float = 2.0) -> None:
        """Start, and wait (up to ``timeout``) until the readers know where the streams end
        and pub/sub is subscribed; with Redis down it goes on and keeps trying."""
        self.ensure_started()
        waits = [s.ready.wait() for s in self.streams.values() if s.ready is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*waits, self._subscribed()), timeout)
        except asyncio.TimeoutError:
            log.warning("redis adapter: Redis did not answer in %.1fs; retrying in the "
                        "background", timeout)

    async def _subscribed(self) -> None:
        while not self.closed:
            wanted = {c for a in self.adapters.values() for c in a.channels}
            if wanted <= self.channels:
                return
            await asyncio.sleep(0.01)

    def _start_stream(self, state: _Stream) -> None:
        if state.task is not None:
            return
        state.ready = asyncio.Event()
        state.client = _client(
            self.kwargs, socket_timeout=self.opts.block_ms / 1000 + 10, max_connections=1
        )
        state.task = asyncio.ensure_future(self._read_loop(state))

    async def close(self) -> None:
        """Flush what is queued (bounded), then stop every loop and connection."""
        if self.closed or not self.started:
            self.closed = True
            return
        self.closed = True
        if self.queue and self.idle is not None and self.wake is not None:
            self.wake.set()
            try:
                await asyncio.wait_for(self._drained(), 2.0)
            except asyncio.TimeoutError:
                log.warning("redis adapter: %d commands not written at close", len(self.queue))
        tasks = [t for t in (self.writer, self.subscriber, self.refresher) if t is not None]
        tasks += [s.task for s in self.streams.values() if s.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        clients = [s.client for s in self.streams.values() if s.client is not None]
        if self.client is not None:
            clients.append(self.client)
        if self.pubsub is not None:
            try:
                await self.pubsub.aclose()
            except Exception:
                pass
        for c in clients:
            try:
                # The pools were made here (not by Redis()), so Redis.aclose() would leave them.
                await c.aclose(close_connection_pool=True)
            except Exception:
                pass

    async def _drained(self) -> None:
        assert self.idle is not None
        while self.queue or not self.idle.is_set():
            await self.idle.wait()
            await asyncio.sleep(0)

    # -- writing -----------------------------------------------------------------------------
    def send(self, out: _Out) -> None:
        self.ensure_started()
        self.queue.append(out)
        if self.wake is not None:
            self.wake.set()

    async def command(self, kind: str, *args: Any) -> Any:
        """One command through the writer's pipeline; its reply (or the exception raised)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(result: Any) -> None:
            if not fut.done():
                if isinstance(result, BaseException):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)

        self.send(_Out(kind, args, None, done))
        return await fut

    async def _write_loop(self) -> None:
        assert self.wake is not None and self.idle is not None and self.client is not None
        client = self.client
        opts = self.opts
        while True:
            if not self.queue:
                self.idle.set()
                self.wake.clear()
                await self.wake.wait()
                continue
            self.idle.clear()
            batch, self.queue = self.queue[:1000], self.queue[1000:]
            pipe = client.pipeline(transaction=False)
            sent: list[_Out] = []
            now = time.monotonic()
            for out in batch:
                if out.kind == "xadd":
                    state = out.stream
                    assert state is not None
                    pipe.xadd(state.name, out.args[0], maxlen=opts.max_len, approximate=True)
                    sent.append(out)
                    if opts.max_age is not None and now - state.trimmed_at >= 1.0:
                        # The log bounded by time too (Redis >= 6.2): at most once a second.
                        state.trimmed_at = now
                        min_ms = int((time.time() - opts.max_age) * 1000)
                        pipe.xtrim(state.name, minid=f"{max(min_ms, 0)}-0", approximate=True)
                        sent.append(_Out("xtrim", ()))
                    continue
                getattr(pipe, out.kind)(*out.args, **(out.kwargs or {}))
                sent.append(out)
            if not sent:
                continue
            try:
                results = await pipe.execute(raise_on_error=False)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.write_errors.error(exc, f" ({len(sent)} commands)")
                for out in sent:
                    if out.done is not None:
                        out.done(exc)
                await asyncio.sleep(_BACKOFF_MIN)
                continue
            failed = 0
            for out, result in zip(sent, results, strict=True):
                if isinstance(result, Exception):
                    failed += 1
                if out.done is not None:
                    try:
                        out.done(result)
                    except Exception:
                        log.exception("redis adapter: error while handling a reply")
            if failed:
                self.write_errors.error(results[0] if isinstance(results[0], Exception)
                                        else RuntimeError("command failed"),
                                        f" ({failed} of {len(sent)} commands)")
            else:
                self.write_errors.recovered()

    # -- reading the streams -----------------------------------------------------------------
    async def _read_loop(self, state: _Stream) -> None:
        client = state.client
        assert client is not None and state.ready is not None
        opts = self.opts
        backoff = _BACKOFF_MIN
        while True:
            try:
                if state.pos is None:
                    # Where the stream ends now (the official "$" would miss what this node
                    # writes before its first XREAD).
                    last: Any = await client.xrevrange(state.name, "+", "-", count=1)
                    self._advance(state, last[0][0].decode() if last else "0-0")
                state.healthy = True
                state.ready.set()
                pos: str = state.pos  # type: ignore[assignment]
                reply: Any = await client.xread({state.name: pos}, count=opts.read_count,
                                           block=opts.block_ms)
                backoff = _BACKOFF_MIN
                self.read_errors.recovered()
                for _stream, entries in reply or ():
                    for entry_id, fields in entries:
                        eid = entry_id.decode()
                        self._advance(state, eid)
                        try:
                            self._on_entry(state, eid, fields)
                        except wire.WireError as exc:
                            self.bad_entries.error(exc, f" (stream entry {eid})")
                        except Exception:
                            log.exception("redis adapter: error on stream entry %s", eid)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state.healthy = False
                self.read_errors.error(exc)
                self._flush_inflight(state)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                # The connection may be half-read after a failure: start from a fresh one.
                try:
                    await client.connection_pool.disconnect()
                except Exception:
                    pass

    def _advance(self, state: _Stream, eid: str) -> None:
        state.pos = eid
        state.pos_t = wire.parse_id(eid)

    def _flush_inflight(self, state: _Stream) -> None:
        while state.inflight:
            self._pop_apply(state)

    @staticmethod
    def _pop_apply(state: _Stream, eid: str | None = None) -> None:
        own = state.inflight.popleft()
        own.queued = False
        if eid is None and own.id is not None:
            eid = f"{own.id[0]}-{own.id[1]}"
        own.apply(eid)

    def _on_entry(self, state: _Stream, eid: str, fields: dict[bytes, bytes]) -> None:
        uid = fields.get(b"uid")
        if uid is not None and uid.decode(errors="replace") in self.by_uid:
            self._on_own_entry(state, eid)
            return
        nsp = fields.get(b"nsp")
        if not nsp:
            return
        adapter = self.adapters.get(nsp.decode(errors="replace"))
        if adapter is None:
            return
        msg = wire.decode_stream_fields(fields)
        adapter.on_message(msg, eid)

    def _on_own_entry(self, state: _Stream, eid: str) -> None:
        inflight = state.inflight
        if not inflight:
            return  # already delivered (Redis failed after writing it), or recovery is off
        eid_t = state.pos_t
        # Entries whose id the reply gave but that the reader never saw (trimmed before it
        # read them): applied with their ids rather than stalling everything behind them.
        while inflight and inflight[0].id is not None and inflight[0].id < eid_t:
            self._pop_apply(state)
        if inflight and (inflight[0].id is None or inflight[0].id == eid_t):
            self._pop_apply(state, eid)

    def xadd_own(self, adapter: RedisStreamsAdapter, fields: dict[bytes, bytes],
                 apply: Callable[[str | None], None]) -> None:
        """XADD an entry of this node that the reader applies locally, in stream order
        (recovery on). When the reader is down it is applied on the XADD reply instead, and
        when the write fails, at once without an offset: local delivery never waits for Redis
        to come back."""
        state = self.streams[adapter.stream_name]
        own = _Own(apply)

        def done(result: Any) -> None:
            if own.applied:
                return
            if isinstance(result, BaseException):
                if own.queued:
                    state.inflight.remove(own)
                    own.queued = False
                own.apply(None)
                return
            own.id = wire.parse_id(result)
            if not own.queued:
                own.apply(result.decode())
            elif not state.healthy or state.pos_t >= own.id:
                # The reader is down, or it passed the entry before this reply came.
                state.inflight.remove(own)
                own.queued = False
                own.apply(result.decode())

        if state.healthy:
            own.queued = True
            state.inflight.append(own)
        self.send(_Out("xadd", (fields,), state, done))

    def xadd(self, adapter: RedisStreamsAdapter, fields: dict[bytes, bytes],
             done: Callable[[Any], None] | None = None) -> None:
        self.send(_Out("xadd", (fields,), self.streams[adapter.stream_name], done))

    # -- pub/sub -----------------------------------------------------------------------------
    def publish(self, channel: str, payload: bytes) -> None:
        self.send(_Out("spublish" if self.opts.sharded else "publish", (channel, payload)))

    def _subscribe(self, adapter: RedisStreamsAdapter) -> None:
        ps = self.pubsub
        if ps is None:
            return
        task = asyncio.ensure_future(self._do_subscribe(ps, list(adapter.channels)))
        self.side_tasks.add(task)
        task.add_done_callback(self.side_tasks.discard)

    async def _do_subscribe(self, ps: Any, channels: list[bytes]) -> None:
        try:
            if self.opts.sharded:
                await ps.ssubscribe(*channels)
            else:
                await ps.subscribe(*channels)
        except Exception as exc:
            self.sub_errors.error(exc)

    async def _subscribe_loop(self) -> None:
        backoff = _BACKOFF_MIN
        while True:
            ps = None
            try:
                assert self.client is not None
                ps = self.client.pubsub()
                channels = sorted({c for a in self.adapters.values() for c in a.channels})
                if self.opts.sharded:
                    await ps.ssubscribe(*channels)
                else:
                    await ps.subscribe(*channels)
                self.pubsub = ps
                while True:
                    msg = await ps.get_message(timeout=None)
                    if msg is None:
                        continue
                    kind = msg.get("type")
                    if kind in (b"subscribe", "subscribe", b"ssubscribe", "ssubscribe"):
                        self.channels.add(msg["channel"])
                        backoff = _BACKOFF_MIN
                        self.sub_errors.recovered()
                        continue
                    if kind not in (b"message", "message", b"smessage", "smessage"):
                        continue
                    try:
                        self._on_pubsub(msg["data"])
                    except wire.WireError as exc:
                        self.bad_entries.error(exc, " (pub/sub)")
                    except Exception:
                        log.exception("redis adapter: error on a pub/sub message")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.sub_errors.error(exc)
                self.pubsub = None
                self.channels.clear()
                if ps is not None:
                    try:
                        await ps.aclose()
                    except Exception:
                        pass
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    def _on_pubsub(self, payload: bytes) -> None:
        msg = wire.decode_pubsub_payload(payload)
        wire.check_message(msg)
        adapter = self.adapters.get(msg["nsp"])
        if adapter is not None:
            adapter.on_message(msg, None)

    async def server_count(self, channel: str) -> int:
        assert self.client is not None
        if self.opts.sharded:
            reply = await self.client.execute_command(  # type: ignore[no-untyped-call]
                "PUBSUB", "SHARDNUMSUB", channel)
            return int(reply[1])
        pairs = await self.client.pubsub_numsub(channel)
        return int(pairs[0][1]) if pairs else 0

    # -- eager sessions ----------------------------------------------------------------------
    async def _refresh_loop(self) -> None:
        while True:
            periods = [a.refresh_period for a in self.adapters.values() if a.recovery]
            await asyncio.sleep(min(periods, default=30.0))
            for adapter in list(self.adapters.values()):
                adapter.refresh_sessions()


class _Request:
    """A request to the other nodes: ``expected`` answers, at most one per uid."""

    __slots__ = ("expected", "future", "responses", "uids")

    def __init__(self, expected: int, responses: list[Any]) -> None:
        self.expected = expected
        self.responses = responses
        self.uids: set[str] = set()
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def add(self, uid: str, values: Iterable[Any]) -> None:
        if uid in self.uids:
            return
        self.uids.add(uid)
        self.responses.extend(values)
        if len(self.uids) >= self.expected and not self.future.done():
            self.future.set_result(None)


class _AckRequest:
    """A broadcast with acks across the cluster: the client counts of every node (the sum goes
    to the operator once all nodes answered), and each client's answer."""

    __slots__ = ("expected_servers", "on_ack", "on_count", "reported", "total", "uids")

    def __init__(self, on_count: Callable[[int], None],
                 on_ack: Callable[[str, list[Any]], None]) -> None:
        self.on_count = on_count
        self.on_ack = on_ack
        self.uids: set[str] = set()
        self.total = 0
        self.expected_servers: int | None = None
        self.reported = False

    def count(self, uid: str, n: int) -> None:
        if uid in self.uids:
            return
        self.uids.add(uid)
        self.total += n
        self.check()

    def check(self) -> None:
        if (not self.reported and self.expected_servers is not None
                and len(self.uids) >= self.expected_servers):
            self.reported = True
            self.on_count(self.total)


class _MissedPackets(list[list[bytes]]):
    """The packets a restored session missed. The last part is taken when the namespace writes
    them, in the same loop step in which the socket joins its rooms: what the reader delivered
    between the restore's last read and that moment comes from the namespace's ring, and what
    comes after is delivered live. Nothing falls in between, nothing comes twice."""

    def __init__(self, parts: list[list[bytes]], adapter: RedisStreamsAdapter,
                 ring_mark: int, after: tuple[int, int], rooms: list[Room]) -> None:
        super().__init__(parts)
        self._adapter = adapter
        self._mark = ring_mark
        self._after = after
        self._rooms = rooms

    def __iter__(self) -> Iterator[list[bytes]]:
        yield from super().__iter__()
        yield from self._adapter.ring_since(self._mark, self._after, self._rooms)


class RedisStreamsAdapter(Adapter):
    """The adapter of one namespace in a Redis streams cluster (see the module docstring)."""

    def __init__(self, nsp: Namespace, recovery: dict[str, Any] | None, node: _Node) -> None:
        # The local part is the in-memory adapter's, without its packet log: offsets here are
        # stream entry ids.
        super().__init__(nsp, None)
        self.node = node
        self.recovery = recovery
        self.max_disconnection_duration = (
            float(recovery["max_disconnection_duration"]) if recovery is not None else 0.0
        )
        opts = node.opts
        self.uid = wire.random_id()
        self.stream_name = wire.stream_name(opts.stream_name, opts.stream_count, nsp.name)
        self.public_channel = wire.public_channel(opts.channel_prefix, nsp.name)
        self.private_channel = wire.private_channel(opts.channel_prefix, nsp.name, self.uid)
        self.channels = (self.public_channel.encode(), self.private_channel.encode())
        self._requests: dict[str, _Request] = {}
        self._ack_requests: dict[str, _AckRequest] = {}
        # Recovery: replayable packets delivered here lately (ring sequence, entry id, stamped
        # parts, rooms, except rooms), and each connected socket's log position: the stream
        # entry its session began after (the session's "startOffset" on Redis).
        self._ring: collections.deque[
            tuple[int, tuple[int, int], list[Any], frozenset[Room], frozenset[Room]]
        ] = collections.deque(maxlen=_RING)
        self._ring_seq = 0
        self._log_positions: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._flush_scheduled = False
        self._persisted: set[str] = set()
        self.refresh_period = max(1.0, self.max_disconnection_duration / 4)
        node.register(self)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # Server.start() calls init()
        else:
            node.ensure_started()

    @property
    def stamps_offsets(self) -> bool:
        return self.recovery is not None

    async def init(self) -> None:
        await self.node.start()

    def close(self) -> None:
        super().close()
        # Replaced (set_adapter) or closing: this namespace hears nothing from the cluster now.
        self.node.unregister(self)

    async def aclose(self) -> None:
        self.node.unregister(self)
        if not self.node.adapters:
            await self.node.close()

    # -- encoding ----------------------------------------------------------------------------
    def _message(self, type_: int, data: Any) -> dict[str, Any]:
        return wire.message(self.uid, self.nsp.name, type_, data)

    def _fields(self, type_: int, data: Any) -> dict[bytes, bytes]:
        return wire.stream_fields(self._message(type_, data), self.node.opts.only_plaintext)

    @staticmethod
    def _flags(opts: BroadcastOptions) -> dict[str, Any]:
        flags = dict(opts.flags)
        if opts.volatile:
            flags["volatile"] = True
        if not opts.compress:
            flags["compress"] = False
        if opts.timeout is not None:
            flags["timeout"] = int(opts.timeout * 1000)
        return flags

    def _wire_opts(self, opts: BroadcastOptions) -> dict[str, Any]:
        return wire.encode_opts(opts.rooms, opts.except_rooms, self._flags(opts))

    @staticmethod
    def _local_opts(rooms: frozenset[Room], excepts: frozenset[Room],
                    flags: dict[str, Any]) -> BroadcastOptions:
        timeout = flags.get("timeout")
        return BroadcastOptions(
            rooms=rooms,
            except_rooms=excepts,
            volatile=bool(flags.get("volatile")),
            compress=flags.get("compress", True) is not False,
            local=True,
            timeout=timeout / 1000 if isinstance(timeout, (int, float)) else None,
        )

    # -- broadcasting ------------------------------------------------------------------------
    def _deliver(self, data: list[Any], opts: BroadcastOptions, offset: str | None) -> None:
        """The local part of a broadcast: the in-memory fan-out, with the offset appended when
        the packet is replayable (logged in the ring for the restore gap)."""
        if offset is None or opts.volatile:
            super().broadcast(data, opts)
            return
        stamped = [*data, offset]
        super().broadcast(stamped, opts)
        self._ring_seq += 1
        self._ring.append((self._ring_seq, wire.parse_id(offset), stamped, opts.rooms,
                           opts.except_rooms))

    def broadcast(self, data: list[Any], opts: BroadcastOptions) -> None:
        if opts.local:
            super().broadcast(data, opts)
            return
        fields = self._fields(BROADCAST, {"packet": {"type": wire.EVENT, "data": data},
                                          "opts": self._wire_opts(opts)})
        if self.recovery is None:
            super().broadcast(data, opts)
            self.node.xadd(self, fields)
            return
        self.node.xadd_own(self, fields, lambda offset: self._deliver(data, opts, offset))

    def broadcast_with_ack(
        self,
        data: list[Any],
        opts: BroadcastOptions,
        ack_id: int,
        on_count: Callable[[int], None],
        on_ack: Callable[[str, list[Any]], None],
    ) -> None:
        if opts.local:
            super().broadcast_with_ack(data, opts, ack_id, on_count, on_ack)
            return
        request_id = wire.random_id()
        request = _AckRequest(on_count, on_ack)
        self._ack_requests[request_id] = request
        msg = self._message(BROADCAST, {"packet": {"type": wire.EVENT, "data": data},
                                        "requestId": request_id,
                                        "opts": self._wire_opts(opts)})
        self.node.publish(self.public_channel, wire.pubsub_payload(msg))
        loop = asyncio.get_running_loop()
        timeout = opts.timeout if opts.timeout is not None else self.node.opts.request_timeout
        loop.call_later(timeout, self._ack_requests.pop, request_id, None)
        super().broadcast_with_ack(data, opts, ack_id,
                                   lambda n: request.count(self.uid, n), on_ack)

        async def expect() -> None:
            try:
                request.expected_servers = await self._server_count()
            except Exception as exc:
                self.node.write_errors.error(exc, " (server count)")
                request.expected_servers = 1
            request.check()

        self.nsp.server._spawn(expect())

    async def _server_count(self) -> int:
        self.node.ensure_started()
        return await self.node.server_count(self.public_channel)

    async def server_count(self) -> int:
        """The nodes serving this namespace (``PUBSUB NUMSUB`` of its public channel)."""
        try:
            return max(1, await self._server_count())
        except Exception as exc:
            self.node.write_errors.error(exc, " (server count)")
            return 1

    # -- room changes and disconnects --------------------------------------------------------
    async def _publish_and_apply(self, type_: int, data: dict[str, Any],
                                 apply: Callable[[], None]) -> None:
        fields = self._fields(type_, data)
        if self.recovery is None:
            try:
                await self._xadd_wait(fields)
            except Exception as exc:
                log.debug("redis adapter: publish failed (applied locally only): %s", exc)
            apply()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def in_order(_offset: str | None) -> None:
            try:
                apply()
            finally:
                if not fut.done():
                    fut.set_result(None)

        self.node.xadd_own(self, fields, in_order)
        await fut

    async def _xadd_wait(self, fields: dict[bytes, bytes]) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(result: Any) -> None:
            if fut.done():
                return
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)

        self.node.xadd(self, fields, done)
        return await fut

    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[Room]) -> None:
        rooms = list(rooms)
        if opts.local:
            await super().add_sockets(opts, rooms)
            return
        await self._publish_and_apply(
            SOCKETS_JOIN, {"opts": self._wire_opts(opts), "rooms": rooms},
            lambda: self._local_add(opts, rooms))

    def _local_add(self, opts: BroadcastOptions, rooms: list[Room]) -> None:
        for sock in self._targets(opts):
            sock.join(rooms)

    def _local_del(self, opts: BroadcastOptions, rooms: list[Room]) -> None:
        for sock in self._targets(opts):
            sock.leave(rooms)

    def _local_disconnect(self, opts: BroadcastOptions, close: bool) -> None:
        for sock in self._targets(opts):
            sock.disconnect(close)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[Room]) -> None:
        rooms = list(rooms)
        if opts.local:
            await super().del_sockets(opts, rooms)
            return
        await self._publish_and_apply(
            SOCKETS_LEAVE, {"opts": self._wire_opts(opts), "rooms": rooms},
            lambda: self._local_del(opts, rooms))

    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        if opts.local:
            await super().disconnect_sockets(opts, close)
            return
        await self._publish_and_apply(
            DISCONNECT_SOCKETS, {"opts": self._wire_opts(opts), "close": close},
            lambda: self._local_disconnect(opts, close))

    # -- requests ----------------------------------------------------------------------------
    async def _request(self, type_: int, data: dict[str, Any], responses: list[Any],
                       timeout: float | None) -> list[Any]:
        try:
            expected = await self._server_count() - 1
        except (OSError, aioredis.RedisError) as exc:
            # Whom to wait for is unknown: fail now, with what this node has.
            raise AckTimeout(f"the cluster is unreachable ({exc})",
                             responses=list(responses)) from None
        if expected <= 0:
            return responses
        request_id = wire.random_id()
        request = _Request(expected, responses)
        self._requests[request_id] = request
        data["requestId"] = request_id
        self.node.publish(self.public_channel, wire.pubsub_payload(self._message(type_, data)))
        wait = self.node.opts.request_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(asyncio.shield(request.future), wait)
        except asyncio.TimeoutError:
            raise AckTimeout(
                f"timeout reached: only {len(request.uids)} responses received out of "
                f"{expected}",
                responses=list(request.responses),
            ) from None
        finally:
            self._requests.pop(request_id, None)
        return request.responses

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        local: list[Any] = list(self._targets(opts))
        if opts.local:
            return local
        return await self._request(FETCH_SOCKETS, {"opts": self._wire_opts(opts)}, local,
                                   opts.timeout)

    async def server_side_emit(
        self, data: list[Any], expect_acks: bool = False, timeout: float | None = None
    ) -> list[Any]:
        if not expect_acks:
            msg = self._message(SERVER_SIDE_EMIT, {"packet": data})
            self.node.publish(self.public_channel, wire.pubsub_payload(msg))
            return []
        return await self._request(SERVER_SIDE_EMIT, {"packet": data}, [], timeout)

    def _respond(self, requester: str, type_: int, data: dict[str, Any]) -> None:
        if not isinstance(requester, str) or requester == wire.EMITTER_UID:
            return
        channel = wire.private_channel(self.node.opts.channel_prefix, self.nsp.name, requester)
        try:
            payload = wire.pubsub_payload(self._message(type_, data))
        except (TypeError, ValueError, OverflowError) as exc:
            log.error("redis adapter: cannot encode a response for the cluster: %s", exc)
            return
        self.node.publish(channel, payload)

    # -- receiving ---------------------------------------------------------------------------
    def on_message(self, msg: dict[str, Any], offset: str | None) -> None:
        """A message from another node (stream entry with its id, or pub/sub)."""
        if msg.get("uid") == self.uid:
            return
        wire.check_message(msg)
        type_ = msg["type"]
        data = msg.get("data") or {}
        uid = msg["uid"]
        if type_ in wire.RESPONSE_TYPES:
            self._on_response(type_, data, uid)
            return
        if type_ == BROADCAST:
            packet = data.get("packet")
            if not isinstance(packet, dict) or not isinstance(packet.get("data"), list):
                raise wire.WireError("broadcast without a packet")
            rooms, excepts, flags = wire.decode_opts(data.get("opts") or {})
            opts = self._local_opts(rooms, excepts, flags)
            request_id = data.get("requestId")
            if request_id is not None:
                self._remote_broadcast_with_ack(packet["data"], opts, request_id, uid)
                return
            if packet.get("type", wire.EVENT) != wire.EVENT:
                raise wire.WireError("broadcast of a packet that is not an EVENT")
            stamp = (offset if self.recovery is not None and packet.get("id") is None
                     else None)
            self._deliver(packet["data"], opts, stamp)
        elif type_ in (SOCKETS_JOIN, SOCKETS_LEAVE):
            rooms, excepts, flags = wire.decode_opts(data.get("opts") or {})
            targets = data.get("rooms")
            if not isinstance(targets, list):
                raise wire.WireError("rooms is not a list")
            local = self._local_opts(rooms, excepts, flags)
            if type_ == SOCKETS_JOIN:
                self._local_add(local, targets)
            else:
                self._local_del(local, targets)
        elif type_ == DISCONNECT_SOCKETS:
            rooms, excepts, flags = wire.decode_opts(data.get("opts") or {})
            self._local_disconnect(self._local_opts(rooms, excepts, flags),
                                   bool(data.get("close")))
        elif type_ == FETCH_SOCKETS:
            rooms, excepts, flags = wire.decode_opts(data.get("opts") or {})
            socks = self._targets(self._local_opts(rooms, excepts, flags))
            self._respond(uid, FETCH_SOCKETS_RESPONSE, {
                "requestId": data.get("requestId"),
                "sockets": [self._describe(s) for s in socks],
            })
        elif type_ == SERVER_SIDE_EMIT:
            packet = data.get("packet")
            if not isinstance(packet, list):
                raise wire.WireError("server-side emit without a packet")
            request_id = data.get("requestId")
            reply = None
            if request_id is not None:
                def reply(value: Any, _rid: Any = request_id, _uid: str = uid) -> None:
                    self._respond(_uid, SERVER_SIDE_EMIT_RESPONSE,
                                  {"requestId": _rid, "packet": value})
            self.nsp._on_server_side_emit(packet, reply)
        else:
            log.debug("redis adapter: ignored cluster message of type %r", type_)

    def _describe(self, sock: Socket) -> dict[str, Any]:
        hs = sock.handshake
        handshake = {f: getattr(hs, f, None) for f in _HANDSHAKE_FIELDS}
        data: Any = sock.data
        try:
            wire.pack(data)
        except (TypeError, ValueError, OverflowError):
            log.error("redis adapter: socket.data of %s cannot be sent to the cluster", sock.id)
            data = None
        return {"id": sock.id, "handshake": handshake, "rooms": list(sock.rooms), "data": data}

    def _remote_broadcast_with_ack(self, data: list[Any], opts: BroadcastOptions,
                                   request_id: Any, requester: str) -> None:
        ack_id = self.nsp._next_ack_id()

        def on_count(n: int) -> None:
            self._respond(requester, BROADCAST_CLIENT_COUNT,
                          {"requestId": request_id, "clientCount": n})

        def on_ack(_sid: str, args: list[Any]) -> None:
            self._respond(requester, BROADCAST_ACK,
                          {"requestId": request_id, "packet": args[0] if args else None})

        super().broadcast_with_ack(data, opts, ack_id, on_count, on_ack)
        timeout = opts.timeout if opts.timeout is not None else self.node.opts.request_timeout
        asyncio.get_running_loop().call_later(timeout, self._drop_acks, ack_id)

    def _drop_acks(self, ack_id: int) -> None:
        for sock in list(self.nsp.sockets.values()):
            sock._acks.pop(ack_id, None)

    def _on_response(self, type_: int, data: dict[str, Any], uid: str) -> None:
        request_id = data.get("requestId")
        if not isinstance(request_id, str):
            raise wire.WireError("response without a request id")
        if type_ == BROADCAST_CLIENT_COUNT:
            ack_request = self._ack_requests.get(request_id)
            count = data.get("clientCount")
            if ack_request is not None and isinstance(count, int):
                ack_request.count(uid, count)
        elif type_ == BROADCAST_ACK:
            ack_request = self._ack_requests.get(request_id)
            if ack_request is not None:
                ack_request.on_ack(uid, [data.get("packet")])
        elif type_ == FETCH_SOCKETS_RESPONSE:
            request = self._requests.get(request_id)
            sockets = data.get("sockets")
            if request is not None and isinstance(sockets, list):
                request.add(uid, [self._remote_socket(s) for s in sockets
                                  if isinstance(s, dict) and isinstance(s.get("id"), str)])
        elif type_ == SERVER_SIDE_EMIT_RESPONSE:
            request = self._requests.get(request_id)
            if request is not None:
                request.add(uid, [data.get("packet")])

    def _remote_socket(self, desc: dict[str, Any]) -> RemoteSocket:
        hs = desc.get("handshake")
        hs = hs if isinstance(hs, dict) else {}
        handshake = Handshake(
            headers=hs.get("headers") or {},
            time=str(hs.get("time", "")),
            address=str(hs.get("address", "")),
            xdomain=bool(hs.get("xdomain")),
            secure=bool(hs.get("secure")),
            issued=int(hs.get("issued") or 0),
            url=str(hs.get("url", "")),
            query=hs.get("query") or {},
            auth=hs.get("auth") or {},
        )
        rooms = desc.get("rooms")
        room_set: set[Room] = (
            {r for r in rooms if isinstance(r, (str, int))} if isinstance(rooms, list) else set()
        )
        return RemoteSocket(self, desc["id"], handshake, room_set, desc.get("data"))

    # -- connection state recovery ------------------------------------------------------------
    def _key(self, pid: str) -> str:
        return f"{self.node.opts.session_key_prefix}{pid}"

    def add_all(self, sid: str, rooms: Iterable[Room]) -> None:
        super().add_all(sid, rooms)
        if not self.node.started:
            self.node.ensure_started()  # served without Server.start() (ASGI): start on use
        if self.recovery is None:
            return
        if sid not in self._log_positions:
            # The session begins here: everything after the reader's position reaches it live.
            state = self.node.streams[self.stream_name]
            self._log_positions[sid] = state.pos or "0-0"
        self._mark(sid)

    def delete(self, sid: str, room: Room) -> None:
        super().delete(sid, room)
        if self.recovery is not None and sid in self._log_positions:
            self._mark(sid)

    def delete_all(self, sid: str) -> None:
        sock = self.nsp.sockets.get(sid)
        super().delete_all(sid)
        if self.recovery is None:
            return
        self._log_positions.pop(sid, None)
        self._dirty.discard(sid)
        pid = sock.pid if sock is not None else None
        if pid is None:
            return
        if pid in self._persisted:
            self._persisted.discard(pid)
        elif self.node.opts.eager_sessions:
            self.node.send(_Out("delete", (self._key(pid),)))  # left on purpose: no recovery

    def _mark(self, sid: str) -> None:
        if not self.node.opts.eager_sessions:
            return
        self._dirty.add(sid)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_sessions)

    def _flush_sessions(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        for sid in dirty:
            self._write_session(sid)

    def refresh_sessions(self) -> None:
        for sid in list(self._log_positions):
            self._write_session(sid)

    def _write_session(self, sid: str) -> None:
        sock = self.nsp.sockets.get(sid)
        if sock is None or sock.pid is None or not sock.connected:
            return
        position = self._log_positions.get(sid)
        self._set_session(sock.id, sock.pid, list(self.index.rooms_of(sid)), sock.data, position,
                          self.max_disconnection_duration + 2 * self.refresh_period)

    def _set_session(self, sid: str, pid: str, rooms: list[Room], data: Any,
                     log_position: str | None, ttl: float) -> None:
        try:
            value = wire.encode_session(sid, pid, rooms, data,
                                        {"startOffset": log_position} if log_position else None)
        except (TypeError, ValueError, OverflowError) as exc:
            log.error("redis adapter: the session of %s cannot be stored: %s", sid, exc)
            return
        self.node.send(_Out("set", (self._key(pid), value), None, None,
                            {"px": max(1, int(ttl * 1000))}))

    def persist_session(self, session: Session) -> Awaitable[None] | None:
        """``SET sio:session:<pid> base64(msgpack(session)) PX <max_disconnection_duration>``,
        through the writer (a shutdown flushes it before closing)."""
        self._persisted.add(session.pid)
        self._dirty.discard(session.sid)
        position = self._log_positions.get(session.sid)
        self._set_session(session.sid, session.pid, session.rooms, session.data, position,
                          self.max_disconnection_duration)
        return None

    async def restore_session(self, pid: str, offset: str | None) -> Session | None:
        """The session of ``pid`` and what it missed after ``offset`` (or, for a client that
        received no event, after the point its session began), read in bounded pages; ``None``
        when the session is gone or a packet after the offset was trimmed from the stream."""
        if self.recovery is None:
            return None
        if offset is not None and not wire.is_offset(offset):
            return None
        node = self.node
        node.ensure_started()
        state = node.streams[self.stream_name]
        key = self._key(pid)
        try:
            return await self._restore(pid, offset, node, state, key)
        except (OSError, aioredis.RedisError) as exc:
            node.read_errors.error(exc, " (restoring a session)")
            return None

    async def _restore(self, pid: str, offset: str | None, node: _Node, state: _Stream,
                       key: str) -> Session | None:
        raw = await node.command("getdel", key)
        if not raw:
            return None
        try:
            value = wire.decode_session(raw)
        except wire.WireError as exc:
            node.bad_entries.error(exc, " (session)")
            return None
        if offset is None:
            position = value.get("startOffset")
            if not wire.is_offset(position):
                return None
            offset = position
        assert offset is not None
        if offset != "0-0":
            found = await node.command("xrange", self.stream_name, offset, offset, 1)
            if not found:
                return None  # trimmed (or from a stream Redis lost): something may be missing
        rooms: list[Room] = list(value["rooms"])
        missed: list[list[bytes]] = []
        cursor = offset
        after = wire.parse_id(offset)
        count = node.opts.read_count
        name = self.nsp.name.encode()
        limit = node.opts.max_len // count + 100
        reader_end = state.pos_t
        mark = self._ring_seq
        for _ in range(limit):
            # What the reader has delivered before this read is the bound: those entries are
            # in Redis already, so the page has them; later ones reach the socket from the ring
            # or live (see _MissedPackets). Taken after the reply, an entry the reader got
            # meanwhile would be in neither.
            reader_end = state.pos_t
            mark = self._ring_seq
            page = await node.command("xrange", self.stream_name, "(" + cursor, "+", count)
            done = len(page) < count
            for entry_id, fields in page:
                eid_t = wire.parse_id(entry_id)
                if eid_t > reader_end:
                    done = True
                    break
                cursor = entry_id.decode()
                if fields.get(b"nsp") != name:
                    continue
                verdict = self._replay(fields, rooms, cursor)
                if verdict is False:
                    return None
                if isinstance(verdict, list):
                    missed.append(verdict)
            if done:
                break
        else:
            log.warning("redis adapter: session %s: more to replay than max_len; refused", pid)
            return None
        self._log_positions.pop(value["sid"], None)
        return Session(value["sid"], value["pid"], rooms, value.get("data"), 0,
                       _MissedPackets(missed, self, mark, max(after, reader_end), rooms))

    def _replay(self, fields: dict[bytes, bytes], rooms: list[Room],
                eid: str) -> list[bytes] | bool | None:
        """A logged entry seen by a restore: the packet to replay, ``None`` to skip it, or
        ``False`` when the session was disconnected meanwhile (no recovery)."""
        raw_type = fields.get(b"type")
        if raw_type not in (b"3", b"4", b"5", b"6"):
            return None
        try:
            msg = wire.decode_stream_fields(fields)
            data = msg.get("data") or {}
            rset, excepts, flags = wire.decode_opts(data.get("opts") or {})
        except wire.WireError as exc:
            self.node.bad_entries.error(exc, f" (stream entry {eid})")
            return None
        if not wire.should_include(rooms, rset, excepts):
            return None
        if raw_type == b"3":
            packet = data.get("packet")
            if (not isinstance(packet, dict) or not isinstance(packet.get("data"), list)
                    or packet.get("id") is not None or flags.get("volatile")
                    or data.get("requestId") is not None):
                return None  # acks and volatile packets are never replayed
            return self.nsp.server.encode(sio_packet.EVENT, self.nsp.name,
                                          [*packet["data"], eid], None).parts
        targets = data.get("rooms")
        if raw_type == b"4" and isinstance(targets, list):
            rooms.extend(r for r in targets if r not in rooms)
        elif raw_type == b"5" and isinstance(targets, list):
            rooms[:] = [r for r in rooms if r not in targets]
        elif raw_type == b"6":
            return False
        return None

    def ring_since(self, mark: int, after: tuple[int, int],
                   rooms: list[Room]) -> Iterator[list[bytes]]:
        ring = self._ring
        if ring and ring[0][0] > mark + 1 and mark < self._ring_seq:
            log.warning("redis adapter: a restored session may miss packets (ring overrun)")
        for seq, eid_t, stamped, prooms, pexcept in ring:
            if seq > mark and eid_t > after and wire.should_include(rooms, prooms, pexcept):
                yield self.nsp.server.encode(sio_packet.EVENT, self.nsp.name, stamped, None).parts


BROADCAST = wire.BROADCAST
SOCKETS_JOIN = wire.SOCKETS_JOIN
SOCKETS_LEAVE = wire.SOCKETS_LEAVE
DISCONNECT_SOCKETS = wire.DISCONNECT_SOCKETS
FETCH_SOCKETS = wire.FETCH_SOCKETS
FETCH_SOCKETS_RESPONSE = wire.FETCH_SOCKETS_RESPONSE
SERVER_SIDE_EMIT = wire.SERVER_SIDE_EMIT
SERVER_SIDE_EMIT_RESPONSE = wire.SERVER_SIDE_EMIT_RESPONSE
BROADCAST_CLIENT_COUNT = wire.BROADCAST_CLIENT_COUNT
BROADCAST_ACK = wire.BROADCAST_ACK
